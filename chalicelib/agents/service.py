"""What agents do: register, set presence, connect, and accept, decline or close contacts.

Everything that frees an agent's capacity publishes ``AgentFreed`` so the
router hands them the next waiting contact; a decline publishes
``ContactRequeued`` so the contact goes to the next agent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any, Literal, TypeVar

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from chalicelib import clock
from chalicelib.errors import Conflict, InvalidPayload, NotFound
from chalicelib.notify import push
from chalicelib.routing import engine
from chalicelib.routing.config import current_config
from chalicelib.routing.events import AgentFreed, ReconnectGraceExpired
from chalicelib.routing.model import Agent, Contact, Presence
from chalicelib.routing.router import Router
from chalicelib.settings import get_settings
from chalicelib.store import queue
from chalicelib.store import routing as store
from chalicelib.store import voice as voice_store
from chalicelib.store.dynamo import TransactionConflict
from chalicelib.store.retry import StillConflicting, on_conflict, or_else

logger = Logger(service="switchboard", child=True)
WEBCHAT = "webchat"

T = TypeVar("T")
Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


E164 = Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")]
VoiceMode = Literal["softphone", "phone"]


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
    # How they take phone calls: the console's softphone (the default), or a call to their own number.
    phone: E164 | None = None
    voice_mode: VoiceMode | None = None


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
    voice_setup = _voice_setup(None, spec.phone, spec.voice_mode)
    try:
        store.create_agent(agent)
    except TransactionConflict:
        raise Conflict(f"agent {spec.agent_id} already exists") from None
    if voice_setup is not None:
        voice_store.set_agent_phone(agent.agent_id, *voice_setup)
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
    phone: E164 | None = None
    voice_mode: VoiceMode | None = None


def _voice_setup(
    current: dict[str, Any] | None, phone: str | None, voice_mode: str | None
) -> tuple[str | None, str] | None:
    """(phone, voice_mode) to store, None when neither is given; ``phone`` mode needs a number."""
    if phone is None and voice_mode is None:
        return None
    number = phone or (current or {}).get("phone")
    mode = voice_mode or (current or {}).get("voice_mode") or "softphone"
    if mode == "phone" and not number:
        raise InvalidPayload(
            "voice_mode phone needs the agent's phone number", [{"field": "phone", "problem": "is required"}]
        )
    return number, mode


def update_agent(agent_id: str, document: Any) -> Agent:
    """Change an agent's profile, skills, queues or capacity; their current load is kept."""
    changes: AgentChanges = validate(AgentChanges, document)
    if changes.queues:
        unknown = [q for q in changes.queues if q not in current_config().queues]
        if unknown:
            raise InvalidPayload(f"unknown queues: {', '.join(unknown)}", [{"field": "queues", "problem": "unknown"}])
    values = {k: v for k, v in changes.model_dump().items() if v is not None}
    phone, voice_mode = values.pop("phone", None), values.pop("voice_mode", None)
    if phone is not None or voice_mode is not None:
        setup = _voice_setup(voice_store.agent_phone(agent_id), phone, voice_mode)
        get_agent(agent_id)
        if setup is not None:
            voice_store.set_agent_phone(agent_id, *setup)
    if "queues" in values:
        values["queues"] = tuple(dict.fromkeys(values["queues"]))

    def step() -> Agent:
        agent = get_agent(agent_id)
        updated = replace(agent, **values, version=agent.version + 1)
        _check_pool_entries(updated)
        store.save_agent(agent, updated)
        return updated

    updated = _retrying(step, agent_id)
    if updated.takes_work:
        queue.publish(AgentFreed(agent_id, cause=f"updated-{updated.version}"))
    return updated


def _retrying(step: Callable[[], T], agent_id: str) -> T:
    try:
        return on_conflict(step)
    except StillConflicting:
        raise Conflict(f"agent {agent_id} changed too often; retry") from None


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
    agent, changed = _router().set_presence(agent_id, change.presence)
    if changed:
        # A supervisor's change, or the agent's own from another tab: every console of theirs shows the truth.
        push.to_agent(agent_id, presence_frame(agent, "set"))
    return agent


def connect(agent_id: str | None, connection_id: str) -> Agent:
    """Register a WebSocket connection for an existing agent; a reconnect within the grace period resumes them."""
    if not agent_id or not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", agent_id):
        raise InvalidPayload("connect with ?agent_id=<your agent id>")
    get_agent(agent_id)
    store.add_connection(agent_id, connection_id, clock.now_iso())
    return resume(agent_id)


def resume(agent_id: str) -> Agent:
    """The agent is connected: end their reconnect grace period (if one runs) and route to them again."""
    return _router().resume(agent_id)


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

    def step() -> str | None:
        agent = store.get_agent(agent_id)
        if agent is None:
            return None
        if grace <= 0 or agent.presence is Presence.OFFLINE:
            _go_offline(agent, now)
            return None
        if agent.disconnected_at is not None:
            return None  # another connection's close started the grace period already; its timer stands
        store.save_agent(agent, agent.disconnected(now))
        return clock.plus_seconds(now, grace)

    due = or_else(step, None)
    if due is None:
        return
    queue.publish_timer(ReconnectGraceExpired(agent_id, now, due), due, now)
    logger.info("agent disconnected: reconnect grace period", extra={"agent_id": agent_id, "until": due})
    if store.connections_of(agent_id):
        resume(agent_id)  # a reconnect got in between the check above and the marker: it must not be idle


def grace_expired(agent_id: str, disconnected_at: str, now: str) -> str:
    """The grace period of the drop at ``disconnected_at`` is over: Offline unless the agent is connected again."""
    return _router().grace_expired(agent_id, disconnected_at, now)


def _go_offline(agent: Agent, now: str) -> None:
    """Set the agent Offline (ending any grace period); offers open to them move on. Work they accepted stays."""
    _router().go_offline(agent, now)


def withdraw_offer(agent_id: str, contact_id: str, offer_id: str) -> None:
    """Take back an open offer from an agent who left: the contact goes to the next agent, never back."""
    _router().withdraw_offer(agent_id, contact_id, offer_id)


def agent_of_connection(connection_id: str) -> str:
    agent_id = store.agent_of_connection(connection_id)
    if agent_id is None:
        raise NotFound("this connection is not registered to an agent; reconnect")
    return agent_id


def accept(agent_id: str, contact_id: str, offer_id: str | None = None) -> Contact:
    """Accept an offer made to this agent (accepting twice is fine). A call then connects: an agent set up with
    their own phone is called (once, however often the accept is repeated)."""
    contact = _router().accept(agent_id, contact_id, offer_id)
    if contact.channel == "voice":
        from chalicelib.voice import connect, lifecycle

        lifecycle.expect_agent(contact)
        connect.on_accept(contact)
    return contact


def decline(agent_id: str, contact_id: str, offer_id: str | None = None) -> Contact:
    """Decline an offer: the contact goes to the next agent, never back to this one."""
    return _router().decline(agent_id, contact_id, offer_id)


def close(agent_id: str, contact_id: str, wrap_up: str | None = None) -> Contact:
    """Close an assigned contact and its conversation with a wrap-up code; the agent's capacity is freed.

    A web-chat visitor's open widget is told at once (best effort: a widget that missed it reads the status
    when it reconnects).
    """
    closed = _router().close(agent_id, contact_id, wrap_up)
    if closed.channel == WEBCHAT:
        from chalicelib.notify import visitors  # only web-chat closes need it

        try:
            visitors.status(contact_id, "closed")  # a contact's id is its conversation's
        except Exception:  # the close stands; the widget learns it from its next read
            logger.warning("could not tell the visitor the conversation closed", exc_info=True)
    return closed


def _router() -> Router:
    return engine.router()


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
