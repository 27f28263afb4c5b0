"""What a new call hears first: the queue as always, a voicemail greeting, or a question (issue 13 §5, §6).

The answer to "a call comes in" is due at once, before the router has seen the call, so the routing rules are
applied here to the call as the router would see it (``rules.classify``: channel ``voice``, the customer's tier,
tags and language when they are known). When the decision sends the call to voicemail
(``chalicelib.voice.voicemail``) or asks a question first (``chalicelib.voice.speech``), the call is answered with
that TwiML and nothing is stored yet: what the caller leaves or says is stored then, and routed from there.

A config that never sends calls to voicemail and asks nothing costs no request here: the call is queued as before.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from chalicelib import clock
from chalicelib.conversations.models import InboundMessage
from chalicelib.routing.config import RoutingConfig, current_config
from chalicelib.routing.rules import ContactFacts, Decision, classify

logger = Logger(service="switchboard", child=True)


def handles_calls(config: RoutingConfig) -> bool:
    """Whether any rule or queue of ``config`` can answer a call other than by queueing it."""
    return any(rule.voicemail or rule.ask for rule in config.rules) or any(
        queue.ask is not None or (queue.out_of_hours is not None and queue.out_of_hours.action == "voicemail")
        for queue in config.queues.values()
    )


def decide(message: InboundMessage) -> Decision | None:
    """The rules' decision for this call now, or None when the config only ever queues calls."""
    config = current_config()
    if not handles_calls(config):
        return None
    from chalicelib.store import conversations

    customer: dict = {}
    found = conversations.customers_of(message.identities)
    customer_id = found.get(message.identity.key) or next(iter(found.values()), None)
    if customer_id:
        customer = conversations.get_customer(customer_id) or {}
    facts = ContactFacts.of(
        message.channel,
        message.text,
        None,
        message.language or customer.get("language"),
        customer.get("tier"),
        customer.get("tags", ()),
    )
    return classify(config, facts, clock.parse_iso(clock.now_iso()))


def first_answer(message: InboundMessage, base: str) -> str | None:
    """The TwiML a new call gets instead of the queue, or None: queue it as always."""
    decision = decide(message)
    if decision is None:
        return None
    if decision.voicemail:
        from chalicelib.voice import voicemail

        logger.info("call sent to voicemail", extra={"rule": decision.rule, "queue": decision.queue})
        return voicemail.record_twiml(decision.voicemail, base)
    if decision.ask:
        from chalicelib.voice import speech

        logger.info("caller asked first", extra={"rule": decision.rule})
        speech.asking(message.provider_message_id, decision.queue)
        return speech.question_twiml(decision.ask, base)
    return None
