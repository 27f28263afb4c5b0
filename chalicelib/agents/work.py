"""An agent's work on their conversations: what they have, the customer's history, notes and transfers.

Every function takes the acting agent and refuses (403) a conversation that
is not offered or assigned to them; supervisors and admins pass
``oversee=True`` to read any conversation.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from chalicelib import clock
from chalicelib.agents.service import get_agent, validate
from chalicelib.errors import Conflict, Forbidden, InvalidPayload, NotFound
from chalicelib.routing import records
from chalicelib.routing.config import current_config
from chalicelib.routing.events import AgentFreed, ContactRequeued
from chalicelib.routing.model import Agent, Contact, ContactState
from chalicelib.store import attachments, queue, retry
from chalicelib.store import conversations as conversation_store
from chalicelib.store import routing as store

logger = Logger(service="switchboard", child=True)

NoteText = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
ClientMessageId = Annotated[str, StringConstraints(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]


def _contact_of(agent_id: str, conversation_id: str, oversee: bool = False) -> Contact:
    contact = store.get_contact(conversation_id)
    if contact is None:
        raise NotFound(f"no conversation {conversation_id}")
    if not oversee and agent_id not in (contact.assigned_to, contact.offered_to):
        raise Forbidden("this conversation is not offered or assigned to you")
    return contact


def contact_seen_by(agent_id: str, conversation_id: str, oversee: bool = False) -> Contact:
    """The contact, when this agent may see its conversation (offered or assigned to them; any, to ``oversee``):
    what guards anything read from the conversation (``NotFound``, ``Forbidden``)."""
    return _contact_of(agent_id, conversation_id, oversee)


def contact_view(contact: Contact) -> dict[str, Any]:
    return {
        "conversation_id": contact.contact_id,
        "customer_id": contact.customer_id,
        "customer_name": contact.customer_name,
        "state": contact.state.value,
        "channel": contact.channel,
        "queues": list(contact.queues),
        "priority": contact.priority,
        "sla_deadline": contact.sla_deadline,
        "enqueued_at": contact.enqueued_at,
        "offer_id": contact.offer_id,
        "offer_expires_at": contact.offer_expires_at,
        "accepted_at": contact.accepted_at,
    }


def my_conversations(agent_id: str) -> list[dict[str, Any]]:
    """What is offered to or assigned to the agent now."""
    return [contact_view(c) for c in store.work_of(agent_id)]


def conversation(agent_id: str, conversation_id: str, oversee: bool = False) -> dict[str, Any]:
    """The conversation with the customer's whole history, every channel, in one timeline."""
    contact = _contact_of(agent_id, conversation_id, oversee)
    meta = conversation_store.get_conversation(conversation_id) or {}
    customer_id = meta.get("customer_id", contact.customer_id)
    profile = conversation_store.get_customer(customer_id) or {}
    return {
        **contact_view(contact),
        "status": meta.get("status"),
        "customer": {
            "customer_id": customer_id,
            "name": profile.get("name"),
            "email": profile.get("email"),
            "phone": profile.get("phone"),
            "tier": profile.get("tier"),
            "identities": sorted(profile.get("identities", ())),
        },
        "timeline": [
            {k: v for k, v in attachments.signed(m).items() if k not in ("pk", "sk", "type")}
            for m in conversation_store.timeline(customer_id)
        ],
        **_callback_of(contact),
    }


def _callback_of(contact: Contact) -> dict[str, Any]:
    """A call whose caller asked to be called back: the number, and how the call back stands (voice.callback)."""
    if contact.channel != "voice":
        return {}
    from chalicelib.store import voice as voice_store

    callback = (voice_store.get_call(contact.contact_id) or {}).get("callback")
    if not callback:
        return {}
    shown = ("to", "requested_at", "attempts", "last_result", "connected_at", "failed_at")
    return {"callback": {k: callback[k] for k in shown if k in callback}}


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: NoteText


def add_note(agent_id: str, conversation_id: str, document: Any) -> dict[str, Any]:
    """An internal note in the timeline: seen by agents, never sent to the customer."""
    note: Note = validate(Note, document)
    contact = _contact_of(agent_id, conversation_id)
    now = clock.now_iso()
    note_id = "note_" + uuid.uuid4().hex[:20]
    conversation_store.add_note(contact.customer_id, conversation_id, note_id, agent_id, note.text, now)
    return {"message_id": note_id, "conversation_id": conversation_id, "received_at": now}


class Transfer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    queue: Name | None = None
    agent_id: Name | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Transfer:
        if (self.queue is None) == (self.agent_id is None):
            raise ValueError("transfer to exactly one of queue or agent_id")
        return self


def transfer(agent_id: str, conversation_id: str, document: Any) -> dict[str, Any]:
    """Hand an assigned conversation to a queue or to one agent; it is routed again and this agent is freed.
    A call goes through the voice path too: its caller held, the agent's leg hung up (``chalicelib.voice``)."""
    target: Transfer = validate(Transfer, document)
    if target.queue and target.queue not in current_config().queues:
        raise InvalidPayload(f"no queue {target.queue}", [{"field": "queue", "problem": "unknown queue"}])
    if target.agent_id == agent_id:
        raise InvalidPayload("transfer to someone else", [{"field": "agent_id", "problem": "that is you"}])
    call = _hold_call_for_transfer(agent_id, conversation_id)
    if call is None:
        return hand_over(agent_id, conversation_id, target)
    try:
        return hand_over(agent_id, conversation_id, target, then=lambda: _finish_call_transfer(conversation_id, call))
    except Exception:
        _resume_call(conversation_id, call)
        raise


def hand_over(
    agent_id: str, conversation_id: str, target: Transfer, then: Callable[[], None] | None = None
) -> dict[str, Any]:
    """The routing side of a transfer (validated ``target``): the contact requeued, this agent freed. ``then``
    runs once that is committed and before the router hears of it (a call's leg freed before the next accept)."""
    # To an agent: it waits in the colleague's queues, reserved for them.
    queues = (target.queue,) if target.queue else get_agent(str(target.agent_id)).queues

    def moved_on() -> Contact:
        contact = _contact_of(agent_id, conversation_id)
        if contact.state is not ContactState.ASSIGNED or contact.assigned_to != agent_id:
            raise Conflict("only a conversation assigned to you can be transferred")
        now = clock.now_iso()
        moved = contact.transferred(queues=queues, to_agent=target.agent_id, now=now)
        agent = get_agent(agent_id)
        store.save(
            contacts=[(contact, moved)],
            agents=[(agent, agent.answered_since(contact.accepted_at).released(contact.channel, contact.cost, now))],
            extra=store.lifecycle_actions([records.transferred(contact, moved, now)]),
        )
        return moved

    try:
        moved = retry.on_conflict(moved_on)
    except retry.StillConflicting:
        raise Conflict("the conversation changed too often; retry") from None
    # The conversation no longer names this agent while it waits (the next accept names the next one).
    store.forget_assignment(conversation_id, agent_id)
    if then is not None:
        then()
    queue.publish(
        ContactRequeued(conversation_id, f"transfer-{moved.version}"),
        AgentFreed(agent_id, cause=f"transferred-{conversation_id}-{moved.version}"),
    )
    return {"conversation_id": conversation_id, "queues": list(queues), "reserved_for": target.agent_id}


def _hold_call_for_transfer(agent_id: str, conversation_id: str) -> dict[str, Any] | None:
    """A call goes through the voice path (``chalicelib.voice.controls``): its caller on hold first (409 when the
    call is not connected); None for any other channel."""
    contact = _contact_of(agent_id, conversation_id)
    if contact.channel != "voice":
        return None
    from chalicelib.voice import controls

    return controls.hold_for_transfer(agent_id, conversation_id)


def _finish_call_transfer(conversation_id: str, call: dict[str, Any]) -> None:
    from chalicelib.voice import controls

    controls.finish_transfer(conversation_id, call)


def _resume_call(conversation_id: str, call: dict[str, Any]) -> None:
    from chalicelib.voice import controls

    controls.resume_after_failed_transfer(conversation_id, call)


def agents_cursor(value: str | None) -> str | None:
    """``?agents_after=`` of ``GET /supervisor``: an agent id (the last one of the page before), or None."""
    if value is None or re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", value):
        return value
    raise InvalidPayload(
        "agents_after takes the agents_next of the page before", [{"field": "agents_after", "problem": "not an id"}]
    )


def supervisor_view(now: str, agents_after: str | None = None) -> dict[str, Any]:
    """Per queue: waiting, the longest wait, SLA attainment, at work, agents per presence; a page of agents.

    Bounded however many contacts wait or agents exist (the console reads it when the tab opens, then follows
    ``agents.live``'s pushes): the queues' counts and their longest-waiting entry, and ``SUPERVISOR_AGENTS_PAGE``
    agents by id, those after ``agents_after``; ``agents_next`` continues the list (None on the last page).
    """
    queues = [queue_row(name, now) for name in current_config().queues]
    page, agents_next = store.agents_page(agents_after)
    agents = [agent_row(a) for a in page]
    return {
        "queues": queues,
        "agents": agents,
        "agents_next": agents_next,
        "at": now,
        "self_service": self_service_today(now),
    }


def queue_row(name: str, now: str) -> dict[str, Any]:
    """One queue's line of the supervisor's view (two reads): waiting, the longest wait, SLA attainment, at
    work, abandonment, call backs, agents per presence."""
    stats, waiting, oldest, agents_by_presence = store.queue_overview(name)
    met, breached = int(stats.get("sla_met", 0)), int(stats.get("sla_breached", 0))
    abandoned = int(stats.get("abandoned", 0))
    return {
        "queue": name,
        "waiting": waiting,
        "oldest_wait_seconds": max(0, round(clock.seconds_between(oldest, now))) if oldest else 0,
        "working": int(stats.get("working", 0)),
        "sla_attainment": round(met / (met + breached), 3) if met + breached else None,
        "avg_handle_seconds": stats.get("avg_handle_seconds"),
        "abandoned": abandoned,
        # Of the customers who stopped waiting: those who gave up (the others reached an agent, counted by
        # their SLA outcome: a call's when its agent joined).
        "abandon_rate": round(abandoned / (abandoned + met + breached), 3) if abandoned + met + breached else None,
        "avg_time_to_abandon_seconds": (
            round(float(stats.get("abandon_seconds", 0)) / abandoned, 1) if abandoned else None
        ),
        "callbacks": {k: int(stats.get(f"callbacks_{k}", 0)) for k in ("requested", "connected", "failed")},
        "agents": agents_by_presence,
    }


def agent_row(agent: Agent) -> dict[str, Any]:
    """One agent's line of the supervisor's view."""
    return {
        "agent_id": agent.agent_id,
        "name": agent.name,
        "presence": agent.presence.value,
        "queues": list(agent.queues),
        "load": agent.load,
        "used": agent.used,
        "capacity": agent.capacity,
    }


def self_service_today(now: str) -> dict[str, Any]:
    """Today's (UTC) self-service counts: per article and channel (``rows``), and summed per article and per
    channel: answered (the bot answered a first message), solved (the customer said so), handed over, unconfirmed
    (no reply before ``close_after``) and recontact (back within 72 hours after solved or unconfirmed). One query."""
    from chalicelib.store import self_service as counts

    rows = sorted(counts.day_counts(now[:10]), key=lambda r: (r["article_id"], r["channel"]))
    by_article: dict[str, dict[str, Any]] = {}
    by_channel: dict[str, dict[str, Any]] = {}
    for row in rows:
        article = by_article.setdefault(row["article_id"], {"title": row["title"], **dict.fromkeys(counts.COUNTS, 0)})
        channel = by_channel.setdefault(row["channel"], dict.fromkeys(counts.COUNTS, 0))
        for name in counts.COUNTS:
            article[name] += row[name]
            channel[name] += row[name]
    return {"day": now[:10], "rows": rows, "by_article": by_article, "by_channel": by_channel}


class Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: NoteText
    # Another identity of the same customer to answer on ("phone#+4477...", "email#a@b.c"); default: the
    # conversation's latest channel.
    identity: Annotated[str, StringConstraints(min_length=3, max_length=320)] | None = None
    channel: Name | None = None
    # The client's idempotency key, one per composed message (a UUID): a retry with the same key
    # returns the first reply instead of sending a second one.
    client_message_id: ClientMessageId | None = None


def reply(agent_id: str, conversation_id: str, document: Any) -> dict[str, Any]:
    """Only the agent the conversation is assigned to answers the customer."""
    message: Reply = validate(Reply, document)
    from chalicelib.outbound import outbox

    contact = _contact_of(agent_id, conversation_id)
    if contact.state is not ContactState.ASSIGNED or contact.assigned_to != agent_id:
        raise Conflict("accept the conversation before replying")
    now = clock.now_iso()
    # Recorded, then sent from this request (the outbox queue is only its fallback).
    sent = outbox.queue_reply(
        conversation_id,
        agent_id,
        message.text,
        message.identity,
        now,
        channel=message.channel,
        client_message_id=message.client_message_id,
        send_now=True,
    )
    if contact.first_response_at is None:
        try:
            _first_response(contact, agent_id, now)
        except Exception:
            if message.client_message_id is not None:
                raise  # the agent's retry (same key) answers with the recorded reply and marks it then
            # Without a key a retry would send the reply again: the reply stands, its first response unmarked.
            logger.exception("first response not marked", extra={"conversation_id": conversation_id})
    return sent


def _first_response(contact: Contact, agent_id: str, now: str) -> None:
    """The contact's first agent response, after its reply is recorded: its contact record first (one conditional
    update, a no-op when an earlier try of this reply got there), then the contact (versioned).

    A crash between the reply and these leaves the first response unmarked; the agent's retry (same key) answers
    with the recorded reply and marks it. A lost race on the contact is looked at again: another first reply
    marked it, or the contact moved on (a transfer, the close), and the reply stands either way.
    """

    read = [contact]  # the contact as the reply read it; read again after a lost race

    def mark() -> None:
        current = read.pop() if read else store.get_contact(contact.contact_id)
        if current is None or current.first_response_at is not None or current.assigned_to != agent_id:
            return
        store.record_first_response(current, agent_id, now)

    retry.or_else(mark, None)  # still losing after every attempt: the contact moved on, the reply stands
