"""The router: turns routing events, timers and agents' answers into offers, over the ports of ``routing.ports``.

Offering is split into ``plan_offer`` / ``plan_for_agent`` (read, decide) and ``commit_offer`` (one
conditional save). Between them anything may change; the commit then fails and the router plans again from
fresh state. Tests interleave two routers step by step through exactly these calls.

Timers (offer timeouts, escalation steps, reconnect grace) are scheduled on the bus; ``sweep`` runs every
minute as the safety net for all of them. Nothing here knows DynamoDB, SQS or a WebSocket: Lambda wires the
AWS adapters in (``routing.engine``), the simulator and fast tests the in-memory ones (``routing.memory``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from chalicelib import clock
from chalicelib.errors import Conflict, Forbidden, NotFound
from chalicelib.routing import hours, matching, records
from chalicelib.routing.config import RoutingConfig
from chalicelib.routing.events import (
    AgentFreed,
    AgentLeftCall,
    AgentUnreachable,
    CallerLeft,
    ContactRequeued,
    ConversationMessage,
    EscalationDue,
    OfferTimeout,
    ReconnectGraceExpired,
    RoutingEvent,
    message_payload,
)
from chalicelib.routing.model import Agent, Contact, ContactState, Offer, Presence
from chalicelib.routing.ports import (
    Assigned,
    Bus,
    Clock,
    Closed,
    ConfigSource,
    Cursor,
    CustomerMessage,
    CustomerMessages,
    Effect,
    IdSource,
    Metrics,
    Notifier,
    OfferDecision,
    RoutingStore,
    SelfServiceDesk,
    Settings,
)
from chalicelib.routing.rules import ContactFacts, Decision, classify
from chalicelib.store.retry import StillConflicting, TransactionConflict, on_conflict, or_else

logger = Logger(service="switchboard", child=True)

# How many contacts a freed agent may take in one event (bounded work per event).
MAX_OFFERS_PER_AGENT_EVENT = 10
SWEEP_PAGE = 50
# Pages of an agent pool read for one contact while none of them can take it (bounded work per decision).
POOL_PAGES = 2


class _OpenedMeanwhile(Exception):
    """Another delivery of the same message opened the contact first: ``contact`` as it stored it."""

    def __init__(self, contact: Contact) -> None:
        super().__init__(contact.contact_id)
        self.contact = contact


@dataclass(frozen=True)
class Outcome:
    """What handling one event did (for logs and tests)."""

    offers: tuple[Offer, ...] = ()
    note: str = ""


@dataclass
class Router:
    """Routing over its ports; one per process (Lambda) or per simulated world."""

    store: RoutingStore
    bus: Bus
    notifier: Notifier
    messages: CustomerMessages
    metrics: Metrics
    clock: Clock
    new_id: IdSource
    config: ConfigSource
    settings: Settings = field(default_factory=Settings)
    # How eligible candidates are ordered; the simulator swaps in its baselines (longest idle, round robin).
    policy: matching.Policy = matching.DEFAULT_POLICY
    # The bot that may answer a first message where routing.yaml's ``self_service`` says so; None: never asked.
    self_service: SelfServiceDesk | None = None

    # --- events ---------------------------------------------------------------------------------

    def handle(self, event: RoutingEvent, now: str | None = None, redelivered: bool = False) -> Outcome:
        """Handle one routing event or timer; safe to run again for the same event.

        ``redelivered``: the bus gave this event before and it failed; an earlier attempt may have committed
        an offer and died before pushing it, so the open offers it may have made are pushed again (the
        console shows an offer once, by ``offer_id``).
        """
        now = now or self.clock.now()
        if isinstance(event, ConversationMessage):
            return self.on_conversation_message(event, now)
        if isinstance(event, ContactRequeued):
            offer = self.offer_contact(event.contact_id, now)
            if offer is None and redelivered:
                self._push_open_offers([self.store.get_contact(event.contact_id)])
            return Outcome(offers=(offer,) if offer else (), note="requeued")
        if isinstance(event, AgentFreed):
            outcome = self.on_agent_freed(event.agent_id, now, _carried_agent(event))
            if redelivered:
                made = {o.offer_id for o in outcome.offers}
                self._push_open_offers([c for c in self.store.work_of(event.agent_id) if c.offer_id not in made])
            return outcome
        if isinstance(event, OfferTimeout | EscalationDue | ReconnectGraceExpired):
            return self.on_timer(event, now)
        if isinstance(event, CallerLeft):
            # A caller already with an agent (ASSIGNED) is not abandoned: the call ended, the agent wraps up.
            if self.abandon(event.conversation_id, now, accepted_too=event.before_agent):
                return Outcome(note="abandoned")
            self._call_ended(event.conversation_id)
            return Outcome(note="call-ended")
        if isinstance(event, AgentUnreachable):
            moved = self.agent_unreachable(event.conversation_id, event.agent_id, now)
            return Outcome(note="agent-unreachable" if moved else "")
        if isinstance(event, AgentLeftCall):
            return Outcome(note="agent-left" if self.agent_left(event.conversation_id, event.agent_id, now) else "")
        raise TypeError(f"unhandled routing event {type(event).__name__}")

    # --- a customer wrote -----------------------------------------------------------------------

    def on_conversation_message(self, event: ConversationMessage, now: str) -> Outcome:
        contact = self.store.get_contact(event.conversation_id)
        tried = False  # whether opening the contact looked for an agent already
        if contact is None or (
            contact.state is ContactState.CLOSED and contact.closed_at and event.received_at > contact.closed_at
        ):
            decided = self._classify(event)
            if self.self_service is not None:
                self.self_service.seen_again(event, decided[0], now)  # back after a bot's answer: a recontact?
            if self.self_service is not None and decided[2].self_service and decided[2].self_service.mode == "answer":
                verdict = self.self_service.take(event, decided[2].self_service, now)
                if verdict.held:
                    return Outcome(note=verdict.held)
                if verdict.asked:
                    # Handed over: the rules read what the customer asked the bot too (this may be just "no").
                    decided = self._classify(event, also=verdict.asked, customer=decided[0])
            contact, opened_with, tried = self._open_contact(event, now, reopening=contact, decided=decided)
            if opened_with is not None:
                self._announce(opened_with, now)
                return Outcome(offers=(opened_with,), note="offered")
        if contact.state is ContactState.QUEUED:
            offer = None if tried else self.offer_contact(contact.contact_id, now, known=contact)
            if offer is None and hours.open_queues(self.config(), contact.queues, clock.parse_iso(now)):
                # While its queues are closed the customer has had the out-of-hours reply, not a place in line.
                self.acknowledge(contact.contact_id, now, known=contact if tried else None)
            return Outcome(offers=(offer,) if offer else (), note="queued")
        if contact.state is ContactState.OFFERED and contact.offered_to:
            if event.received_at == contact.enqueued_at:
                # The event that opened the contact, redelivered: its push may never have happened.
                # Offers are idempotent by offer_id on the agent's side.
                self.notifier.to_agent(contact.offered_to, offer_payload(contact))
            return Outcome(note="already offered")
        if contact.state is ContactState.ASSIGNED and contact.assigned_to:
            self.notifier.to_agent(contact.assigned_to, message_payload(event))
            return Outcome(note="told the assigned agent")
        return Outcome(note=f"contact is {contact.state.value}")

    def _classify(
        self, event: ConversationMessage, also: str = "", customer: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], ContactFacts, Decision]:
        """The customer (read unless given), the facts the rules read (``also``: text read before the message's) and
        their decision."""
        if customer is None:
            customer = self.store.get_customer(event.customer_id) or {}
        facts = ContactFacts.of(
            event.channel,
            f"{also}\n{event.text}" if also else event.text,
            event.subject,
            event.language or customer.get("language"),
            customer.get("tier"),
            customer.get("tags", ()),
        )
        return customer, facts, classify(self.config(), facts, clock.parse_iso(event.received_at))

    def _open_contact(
        self,
        event: ConversationMessage,
        now: str,
        reopening: Contact | None = None,
        decided: tuple[dict[str, Any], ContactFacts, Decision] | None = None,
    ) -> tuple[Contact, Offer | None, bool]:
        """Classify with the routing rules and open a contact (new, or a closed one written to again).

        When an agent can take it now, the contact is created offered to them in one save with the agent's
        reservation (``_create``): it is never written queued and then offered within the same event. Otherwise
        it is created queued. Returns the contact as it is now, the offer made if any (to announce), and whether
        this call looked for an agent (False when another delivery opened the contact meanwhile).
        """
        config = self.config()
        customer, facts, decision = decided or self._classify(event)
        contact = Contact(
            contact_id=event.conversation_id,
            customer_id=event.customer_id,
            channel=event.channel,
            enqueued_at=event.received_at,
            queues=(decision.queue,),
            priority=decision.priority,
            required_skills=dict(decision.skills),
            sla_deadline=decision.deadline,
            rule=decision.rule,
            escalation=tuple(step.as_dict() for step in decision.escalation),
            preferred_agent=preferred_agent(customer, event.received_at, config),
            customer_name=customer.get("name"),
            version=reopening.version + 1 if reopening else 0,
            arrived_at=event.received_at,
        )
        arrival = records.arrived(contact, now, decision.queue_open, facts, event.message_id)
        try:
            offer = self._create(reopening, contact, arrival, now)
        except _OpenedMeanwhile as meanwhile:
            return meanwhile.contact, None, False
        logger.info(
            "queued",
            extra={
                "contact_id": contact.contact_id,
                "rule": decision.rule,
                "queue": decision.queue,
                "priority": decision.priority,
                "queue_open": decision.queue_open,
            },
        )
        self._arm_next_step(contact, now)
        if offer is not None:
            return offer.contact, offer, True
        if (
            not decision.queue_open
            and decision.out_of_hours
            and decision.out_of_hours.action == "reply"
            and self.messages.reaches(contact.channel)
        ):
            self._mark_acknowledged(contact, now, decision.out_of_hours.message, "out_of_hours")
            return self.store.get_contact(contact.contact_id) or contact, None, True
        return contact, None, True

    def _create(self, reopening: Contact | None, contact: Contact, arrival: Effect, now: str) -> Offer | None:
        """Store the new ``contact``: offered to the best agent free now, with their reservation, in one save;
        queued when nobody can take it (or the agents changed under every attempt).

        ``_OpenedMeanwhile`` when another delivery of the same message opened the contact first.
        """

        def opened_meanwhile() -> None:
            found = self.store.get_contact(contact.contact_id)
            if found is not None and (reopening is None or found.version != reopening.version):
                raise _OpenedMeanwhile(found)

        def offered() -> Offer | None:
            offer = self.plan_offer(contact.contact_id, now, known=contact)
            if offer is None:
                return None
            try:
                self.store.create_contact(
                    reopening,
                    offer.contact,
                    effects=[arrival, *self._offer_effects(offer)],
                    agents=[(offer.agent_before, offer.agent)],
                )
            except TransactionConflict:
                opened_meanwhile()
                raise  # the agent changed: plan again from fresh reads
            return offer

        offer = or_else(offered, None)
        if offer is not None:
            return offer
        try:
            self.store.create_contact(reopening, contact, effects=[arrival])
        except TransactionConflict:
            opened_meanwhile()
            raise
        return None

    # --- offering -------------------------------------------------------------------------------

    def plan_offer(self, contact_id: str, now: str, known: Contact | None = None) -> Offer | None:
        """Decide who gets a queued contact, from fresh reads; None if it is not queued or nobody can take it.

        ``known`` is the contact as the caller just wrote it, saving a read; a stale one only makes the commit
        fail.
        """
        contact = known or self.store.get_contact(contact_id)
        if contact is None or contact.state is not ContactState.QUEUED:
            return None
        config = self.config()
        open_now = hours.open_queues(config, contact.queues, clock.parse_iso(now))
        if not open_now:
            return None  # it waits until one of its queues opens; the sweeper offers it then
        candidates: dict[str, Agent] = {}
        if not contact.reserved_for:  # a contact transferred to one agent waits for them alone
            candidates = {a.agent_id: a for q in sorted(open_now) for a in self._pool(contact, q, config)}
        for wanted in (contact.reserved_for, contact.preferred_agent):
            if wanted and wanted not in candidates:
                found = self.store.get_agent(wanted)  # may be past the first page of the index
                if found:
                    candidates[found.agent_id] = found
        ranking = matching.rank_agents(contact, candidates.values(), config.cost, open_now, self._policy(config), now)
        if ranking.chosen is None:
            return None
        return self._offer(contact, ranking.chosen, now, config, ranking, "contact")

    def plan_for_agent(self, agent_id: str, now: str, known: Agent | None = None) -> Offer | None:
        """Decide which waiting contact a freed agent takes, from fresh reads (the agent: ``known`` when given);
        None if none fits or they are busy."""
        ranked = self._rank_for_agent(agent_id, now, known)
        if ranked is None:
            return None
        agent, config, ranking = ranked
        if ranking.chosen is None:  # never: ranked only with a choice
            return None
        return self._offer(ranking.chosen, agent, now, config, ranking, "agent")

    def has_work_for(self, agent: Agent, now: str) -> bool:
        """Whether a waiting contact fits ``agent`` now: the reads of ``plan_for_agent``, no offer planned."""
        return self._rank_for_agent(agent.agent_id, now, agent) is not None

    def _rank_for_agent(
        self, agent_id: str, now: str, known: Agent | None
    ) -> tuple[Agent, RoutingConfig, matching.Ranking[Contact]] | None:
        agent = known if known is not None and known.agent_id == agent_id else self.store.get_agent(agent_id)
        if agent is None or not agent.takes_work:
            return None
        config = self.config()
        open_now = hours.open_queues(config, agent.queues, clock.parse_iso(now))
        # One page per queue and set of required skills the agent has: a page of contacts needing a skill
        # they lack can never hide one they could take.
        needs = [skills for skills in requirements(config) if matching.meets(agent, skills)]
        waiting = {
            c.contact_id: c
            for q in agent.queues
            if q in open_now
            for skills in needs
            for c in self.store.contacts_needing(q, skills)
        }
        ranking = matching.rank_contacts(agent, waiting.values(), config.cost, open_now, self._policy(config), now)
        if ranking.chosen is None:
            return None
        return agent, config, ranking

    def _policy(self, config: RoutingConfig) -> matching.Policy:
        """``policy`` for ``config``: the default one learns each queue's routing settings and the rules' skill sets."""
        if isinstance(self.policy, matching.Balanced):
            routing = {name: q.routing for name, q in config.queues.items()}
            return self.policy.bound(routing, requirements(config))
        return self.policy

    def _pool(self, contact: Contact, queue: str, config: RoutingConfig) -> list[Agent]:
        """Agents of ``queue`` who may take ``contact``: the pool of its most demanding skill, in bounded pages.

        A second page is read only when nobody on the first can take the contact (no room for its channel,
        declined it, lacks another of its skills).
        """
        skill, level = matching.key_skill(contact.required_skills) or (None, 0)
        found: list[Agent] = []
        after: Cursor | None = None
        for _ in range(POOL_PAGES):
            page, after = self.store.pool(queue, skill, level, after=after)
            found += page
            if after is None or any(matching.can_take(a, contact, config.cost) for a in page):
                break
        return found

    def _offer(
        self,
        contact: Contact,
        agent: Agent,
        now: str,
        config: RoutingConfig,
        ranking: matching.Ranking[Any] | None = None,
        chosen_for: str = "contact",
    ) -> Offer:
        offer_id = self.new_id()
        expires_at = clock.plus_seconds(now, config.offer_timeout(contact.channel))
        cost = matching.cost_for(agent, contact.channel, config.cost)
        return Offer(
            offer_id=offer_id,
            contact=contact.offered(agent.agent_id, offer_id, now, expires_at, cost),
            agent=agent.reserved(contact.channel, cost),
            expires_at=expires_at,
            contact_before=contact,
            agent_before=agent,
            ranking=ranking,
            chosen_for=chosen_for,
            made_at=now,
        )

    def commit_offer(self, offer: Offer) -> None:
        """Reserve the agent's capacity and mark the contact offered, atomically, with the contact record's
        event and the decision record (why this agent); ``TransactionConflict`` if stale."""
        self.store.save(
            contacts=[(offer.contact_before, offer.contact)],
            agents=[(offer.agent_before, offer.agent)],
            effects=self._offer_effects(offer),
        )

    def _offer_effects(self, offer: Offer) -> list[Effect]:
        """What an offer saves beside the contact and the agent: its contact-record event and its decision."""
        effects: list[Effect] = [records.offered(offer.contact, offer.made_at or offer.contact.offered_at or "")]
        if offer.ranking is not None:
            effects.append(self._decision(offer))
        return effects

    def _decision(self, offer: Offer) -> OfferDecision:
        """Why this offer: the ranking it came from, its keys named by the policy."""
        return records.offer_decision(
            offer.ranking,
            chosen_for=offer.chosen_for,
            contact_id=offer.contact.contact_id,
            offer_id=offer.offer_id,
            made_at=offer.made_at,
            # Agents ranked for a contact are ordered by the policy's agent key, a freed agent's contacts by its
            # contact key.
            key_names=matching.key_names(self.policy, "agent" if offer.chosen_for == "contact" else "contact"),
            agent_id=offer.agent.agent_id,
        )

    def offer_contact(self, contact_id: str, now: str, known: Contact | None = None) -> Offer | None:
        """Offer a queued contact to the best agent, planning again whenever another router got there first."""
        unread = [known]  # the contact as the caller wrote it serves the first plan only

        def step() -> Offer | None:
            offer = self.plan_offer(contact_id, now, unread.pop() if unread else None)
            if offer is not None:
                self.commit_offer(offer)
            return offer

        try:
            offer = on_conflict(step)
        except StillConflicting:
            logger.warning("contact stays queued after repeated conflicts", extra={"contact_id": contact_id})
            return None
        if offer is not None:
            self._announce(offer, now)
        return offer

    def on_agent_freed(self, agent_id: str, now: str, known: Agent | None = None) -> Outcome:
        """Give a freed agent the best waiting contacts while they have room (``known``: the agent as the event
        carried them, for the first plan; each later one starts from the agent as the offer before saved them)."""
        unread = [known]

        def step() -> Offer | None:
            offer = self.plan_for_agent(agent_id, now, unread.pop() if unread else None)
            if offer is not None:
                self.commit_offer(offer)
            return offer

        offers: list[Offer] = []
        while len(offers) < MAX_OFFERS_PER_AGENT_EVENT:
            offer = or_else(step, None)
            if offer is None:
                break
            unread.append(offer.agent)  # as the offer saved them: the next plan reads them only if that went stale
            self._announce(offer, now)
            offers.append(offer)
        return Outcome(offers=tuple(offers), note="agent freed")

    def _announce(self, offer: Offer, now: str) -> None:
        contact = offer.contact
        logger.info(
            "offered",
            extra={"contact_id": contact.contact_id, "agent_id": offer.agent.agent_id, "offer_id": offer.offer_id},
        )
        self.bus.schedule(OfferTimeout(contact.contact_id, offer.offer_id, offer.expires_at), offer.expires_at, now)
        if contact.offer_count == 1:
            self.metrics.wait_until_offer(
                clock.seconds_between(contact.enqueued_at, now), contact.queues[0], contact.channel
            )
        self.notifier.to_agent(offer.agent.agent_id, offer_payload(contact))

    def _push_open_offers(self, contacts: list[Contact | None]) -> None:
        """Push again the open offers among ``contacts`` (an earlier attempt may have died before its push)."""
        for contact in contacts:
            if contact is not None and contact.state is ContactState.OFFERED and contact.offered_to:
                self.notifier.to_agent(contact.offered_to, offer_payload(contact))

    # --- the agent answers ----------------------------------------------------------------------

    def _contact(self, contact_id: str, agent_id: str | None = None) -> Contact:
        """The contact; with ``agent_id``, only if it is (or was just) offered or assigned to that agent."""
        contact = self.store.get_contact(contact_id)
        if contact is None:
            raise NotFound(f"no contact {contact_id}")
        if agent_id is not None and agent_id not in (contact.offered_to, contact.assigned_to, *contact.declined_by):
            raise Forbidden("this conversation is not offered or assigned to you")
        return contact

    def _agent(self, agent_id: str) -> Agent:
        agent = self.store.get_agent(agent_id)
        if agent is None:
            raise NotFound(f"no agent {agent_id}")
        return agent

    def accept(self, agent_id: str, contact_id: str, offer_id: str | None = None) -> Contact:
        """Accept an offer made to this agent (accepting twice is fine)."""

        def step() -> tuple[Contact, bool]:
            contact = self._contact(contact_id, agent_id)
            if contact.state is ContactState.ASSIGNED and contact.assigned_to == agent_id:
                # Accepted before: what is written after the save again, in case that attempt died in between.
                judge = contact.channel not in self.settings.sla_at_join
                accepted = records.answered(contact, contact, "accepted", contact.accepted_at or "", judge)
                self.store.save(effects=[Assigned(contact), accepted])
                return contact, False
            if contact.state is not ContactState.OFFERED or contact.offered_to != agent_id:
                raise Conflict(f"contact {contact_id} is not offered to you (any more)")
            if offer_id is not None and contact.offer_id != offer_id:
                raise Conflict(f"offer {offer_id} is no longer open")
            now = self.clock.now()
            assigned = contact.assigned(now)
            # The agent is not read: their capacity was reserved with the offer, and the offers expired in a row
            # start again from this accept when the next one expires (``Agent.answered_since``).
            self.store.save(
                contacts=[(contact, assigned)],
                effects=[
                    Assigned(assigned),
                    records.answered(
                        contact, assigned, "accepted", now, contact.channel not in self.settings.sla_at_join
                    ),
                ],
            )
            return assigned, True

        assigned, changed = self._retrying(step, contact_id)
        if changed:
            now = assigned.accepted_at or self.clock.now()
            home = assigned.queues[0]
            met = None if assigned.channel in self.settings.sla_at_join else records.sla_met(assigned, now)
            self.store.record_started(home, met)
            self.metrics.wait_until_accept(clock.seconds_between(assigned.enqueued_at, now), home, assigned.channel)
            if met is not None:
                self.metrics.sla(met, home, assigned.channel)
        return assigned

    def decline(self, agent_id: str, contact_id: str, offer_id: str | None = None) -> Contact:
        """Decline an offer: the contact goes to the next agent, never back to this one."""

        def step() -> tuple[Contact, str]:
            contact = self._contact(contact_id, agent_id)
            if contact.state is not ContactState.OFFERED or contact.offered_to != agent_id:
                raise Conflict(f"contact {contact_id} is not offered to you (any more)")
            if offer_id is not None and contact.offer_id != offer_id:
                raise Conflict(f"offer {offer_id} is no longer open")
            agent = self._agent(agent_id)
            requeued = contact.requeued(agent_id)
            now = self.clock.now()
            released = agent.released(contact.channel, contact.cost, now)
            self.store.save(
                contacts=[(contact, requeued)],
                agents=[(agent, released)],
                effects=[records.answered(contact, requeued, "declined", now)],
            )
            return requeued, contact.offer_id or ""

        requeued, declined_offer = self._retrying(step, contact_id)
        self.bus.publish(
            ContactRequeued(contact_id, declined_offer), AgentFreed(agent_id, cause=f"declined-{declined_offer}")
        )
        return requeued

    def close(self, agent_id: str, contact_id: str, wrap_up: str | None = None) -> Contact:
        """Close an assigned contact and its conversation with a wrap-up code; the agent's capacity is freed."""

        def step() -> tuple[Contact, Contact | None, str, Agent | None]:
            contact = self._contact(contact_id, agent_id)
            if contact.state is ContactState.CLOSED and contact.assigned_to == agent_id:
                # Closed before: what is written after the save again, in case that attempt died in between.
                closing = records.closed(contact, contact, contact.closed_at or "")
                self.store.save(effects=[Closed(contact, self.store.customer_of_conversation(contact)), closing])
                return contact, None, "", None
            if contact.state is not ContactState.ASSIGNED or contact.assigned_to != agent_id:
                raise Conflict(f"contact {contact_id} is not assigned to you")
            now = self.clock.now()
            agent = self._agent(agent_id)
            closed = contact.closed(now, wrap_up)
            customer_id = self.store.customer_of_conversation(contact)
            released = agent.answered_since(contact.accepted_at).released(contact.channel, contact.cost, now)
            self.store.save(
                contacts=[(contact, closed)],
                agents=[(agent, released)],
                effects=[Closed(closed, customer_id), records.closed(contact, closed, now)],
            )
            return closed, contact, customer_id, released

        closed, before, _customer, released = self._retrying(step, contact_id)
        if before is None:
            return closed
        if before.accepted_at and closed.closed_at:
            self.store.record_handled(before.queues[0], clock.seconds_between(before.accepted_at, closed.closed_at))
        # The agent's next contact comes through the routing queue (an AgentFreed, handled again if its Lambda
        # dies) only when one waits that they can take: the same reads the event's handler would make, made here,
        # spare the queue hop and its invocation when nothing waits (most closes). A contact queued just after
        # this look is offered to them by the next sweep, as one the handler's index read missed would be.
        if released is not None and self._may_have_work(released, closed.closed_at or self.clock.now()):
            self.bus.publish(AgentFreed(agent_id, cause=f"closed-{contact_id}", agent=released.as_dict()))
        return closed

    def _may_have_work(self, agent: Agent, now: str) -> bool:
        """``has_work_for``, and True when the look itself fails: the routing event's handler looks again."""
        try:
            return self.has_work_for(agent, now)
        except Exception:
            logger.warning("could not look for waiting work: freeing the agent through the queue", exc_info=True)
            return True

    def withdraw_offer(self, agent_id: str, contact_id: str, offer_id: str) -> None:
        """Take back an open offer from an agent who left: the contact goes to the next agent, never back."""

        def step() -> bool:
            contact = self.store.get_contact(contact_id)
            if contact is None or contact.state is not ContactState.OFFERED or contact.offer_id != offer_id:
                return False
            agent = self._agent(agent_id)
            now = self.clock.now()
            released = agent.released(contact.channel, contact.cost, now)
            requeued = contact.requeued(agent_id)
            self.store.save(
                contacts=[(contact, requeued)],
                agents=[(agent, released)],
                effects=[records.answered(contact, requeued, "withdrawn", now)],
            )
            return True

        if or_else(step, False):
            self.bus.publish(ContactRequeued(contact_id, offer_id))

    def abandon(self, contact_id: str, now: str, accepted_too: bool = False) -> Contact | None:
        """The customer left before an agent accepted (hung up, closed the chat window): the contact is closed
        with wrap-up ``abandoned``; an open offer is withdrawn and its agent's capacity released. None when it
        was no longer waiting (accepted, closed, unknown).

        ``accepted_too``: the customer left before the accepting agent reached them (a caller who hung up before
        the agent's leg was bridged): an assigned contact is abandoned as well, the accept taken back (the
        agent released, the conversation's agent and the queue's working count undone)."""
        waiting = (ContactState.QUEUED, ContactState.OFFERED, *((ContactState.ASSIGNED,) if accepted_too else ()))

        def step() -> tuple[Contact, Contact] | None:
            contact = self.store.get_contact(contact_id)
            if contact is None or contact.state not in waiting:
                return None
            agents: list[tuple[Agent, Agent]] = []
            holder = contact.offered_to if contact.state is ContactState.OFFERED else contact.assigned_to
            if contact.state is not ContactState.QUEUED and holder:
                agent = self.store.get_agent(holder)
                if agent is not None:
                    if contact.state is ContactState.ASSIGNED:
                        agent = agent.answered_since(contact.accepted_at)
                    agents = [(agent, agent.released(contact.channel, contact.cost, now))]
            abandoned = contact.abandoned(now)
            effects: list[Effect] = [records.abandoned(contact, abandoned, now)]
            if contact.state is ContactState.OFFERED:
                effects.insert(0, records.answered(contact, abandoned, "withdrawn", now))
            self.store.save(contacts=[(contact, abandoned)], agents=agents, effects=effects)
            return abandoned, contact

        done = or_else(step, None)
        if done is None:
            return None
        abandoned, before = done
        logger.info("abandoned", extra={"contact_id": contact_id, "rule": before.rule})
        home = before.queues[0]
        waited = max(0.0, clock.seconds_between(before.enqueued_at, now))
        self.store.record_abandoned(home, waited)
        self.metrics.abandoned(waited, home, before.channel)
        self.store.forget_open_conversation(before.customer_id, contact_id)
        if before.state is ContactState.ASSIGNED and before.assigned_to:
            self._take_back_accept(before)
            self.notifier.to_agent(
                before.assigned_to, {"type": "closed", "contact_id": contact_id, "reason": "abandoned"}
            )
            self.bus.publish(AgentFreed(before.assigned_to, cause=f"abandoned-{before.offer_id}"))
        if before.state is ContactState.OFFERED and before.offered_to:
            self.notifier.to_agent(
                before.offered_to, {"type": "offer_withdrawn", "offer_id": before.offer_id, "reason": "abandoned"}
            )
            self.bus.publish(AgentFreed(before.offered_to, cause=f"abandoned-{before.offer_id}"))
        return abandoned

    def _take_back_accept(self, before: Contact) -> None:
        """Undo what the accept of ``before`` recorded beside the contact: the queue's working count and SLA
        outcome (``accept``), the conversation's agent (``Assigned``)."""
        if before.assigned_to:
            self.store.forget_assignment(before.contact_id, before.assigned_to)
        if before.accepted_at:
            judged = before.channel not in self.settings.sla_at_join  # else not yet: the agent never joined
            met = records.sla_met(before, before.accepted_at) if judged else None
            self.store.record_unstarted(before.queues[0], met)

    def _call_ended(self, contact_id: str) -> None:
        """The caller of an assigned voice contact hung up: the agent's console shows it; the contact stays the
        agent's until they close it with a wrap-up (their capacity held until then, as for chat)."""
        contact = self.store.get_contact(contact_id)
        if contact is not None and contact.state is ContactState.ASSIGNED and contact.assigned_to:
            self.notifier.to_agent(contact.assigned_to, {"type": "call_ended", "conversation_id": contact_id})

    def agent_unreachable(self, contact_id: str, agent_id: str, now: str) -> bool:
        """The agent accepted a call but their leg was never answered: the contact goes back to waiting (its
        place kept: ``enqueued_at`` and deadline unchanged) and to the next agent, never back to this one; the
        agent is released and the miss counts as an expired offer (Away after too many in a row). The accept is
        taken back from the conversation and the queue's counts: the supervisor view does not show them at work."""
        config = self.config()

        def step() -> tuple[Contact, Agent | None, Agent | None] | None:
            contact = self.store.get_contact(contact_id)
            if contact is None or contact.state is not ContactState.ASSIGNED or contact.assigned_to != agent_id:
                return None
            agent = self.store.get_agent(agent_id)
            changed = (
                agent.released(contact.channel, contact.cost, now).let_offer_expire(
                    config.max_consecutive_expired_offers, now
                )
                if agent
                else None
            )
            requeued = contact.unreachable(agent_id)
            self.store.save(
                contacts=[(contact, requeued)],
                agents=[(agent, changed)] if agent and changed else [],
                effects=[records.answered(contact, requeued, "expired", now)],
            )
            return contact, agent, changed

        done = or_else(step, None)
        if done is None:
            return False
        before, agent, changed = done
        offer_id = before.offer_id or f"unreachable-{before.version}"
        logger.info("agent unreachable", extra={"contact_id": contact_id, "agent_id": agent_id})
        self._take_back_accept(before)
        self.notifier.to_agent(
            agent_id,
            {"type": "offer_withdrawn", "offer_id": before.offer_id, "reason": "agent_unreachable"},
        )
        if changed and changed.presence is Presence.AWAY and agent and agent.presence is not Presence.AWAY:
            self.notifier.to_agent(agent_id, {"type": "presence", "presence": "Away", "reason": "offers expired"})
        self.bus.publish(ContactRequeued(contact_id, offer_id), AgentFreed(agent_id, cause=f"unreachable-{offer_id}"))
        return True

    def agent_left(self, contact_id: str, agent_id: str, now: str) -> bool:
        """The agent's leg left a call the caller is still on: the contact waits again at the head of its queue
        (``Contact.returned`` keeps its place) and the agent is released; their console is told."""

        def step() -> tuple[Contact, Contact] | None:
            contact = self.store.get_contact(contact_id)
            if contact is None or contact.state is not ContactState.ASSIGNED or contact.assigned_to != agent_id:
                return None
            agent = self.store.get_agent(agent_id)
            returned = contact.returned()
            freed = (
                agent.answered_since(contact.accepted_at).released(contact.channel, contact.cost, now)
                if agent
                else None
            )
            self.store.save(contacts=[(contact, returned)], agents=[(agent, freed)] if agent and freed else [])
            return contact, returned

        done = or_else(step, None)
        if done is None:
            return False
        _before, returned = done
        logger.info("agent left the call", extra={"contact_id": contact_id, "agent_id": agent_id})
        self.notifier.to_agent(
            agent_id, {"type": "call_requeued", "conversation_id": contact_id, "reason": "agent_left"}
        )
        cause = f"left-{returned.version}"
        self.bus.publish(ContactRequeued(contact_id, cause), AgentFreed(agent_id, cause=f"{cause}-{contact_id}"))
        return True

    @staticmethod
    def _retrying(step: Any, contact_id: str) -> Any:
        try:
            return on_conflict(step)
        except StillConflicting:
            raise Conflict(f"contact {contact_id} changed too often; retry") from None

    def set_presence(self, agent_id: str, presence: Presence) -> tuple[Agent, bool]:
        """Set an agent's presence; returns the agent and whether it changed. Available again: route to them."""

        def step() -> tuple[Agent, bool]:
            agent = self._agent(agent_id)
            if agent.presence is presence:
                return agent, False
            updated = agent.with_presence(presence, self.clock.now())
            self.store.save(agents=[(agent, updated)])
            return updated, True

        try:
            agent, changed = on_conflict(step)
        except StillConflicting:
            raise Conflict(f"agent {agent_id} changed too often; retry") from None
        if changed and agent.takes_work:
            self.bus.publish(AgentFreed(agent_id, cause=f"presence-{agent.version}"))
        return agent, changed

    # --- agents' connections --------------------------------------------------------------------

    def resume(self, agent_id: str) -> Agent:
        """The agent is connected: end their reconnect grace period (if one runs) and route to them again.

        The connection is registered before this runs, so a grace timer firing meanwhile either sees it, or
        wins the versioned write and this finds the agent Offline: never both Offline and resumed.
        """

        def step() -> tuple[Agent, bool]:
            agent = self._agent(agent_id)
            if agent.disconnected_at is None:
                return agent, False
            updated = agent.reconnected()
            self.store.save(agents=[(agent, updated)])
            return updated, True

        try:
            agent, changed = on_conflict(step)
        except StillConflicting:
            raise Conflict(f"agent {agent_id} changed too often; retry") from None
        if changed:
            logger.info("agent reconnected within the grace period", extra={"agent_id": agent_id})
            if agent.takes_work:
                self.bus.publish(AgentFreed(agent_id, cause=f"reconnected-{agent.version}"))
        return agent

    def grace_expired(self, agent_id: str, disconnected_at: str, now: str) -> str:
        """The grace period of the drop at ``disconnected_at`` is over: Offline unless the agent is connected again.

        Safe to run again, and for a drop that a reconnect (or a later drop) made stale: it then changes nothing.
        """

        def step() -> str:
            agent = self.store.get_agent(agent_id)
            if agent is None or agent.disconnected_at is None:
                return "not disconnected"
            if agent.disconnected_at != disconnected_at:
                return "stale"
            if self.store.connections_of(agent_id):
                self.resume(agent_id)
                return "reconnected"
            self.go_offline(agent, now)
            logger.info("agent offline: no reconnect within the grace period", extra={"agent_id": agent_id})
            return "offline"

        return or_else(step, "conflicts")

    def go_offline(self, agent: Agent, now: str) -> None:
        """Set the agent Offline (ending any grace period); offers open to them move on. Work they accepted stays."""
        if agent.presence is not Presence.OFFLINE or agent.disconnected_at is not None:
            self.store.save(agents=[(agent, agent.gone_offline(now))])
        for contact in self.store.work_of(agent.agent_id):
            if contact.state is ContactState.OFFERED and contact.offered_to == agent.agent_id and contact.offer_id:
                self.withdraw_offer(agent.agent_id, contact.contact_id, contact.offer_id)

    # --- timers ---------------------------------------------------------------------------------

    def on_timer(self, event: OfferTimeout | EscalationDue | ReconnectGraceExpired, now: str) -> Outcome:
        """A timer fired (the bus may deliver early, e.g. SQS delays at most 15 minutes: it is re-armed)."""
        if clock.seconds_between(now, event.due_at) > 1:
            self.bus.schedule(event, event.due_at, now)
            return Outcome(note="re-armed")
        if isinstance(event, ReconnectGraceExpired):
            return Outcome(note=self.grace_expired(event.agent_id, event.disconnected_at, now))
        if isinstance(event, OfferTimeout):
            return Outcome(note="expired" if self.expire_offer(event.contact_id, event.offer_id, now) else "answered")
        return Outcome(note="escalated" if self.escalate(event.contact_id, event.step, now) else "nothing to escalate")

    def expire_offer(self, contact_id: str, offer_id: str, now: str) -> bool:
        """An offer not answered in time goes back to the queue, never again to that agent."""
        config = self.config()

        def step() -> tuple[str, Agent | None, Agent | None] | None:
            contact = self.store.get_contact(contact_id)
            if contact is None or contact.state is not ContactState.OFFERED or contact.offer_id != offer_id:
                return None
            if contact.offer_expires_at and contact.offer_expires_at > now:
                return None
            agent_id = contact.offered_to or ""
            agent = self.store.get_agent(agent_id)
            changed = (
                self._answered_since_last_expiry(agent)
                .released(contact.channel, contact.cost, now)
                .let_offer_expire(config.max_consecutive_expired_offers, now)
                if agent
                else None
            )
            requeued = contact.requeued(agent_id)
            self.store.save(
                contacts=[(contact, requeued)],
                agents=[(agent, changed)] if agent and changed else [],
                effects=[records.answered(contact, requeued, "expired", now)],
            )
            return agent_id, agent, changed

        done = or_else(step, None)
        if done is None:
            return False
        agent_id, agent, changed = done
        logger.info("offer expired", extra={"contact_id": contact_id, "agent_id": agent_id, "offer_id": offer_id})
        self.notifier.to_agent(agent_id, {"type": "offer_withdrawn", "offer_id": offer_id, "reason": "expired"})
        if changed and changed.presence is Presence.AWAY and agent and agent.presence is not Presence.AWAY:
            self.notifier.to_agent(agent_id, {"type": "presence", "presence": "Away", "reason": "offers expired"})
        self.bus.publish(ContactRequeued(contact_id, offer_id), AgentFreed(agent_id, cause=f"expired-{offer_id}"))
        return True

    def _answered_since_last_expiry(self, agent: Agent) -> Agent:
        """The agent with their count of offers expired in a row started again if they accepted one of the
        contacts they hold after the last expired (contacts they closed since started it again then)."""
        if not agent.consecutive_expired:
            return agent  # nothing to start again: no read
        for contact in self.store.work_of(agent.agent_id):
            if contact.assigned_to == agent.agent_id:
                agent = agent.answered_since(contact.accepted_at)
        return agent

    def _arm_next_step(self, contact: Contact, now: str) -> None:
        if contact.next_step < len(contact.escalation):
            due = step_due(contact, contact.next_step)
            self.bus.schedule(EscalationDue(contact.contact_id, contact.next_step, due), due, now)

    def escalate(self, contact_id: str, step: int, now: str) -> bool:
        """Apply escalation step ``step`` if it is the contact's next one and it is due; then offer again."""

        def attempt() -> Contact | None:
            contact = self.store.get_contact(contact_id)
            if contact is None or contact.state not in (ContactState.QUEUED, ContactState.OFFERED):
                return None
            if contact.next_step != step or step >= len(contact.escalation) or step_due(contact, step) > now:
                return None
            changed = apply_step(contact, contact.escalation[step])
            self.store.save(contacts=[(contact, changed)], effects=[records.escalated(changed, step, now)])
            return changed

        changed = or_else(attempt, None)
        if changed is None:
            return False
        logger.info(
            "escalated",
            extra={
                "contact_id": contact_id,
                "step": step,
                "queues": list(changed.queues),
                "priority": changed.priority,
            },
        )
        self._arm_next_step(changed, now)
        if changed.state is ContactState.QUEUED:
            self.offer_contact(contact_id, now, known=changed)
        return True

    def overflow_when_closed(self, contact: Contact, config: RoutingConfig, now: str) -> Contact:
        """Move a waiting contact whose queues are all closed to where their out-of-hours overflow leads, if
        anywhere."""
        at = clock.parse_iso(now)
        queues = tuple(dict.fromkeys(hours.overflow_destination(config, q, at) or q for q in contact.queues))
        if queues == contact.queues:
            return contact
        moved = contact.overflowed(queues)
        try:
            self.store.save(contacts=[(contact, moved)], effects=[records.overflowed(moved, now)])
        except TransactionConflict:
            return contact  # changed meanwhile (offered, escalated): the next sweep looks again
        logger.info("overflowed out of hours", extra={"contact_id": contact.contact_id, "queues": list(queues)})
        return moved

    # --- telling the customer where they stand --------------------------------------------------

    def acknowledge(self, contact_id: str, now: str, known: Contact | None = None) -> bool:
        """Tell a waiting customer their place in the queue and the expected wait, at most once per interval.

        ``known``: the contact as the caller just wrote it, saving a read (a stale one only loses the save).
        """
        config = self.config()
        contact = known or self.store.get_contact(contact_id)
        if contact is None or contact.state is not ContactState.QUEUED:
            return False
        if not self.messages.reaches(contact.channel):
            return False  # a caller hears the call's hold message; a text would only fail
        if (
            contact.acknowledged_at
            and clock.seconds_between(contact.acknowledged_at, now) < config.acknowledgement_interval_seconds
        ):
            return False
        home = contact.queues[0]
        position, stats = self.store.place_in_queue(contact, home)
        wait = expected_wait_seconds(position, stats)
        text = config.acknowledgement_message.format(position=position + 1, wait_minutes=max(1, round(wait / 60)))
        return self._mark_acknowledged(contact, now, text, "queue_position")

    def _mark_acknowledged(self, contact: Contact, now: str, text: str, kind: str) -> bool:
        """Mark the contact as told and record what it is told, in one save: a crash between the two can
        neither lose the message nor send it twice (a redelivery finds the contact told; the message is
        pending-send, so the sweeper queues it if its dispatch below is lost)."""
        message = self.messages.prepare(contact.contact_id, contact.customer_id, contact.channel, text, kind, now)
        try:
            self.store.save(contacts=[(contact, contact.acknowledged(now))], effects=[CustomerMessage(message)])
        except TransactionConflict:
            return False  # another delivery acknowledged (or offered) it just now
        self.messages.dispatch(message)
        return True

    # --- the safety net -------------------------------------------------------------------------

    def sweep(self, now: str | None = None) -> Outcome:
        """Every minute: expire offers past due, end reconnect grace periods past due, fire escalation steps past
        due, offer what waits.

        A closed queue's contacts still escalate (a step may move them to an open queue) but are offered only
        once a queue of theirs is open: the first sweep after opening offers what waited overnight. A contact
        still waiting when its queue closes follows that queue's out-of-hours overflow, as a new one would.
        """
        now = now or self.clock.now()
        config = self.config()
        for contact in self.store.expired_offers(now):
            if contact.offer_id:
                self.expire_offer(contact.contact_id, contact.offer_id, now)
        grace_started_before = clock.plus_seconds(now, -self.settings.reconnect_grace_seconds)
        for agent_id, disconnected_at in self.store.disconnected_before(grace_started_before):
            self.grace_expired(agent_id, disconnected_at, now)
        offers: list[Offer] = []
        for queue_name in config.queues:
            for contact in self.store.waiting_contacts(queue_name, SWEEP_PAGE):
                while contact.next_step < len(contact.escalation) and step_due(contact, contact.next_step) <= now:
                    if not self.escalate(contact.contact_id, contact.next_step, now):
                        break
                    contact = self.store.get_contact(contact.contact_id) or contact
                if not hours.open_queues(config, contact.queues, clock.parse_iso(now)):
                    contact = self.overflow_when_closed(contact, config, now)
                    if not hours.open_queues(config, contact.queues, clock.parse_iso(now)):
                        continue
                offer = self.offer_contact(contact.contact_id, now)
                if offer:
                    offers.append(offer)
        return Outcome(offers=tuple(offers), note="sweep")


# --- pure helpers -----------------------------------------------------------------------------------


def preferred_agent(customer: dict[str, Any], at: str, config: RoutingConfig) -> str | None:
    """The agent who served this customer last, if that was within the configured window."""
    agent_id, served_at = customer.get("last_agent_id"), customer.get("last_served_at")
    if not agent_id or not served_at:
        return None
    if clock.seconds_between(served_at, at) > config.preferred_agent_window_seconds:
        return None
    return str(agent_id)


def requirements(config: RoutingConfig) -> list[dict[str, int]]:
    """Every set of required skills a contact can have under ``config``: each rule's, after each of its steps."""
    # A config is read once and kept (frozen), and every freed agent asks: worked out once per config object.
    cached = _requirements_of.get(id(config))
    if cached is None or cached[0] is not config:
        cached = (config, _requirements(config))
        _requirements_of.clear()  # one config is in force at a time; a replaced one is not kept alive
        _requirements_of[id(config)] = cached
    return [dict(skills) for skills in cached[1]]


_requirements_of: dict[int, tuple[RoutingConfig, list[dict[str, int]]]] = {}


def _requirements(config: RoutingConfig) -> list[dict[str, int]]:
    # Needing no skill is always possible (a rule without skills, or a step dropping the last one).
    found: dict[str, dict[str, int]] = {matching.requirement_key({}): {}}
    for rule in config.rules:
        skills = dict(rule.skills)
        found[matching.requirement_key(skills)] = skills
        for step in rule.escalation:
            skills = relaxed_skills(skills, step.as_dict())
            found[matching.requirement_key(skills)] = skills
    return list(found.values())


def offer_payload(contact: Contact) -> dict[str, object]:
    """What the agent's console receives for an offer."""
    return {
        "type": "offer",
        "offer_id": contact.offer_id,
        "contact_id": contact.contact_id,
        "conversation_id": contact.contact_id,
        "channel": contact.channel,
        "queue": contact.queues[0],
        "priority": contact.priority,
        "skills": contact.required_skills,
        "customer": {"customer_id": contact.customer_id, "name": contact.customer_name},
        "returning_customer": contact.preferred_agent is not None,
        "enqueued_at": contact.enqueued_at,
        "offered_at": contact.offered_at,
        "sla_deadline": contact.sla_deadline,
        "expires_at": contact.offer_expires_at,
    }


def step_due(contact: Contact, index: int) -> str:
    """When escalation step ``index`` fires: a wait after queueing, or a margin before the SLA deadline."""
    step = contact.escalation[index]
    if step.get("after_seconds") is not None:
        return clock.plus_seconds(contact.enqueued_at, step["after_seconds"])
    return clock.plus_seconds(contact.sla_deadline, -int(step.get("before_breach_seconds") or 0))


def apply_step(contact: Contact, step: dict[str, Any]) -> Contact:
    """A contact after one escalation step: skills relaxed or dropped, queues widened or overflowed, priority up."""
    skills = relaxed_skills(contact.required_skills, step)
    if step.get("overflow_to"):
        queues: tuple[str, ...] = (step["overflow_to"],)
    else:
        queues = tuple(dict.fromkeys([*contact.queues, *(step.get("add_queues") or ())]))
    priority = min(9, contact.priority + int(step.get("raise_priority") or 0))
    return contact.escalated(queues=queues, required_skills=skills, priority=priority)


def relaxed_skills(required: dict[str, int], step: dict[str, Any]) -> dict[str, int]:
    """Required skills after an escalation step: minimums lowered (``set_skills``), skills dropped."""
    skills = {**required}
    for skill, level in (step.get("set_skills") or {}).items():
        if skill in skills:
            skills[skill] = int(level)
    for skill in step.get("drop_skills") or ():
        skills.pop(skill, None)
    return skills


def expected_wait_seconds(position: int, stats: dict[str, Any]) -> float:
    """Ahead of you ``position`` contacts; agents finish one every ``avg handle / working`` seconds on average."""
    average = float(stats.get("avg_handle_seconds") or 300)
    working = max(1, int(stats.get("working") or 0))
    return math.ceil((position + 1) / working) * average


def _carried_agent(event: AgentFreed) -> Agent | None:
    """The agent an ``AgentFreed`` carries, or None (none, or not readable: they are read instead)."""
    if event.agent is None:
        return None
    try:
        return Agent.from_dict(event.agent)
    except (KeyError, TypeError, ValueError):
        return None
