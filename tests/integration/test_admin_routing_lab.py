"""PUT /admin/routing with `lab:` set: the candidate is simulated against the live rules, and a loss is warned about
(the config is published all the same)."""

from __future__ import annotations

from pathlib import Path

import boto3

from chalicelib.routing.config import DEFAULT_FILE, current_config
from chalicelib.settings import reload_settings
from tests.support import REGION, as_admin

YAML = {"Content-Type": "application/yaml"}
SHIPPED = Path(DEFAULT_FILE).read_text()
LAB = "\nlab:\n  scenario: lab-check\n  max_sl_loss_points: 2\n"


def _publishing(monkeypatch) -> str:
    parameter = "/switchboard/test/routing-config"
    monkeypatch.setenv("SWITCHBOARD_ROUTING_CONFIG_PARAMETER", parameter)
    reload_settings()
    return parameter


def test_a_candidate_that_loses_sl_is_published_with_a_warning(client, monkeypatch):
    parameter = _publishing(monkeypatch)
    stricter = SHIPPED.replace("      billing: 3\n    escalation:", "      billing: 5\n    escalation:") + LAB

    response = client.http.put("/admin/routing", headers={**as_admin(), **YAML}, body=stricter)

    assert response.status_code == 200, response.body
    body = response.json_body
    assert body["lab"]["scenario"] == "lab-check"
    assert any("billing/webchat" in warning for warning in body["warnings"])
    assert boto3.client("ssm", region_name=REGION).get_parameter(Name=parameter)["Parameter"]["Value"] == stricter
    assert current_config().lab is not None  # warned, not refused: it is live


def test_the_same_rules_with_the_lab_on_publish_without_warnings(client, monkeypatch):
    _publishing(monkeypatch)

    response = client.http.put("/admin/routing", headers={**as_admin(), **YAML}, body=SHIPPED + LAB)

    assert response.status_code == 200, response.body
    assert response.json_body["warnings"] == []
    assert response.json_body["lab"]["total"]["loss_points"] == 0


def test_without_the_lab_setting_nothing_is_simulated(client, monkeypatch):
    _publishing(monkeypatch)

    response = client.http.put("/admin/routing", headers={**as_admin(), **YAML}, body=SHIPPED)

    assert response.status_code == 200, response.body
    assert "lab" not in response.json_body and "warnings" not in response.json_body
