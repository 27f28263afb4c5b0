"""Voicemail and the speech question in routing.yaml: where a call is sent to voicemail or asked first, and how a
voicemail is routed afterwards (a channel of its own: e-mail's pace and cost)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.routing.config import ConfigError, default_config, parse_config
from chalicelib.routing.rules import ContactFacts, classify

NIGHT = datetime(2026, 11, 24, 23, 0, tzinfo=UTC)  # a Tuesday, 23:00 in London
DAY = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)

CLOSED_AT_NIGHT = """
queues:
  default: {}
  phones:
    hours:
      timezone: Europe/London
      weekly: {mon-fri: "08:00-18:00"}
    out_of_hours:
      action: voicemail
      message: We are closed. Please leave a message after the tone.
rules:
  - name: calls
    when: {channel: voice}
    queue: phones
  - name: everything else
    queue: phones
"""


def test_a_call_to_a_closed_queue_with_voicemail_gets_the_greeting_and_other_contacts_just_wait():
    config = parse_config(CLOSED_AT_NIGHT)

    night_call = classify(config, ContactFacts.of("voice"), NIGHT)
    assert night_call.voicemail == "We are closed. Please leave a message after the tone."
    assert any("voicemail" in reason for reason in night_call.reasons)
    assert classify(config, ContactFacts.of("voice"), DAY).voicemail is None
    night_chat = classify(config, ContactFacts.of("webchat", "hello"), NIGHT)
    assert night_chat.voicemail is None and night_chat.queue == "phones" and not night_chat.queue_open


def test_a_rule_may_send_calls_to_voicemail_with_its_own_or_the_default_greeting():
    text = CLOSED_AT_NIGHT.replace(
        "    queue: phones\n  - name: everything else",
        "    queue: phones\n    voicemail: true\n  - name: everything else",
        1,
    )
    config = parse_config(text)
    greeting = classify(config, ContactFacts.of("voice"), DAY).voicemail
    assert greeting and "message" in greeting
    own = parse_config(text.replace("voicemail: true", "voicemail: Leave us a message."))
    assert classify(own, ContactFacts.of("voice"), DAY).voicemail == "Leave us a message."


def test_a_rule_may_ask_the_caller_first_in_a_language():
    text = CLOSED_AT_NIGHT.replace(
        "    queue: phones\n  - name: everything else",
        "    queue: phones\n    ask: {question: 'In a few words, what is your call about?', language: en-GB}\n"
        "  - name: everything else",
        1,
    )
    decision = classify(parse_config(text), ContactFacts.of("voice"), DAY)
    assert decision.ask is not None
    assert (decision.ask.question, decision.ask.language) == ("In a few words, what is your call about?", "en-GB")
    short = parse_config(
        text.replace("{question: 'In a few words, what is your call about?', language: en-GB}", "Why?")
    )
    ask = classify(short, ContactFacts.of("voice"), DAY).ask
    assert ask is not None and (ask.question, ask.language) == ("Why?", "en-US")
    assert classify(short, ContactFacts.of("voice"), NIGHT).ask is None, "a closed queue's voicemail asks nothing"


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        (
            "      action: voicemail\n",
            "      action: voicemail\n      overflow_to: default\n",
            "queues.phones.out_of_hours",
            "action voicemail takes no overflow_to",
        ),
        (
            "    queue: phones\n  - name: every",
            "    queue: phones\n    voicemail: ''\n  - name: every",
            "rules[0].voicemail",
            "",
        ),
        (
            "    queue: phones\n  - name: every",
            "    queue: phones\n    ask: {language: en}\n  - name: every",
            "rules[0].ask",
            "",
        ),
    ],
)
def test_voice_mistakes_are_named(old, new, field, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(CLOSED_AT_NIGHT.replace(old, new, 1))
    assert any(p.field.startswith(field) and message in p.message for p in caught.value.problems), str(caught.value)


def test_a_voicemail_is_routed_at_e_mail_pace_and_cost_by_default():
    config = default_config()
    assert config.sla_for("voicemail") == config.sla_for("email") == 3600
    assert config.cost("voicemail") == config.cost("email") == 12
    minimal = parse_config("queues:\n  default: {}\nrules:\n  - name: all\n    queue: default\n")
    assert minimal.sla_for("voicemail") == 3600 and minimal.cost("voicemail") == 12


def test_rules_explain_says_what_a_call_gets():
    from chalicelib.routing.rules import explain

    config = parse_config(CLOSED_AT_NIGHT)
    night = explain(config, ContactFacts.of("voice"), NIGHT)
    assert "Call:         voicemail after 'We are closed. Please leave a message after the tone.'" in night
    assert "Out of hours: a call records a voicemail; other contacts wait for the queue to open" in night
    asking = parse_config(
        CLOSED_AT_NIGHT.replace(
            "    queue: phones\n  - name: every", "    queue: phones\n    ask: Why?\n  - name: every"
        )
    )
    assert "Call:         asked 'Why?' (en-US) first" in explain(asking, ContactFacts.of("voice"), DAY)
    assert "Call:" not in explain(asking, ContactFacts.of("webchat"), DAY)


def test_a_queue_may_ask_its_callers_and_a_rules_question_comes_first():
    text = CLOSED_AT_NIGHT.replace(
        "      message: We are closed. Please leave a message after the tone.\n",
        "      message: We are closed. Please leave a message after the tone.\n    ask: What is it about?\n",
        1,
    )
    config = parse_config(text)
    ask = classify(config, ContactFacts.of("voice"), DAY).ask
    assert ask is not None and ask.question == "What is it about?"
    assert classify(config, ContactFacts.of("voice"), NIGHT).ask is None
    own = parse_config(
        text.replace("    queue: phones\n  - name: every", "    queue: phones\n    ask: Why?\n  - name: every")
    )
    ask = classify(own, ContactFacts.of("voice"), DAY).ask
    assert ask is not None and ask.question == "Why?"
