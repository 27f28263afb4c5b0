"""The agent's in-call controls, all as changes to the contact's Twilio conference.

``POST /conversations/{id}/call`` with ``{"action": ...}``, by the agent the call is assigned to:

- ``hold`` / ``resume``: the caller's participant (label ``customer``) ``Hold=true|false``; on hold the caller
  hears ``voice.hold_audio`` (``HoldUrl``) or, without it, Twilio's default hold music;
- ``mute`` / ``unmute``: the agent's participant (its leg's CallSid) ``Muted=true|false``;
- ``hangup``: the caller's call ends (Calls API ``Status=completed``); the caller ends the conference on leaving,
  and the call's status callback tells the router the call ended (the contact then waits for wrap-up);
- ``consult`` (``agent_id``) / ``cancel_consult`` / ``handover``: a warm transfer (below).

A cold transfer (``POST /conversations/{id}/transfer``) comes here from ``agents.work.transfer``: the caller held,
the routing transfer, then the agent's leg freed and hung up. The agent's leg leaving otherwise (``agent_left``)
holds the caller in the conference and puts the contact back at the head of its queue (``AgentLeftCall``); the
next agent's leg joins that conference and takes the caller off hold (``agent_rejoined``).

The caller's participant is named by label (Twilio accepts a label where a CallSid goes), so the softphone and
the phone agent are the same. The conference's sid comes from the first ``participant-join``.
A call not yet bridged, or over, is a 409; Twilio's 20404 on the request (the caller is gone) is one too.
Every request is idempotent at Twilio (holding a held caller changes nothing), so a retried click is harmless.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from chalicelib import clock
from chalicelib.agents.service import validate
from chalicelib.errors import Conflict, Forbidden, InvalidPayload, NotFound, SwitchboardError
from chalicelib.outbound.senders import ProviderRejected, ProviderUnavailable
from chalicelib.routing.config import current_config
from chalicelib.routing.model import ContactState
from chalicelib.store import outbound
from chalicelib.store import routing as routing_store
from chalicelib.store import voice as store
from chalicelib.voice import twilio_api, twiml

logger = Logger(service="switchboard", child=True)


CONSULT_LABEL = "consult"
CONSULT_ROLE = "consult"  # the consult call's outbound record (its status callbacks)
Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class CallControl(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["hold", "resume", "mute", "unmute", "hangup", "consult", "cancel_consult", "handover"]
    agent_id: Name | None = None  # the colleague to consult

    @model_validator(mode="after")
    def _colleague(self) -> CallControl:
        if (self.action == "consult") != (self.agent_id is not None):
            raise ValueError("agent_id names the colleague to consult, with action consult only")
        return self


class CallUnavailable(SwitchboardError):
    """Twilio could not be reached or refused the change: the agent may try again."""

    status = 502
    code = "provider_unavailable"


def connected_call(agent_id: str, conversation_id: str) -> dict[str, Any]:
    """The voice record of a call bridged to ``agent_id``; 404, 403 or 409 otherwise."""
    contact = routing_store.get_contact(conversation_id)
    if contact is None:
        raise NotFound(f"no conversation {conversation_id}")
    if agent_id not in (contact.assigned_to, contact.offered_to):
        raise Forbidden("this conversation is not offered or assigned to you")
    if contact.channel != "voice":
        raise Conflict("this conversation is not a call")
    if contact.state is not ContactState.ASSIGNED or contact.assigned_to != agent_id:
        raise Conflict("accept the call first")
    call = store.get_call(conversation_id)
    if call is None or not call.get("bridged_at") or not call.get("conference_sid"):
        raise Conflict("the call is not connected yet")
    leg = call.get("agent_leg") or {}
    if leg.get("agent_id") != agent_id:
        raise Conflict("the call is not connected to you")
    return call


def control(agent_id: str, conversation_id: str, document: Any) -> dict[str, Any]:
    """One in-call control; the call bar's state after it."""
    command: CallControl = validate(CallControl, document)
    if command.agent_id == agent_id:
        raise InvalidPayload("consult someone else", [{"field": "agent_id", "problem": "that is you"}])
    call = connected_call(agent_id, conversation_id)
    conference = str(call["conference_sid"])
    state = {"on_hold": bool(call.get("on_hold")), "muted": bool(call.get("muted"))}
    try:
        if command.action in ("hold", "resume"):
            hold(conference, command.action == "hold")
            state["on_hold"] = command.action == "hold"
        elif command.action in ("mute", "unmute"):
            form = [("Muted", "true" if command.action == "mute" else "false")]
            who = str(call["agent_leg"].get("call_sid") or twiml.AGENT_LABEL)  # a handed-over leg is "consult"
            twilio_api.update_participant(conference, who, form)
            state["muted"] = command.action == "mute"
        elif command.action == "consult":
            consult(conversation_id, call, str(command.agent_id), consulted_by=agent_id)
            state["on_hold"] = True
        elif command.action == "cancel_consult":
            cancel_consult(conversation_id, call)
            state["on_hold"] = False
        elif command.action == "handover":
            handover(agent_id, conversation_id, call)
            return {"conversation_id": conversation_id, "action": command.action, "call": None}
        else:
            twilio_api.end_call(str(call["customer_call_sid"]))
    except twilio_api.Gone:
        raise Conflict("the call has ended") from None
    except (ProviderUnavailable, ProviderRejected) as error:
        logger.warning("call control failed", extra={"conversation_id": conversation_id, "action": command.action})
        raise CallUnavailable(f"Twilio did not take the change: {error}") from None
    if command.action != "hangup":
        store.note_controls(conversation_id, **state)
    return {"conversation_id": conversation_id, "action": command.action, "call": state}


def hold(conference_sid: str, on: bool) -> None:
    """The caller on hold (hold audio, else Twilio's music) or back; ``Gone`` when the caller left."""
    form = [("Hold", "true" if on else "false")]
    audio = current_config().voice_hold_audio
    if on and audio:
        form += [("HoldUrl", audio), ("HoldMethod", "GET")]
    twilio_api.update_participant(conference_sid, twiml.CUSTOMER_LABEL, form)


def on_conference_event(conversation_id: str, form: dict[str, Any]) -> None:
    """Keep the conference's sid from a participant's join (the Participants API needs it); an agent leg leaving
    a bridged call hands the caller back to the queue (``agent_left``); a new agent's leg joining a caller held
    for them takes the caller off hold (``agent_rejoined``)."""
    event, label = form.get("StatusCallbackEvent"), form.get("ParticipantLabel")
    if event == "participant-join" and form.get("ConferenceSid"):
        store.note_conference(conversation_id, str(form["ConferenceSid"]))
    if label not in (twiml.AGENT_LABEL, CONSULT_LABEL) or not form.get("CallSid"):
        return
    if event == "participant-leave":
        if not agent_left(conversation_id, str(form["CallSid"])) and label == CONSULT_LABEL:
            consult_left(conversation_id, str(form["CallSid"]))
    elif event == "participant-join":
        agent_rejoined(conversation_id, str(form["CallSid"]))


def _bridged_leg(conversation_id: str, call_sid: str) -> tuple[dict[str, Any], str] | None:
    """The call and the agent of its bridged leg ``call_sid``; None for another (stale, repeated) leg."""
    call = store.get_call(conversation_id)
    leg = (call or {}).get("agent_leg") or {}
    if not call or not call.get("bridged_at") or leg.get("call_sid") != call_sid or not leg.get("agent_id"):
        return None
    return call, str(leg["agent_id"])


def agent_left(conversation_id: str, call_sid: str) -> bool:
    """The bridged agent leg ``call_sid`` left while the caller is on: True when the caller was handed back.

    Only for the contact's current leg of the agent it is assigned to (a repeated leave finds the leg freed; a
    transfer or a close has moved the contact already). The caller is put on hold first: Twilio's 20404 says the
    caller left too (the console's hang-up, or both at once), and the call's own status callback ends it. Then
    ``AgentLeftCall`` (deduplicated by the leg; the router acts only on a contact still assigned to the agent)
    before the claim is freed: a Lambda dying in between is made good by Twilio's retry of this callback, which
    still finds the leg (the contact already waiting again) and frees it."""
    found = _bridged_leg(conversation_id, call_sid)
    if found is None:
        return False
    call, agent_id = found
    contact = routing_store.get_contact(conversation_id)
    still_theirs = contact is not None and contact.state is ContactState.ASSIGNED and contact.assigned_to == agent_id
    # Waiting again with this leg still claimed: an earlier attempt published and died before freeing it.
    requeued = contact is not None and contact.state in (ContactState.QUEUED, ContactState.OFFERED)
    if not still_theirs and not requeued:
        return False  # closed meanwhile, or another agent's
    try:
        hold(str(call["conference_sid"]), True)
    except twilio_api.Gone:
        return False
    from chalicelib.routing.events import AgentLeftCall
    from chalicelib.store import queue

    queue.publish(AgentLeftCall(conversation_id, agent_id, call_sid))
    store.free_agent_leg(conversation_id, call_sid)
    return True


def agent_rejoined(conversation_id: str, call_sid: str) -> bool:
    """A new agent leg joined a caller waiting on hold in the conference: the caller is taken off hold."""
    found = _bridged_leg(conversation_id, call_sid)
    if found is None or not found[0].get("held_for_agent") or not found[0].get("conference_sid"):
        return False  # not held for a new agent (a hold the agent chose stays, whatever Twilio repeats)
    try:
        hold(str(found[0]["conference_sid"]), False)
    except twilio_api.Gone:
        return False
    return store.caller_taken_off_hold(conversation_id)


def hold_for_transfer(agent_id: str, conversation_id: str) -> dict[str, Any]:
    """Before a transfer's routing change: the caller of ``agent_id``'s connected call on hold (hold audio)."""
    call = connected_call(agent_id, conversation_id)
    try:
        hold(str(call["conference_sid"]), True)
    except twilio_api.Gone:
        raise Conflict("the call has ended") from None
    except (ProviderUnavailable, ProviderRejected) as error:
        raise CallUnavailable(f"Twilio did not take the change: {error}") from None
    return call


def finish_transfer(conversation_id: str, call: dict[str, Any]) -> None:
    """After a transfer's routing change: the old agent's leg freed (held for the next agent, who joins the
    conference: no dequeue) and hung up, so its ``participant-leave`` changes nothing."""
    leg = str((call.get("agent_leg") or {}).get("call_sid") or "")
    store.free_agent_leg(conversation_id, leg)
    _hang_up_leg(conversation_id, leg)


def resume_after_failed_transfer(conversation_id: str, call: dict[str, Any]) -> None:
    """A transfer that did not happen: the caller back off hold, with the agent."""
    try:
        hold(str(call["conference_sid"]), False)
    except (twilio_api.Gone, ProviderUnavailable, ProviderRejected):
        logger.warning("transfer: could not take the caller off hold", extra={"conversation_id": conversation_id})


def _hang_up_leg(conversation_id: str, call_sid: str) -> None:
    if not call_sid:
        return
    try:
        twilio_api.end_call(call_sid)
    except twilio_api.Gone:
        pass  # gone already
    except (ProviderUnavailable, ProviderRejected):
        logger.warning("could not hang up an agent's leg", extra={"conversation_id": conversation_id})


# --- warm transfer: consult a colleague while the caller is on hold, then hand over or cancel ---------------


def consult(conversation_id: str, call: dict[str, Any], colleague: str, *, consulted_by: str) -> str:
    """The caller on hold, the colleague called into the conference (label ``consult``): their phone for a
    ``voice_mode: phone`` agent, else their softphone (``softphone_address``). One consult at a time (409)."""
    from chalicelib.routing.model import Presence

    agent = routing_store.get_agent(colleague)
    if agent is None:
        raise InvalidPayload(f"no agent {colleague}", [{"field": "agent_id", "problem": "unknown agent"}])
    if agent.presence is Presence.OFFLINE:
        raise Conflict(f"{colleague} is offline")
    setup = store.agent_phone(colleague) or {}
    to = str(setup["phone"]) if setup.get("voice_mode") == "phone" and setup.get("phone") else None
    if not store.start_consult(conversation_id, colleague, clock.now_iso()):
        raise Conflict("a consult is in progress already")
    try:
        hold(str(call["conference_sid"]), True)
        sid = twilio_api.add_participant(
            str(call["conference_sid"]),
            to=to or softphone_address(colleague, conversation_id, consulted_by),
            from_=str(call.get("number") or ""),
            label=CONSULT_LABEL,
            timeout=current_config().offer_timeout("voice"),
            status_callback=_status_url(call),
        )
    except BaseException:
        store.end_consult(conversation_id, colleague)
        with contextlib.suppress(twilio_api.Gone, ProviderUnavailable, ProviderRejected):
            hold(str(call["conference_sid"]), False)  # back with the caller
        raise
    store.note_consult_call(conversation_id, colleague, sid)
    # Its status callbacks find it (role consult: a declined or unanswered consult ends it, no abandon).
    extra = {"role": CONSULT_ROLE, "agent_id": colleague, "consulted_by": consulted_by}
    outbound.record("twilio", sid, conversation_id, "queued", clock.now_iso(), "call", extra)
    store.note_controls(conversation_id, on_hold=True)
    return sid


def _status_url(call: dict[str, Any]) -> str | None:
    from chalicelib.voice import connect

    base = call.get("callback_base")
    return connect.url(str(base), connect.STATUS) if base else None


def on_consult_call_end(record: dict[str, Any], call_sid: str) -> bool:
    """The consult's call ended (the status callback): a colleague who declined, or never answered, ends the
    consult, and the consulting agent's console is told (once: only when this ended it). The caller stays on
    hold until that agent resumes or consults again."""
    conversation_id = str(record.get("conversation_id") or "")
    found = (store.get_call(conversation_id) or {}).get("consult") or {}
    if not conversation_id or found.get("call_sid") != call_sid:
        return False  # ended already (participant-leave, cancel), or handed over: the leg is the agent's now
    store.end_consult(conversation_id, str(found["agent_id"]))
    if record.get("consulted_by"):
        from chalicelib.notify import push

        event = {"type": "consult_ended", "conversation_id": conversation_id, "agent_id": str(found["agent_id"])}
        push.to_agent(str(record["consulted_by"]), {**event, "status": str(record.get("status") or "")})
    return True


def softphone_address(colleague: str, conversation_id: str, consulted_by: str) -> str:
    """``client:<identity>?conversation_id=...&consulted_by=...``: Twilio rings only the Devices registered with a
    token of the colleague's identity, and hands the query to the SDK's ``Call.customParameters``, from which the
    console shows who consults and about which conversation before the colleague answers."""
    from chalicelib.voice import tokens

    params = urlencode({"conversation_id": conversation_id, "consulted_by": consulted_by}, quote_via=quote)
    return "client:" + tokens.identity_of(colleague) + "?" + params


def _consult_of(call: dict[str, Any]) -> dict[str, Any]:
    found = call.get("consult") or {}
    if not found.get("call_sid"):
        raise Conflict("no consult in progress")
    return dict(found)


def cancel_consult(conversation_id: str, call: dict[str, Any]) -> None:
    """The colleague's leg hung up, the caller back off hold with the agent. A consult whose call was never
    noted (an attempt that died after starting it) is cleared too."""
    found = call.get("consult") or {}
    if not found.get("agent_id"):
        raise Conflict("no consult in progress")
    _hang_up_leg(conversation_id, str(found.get("call_sid") or ""))
    store.end_consult(conversation_id, str(found["agent_id"]))
    hold(str(call["conference_sid"]), False)
    store.note_controls(conversation_id, on_hold=False)


def consult_left(conversation_id: str, call_sid: str) -> None:
    """The consulted colleague hung up (or never answered): the consult is over; the caller stays on hold until
    the agent resumes."""
    found = (store.get_call(conversation_id) or {}).get("consult") or {}
    if found.get("call_sid") == call_sid:
        store.end_consult(conversation_id, str(found["agent_id"]))


def handover(agent_id: str, conversation_id: str, call: dict[str, Any]) -> None:
    """The consulted colleague takes the call: the contact transferred to them (reserved: their accept places no
    new leg, their consult leg is the agent leg now), this agent's leg hung up, the caller off hold."""
    from chalicelib.agents import work

    found = _consult_of(call)
    old_leg = str(call["agent_leg"].get("call_sid") or "")

    def swap_legs() -> None:
        store.hand_over_leg(conversation_id, old_leg, found, clock.now_iso())

    work.hand_over(agent_id, conversation_id, work.Transfer(agent_id=str(found["agent_id"])), then=swap_legs)
    _hang_up_leg(conversation_id, old_leg)
    try:
        hold(str(call["conference_sid"]), False)
    except twilio_api.Gone:
        return
    store.note_controls(conversation_id, on_hold=False, muted=False)
