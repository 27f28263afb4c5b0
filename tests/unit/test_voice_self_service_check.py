"""``switchboard rules check`` warns where self-service covers ``voice`` but the calls it applies to are asked no
speech question: on a call the bot answers what the caller said to that question, so without one it never answers.
A warning, not a refusal: the rest of the setting (other channels) works."""

from __future__ import annotations

import pytest

from chalicelib.routing.config import parse_config
from chalicelib.routing.rules import self_service_settings

ASK = "ask: {question: 'In a few words, what is your call about?'}"


def _warnings(text: str) -> list[str]:
    return [line for line in self_service_settings(parse_config(text)) if line.startswith("warning:")]


def test_a_queue_answering_calls_whose_callers_are_asked_nothing_is_warned_about():
    text = "queues:\n  default:\n    self_service: {channels: [voice, sms]}\n"
    text += "rules:\n  - name: all\n    queue: default\n"
    [warning] = _warnings(text)
    assert "covers voice" in warning and "ask:" in warning


@pytest.mark.parametrize(
    "text",
    [
        # a rule into the queue asks
        f"queues:\n  default:\n    self_service: {{channels: [voice]}}\nrules:\n  - name: calls\n"
        f"    when: {{channel: voice}}\n    queue: default\n    {ASK}\n  - name: all\n    queue: default\n",
        # the queue asks
        f"queues:\n  default:\n    {ASK}\n    self_service: {{channels: [voice]}}\nrules:\n  - name: all\n"
        "    queue: default\n",
        # a rule's own setting, and it asks
        f"queues:\n  default: {{}}\nrules:\n  - name: calls\n    when: {{channel: voice}}\n    queue: default\n"
        f"    {ASK}\n    self_service: {{channels: [voice]}}\n  - name: all\n    queue: default\n",
        # voice not covered: nothing to warn about
        "queues:\n  default:\n    self_service: {channels: [sms]}\nrules:\n  - name: all\n    queue: default\n",
        # suggest mode answers nobody on the call
        "queues:\n  default:\n    self_service: {channels: [voice], mode: suggest}\nrules:\n  - name: all\n"
        "    queue: default\n",
    ],
)
def test_where_calls_are_asked_or_voice_is_not_answered_there_is_no_warning(text):
    assert _warnings(text) == []


def test_a_rule_answering_calls_that_neither_it_nor_its_queue_asks_is_warned_about():
    text = (
        f"queues:\n  default: {{}}\n  other:\n    {ASK}\nrules:\n  - name: calls\n    when: {{channel: voice}}\n"
        "    queue: default\n    self_service: {channels: [voice]}\n  - name: all\n    queue: other\n"
    )
    [warning] = _warnings(text)
    assert "covers voice" in warning
