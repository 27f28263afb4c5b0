"""In-memory adapters for the router's ports: the simulator's world and the fast engine tests.

``MemoryStore`` keeps the same promises as the DynamoDB store: every save is all-or-nothing and conditioned
on the versions read (a stale one raises ``TransactionConflict``), agents are read in the pools' order (the
most proficient in the key skill first, then the least loaded, then the longest idle) and waiting contacts
in the waiting indexes' order (highest priority, earliest deadline, longest waiting), a page at a time.
So a decision made here is the decision Lambda makes on the same state.
"""

from __future__ import annotations

import heapq
import itertools
from bisect import bisect_left, insort
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from chalicelib import clock
from chalicelib.routing.config import RoutingConfig
from chalicelib.routing.events import RoutingEvent
from chalicelib.routing.matching import requirement_key as _requirement_key
from chalicelib.routing.matching import waiting_sort_key
from chalicelib.routing.model import Agent, Contact, ContactState
from chalicelib.routing.ports import (
    Assigned,
    Change,
    Closed,
    Cursor,
    CustomerMessage,
    Effect,
    Lifecycle,
    OfferDecision,
    Settings,
)
from chalicelib.routing.records import SET_ONCE
from chalicelib.routing.router import Router
from chalicelib.store.retry import TransactionConflict

PAGE = 25  # as the DynamoDB store's index pages


_requirement_keys: dict[tuple[tuple[str, int], ...], str] = {}


def requirement_key(skills: Mapping[str, int]) -> str:
    """``matching.requirement_key``, remembered: a world has a handful of skill sets and asks millions of times."""
    items = tuple(skills.items())
    found = _requirement_keys.get(items)
    if found is None:
        found = _requirement_keys[items] = _requirement_key(skills)
    return found


def _pool_order(agent: Agent, skill: str | None) -> tuple[Any, ...]:
    level = agent.skills.get(skill, 0) if skill else 0
    return (-level, agent.load_permille, agent.idle_since, agent.agent_id)


class MemoryStore:
    """Agents, contacts, customers and queue statistics in dictionaries, with the DynamoDB store's semantics."""

    def __init__(self) -> None:
        self.contacts: dict[str, Contact] = {}
        self.agents: dict[str, Agent] = {}
        self.customers: dict[str, dict[str, Any]] = {}
        self.stats: defaultdict[str, dict[str, Any]] = defaultdict(dict)
        self.messages: list[dict[str, Any]] = []  # system messages recorded with a contact
        self.disconnected: set[str] = set()  # agents whose console is closed (no connection)
        self._taking_work: defaultdict[str, set[str]] = defaultdict(set)  # queue -> agent ids
        self._waiting: defaultdict[str, list[tuple[str, str]]] = defaultdict(list)  # queue -> sorted keys
        self._needing: defaultdict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        self._work: defaultdict[str, set[str]] = defaultdict(set)  # agent -> contact ids offered/assigned
        self._offered: set[str] = set()
        # Contact records by (contact id, arrival), and each contact's decision records, in the order made.
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self.decisions: defaultdict[str, list[OfferDecision]] = defaultdict(list)
        self._written_once: set[tuple[str, str, str]] = set()  # (contact, record, ``Lifecycle.once``)
        self.reads = 0  # how many reads routing made (a page counts as one), as the DynamoDB store's requests

    # --- setting up a world -----------------------------------------------------------------------

    def add_agent(self, agent: Agent) -> None:
        self.save(agents=[(None, agent)])

    def add_customer(self, customer_id: str, **profile: Any) -> None:
        self.customers[customer_id] = {"customer_id": customer_id, **profile}

    # --- reads ------------------------------------------------------------------------------------

    def get_contact(self, contact_id: str) -> Contact | None:
        self.reads += 1
        return self.contacts.get(contact_id)

    def get_agent(self, agent_id: str) -> Agent | None:
        self.reads += 1
        return self.agents.get(agent_id)

    def get_customer(self, customer_id: str) -> dict[str, Any] | None:
        self.reads += 1
        found = self.customers.get(customer_id)
        return dict(found) if found else None

    def customer_of_conversation(self, contact: Contact) -> str:
        return contact.customer_id

    def pool(
        self, queue: str, skill: str | None = None, min_level: int = 0, after: Cursor | None = None
    ) -> tuple[list[Agent], Cursor | None]:
        self.reads += 1
        agents = [self.agents[a] for a in self._taking_work.get(queue, ())]
        if skill is not None:
            agents = [a for a in agents if skill in a.skills and a.skills[skill] >= min_level]
        agents.sort(key=lambda a: _pool_order(a, skill))
        start = int(after or 0)
        page = agents[start : start + PAGE]
        return page, (start + PAGE if start + PAGE < len(agents) else None)

    def contacts_needing(self, queue: str, skills: Mapping[str, int]) -> list[Contact]:
        self.reads += 1
        return [self.contacts[c] for _, c in self._needing.get((queue, requirement_key(skills)), [])[:PAGE]]

    def waiting_contacts(self, queue: str, limit: int) -> list[Contact]:
        self.reads += 1
        return [self.contacts[c] for _, c in self._waiting.get(queue, [])[:limit]]

    def work_of(self, agent_id: str) -> list[Contact]:
        self.reads += 1
        return sorted(
            (self.contacts[c] for c in self._work.get(agent_id, ())), key=lambda c: (c.enqueued_at, c.contact_id)
        )

    def expired_offers(self, now: str) -> list[Contact]:
        self.reads += 1
        found = [self.contacts[c] for c in self._offered]
        expired = (c for c in found if (c.offer_expires_at or "") < now)
        return sorted(expired, key=lambda c: (c.offer_expires_at or "", c.contact_id))

    def disconnected_before(self, moment: str) -> list[tuple[str, str]]:
        self.reads += 1
        found = [(a.agent_id, a.disconnected_at) for a in self.agents.values() if a.disconnected_at]
        return sorted(((a, at) for a, at in found if at < moment), key=lambda pair: (pair[1], pair[0]))

    def connections_of(self, agent_id: str) -> list[str]:
        return [] if agent_id in self.disconnected else [f"memory-{agent_id}"]

    def place_in_queue(self, contact: Contact, queue: str) -> tuple[int, dict[str, Any]]:
        self.reads += 1
        ahead = bisect_left(self._waiting.get(queue, []), (waiting_sort_key(contact), contact.contact_id))
        return ahead, dict(self.stats[queue])

    def queue_stats(self, queue: str) -> dict[str, Any]:
        self.reads += 1
        return dict(self.stats[queue])

    def waiting_count(self, queue: str) -> int:
        return len(self._waiting.get(queue, ()))

    # --- writes -----------------------------------------------------------------------------------

    def create_contact(
        self,
        before: Contact | None,
        contact: Contact,
        effects: Sequence[Effect] = (),
        agents: Sequence[Change] = (),
    ) -> None:
        self.save(contacts=[(before, contact)], agents=agents, effects=effects)

    def save(
        self, contacts: Sequence[Change] = (), agents: Sequence[Change] = (), effects: Sequence[Effect] = ()
    ) -> None:
        """All or nothing, each against the version read; ``TransactionConflict`` names the stale ones."""
        stale = any(self._stale(self.contacts.get(after.contact_id), before) for before, after in contacts) or any(
            self._stale(self.agents.get(after.agent_id), before) for before, after in agents
        )
        if stale:  # only then are the reasons worked out (the simulator saves millions of times)
            reasons = [self._check(self.contacts.get(b.contact_id if b else a.contact_id), b) for b, a in contacts]
            reasons += [self._check(self.agents.get(b.agent_id if b else a.agent_id), b) for b, a in agents]
            raise TransactionConflict(reasons)
        for _, after in contacts:
            self._unindex_contact(self.contacts.get(after.contact_id))
            self.contacts[after.contact_id] = after
            self._index_contact(after)
        for _, after in agents:
            self._unindex_agent(self.agents.get(after.agent_id))
            self.agents[after.agent_id] = after
            self._index_agent(after)
        for effect in effects:
            self._apply(effect)

    @staticmethod
    def _stale(stored: Any, read: Any) -> bool:
        if read is None:
            return stored is not None
        return stored is None or stored.version != read.version

    @staticmethod
    def _check(stored: Any, read: Any) -> str:
        if read is None:
            return "None" if stored is None else "ConditionalCheckFailed"
        return "None" if stored is not None and stored.version == read.version else "ConditionalCheckFailed"

    def _apply(self, effect: Effect) -> None:
        if isinstance(effect, Closed):
            profile = self.customers.setdefault(effect.customer_id, {"customer_id": effect.customer_id})
            if profile.get("last_served_at", "") <= (effect.contact.closed_at or ""):  # a later close's stays
                profile["last_agent_id"] = effect.contact.assigned_to
                profile["last_served_at"] = effect.contact.closed_at
        elif isinstance(effect, CustomerMessage):
            self.messages.append(effect.message)
        elif isinstance(effect, Lifecycle):
            if effect.once is not None:  # written after the save, once per name (a retry finds it written)
                written = (effect.contact.contact_id, effect.contact.record_key, effect.once)
                if written in self._written_once:
                    return
                self._written_once.add(written)
            record = self.records.setdefault((effect.contact.contact_id, effect.contact.record_key), {"events": []})
            record["events"].extend(dict(e) for e in effect.events)
            for name, value in effect.fields.items():
                if value is not None and not (name in SET_ONCE and name in record):
                    record[name] = value
        elif isinstance(effect, OfferDecision):
            self.decisions[effect.contact_id].append(effect)  # named when read: a simulation seldom reads it
        elif not isinstance(effect, Assigned):
            raise TypeError(f"unknown effect {type(effect).__name__}")

    def _index_contact(self, contact: Contact) -> None:
        if contact.state is ContactState.QUEUED:
            entry = (waiting_sort_key(contact), contact.contact_id)
            needs = requirement_key(contact.required_skills)
            for queue in contact.queues:
                insort(self._waiting[queue], entry)
                insort(self._needing[(queue, needs)], entry)
        elif contact.state is ContactState.OFFERED and contact.offered_to:
            self._offered.add(contact.contact_id)
            self._work[contact.offered_to].add(contact.contact_id)
        elif contact.state is ContactState.ASSIGNED and contact.assigned_to:
            self._work[contact.assigned_to].add(contact.contact_id)

    def _unindex_contact(self, contact: Contact | None) -> None:
        if contact is None:
            return
        if contact.state is ContactState.QUEUED:
            entry = (waiting_sort_key(contact), contact.contact_id)
            needs = requirement_key(contact.required_skills)
            for queue in contact.queues:
                _remove(self._waiting[queue], entry)
                _remove(self._needing[(queue, needs)], entry)
        self._offered.discard(contact.contact_id)
        for agent_id in (contact.offered_to, contact.assigned_to):
            if agent_id:
                self._work[agent_id].discard(contact.contact_id)

    def _index_agent(self, agent: Agent) -> None:
        if agent.takes_work:
            for queue in agent.queues:
                self._taking_work[queue].add(agent.agent_id)

    def _unindex_agent(self, agent: Agent | None) -> None:
        if agent is not None:
            for queue in agent.queues:
                self._taking_work[queue].discard(agent.agent_id)

    def record_started(self, queue: str, sla_met: bool | None) -> None:
        stats = self.stats[queue]
        stats["working"] = stats.get("working", 0) + 1
        if sla_met is not None:
            name = "sla_met" if sla_met else "sla_breached"
            stats[name] = stats.get(name, 0) + 1

    def record_handled(self, queue: str, handle_seconds: float) -> None:
        stats = self.stats[queue]
        previous = float(stats.get("avg_handle_seconds", handle_seconds))
        stats["avg_handle_seconds"] = round(0.8 * previous + 0.2 * handle_seconds, 1)
        stats["working"] = stats.get("working", 0) - 1

    def record_abandoned(self, queue: str, waited_seconds: float = 0.0) -> None:
        stats = self.stats[queue]
        stats["abandoned"] = stats.get("abandoned", 0) + 1
        stats["abandon_seconds"] = round(stats.get("abandon_seconds", 0) + waited_seconds, 1)

    def forget_open_conversation(self, customer_id: str, contact_id: str) -> None:
        """The conversation pointer lives with the message history, which a routing world does not keep."""

    def record_unstarted(self, queue: str, sla_met: bool | None) -> None:
        stats = self.stats[queue]
        stats["working"] = stats.get("working", 0) - 1
        if sla_met is not None:
            name = "sla_met" if sla_met else "sla_breached"
            stats[name] = stats.get(name, 0) - 1

    def forget_assignment(self, contact_id: str, agent_id: str) -> None:
        """The conversation's agent lives with the message history, which a routing world does not keep."""

    # --- what was recorded (reports, replay, explain-contact) --------------------------------------------

    def decisions_of(self, contact_id: str) -> list[dict[str, Any]]:
        """The contact's decision records, oldest first."""
        found = sorted(self.decisions.get(contact_id, ()), key=lambda d: (d.made_at, d.offer_id))
        return [d.as_item() for d in found]

    def records_of(self, contact_id: str) -> list[dict[str, Any]]:
        """The contact records of a conversation (one per arrival), oldest first."""
        return [dict(r) for (c, _), r in sorted(self.records.items()) if c == contact_id]

    def records_between(self, start: str, end: str) -> list[dict[str, Any]]:
        """Contact records that arrived from ``start`` up to (not including) ``end``, by arrival."""
        found = [r for r in self.records.values() if start <= r.get("arrived_at", "") < end]
        return sorted((dict(r) for r in found), key=lambda r: (r["arrived_at"], r["contact_id"]))


def _remove(entries: list[tuple[str, str]], entry: tuple[str, str]) -> None:
    at = bisect_left(entries, entry)
    if at < len(entries) and entries[at] == entry:
        del entries[at]


class Timer(NamedTuple):
    """A scheduled event; ordered by when it is due, then by when it was scheduled (``seq`` is unique, so the
    event itself is never compared). A tuple: the heap compares them millions of times in a simulation."""

    due_at: str
    seq: int
    event: RoutingEvent


class MemoryBus:
    """Events in order of publishing, timers by when they are due: the simulator (or a test) drains them."""

    def __init__(self) -> None:
        self.events: list[RoutingEvent] = []
        self.timers: list[Timer] = []
        self._seq = itertools.count()

    def publish(self, *events: RoutingEvent) -> None:
        self.events.extend(events)

    def schedule(self, event: RoutingEvent, due_at: str, now: str) -> None:
        heapq.heappush(self.timers, Timer(due_at, next(self._seq), event))

    def take_events(self) -> list[RoutingEvent]:
        taken, self.events = self.events, []
        return taken

    def next_timer_due(self) -> str | None:
        return self.timers[0].due_at if self.timers else None

    def pop_timer(self) -> RoutingEvent:
        return heapq.heappop(self.timers).event


class MemoryNotifier:
    """Pushes to agents go to ``on_push`` (the simulated agents' consoles), and are kept when ``keep`` is set."""

    def __init__(self, on_push: Callable[[str, dict[str, Any]], None] | None = None, keep: bool = True) -> None:
        self.on_push = on_push
        self.keep = keep
        self.pushed: list[tuple[str, dict[str, Any]]] = []

    def to_agent(self, agent_id: str, payload: dict[str, Any]) -> int:
        if self.keep:
            self.pushed.append((agent_id, payload))
        if self.on_push is not None:
            self.on_push(agent_id, payload)
        return 1


class MemoryMessages:
    """System messages: prepared as the outbox would, kept by the store when recorded; none reach ``silent``."""

    def __init__(self, silent: Iterable[str] = ("voice", "app", "counter", "assistant")) -> None:
        self.silent = frozenset(silent)
        self.dispatched: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def reaches(self, channel: str) -> bool:
        return channel not in self.silent

    def prepare(
        self, conversation_id: str, customer_id: str, channel: str, text: str, kind: str, now: str
    ) -> dict[str, Any]:
        return {
            "message_id": f"sys_{next(self._ids):08d}",
            "conversation_id": conversation_id,
            "customer_id": customer_id,
            "channel": channel,
            "text": text,
            "kind": kind,
            "at": now,
        }

    def dispatch(self, message: dict[str, Any]) -> None:
        self.dispatched.append(message)


class MemoryMetrics:
    """Metrics kept as (name, value, queue, channel) rows."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, str, str]] = []

    def wait_until_offer(self, seconds: float, queue: str, channel: str) -> None:
        self.rows.append(("WaitUntilOffer", seconds, queue, channel))

    def wait_until_accept(self, seconds: float, queue: str, channel: str) -> None:
        self.rows.append(("WaitUntilAccept", seconds, queue, channel))

    def sla(self, met: bool, queue: str, channel: str) -> None:
        self.rows.append(("SLAMet" if met else "SLABreached", 1.0, queue, channel))

    def abandoned(self, seconds: float, queue: str, channel: str) -> None:
        self.rows.append(("Abandoned", 1.0, queue, channel))
        self.rows.append(("TimeToAbandon", seconds, queue, channel))


class VirtualClock:
    """Time that moves only when told (the simulator's event times)."""

    def __init__(self, start: str) -> None:
        self.current = start

    def now(self) -> str:
        return self.current

    def set(self, moment: str) -> None:
        self.current = moment

    def advance(self, seconds: float) -> str:
        self.current = clock.plus_seconds(self.current, seconds)
        return self.current


def sequential_ids(prefix: str = "off_") -> Callable[[], str]:
    """Offer ids that are the same on every run (a seeded simulation must repeat itself exactly)."""
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter):010d}"


@dataclass
class MemoryWorld:
    """A router over in-memory adapters, and the adapters, for a simulation or a test."""

    router: Router
    store: MemoryStore
    bus: MemoryBus
    notifier: MemoryNotifier
    messages: MemoryMessages
    metrics: MemoryMetrics
    clock: VirtualClock

    def run_events(self, now: str | None = None, limit: int = 10_000) -> int:
        """Handle published events until none is left (each may publish more); returns how many ran."""
        handled = 0
        while self.bus.events and handled < limit:
            for event in self.bus.take_events():
                self.router.handle(event, now or self.clock.now())
                handled += 1
        return handled

    def fire_timers_until(self, moment: str) -> int:
        """Move the clock through every timer due by ``moment``, handling each and what it publishes."""
        fired = 0
        while (due := self.bus.next_timer_due()) is not None and due <= moment:
            event = self.bus.pop_timer()
            self.clock.set(max(due, self.clock.now()))
            self.router.handle(event, self.clock.now())
            self.run_events()
            fired += 1
        self.clock.set(max(moment, self.clock.now()))
        return fired


def world(
    config: RoutingConfig | Callable[[], RoutingConfig],
    start: str,
    *,
    on_push: Callable[[str, dict[str, Any]], None] | None = None,
    keep_pushes: bool = True,
    settings: Settings | None = None,
) -> MemoryWorld:
    """A router and its in-memory adapters, its clock at ``start``."""
    store, bus, notifier = MemoryStore(), MemoryBus(), MemoryNotifier(on_push, keep_pushes)
    messages, metrics, virtual = MemoryMessages(), MemoryMetrics(), VirtualClock(start)
    source = config if callable(config) else (lambda: config)
    router = Router(
        store=store,
        bus=bus,
        notifier=notifier,
        messages=messages,
        metrics=metrics,
        clock=virtual,
        new_id=sequential_ids(),
        config=source,
        settings=settings or Settings(),
    )
    return MemoryWorld(router, store, bus, notifier, messages, metrics, virtual)
