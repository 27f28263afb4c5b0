"""Secrets come from the environment locally and from SSM SecureString parameters in AWS."""

from __future__ import annotations

import json

import boto3
import pytest

from chalicelib.settings import SECRET_NAMES, WEBCHAT_SECRET, MissingSecret, get_secret, reload_settings
from tests.support import signed, webchat_payload


def test_secret_from_ssm_when_a_prefix_is_set(aws, monkeypatch):
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/switchboard/prod/WEBCHAT_SECRET", Value="from-ssm", Type="SecureString"
    )
    monkeypatch.setenv("SWITCHBOARD_SSM_PREFIX", "/switchboard/prod")
    monkeypatch.setenv("WEBCHAT_SECRET", "from-env-must-be-ignored")
    reload_settings()
    assert get_secret(WEBCHAT_SECRET) == "from-ssm"


def test_webhook_signed_with_the_ssm_secret_is_accepted(client, monkeypatch):
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/switchboard/dev/WEBCHAT_SECRET", Value="ssm-webchat-secret", Type="SecureString"
    )
    monkeypatch.setenv("SWITCHBOARD_SSM_PREFIX", "/switchboard/dev")
    reload_settings()
    body = json.dumps(webchat_payload()).encode()
    assert (
        client.http.post("/webhooks/webchat", headers=signed(body, "ssm-webchat-secret"), body=body).status_code == 200
    )
    assert client.http.post("/webhooks/webchat", headers=signed(body), body=body).status_code == 401


def test_missing_secret_is_a_503_naming_it_not_a_crash(client, monkeypatch):
    monkeypatch.delenv("WEBCHAT_SECRET")
    reload_settings()
    with pytest.raises(MissingSecret):
        get_secret(WEBCHAT_SECRET)
    body = json.dumps(webchat_payload()).encode()
    response = client.http.post("/webhooks/webchat", headers=signed(body), body=body)
    assert response.status_code == 503
    assert "WEBCHAT_SECRET" in response.json_body["message"]


def test_every_secret_is_named_once():
    assert len(SECRET_NAMES) == len(set(SECRET_NAMES)) == 11
