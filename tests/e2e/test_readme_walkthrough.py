"""The README's "Running it by hand" walkthrough, run as a new user would: bash, curl, openssl, a WebSocket client.

The first block (`WEBCHAT_SECRET=dev-secret make local`) becomes `python -m chalicelib.local` on free
ports (what `make local` runs, without the fixed ports a developer's own stack may hold); the second block
is fed line by line to one bash, as typed into the second terminal, with 8000/8001 replaced by those
ports. Where the block says to use Ada's WebSocket ("in a third terminal", "accept on Ada's WebSocket"),
a WebSocket client does what the comment says.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from websockets.sync.client import ClientConnection, connect

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
CONNECT_MARKER = "# in a third terminal, be Ada:"
ACCEPT_MARKER = "# accept on Ada's WebSocket:"


def _section(title: str) -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index(f"## {title}")
    end = readme.index("\n## ", start + 1)
    return readme[start:end]


def _shell_blocks(section: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Lines:
    """A pipe read by a thread, so the test can wait for a line with a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if found := re.search(pattern, line):
                        return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no line matching {pattern!r} within {timeout} s: {self.lines[-20:]}")
                self._changed.wait(left)


@pytest.fixture(scope="module")
def ports() -> Iterator[dict[str, int]]:
    """`make local` (the first block) on free ports; yields the ports once the stack says it is up."""
    (first,) = _shell_blocks(_section("Running it by hand"))[:1]
    assert first.strip() == "WEBCHAT_SECRET=dev-secret make local"
    assert "$(PY) -m chalicelib.local\n" in (ROOT / "Makefile").read_text()
    chosen = {"api": _free_port(), "ws": _free_port(), "management": _free_port(), "moto": _free_port()}
    arguments = [f"--{name.replace('_', '-')}-port={port}" for name, port in chosen.items()]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SWITCHBOARD_"))}
    env["WEBCHAT_SECRET"] = "dev-secret"
    with (
        open(os.devnull, "w") as quiet,
        subprocess.Popen(
            [sys.executable, "-m", "chalicelib.local", *arguments],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=quiet,
            text=True,
        ) as stack,
    ):
        assert stack.stdout is not None
        Lines(stack.stdout).wait_for(r"Ctrl-C to stop", timeout=60)
        try:
            yield chosen
        finally:
            stack.send_signal(signal.SIGTERM)
            stack.wait(timeout=30)


def _next(ws: ClientConnection, kind: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        event = json.loads(ws.recv(timeout=left))
        if event.get("type") == kind:
            return dict(event)
    raise AssertionError(f"no {kind} on the WebSocket within {timeout} s")


def test_running_it_by_hand_works_as_written(ports: dict[str, int]) -> None:
    second = _shell_blocks(_section("Running it by hand"))[1]
    for documented, port in (("8000", ports["api"]), ("8001", ports["ws"])):
        second = second.replace(f"127.0.0.1:{documented}", f"127.0.0.1:{port}")
    assert CONNECT_MARKER in second and ACCEPT_MARKER in second
    before_connect, rest = second.split(CONNECT_MARKER)
    before_accept, after_accept = rest.split(ACCEPT_MARKER)

    shell = subprocess.Popen(
        ["bash", "-s"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert shell.stdin is not None and shell.stdout is not None
    said = Lines(shell.stdout)
    try:
        shell.stdin.write(before_connect + CONNECT_MARKER)
        shell.stdin.flush()
        url = said.wait_for(r"^Ada's WebSocket: (ws://\S+)$").group(1)
        assert f"127.0.0.1:{ports['ws']}/?token=" in url
        with connect(url, open_timeout=10) as ada:
            shell.stdin.write(before_accept + ACCEPT_MARKER)
            shell.stdin.flush()
            stored = json.loads(said.wait_for(r'^(\{.*"status":\s*"accepted".*\})$').group(1))
            offer = _next(ada, "offer")
            assert offer["contact_id"] == stored["conversation_id"] and offer["channel"] == "webchat"
            # What the comment tells Ada to send, as she would type it.
            ada.send(json.dumps({"action": "accept", "contact_id": offer["contact_id"], "offer_id": offer["offer_id"]}))
            assert _next(ada, "accepted")["contact_id"] == offer["contact_id"]
            shell.stdin.write(after_accept)
            shell.stdin.close()
            assert shell.wait(timeout=60) == 0
    finally:
        if shell.poll() is None:
            shell.kill()
    answers = [json.loads(line) for line in said.lines if line.startswith("{")]
    created, stored_again, reply, closed, history, routing = answers
    assert created["agent_id"] == "ada" and created["presence"] == "Available", created
    assert stored_again == stored
    assert reply["status"] == "sent" and reply["author"] == "ada", reply  # 202: sent to the widget by the request
    assert closed["state"] == "closed", closed
    texts = [m["text"] for m in history["timeline"]]
    assert texts == ["Hello, where is my order?", "Hi! It left our warehouse this morning."], texts
    # `make local` configures the routing SSM parameter, so an admin's routing change is taken live.
    assert "error" not in routing and "billing" in routing["queues"], routing


def test_operating_it_against_make_local_works_as_written(ports: dict[str, int]) -> None:
    (block,) = _shell_blocks(_section("Operating it"))
    block = block.replace("127.0.0.1:8003", f"127.0.0.1:{ports['moto']}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    env["PYTHONPATH"] = str(ROOT)  # this checkout's chalicelib, whichever the shared virtualenv installed
    finished = subprocess.run(
        ["bash", "-e"], input=block, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "switchboard-routing.fifo: 0 dead letters" in finished.stdout, finished.stdout
