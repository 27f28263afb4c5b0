"""Bad input to the sign-in and admin APIs gets a clear 4xx (or 503 for a server setting), never a 500."""

from __future__ import annotations

import json

import boto3
import jwt
import pytest

from chalicelib.routing.config import current_config
from chalicelib.settings import reload_settings
from tests.support import REGION, as_admin, fixture

JSON = {"Content-Type": "application/json"}
YAML = {"Content-Type": "application/yaml"}


def _dev_token(client, body: object):
    return client.http.post("/dev/tokens", headers=JSON, body=json.dumps(body))


# --- POST /dev/tokens -----------------------------------------------------------------------


@pytest.mark.parametrize("body", [[1], [], "ada", 7, True, [{"agent_id": "ada"}]])
def test_a_dev_token_request_that_is_not_an_object_is_422(client, body):
    response = _dev_token(client, body)
    assert response.status_code == 422, response.body
    assert response.json_body["error"] == "invalid_payload"
    assert "JSON object" in response.json_body["message"]


@pytest.mark.parametrize(
    ("roles", "named"),
    [
        ("admin", "list"),  # a string, not a list of them
        ([1], "1"),
        ([["admin"]], "['admin']"),
        ([None], "None"),
        (["root"], "root"),
        (["admin", "superuser"], "superuser"),
        ([], "at least one"),
        ({"admin": True}, "list"),
    ],
)
def test_bad_roles_are_422_naming_what_is_wrong(client, roles, named):
    response = _dev_token(client, {"agent_id": "ada", "roles": roles})
    assert response.status_code == 422, response.body
    body = response.json_body
    assert body["error"] == "invalid_payload"
    assert body["message"].startswith("roles:") and named in body["message"], body["message"]
    assert "agent, supervisor, admin" in body["message"]


@pytest.mark.parametrize("agent_id", [None, 42, "", ["ada"]])
def test_a_missing_or_non_string_agent_id_is_422(client, agent_id):
    response = _dev_token(client, {"agent_id": agent_id, "roles": ["agent"]})
    assert response.status_code == 422, response.body
    assert response.json_body["message"].startswith("agent_id:")


@pytest.mark.parametrize(
    ("body", "groups"),
    [
        ({"agent_id": "ada", "roles": ["supervisor", "agent"]}, ["supervisor", "agent"]),
        ({"agent_id": "ada"}, ["agent"]),
    ],
)
def test_a_good_request_still_gets_a_token_and_roles_default_to_agent(client, body, groups):
    response = _dev_token(client, body)
    assert response.status_code == 200, response.body
    claims = jwt.decode(response.json_body["token"], options={"verify_signature": False})
    assert (claims["cognito:username"], claims["cognito:groups"]) == ("ada", groups)


# --- PUT /admin/routing -----------------------------------------------------------------------


def test_publishing_routing_without_the_parameter_setting_is_503_not_configured(client):
    # The env fixture leaves SWITCHBOARD_ROUTING_CONFIG_PARAMETER unset: a server setting, not the admin's mistake.
    text = fixture("routing/engine_test.yaml").decode()
    response = client.http.put("/admin/routing", headers={**as_admin(), **YAML}, body=text)
    assert response.status_code == 503, response.body
    assert response.json_body["error"] == "not_configured"
    assert "SWITCHBOARD_ROUTING_CONFIG_PARAMETER" in response.json_body["message"]
    # A config with mistakes is still the admin's to fix, setting or not.
    broken = client.http.put(
        "/admin/routing", headers={**as_admin(), **YAML}, body=text.replace("billing: 3", "billing: 7")
    )
    assert broken.status_code == 422


def test_publishing_creates_the_parameter_when_it_does_not_exist_yet(client, monkeypatch):
    # The deployed stack names the parameter (infra: <ssm prefix>/routing-config) but does not create it.
    parameter = "/switchboard/test/routing-config"
    monkeypatch.setenv("SWITCHBOARD_ROUTING_CONFIG_PARAMETER", parameter)
    reload_settings()
    ssm = boto3.client("ssm", region_name=REGION)
    assert not ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [parameter]}])["Parameters"]
    text = fixture("routing/engine_test.yaml").decode()

    response = client.http.put("/admin/routing", headers={**as_admin(), **YAML}, body=text)

    assert response.status_code == 200, response.body
    assert ssm.get_parameter(Name=parameter)["Parameter"]["Value"] == text
    assert set(current_config().queues) == set(response.json_body["queues"])
