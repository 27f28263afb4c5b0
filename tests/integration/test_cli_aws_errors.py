"""The ``switchboard`` ops commands when AWS cannot be used: one clear line on stderr and exit 3, no traceback.

Real botocore every time: no credentials at all (and no ~/.aws config to fall
back on), an endpoint on a closed loopback port, credentials AWS refuses,
a user without permissions (moto enforcing IAM), and a stage whose queues
or tables do not exist (moto).
"""

from __future__ import annotations

import io
import json
import os
import socket
import sys

import boto3
import pytest
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count

from chalicelib import stages
from chalicelib.cli import main
from chalicelib.settings import reload_settings
from chalicelib.store import aws as aws_clients
from chalicelib.store.resources import create_all

# Every subcommand that talks to AWS, with what it needs besides AWS.
AWS_COMMANDS = {
    "dlq list": ["dlq", "list", "--stage", "prod"],
    "dlq redrive": ["dlq", "redrive", "--stage", "prod"],
    "secrets status": ["secrets", "status", "--stage", "prod"],
    "secrets set": ["secrets", "set", "TWILIO_AUTH_TOKEN", "--stage", "prod"],
    "setup": ["setup", "--stage", "prod", "--outputs", "OUTPUTS"],
    "agents create": ["agents", "create", "ada", "--stage", "prod"],
    "explain-contact": ["explain-contact", "c_1", "--stage", "prod"],
    "replay": ["replay", "--from", "2026-11-24T00:00:00Z", "--to", "2026-11-25T00:00:00Z", "--stage", "prod"],
}
SECRET_VALUE = "a3f1c2d4e5b6a7980f1e2d3c4b5a6978"
_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


@pytest.fixture
def shell(env, monkeypatch, tmp_path):
    """An operator's shell: nothing from ~/.aws, no instance metadata, stdin holding a secret, outputs on disk."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-such-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-such-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no credential lookup over the network
    for name in ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    queues = ("SWITCHBOARD_ROUTING_QUEUE", "SWITCHBOARD_TIMER_QUEUE", "SWITCHBOARD_OUTBOX_QUEUE")
    for name in (*stages.environment("prod"), *queues):  # --stage prod sets these; undo it after the test
        monkeypatch.setenv(name, os.environ.get(name, ""))
        if not os.environ[name]:
            monkeypatch.delenv(name)
    monkeypatch.setattr("sys.stdin", io.StringIO(SECRET_VALUE + "\n"))
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"switchboard-prod": {}}))
    yield str(outputs)
    reload_settings()
    aws_clients.reset()


def _run(command: str, outputs: str, capsys) -> tuple[int, list[str]]:
    aws_clients.reset()
    sys.stdin = io.StringIO(SECRET_VALUE + "\n")  # what `secrets set` reads (monkeypatched by the fixture)
    argv = [outputs if arg == "OUTPUTS" else arg for arg in AWS_COMMANDS[command]]
    status = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "botocore" not in err and SECRET_VALUE not in err, err
    return status, err.strip().splitlines()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # free once closed: nothing listens there


@pytest.mark.parametrize("command", AWS_COMMANDS)
def test_without_credentials_one_line_says_so(shell, monkeypatch, capsys, command):
    for name in _CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    status, lines = _run(command, shell, capsys)
    assert status == 3
    assert lines == [lines[0]] and lines[0].startswith("switchboard: no AWS credentials"), lines


@pytest.mark.parametrize("command", AWS_COMMANDS)
def test_an_unreachable_endpoint_is_one_line_naming_the_url(shell, monkeypatch, capsys, command):
    url = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    status, lines = _run(command, shell, capsys)
    assert status == 3
    assert len(lines) == 1 and "cannot reach the AWS endpoint" in lines[0] and url in lines[0], lines


@pytest.mark.parametrize("command", AWS_COMMANDS)
def test_refused_credentials_and_missing_permissions_are_one_line_each(shell, monkeypatch, capsys, command):
    @set_initial_no_auth_action_count(2)  # moto checks IAM after the two calls that make a user without rights
    @mock_aws
    def against_aws_enforcing_iam() -> None:
        iam = boto3.client("iam", region_name="us-east-1")
        iam.create_user(UserName="nobody")
        key = iam.create_access_key(UserName="nobody")["AccessKey"]

        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000")
        status, lines = _run(command, shell, capsys)
        assert status == 3
        assert len(lines) == 1 and "AWS refused the credentials (InvalidClientTokenId)" in lines[0], lines

        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        status, lines = _run(command, shell, capsys)
        assert status == 3
        assert len(lines) == 1 and lines[0].startswith("switchboard: access denied: "), lines
        assert "not authorized to perform" in lines[0]

    against_aws_enforcing_iam()


@pytest.mark.parametrize(
    ("command", "named"),
    [
        ("dlq list", "queue switchboard-prod-routing-dlq.fifo"),
        ("dlq redrive", "queue switchboard-prod-routing-dlq.fifo"),
        ("agents create", "table switchboard-prod-routing"),
        ("explain-contact", "table switchboard-prod-routing"),
        ("replay", "table switchboard-prod-routing"),
    ],
)
def test_a_stage_not_deployed_is_one_line_naming_what_is_missing(shell, capsys, command, named):
    with mock_aws():
        create_all()  # the default stage's resources exist; prod's do not
        status, lines = _run(command, shell, capsys)
    assert status == 3
    assert len(lines) == 1 and lines[0].startswith(f"switchboard: not found: {named}"), lines
    assert "--stage" in lines[0]


def test_secrets_status_without_a_stage_is_a_usage_line_not_a_traceback(shell, monkeypatch, capsys):
    monkeypatch.delenv("SWITCHBOARD_SSM_PREFIX", raising=False)
    reload_settings()
    status = main(["secrets", "status"])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert err.strip() == "switchboard: SWITCHBOARD_SSM_PREFIX is not set: pass --stage"
