"""After `make deploy`: `switchboard secrets status|set` and `switchboard setup`, against moto's SSM, and the
`--stage` option that points the ops commands at a deployed stage's names."""

from __future__ import annotations

import io
import json
import os

import boto3
import pytest

from chalicelib import stages
from chalicelib.channels import registry
from chalicelib.cli import main
from chalicelib.operate import output_key
from chalicelib.settings import DEPLOYED_SECRETS
from chalicelib.store.resources import create_all

TOKEN_VALUE = "a3f1c2d4e5b6a7980f1e2d3c4b5a6978"  # what an operator pastes: must never be echoed


@pytest.fixture
def prod(aws, monkeypatch):
    """Let `--stage prod` change the environment and have the test undo it."""
    queues = ("SWITCHBOARD_ROUTING_QUEUE", "SWITCHBOARD_TIMER_QUEUE", "SWITCHBOARD_OUTBOX_QUEUE")
    for name in (*stages.environment("prod"), *queues):
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])
        else:
            monkeypatch.setenv(name, "")
            monkeypatch.delenv(name)
    return boto3.client("ssm")


def stdin(monkeypatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def test_secrets_are_set_from_stdin_and_reported_without_values(prod, monkeypatch, capsys):
    assert main(["secrets", "status", "--stage", "prod"]) == 0
    before = capsys.readouterr().out
    assert before.count("missing") == len(DEPLOYED_SECRETS)
    assert "/switchboard/prod/TWILIO_AUTH_TOKEN" in before and "DEV_SIGNING_KEY" not in before

    stdin(monkeypatch, TOKEN_VALUE + "\n")
    assert main(["secrets", "set", "TWILIO_AUTH_TOKEN", "--stage", "prod"]) == 0
    said = capsys.readouterr().out
    assert "/switchboard/prod/TWILIO_AUTH_TOKEN set" in said and TOKEN_VALUE not in said

    stored = prod.get_parameter(Name="/switchboard/prod/TWILIO_AUTH_TOKEN", WithDecryption=True)["Parameter"]
    assert stored["Type"] == "SecureString" and stored["Value"] == TOKEN_VALUE  # newline stripped

    assert main(["secrets", "status", "--stage", "prod"]) == 0
    after = capsys.readouterr().out
    assert "set      /switchboard/prod/TWILIO_AUTH_TOKEN" in after
    assert after.count("missing") == len(DEPLOYED_SECRETS) - 1
    assert TOKEN_VALUE not in after


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("TWILIO_TOKEN", "x", "unknown secret"),
        ("DEV_SIGNING_KEY", "x", "local sign-in only"),
        ("META_APP_SECRET", "  \n", "empty"),
    ],
)
def test_bad_secrets_are_refused_and_nothing_is_stored(prod, monkeypatch, capsys, name, value, problem):
    stdin(monkeypatch, value)
    assert main(["secrets", "set", name, "--stage", "prod"]) == 2
    assert problem in capsys.readouterr().err
    assert prod.describe_parameters()["Parameters"] == []


def test_unknown_stage_is_a_usage_error(prod, capsys):
    assert main(["secrets", "status", "--stage", "staging"]) == 2
    assert "unknown stage 'staging'" in capsys.readouterr().err


def test_setup_prints_the_checklist_with_this_deployments_urls(prod, monkeypatch, tmp_path, capsys):
    stdin(monkeypatch, "telegram-secret")
    assert main(["secrets", "set", "TELEGRAM_SECRET_TOKEN", "--stage", "prod"]) == 0
    capsys.readouterr()
    base = "https://k3j4h5g6f7.execute-api.eu-west-1.amazonaws.com/api"
    outputs = {output_key(a.name): base + a.path for a in registry.CHANNELS} | {
        "UserPoolId": "eu-west-1_AbCdEf123",
        "ConsoleUrl": base + "/console",
        "WebSocketUrl": "wss://w9x8y7z6v5.execute-api.eu-west-1.amazonaws.com/api",
        "AlarmTopicArn": "arn:aws:sns:eu-west-1:123456789012:switchboard-prod-alarms",
        "DashboardUrl": "https://eu-west-1.console.aws.amazon.com/cloudwatch/home#dashboards:name=x",
    }
    path = tmp_path / "outputs-prod.json"
    path.write_text(json.dumps({"switchboard-prod": outputs}))  # as `cdk deploy --outputs-file` writes it

    assert main(["setup", "--stage", "prod", "--outputs", str(path)]) == 0
    checklist = capsys.readouterr().out
    assert f"1. Secrets (1 of {len(DEPLOYED_SECRETS)} set)" in checklist
    assert "[set    ] TELEGRAM_SECRET_TOKEN" in checklist and "[missing] TWILIO_AUTH_TOKEN" in checklist
    assert "telegram-secret" not in checklist
    for adapter in registry.CHANNELS:
        assert f"{adapter.name}: {base}{adapter.path}" in checklist
    assert "--user-pool-id eu-west-1_AbCdEf123" in checklist and "--group-name admin" in checklist
    assert f"{base}/console?ws=wss://w9x8y7z6v5" in checklist


def test_setup_with_the_wrong_outputs_file_says_so(prod, tmp_path, capsys):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"switchboard-dev": {}}))
    assert main(["setup", "--stage", "prod", "--outputs", str(path)]) == 2
    assert "no outputs of switchboard-prod" in capsys.readouterr().err
    assert main(["setup", "--stage", "prod", "--outputs", str(tmp_path / "absent.json")]) == 2


def test_dlq_commands_take_a_stage(prod, capsys):
    stages.use("prod")
    create_all()  # the prod queues, as the stack names them
    assert main(["dlq", "list", "--stage", "prod"]) == 0
    listing = capsys.readouterr().out
    for name in stages.queue_names("prod").values():
        assert f"{name}: 0 dead letters" in listing


def test_agents_create_makes_the_first_admins_agent_record(prod, capsys):
    stages.use("prod")
    create_all()
    assert main(["agents", "create", "grace", "--name", "Grace Hopper", "--stage", "prod"]) == 0
    assert "agent grace (Grace Hopper) created" in capsys.readouterr().out
    from chalicelib.store import routing as routing_store

    assert routing_store.get_agent("grace").name == "Grace Hopper"
    assert main(["agents", "create", "grace", "--stage", "prod"]) == 1  # already there: said, not overwritten
    assert "grace" in capsys.readouterr().err
    assert main(["agents", "create", "bob", "--queue", "nope", "--stage", "prod"]) == 1
    assert "unknown queues: nope" in capsys.readouterr().err
