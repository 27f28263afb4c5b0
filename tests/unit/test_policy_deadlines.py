"""Deadlines that mean what the customer sees: an SLA clock that runs only in business hours (if the queue says
so), and messaging contacts due before the provider's 24-hour reply window closes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.routing.config import ConfigError, parse_config
from chalicelib.routing.hours import after_open_seconds
from chalicelib.routing.rules import ContactFacts, classify, explain

BASE = """
sla: {default: 5m, channels: {email: 1h, whatsapp: 5m, messenger: 15m}}
queues:
  default: {}
  support:
    hours:
      timezone: Europe/London
      weekly: {mon-fri: "08:00-18:00"}
      holidays: [2026-12-25]
    ROUTING
rules:
  - {name: mail, when: {channel: email}, queue: support}
  - {name: chats, when: {channel: [whatsapp, messenger]}, queue: support, sla: SLA}
  - {name: everything else, queue: default}
"""


def config(routing: str = "", sla: str = "5m"):
    return parse_config(BASE.replace("ROUTING", routing).replace("SLA", sla), "deadlines.yaml")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


BUSINESS = "routing: {sla_clock: business_hours}"


def test_open_time_counts_only_while_the_queue_is_open() -> None:
    support = config().queues["support"]
    # Tuesday 17:30 in London (UTC in winter): 30 minutes today, 30 more from 08:00 on Wednesday.
    assert after_open_seconds(support, utc("2026-11-24T17:30:00"), 3600) == utc("2026-11-25T08:30:00")
    # Friday night: the clock starts on Monday at 08:00.
    assert after_open_seconds(support, utc("2026-11-27T22:00:00"), 3600) == utc("2026-11-30T09:00:00")
    # Christmas Eve (Thursday) 17:00: the hour fits before 18:00. From 17:30 the other half hour waits over
    # the holiday and the weekend until Monday 08:00.
    assert after_open_seconds(support, utc("2026-12-24T17:00:00"), 3600) == utc("2026-12-24T18:00:00")
    assert after_open_seconds(support, utc("2026-12-24T17:30:00"), 3600) == utc("2026-12-28T08:30:00")
    always = config().queues["default"]
    assert after_open_seconds(always, utc("2026-11-27T22:00:00"), 60) == utc("2026-11-27T22:01:00")


def test_a_night_email_is_due_an_hour_after_the_queue_opens_with_a_business_hours_clock() -> None:
    at = utc("2026-11-24T23:00:00")  # Tuesday night
    facts = ContactFacts.of("email", "Where is my parcel?")
    assert classify(config(), facts, at).deadline == "2026-11-25T00:00:00.000000Z", "default: from arrival"
    decision = classify(config(BUSINESS), facts, at)
    assert decision.deadline == "2026-11-25T09:00:00.000000Z"
    assert decision.sla_clock == "business_hours"


def test_a_whatsapp_contact_is_due_before_its_reply_window_closes() -> None:
    # Friday 19:00 with a business-hours clock: the SLA would run out on Monday at 08:05, but WhatsApp's
    # 24-hour window closes on Saturday at 19:00; with the default 1 h margin it is due at 18:00.
    at = utc("2026-11-27T19:00:00")
    decision = classify(config(BUSINESS), ContactFacts.of("whatsapp", "hi"), at)
    assert decision.reply_window_closes == "2026-11-28T19:00:00.000000Z"
    assert decision.deadline == "2026-11-28T18:00:00.000000Z"
    assert decision.due_by_window
    wider = config("routing: {sla_clock: business_hours, reply_window_margin: 3h}")
    margin = classify(wider, ContactFacts.of("messenger", "hi"), at)
    assert margin.deadline == "2026-11-28T16:00:00.000000Z"


def test_a_long_rule_sla_on_messenger_is_cut_to_the_window() -> None:
    decision = classify(config(sla="2d"), ContactFacts.of("messenger", "hi"), utc("2026-11-24T10:00:00"))
    assert decision.deadline == "2026-11-25T09:00:00.000000Z"
    email = classify(config(sla="2d"), ContactFacts.of("email", "hi"), utc("2026-11-24T10:00:00"))
    assert not email.due_by_window and email.reply_window_closes is None


def test_explain_shows_the_clock_the_window_and_the_routing() -> None:
    text = explain(config(BUSINESS), ContactFacts.of("whatsapp", "hi"), utc("2026-11-27T19:00:00"))
    assert "SLA clock:    business hours of queue support" in text
    assert "Reply window: closes 2026-11-28T19:00:00.000000Z; due 1h before it" in text
    assert "Routing:      balanced: one priority level per 25 % of the SLA waited" in text
    classic = explain(config("routing: {policy: classic}"), ContactFacts.of("email", "hi"), utc("2026-11-27T19:00:00"))
    assert "SLA clock:    from arrival" in classic
    assert "Routing:      classic" in classic


def test_explain_shows_an_absolute_aging() -> None:
    text = explain(
        config("routing: {aging_seconds: 30s, keep_scarce_skills: false}"),
        ContactFacts.of("email", "hi"),
        utc("2026-11-24T10:00:00"),
    )
    assert "balanced: one priority level per 30s waited; the most proficient agent first" in text


@pytest.mark.parametrize(
    ("routing", "message"),
    [
        ("routing: {policy: fastest}", "policy"),
        ("routing: {sla_clock: office}", "sla_clock"),
        ("routing: {aging_seconds: 0}", "aging_seconds"),
        ("routing: {keep_scarce: true}", "keep_scarce"),
        ("routing: {reply_window_margin: 25h}", "reply_window_margin"),
    ],
)
def test_bad_routing_settings_are_refused_with_the_line(routing: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config(routing)
    text = str(caught.value)
    assert message in text and "deadlines.yaml" in text and ":10" in text


def test_a_business_hours_clock_needs_hours() -> None:
    text = "queues: {default: {routing: {sla_clock: business_hours}}}\nrules: [{name: all, queue: default}]"
    with pytest.raises(ConfigError, match=r"routing\.sla_clock: business_hours needs the queue's hours"):
        parse_config(text, "deadlines.yaml")
