"""The routing configuration: the deployed file, each mistake named by file, line and field, the SSM override."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from chalicelib.routing.config import (
    DEFAULT_FILE,
    ConfigError,
    EscalationStep,
    current_config,
    default_config,
    forget_current_config,
    load_file,
    parse_config,
    parse_duration,
)
from chalicelib.settings import reload_settings
from tests.support import REGION

BROKEN = Path(__file__).parent.parent / "fixtures" / "routing"
MINIMAL = "queues:\n  default: {}\nrules:\n  - name: everything else\n    queue: default\n"


def test_the_deployed_file_is_valid():
    config = default_config()
    assert set(config.queues) == {"default", "support", "vip", "billing"}
    assert [rule.name for rule in config.rules] == [
        "vip customers",
        "billing questions",
        "spanish speakers",
        "phone calls",
        "everything else",
    ]
    assert config.rules[-1].conditions.is_empty
    assert config.queues["default"].hours is None
    assert config.queues["vip"].out_of_hours is not None and config.queues["vip"].out_of_hours.overflow_to == "support"
    support = config.queues["support"].hours
    assert support is not None and support.timezone == "Europe/London"
    assert support.weekly["fri"] == [("08:00", "18:00")] and support.weekly["sat"] == [("09:00", "13:00")]
    assert support.weekly["sun"] == []
    assert len(support.holidays) == 8
    assert config.queues["vip"].hours is not None and config.queues["vip"].hours.holidays == support.holidays


def test_the_deployed_defaults_follow_the_design():
    config = default_config()
    # Voice and chat in seconds, messaging in minutes, social a quarter hour, e-mail within the hour.
    assert config.sla_for("voice") < 60 and config.sla_for("webchat") == 60
    assert all(config.sla_for(c) == 300 for c in ("sms", "whatsapp", "telegram", "app", "in_store", "voice_assistant"))
    assert config.sla_for("messenger") == config.sla_for("instagram") == 900
    assert config.sla_for("email") == 3600
    # One call, or three chats, or five e-mails.
    assert config.default_capacity == 60
    assert (config.cost("voice"), config.cost("webchat"), config.cost("email")) == (60, 20, 12)
    assert config.cost("a future channel") == config.default_channel_cost == 20
    assert (config.offer_timeout("webchat"), config.offer_timeout("voice"), config.offer_timeout("email")) == (
        30,
        20,
        30,
    )
    assert config.max_consecutive_expired_offers == 3
    assert config.preferred_agent_window_seconds == 7 * 24 * 3600
    assert config.acknowledgement_interval_seconds == 120
    assert "{position}" in config.acknowledgement_message and "{wait_minutes}" in config.acknowledgement_message


def test_a_config_that_leaves_sections_out_gets_the_same_defaults_as_the_deployed_file():
    minimal, deployed = parse_config(MINIMAL), default_config()
    for name in (
        "sla_seconds",
        "default_sla_seconds",
        "channel_costs",
        "default_channel_cost",
        "default_capacity",
        "offer_timeout_seconds",
        "default_offer_timeout_seconds",
        "max_consecutive_expired_offers",
        "preferred_agent_window_seconds",
        "acknowledgement_interval_seconds",
        "acknowledgement_message",
        "voice_position_interval_seconds",
        "voice_hold_audio",
        "voice_callback",
    ):
        assert getattr(minimal, name) == getattr(deployed, name), name


@pytest.mark.parametrize(
    ("written", "seconds"), [(90, 90), ("90", 90), ("90s", 90), ("5m", 300), ("2h", 7200), ("7d", 604800)]
)
def test_durations(written, seconds):
    assert parse_duration(written) == seconds
    text = MINIMAL.replace("queue: default\n", f"queue: default\n    sla: {written}\n")
    assert parse_config(text).rules[0].sla_seconds == seconds


def _marked_line(path: Path) -> int:
    """The line a broken fixture marks with ``# broken``."""
    return next(n for n, line in enumerate(path.read_text().splitlines(), start=1) if "# broken" in line)


@pytest.mark.parametrize(
    ("fixture", "field", "message"),
    [
        ("skill_level_7.yaml", "rules[0].skills.billing", "Input should be less than or equal to 5"),
        ("unknown_queue_in_rule.yaml", "rules[0].queue", "unknown queue 'biling' (queues: billing, default)"),
        ("unknown_key.yaml", "rules[0].priorty", "unknown key (expected one of: name, when, queue, skills, priority"),
        (
            "bad_regex.yaml",
            "rules[0].when.text_matches",
            "invalid regular expression: missing ), unterminated subpattern",
        ),
        ("bad_timezone.yaml", "queues.support.hours.timezone", "unknown time zone"),
        (
            "unsorted_escalation.yaml",
            "rules[0].escalation[1].after",
            "escalation steps must be in increasing order of after",
        ),
        ("overflow_cycle.yaml", "queues.vip.out_of_hours.overflow_to", "overflow cycle vip -> support -> vip"),
        ("bad_duration.yaml", "rules[0].sla", "a duration is a number of seconds or a number with s, m, h or d"),
        ("bad_holiday_date.yaml", "queues.support.hours.holidays[1]", "invalid date: day is out of range for month"),
        ("no_catch_all.yaml", "rules[0]", "the last rule must have no conditions"),
        ("duplicate_key.yaml", "queues.support", "duplicate key (first on line 4)"),
        ("unknown_channel.yaml", "rules[0].when.channel[1]", "unknown channel"),
    ],
)
def test_each_broken_file_is_refused_naming_file_line_and_field(fixture, field, message):
    path = BROKEN / fixture
    with pytest.raises(ConfigError) as caught:
        load_file(path)
    line = _marked_line(path)
    assert str(caught.value).startswith(f"{path}:{line}: {field}: {message}")
    problem = caught.value.problems[0]
    assert (problem.line, problem.field) == (line, field)


def test_a_yaml_syntax_error_names_its_line():
    path = BROKEN / "not_yaml.yaml"
    with pytest.raises(ConfigError, match=rf"^{path}:{_marked_line(path)}: not valid YAML: "):
        load_file(path)


def test_every_problem_is_reported_in_line_order():
    text = (
        "queues:\n"
        "  default: {}\n"
        "rules:\n"
        "  - name: a\n"
        "    queue: default\n"
        "    priority: 12\n"  # line 6
        "    when: {channel: fax}\n"  # line 7
        "  - name: everything else\n"
        "    queue: default\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="ops.yaml")
    assert str(caught.value).splitlines() == [
        "ops.yaml:6: rules[0].priority: Input should be less than or equal to 9",
        "ops.yaml:7: rules[0].when.channel: unknown channel (channels: voice, webchat, sms, whatsapp, telegram, "
        "app, in_store, voice_assistant, messenger, instagram, email, voicemail)",
    ]


@pytest.mark.parametrize(
    ("rule_yaml", "field", "message"),
    [
        ("    queue: default\n", "rules[0].name", "Field required"),
        (
            "    name: x\n    queue: default\n    skills: {billing: 0}\n",
            "rules[0].skills.billing",
            "greater than or equal to 1",
        ),
        ("    name: x\n    queue: default\n    sla: 0\n", "rules[0].sla", "greater than 0"),
        (
            "    name: x\n    queue: default\n    escalation:\n"
            "      - {after: 1m, before_breach: 1m, raise_priority: 1}\n",
            "rules[0].escalation[0]",
            "exactly one of after or before_breach",
        ),
        (
            "    name: x\n    queue: default\n    escalation:\n      - {after: 1m}\n",
            "rules[0].escalation[0]",
            "a step must do something",
        ),
        (
            "    name: x\n    queue: default\n    escalation:\n      - {after: 1m, add_queues: [nowhere]}\n",
            "rules[0].escalation[0].add_queues[0]",
            "unknown queue 'nowhere'",
        ),
        (
            "    name: x\n    queue: default\n    skills: {billing: 3}\n    escalation:\n"
            "      - {after: 1m, set_skills: {billing: 4}}\n",
            "rules[0].escalation[0].set_skills.billing",
            "must be lower than 3",
        ),
        (
            "    name: x\n    queue: default\n    sla: 10m\n    escalation:\n"
            "      - {before_breach: 2m, raise_priority: 1}\n      - {after: 1m, raise_priority: 1}\n",
            "rules[0].escalation[1]",
            "fires before the step above it",
        ),
        (
            "    name: x\n    queue: default\n    when: {channel: voice}\n    escalation:\n"
            "      - {before_breach: 30s, raise_priority: 1}\n",
            "rules[0].escalation[0].before_breach",
            "must be shorter than the SLA (20s)",
        ),
        (
            "    name: x\n    queue: default\n    when: {time: {between: ['25:00', '08:00']}}\n",
            "rules[0].when.time.between[0]",
            "a time of day is HH:MM",
        ),
    ],
)
def test_rule_mistakes(rule_yaml, field, message):
    text = f"queues:\n  default: {{}}\nrules:\n  -\n{rule_yaml}"
    if "when:" in rule_yaml:  # a rule with conditions needs the catch-all after it
        text += "  - name: everything else\n    queue: default\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert any(p.field == field and message in p.message for p in caught.value.problems), str(caught.value)


def test_queue_mistakes():
    text = (
        "queues:\n"
        "  default:\n"
        "    out_of_hours: {action: reply, message: closed}\n"  # line 3: never closed
        "  support:\n"
        "    hours:\n"
        "      timezone: Europe/London\n"
        "      weekly:\n"
        "        mon-fri: ['08:00-12:00', '11:00-18:00']\n"  # line 8: overlap
        "        fri: '09:00-10:00'\n"  # line 9: friday twice
        "        sat: '18:00-08:00'\n"  # line 10: backwards
        "    out_of_hours: {action: overflow}\n"  # line 11: no target
        "rules:\n"
        "  - name: everything else\n"
        "    queue: default\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="q.yaml")
    lines = str(caught.value).splitlines()
    assert lines == [
        "q.yaml:10: queues.support.hours.weekly.sat: opening hours must end after they start; split a night across "
        "two days",
        "q.yaml:11: queues.support.out_of_hours: action overflow needs overflow_to (a queue)",
    ]
    # Shape errors come first; once fixed, the checks across fields speak.
    fixed = text.replace("'18:00-08:00'", "'09:00-13:00'").replace(
        "{action: overflow}", "{action: overflow, overflow_to: default}"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(fixed, source="q.yaml")
    assert str(caught.value).splitlines() == [
        "q.yaml:3: queues.default.out_of_hours: the queue has no hours, so it is never out of hours",
        "q.yaml:8: queues.support.hours.weekly.mon-fri: opening hours overlap",
        "q.yaml:9: queues.support.hours.weekly.fri: fri is already given by mon-fri",
    ]


def test_yaml_11_surprises_are_not_applied():
    # Unquoted 18:00 would be the number 1080 in YAML 1.1, and the language "no" (Norwegian) would be false.
    text = (
        "queues:\n  default: {}\n  norsk: {}\n"
        "rules:\n"
        "  - name: norwegian at night\n"
        "    when: {language: no, time: {between: [18:00, 08:00]}}\n"
        "    queue: norsk\n"
        "  - name: everything else\n    queue: default\n"
    )
    rule = parse_config(text).rules[0]
    assert rule.conditions.languages == ("no",)
    assert rule.conditions.time is not None and rule.conditions.time.between == ("18:00", "08:00")
    assert rule.conditions.time.timezone == "UTC"  # no top-level timezone given


def test_anchors_merge_keys_and_their_lines():
    text = (
        "queues:\n"
        "  default: {}\n"
        "  a:\n"
        "    hours: &office\n"
        "      timezone: Europe/London\n"
        "      weekly: {mon-fri: '09:00-17:00'}\n"
        "  b:\n"
        "    hours:\n"
        "      <<: *office\n"
        "      holidays: [2026-13-01]\n"  # line 10
        "rules:\n  - name: everything else\n    queue: default\n"
    )
    with pytest.raises(ConfigError, match=r"^x:10: queues\.b\.hours\.holidays\[0\]: invalid date"):
        parse_config(text, source="x")
    config = parse_config(text.replace("2026-13-01", "2026-12-01"))
    assert config.queues["b"].hours is not None and config.queues["b"].hours.weekly["mon"] == [("09:00", "17:00")]


def test_alias_bombs_and_recursive_anchors_are_refused():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefg":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 10) + "]\n"
    with pytest.raises(ConfigError, match="too large or recursive"):
        parse_config(bomb)
    with pytest.raises(ConfigError, match="too large or recursive"):
        parse_config("queues: &q {default: *q}\n")


@pytest.mark.parametrize("text", ["", "just text\n", "- a list\n"])
def test_a_document_that_is_not_a_mapping(text):
    with pytest.raises(ConfigError, match=r"^routing\.yaml:1: the configuration must be a mapping"):
        parse_config(text)


def test_an_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read: No such file or directory"):
        load_file(tmp_path / "missing.yaml")


def test_an_acknowledgement_template_may_only_use_its_placeholders():
    text = MINIMAL + "acknowledgement:\n  message: 'Hi {name}, you are number {position}'\n"
    with pytest.raises(ConfigError, match=r":7: acknowledgement\.message: unknown placeholder \{name\}"):
        parse_config(text)


def test_the_waiting_callers_announcement_interval_and_hold_audio():
    config = parse_config(MINIMAL + "voice:\n  position_interval: 1m\n  hold_audio: https://cdn.example.com/hold.mp3\n")
    assert (config.voice_position_interval_seconds, config.voice_hold_audio) == (60, "https://cdn.example.com/hold.mp3")
    assert default_config().voice_position_interval_seconds == 45
    with pytest.raises(ConfigError, match=r"voice\.position_interval"):
        parse_config(MINIMAL + "voice:\n  position_interval: 5s\n")
    with pytest.raises(ConfigError, match=r"voice\.hold_audio: .*https"):
        parse_config(MINIMAL + "voice:\n  hold_audio: /hold.mp3\n")
    with pytest.raises(ConfigError, match=r"voice\.greeting"):
        parse_config(MINIMAL + "voice:\n  greeting: hello\n")


def test_the_callback_a_waiting_caller_may_ask_for():
    config = parse_config(MINIMAL + "voice:\n  callback:\n    attempts: 2\n    retry_after: 90s\n")
    assert (config.voice_callback.offer, config.voice_callback.attempts) == (True, 2)
    assert config.voice_callback.retry_after_seconds == 90
    deployed = default_config().voice_callback
    assert (deployed.offer, deployed.attempts, deployed.retry_after_seconds) == (True, 3, 120)
    assert parse_config(MINIMAL + "voice:\n  callback:\n    offer: false\n").voice_callback.offer is False
    with pytest.raises(ConfigError, match=r":8: voice\.callback\.attempts: .*greater than or equal to 1"):
        parse_config(MINIMAL + "voice:\n  callback:\n    attempts: 0\n")
    with pytest.raises(ConfigError, match=r"voice\.callback\.retry_after: .*less than or equal to 900"):
        parse_config(MINIMAL + "voice:\n  callback:\n    retry_after: 1h\n")
    with pytest.raises(ConfigError, match=r"voice\.callback\.retry: "):
        parse_config(MINIMAL + "voice:\n  callback:\n    retry: 2\n")


def test_escalation_steps_round_trip_through_a_dict():
    step = default_config().rules[1].escalation[1]
    assert EscalationStep.from_dict(step.as_dict()) == step
    assert EscalationStep(before_breach_seconds=120, raise_priority=1).delay_seconds(sla_seconds=600) == 480
    assert EscalationStep(before_breach_seconds=900, raise_priority=1).delay_seconds(sla_seconds=600) == 0
    assert EscalationStep(after_seconds=60, raise_priority=1).delay_seconds(sla_seconds=600) == 60


# --- The SSM override -------------------------------------------------------------------------------------------------

PARAMETER = "/switchboard/test/routing.yaml"
OVERRIDE = MINIMAL.replace("  default: {}\n", "  default: {}\n  from-ssm: {}\n")
OVERRIDE_2 = MINIMAL.replace("  default: {}\n", "  default: {}\n  from-ssm-2: {}\n")
# Invalid (skill level 7), with text that must never reach the logs.
INVALID = MINIMAL.replace("queue: default\n", "queue: default\n    skills: {billing: 7}\n") + (
    "acknowledgement:\n  message: 'SECRET-OPS-TEXT {position}'\n"
)


@pytest.fixture
def ssm(env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("SWITCHBOARD_ROUTING_CONFIG_PARAMETER", PARAMETER)
    reload_settings()
    forget_current_config()
    parameters.clear_caches()
    with mock_aws():
        yield boto3.client("ssm", region_name=REGION)
    forget_current_config()
    parameters.clear_caches()
    reload_settings()


def _put(ssm, text: str) -> None:
    ssm.put_parameter(Name=PARAMETER, Value=text, Type="String", Overwrite=True, Tier="Advanced")


def test_without_a_parameter_the_deployed_file_is_in_force(env):
    reload_settings()
    forget_current_config()
    assert current_config() is default_config()
    assert default_config() == load_file(DEFAULT_FILE)


def test_the_ssm_override_applies(ssm):
    _put(ssm, OVERRIDE)
    assert set(current_config(now=1000.0).queues) == {"default", "from-ssm"}


def test_the_override_is_read_again_only_after_60_seconds(ssm):
    _put(ssm, OVERRIDE)
    assert "from-ssm" in current_config(now=1000.0).queues
    _put(ssm, OVERRIDE_2)
    assert "from-ssm" in current_config(now=1059.9).queues  # still the copy read at 1000
    assert "from-ssm-2" in current_config(now=1060.0).queues
    # The next look is 60 s after that one.
    _put(ssm, OVERRIDE)
    assert "from-ssm-2" in current_config(now=1100.0).queues
    assert "from-ssm" in current_config(now=1120.0).queues


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every log record of the test, with its extra fields."""
    return "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)


def test_an_invalid_override_keeps_the_last_good_config_and_logs_no_config_text(ssm, caplog):
    _put(ssm, OVERRIDE)
    good = current_config(now=0.0)
    _put(ssm, INVALID)
    assert current_config(now=60.0) is good
    logged = _logged(caplog)
    assert "routing config parameter is invalid" in logged
    assert "rules[0].skills.billing" in logged  # where the problem is
    assert "SECRET-OPS-TEXT" not in logged  # but not what the config says
    _put(ssm, OVERRIDE_2)
    assert "from-ssm-2" in current_config(now=120.0).queues  # fixed: applies at the next look


def test_an_invalid_or_missing_override_from_the_start_falls_back_to_the_deployed_file(ssm, caplog):
    assert current_config(now=0.0) is default_config()  # no such parameter
    assert current_config(now=60.0) is default_config()
    # Nothing published yet is normal (the deployed stack names the parameter, the first publish creates it):
    # said once, not an error every minute.
    said = [r.getMessage() for r in caplog.records if "no routing config published yet" in r.getMessage()]
    assert len(said) == 1 and "unreadable" not in _logged(caplog)
    _put(ssm, INVALID)
    assert current_config(now=60.0) is default_config()


def test_a_deleted_override_keeps_the_last_good_config(ssm):
    _put(ssm, OVERRIDE)
    good = current_config(now=0.0)
    ssm.delete_parameter(Name=PARAMETER)
    assert current_config(now=61.0) is good
