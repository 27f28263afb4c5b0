"""The router: turns routing events into offers, with the I/O around the pure matcher.

Offering is split into ``plan_offer`` (reads, decides) and ``commit_offer``
(one conditional transaction). Between them anything may change; the commit
then fails and the router plans again from fresh state. Tests interleave two
routers step by step through exactly these two calls.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from aws_lambda_powertools import Logger

from chalicelib import clock
from chalicelib.notify import push
from chalicelib.routing import matching
from chalicelib.routing.events import AgentFreed, ContactRequeued, ConversationMessage, RoutingEvent
from chalicelib.routing.model import DEFAULT_QUEUE, Agent, Contact, ContactState, Offer
from chalicelib.settings import get_settings
from chalicelib.store import conversations as conversation_store
from chalicelib.store import queue
from chalicelib.store import routing as store
from chalicelib.store.dynamo import TransactionConflict

logger = Logger(service="switchboard", child=True)

_ATTEMPTS = 5
# How many contacts a freed agent may take in one event (bounded work per event).
_MAX_OFFERS_PER_AGENT_EVENT = 10


@dataclass(frozen=True)
class Outcome:
    """What handling one event did (for logs and tests)."""

    offers: tuple[Offer, ...] = ()
    note: str = ""


def handle(event: RoutingEvent, now: str | None = None) -> Outcome:
    """Handle one routing event; safe to run again for the same event."""
    now = now or clock.now_iso()
    if isinstance(event, ConversationMessage):
        return on_conversation_message(event, now)
    if isinstance(event, ContactRequeued):
        offer = offer_contact(event.contact_id, now)
        return Outcome(offers=(offer,) if offer else (), note="requeued")
    if isinstance(event, AgentFreed):
        return on_agent_freed(event.agent_id, now)
    raise TypeError(f"unhandled routing event {type(event).__name__}")


def on_conversation_message(event: ConversationMessage, now: str) -> Outcome:
    contact = store.get_contact(event.conversation_id)
    if contact is None or (
        contact.state is ContactState.CLOSED and contact.closed_at and event.received_at > contact.closed_at
    ):
        contact = _open_contact(event, reopening=contact)
    if contact.state is ContactState.QUEUED:
        offer = offer_contact(contact.contact_id, now, known=contact)
        return Outcome(offers=(offer,) if offer else (), note="queued")
    if contact.state is ContactState.OFFERED and contact.offered_to:
        if event.received_at == contact.enqueued_at:
            # The event that opened the contact, redelivered: its push may never have happened.
            # Offers are idempotent by offer_id on the agent's side.
            push.to_agent(contact.offered_to, offer_payload(contact))
        return Outcome(note="already offered")
    if contact.state is ContactState.ASSIGNED and contact.assigned_to:
        push.to_agent(
            contact.assigned_to,
            {"type": "message", "contact_id": contact.contact_id, "message_id": event.message_id},
        )
        return Outcome(note="told the assigned agent")
    return Outcome(note=f"contact is {contact.state.value}")


def _open_contact(event: ConversationMessage, reopening: Contact | None = None) -> Contact:
    """A queued contact for the conversation: new, or a closed one the customer wrote to again (an e-mail reply)."""
    customer = conversation_store.get_customer(event.customer_id) or {}
    contact = Contact(
        contact_id=event.conversation_id,
        customer_id=event.customer_id,
        channel=event.channel,
        enqueued_at=event.received_at,
        customer_name=customer.get("name"),
        version=reopening.version + 1 if reopening else 0,
    )
    try:
        store.create_contact(contact)
    except TransactionConflict:
        found = store.get_contact(event.conversation_id)
        if found is None:
            raise
        return found
    return contact


def plan_offer(contact_id: str, now: str, known: Contact | None = None) -> Offer | None:
    """Decide who gets a queued contact, from fresh reads; None if it is not queued or nobody can take it.

    ``known`` is the contact as the caller just wrote it, saving a read; a stale one only makes the commit fail.
    """
    contact = known or store.get_contact(contact_id)
    if contact is None or contact.state is not ContactState.QUEUED:
        return None
    agent = matching.choose_agent(contact, store.available_agents(contact.queue))
    if agent is None:
        return None
    return _offer(contact, agent, now)


def _offer(contact: Contact, agent: Agent, now: str) -> Offer:
    offer_id = "off_" + uuid.uuid4().hex[:20]
    expires_at = clock.plus_seconds(now, get_settings().offer_timeout_seconds)
    return Offer(
        offer_id=offer_id,
        contact=contact.offered(agent.agent_id, offer_id, now, expires_at),
        agent=agent.reserved(contact.channel),
        expires_at=expires_at,
    )


def commit_offer(offer: Offer) -> None:
    """Reserve the agent's capacity and mark the contact offered, atomically; ``TransactionConflict`` if stale."""
    store.save(offer.contact, offer.agent)


def offer_contact(contact_id: str, now: str, known: Contact | None = None) -> Offer | None:
    """Offer a queued contact to the best agent, planning again whenever another router got there first."""
    for attempt in range(_ATTEMPTS):
        offer = plan_offer(contact_id, now, known if attempt == 0 else None)
        if offer is None:
            return None
        try:
            commit_offer(offer)
        except TransactionConflict:
            continue
        _announce(offer)
        return offer
    logger.warning("contact stays queued after repeated conflicts", extra={"contact_id": contact_id})
    return None


def plan_for_agent(agent_id: str, now: str) -> Offer | None:
    """Decide which waiting contact a freed agent takes, from fresh reads; None if none fits or they are busy."""
    agent = store.get_agent(agent_id)
    if agent is None or not agent.takes_work:
        return None
    contact = matching.choose_contact(agent, store.waiting_contacts(agent.queues[0]))
    if contact is None:
        return None
    return _offer(contact, agent, now)


def on_agent_freed(agent_id: str, now: str) -> Outcome:
    """Give a freed agent the best waiting contacts while they have room."""
    offers: list[Offer] = []
    conflicts = 0
    while len(offers) < _MAX_OFFERS_PER_AGENT_EVENT and conflicts < _ATTEMPTS:
        offer = plan_for_agent(agent_id, now)
        if offer is None:
            break
        try:
            commit_offer(offer)
        except TransactionConflict:
            conflicts += 1
            continue
        _announce(offer)
        offers.append(offer)
    return Outcome(offers=tuple(offers), note="agent freed")


def _announce(offer: Offer) -> None:
    logger.info(
        "offered",
        extra={"contact_id": offer.contact.contact_id, "agent_id": offer.agent.agent_id, "offer_id": offer.offer_id},
    )
    push.to_agent(offer.agent.agent_id, offer_payload(offer.contact))


def offer_payload(contact: Contact) -> dict[str, object]:
    """What the agent's console receives for an offer."""
    return {
        "type": "offer",
        "offer_id": contact.offer_id,
        "contact_id": contact.contact_id,
        "conversation_id": contact.contact_id,
        "channel": contact.channel,
        "queue": contact.queue,
        "customer": {"customer_id": contact.customer_id, "name": contact.customer_name},
        "enqueued_at": contact.enqueued_at,
        "offered_at": contact.offered_at,
        "expires_at": contact.offer_expires_at,
    }


def expire_offers(now: str) -> list[str]:
    """Put contacts whose offer timed out back in the queue (never to the same agent) and free the agents."""
    requeued: list[str] = []
    for contact in store.expired_offers(now):
        if contact.offered_to is None or contact.offer_id is None:
            continue
        agent = store.get_agent(contact.offered_to)
        try:
            store.save(
                contact.requeued(contact.offered_to),
                agent.released(contact.channel, now) if agent else None,
            )
        except TransactionConflict:
            continue  # accepted or changed meanwhile; the next sweep looks again
        if agent:
            push.to_agent(
                agent.agent_id, {"type": "offer_withdrawn", "offer_id": contact.offer_id, "reason": "expired"}
            )
        queue.publish(
            ContactRequeued(contact.contact_id, contact.offer_id),
            AgentFreed(contact.offered_to, cause=f"expired-{contact.offer_id}"),
        )
        requeued.append(contact.contact_id)
    return requeued


def sweep(now: str | None = None) -> Outcome:
    """The safety net that runs every minute: expire stale offers, then offer what waits to whoever can take it."""
    now = now or clock.now_iso()
    expire_offers(now)
    offers: list[Offer] = []
    for contact in store.waiting_contacts(DEFAULT_QUEUE):
        offer = offer_contact(contact.contact_id, now)
        if offer:
            offers.append(offer)
    return Outcome(offers=tuple(offers), note="sweep")
