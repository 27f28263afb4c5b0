"""What agents do: register, set presence, connect, and accept, decline or close contacts.

Everything that frees an agent's capacity publishes ``AgentFreed`` so the
router hands them the next waiting contact; a decline publishes
``ContactRequeued`` so the contact goes to the next agent.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from chalicelib import clock, metrics
from chalicelib.errors import Conflict, Forbidden, InvalidPayload, NotFound
from chalicelib.notify import push
from chalicelib.routing.config import current_config
from chalicelib.routing.events import AgentFreed, ContactRequeued, ReconnectGraceExpired
from chalicelib.routing.model import Agent, Contact, ContactState, Presence
from chalicelib.settings import get_settings
from chalicelib.store import conversations, queue
from chalicelib.store import routing as store
from chalicelib.store.dynamo import TransactionConflict

logger = Logger(service="switchboard", child=True)

_ATTEMPTS = 5
Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class NewAgent(BaseModel):
    """``POST /agents`` body."""

    model_config = ConfigDict(strict=True, extra="forbid")

    agent_id: Name
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    skills: dict[Name, Annotated[int, Field(ge=1, le=5)]] = Field(default_factory=dict)
    queues: Annotated[list[Name], Field(min_length=1, max_length=10)] = Field(default_factory=lambda: ["default"])
    # Capacity units (the routing config's default when absent); channel costs of their own; optional caps.
    capacity: Annotated[int, Field(ge=0, le=10_000)] | None = None
    channel_costs: dict[Name, Annotated[int, Field(ge=1, le=10_000)]] = Field(default_factory=dict)
    max_per_channel: dict[Name, Annotated[int, Field(ge=0, le=100)]] = Field(default_factory=dict)
    presence: Annotated[Presence, Field(strict=False)] = Presence.OFFLINE


def validate(model: type[BaseModel], document: Any) -> Any:
    """Validate a JSON document, turning pydantic's errors into an ``InvalidPayload`` naming each field."""
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise InvalidPayload.naming_fields(exc) from None


class WrapUp(BaseModel):
    """``POST /conversations/{id}/close`` body: how it ended (resolved, follow_up, spam...)."""

    model_config = ConfigDict(extra="forbid")

    wrap_up: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,40}$")]


class PresenceChange(BaseModel):
    """``PUT /agents/{id}/presence`` body."""

    model_config = ConfigDict(extra="forbid")

    presence: Presence


def create_agent(document: Any) -> Agent:
    spec: NewAgent = validate(NewAgent, document)
    now = clock.now_iso()
    unknown = [q for q in spec.queues if q not in current_config().queues]
    if unknown:
        raise InvalidPayload(f"unknown queues: {', '.join(unknown)}", [{"field": "queues", "problem": "unknown"}])
    agent = Agent(
        agent_id=spec.agent_id,
        name=spec.name,
        presence=spec.presence,
        skills=dict(spec.skills),
        capacity=spec.capacity if spec.capacity is not None else current_config().default_capacity,
        queues=tuple(dict.fromkeys(spec.queues)),
        channel_costs=dict(spec.channel_costs),
        max_per_channel=dict(spec.max_per_channel),
        idle_since=now,
    )
    _check_pool_entries(agent)
    try:
        store.create_agent(agent)
    except TransactionConflict:
        raise Conflict(f"agent {spec.agent_id} already exists") from None
    if agent.takes_work:
        queue.publish(AgentFreed(agent.agent_id, cause=f"created-{now}"))
    return agent


class AgentChanges(BaseModel):
    """``PATCH /agents/{id}`` body: what an admin changes (anything left out stays)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    skills: dict[Name, Annotated[int, Field(ge=1, le=5)]] | None = None
    queues: Annotated[list[Name], Field(min_length=1, max_length=10)] | None = None
    capacity: Annotated[int, Field(ge=0, le=10_000)] | None = None
    channel_costs: dict[Name, Annotated[int, Field(ge=1, le=10_000)]] | None = None
    max_per_channel: dict[Name, Annotated[int, Field(ge=0, le=100)]] | None = None


def update_agent(agent_id: str, document: Any) -> Agent:
    """Change an agent's profile, skills, queues or capacity; their current load is kept."""
    changes: AgentChanges = validate(AgentChanges, document)
    if changes.queues:
        unknown = [q for q in changes.queues if q not in current_config().queues]
        if unknown:
            raise InvalidPayload(f"unknown queues: {', '.join(unknown)}", [{"field": "queues", "problem": "unknown"}])
    values = {k: v for k, v in changes.model_dump().items() if v is not None}
    if "queues" in values:
        values["queues"] = tuple(dict.fromkeys(values["queues"]))
    for _ in range(_ATTEMPTS):
        agent = get_agent(agent_id)
        updated = replace(agent, **values, version=agent.version + 1)
        _check_pool_entries(updated)
        try:
            store.save_agent(agent, updated)
        except TransactionConflict:
            continue
        if updated.takes_work:
            queue.publish(AgentFreed(agent_id, cause=f"updated-{updated.version}"))
        return updated
    raise Conflict(f"agent {agent_id} changed too often; retry")


def _check_pool_entries(agent: Agent) -> None:
    """Refuse more (queue, skill) pairs than the availability index keeps for one agent (``MAX_POOL_ENTRIES``)."""
    entries = store.pool_entries(agent)
    if entries > store.MAX_POOL_ENTRIES:
        raise InvalidPayload(
            f"too many skills for this many queues: queues x (skills + 1) is {entries}, at most"
            f" {store.MAX_POOL_ENTRIES} (each pair is an index entry routing rewrites with every offer)",
            [{"field": "skills", "problem": "too many for the queues"}],
        )


def get_agent(agent_id: str) -> Agent:
    agent = store.get_agent(agent_id)
    if agent is None:
        raise NotFound(f"no agent {agent_id}")
    return agent


def set_presence(agent_id: str, document: Any) -> Agent:
    change: PresenceChange = validate(PresenceChange, document)
    for _ in range(_ATTEMPTS):
        agent = get_agent(agent_id)
        if agent.presence is change.presence:
            return agent
        now = clock.now_iso()
        updated = agent.with_presence(change.presence, now)
        try:
            store.save_agent(agent, updated)
        except TransactionConflict:
            continue
        if updated.takes_work:
            queue.publish(AgentFreed(agent_id, cause=f"presence-{updated.version}"))
        # A supervisor's change, or the agent's own from another tab: every console of theirs shows the truth.
        push.to_agent(agent_id, presence_frame(updated, "set"))
        return updated
    raise Conflict(f"agent {agent_id} changed too often; retry")


def connect(agent_id: str | None, connection_id: str) -> Agent:
    """Register a WebSocket connection for an existing agent; a reconnect within the grace period resumes them."""
    if not agent_id or not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", agent_id):
        raise InvalidPayload("connect with ?agent_id=<your agent id>")
    get_agent(agent_id)
    store.add_connection(agent_id, connection_id, clock.now_iso())
    return resume(agent_id)


def resume(agent_id: str) -> Agent:
    """The agent is connected: end their reconnect grace period (if one runs) and route to them again.

    The connection is registered before this runs, so a grace timer firing meanwhile either sees it, or wins
    the versioned write and this finds the agent Offline: never both Offline and resumed.
    """
    for _ in range(_ATTEMPTS):
        agent = get_agent(agent_id)
        if agent.disconnected_at is None:
            return agent
        updated = agent.reconnected()
        try:
            store.save_agent(agent, updated)
        except TransactionConflict:
            continue
        logger.info("agent reconnected within the grace period", extra={"agent_id": agent_id})
        if updated.takes_work:
            queue.publish(AgentFreed(agent_id, cause=f"reconnected-{updated.version}"))
        return updated
    raise Conflict(f"agent {agent_id} changed too often; retry")


def heartbeat(agent_id: str) -> Agent:
    """A connected client says it is still there: the agent as they are now (resumed, should a grace period run)."""
    return resume(agent_id)


def presence_frame(agent: Agent, reason: str) -> dict[str, Any]:
    """What the agent's WebSocket is told of their presence, with how often to send a heartbeat."""
    every = get_settings().heartbeat_seconds
    return {
        "type": "presence",
        "presence": agent.presence.value,
        "heartbeat_seconds": int(every) if float(every).is_integer() else every,
        "reason": reason,
    }


def disconnect(connection_id: str) -> None:
    """A WebSocket closed. When it was the agent's last one, the reconnect grace period starts: they keep their
    presence, offers and work for ``SWITCHBOARD_RECONNECT_GRACE_SECONDS``, then go Offline unless they reconnected.
    """
    agent_id = store.agent_of_connection(connection_id)
    if not agent_id:
        return
    store.remove_connection(agent_id, connection_id)
    if store.connections_of(agent_id):
        return
    grace = get_settings().reconnect_grace_seconds
    now = clock.now_iso()
    for _ in range(_ATTEMPTS):
        agent = store.get_agent(agent_id)
        if agent is None:
            return
        if grace <= 0 or agent.presence is Presence.OFFLINE:
            try:
                _go_offline(agent, now)
            except TransactionConflict:
                continue
            return
        if agent.disconnected_at is not None:
            return  # another connection's close started the grace period already; its timer stands
        try:
            store.save_agent(agent, agent.disconnected(now))
        except TransactionConflict:
            continue
        due = clock.plus_seconds(now, grace)
        queue.publish_timer(ReconnectGraceExpired(agent_id, now, due), due, now)
        logger.info("agent disconnected: reconnect grace period", extra={"agent_id": agent_id, "until": due})
        if store.connections_of(agent_id):
            resume(agent_id)  # a reconnect got in between the check above and the marker: it must not be idle
        return


def grace_expired(agent_id: str, disconnected_at: str, now: str) -> str:
    """The grace period of the drop at ``disconnected_at`` is over: Offline unless the agent is connected again.

    Safe to run again, and for a drop that a reconnect (or a later drop) made stale: it then changes nothing.
    """
    for _ in range(_ATTEMPTS):
        agent = store.get_agent(agent_id)
        if agent is None or agent.disconnected_at is None:
            return "not disconnected"
        if agent.disconnected_at != disconnected_at:
            return "stale"
        if store.connections_of(agent_id):
            resume(agent_id)
            return "reconnected"
        try:
            _go_offline(agent, now)
        except TransactionConflict:
            continue
        logger.info("agent offline: no reconnect within the grace period", extra={"agent_id": agent_id})
        return "offline"
    return "conflicts"


def _go_offline(agent: Agent, now: str) -> None:
    """Set the agent Offline (ending any grace period); offers open to them move on. Work they accepted stays."""
    if agent.presence is not Presence.OFFLINE or agent.disconnected_at is not None:
        store.save_agent(agent, agent.gone_offline(now))
    for contact in store.work_of(agent.agent_id):
        if contact.state is ContactState.OFFERED and contact.offered_to == agent.agent_id and contact.offer_id:
            withdraw_offer(agent.agent_id, contact.contact_id, contact.offer_id)


def withdraw_offer(agent_id: str, contact_id: str, offer_id: str) -> None:
    """Take back an open offer from an agent who left: the contact goes to the next agent, never back."""
    for _ in range(_ATTEMPTS):
        contact = store.get_contact(contact_id)
        if contact is None or contact.state is not ContactState.OFFERED or contact.offer_id != offer_id:
            return
        agent = get_agent(agent_id)
        released = agent.released(contact.channel, contact.cost, clock.now_iso())
        try:
            store.save(contacts=[(contact, contact.requeued(agent_id))], agents=[(agent, released)])
        except TransactionConflict:
            continue
        queue.publish(ContactRequeued(contact_id, offer_id))
        return


def agent_of_connection(connection_id: str) -> str:
    agent_id = store.agent_of_connection(connection_id)
    if agent_id is None:
        raise NotFound("this connection is not registered to an agent; reconnect")
    return agent_id


def _contact(contact_id: str, agent_id: str | None = None) -> Contact:
    """The contact; with ``agent_id``, only if it is (or was just) offered or assigned to that agent."""
    contact = store.get_contact(contact_id)
    if contact is None:
        raise NotFound(f"no contact {contact_id}")
    if agent_id is not None and agent_id not in (contact.offered_to, contact.assigned_to, *contact.declined_by):
        raise Forbidden("this conversation is not offered or assigned to you")
    return contact


def accept(agent_id: str, contact_id: str, offer_id: str | None = None) -> Contact:
    """Accept an offer made to this agent (accepting twice is fine)."""
    for _ in range(_ATTEMPTS):
        contact = _contact(contact_id, agent_id)
        if contact.state is ContactState.ASSIGNED and contact.assigned_to == agent_id:
            return contact
        if contact.state is not ContactState.OFFERED or contact.offered_to != agent_id:
            raise Conflict(f"contact {contact_id} is not offered to you (any more)")
        if offer_id is not None and contact.offer_id != offer_id:
            raise Conflict(f"offer {offer_id} is no longer open")
        now = clock.now_iso()
        assigned = contact.assigned(now)
        agent = get_agent(agent_id)
        agents = [(agent, agent.answered())] if agent.consecutive_expired else []
        try:
            store.save(contacts=[(contact, assigned)], agents=agents, extra=store.assignment_actions(assigned))
        except TransactionConflict:
            continue
        home = contact.queues[0]
        met = now <= contact.sla_deadline if contact.sla_deadline else True
        store.record_started(home, met)
        metrics.wait_until_accept(clock.seconds_between(contact.enqueued_at, now), home, contact.channel)
        metrics.sla(met, home, contact.channel)
        return assigned
    raise Conflict(f"contact {contact_id} changed too often; retry")


def decline(agent_id: str, contact_id: str, offer_id: str | None = None) -> Contact:
    """Decline an offer: the contact goes to the next agent, never back to this one."""
    for _ in range(_ATTEMPTS):
        contact = _contact(contact_id, agent_id)
        if contact.state is not ContactState.OFFERED or contact.offered_to != agent_id:
            raise Conflict(f"contact {contact_id} is not offered to you (any more)")
        if offer_id is not None and contact.offer_id != offer_id:
            raise Conflict(f"offer {offer_id} is no longer open")
        declined_offer = contact.offer_id or ""
        agent = get_agent(agent_id)
        released = agent.released(contact.channel, contact.cost, clock.now_iso())
        requeued = contact.requeued(agent_id)
        try:
            store.save(contacts=[(contact, requeued)], agents=[(agent, released)])
        except TransactionConflict:
            continue
        queue.publish(
            ContactRequeued(contact_id, declined_offer),
            AgentFreed(agent_id, cause=f"declined-{declined_offer}"),
        )
        return requeued
    raise Conflict(f"contact {contact_id} changed too often; retry")


def close(agent_id: str, contact_id: str, wrap_up: str | None = None) -> Contact:
    """Close an assigned contact and its conversation with a wrap-up code; the agent's capacity is freed."""
    for _ in range(_ATTEMPTS):
        contact = _contact(contact_id, agent_id)
        if contact.state is ContactState.CLOSED and contact.assigned_to == agent_id:
            return contact
        if contact.state is not ContactState.ASSIGNED or contact.assigned_to != agent_id:
            raise Conflict(f"contact {contact_id} is not assigned to you")
        now = clock.now_iso()
        agent = get_agent(agent_id)
        closed = contact.closed(now, wrap_up)
        customer_id = (conversations.get_conversation(contact_id) or {}).get("customer_id", contact.customer_id)
        try:
            store.save(
                contacts=[(contact, closed)],
                agents=[(agent, agent.released(contact.channel, contact.cost, now))],
                extra=store.closing_actions(closed, customer_id),
            )
        except TransactionConflict:
            continue
        conversations.forget_open_conversation(customer_id, contact_id)
        if contact.accepted_at:
            store.record_handled(contact.queues[0], clock.seconds_between(contact.accepted_at, now))
        queue.publish(AgentFreed(agent_id, cause=f"closed-{contact_id}"))
        return closed
    raise Conflict(f"contact {contact_id} changed too often; retry")


def agent_view(agent: Agent) -> dict[str, Any]:
    """An agent as the REST API shows it."""
    return {
        "agent_id": agent.agent_id,
        "name": agent.name,
        "presence": agent.presence.value,
        "skills": agent.skills,
        "queues": list(agent.queues),
        "capacity": agent.capacity,
        "used": agent.used,
        "channel_costs": agent.channel_costs,
        "max_per_channel": agent.max_per_channel,
        "load": agent.load,
    }
