"""Where the routing configuration in force comes from: ``routing.yaml``, or the SSM override ops publish.

``routing.yaml`` beside the ``chalicelib.routing`` package is the deployed default (shipped as package data)
and documents the format. An SSM parameter named by ``SWITCHBOARD_ROUTING_CONFIG_PARAMETER`` can override it
at run time (``current_config``, read through ``store.parameters`` at most every ``REFRESH_SECONDS``) without
a deployment; ``publish_override`` checks a document and makes it that override.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from chalicelib.routing.config.build import build_config
from chalicelib.routing.config.checks import cross_checks
from chalicelib.routing.config.lines import line_of, load_yaml, pydantic_problems, render_path
from chalicelib.routing.config.problems import ConfigError, Problem
from chalicelib.routing.config.schema import ConfigIn
from chalicelib.routing.config.values import RoutingConfig
from chalicelib.settings import MissingSetting, get_settings
from chalicelib.store import parameters

logger = Logger(service="switchboard", child=True)

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "routing.yaml"
ROUTING_CONFIG_SETTING = "SWITCHBOARD_ROUTING_CONFIG_PARAMETER"
# How often ``current_config`` looks at the SSM parameter again.
REFRESH_SECONDS = 60


def parse_config(text: str, source: str = "routing.yaml") -> RoutingConfig:
    """Parse and check a routing configuration; raises ``ConfigError`` naming file, line and field.

    Three steps: YAML to plain data with every node's line (``lines``), the shape (``schema``), the checks
    that span fields (``checks``); then the values (``build``).
    """
    data, lines = load_yaml(text, source)
    if not isinstance(data, dict):
        raise ConfigError.from_problems(
            source, [Problem(1, "", "the configuration must be a mapping with at least 'queues' and 'rules'")]
        )
    try:
        raw = ConfigIn.model_validate(data)
    except ValidationError as exc:
        raise ConfigError.from_problems(source, pydantic_problems(exc, lines, ConfigIn)) from None
    problems = cross_checks(raw)
    if problems:
        raise ConfigError.from_problems(source, (Problem(line_of(lines, p), render_path(p), m) for p, m in problems))
    return build_config(raw)


def load_file(path: str | Path) -> RoutingConfig:
    """Parse a configuration file; errors name it as given."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError.from_problems(str(path), [Problem(None, "", f"cannot read: {reason}")]) from None
    return parse_config(text, source=str(path))


@lru_cache(maxsize=1)
def default_config() -> RoutingConfig:
    """The deployed ``routing.yaml``, parsed once per container."""
    return load_file(DEFAULT_FILE)


@dataclass
class _Override:
    """The SSM override as last seen: when we looked, what text we parsed, and the last config that was valid."""

    parameter: str | None = None
    checked_at: float | None = None
    digest: str | None = None
    config: RoutingConfig | None = None
    reported_missing: bool = False  # "nothing published yet" is logged once, not every minute


_override = _Override()


def current_config(now: float | None = None) -> RoutingConfig:
    """The routing configuration in force: the SSM override when one is configured and valid, else ``routing.yaml``.

    The parameter is read at most every ``REFRESH_SECONDS`` (``now`` is a monotonic clock reading, passed by tests).
    A missing or invalid parameter is logged and the last good configuration stays in force.
    """
    parameter = get_settings().routing_config_parameter
    if not parameter:
        return default_config()
    global _override
    if _override.parameter != parameter:
        _override = _Override(parameter=parameter)
    now = time.monotonic() if now is None else now
    if _override.checked_at is None or not 0 <= now - _override.checked_at < REFRESH_SECONDS:
        _override.checked_at = now
        _refresh(_override, parameter)
    return _override.config or default_config()


def publish_override(text: str) -> RoutingConfig:
    """Check a routing config and make it the override (the SSM parameter); routers pick it up within 60 s.

    ``ConfigError`` for a config with mistakes (checked first: the admin's to fix); ``MissingSetting`` (503)
    when this deployment names no parameter. A parameter that does not exist yet is created (the deployed
    stack names it but leaves it to the first publish).
    """
    config = parse_config(text, source="request body")
    parameter = get_settings().routing_config_parameter
    if not parameter:
        raise MissingSetting(ROUTING_CONFIG_SETTING)
    parameters.publish_routing_config(parameter, text)
    return config


def forget_current_config() -> None:
    """Drop the cached override so the next ``current_config`` reads SSM again (tests)."""
    global _override
    _override = _Override()


def _refresh(state: _Override, parameter: str) -> None:
    try:
        text = parameters.read_routing_config(parameter)  # read now: our own clock decides when to look again
    except Exception as exc:  # any failure to read must leave routing running on the last good config
        if state.config is None and isinstance(exc, parameters.ParameterMissing):
            # Normal until the first PUT /admin/routing: the deployed stack names the parameter, nobody created it.
            if not state.reported_missing:
                state.reported_missing = True
                logger.info("no routing config published yet; routing.yaml is in force", extra={"parameter": parameter})
            return
        logger.error(
            "routing config parameter unreadable; keeping the last good config",
            extra={"parameter": parameter, "error_type": type(exc).__name__},
        )
        return
    digest = hashlib.sha256(text.encode()).hexdigest()
    if digest == state.digest:
        return
    try:
        config = parse_config(text, source=parameter)
    except ConfigError as exc:
        # Problems name lines and fields, never the configuration's text.
        logger.error(
            "routing config parameter is invalid; keeping the last good config",
            extra={"parameter": parameter, "problems": [p.render(parameter) for p in exc.problems]},
        )
        return
    state.digest, state.config = digest, config
    logger.info(
        "routing config loaded",
        extra={"parameter": parameter, "queues": len(config.queues), "rules": len(config.rules)},
    )
