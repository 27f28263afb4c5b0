"""The agent workspace ("My work"): the conversation list with previews and unread counts, the customer panel,
search, transfer targets and wrap-up codes.

Unread counts come from a read marker per agent and conversation (``store.workspace``): they survive a reload.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from chalicelib import clock
from chalicelib.agents import work
from chalicelib.conversations import identity
from chalicelib.errors import NotFound, SwitchboardError
from chalicelib.routing.config import current_config
from chalicelib.routing.model import ContactState
from chalicelib.store import conversations as conversation_store
from chalicelib.store import routing as store
from chalicelib.store import workspace as workspace_store

FILTERS = ("mine", "waiting", "closed")
PREVIEW_CHARS = 80
SEARCH_RESULTS = 20


class BadQuery(SwitchboardError):
    """A query parameter out of range (400)."""

    code = "bad_query"


class UnknownWrapUpCode(SwitchboardError):
    """A close with a code routing.yaml's ``wrap_up_codes:`` does not list (400)."""

    code = "unknown_wrap_up_code"


def _conversation_messages(
    customer_id: str, conversation_id: str, timelines: dict[str, list[dict[str, Any]]] | None = None
) -> list[dict[str, Any]]:
    """One conversation's messages, from its customer's timeline (read once per customer when ``timelines`` is
    given: a customer with several conversations in the list costs one query, not one each)."""
    timelines = {} if timelines is None else timelines
    if customer_id not in timelines:
        timelines[customer_id] = conversation_store.timeline(customer_id)
    return [m for m in timelines[customer_id] if m.get("conversation_id") == conversation_id]


def _preview(message: dict[str, Any] | None) -> str:
    if message is None:
        return ""
    text = " ".join(str(message.get("text") or message.get("subject") or "").split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def _item(view: dict[str, Any], messages: list[dict[str, Any]], read_at: str | None, now: str) -> dict[str, Any]:
    shown = [m for m in messages if m.get("direction") in ("inbound", "outbound")]
    last = shown[-1] if shown else None
    unread = [
        m for m in messages if m.get("direction") == "inbound" and str(m.get("received_at", "")) > (read_at or "")
    ]
    waiting_since = view.get("enqueued_at") if view["state"] in ("queued", "offered") else None
    if last is not None and last.get("direction") == "inbound" and view["state"] == "assigned":
        waiting_since = str(last.get("received_at"))  # the customer waits for an answer to their last message
    return {
        **view,
        "preview": _preview(last),
        "last_message_at": last.get("received_at") if last else None,
        "last_direction": last.get("direction") if last else None,
        "unread": len(unread),
        "read_at": read_at,
        "waiting_since": waiting_since,
        "waiting_seconds": max(0, round(clock.seconds_between(waiting_since, now))) if waiting_since else None,
    }


def my_conversations(agent_id: str, which: str | None) -> dict[str, Any]:
    """``GET /me/conversations?filter=``: mine (offered or assigned, the default), waiting (of those, the ones
    whose customer waits for an answer) or closed (ones this agent opened, since closed)."""
    which = which or "mine"
    if which not in FILTERS:
        raise BadQuery(
            f"filter is one of {', '.join(FILTERS)}", [{"field": "filter", "problem": f"unknown filter {which!r}"}]
        )
    now = clock.now_iso()
    if which == "closed":
        markers = workspace_store.read_conversations(agent_id)
        contacts = [c for c in (store.get_contact(str(m["conversation_id"])) for m in markers) if c is not None]
        contacts = [c for c in contacts if c.state is ContactState.CLOSED]
        contacts.sort(key=lambda c: c.closed_at or "", reverse=True)
    else:
        contacts = store.work_of(agent_id)
    read = workspace_store.read_markers(agent_id, [c.contact_id for c in contacts])
    items: list[dict[str, Any]] = []
    timelines: dict[str, list[dict[str, Any]]] = {}
    for contact in contacts:
        view = work.contact_view(contact)
        view["closed_at"], view["wrap_up"] = contact.closed_at, contact.wrap_up
        messages = _conversation_messages(contact.customer_id, contact.contact_id, timelines)
        items.append(_item(view, messages, read.get(contact.contact_id), now))
    if which == "waiting":
        items = [i for i in items if i["waiting_since"]]
    return {"conversations": items, "filter": which, "unread_total": sum(i["unread"] for i in items)}


TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


def mark_read(agent_id: str, conversation_id: str, oversee: bool, up_to: str | None = None) -> dict[str, Any]:
    """``POST /conversations/{id}/read[?up_to=]``: the agent has seen the conversation's messages so far, or those
    received up to ``up_to`` (the newest the console showed: one that arrived since stays unread)."""
    if up_to is not None and not TIMESTAMP.match(up_to):
        raise BadQuery(
            "up_to is a UTC timestamp like 2026-12-03T09:00:00.000000Z",
            [{"field": "up_to", "problem": "not a UTC ISO 8601 timestamp"}],
        )
    contact = work.contact_seen_by(agent_id, conversation_id, oversee)
    messages = _conversation_messages(contact.customer_id, conversation_id)
    read_at = max((str(m.get("received_at", "")) for m in messages), default="") or clock.now_iso()
    if up_to is not None:
        read_at = min(read_at, up_to)
    workspace_store.mark_read(agent_id, conversation_id, contact.customer_id, read_at)
    return {"conversation_id": conversation_id, "read_at": read_at, "unread": 0}


def customer_panel(agent_id: str, conversation_id: str, oversee: bool) -> dict[str, Any]:
    """``GET /conversations/{id}/customer``: who the customer is, every identity by channel kind, tier and tags,
    every conversation of theirs across channels (merged customers' too) and the customers merged into them."""
    contact = work.contact_seen_by(agent_id, conversation_id, oversee)
    meta = conversation_store.get_conversation(conversation_id) or {}
    customer_id = str(meta.get("customer_id", contact.customer_id))
    profile = conversation_store.get_customer(customer_id)
    if profile is None:
        raise NotFound(f"no customer {customer_id}")
    if profile.get("merged_into"):
        customer_id = str(profile["merged_into"])
        profile = conversation_store.get_customer(customer_id) or profile
    identities: dict[str, list[str]] = {}
    for key in sorted(profile.get("identities", ())):
        kind, _, value = str(key).partition("#")
        identities.setdefault(kind, []).append(value)
    conversations: dict[str, dict[str, Any]] = {}
    for m in conversation_store.timeline(customer_id):
        cid = m.get("conversation_id")
        if not cid or m.get("direction") not in ("inbound", "outbound"):
            continue
        entry = conversations.setdefault(
            str(cid), {"conversation_id": cid, "channels": [], "started_at": m.get("received_at"), "messages": 0}
        )
        if m.get("channel") and m["channel"] not in entry["channels"]:
            entry["channels"].append(m["channel"])
        entry["last_message_at"] = m.get("received_at")
        entry["preview"] = _preview(m)
        entry["messages"] += 1
    past = sorted(conversations.values(), key=lambda c: str(c["started_at"]), reverse=True)
    for entry in past:
        found = store.get_contact(str(entry["conversation_id"]))
        entry["state"] = found.state.value if found else None
        entry["current"] = entry["conversation_id"] == conversation_id
    return {
        "customer_id": customer_id,
        "name": profile.get("name"),
        "email": profile.get("email"),
        "phone": profile.get("phone"),
        "tier": profile.get("tier"),
        "tags": sorted(profile.get("tags", ())),
        "identities": identities,
        "merged_from": sorted(profile.get("merged_from", ())),
        "conversations": past,
    }


def transfer_targets(agent_id: str) -> dict[str, Any]:
    """``GET /transfer-targets``: every queue, the agents who are Available now, and those signed in but Away (whom
    a call may still consult), never the asking agent."""
    from chalicelib.routing.model import Presence

    listed: dict[Presence, list[dict[str, Any]]] = {Presence.AVAILABLE: [], Presence.AWAY: []}
    after: str | None = None
    while True:
        page, after = store.agents_page(after)
        for a in page:
            if a.presence in listed and a.agent_id != agent_id:
                listed[a.presence].append({"agent_id": a.agent_id, "name": a.name, "queues": list(a.queues)})
        if after is None or sum(map(len, listed.values())) >= 200:
            break
    return {
        "queues": sorted(current_config().queues),
        "agents": listed[Presence.AVAILABLE],
        "away": listed[Presence.AWAY],
    }


def wrap_up_codes() -> dict[str, Any]:
    """``GET /wrap-up-codes``: the codes of routing.yaml's ``wrap_up_codes:`` (empty: any code is accepted)."""
    return {"codes": [{"code": code, "label": label} for code, label in current_config().wrap_up_codes]}


def check_wrap_up(code: str | None) -> None:
    """A close's wrap-up code must be one the config lists (when it lists any): 400 naming the known ones."""
    known = [c for c, _ in current_config().wrap_up_codes]
    if code is not None and known and code not in known:
        raise UnknownWrapUpCode(
            f"unknown wrap-up code {code!r}; use one of {', '.join(known)}",
            [{"field": "wrap_up", "problem": "not one of wrap_up_codes"}],
        )


_CONVERSATION_ID = re.compile(r"^[A-Za-z0-9_.:#-]{3,128}$")


def search(query: str | None) -> dict[str, Any]:
    """``GET /search?q=``: customers by name (contains, any case), e-mail or phone (exact), and a conversation by
    its id. Supervisors and admins only (the route says so)."""
    q = " ".join((query or "").split())
    if len(q) < 2 or len(q) > 200:
        raise BadQuery("q takes 2 to 200 characters", [{"field": "q", "problem": "too short or too long"}])
    customers: dict[str, dict[str, Any]] = {}
    conversations: list[dict[str, Any]] = []
    for kind, value in _identity_guesses(q):
        owner = conversation_store.customers_of([value]).get(value.key)
        if owner:
            customers.setdefault(owner, {"customer_id": owner, "matched": kind})
    if _CONVERSATION_ID.match(q):
        contact = store.get_contact(q)
        if contact is not None:
            conversations.append({**work.contact_view(contact), "matched": "conversation_id"})
            customers.setdefault(contact.customer_id, {"customer_id": contact.customer_id, "matched": "conversation"})
    folded = q.casefold()
    for profile in workspace_store.customer_profiles():
        if len(customers) >= SEARCH_RESULTS:
            break
        if folded in str(profile.get("name") or "").casefold():
            customers.setdefault(
                str(profile["customer_id"]), {"customer_id": profile["customer_id"], "matched": "name"}
            )
    results = []
    for found in list(customers.values())[:SEARCH_RESULTS]:
        profile = conversation_store.get_customer(str(found["customer_id"])) or {}
        results.append(
            {
                **found,
                "name": profile.get("name"),
                "email": profile.get("email"),
                "phone": profile.get("phone"),
                "tier": profile.get("tier"),
                "identities": sorted(profile.get("identities", ())),
                "open_conversation_id": profile.get("open_conversation_id"),
            }
        )
    return {"q": q, "customers": results, "conversations": conversations}


def _identity_guesses(q: str) -> list[tuple[str, Any]]:
    guesses: list[tuple[str, Any]] = []
    if "@" in q:
        with contextlib.suppress(identity.InvalidIdentity):  # not an e-mail address after all
            guesses.append(("email", identity.email(q)))
    if re.fullmatch(r"\+?[0-9 ()./-]{6,20}", q):
        with contextlib.suppress(identity.InvalidIdentity):  # not a phone number after all
            guesses.append(("phone", identity.phone(q)))
    return guesses
