"""The first router: offers go to Available agents with room, declines move on, races have one winner."""

from __future__ import annotations

import pytest

from chalicelib import clock
from chalicelib.routing import engine
from chalicelib.store import routing as routing_store
from chalicelib.store.dynamo import TransactionConflict
from tests.support import (
    agent_says,
    as_admin,
    connect_agent,
    create_agent,
    drain,
    offers_to,
    post_webchat,
    webchat_payload,
)


def _presence(client, agent_id: str, presence: str) -> None:
    response = client.http.put(
        f"/agents/{agent_id}/presence",
        headers=as_admin(),
        body=f'{{"presence": "{presence}"}}',
    )
    assert response.status_code == 200, response.body


def _visitor(client, n: int) -> str:
    return post_webchat(client, webchat_payload(visitor=f"v_{n}", message=f"m_{n}")).json_body["conversation_id"]


def test_declined_contact_goes_to_the_next_agent_and_never_back(client):
    create_agent(client, "ada", capacity=1)
    create_agent(client, "bob", capacity=1)
    connections = {a: connect_agent(client, a) for a in ("ada", "bob")}
    conversation = _visitor(client, 1)
    drain(client)
    first = next(a for a, c in connections.items() if offers_to(c))
    second = "bob" if first == "ada" else "ada"

    assert agent_says(client, connections[first], action="decline", contact_id=conversation)["type"] == "declined"
    drain(client)

    [offer] = offers_to(connections[second])
    assert offer["contact_id"] == conversation
    assert agent_says(client, connections[second], action="decline", contact_id=conversation)["type"] == "declined"
    drain(client)

    # Nobody left who has not declined: it waits rather than bouncing back.
    assert len(offers_to(connections[first])) == 1
    contact = client.http.get(f"/contacts/{conversation}", headers=as_admin()).json_body
    assert contact["state"] == "queued"
    assert sorted(contact["declined_by"]) == ["ada", "bob"]
    assert all(routing_store.get_agent(a).load == {"webchat": 0} for a in connections)


def test_agent_with_capacity_one_gets_one_contact_and_the_next_when_it_closes(client):
    create_agent(client, "ada", capacity=1)
    connection = connect_agent(client, "ada")
    first, second = _visitor(client, 1), _visitor(client, 2)
    drain(client)

    assert [o["contact_id"] for o in offers_to(connection)] == [first]
    assert client.http.get(f"/contacts/{second}", headers=as_admin()).json_body["state"] == "queued"

    agent_says(client, connection, action="accept", contact_id=first)
    agent_says(client, connection, action="close", contact_id=first)
    drain(client)

    assert [o["contact_id"] for o in offers_to(connection)] == [first, second]


def test_agent_becoming_available_takes_the_longest_waiting_contact(client):
    create_agent(client, "ada", capacity=1, presence="Away")
    connection = connect_agent(client, "ada")
    first, _second = _visitor(client, 1), _visitor(client, 2)
    drain(client)
    assert offers_to(connection) == []

    _presence(client, "ada", "Available")
    drain(client)

    assert [o["contact_id"] for o in offers_to(connection)] == [first]


def test_agent_away_or_full_gets_nothing(client):
    create_agent(client, "ada", capacity=2, presence="Away")
    create_agent(client, "bob", capacity=0)
    connections = [connect_agent(client, "ada"), connect_agent(client, "bob")]
    _visitor(client, 1)
    drain(client)
    assert all(offers_to(c) == [] for c in connections)


def _two_queued_contacts_and_one_idle_agent(client) -> tuple[str, str]:
    create_agent(client, "ada", capacity=1, presence="Away")
    first, second = _visitor(client, 1), _visitor(client, 2)
    drain(client)  # both contacts now exist and wait: nobody is Available
    agent = routing_store.get_agent("ada")
    routing_store.save_agent(agent, agent.with_presence(agent.presence.AVAILABLE, clock.now_iso()))
    return first, second


def test_two_routers_racing_for_one_agent_of_capacity_one(client):
    first, second = _two_queued_contacts_and_one_idle_agent(client)
    connection = connect_agent(client, "ada")
    now = clock.now_iso()

    # Router A and router B both read before either writes: both pick ada.
    plan_a = engine.plan_offer(first, now)
    plan_b = engine.plan_offer(second, now)
    assert plan_a is not None and plan_b is not None
    assert plan_a.agent.agent_id == plan_b.agent.agent_id == "ada"

    engine.commit_offer(plan_a)
    with pytest.raises(TransactionConflict):
        engine.commit_offer(plan_b)

    # B plans again from fresh state: nobody has room, the contact stays queued.
    assert engine.offer_contact(second, now) is None
    assert routing_store.get_agent("ada").load == {"webchat": 1}
    assert routing_store.get_contact(first).offered_to == "ada"
    assert routing_store.get_contact(second).state.value == "queued"

    # Capacity frees: the waiting contact is offered.
    agent_says(client, connection, action="accept", contact_id=first)
    agent_says(client, connection, action="close", contact_id=first)
    drain(client)
    assert routing_store.get_contact(second).offered_to == "ada"
    assert routing_store.get_agent("ada").load == {"webchat": 1}


def test_two_agents_racing_for_one_contact(client):
    create_agent(client, "ada", capacity=1, presence="Away")
    create_agent(client, "bob", capacity=1, presence="Away")
    conversation = _visitor(client, 1)
    drain(client)
    for agent_id in ("ada", "bob"):
        agent = routing_store.get_agent(agent_id)
        routing_store.save_agent(agent, agent.with_presence(agent.presence.AVAILABLE, clock.now_iso()))
    now = clock.now_iso()

    # The contact-side router picks one agent; the agent-side router for the other picks the same contact.
    plan_contact = engine.plan_offer(conversation, now)
    assert plan_contact is not None
    other = "bob" if plan_contact.agent.agent_id == "ada" else "ada"
    plan_agent = engine.plan_for_agent(other, now)
    assert plan_agent is not None and plan_agent.contact.contact_id == conversation

    engine.commit_offer(plan_contact)
    with pytest.raises(TransactionConflict):
        engine.commit_offer(plan_agent)

    assert routing_store.get_contact(conversation).offered_to == plan_contact.agent.agent_id
    assert routing_store.get_agent(other).used == 0


def test_expired_offer_moves_on_and_never_returns_to_the_agent(client):
    create_agent(client, "ada", capacity=1)
    ada = connect_agent(client, "ada")
    conversation = _visitor(client, 1)
    drain(client)
    assert len(offers_to(ada)) == 1
    create_agent(client, "bob", capacity=1, presence="Away")
    bob = connect_agent(client, "bob")
    _presence(client, "bob", "Available")
    drain(client)  # bob is free, but the contact is with ada until the offer expires

    later = clock.plus_seconds(clock.now_iso(), 31)
    engine.sweep(later)
    drain(client)

    assert [o["contact_id"] for o in offers_to(bob)] == [conversation]
    assert offers_to(ada)[-1]["contact_id"] == conversation and len(offers_to(ada)) == 1
    assert routing_store.get_contact(conversation).declined_by == ("ada",)
    assert routing_store.get_agent("ada").load == {"webchat": 0}


def test_agent_actions_on_contacts_not_theirs_are_refused(client):
    create_agent(client, "ada", capacity=1)
    create_agent(client, "eve", capacity=1, presence="Away")
    ada, eve = connect_agent(client, "ada"), connect_agent(client, "eve")
    conversation = _visitor(client, 1)
    drain(client)

    for action in ("accept", "decline", "close"):
        reply = agent_says(client, eve, action=action, contact_id=conversation)
        assert reply["type"] == "error" and reply["error"] == "forbidden", reply
    assert agent_says(client, eve, action="teleport", contact_id=conversation)["error"] == "invalid_payload"
    assert agent_says(client, ada, action="accept", contact_id="conv_nope")["error"] == "not_found"
    assert routing_store.get_contact(conversation).offered_to == "ada"


def test_websocket_needs_a_valid_token_of_a_known_agent(client):
    from chalicelib.auth import issue_dev_token
    from tests.support import ws_event

    def connect(query: dict) -> int:
        return client.lambda_.invoke("ws_connect", ws_event("$connect", "c1=", query=query)).payload["statusCode"]

    create_agent(client, "ada")
    assert connect({}) == 401, "no token"
    assert connect({"agent_id": "ada"}) == 401, "an agent id alone proves nothing"
    assert connect({"token": issue_dev_token("ada", ["agent"])[:-4] + "AAAA"}) == 401, "tampered"
    assert connect({"token": issue_dev_token("ghost", ["agent"])}) == 403, "signed in, but not an agent here"
    assert connect({"token": issue_dev_token("ada", ["agent"])}) == 200
