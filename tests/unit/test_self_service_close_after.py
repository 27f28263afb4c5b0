"""``self_service.close_after``: how long a bot answer the customer never replies to keeps the conversation open
(default 30 minutes), a duration between one minute and seven days."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.routing.config import ConfigError, parse_config
from chalicelib.routing.rules import ContactFacts, classify, self_service_settings

DAY = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def _config(setting: str) -> str:
    queue = f"queues:\n  default:\n    self_service: {{channels: [webchat]{setting}}}\n"
    return queue + "rules:\n  - name: all\n    queue: default\n"


def _close_after(setting: str) -> int:
    chosen = classify(parse_config(_config(setting)), ContactFacts.of("webchat", "opening hours?"), DAY).self_service
    assert chosen is not None
    return chosen.close_after_seconds


def test_close_after_defaults_to_30_minutes_and_takes_units():
    assert _close_after("") == 1800
    assert _close_after(", close_after: 2h") == 7200
    assert _close_after(", close_after: 90") == 90
    assert "closes unanswered after 30m" in " ".join(self_service_settings(parse_config(_config(""))))


@pytest.mark.parametrize(
    ("value", "problem"),
    [("30s", "greater than or equal to 60"), ("8d", "less than or equal to 604800"), ("soon", "duration")],
)
def test_close_after_out_of_range_or_not_a_duration_is_refused_naming_the_field(value, problem):
    with pytest.raises(ConfigError) as refused:
        parse_config(_config(f", close_after: {value}"))
    message = str(refused.value)
    assert "close_after" in message and problem in message.lower()
