"""The local REST server's access log leaves out query strings, as the deployed API Gateway access log does.

Query strings carry secrets and personal data: Meta's ``hub.verify_token``,
a visitor's id on the widget's polls, ``?token=`` sign-ins. The deployed
format (infra ``SECRET_FREE_ACCESS_LOG``) logs the method and the resource
path only; ``make local`` prints its access lines, so it must do the same.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest
import requests
from chalice import Chalice

from chalicelib.local.rest import RestApiServer

SECRET = "verify-6b1f0e2d9c"
VISITOR = "v_secret_visitor_42"
app = Chalice(app_name="access-log-test")


@app.route("/webhooks/meta")
def verify() -> dict[str, str]:
    return {"ok": "yes"}


@pytest.fixture
def server() -> Iterator[RestApiServer]:
    running = RestApiServer(app, port=0)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def _logged(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    return "\n".join([*(r.getMessage() for r in caplog.records), captured.out, captured.err])


def test_a_secret_in_the_query_string_never_reaches_the_access_log(server, caplog, capsys):
    caplog.set_level(logging.INFO, logger="chalicelib.local.rest")
    response = requests.get(
        f"{server.url}/webhooks/meta",
        params={"hub.mode": "subscribe", "hub.verify_token": SECRET, "visitor_id": VISITOR},
        timeout=5,
    )
    assert response.status_code == 200
    logged = _logged(caplog, capsys)
    assert "GET /webhooks/meta" in logged and "200" in logged, logged  # the line is there, as in AWS
    assert SECRET not in logged and VISITOR not in logged and "hub.mode" not in logged, logged


def test_a_malformed_request_line_with_a_secret_is_logged_without_it(server, caplog, capsys):
    caplog.set_level(logging.INFO, logger="chalicelib.local.rest")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        raw.sendall(f"GET /webhooks/meta?hub.verify_token={SECRET} HTTP/1.1 junk\r\n\r\n".encode())
        answer = raw.recv(4096)
    assert b"400" in answer, answer  # an error page (for a malformed version, without a status line)
    logged = _logged(caplog, capsys)
    assert "400" in logged, logged
    assert SECRET not in logged, logged
