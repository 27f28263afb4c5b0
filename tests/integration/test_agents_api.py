"""The agents REST API: create, list, presence; bad input named, conflicts and unknown agents refused."""

from __future__ import annotations

import json

import pytest

from tests.support import as_admin, create_agent, drain, queued_message_count

JSON = {"Content-Type": "application/json"}


def test_create_list_and_change_presence(client):
    create_agent(client, "ada", capacity=3, presence="Away", skills={"billing": 4})
    create_agent(client, "bob", capacity=1)

    listed = client.http.get("/agents", headers=as_admin()).json_body["agents"]
    assert [a["agent_id"] for a in listed] == ["ada", "bob"]
    assert listed[0] == {
        "agent_id": "ada",
        "name": "Ada",
        "presence": "Away",
        "skills": {"billing": 4},
        "queues": ["default"],
        "capacity": 60,
        "used": 0,
        "channel_costs": {},
        "max_per_channel": {"webchat": 3},
        "load": {},
    }
    drain(client)

    response = client.http.put("/agents/ada/presence", headers=as_admin(), body=json.dumps({"presence": "Available"}))
    assert response.status_code == 200
    assert response.json_body["presence"] == "Available"
    assert queued_message_count() == 1, "becoming Available asks the router for waiting work"
    assert client.http.get("/agents/ada", headers=as_admin()).json_body["presence"] == "Available"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "No id"}, "agent_id"),
        ({"agent_id": "has space", "name": "x"}, "agent_id"),
        ({"agent_id": "a", "name": "x", "max_per_channel": {"webchat": -1}}, "max_per_channel.webchat"),
        ({"agent_id": "a", "name": "x", "capacity": -5}, "capacity"),
        ({"agent_id": "a", "name": "x", "queues": ["nowhere"]}, "queues"),
        ({"agent_id": "a", "name": "x", "skills": {"billing": 9}}, "skills.billing"),
        ({"agent_id": "a", "name": "x", "presence": "Sleeping"}, "presence"),
        ({"agent_id": "a", "name": "x", "max_per_channel": {"webchat": "3"}}, "max_per_channel.webchat"),
    ],
)
def test_bad_agent_is_refused_naming_the_field(client, body, field):
    response = client.http.post("/agents", headers=as_admin(), body=json.dumps(body))
    assert response.status_code == 422
    assert field in [d["field"] for d in response.json_body["details"]], response.json_body
    assert client.http.get("/agents", headers=as_admin()).json_body["agents"] == []


def test_not_json_is_400(client):
    response = client.http.post("/agents", headers=as_admin(), body="{")
    assert response.status_code == 400
    assert response.json_body["error"] == "invalid_json"


def test_same_agent_twice_is_409(client):
    create_agent(client, "ada")
    response = client.http.post("/agents", headers=as_admin(), body=json.dumps({"agent_id": "ada", "name": "Again"}))
    assert response.status_code == 409
    assert client.http.get("/agents/ada", headers=as_admin()).json_body["name"] == "Ada"


def test_unknown_agent_is_404_and_bad_presence_is_422(client):
    missing = client.http.put("/agents/ghost/presence", headers=as_admin(), body=json.dumps({"presence": "Away"}))
    assert missing.status_code == 404
    assert client.http.get("/agents/ghost", headers=as_admin()).status_code == 404
    create_agent(client, "ada")
    bad = client.http.put("/agents/ada/presence", headers=as_admin(), body=json.dumps({"presence": "Lunch"}))
    assert bad.status_code == 422
    assert bad.json_body["details"][0]["field"] == "presence"


def test_an_agent_with_more_queue_and_skill_pairs_than_the_index_holds_is_refused(client):
    # Each (queue, skill) pair is one copy in the availability index, rewritten with every offer: 4 x (12 + 1) > 40.
    skills = {f"skill{n:02d}": 3 for n in range(12)}
    body = {"agent_id": "poly", "name": "Poly", "queues": ["default", "support", "vip", "billing"], "skills": skills}
    response = client.http.post("/agents", headers=as_admin(), body=json.dumps(body))
    assert response.status_code == 422, response.body
    assert response.json_body["error"] == "invalid_payload" and "skills" in response.json_body["message"]
    assert client.http.get("/agents", headers=as_admin()).json_body["agents"] == []

    fits = {**body, "queues": ["default", "billing"]}  # 2 x 13 = 26
    assert client.http.post("/agents", headers=as_admin(), body=json.dumps(fits)).status_code == 201
    widened = {"queues": ["default", "support", "vip", "billing"]}
    response = client.http.patch("/agents/poly", headers=as_admin(), body=json.dumps(widened))
    assert response.status_code == 422, response.body
    assert client.http.get("/agents/poly", headers=as_admin()).json_body["queues"] == ["default", "billing"]
