"""Agents whose WebSocket drops (API Gateway closes idle sockets after 10 minutes and every socket after 2 hours):
a heartbeat keeps the socket open, and a reconnect within the grace period keeps presence, offers and work.

Time is controlled: the grace timer the disconnect queued is read from the timer queue and fired at a chosen
moment, the way SQS delivers it once its delay is up; the sweeper is run at a chosen moment as the safety net.
"""

from __future__ import annotations

import json
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.sqs.models import sqs_backends

from chalicelib import clock
from chalicelib.routing import engine
from chalicelib.routing.events import OfferTimeout, from_body
from chalicelib.settings import get_settings, timer_queue_name
from chalicelib.store import routing as routing_store
from tests.support import (
    REGION,
    agent_says,
    as_agent,
    bearer,
    connect_agent,
    create_agent,
    disconnect,
    drain,
    offers_to,
    pushed,
    visitor_conversation,
    ws_event,
)


def _timers(kind: str) -> list[dict[str, Any]]:
    """Timers of ``kind`` sent to the timer queue (still delayed, so read from moto's queue without receiving)."""
    queue = sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues[timer_queue_name()]
    return [body for body in (json.loads(m.body) for m in queue._messages) if body["type"] == kind]


def _fire(timer: dict[str, Any], at: str) -> str:
    return engine.handle(from_body(json.dumps(timer)), now=at).note


def _presence(agent_id: str) -> str:
    return routing_store.get_agent(agent_id).presence.value


def _ada_with_an_offer(client) -> tuple[str, str]:
    create_agent(client, "ada")
    ada = connect_agent(client, "ada")
    conversation = visitor_conversation(client, 1)
    drain(client)
    assert [o["contact_id"] for o in offers_to(ada)] == [conversation]
    return ada, conversation


# --- heartbeat --------------------------------------------------------------------------------------------


def test_heartbeat_needs_no_contact_and_answers_with_the_true_presence(client):
    create_agent(client, "ada")
    ada = connect_agent(client, "ada")

    answer = agent_says(client, ada, action="heartbeat")

    assert answer == {
        "type": "presence",
        "presence": "Available",
        "heartbeat_seconds": get_settings().heartbeat_seconds,
        "reason": "heartbeat",
    }
    assert 0 < answer["heartbeat_seconds"] < 600, "well inside API Gateway's 10-minute idle timeout"
    client.http.put("/agents/ada/presence", headers=as_agent("ada"), body='{"presence": "Away"}')
    assert agent_says(client, ada, action="heartbeat")["presence"] == "Away"


def test_other_commands_still_need_a_contact(client):
    create_agent(client, "ada")
    ada = connect_agent(client, "ada")

    answer = agent_says(client, ada, action="accept")

    assert answer["type"] == "error" and answer["error"] == "invalid_payload"


# --- the grace period -------------------------------------------------------------------------------------


def test_a_dropped_socket_keeps_presence_and_offer_until_the_grace_period_ends(client):
    ada, conversation = _ada_with_an_offer(client)
    before = routing_store.get_agent("ada")

    disconnect(client, ada)

    agent = routing_store.get_agent("ada")
    assert agent.presence.value == "Available" and agent.disconnected_at
    assert agent.used == before.used, "the offer still holds her capacity"
    assert routing_store.get_contact(conversation).offered_to == "ada"
    [timer] = _timers("ReconnectGraceExpired")
    grace = get_settings().reconnect_grace_seconds
    assert timer["due_at"] == clock.plus_seconds(agent.disconnected_at, grace)
    assert _fire(timer, clock.plus_seconds(timer["due_at"], -30)) == "re-armed", "not before the grace ends"
    assert _presence("ada") == "Available"


def test_reconnecting_within_the_grace_period_cancels_going_offline(client):
    ada, conversation = _ada_with_an_offer(client)
    disconnect(client, ada)
    [timer] = _timers("ReconnectGraceExpired")

    again = connect_agent(client, "ada")
    assert _fire(timer, timer["due_at"]) == "not disconnected", "the reconnect ended the grace period"

    assert _presence("ada") == "Available"
    assert routing_store.get_agent("ada").disconnected_at is None
    assert routing_store.get_contact(conversation).offered_to == "ada", "her open offer is still hers"
    assert agent_says(client, again, action="heartbeat")["presence"] == "Available"
    accepted = agent_says(client, again, action="accept", contact_id=conversation)
    assert accepted == {"type": "accepted", "contact_id": conversation}


def test_the_grace_period_passing_sets_offline_and_the_offer_moves_on(client):
    ada, conversation = _ada_with_an_offer(client)
    create_agent(client, "bob")
    bob = connect_agent(client, "bob")
    disconnect(client, ada)
    [timer] = _timers("ReconnectGraceExpired")

    assert _fire(timer, timer["due_at"]) == "offline"
    drain(client)

    agent = routing_store.get_agent("ada")
    assert agent.presence.value == "Offline" and agent.disconnected_at is None and agent.used == 0
    assert [o["contact_id"] for o in offers_to(bob)] == [conversation], "the open offer moved on"
    assert _fire(timer, timer["due_at"]) == "not disconnected", "a redelivered timer changes nothing"


def test_a_timer_of_an_earlier_drop_does_not_cut_the_next_grace_period_short(client):
    ada, _ = _ada_with_an_offer(client)
    disconnect(client, ada)
    [first] = _timers("ReconnectGraceExpired")
    again = connect_agent(client, "ada")
    disconnect(client, again)
    second = next(t for t in _timers("ReconnectGraceExpired") if t != first)

    assert _fire(first, first["due_at"]) == "stale"
    assert _presence("ada") == "Available"
    assert _fire(second, second["due_at"]) == "offline"
    assert _presence("ada") == "Offline"


def test_the_sweeper_sets_offline_when_the_grace_timer_was_lost(client):
    ada, conversation = _ada_with_an_offer(client)
    disconnect(client, ada)
    disconnected_at = routing_store.get_agent("ada").disconnected_at
    grace = get_settings().reconnect_grace_seconds

    engine.sweep(clock.plus_seconds(disconnected_at, grace - 5))
    assert _presence("ada") == "Available"
    engine.sweep(clock.plus_seconds(disconnected_at, grace + 1))

    assert _presence("ada") == "Offline"
    assert routing_store.get_contact(conversation).state.value == "queued"


def test_an_offer_timing_out_during_the_grace_period_expires_as_usual(client):
    ada, conversation = _ada_with_an_offer(client)
    create_agent(client, "bob")
    bob = connect_agent(client, "bob")
    [offer] = offers_to(ada)
    disconnect(client, ada)

    note = engine.handle(OfferTimeout(conversation, offer["offer_id"], offer["expires_at"]), now=offer["expires_at"])
    drain(client)

    assert note.note == "expired"
    assert [o["contact_id"] for o in offers_to(bob)] == [conversation]
    assert _presence("ada") == "Available", "still within her grace period"


def test_no_new_offer_while_disconnected_and_waiting_work_on_reconnect(client):
    create_agent(client, "ada")
    ada = connect_agent(client, "ada")
    disconnect(client, ada)

    conversation = visitor_conversation(client, 2)
    drain(client)
    assert routing_store.get_contact(conversation).state.value == "queued", "nobody could see an offer now"

    again = connect_agent(client, "ada")
    drain(client)
    assert [o["contact_id"] for o in offers_to(again)] == [conversation]
    assert offers_to(ada) == []


def test_a_second_connection_closing_needs_no_grace(client):
    create_agent(client, "ada")
    first, second = connect_agent(client, "ada"), connect_agent(client, "ada")

    disconnect(client, first)

    assert routing_store.get_agent("ada").disconnected_at is None
    assert _timers("ReconnectGraceExpired") == []
    assert pushed(second) == []


def test_a_connection_registered_by_a_connect_that_died_midway_still_counts(client):
    """$connect registers the connection, then ends the grace period; a Lambda dying between the two leaves
    the marker: the grace timer finds the connection and resumes the agent instead of setting them Offline."""
    ada, conversation = _ada_with_an_offer(client)
    disconnect(client, ada)
    [timer] = _timers("ReconnectGraceExpired")
    routing_store.add_connection("ada", "half-done=", clock.now_iso())

    assert _fire(timer, timer["due_at"]) == "reconnected"

    assert _presence("ada") == "Available" and routing_store.get_agent("ada").disconnected_at is None
    assert routing_store.get_contact(conversation).offered_to == "ada"


def test_a_presence_set_by_someone_else_is_pushed_to_the_agents_console(client):
    create_agent(client, "ada")
    ada = connect_agent(client, "ada")

    changed = client.http.put("/agents/ada/presence", headers=as_agent("sue"), body='{"presence": "Away"}')
    assert changed.status_code == 403, "agents set only their own"
    supervisor = {"Content-Type": "application/json", **bearer("sue", "supervisor")}
    client.http.put("/agents/ada/presence", headers=supervisor, body='{"presence": "Away"}')

    assert {"type": "presence", "presence": "Away"}.items() <= pushed(ada)[-1].items()


def test_a_websocket_command_nested_absurdly_deep_is_answered_with_an_error_frame(client):
    create_agent(client, "ada")
    ada = connect_agent(client, "ada")
    deep = "[" * 2000 + "]" * 2000
    client.lambda_.invoke("ws_message", ws_event("$default", ada, body=deep))
    errors = [frame for frame in pushed(ada) if frame.get("type") == "error"]
    assert errors and errors[-1]["error"] == "invalid_json", pushed(ada)
    client.lambda_.invoke("ws_message", ws_event("$default", ada, body=json.dumps({"action": "heartbeat"})))
    assert pushed(ada)[-1]["type"] == "presence", "the connection still works"
