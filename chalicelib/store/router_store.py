"""The router's store port (``routing.ports.RoutingStore``) on DynamoDB: routing state in the routing table,
customers and conversations in the data table (``store.routing``, ``store.conversations``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chalicelib.routing.model import Agent, Contact
from chalicelib.routing.ports import (
    Assigned,
    Change,
    Closed,
    Cursor,
    CustomerMessage,
    Effect,
    Lifecycle,
    OfferDecision,
)
from chalicelib.store import conversations, system_messages
from chalicelib.store import routing as store

AFTER_SAVE = Assigned | Closed  # written by plain, idempotent updates once the save went through


def _after_save(effect: Effect) -> bool:
    return isinstance(effect, AFTER_SAVE) or (isinstance(effect, Lifecycle) and effect.once is not None)


def effects_actions(effects: Sequence[Effect]) -> list[dict[str, Any]]:
    """The actions of every effect of one save: a contact record's events merged into one update."""
    lifecycles = [e for e in effects if isinstance(e, Lifecycle) and not _after_save(e)]
    others = [a for e in effects if not isinstance(e, Lifecycle) and not _after_save(e) for a in effect_actions(e)]
    return [*others, *store.lifecycle_actions(lifecycles)]


def apply_after_save(effects: Sequence[Effect]) -> None:
    """The effects a save writes after its all-or-nothing write (``ports.Assigned``, ``ports.Closed``, a
    ``ports.Lifecycle`` with ``once``): plain updates, each idempotent."""
    for effect in effects:
        if isinstance(effect, Assigned):
            store.record_assignment(effect.contact)
        elif isinstance(effect, Closed):
            store.record_closing(effect.contact, effect.customer_id)
        elif isinstance(effect, Lifecycle) and effect.once is not None:
            store.record_once(effect)


def effect_actions(effect: Effect) -> list[dict[str, Any]]:
    """The transaction actions that write ``effect`` beside the contacts and agents it goes with."""
    if isinstance(effect, CustomerMessage):
        return [system_messages.record_action(effect.message)]
    if isinstance(effect, OfferDecision):
        return [store.decision_action(effect)]
    if isinstance(effect, Lifecycle):
        return store.lifecycle_actions([effect])
    raise TypeError(f"unknown effect {type(effect).__name__}")


class DynamoRoutingStore:
    """Routing state as DynamoDB keeps it: bounded index pages, versioned transactions."""

    def get_contact(self, contact_id: str) -> Contact | None:
        return store.get_contact(contact_id)

    def get_agent(self, agent_id: str) -> Agent | None:
        return store.get_agent(agent_id)

    def get_customer(self, customer_id: str) -> dict[str, Any] | None:
        return conversations.get_customer(customer_id)

    def customer_of_conversation(self, contact: Contact) -> str:
        """The conversation's customer now (a merge may have moved it), else the contact's."""
        return str((conversations.get_conversation(contact.contact_id) or {}).get("customer_id", contact.customer_id))

    def pool(
        self, queue: str, skill: str | None = None, min_level: int = 0, after: Cursor | None = None
    ) -> tuple[list[Agent], Cursor | None]:
        return store.pool(queue, skill, min_level, after=after)

    def contacts_needing(self, queue: str, skills: Mapping[str, int]) -> list[Contact]:
        return store.contacts_needing(queue, skills)

    def waiting_contacts(self, queue: str, limit: int) -> list[Contact]:
        return store.waiting_contacts(queue, limit=limit)

    def work_of(self, agent_id: str) -> list[Contact]:
        return store.work_of(agent_id)

    def expired_offers(self, now: str) -> list[Contact]:
        return store.expired_offers(now)

    def disconnected_before(self, moment: str) -> list[tuple[str, str]]:
        return store.disconnected_before(moment)

    def connections_of(self, agent_id: str) -> list[str]:
        return store.connections_of(agent_id)

    def place_in_queue(self, contact: Contact, queue: str) -> tuple[int, dict[str, Any]]:
        return store.place_in_queue(contact, queue)

    def queue_stats(self, queue: str) -> dict[str, Any]:
        return store.queue_stats(queue)

    def create_contact(
        self,
        before: Contact | None,
        contact: Contact,
        effects: Sequence[Effect] = (),
        agents: Sequence[Change] = (),
    ) -> None:
        store.create_contact(before, contact, effects_actions(effects), agents=agents)
        apply_after_save(effects)

    def save(
        self, contacts: Sequence[Change] = (), agents: Sequence[Change] = (), effects: Sequence[Effect] = ()
    ) -> None:
        actions = effects_actions(effects)
        if contacts or agents or actions:
            store.save(contacts=contacts, agents=agents, extra=actions)
        apply_after_save(effects)

    def record_started(self, queue: str, sla_met: bool | None) -> None:
        store.record_started(queue, sla_met)

    def record_abandoned(self, queue: str, waited_seconds: float = 0.0) -> None:
        store.record_abandoned(queue, waited_seconds)

    def record_handled(self, queue: str, handle_seconds: float) -> None:
        store.record_handled(queue, handle_seconds)

    def forget_open_conversation(self, customer_id: str, contact_id: str) -> None:
        conversations.forget_open_conversation(customer_id, contact_id)

    def record_unstarted(self, queue: str, sla_met: bool | None) -> None:
        store.record_unstarted(queue, sla_met)

    def forget_assignment(self, contact_id: str, agent_id: str) -> None:
        store.forget_assignment(contact_id, agent_id)

    # --- what was recorded (reports, replay, explain-contact) --------------------------------------------

    def decisions_of(self, contact_id: str) -> list[dict[str, Any]]:
        return store.decisions_of(contact_id)

    def records_of(self, contact_id: str) -> list[dict[str, Any]]:
        return store.records_of(contact_id)

    def records_between(self, start: str, end: str) -> list[dict[str, Any]]:
        return list(store.records_between(start, end))
