"""A web-chat message becomes an offer on an agent's WebSocket; the agent accepts."""

from __future__ import annotations

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


def test_message_is_offered_to_connected_agent_who_accepts(client):
    create_agent(client, "ada")
    connection = connect_agent(client, "ada")

    response = post_webchat(client, webchat_payload(name="Grace Hopper"))
    assert response.status_code == 200, response.body
    conversation_id = response.json_body["conversation_id"]

    drain(client)

    offers = offers_to(connection)
    assert len(offers) == 1
    assert offers[0]["contact_id"] == conversation_id
    assert offers[0]["customer"]["name"] == "Grace Hopper"

    reply = agent_says(client, connection, action="accept", contact_id=conversation_id)
    assert reply == {"type": "accepted", "contact_id": conversation_id}
    contact = client.http.get(f"/contacts/{conversation_id}", headers=as_admin()).json_body
    assert contact["state"] == "assigned"
    assert contact["assigned_to"] == "ada"


def test_follow_up_while_offered_does_not_repeat_the_offer(client):
    create_agent(client, "ada")
    connection = connect_agent(client, "ada")
    post_webchat(client, webchat_payload(message="m_1"))
    drain(client)
    post_webchat(client, webchat_payload(message="m_2", text="Order 1234"))
    drain(client)

    assert len(offers_to(connection)) == 1
