"""Starting and stopping the local stack: ports freed, threads gone, environment restored; ``python -m`` works."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from chalice import Chalice
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from chalicelib.local import LocalStack

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _app(disconnects: list[dict[str, Any]]) -> Chalice:
    app = Chalice(app_name="lifecycle-test")
    app.experimental_feature_flags.update(["WEBSOCKETS"])

    @app.route("/")
    def index() -> dict[str, bool]:
        return {"ok": True}

    @app.on_ws_disconnect()
    def gone(event: Any) -> None:
        disconnects.append(event.to_dict())

    @app.on_sqs_message(queue="lifecycle.fifo")
    def consume(event: Any) -> None:
        pass

    @app.schedule("rate(5 minutes)")
    def every_five_minutes(event: Any) -> None:
        pass

    return app


def _port(url: str) -> int:
    return int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


def _can_listen(port: int) -> bool:
    """Whether a new server could listen on the port (SO_REUSEADDR, as every server here sets it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
    return True


def test_stop_frees_ports_joins_threads_and_restores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://sentinel.invalid:1")
    monkeypatch.setenv("AWS_PROFILE", "a-real-account")
    monkeypatch.delenv("WEBSOCKET_MANAGEMENT_ENDPOINT", raising=False)
    disconnects: list[dict[str, Any]] = []
    app = _app(disconnects)
    threads_before = set(threading.enumerate())

    with LocalStack(app, api_port=0, ws_port=0, management_port=0, moto_port=0) as stack:
        urls = stack.urls()
        assert all(url.split("://", 1)[1].startswith("127.0.0.1:") for url in urls.values())
        assert os.environ["AWS_ENDPOINT_URL"] == stack.moto_url
        assert os.environ["WEBSOCKET_MANAGEMENT_ENDPOINT"] == stack.management_url
        assert "AWS_PROFILE" not in os.environ
        assert stack.pump.schedule_intervals == {"every_five_minutes": 300.0}
        assert requests.get(f"{stack.api_url}/", timeout=5).json() == {"ok": True}
        client = connect(stack.ws_url, open_timeout=5)
        # Still open when the stack stops: the gateway closes it and runs $disconnect.

    with pytest.raises(ConnectionClosed):
        client.recv(timeout=5)
    client.close()
    assert [e["requestContext"]["disconnectStatusCode"] for e in disconnects] == [1001]
    assert {name: _can_listen(_port(url)) for name, url in urls.items()} == dict.fromkeys(urls, True)
    assert os.environ["AWS_ENDPOINT_URL"] == "http://sentinel.invalid:1"
    assert os.environ["AWS_PROFILE"] == "a-real-account"
    assert "WEBSOCKET_MANAGEMENT_ENDPOINT" not in os.environ
    assert type(app) is Chalice

    deadline = time.monotonic() + 5
    while (leftover := [t.name for t in set(threading.enumerate()) - threads_before if t.is_alive()]) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.05)
    assert leftover == []


def test_python_dash_m_serves_the_switchboard_app_until_sigterm() -> None:
    command = [sys.executable, "-m", "chalicelib.local", "--api-port", "0", "--ws-port", "0"]
    command += ["--management-port", "0", "--moto-port", "0", "--log-level", "WARNING"]
    process = subprocess.Popen(
        command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while not any(line.startswith("Ctrl-C") for line in lines):
            line = process.stdout.readline()
            assert line and time.monotonic() < deadline, "".join(lines)
            lines.append(line)
        api_url = next(line.split()[-1] for line in lines if line.strip().startswith("REST API"))

        assert requests.get(f"{api_url}/agents", timeout=5).status_code == 401, "signed-in users only"
        issued = requests.post(f"{api_url}/dev/tokens", json={"agent_id": "ops", "roles": ["admin"]}, timeout=5)
        assert issued.status_code == 200, "make local issues development tokens"
        headers = {"Authorization": f"Bearer {issued.json()['token']}"}
        response = requests.get(f"{api_url}/agents", headers=headers, timeout=5)
        assert response.status_code == 200
        assert "agents" in response.json()

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_the_stack_imports_what_handlers_import_lazily_before_it_serves() -> None:
    """Lambda runs one invocation per container at a time; the local stack runs handlers on many threads at once,
    and two threads importing one package with internal cycles for the first time can hand one of them a
    partially initialized module (an ImportError the first $connect and routing event met together). So the
    stack imports them all before it serves. In a fresh interpreter: nothing imported them before."""
    probe = (
        "import sys\n"
        "from app import app\n"
        "from chalicelib.local import LocalStack\n"
        "from chalicelib.local.stack import LAZY_IMPORTS\n"
        "before = [m for m in LAZY_IMPORTS if m in sys.modules]\n"
        "with LocalStack(app, api_port=0, ws_port=0, management_port=0, moto_port=0):\n"
        "    after = [m for m in LAZY_IMPORTS if m not in sys.modules]\n"
        "print(len(LAZY_IMPORTS), before, after)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    count, before, after = result.stdout.strip().splitlines()[-1].split(" ", 2)
    assert int(count) >= 10
    assert before.startswith("[]") and after.endswith("[]"), result.stdout
