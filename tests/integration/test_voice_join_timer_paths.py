"""The agent-join timer (``voice.lifecycle``) on the paths where the caller is not waiting in the Twilio queue.

Its question is "did the agent who accepted join the conference?". Two paths answer it differently from a first
call: a caller held in the conference for the next agent (the last one's leg dropped: ``bridged_at`` is set from
the first agent), and a caller called back (``voice.callback``: the original call is over and the caller is rung
only once the agent joined, so no ``bridged_at`` ever comes). The agent leg's own join, noted on the leg, answers.
"""

from __future__ import annotations

from chalicelib.store import routing as routing_store
from chalicelib.store import voice as voice_store
from tests.fakes.providers import fake_providers  # noqa: F401 (a fixture)
from tests.integration.test_voice_callback import _callback_ringing, fake, world  # noqa: F401 (fixtures)
from tests.integration.test_voice_connect import _requests, poster
from tests.integration.test_voice_controls import _bridged
from tests.integration.test_voice_lifecycle import _fire, _join_timers
from tests.support import PUBLIC_BASE_URL, agent_says, drain, offers_to


def test_the_next_agent_who_never_joins_a_held_caller_is_moved_on_by_the_timer(client, world, fake):  # noqa: F811
    connection, conversation, _caller, leg = _bridged(client, world, fake)
    world.hang_up(leg)  # ada's phone drops mid-call: the caller waits on hold for the next agent
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)
    assert offers_to(connection)[-1]["contact_id"] == conversation

    agent_says(client, connection, action="accept", contact_id=conversation)
    again = _requests(fake, "POST", "/Calls.json")[-1]
    assert again.answer["sid"] != leg
    accepted_at = routing_store.get_contact(conversation).accepted_at
    [timer] = [t for t in _join_timers() if t["accepted_at"] == accepted_at]
    # Her new leg rings out and its no-answer callback is lost: the caller would hold for ever.
    assert _fire(timer, timer["due_at"]) == "agent-unreachable"
    drain(client)
    [hung_up] = [r for r in _requests(fake, "POST", f"/Calls/{again.answer['sid']}.json") if r.form.get("Status")]
    assert hung_up.form["Status"] == "completed"
    assert routing_store.get_contact(conversation).assigned_to != "ada"


def test_the_timer_leaves_an_agent_alone_who_joined_and_waits_for_the_called_back_customer(
    client,
    world,  # noqa: F811
    fake,  # noqa: F811
):
    _ada, conversation, agent_leg = _callback_ringing(client, world, fake)
    assert not voice_store.get_call(conversation).get("bridged_at")

    [timer] = _join_timers()
    assert _fire(timer, timer["due_at"]) == "joined", "ada is in the conference, the customer's phone rings"
    drain(client)
    assert routing_store.get_contact(conversation).assigned_to == "ada"
    assert not [r for r in _requests(fake, "POST", f"/Calls/{agent_leg}.json") if r.form.get("Status")]


def test_a_held_caller_who_hangs_up_before_the_next_agent_joins_is_abandoned_and_that_agent_freed(
    client,
    world,  # noqa: F811
    fake,  # noqa: F811
):
    connection, conversation, caller, leg = _bridged(client, world, fake)
    world.hang_up(leg)  # the first agent's leg drops: the caller holds for the next one
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)
    agent_says(client, connection, action="accept", contact_id=conversation)
    ringing = _requests(fake, "POST", "/Calls.json")[-1].answer["sid"]

    world.hang_up(caller)  # tired of holding, before ada's new leg is answered
    world.deliver(poster(client), base=PUBLIC_BASE_URL)
    drain(client)

    contact = routing_store.get_contact(conversation)
    assert (contact.state.value, contact.wrap_up) == ("closed", "abandoned"), "nobody reached them again"
    assert [r.form["Status"] for r in _requests(fake, "POST", f"/Calls/{ringing}.json") if r.form.get("Status")] == [
        "completed"
    ], "ada's phone stops ringing"
    ada = routing_store.get_agent("ada")
    assert ada is not None and ada.used == 0
