"""``make demo``: the product's main job on the local stack, played as a script.

Three agents connect over WebSocket; twenty web-chat visitors write through
signed webhooks; the router offers each conversation to an agent, who
accepts (one declines their first offer, to show it moving on), works it and
closes it. Prints a summary per conversation and exits 0 when every
conversation was offered, accepted and closed.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table
from websockets.asyncio.client import ClientConnection, connect

from chalicelib import clock
from chalicelib.channels.signing import sign_sha256

VISITORS = 20
AGENTS = {"ada": ("Ada Lovelace", 3), "grace": ("Grace Hopper", 3), "linus": ("Linus Pauling", 2)}
DECLINES_FIRST = "linus"
DEADLINE_SECONDS = 150
DEMO_SECRET = "local-demo-webchat-secret"


@dataclass
class Conversation:
    visitor: str
    conversation_id: str = ""
    posted_at: float = 0.0
    wait_offered: float | None = None
    agent: str = ""
    declined_by: list[str] = field(default_factory=list)
    closed: bool = False


@dataclass
class Scoreboard:
    conversations: dict[str, Conversation] = field(default_factory=dict)
    by_id: dict[str, Conversation] = field(default_factory=dict)
    offered: int = 0
    accepted: int = 0
    closed: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Demo:
    def __init__(self, api_url: str, ws_url: str, console: Console) -> None:
        self.api_url = api_url.rstrip("/")
        self.ws_url = ws_url
        self.console = console
        self.board = Scoreboard()
        self.rng = random.Random(7)
        self.tokens: dict[str, str] = {}

    # -- setup over the REST API -------------------------------------------

    def token(self, agent_id: str, role: str) -> str:
        """A development sign-in token (the local stack signs them; in AWS, Cognito does)."""
        response = requests.post(f"{self.api_url}/dev/tokens", json={"agent_id": agent_id, "roles": [role]}, timeout=10)
        response.raise_for_status()
        return str(response.json()["token"])

    def create_agents(self) -> None:
        admin = {"Authorization": f"Bearer {self.token('demo-admin', 'admin')}"}
        for agent_id, (name, capacity) in AGENTS.items():
            self.tokens[agent_id] = self.token(agent_id, "agent")
            response = requests.post(
                f"{self.api_url}/agents",
                headers=admin,
                json={
                    "agent_id": agent_id,
                    "name": name,
                    "max_per_channel": {"webchat": capacity},
                    "presence": "Offline",
                },
                timeout=10,
            )
            response.raise_for_status()

    def set_available(self, agent_id: str) -> None:
        requests.put(
            f"{self.api_url}/agents/{agent_id}/presence",
            json={"presence": "Available"},
            headers={"Authorization": f"Bearer {self.tokens[agent_id]}"},
            timeout=10,
        ).raise_for_status()

    # -- visitors write through the signed webhook ---------------------------

    def post(self, visitor: str, message_id: str, text: str) -> dict[str, Any]:
        body = json.dumps(
            {"site": "acme-shop", "visitor_id": visitor, "message_id": message_id, "text": text, "language": "en"}
        ).encode()
        response = requests.post(
            f"{self.api_url}/webhooks/webchat",
            data=body,
            headers={"Content-Type": "application/json", "X-Switchboard-Signature": sign_sha256(DEMO_SECRET, body)},
            timeout=10,
        )
        response.raise_for_status()
        return dict(response.json())

    async def visitors(self, progress: Progress, task: Any) -> None:
        for n in range(1, VISITORS + 1):
            visitor = f"visitor-{n:02d}"
            conversation = Conversation(visitor, posted_at=time.monotonic())
            stored = await asyncio.to_thread(self.post, visitor, f"{visitor}-1", "Hello, where is my order?")
            conversation.conversation_id = stored["conversation_id"]
            self.board.conversations[visitor] = conversation
            self.board.by_id[conversation.conversation_id] = conversation
            if n % 4 == 0:  # some write again before an agent answers: same conversation, no second contact
                again = await asyncio.to_thread(self.post, visitor, f"{visitor}-2", f"It was order 10{n:02d}.")
                assert again["conversation_id"] == conversation.conversation_id
            progress.update(task, advance=1)
            await asyncio.sleep(self.rng.uniform(0.05, 0.25))

    # -- agents work offers over the WebSocket --------------------------------

    async def agent(self, agent_id: str, connected: asyncio.Event, progress: Progress, tasks: dict[str, Any]) -> None:
        declined_once = False
        seen_offers: set[str] = set()
        async with connect(f"{self.ws_url}?token={self.tokens[agent_id]}") as ws:
            connected.set()
            work: set[asyncio.Task[None]] = set()
            while not self.board.done.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
                except TimeoutError:
                    continue
                event = json.loads(raw)
                if event.get("type") != "offer" or event["offer_id"] in seen_offers:
                    continue
                seen_offers.add(event["offer_id"])
                conversation = self.board.by_id.get(event["contact_id"])
                if conversation is None:  # offered before the webhook answered us
                    await asyncio.sleep(0.1)
                    conversation = self.board.by_id.get(event["contact_id"])
                if conversation is None:
                    continue
                if agent_id == DECLINES_FIRST and not declined_once:
                    declined_once = True
                    conversation.declined_by.append(agent_id)
                    await ws.send(json.dumps({"action": "decline", "contact_id": event["contact_id"]}))
                    continue
                if conversation.wait_offered is None:
                    conversation.wait_offered = clock.seconds_between(event["enqueued_at"], event["offered_at"])
                    self.board.offered += 1
                    progress.update(tasks["offered"], advance=1)
                conversation.agent = agent_id
                await ws.send(
                    json.dumps({"action": "accept", "contact_id": event["contact_id"], "offer_id": event["offer_id"]})
                )
                self.board.accepted += 1
                job = asyncio.create_task(self.work(ws, conversation, progress, tasks))
                work.add(job)
                job.add_done_callback(work.discard)

    async def work(
        self, ws: ClientConnection, conversation: Conversation, progress: Progress, tasks: dict[str, Any]
    ) -> None:
        await asyncio.sleep(self.rng.uniform(0.3, 1.5))  # handling time
        await ws.send(
            json.dumps({"action": "close", "contact_id": conversation.conversation_id, "wrap_up": "resolved"})
        )
        conversation.closed = True
        self.board.closed += 1
        progress.update(tasks["closed"], advance=1)
        if self.board.closed == VISITORS:
            self.board.done.set()

    async def run(self) -> bool:
        self.create_agents()
        with Progress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            console=self.console,
        ) as progress:
            tasks = {
                "written": progress.add_task("visitors writing", total=VISITORS),
                "offered": progress.add_task("offered to an agent", total=VISITORS),
                "closed": progress.add_task("accepted and closed", total=VISITORS),
            }
            agents = []
            for agent_id in AGENTS:
                connected = asyncio.Event()
                agents.append(asyncio.create_task(self.agent(agent_id, connected, progress, tasks)))
                await asyncio.wait_for(connected.wait(), timeout=10)
                await asyncio.to_thread(self.set_available, agent_id)
            await self.visitors(progress, tasks["written"])
            try:
                await asyncio.wait_for(self.board.done.wait(), timeout=DEADLINE_SECONDS)
            except TimeoutError:
                self.board.done.set()
            await asyncio.gather(*agents, return_exceptions=True)
        return self.board.closed == VISITORS

    def summary(self) -> Table:
        table = Table(title="Switchboard demo: 20 web-chat conversations")
        for column in ("visitor", "conversation", "wait until offered", "agent", "declined by", "closed"):
            table.add_column(column)
        for c in self.board.conversations.values():
            wait = f"{c.wait_offered:.2f} s" if c.wait_offered is not None else "never"
            table.add_row(
                c.visitor,
                c.conversation_id,
                wait,
                c.agent or "-",
                ", ".join(c.declined_by) or "-",
                "yes" if c.closed else "NO",
            )
        return table


def main() -> int:
    os.environ["WEBCHAT_SECRET"] = DEMO_SECRET
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # the progress display is the output
    console = Console()
    started = time.monotonic()
    sys.path.insert(0, os.getcwd())
    from app import app  # the real app, as deployed
    from chalicelib.local.stack import LocalStack

    with LocalStack(app, api_port=0, ws_port=0, management_port=0, moto_port=0, schedule_interval_seconds=5) as stack:
        console.print(f"local stack up: API {stack.api_url}  WebSocket {stack.ws_url}")
        demo = Demo(stack.api_url, stack.ws_url, console)
        ok = asyncio.run(demo.run())
        console.print(demo.summary())
        waits = [c.wait_offered for c in demo.board.conversations.values() if c.wait_offered is not None]
        if waits:
            median = sorted(waits)[len(waits) // 2]
            console.print(
                f"offered {len(waits)}/{VISITORS}; wait until offered: median {median:.2f} s, max {max(waits):.2f} s; "
                f"closed {demo.board.closed}/{VISITORS}; {time.monotonic() - started:.1f} s in all"
            )
    if not ok:
        console.print("[red]demo failed: not every conversation was offered, accepted and closed[/red]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
