"""A supervisor acts on other agents' work: sees an agent's open conversations, reassigns one to a colleague or a
queue, closes one for the agent (whose capacity is freed), and sets an agent's presence. Agents cannot."""

from __future__ import annotations

import json

from tests.integration.test_workspace_api import _grace_assigned_to_ada, as_supervisor
from tests.support import as_agent, connect_agent, create_agent, drain, offers_to, pushed


def _agent(client, agent_id: str) -> dict:
    response = client.http.get(f"/agents/{agent_id}", headers=as_supervisor())
    assert response.status_code == 200, response.body
    return response.json_body


def test_a_supervisor_lists_an_agents_conversations_and_agents_may_not(client):
    conversation = _grace_assigned_to_ada(client)
    listed = client.http.get("/agents/ada/conversations", headers=as_supervisor())
    assert listed.status_code == 200, listed.body
    [item] = listed.json_body["conversations"]
    assert item["conversation_id"] == conversation and item["state"] == "assigned"
    assert item["customer_name"] == "Grace Hopper" and item["preview"] == "Where is order 12345?"

    create_agent(client, "bob")
    assert client.http.get("/agents/ada/conversations", headers=as_agent("bob")).status_code == 403
    missing = client.http.get("/agents/nobody/conversations", headers=as_supervisor())
    assert missing.status_code == 404 and "error" in missing.json_body


def test_a_supervisor_reassigns_a_conversation_to_a_colleague_who_is_offered_it(client):
    conversation = _grace_assigned_to_ada(client)
    ada = connect_agent(client, "ada")
    create_agent(client, "bob", capacity=2)
    bob = connect_agent(client, "bob")
    moved = client.http.post(
        f"/conversations/{conversation}/reassign", headers=as_supervisor(), body=json.dumps({"agent_id": "bob"})
    )
    assert moved.status_code == 200, moved.body
    assert moved.json_body["reserved_for"] == "bob"
    drain(client)
    assert [o["contact_id"] for o in offers_to(bob)] == [conversation], "reserved for Bob, offered to him"
    assert {"type": "reassigned", "contact_id": conversation}.items() <= pushed(ada)[-1].items()
    assert _agent(client, "ada")["used"] == 0, "Ada's capacity is freed"
    assert client.http.get("/agents/ada/conversations", headers=as_supervisor()).json_body["conversations"] == []


def test_reassigning_refuses_bad_targets_agents_and_waiting_conversations_clearly(client):
    conversation = _grace_assigned_to_ada(client)
    used = _agent(client, "ada")["used"]
    url = f"/conversations/{conversation}/reassign"
    to_queue = client.http.post(url, headers=as_supervisor(), body=json.dumps({"queue": "nowhere"}))
    assert to_queue.status_code == 422 and to_queue.json_body["details"][0]["field"] == "queue", to_queue.body
    both = client.http.post(url, headers=as_supervisor(), body=json.dumps({"queue": "default", "agent_id": "bob"}))
    assert both.status_code == 422 and "error" in both.json_body
    to_herself = client.http.post(url, headers=as_supervisor(), body=json.dumps({"agent_id": "ada"}))
    assert to_herself.status_code == 422, to_herself.body
    by_agent = client.http.post(url, headers={"Content-Type": "application/json", **as_agent("ada")}, body="{}")
    assert by_agent.status_code == 403
    assert _agent(client, "ada")["used"] == used > 0, "nothing moved"

    queued = client.http.post(
        "/conversations/conv_00000000000000000000/reassign", headers=as_supervisor(), body=json.dumps({"queue": "x"})
    )
    assert queued.status_code == 404


def test_a_supervisor_closes_an_agents_conversation_for_her_with_a_wrap_up_code(client):
    conversation = _grace_assigned_to_ada(client)
    ada = connect_agent(client, "ada")
    body = json.dumps({"wrap_up": "spam"})
    closed = client.http.post(f"/conversations/{conversation}/close", headers=as_supervisor(), body=body)
    assert closed.status_code == 200, closed.body
    assert closed.json_body["state"] == "closed"
    contact = client.http.get(f"/contacts/{conversation}", headers=as_supervisor()).json_body
    assert contact["wrap_up"] == "spam" and contact["assigned_to"] == "ada", contact
    assert _agent(client, "ada")["used"] == 0
    assert any(p.get("type") == "closed" for p in pushed(ada)), "Ada's console hears it and drops it from her list"
    again = client.http.post(f"/conversations/{conversation}/close", headers=as_supervisor(), body=body)
    assert again.status_code == 409 and "closed" in again.json_body["message"], again.body


def test_an_agent_still_cannot_close_a_colleagues_conversation(client):
    conversation = _grace_assigned_to_ada(client)
    used = _agent(client, "ada")["used"]
    create_agent(client, "bob")
    body = json.dumps({"wrap_up": "resolved"})
    headers = {"Content-Type": "application/json", **as_agent("bob")}
    refused = client.http.post(f"/conversations/{conversation}/close", headers=headers, body=body)
    assert refused.status_code == 403, refused.body
    assert _agent(client, "ada")["used"] == used > 0


def test_a_supervisor_sets_an_agents_presence_and_the_agent_is_told(client):
    create_agent(client, "ada")
    ada = connect_agent(client, "ada")
    set_away = client.http.put("/agents/ada/presence", headers=as_supervisor(), body=json.dumps({"presence": "Away"}))
    assert set_away.status_code == 200, set_away.body
    assert _agent(client, "ada")["presence"] == "Away"
    assert {"type": "presence", "presence": "Away"}.items() <= pushed(ada)[-1].items()
    assert offers_to(ada) == []
