"""Who may do what: every denial of the agent, supervisor and admin APIs."""

from __future__ import annotations

import json

import pytest

from chalicelib.settings import reload_settings
from tests.support import (
    as_admin,
    as_agent,
    bearer,
    connect_agent,
    create_agent,
    drain,
    offers_to,
    post_webchat,
    webchat_payload,
)

JSON = {"Content-Type": "application/json"}


def call(client, method: str, path: str, headers: dict, body: object = None):
    payload = json.dumps(body if body is not None else {})
    if method == "GET":
        return client.http.get(path, headers=headers)
    return getattr(client.http, method.lower())(path, headers={**JSON, **headers}, body=payload)


ADMIN_ONLY = [
    ("POST", "/agents", {"agent_id": "x", "name": "X"}),
    ("PUT", "/customers/cus_00000000000000000000/attributes", {"tier": "vip"}),
    ("POST", "/admin/identities/link", {"identities": []}),
    ("POST", "/admin/customers/merge", {"source": "cus_a", "target": "cus_b"}),
]
SUPERVISOR_ONLY = [
    ("GET", "/agents", None),
    ("GET", "/supervisor", None),
    ("GET", "/contacts/conv_x", None),
    ("GET", "/customers/cus_x", None),
]
SIGNED_IN = [
    ("GET", "/me", None),
    ("GET", "/me/conversations", None),
    ("GET", "/conversations/conv_x", None),
    ("POST", "/conversations/conv_x/accept", None),
    ("POST", "/conversations/conv_x/notes", {"text": "x"}),
    ("POST", "/conversations/conv_x/close", {"wrap_up": "resolved"}),
    ("PUT", "/agents/ada/presence", {"presence": "Away"}),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ONLY + SUPERVISOR_ONLY + SIGNED_IN)
def test_without_a_token_every_api_is_401(client, method, path, body):
    response = call(client, method, path, {}, body)
    assert response.status_code == 401
    assert response.json_body["error"] == "unauthenticated"
    forged = call(client, method, path, {"Authorization": "Bearer not.a.token"}, body)
    assert forged.status_code == 401


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ONLY)
@pytest.mark.parametrize("role", ["agent", "supervisor"])
def test_only_admins_manage_agents_customers_and_identities(client, method, path, body, role):
    response = call(client, method, path, bearer("ada", role), body)
    assert response.status_code == 403
    assert response.json_body["error"] == "forbidden"


@pytest.mark.parametrize(("method", "path", "body"), SUPERVISOR_ONLY)
def test_agents_do_not_see_queues_other_agents_or_customers_at_large(client, method, path, body):
    assert call(client, method, path, bearer("ada", "agent"), body).status_code == 403


def test_an_agent_acts_only_as_themselves(client):
    create_agent(client, "ada")
    create_agent(client, "bob")
    assert call(client, "PUT", "/agents/bob/presence", bearer("ada", "agent"), {"presence": "Away"}).status_code == 403
    assert call(client, "GET", "/agents/bob", bearer("ada", "agent")).status_code == 403
    assert call(client, "PUT", "/agents/ada/presence", bearer("ada", "agent"), {"presence": "Away"}).status_code == 200
    assert (
        call(client, "PUT", "/agents/bob/presence", bearer("sue", "supervisor"), {"presence": "Away"}).status_code
        == 200
    )


def test_an_agent_cannot_read_or_work_another_agents_conversation(client):
    create_agent(client, "ada")
    create_agent(client, "eve")
    ada = connect_agent(client, "ada")
    conversation = post_webchat(client, webchat_payload()).json_body["conversation_id"]
    drain(client)
    assert offers_to(ada)
    eve = bearer("eve", "agent")

    assert call(client, "GET", f"/conversations/{conversation}", eve).status_code == 403
    assert call(client, "POST", f"/conversations/{conversation}/notes", eve, {"text": "peek"}).status_code == 403
    assert call(client, "POST", f"/conversations/{conversation}/accept", eve).status_code == 403
    assert call(client, "POST", f"/conversations/{conversation}/transfer", eve, {"queue": "default"}).status_code == 403
    assert call(client, "POST", f"/conversations/{conversation}/close", eve, {"wrap_up": "x"}).status_code == 403

    mine = call(client, "GET", f"/conversations/{conversation}", bearer("ada", "agent"))
    assert mine.status_code == 200 and mine.json_body["timeline"][0]["text"] == "Where is my order?"
    overseen = call(client, "GET", f"/conversations/{conversation}", bearer("sue", "supervisor"))
    assert overseen.status_code == 200


def test_dev_tokens_exist_only_with_dev_auth(client, monkeypatch):
    issued = client.http.post("/dev/tokens", headers=JSON, body=json.dumps({"agent_id": "ada", "roles": ["agent"]}))
    assert issued.status_code == 200 and issued.json_body["token"].count(".") == 2
    monkeypatch.setenv("SWITCHBOARD_DEV_AUTH", "0")
    reload_settings()
    refused = client.http.post("/dev/tokens", headers=JSON, body=json.dumps({"agent_id": "ada"}))
    assert refused.status_code == 404


def test_admin_can_do_everything_an_agent_can(client):
    create_agent(client, "ada")
    assert call(client, "GET", "/agents", as_admin()).status_code == 200
    assert call(client, "GET", "/supervisor", as_admin()).status_code == 200
    assert call(client, "GET", "/me", as_agent("ada")).json_body["roles"] == ["agent"]
