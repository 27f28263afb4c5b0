"""The router as Lambda runs it: ``routing.router.Router`` wired to DynamoDB, SQS and API Gateway.

The handlers in ``app.py`` and the agent service call these functions; each builds the router over the AWS
adapters (cheap: the adapters hold no state, the clients are cached in ``store.aws``) so that settings and
endpoints are read as they are now. The simulator builds the same router over ``routing.memory`` instead.
"""

from __future__ import annotations

import uuid
from typing import Any

from chalicelib import clock, metrics
from chalicelib.notify import push
from chalicelib.routing.config import RoutingConfig, current_config
from chalicelib.routing.events import ConversationMessage, EscalationDue, OfferTimeout, ReconnectGraceExpired
from chalicelib.routing.events import RoutingEvent as RoutingEvent
from chalicelib.routing.model import Agent, Contact, Offer
from chalicelib.routing.ports import Settings
from chalicelib.routing.router import (
    POOL_PAGES as _POOL_PAGES,
)
from chalicelib.routing.router import (
    Outcome,
    Router,
    apply_step,
    expected_wait_seconds,
    offer_payload,
    relaxed_skills,
    requirements,
    step_due,
)
from chalicelib.selfservice import KnowledgeBaseDesk
from chalicelib.settings import get_settings
from chalicelib.store import system_messages
from chalicelib.store.queue import SqsBus
from chalicelib.store.router_store import DynamoRoutingStore

__all__ = [
    "_POOL_PAGES",
    "Outcome",
    "apply_step",
    "expected_wait_seconds",
    "offer_payload",
    "relaxed_skills",
    "requirements",
    "router",
    "step_due",
]


class WebSocketNotifier:
    """Pushes through the API Gateway management API to the agent's open connections."""

    def to_agent(self, agent_id: str, payload: dict[str, Any]) -> int:
        return push.to_agent(agent_id, payload)


class OutboxMessages:
    """System messages through the transactional outbox (recorded pending-send, then queued)."""

    def reaches(self, channel: str) -> bool:
        return system_messages.reaches(channel)

    def prepare(
        self, conversation_id: str, customer_id: str, channel: str, text: str, kind: str, now: str
    ) -> dict[str, Any]:
        return system_messages.prepare(conversation_id, customer_id, channel, text, kind, now)

    def dispatch(self, message: dict[str, Any]) -> None:
        system_messages.dispatch(message)


class EmfMetrics:
    """CloudWatch embedded-metric-format metrics (``chalicelib.metrics``)."""

    def wait_until_offer(self, seconds: float, queue: str, channel: str) -> None:
        metrics.wait_until_offer(seconds, queue, channel)

    def wait_until_accept(self, seconds: float, queue: str, channel: str) -> None:
        metrics.wait_until_accept(seconds, queue, channel)

    def sla(self, met: bool, queue: str, channel: str) -> None:
        metrics.sla(met, queue, channel)

    def abandoned(self, seconds: float, queue: str, channel: str) -> None:
        metrics.abandoned(seconds, queue, channel)


class SystemClock:
    def now(self) -> str:
        return clock.now_iso()


def new_offer_id() -> str:
    return "off_" + uuid.uuid4().hex[:20]


def router() -> Router:
    """The router over the AWS adapters, with the settings as they are now."""
    return Router(
        store=DynamoRoutingStore(),
        bus=SqsBus(),
        notifier=WebSocketNotifier(),
        messages=OutboxMessages(),
        metrics=EmfMetrics(),
        clock=SystemClock(),
        new_id=new_offer_id,
        config=current_config,
        self_service=KnowledgeBaseDesk(),
        settings=Settings(
            reconnect_grace_seconds=get_settings().reconnect_grace_seconds, sla_at_join=frozenset({"voice"})
        ),
    )


# --- the router's operations, as the handlers and tests call them ------------------------------------


def handle(event: RoutingEvent, now: str | None = None, redelivered: bool = False) -> Outcome:
    return router().handle(event, now, redelivered)


def sweep(now: str | None = None) -> Outcome:
    return router().sweep(now)


def on_conversation_message(event: ConversationMessage, now: str) -> Outcome:
    return router().on_conversation_message(event, now)


def _open_contact(
    event: ConversationMessage, now: str, reopening: Contact | None = None
) -> tuple[Contact, Offer | None, bool]:
    return router()._open_contact(event, now, reopening)


def plan_offer(contact_id: str, now: str, known: Contact | None = None) -> Offer | None:
    return router().plan_offer(contact_id, now, known)


def plan_for_agent(agent_id: str, now: str) -> Offer | None:
    return router().plan_for_agent(agent_id, now)


def _pool(contact: Contact, queue: str, config: RoutingConfig) -> list[Agent]:
    return router()._pool(contact, queue, config)


def commit_offer(offer: Offer) -> None:
    router().commit_offer(offer)


def offer_contact(contact_id: str, now: str, known: Contact | None = None) -> Offer | None:
    return router().offer_contact(contact_id, now, known)


def on_agent_freed(agent_id: str, now: str) -> Outcome:
    return router().on_agent_freed(agent_id, now)


def _announce(offer: Offer, now: str) -> None:
    router()._announce(offer, now)


def on_timer(event: OfferTimeout | EscalationDue | ReconnectGraceExpired, now: str) -> Outcome:
    return router().on_timer(event, now)


def expire_offer(contact_id: str, offer_id: str, now: str) -> bool:
    return router().expire_offer(contact_id, offer_id, now)


def escalate(contact_id: str, step: int, now: str) -> bool:
    return router().escalate(contact_id, step, now)


def acknowledge(contact_id: str, now: str) -> bool:
    return router().acknowledge(contact_id, now)


def _mark_acknowledged(contact: Contact, now: str, text: str, kind: str) -> bool:
    return router()._mark_acknowledged(contact, now, text, kind)
