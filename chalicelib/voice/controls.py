"""The agent's in-call controls, all as changes to the contact's Twilio conference.

``POST /conversations/{id}/call`` with ``{"action": ...}``, by the agent the call is assigned to:

- ``hold`` / ``resume``: the caller's participant (label ``customer``) ``Hold=true|false``; on hold the caller
  hears ``voice.hold_audio`` (``HoldUrl``) or, without it, Twilio's default hold music;
- ``mute`` / ``unmute``: the agent's participant (label ``agent``) ``Muted=true|false``;
- ``hangup``: the caller's call ends (Calls API ``Status=completed``); the caller ends the conference on leaving,
  and the call's status callback tells the router the call ended (the contact then waits for wrap-up).

Participants are named by label (Twilio accepts a label where a CallSid goes), so the softphone and the phone
agent are the same. The conference's sid comes from the first ``participant-join`` (``on_conference_event``).
A call not yet bridged, or over, is a 409; Twilio's 20404 on the request (the caller is gone) is one too.
Every request is idempotent at Twilio (holding a held caller changes nothing), so a retried click is harmless.
"""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict

from chalicelib.agents.service import validate
from chalicelib.errors import Conflict, Forbidden, NotFound, SwitchboardError
from chalicelib.outbound.senders import ProviderRejected, ProviderUnavailable
from chalicelib.routing.config import current_config
from chalicelib.routing.model import ContactState
from chalicelib.store import routing as routing_store
from chalicelib.store import voice as store
from chalicelib.voice import twilio_api, twiml

logger = Logger(service="switchboard", child=True)


class CallControl(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["hold", "resume", "mute", "unmute", "hangup"]


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
    call = connected_call(agent_id, conversation_id)
    conference = str(call["conference_sid"])
    state = {"on_hold": bool(call.get("on_hold")), "muted": bool(call.get("muted"))}
    try:
        if command.action in ("hold", "resume"):
            hold(conference, command.action == "hold")
            state["on_hold"] = command.action == "hold"
        elif command.action in ("mute", "unmute"):
            form = [("Muted", "true" if command.action == "mute" else "false")]
            twilio_api.update_participant(conference, twiml.AGENT_LABEL, form)
            state["muted"] = command.action == "mute"
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
    if label != twiml.AGENT_LABEL or not form.get("CallSid"):
        return
    if event == "participant-leave":
        agent_left(conversation_id, str(form["CallSid"]))
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
    ``AgentLeftCall`` (deduplicated by the leg) before the claim is freed: a Lambda dying in between is made good
    by Twilio's retry of this callback, which still finds the leg."""
    found = _bridged_leg(conversation_id, call_sid)
    if found is None:
        return False
    call, agent_id = found
    contact = routing_store.get_contact(conversation_id)
    if contact is None or contact.state is not ContactState.ASSIGNED or contact.assigned_to != agent_id:
        return False
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


def finish_transfer(conversation_id: str, call: dict[str, Any], moved_on: bool) -> None:
    """After a transfer's routing change: the old agent's leg freed (held for the next agent, who joins the
    conference: no dequeue) and hung up, so its ``participant-leave`` changes nothing; or, when the transfer did
    not happen, the caller back off hold."""
    conference = str(call["conference_sid"])
    leg = str((call.get("agent_leg") or {}).get("call_sid") or "")
    try:
        if not moved_on:
            hold(conference, False)
            return
        store.free_agent_leg(conversation_id, leg)
        twilio_api.end_call(leg)
    except twilio_api.Gone:
        pass  # the leg or the caller is gone already
    except (ProviderUnavailable, ProviderRejected):
        logger.warning("transfer: could not change the call", extra={"conversation_id": conversation_id})
