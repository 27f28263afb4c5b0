"""The routing configuration ops edit: queues, business hours, rules, SLAs and capacity, read from YAML.

``routing.yaml`` (in ``chalicelib/routing/``) is the deployed default and documents the format; an SSM
parameter can override it at run time without a deployment (``current_config``). Parsing happens in three
steps: YAML to plain data with a map from every node's path to its line, pydantic validation of the shape,
then checks that span fields. Every problem becomes one line ``FILE:LINE: FIELD: MESSAGE`` of a ``ConfigError``.

One module per concern; import from here, which re-exports what the rest of Switchboard uses:

- ``values``: the frozen dataclasses the router reads (``RoutingConfig``, ``QueueConfig``, ``Rule``...) and defaults;
- ``schema``: the pydantic models of the document, with its value types (durations, hours, days, channels);
- ``checks``: the checks across fields (queues that exist, escalation order, overflow cycles);
- ``lines``: the YAML loader that keeps every node's line, and pydantic's errors placed at lines;
- ``problems``: ``Problem`` and ``ConfigError``;
- ``build``: from the validated document to the values;
- ``loading``: ``parse_config``, the deployed file, the SSM override and its cache (``current_config``).

A new setting (global, or per queue) gets its field in ``values``, its shape in ``schema`` and one line in
``build``; a check that spans fields goes to ``checks``.
"""

from chalicelib.routing.config.loading import (
    DEFAULT_FILE,
    REFRESH_SECONDS,
    ROUTING_CONFIG_SETTING,
    current_config,
    default_config,
    forget_current_config,
    load_file,
    parse_config,
    publish_override,
)
from chalicelib.routing.config.problems import ConfigError, Problem
from chalicelib.routing.config.schema import parse_duration
from chalicelib.routing.config.values import (
    CHANNELS,
    DAYS,
    DEFAULT_ACKNOWLEDGEMENT,
    DEFAULT_CHANNEL_COSTS,
    DEFAULT_SLA_SECONDS,
    Conditions,
    EscalationStep,
    Hours,
    LabCheck,
    OutOfHours,
    QueueConfig,
    QueueRouting,
    RoutingConfig,
    Rule,
    TimeWindow,
)

__all__ = [
    "CHANNELS",
    "DAYS",
    "DEFAULT_ACKNOWLEDGEMENT",
    "DEFAULT_CHANNEL_COSTS",
    "DEFAULT_FILE",
    "DEFAULT_SLA_SECONDS",
    "REFRESH_SECONDS",
    "ROUTING_CONFIG_SETTING",
    "Conditions",
    "ConfigError",
    "EscalationStep",
    "Hours",
    "LabCheck",
    "OutOfHours",
    "Problem",
    "QueueConfig",
    "QueueRouting",
    "RoutingConfig",
    "Rule",
    "TimeWindow",
    "current_config",
    "default_config",
    "forget_current_config",
    "load_file",
    "parse_config",
    "parse_duration",
    "publish_override",
]
