"""Who may do what: every denial of the agent, supervisor and admin APIs."""

from __future__ import annotations

import json

import pytest
import responses

from chalicelib.auth import forget_signing_keys
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
    ws_event,
)

JSON = {"Content-Type": "application/json"}


def call(client, method: str, path: str, headers: dict, body: object = None):
    payload = json.dumps(body if body is not None else {})
    if method == "GET":
        return client.http.get(path, headers=headers)
    return getattr(client.http, method.lower())(path, headers={**JSON, **headers}, body=payload)


ADMIN_ONLY = [
    ("POST", "/agents", {"agent_id": "x", "name": "X"}),
    ("POST", "/admin/identities/link", {"identities": []}),
    ("POST", "/admin/customers/merge", {"source": "cus_a", "target": "cus_b"}),
]
SUPERVISOR_ONLY = [
    ("GET", "/agents", None),
    ("GET", "/supervisor", None),
    ("GET", "/contacts/conv_x", None),
    ("GET", "/customers/cus_x", None),
    # The console's customer panel: supervisors edit a customer's tier and tags.
    ("PUT", "/customers/cus_00000000000000000000/attributes", {"tier": "vip"}),
    ("GET", "/search?q=grace", None),
]
SIGNED_IN = [
    ("GET", "/me", None),
    ("GET", "/me/conversations", None),
    ("GET", "/conversations/conv_x", None),
    ("POST", "/conversations/conv_x/accept", None),
    ("POST", "/conversations/conv_x/notes", {"text": "x"}),
    ("POST", "/conversations/conv_x/close", {"wrap_up": "resolved"}),
    ("PUT", "/agents/ada/presence", {"presence": "Away"}),
    ("GET", "/voice/token", None),
    ("POST", "/conversations/conv_x/read", None),
    ("GET", "/conversations/conv_x/customer", None),
    ("GET", "/transfer-targets", None),
    ("GET", "/wrap-up-codes", None),
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


# --- Cognito tokens through the API and the WebSocket ----------------------------------


@pytest.fixture
def cognito(client, monkeypatch):
    """The deployed sign-in: the app verifies the user pool's tokens against the pool's JWKS (played here)."""
    from tests.unit.test_auth import CLIENT_ID, ISSUER, JWKS_URL, POOL_KEY, POOL_KID, _jwk

    create_agent(client, "agent-0042")  # the victim, while dev tokens still work
    create_agent(client, "mallory")
    monkeypatch.setenv("SWITCHBOARD_DEV_AUTH", "0")
    monkeypatch.setenv("COGNITO_ISSUER", ISSUER)
    monkeypatch.setenv("COGNITO_CLIENT_ID", CLIENT_ID)
    reload_settings()
    forget_signing_keys()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as pool:
        pool.get(JWKS_URL, json={"keys": [_jwk(POOL_KEY, POOL_KID)]})
        yield client
    forget_signing_keys()


def test_an_access_token_cannot_act_as_the_agent_its_username_names(cognito):
    """Mallory's Cognito username is another agent's id; her access token has no custom:agent_id to say otherwise."""
    from tests.unit.test_auth import _sign, access_claims, current, id_claims

    access = _sign(current(access_claims(username="agent-0042", **{"cognito:groups": ["agent"]})))
    identity = _sign(
        current(
            id_claims(**{"cognito:username": "agent-0042", "custom:agent_id": "mallory", "cognito:groups": ["agent"]})
        )
    )

    refused = call(cognito, "GET", "/me", {"Authorization": f"Bearer {access}"})
    assert refused.status_code == 401
    assert "send the ID token" in refused.json_body["message"]
    presence = call(
        cognito, "PUT", "/agents/agent-0042/presence", {"Authorization": f"Bearer {access}"}, {"presence": "Away"}
    )
    assert presence.status_code == 401
    connected = cognito.lambda_.invoke("ws_connect", ws_event("$connect", "mallory1=", query={"token": access}))
    assert connected.payload["statusCode"] == 401

    # Her ID token names the agent the admin gave her, on REST and on the WebSocket alike.
    assert call(cognito, "GET", "/me", {"Authorization": f"Bearer {identity}"}).json_body["agent_id"] == "mallory"
    assert (
        call(
            cognito, "PUT", "/agents/agent-0042/presence", {"Authorization": f"Bearer {identity}"}, {"presence": "Away"}
        ).status_code
        == 403
    )
