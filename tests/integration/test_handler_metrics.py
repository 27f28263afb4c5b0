"""Every handler runs through Powertools Metrics (Chalice middleware): the first invocation of a container
publishes the ColdStart metric, in the stage's namespace, named by function; later ones do not."""

from __future__ import annotations

import json

from chalicelib import observability
from tests.support import ws_event


def emf(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]


def test_cold_start_is_published_once_per_container(client, capsys, monkeypatch):
    monkeypatch.setattr("aws_lambda_powertools.metrics.provider.cold_start.is_cold_start", True)
    capsys.readouterr()
    client.lambda_.invoke("ws_disconnect", ws_event("$disconnect", "gone-connection="))
    (cold,) = [m for m in emf(capsys.readouterr().out) if "ColdStart" in m]
    definition = cold["_aws"]["CloudWatchMetrics"][0]
    assert definition["Namespace"] == observability.metrics.namespace == "Switchboard"
    assert definition["Metrics"] == [{"Name": "ColdStart", "Unit": "Count"}]
    assert cold["function_name"] and cold["ColdStart"] == [1.0]

    client.lambda_.invoke("ws_disconnect", ws_event("$disconnect", "gone-again="))
    assert not [m for m in emf(capsys.readouterr().out) if "ColdStart" in m]
