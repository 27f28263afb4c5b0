"""Self-service in routing.yaml: per rule or queue, which channels and languages the bot answers first on, how
sure it must be (min_coverage) and whether it answers or only suggests; off unless configured."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.routing.config import ConfigError, default_config, parse_config
from chalicelib.routing.rules import ContactFacts, classify, explain

DAY = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)

BASE = """
queues:
  default: {}
  shop:
    self_service: {channels: [webchat], languages: [en, de], min_coverage: 0.7}
rules:
  - name: orders
    when: {text_matches: order}
    queue: default
    self_service: {channels: webchat, mode: suggest}
  - name: no bot for vips
    when: {customer: {tier: vip}}
    queue: shop
    self_service: false
  - name: everything else
    queue: shop
"""


def test_self_service_is_off_unless_configured():
    config = default_config()
    for channel in ("webchat", "sms", "whatsapp", "email"):
        assert classify(config, ContactFacts.of(channel, "What are your opening hours?"), DAY).self_service is None
    minimal = parse_config("queues:\n  default: {}\nrules:\n  - name: all\n    queue: default\n")
    assert classify(minimal, ContactFacts.of("webchat", "hi"), DAY).self_service is None


def test_a_queue_turns_it_on_for_its_channels_and_languages():
    config = parse_config(BASE)
    chat = classify(config, ContactFacts.of("webchat", "opening hours?", language="de-DE"), DAY).self_service
    assert chat is not None
    assert (chat.channels, chat.languages, chat.min_coverage, chat.mode) == (
        ("webchat",),
        ("en", "de"),
        0.7,
        "answer",
    )
    assert classify(config, ContactFacts.of("webchat", "hi"), DAY).self_service is not None, "unknown language: try"
    assert classify(config, ContactFacts.of("whatsapp", "hi"), DAY).self_service is None, "not its channel"
    spanish = ContactFacts.of("webchat", "hola", language="es")
    assert classify(config, spanish, DAY).self_service is None, "not its language"


def test_a_rules_own_setting_wins_over_its_queues_and_false_turns_it_off():
    config = parse_config(BASE)
    order = classify(config, ContactFacts.of("webchat", "my order"), DAY).self_service
    assert order is not None and order.mode == "suggest" and order.min_coverage is None
    assert classify(config, ContactFacts.of("sms", "my order"), DAY).self_service is None
    vip = ContactFacts.of("webchat", "opening hours?", customer_tier="vip")
    assert classify(config, vip, DAY).self_service is None


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        (
            "channels: [webchat]",
            "channels: [webchat, fax]",
            "queues.shop.self_service.channels",
            "unknown channel",
        ),
        ("channels: [webchat]", "channels: [messenger]", "queues.shop.self_service.channels", "self-service answers"),
        ("channels: [webchat]", "channels: []", "queues.shop.self_service.channels", ""),
        ("min_coverage: 0.7", "min_coverage: 1.5", "queues.shop.self_service.min_coverage", ""),
        ("min_coverage: 0.7", "min_coverage: 0", "queues.shop.self_service.min_coverage", ""),
        ("min_coverage: 0.7", "mode: reply", "queues.shop.self_service.mode", ""),
        ("languages: [en, de]", "languages: [fr]", "queues.shop.self_service.languages", "no article"),
        ("languages: [en, de]", "langs: [en]", "queues.shop.self_service.langs", ""),
        ("    self_service: false\n", "    self_service: true\n", "rules[1].self_service", ""),
    ],
)
def test_mistakes_are_named_with_their_field_and_line(old, new, field, message):
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE.replace(old, new, 1))
    problems = caught.value.problems
    assert any(p.field.startswith(field) and message in p.message for p in problems), str(caught.value)
    assert all(p.line for p in problems if p.field.startswith(field)), str(caught.value)


def test_rules_explain_says_whether_the_bot_answers_first():
    config = parse_config(BASE)
    text = explain(config, ContactFacts.of("webchat", "opening hours?"), DAY)
    assert "Self-service: answers first on webchat (queue shop; min coverage 0.7); " in text
    suggest = explain(config, ContactFacts.of("webchat", "my order"), DAY)
    assert "Self-service: suggests articles only (rule 'orders'; min coverage kb.yaml's)" in suggest
    assert "Self-service: off" in explain(config, ContactFacts.of("sms", "hello"), DAY)


def test_rules_check_lists_where_self_service_runs(tmp_path, capsys):
    from chalicelib.cli import main

    path = tmp_path / "routing.yaml"
    path.write_text(BASE, encoding="utf-8")
    assert main(["rules", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "self-service: queue shop answers on webchat (en, de; min coverage 0.7)" in out
    assert "self-service: rule 'orders' suggests on webchat (any language; min coverage kb.yaml's)" in out
    assert "self-service: rule 'no bot for vips' off" in out


@pytest.mark.parametrize("channel", ["whatsapp", "telegram", "email"])
def test_whatsapp_telegram_and_email_are_accepted_and_explained_with_their_form(channel):
    config = parse_config(BASE.replace("channels: [webchat]", f"channels: [webchat, {channel}]", 1))
    chosen = classify(config, ContactFacts.of(channel, "opening hours?"), DAY).self_service
    assert chosen is not None and channel in chosen.channels
    text = explain(config, ContactFacts.of(channel, "opening hours?"), DAY)
    form = {"whatsapp": "two reply buttons", "telegram": "reply 1 or 2 (also as buttons)", "email": "reply YES"}
    assert f"Self-service: answers first on {channel} (queue shop; min coverage 0.7); " in text
    assert form[channel] in text
