"""Routing rules applied to one contact: each condition, first-match order, out-of-hours handling, SLA and deadline."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.conversations.models import Identity, InboundMessage
from chalicelib.routing.config import RoutingConfig, default_config, parse_config
from chalicelib.routing.rules import ContactFacts, classify, explain, format_duration

# A Wednesday in June, 10:00 UTC = 11:00 London: every queue with hours is open.
OPEN = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)
# The same Wednesday, 20:00 UTC = 21:00 London: every queue with hours is closed.
CLOSED = datetime(2026, 6, 10, 20, 0, tzinfo=UTC)


def config_with(rules: str, queues: str = "  default: {}\n  special: {}\n", extra: str = "") -> RoutingConfig:
    """A config whose first rule(s) are ``rules`` (YAML list items), followed by a catch-all to ``default``."""
    text = f"{extra}queues:\n{queues}rules:\n{rules}  - name: everything else\n    queue: default\n"
    return parse_config(text, source="test.yaml")


def queue_for(config: RoutingConfig, facts: ContactFacts, at: datetime = OPEN) -> str:
    return classify(config, facts, at).queue


def test_channel_condition_one_or_a_list():
    one = config_with("  - name: calls\n    when: {channel: voice}\n    queue: special\n")
    many = config_with("  - name: chats\n    when: {channel: [webchat, whatsapp]}\n    queue: special\n")
    assert queue_for(one, ContactFacts(channel="voice")) == "special"
    assert queue_for(one, ContactFacts(channel="webchat")) == "default"
    assert queue_for(many, ContactFacts(channel="whatsapp")) == "special"
    assert queue_for(many, ContactFacts(channel="email")) == "default"


def test_text_pattern_is_searched_case_insensitively():
    config = config_with("  - name: billing\n    when: {text_matches: 'refund|invoice'}\n    queue: special\n")
    assert queue_for(config, ContactFacts(channel="email", text="Where is my REFUND?")) == "special"
    assert queue_for(config, ContactFacts(channel="email", text="My Invoice is wrong")) == "special"
    assert queue_for(config, ContactFacts(channel="email", text="Where is my parcel?")) == "default"
    assert queue_for(config, ContactFacts(channel="email")) == "default"


def test_an_email_subject_counts_as_text():
    config = config_with("  - name: billing\n    when: {text_matches: invoice}\n    queue: special\n")
    message = InboundMessage(
        channel="email",
        provider="ses",
        provider_message_id="m1",
        identity=Identity("email", "ana@example.com"),
        text="Please see attached.",
        subject="Invoice 2026-114",
        language="es-ES",
    )
    facts = ContactFacts.from_message(message, customer_tier="gold", customer_tags=["Churn-Risk"])
    assert facts.language == "es-ES" and facts.customer_tier == "gold" and facts.customer_tags == {"Churn-Risk"}
    assert queue_for(config, facts) == "special"


@pytest.mark.parametrize(
    ("language", "matches"),
    [("es", True), ("es-MX", True), ("ES_mx", True), ("est", False), ("en", False), (None, False)],
)
def test_language_matches_by_prefix_on_a_subtag_boundary(language, matches):
    config = config_with("  - name: spanish\n    when: {language: es}\n    queue: special\n")
    expected = "special" if matches else "default"
    assert queue_for(config, ContactFacts(channel="webchat", language=language)) == expected


def test_customer_tier_one_or_a_list_case_insensitive():
    config = config_with("  - name: vip\n    when: {customer: {tier: [VIP, gold]}}\n    queue: special\n")
    assert queue_for(config, ContactFacts(channel="sms", customer_tier="vip")) == "special"
    assert queue_for(config, ContactFacts(channel="sms", customer_tier="Gold")) == "special"
    assert queue_for(config, ContactFacts(channel="sms", customer_tier="silver")) == "default"
    assert queue_for(config, ContactFacts(channel="sms")) == "default"


def test_customer_tags_any_and_all():
    any_ = config_with(
        "  - name: at risk\n    when: {customer: {tags_any: [churn-risk, complaint]}}\n    queue: special\n"
    )
    all_ = config_with("  - name: both\n    when: {customer: {tags_all: [b2b, priority]}}\n    queue: special\n")
    assert queue_for(any_, ContactFacts(channel="sms", customer_tags=frozenset({"complaint"}))) == "special"
    assert queue_for(any_, ContactFacts(channel="sms", customer_tags=frozenset({"new"}))) == "default"
    assert queue_for(all_, ContactFacts(channel="sms", customer_tags=frozenset({"B2B", "priority", "x"}))) == "special"
    assert queue_for(all_, ContactFacts(channel="sms", customer_tags=frozenset({"b2b"}))) == "default"


def test_time_condition_on_days_in_the_rules_time_zone():
    config = config_with(
        "  - name: weekend\n    when: {time: {days: [sat, sun]}}\n    queue: special\n",
        extra="timezone: Pacific/Auckland\n",
    )
    facts = ContactFacts(channel="webchat")
    # Friday 2026-06-12 13:00 UTC is Saturday 01:00 in Auckland.
    assert queue_for(config, facts, datetime(2026, 6, 12, 13, 0, tzinfo=UTC)) == "special"
    assert queue_for(config, facts, datetime(2026, 6, 12, 11, 0, tzinfo=UTC)) == "default"


@pytest.mark.parametrize(
    ("hour", "minute", "inside"),
    [(18, 0, True), (23, 30, True), (0, 0, True), (7, 59, True), (8, 0, False), (12, 0, False), (17, 59, False)],
)
def test_time_between_spans_midnight(hour, minute, inside):
    config = config_with(
        "  - name: night\n    when:\n      time: {between: [18:00, 08:00], timezone: Europe/London}\n"
        "    queue: special\n"
    )
    # January: London is UTC, so wall-clock time equals UTC.
    at = datetime(2026, 1, 14, hour, minute, tzinfo=UTC)
    assert queue_for(config, ContactFacts(channel="webchat"), at) == ("special" if inside else "default")


def test_every_condition_of_a_rule_must_hold():
    config = config_with("  - name: spanish calls\n    when: {channel: voice, language: es}\n    queue: special\n")
    assert queue_for(config, ContactFacts(channel="voice", language="es")) == "special"
    assert queue_for(config, ContactFacts(channel="voice", language="en")) == "default"
    assert queue_for(config, ContactFacts(channel="sms", language="es")) == "default"


def test_the_first_matching_rule_wins_and_the_reasons_say_why_earlier_ones_did_not():
    config = config_with(
        "  - name: calls\n    when: {channel: voice}\n    queue: default\n    priority: 5\n"
        "  - name: spanish\n    when: {language: es}\n    queue: special\n    skills: {spanish: 2}\n"
        "  - name: spanish chats\n    when: {language: es, channel: webchat}\n    queue: default\n"
    )
    decision = classify(config, ContactFacts(channel="webchat", language="es-MX"), OPEN)
    assert (decision.rule, decision.queue, decision.skills, decision.priority) == (
        "spanish",
        "special",
        {"spanish": 2},
        0,
    )
    assert decision.reasons[0] == "rule 'calls' did not match: channel webchat is not voice"
    assert decision.reasons[1] == "rule 'spanish' matched: language es-MX matches es"

    voice = classify(config, ContactFacts(channel="voice", language="es"), OPEN)
    assert (voice.rule, voice.priority) == ("calls", 5)


def test_a_contact_matching_nothing_else_gets_the_catch_all():
    config = config_with("  - name: calls\n    when: {channel: voice}\n    queue: special\n")
    decision = classify(config, ContactFacts(channel="email"), OPEN)
    assert (decision.rule, decision.queue, decision.skills, decision.priority) == ("everything else", "default", {}, 0)
    assert "rule 'everything else' matched: no conditions" in decision.reasons


@pytest.mark.parametrize(
    ("channel", "seconds"),
    [
        ("voice", 20),
        ("webchat", 60),
        ("sms", 300),
        ("whatsapp", 300),
        ("telegram", 300),
        ("app", 300),
        ("in_store", 300),
        ("voice_assistant", 300),
        ("messenger", 900),
        ("instagram", 900),
        ("email", 3600),
    ],
)
def test_sla_defaults_per_channel_and_the_deadline(channel, seconds):
    decision = classify(default_config(), ContactFacts(channel=channel), datetime(2026, 6, 10, 10, 0, tzinfo=UTC))
    assert decision.sla_seconds == seconds
    expected = datetime.fromtimestamp(OPEN.timestamp() + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert decision.deadline == expected


def test_a_rules_sla_overrides_the_channel_default():
    config = config_with("  - name: urgent mail\n    when: {channel: email}\n    queue: special\n    sla: 15m\n")
    at = datetime(2026, 6, 10, 10, 0, 0, 250000, tzinfo=UTC)
    decision = classify(config, ContactFacts(channel="email"), at)
    assert decision.sla_seconds == 900
    assert decision.deadline == "2026-06-10T10:15:00.250000Z"


def test_decision_carries_the_rules_escalation_steps():
    decision = classify(default_config(), ContactFacts(channel="email", text="refund please"), OPEN)
    assert decision.rule == "billing questions"
    assert (decision.queue, decision.skills) == ("billing", {"billing": 3})
    assert [step.after_seconds for step in decision.escalation] == [600, 1200, 2700]
    assert decision.escalation[0].set_skills == {"billing": 2}
    assert decision.escalation[1].drop_skills == ("billing",) and decision.escalation[1].add_queues == ("support",)


def test_an_open_queue_has_no_out_of_hours_action():
    decision = classify(default_config(), ContactFacts(channel="sms", language="es"), OPEN)
    assert (decision.queue, decision.queue_open, decision.out_of_hours) == ("support", True, None)


def test_out_of_hours_reply_keeps_the_contact_in_its_queue():
    decision = classify(default_config(), ContactFacts(channel="sms", language="es"), CLOSED)
    assert (decision.queue, decision.queue_open) == ("support", False)
    assert decision.out_of_hours is not None and decision.out_of_hours.action == "reply"
    assert "Monday to Friday" in decision.out_of_hours.message
    assert any("queue support is closed (Wed 21:00 Europe/London)" in reason for reason in decision.reasons)


def test_out_of_hours_overflow_moves_the_contact_and_says_so():
    # 17:30 London: the VIP desk (09-17) is closed, support (08-18) is open.
    at = datetime(2026, 6, 10, 16, 30, tzinfo=UTC)
    decision = classify(default_config(), ContactFacts(channel="webchat", customer_tier="vip"), at)
    assert (decision.rule, decision.queue, decision.queue_open, decision.out_of_hours) == (
        "vip customers",
        "support",
        True,
        None,
    )
    assert any("queue vip is closed" in r and "overflows to support" in r for r in decision.reasons)


def test_overflow_to_a_closed_queue_applies_that_queues_out_of_hours():
    decision = classify(default_config(), ContactFacts(channel="webchat", customer_tier="vip"), CLOSED)
    assert (decision.queue, decision.queue_open) == ("support", False)
    assert decision.out_of_hours is not None and decision.out_of_hours.action == "reply"


def test_explain_shows_every_check_the_decision_and_the_escalation_times():
    text = explain(default_config(), ContactFacts(channel="email", text="Refund?"), OPEN)
    assert "1. vip customers: no match" in text
    assert "FAIL  customer tier none is not vip" in text
    assert "2. billing questions: MATCH" in text
    assert "pass  text matches /refund|invoice|billing/" in text
    assert "3. spanish speakers" not in text  # rules after the match are not tried
    assert "Queue:        billing, open now (always open)" in text
    assert "Skills:       billing >= 3" in text
    assert "SLA:          1h (the email default); deadline 2026-06-10T11:00:00.000000Z" in text
    assert "after 10m, at 2026-06-10T10:10:00.000000Z: relax billing to >= 2" in text
    assert "after 45m, at 2026-06-10T10:45:00.000000Z: priority +2 (now 2)" in text


def test_explain_a_closed_queue_says_when_it_opens_and_what_the_customer_is_told():
    text = explain(default_config(), ContactFacts(channel="sms", language="es"), CLOSED)
    assert "Queue:        support, closed now; opens Thu 2026-06-11 08:00 BST" in text
    assert "Out of hours: reply 'Thanks for your message." in text


def test_escalation_before_breach_is_timed_from_the_deadline():
    text = explain(default_config(), ContactFacts(channel="voice"), OPEN)
    assert "Priority:     5" in text
    assert "5s before the deadline, at 2026-06-10T10:00:15.000000Z: priority +2 (now 7)" in text


def test_a_moment_without_a_time_zone_is_refused():
    with pytest.raises(ValueError, match="time zone"):
        classify(default_config(), ContactFacts(channel="email"), datetime(2026, 6, 10, 10, 0))


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (20, "20s"), (90, "1m30s"), (3600, "1h"), (604800, "7d")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
