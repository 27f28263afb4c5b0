"""Contact records and decision records: what the router saves beside each change of a contact.

A *contact record* is one arrival of a conversation, from the customer's first message to its close: arrived,
queued, each offer with its outcome (accepted, declined, expired, withdrawn), escalations, transfers, the first
agent response, closed with its wrap-up or abandoned, and whether the SLA was met (accepted by its deadline).
Reports and ``switchboard replay`` read a period of them. A *decision record* says why an offer went where it
went (``ports.OfferDecision``): every candidate the router looked at, its rank and ordering key, and why the
others were skipped.

Both are effects (``ports.Lifecycle``, ``ports.OfferDecision``) saved in the same all-or-nothing save as the
change they describe, so a record never tells of a change that did not happen, nor misses one. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib import clock
from chalicelib.routing.matching import Ranking
from chalicelib.routing.model import Contact, ContactState
from chalicelib.routing.ports import Lifecycle, OfferDecision
from chalicelib.routing.rules import ContactFacts

# Candidates listed per decision, ranked and skipped each (the totals count them all): a decision stays a few
# kilobytes, far under DynamoDB's 400 KB item limit.
MAX_LISTED = 25
# Offers listed in one contact record; later ones are counted (``offers_total``), so a contact offered again
# and again all night still fits in one item.
MAX_RECORDED_OFFERS = 50
ABANDONED = "abandoned"  # the wrap-up code of a contact the customer gave up on
OFFER_OUTCOMES = ("accepted", "declined", "expired", "withdrawn")
# Summary fields a record keeps from the first time they are set: a transferred contact accepted again keeps
# its first acceptance (the customer's wait, the SLA), an abandonment after it does not undo a met SLA.
SET_ONCE = frozenset(
    {
        "contact_id",
        "customer_id",
        "channel",
        "arrived_at",
        "queued_at",
        "queue",
        "rule",
        "priority",
        "required_skills",
        "sla_deadline",
        "preferred_agent",
        "message_id",
        "facts",
        "accepted_at",
        "accepted_by",
        "sla_met",
        "first_response_at",
    }
)


def offer_decision(
    ranking: Ranking[Any],
    *,
    chosen_for: str,
    contact_id: str,
    offer_id: str,
    made_at: str,
    key_names: Sequence[str],
    agent_id: str | None = None,
) -> OfferDecision:
    """The decision record of an offer from the ranking it came from.

    ``chosen_for`` "contact": ``ranking`` ranks agents for the contact (the chosen one is the agent);
    "agent": it ranks a freed agent's waiting contacts (name the agent with ``agent_id``).
    """
    if agent_id is None:
        agent_id = str(getattr(ranking.chosen, "agent_id", ""))
    return OfferDecision(
        contact_id=contact_id,
        offer_id=offer_id,
        agent_id=agent_id,
        made_at=made_at,
        chosen_for=chosen_for,
        policy=ranking.policy,
        key_names=tuple(key_names),
        ranked=ranking.ranked[:MAX_LISTED],
        skipped=ranking.skipped[:MAX_LISTED],
        ranked_total=len(ranking.ranked),
        skipped_total=len(ranking.skipped),
    )


# --- lifecycle events ---------------------------------------------------------------------------


def event(kind: str, at: str, **detail: Any) -> dict[str, Any]:
    return {"kind": kind, "at": at, **{name: value for name, value in detail.items() if value is not None}}


def arrived(
    contact: Contact, now: str, queue_open: bool = True, facts: ContactFacts | None = None, message_id: str = ""
) -> Lifecycle:
    """A new contact: the customer's message came, the rules queued it.

    The record keeps what the rules saw of the customer (language, tier, tags) and which message opened the
    contact, never its text: a replay under other rules reads the text from the conversation's timeline.
    """
    return Lifecycle(
        contact,
        (
            event("arrived", contact.record_key, channel=contact.channel),
            event(
                "queued",
                now,
                queue=contact.queues[0],
                rule=contact.rule,
                priority=contact.priority,
                skills=dict(contact.required_skills),
                sla_deadline=contact.sla_deadline,
                queue_open=queue_open,
            ),
        ),
        {
            "contact_id": contact.contact_id,
            "customer_id": contact.customer_id,
            "channel": contact.channel,
            "arrived_at": contact.record_key,
            "queued_at": now,
            "queue": contact.queues[0],
            "rule": contact.rule,
            "priority": contact.priority,
            "required_skills": dict(contact.required_skills),
            "sla_deadline": contact.sla_deadline,
            "preferred_agent": contact.preferred_agent,
            "state": contact.state.value,
            "message_id": message_id or None,
            "facts": {
                "language": facts.language,
                "customer_tier": facts.customer_tier,
                "customer_tags": sorted(facts.customer_tags),
            }
            if facts
            else None,
        },
    )


def offered(contact: Contact, now: str) -> Lifecycle:
    """``contact`` (as offered) went to its agent at ``now``."""
    listed = contact.offer_count <= MAX_RECORDED_OFFERS
    detail = event(
        "offered",
        now,
        offer_id=contact.offer_id,
        agent_id=contact.offered_to,
        offer=contact.offer_count,
        expires_at=contact.offer_expires_at,
    )
    return Lifecycle(contact, (detail,) if listed else (), {"offers_total": contact.offer_count, "state": "offered"})


def answered(before: Contact, after: Contact, outcome: str, now: str, judge_sla: bool = True) -> Lifecycle:
    """The offer open on ``before`` ended with ``outcome`` (one of ``OFFER_OUTCOMES``); ``after`` as saved.
    ``judge_sla`` False: an accept whose SLA is judged later (a call's, when its agent joins: ``joined``)."""
    detail = event(outcome, now, offer_id=before.offer_id, agent_id=before.offered_to)
    fields: dict[str, Any] = {"state": after.state.value}
    if outcome == "accepted":
        fields |= {"accepted_at": now, "accepted_by": before.offered_to}
        if judge_sla:
            fields["sla_met"] = sla_met(after, now)
    listed = outcome == "accepted" or before.offer_count <= MAX_RECORDED_OFFERS
    once = f"accepted#{now}" if outcome == "accepted" else None  # an accept's retry writes it again, once
    return Lifecycle(after, (detail,) if listed else (), fields, once=once)


def joined(contact: Contact, now: str) -> Lifecycle:
    """A call's agent joined the caller at ``now``: the caller's wait ends, and the SLA is judged, here."""
    met = sla_met(contact, now)
    detail = event("joined", now, agent_id=contact.assigned_to)
    return Lifecycle(contact, (detail,), {"joined_at": now, "sla_met": met}, once=f"joined#{now}")


def sla_met(contact: Contact, accepted_at: str) -> bool:
    """Met: accepted by the SLA deadline (a contact without one always meets it)."""
    return accepted_at <= contact.sla_deadline if contact.sla_deadline else True


def closed(before: Contact, after: Contact, now: str) -> Lifecycle:
    """An assigned contact closed with a wrap-up; wrap-up ``abandoned``: the customer gave up."""
    handle = clock.seconds_between(before.accepted_at, now) if before.accepted_at else None
    events = [event("closed", now, agent_id=before.assigned_to, wrap_up=after.wrap_up, handle_seconds=handle)]
    fields: dict[str, Any] = {"closed_at": now, "wrap_up": after.wrap_up, "state": after.state.value}
    if after.wrap_up == ABANDONED:
        events.append(event(ABANDONED, now))
        fields["abandoned"] = True
    return Lifecycle(after, tuple(events), fields, once=f"closed#{now}")  # a close's retry writes it again, once


def abandoned(before: Contact, after: Contact, now: str) -> Lifecycle:
    """The customer gave up before an agent closed the contact (hung up, left the chat) while it waited or
    was offered; an unanswered contact misses its SLA once the deadline has passed."""
    fields: dict[str, Any] = {"closed_at": now, "abandoned": True, "state": after.state.value}
    if before.state is not ContactState.ASSIGNED and before.sla_deadline and now > before.sla_deadline:
        fields["sla_met"] = False
    return Lifecycle(after, (event(ABANDONED, now, state=before.state.value),), fields)


def transferred(before: Contact, after: Contact, now: str) -> Lifecycle:
    return Lifecycle(
        after,
        (
            event(
                "transferred",
                now,
                from_agent=before.assigned_to,
                queues=list(after.queues),
                to_agent=after.reserved_for,
            ),
        ),
        {"state": after.state.value},
    )


def escalated(after: Contact, step: int, now: str) -> Lifecycle:
    return Lifecycle(
        after,
        (
            event(
                "escalated",
                now,
                step=step,
                queues=list(after.queues),
                priority=after.priority,
                skills=dict(after.required_skills),
            ),
        ),
    )


def overflowed(after: Contact, now: str) -> Lifecycle:
    return Lifecycle(after, (event("overflowed", now, queues=list(after.queues)),))


def responded(after: Contact, agent_id: str, now: str) -> Lifecycle:
    """The first agent reply to the customer."""
    return Lifecycle(after, (event("first_response", now, agent_id=agent_id),), {"first_response_at": now})


def merged(lifecycles: Sequence[Lifecycle]) -> list[Lifecycle]:
    """One per contact record, events in order (a save may not touch one item twice)."""
    found: dict[tuple[str, str, str], Lifecycle] = {}
    for change in lifecycles:
        # One written after the save (``once``) stays apart from those written in it.
        where = (change.contact.contact_id, change.contact.record_key, change.once or "")
        earlier = found.get(where)
        found[where] = (
            Lifecycle(
                change.contact, (*earlier.events, *change.events), {**earlier.fields, **change.fields}, change.once
            )
            if earlier
            else change
        )
    return list(found.values())


# --- reading a record back --------------------------------------------------------------------


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """A stored contact record as reports, the API and replay read it: its lifecycle, each offer with its
    outcome, the wait until accepted (a call's: until its agent joined) and the handle time."""
    events = list(record.get("events", []))
    offers: dict[str, dict[str, Any]] = {}
    for happened in events:
        offer_id = happened.get("offer_id")
        if happened["kind"] == "offered" and offer_id:
            offers[offer_id] = {
                "offer_id": offer_id,
                "agent_id": happened.get("agent_id"),
                "offered_at": happened["at"],
                "outcome": None,
                "answered_at": None,
            }
        elif happened["kind"] in OFFER_OUTCOMES and offer_id in offers:
            offers[offer_id] |= {"outcome": happened["kind"], "answered_at": happened["at"]}
    arrived_at, accepted_at, closed_at = record.get("arrived_at"), record.get("accepted_at"), record.get("closed_at")
    joined_at = record.get("joined_at")
    # A caller who gave up before any agent joined never reached one, however far an accept got (an agent whose
    # leg never joined; an accept the hang-up took back). Records from before ``joined`` existed: the accept.
    never_reached = record.get("channel") == "voice" and bool(record.get("abandoned")) and not joined_at
    answered_at = None if never_reached else (joined_at or accepted_at)
    return {
        "contact_id": record.get("contact_id"),
        "customer_id": record.get("customer_id"),
        "channel": record.get("channel"),
        "arrived_at": arrived_at,
        "queue": record.get("queue"),
        "rule": record.get("rule"),
        "priority": record.get("priority"),
        "required_skills": record.get("required_skills", {}),
        "sla_deadline": record.get("sla_deadline"),
        "preferred_agent": record.get("preferred_agent"),
        "message_id": record.get("message_id"),
        "facts": record.get("facts"),
        "state": record.get("state"),
        "lifecycle": events,
        "offers": list(offers.values()),
        "offers_total": record.get("offers_total", len(offers)),
        "accepted_at": accepted_at,
        "accepted_by": record.get("accepted_by"),
        "first_response_at": record.get("first_response_at"),
        "closed_at": closed_at,
        "wrap_up": record.get("wrap_up"),
        "abandoned": bool(record.get("abandoned", False)),
        "sla_met": record.get("sla_met"),
        "joined_at": joined_at,
        # When the customer reached an agent: a call's when its agent joined (``joined``), any other at the accept.
        "answered_at": answered_at,
        "wait_seconds": clock.seconds_between(arrived_at, answered_at) if arrived_at and answered_at else None,
        "handle_seconds": (
            clock.seconds_between(accepted_at, closed_at) if answered_at and accepted_at and closed_at else None
        ),
    }
