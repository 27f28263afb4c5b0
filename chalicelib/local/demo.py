"""``make demo``: a morning at a small contact centre, played on the local stack.

Four agents with different skills connect over WebSocket. Customers write on web chat, SMS,
WhatsApp, Telegram and e-mail and one calls, in English and Spanish, about orders and refunds; every
webhook is signed as its provider signs it (web-chat HMAC, Twilio's signature, Telegram's secret token,
Mailgun's signature). The routing rules put each contact in its queue (billing needs the billing skill,
Spanish speakers the spanish one); agents accept their offers, reply on the customer's channel (the
replies go to a stand-in for Twilio and Telegram on loopback, e-mail to SES on moto), and close.

Prints a summary: every contact, then SLA attainment per queue and per channel. Logs (the app's JSON
lines, metrics, moto) go to a file, named at the end. Exits 0 only when every contact was offered,
accepted and closed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import statistics
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import requests
import yaml
from rich.console import Console
from rich.table import Table
from websockets.asyncio.client import ClientConnection, connect

from chalicelib import clock
from chalicelib.channels.signing import sign_mailgun, sign_sha256, sign_twilio

DEADLINE_SECONDS = 25
LOG_FILE = Path("artifacts/demo.log")
# Made up for the run; the stack reads them from the environment like any other secret.
SECRETS = {
    "WEBCHAT_SECRET": "demo-webchat-secret",
    "TWILIO_AUTH_TOKEN": "demo-twilio-auth-token",
    "TWILIO_ACCOUNT_SID": "AC" + "d" * 32,
    "TELEGRAM_SECRET_TOKEN": "demo-telegram-secret-token",
    "TELEGRAM_BOT_TOKEN": "123456:demo-bot-token",
    "MAILGUN_SIGNING_KEY": "demo-mailgun-signing-key",
    "EMAIL_FROM_ADDRESS": "support@acme-shop.example",
}
SUPPORT_NUMBER = "+14155550100"


@dataclass(frozen=True)
class AgentProfile:
    agent_id: str
    name: str
    skills: dict[str, int]
    queues: tuple[str, ...]


AGENTS = (
    AgentProfile("ada", "Ada Lovelace", {"billing": 4}, ("default", "billing")),
    AgentProfile("grace", "Grace Hopper", {"spanish": 4, "billing": 2}, ("default", "support")),
    AgentProfile("linus", "Linus Pauling", {}, ("default",)),
    AgentProfile("sofia", "Sofía Kovalevskaya", {"spanish": 5, "billing": 3}, ("support", "billing", "default")),
)


@dataclass(frozen=True)
class Customer:
    """One contact of the scenario: who writes, on which channel, in which language, saying what."""

    key: str
    channel: str
    language: str
    text: str
    subject: str = ""


SCENARIO = (
    Customer("web-1", "webchat", "en", "Hi, where is my order #1042? It said Tuesday."),
    Customer("web-2", "webchat", "en", "I was charged twice for order #1187, I need a refund."),
    Customer("web-3", "webchat", "es", "Hola, ¿dónde está mi pedido? Lo pedí hace una semana."),
    Customer("sms-1", "sms", "en", "Hi, can I change the delivery address for order #2210?"),
    Customer("sms-2", "sms", "en", "My invoice shows the wrong company name, can you fix it?"),
    Customer("wa-1", "whatsapp", "en", "Hello! Do you deliver on Saturdays?"),
    Customer("wa-2", "whatsapp", "en", "The refund for my return still hasn't arrived."),
    Customer("tg-1", "telegram", "es", "Hola, mi pedido llegó dañado. ¿Qué hago?"),
    Customer("tg-2", "telegram", "en", "Hi! My order #4417 hasn't arrived yet."),
    Customer(
        "mail-1",
        "email",
        "en",
        "I sent order 3312 back two weeks ago; when does the refund come?",
        "Refund for order 3312",
    ),
    Customer("mail-2", "email", "en", "Could you tell me your delivery times to Ireland?", "Delivery times"),
    Customer("call-1", "voice", "en", ""),
)
REPLIES = {
    "en": "Thanks for writing! I've looked into it and sorted it out for you.",
    "es": "¡Gracias por escribirnos! Ya lo he revisado y está solucionado.",
}


# -- the providers' side: signed webhooks in, a stand-in that takes the replies ----------------------


class ProviderStandIn:
    """Twilio's Messages API and Telegram's Bot API on loopback: takes each reply, answers as they do, counts it.

    The demo has no real providers; the senders are pointed here (``TWILIO_API_BASE``, ``TELEGRAM_API_BASE``)
    instead of the internet. Only who was sent to is kept, never the text.
    """

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self._ids = itertools.count(1)
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path.endswith("/Messages.json"):
                    stand_in.sent.append(("twilio", str(parse_qs(raw.decode()).get("To", [""])[0])))
                    self._answer(201, {"sid": f"SM{uuid.uuid4().hex}", "status": "queued"})
                elif self.path.endswith("/sendMessage"):
                    chat = json.loads(raw or b"{}").get("chat_id")
                    stand_in.sent.append(("telegram", str(chat)))
                    self._answer(200, {"ok": True, "result": {"message_id": next(stand_in._ids), "chat": {"id": chat}}})
                else:
                    self._answer(404, {"message": "not a provider API the demo plays"})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                # The request line carries the Telegram bot token in its path: only the outcome is logged.
                logging.getLogger("demo.providers").info("provider stand-in answered %s", self.command)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="provider-stand-in", daemon=True)

    def __enter__(self) -> ProviderStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class Providers:
    """Posts each customer's first message the way their provider would, signed the way it signs."""

    def __init__(self, api_url: str, public_base_url: str) -> None:
        self.api_url = api_url
        self.public_base_url = public_base_url  # what Twilio signs: the URL configured at Twilio
        self._ids = itertools.count(734281950)

    def deliver(self, customer: Customer, n: int) -> requests.Response:
        if customer.channel == "webchat":
            payload = {
                "site": "acme-shop",
                "visitor_id": f"visitor-{customer.key}",
                "message_id": f"{customer.key}-1",
                "text": customer.text,
                "language": customer.language,
            }
            body = json.dumps(payload).encode()
            headers = {"X-Switchboard-Signature": sign_sha256(SECRETS["WEBCHAT_SECRET"], body)}
            return self._post("/webhooks/webchat", body, "application/json", headers)
        if customer.channel in ("sms", "whatsapp", "voice"):
            return self._twilio(customer, n)
        if customer.channel == "telegram":
            return self._telegram(customer, n)
        return self._mailgun(customer, n)

    def _twilio(self, customer: Customer, n: int) -> requests.Response:
        phone = f"+1415555{n:04d}"
        sid = uuid.uuid4().hex
        common = [("AccountSid", SECRETS["TWILIO_ACCOUNT_SID"]), ("ApiVersion", "2010-04-01")]
        if customer.channel == "voice":
            path = "/webhooks/twilio/voice"
            params = [
                *common,
                ("CallSid", f"CA{sid}"),
                ("CallStatus", "ringing"),
                ("Direction", "inbound"),
                ("From", phone),
                ("Caller", phone),
                ("To", SUPPORT_NUMBER),
                ("Called", SUPPORT_NUMBER),
                ("CallerCountry", "US"),
            ]
        else:
            prefix = "whatsapp:" if customer.channel == "whatsapp" else ""
            path = "/webhooks/twilio/messaging"
            params = [
                *common,
                ("MessageSid", f"SM{sid}"),
                ("SmsMessageSid", f"SM{sid}"),
                ("SmsSid", f"SM{sid}"),
                ("SmsStatus", "received"),
                ("NumMedia", "0"),
                ("NumSegments", "1"),
                ("From", f"{prefix}{phone}"),
                ("To", f"{prefix}{SUPPORT_NUMBER}"),
                ("Body", customer.text),
            ]
            if prefix:
                params += [("ProfileName", f"Customer {customer.key}"), ("WaId", phone.lstrip("+"))]
        signature = sign_twilio(SECRETS["TWILIO_AUTH_TOKEN"], self.public_base_url + path, params)
        body = urlencode(params).encode()
        return self._post(path, body, "application/x-www-form-urlencoded", {"X-Twilio-Signature": signature})

    def _telegram(self, customer: Customer, n: int) -> requests.Response:
        person = {"id": 5193620000 + n, "is_bot": False, "first_name": f"Customer {customer.key}"}
        update = {
            "update_id": next(self._ids),
            "message": {
                "message_id": 400 + n,
                "from": {**person, "language_code": customer.language},
                "chat": {**{k: v for k, v in person.items() if k != "is_bot"}, "type": "private"},
                "date": int(time.time()),
                "text": customer.text,
            },
        }
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRETS["TELEGRAM_SECRET_TOKEN"]}
        return self._post("/webhooks/telegram", json.dumps(update).encode(), "application/json", headers)

    def _mailgun(self, customer: Customer, n: int) -> requests.Response:
        address = f"customer.{customer.key}@example.com"
        timestamp, token = str(int(time.time())), uuid.uuid4().hex + uuid.uuid4().hex[:18]
        fields = {
            "recipient": SECRETS["EMAIL_FROM_ADDRESS"],
            "sender": address,
            "from": f"Customer {customer.key} <{address}>",
            "subject": customer.subject,
            "body-plain": customer.text + "\r\n",
            "stripped-text": customer.text,
            "Message-Id": f"<{uuid.uuid4().hex}@mail.example.com>",
            "Date": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
            "timestamp": timestamp,
            "token": token,
            "signature": sign_mailgun(SECRETS["MAILGUN_SIGNING_KEY"], timestamp, token),
        }
        return self._post(
            "/webhooks/email/mailgun", urlencode(fields).encode(), "application/x-www-form-urlencoded", {}
        )

    def _post(self, path: str, body: bytes, content_type: str, headers: dict[str, str]) -> requests.Response:
        response = requests.post(
            f"{self.api_url}{path}", data=body, headers={"Content-Type": content_type, **headers}, timeout=15
        )
        response.raise_for_status()
        return response


# -- the contact centre's side: agents over the WebSocket and the REST API --------------------------


@dataclass
class Contact:
    customer: Customer
    contact_id: str = ""
    agent: str = ""
    offered: bool = False
    accepted: bool = False
    closed: bool = False
    replied: bool = False


@dataclass
class Board:
    contacts: dict[str, Contact] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def finished(self) -> bool:
        return len(self.contacts) == len(SCENARIO) and all(c.closed for c in self.contacts.values())


class Demo:
    def __init__(self, api_url: str, ws_url: str, public_base_url: str, console: Console) -> None:
        self.api_url = api_url.rstrip("/")
        self.ws_url = ws_url
        self.console = console
        self.providers = Providers(self.api_url, public_base_url)
        self.board = Board()
        self.tokens: dict[str, str] = {}
        self.admin: dict[str, str] = {}

    def token(self, agent_id: str, role: str) -> str:
        """A development sign-in token (the local stack signs them; in AWS, Cognito does)."""
        response = requests.post(f"{self.api_url}/dev/tokens", json={"agent_id": agent_id, "roles": [role]}, timeout=10)
        response.raise_for_status()
        return str(response.json()["token"])

    def create_agents(self) -> None:
        self.admin = {"Authorization": f"Bearer {self.token('demo-admin', 'admin')}"}
        for agent in AGENTS:
            self.tokens[agent.agent_id] = self.token(agent.agent_id, "agent")
            body = {
                "agent_id": agent.agent_id,
                "name": agent.name,
                "skills": agent.skills,
                "queues": list(agent.queues),
            }
            requests.post(f"{self.api_url}/agents", headers=self.admin, json=body, timeout=10).raise_for_status()

    def rest(self, agent_id: str, method: str, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens[agent_id]}"}
        return requests.request(method, f"{self.api_url}{path}", json=body, headers=headers, timeout=10)

    async def customers(self) -> None:
        for n, customer in enumerate(SCENARIO, start=1):
            answer = await asyncio.to_thread(self.providers.deliver, customer, n)
            # Only web chat answers with the conversation id; the others (TwiML, Telegram's and Mailgun's
            # 200) say nothing, so their contact is recognised by the customer's identity when offered.
            contact_id = answer.json()["conversation_id"] if customer.channel == "webchat" else ""
            self.board.contacts[customer.key] = Contact(customer, contact_id)
            await asyncio.sleep(0.15)

    async def agent(self, profile: AgentProfile, connected: asyncio.Event) -> None:
        seen: set[str] = set()
        async with connect(f"{self.ws_url}?token={self.tokens[profile.agent_id]}") as ws:
            connected.set()
            work: set[asyncio.Task[None]] = set()
            while not self.board.done.is_set():
                try:
                    event = json.loads(await asyncio.wait_for(ws.recv(), timeout=0.5))
                except TimeoutError:
                    continue
                if event.get("type") != "offer" or event["offer_id"] in seen:
                    continue
                seen.add(event["offer_id"])
                contact = await self._contact_of(event)
                if contact is None:
                    continue
                contact.offered, contact.agent = True, profile.agent_id
                await ws.send(
                    json.dumps({"action": "accept", "contact_id": event["contact_id"], "offer_id": event["offer_id"]})
                )
                contact.accepted = True
                job = asyncio.create_task(self.work(ws, profile.agent_id, contact))
                work.add(job)
                job.add_done_callback(work.discard)

    async def _contact_of(self, offer: dict[str, Any]) -> Contact | None:
        """Which scenario contact an offer is for: by id, or (channels whose webhook answers no id) by identity."""
        for _ in range(20):
            for contact in self.board.contacts.values():
                if contact.contact_id == offer["contact_id"]:
                    return contact
            customer_id = offer["customer"]["customer_id"]
            for contact in self.board.contacts.values():
                same_channel = not contact.contact_id and contact.customer.channel == offer["channel"]
                if same_channel and await asyncio.to_thread(self._customer_is, contact, customer_id):
                    contact.contact_id = offer["contact_id"]
                    return contact
            await asyncio.sleep(0.1)  # offered before the webhook answered us
        return None

    def _customer_is(self, contact: Contact, customer_id: str) -> bool:
        profile = requests.get(f"{self.api_url}/customers/{customer_id}", headers=self.admin, timeout=10)
        identities = " ".join(profile.json()["customer"]["identities"]) if profile.ok else ""
        key = contact.customer.key
        n = next(i for i, c in enumerate(SCENARIO, start=1) if c.key == key)
        return (
            f"customer.{key}@example.com" in identities
            or f"+1415555{n:04d}" in identities
            or (f"telegram#{5193620000 + n}" in identities)
        )

    async def work(self, ws: ClientConnection, agent_id: str, contact: Contact) -> None:
        await asyncio.sleep(0.3)  # reads the history
        if contact.customer.channel != "voice":
            text = REPLIES[contact.customer.language]
            for _ in range(20):  # until the accept sent over the WebSocket has been handled
                answer = await asyncio.to_thread(
                    self.rest, agent_id, "POST", f"/conversations/{contact.contact_id}/messages", {"text": text}
                )
                contact.replied = answer.status_code == 202
                if contact.replied or answer.status_code < 400 or answer.status_code >= 500:
                    break
                await asyncio.sleep(0.2)
        await asyncio.sleep(0.4)  # the customer's thanks, the wrap-up
        await ws.send(json.dumps({"action": "close", "contact_id": contact.contact_id, "wrap_up": "resolved"}))
        contact.closed = True
        if self.board.finished():
            self.board.done.set()

    async def run(self) -> None:
        self.create_agents()
        agents = []
        for profile in AGENTS:
            connected = asyncio.Event()
            agents.append(asyncio.create_task(self.agent(profile, connected)))
            await asyncio.wait_for(connected.wait(), timeout=10)
            await asyncio.to_thread(
                self.rest, profile.agent_id, "PUT", f"/agents/{profile.agent_id}/presence", {"presence": "Available"}
            )
        await self.customers()
        try:
            await asyncio.wait_for(self.board.done.wait(), timeout=DEADLINE_SECONDS)
        except TimeoutError:
            self.board.done.set()
        await asyncio.gather(*agents, return_exceptions=True)

    # -- the summary ------------------------------------------------------------------------------

    def records(self) -> list[dict[str, Any]]:
        """Each contact as the server recorded it: queue, skills, when queued, accepted, the SLA deadline."""
        rows = []
        for contact in self.board.contacts.values():
            stored: dict[str, Any] = {}
            if contact.contact_id:
                answer = requests.get(f"{self.api_url}/contacts/{contact.contact_id}", headers=self.admin, timeout=10)
                stored = answer.json() if answer.ok else {}
            accepted_at, enqueued_at = stored.get("accepted_at"), stored.get("enqueued_at")
            wait = clock.seconds_between(enqueued_at, accepted_at) if accepted_at and enqueued_at else None
            rows.append(
                {
                    "contact": contact,
                    "queue": (stored.get("queues") or ["-"])[0],
                    "skills": ", ".join(f"{k} {v}+" for k, v in sorted((stored.get("required_skills") or {}).items()))
                    or "-",
                    "wait": wait,
                    "met": bool(accepted_at and stored.get("sla_deadline") and accepted_at <= stored["sla_deadline"]),
                }
            )
        return rows

    def tables(self, rows: list[dict[str, Any]]) -> list[Table]:
        contacts = Table(title="Switchboard demo: every contact")
        for column in ("customer", "channel", "language", "queue", "skills", "agent", "answered in", "SLA", "reply"):
            contacts.add_column(column)
        for row in rows:
            c: Contact = row["contact"]
            contacts.add_row(
                c.customer.key,
                c.customer.channel,
                c.customer.language,
                row["queue"],
                row["skills"],
                c.agent or "-",
                f"{row['wait']:.1f} s" if row["wait"] is not None else "never",
                "met" if row["met"] else "MISSED",
                "sent" if c.replied else ("-" if c.customer.channel == "voice" else "NO"),
            )
        return [contacts, _sla_table("SLA per queue", "queue", rows), _sla_table("SLA per channel", "channel", rows)]


def _sla_table(title: str, by: str, rows: list[dict[str, Any]]) -> Table:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["queue"] if by == "queue" else row["contact"].customer.channel].append(row)
    table = Table(title=title)
    for column in (by, "contacts", "answered", "SLA met", "median wait", "longest wait"):
        table.add_column(column)
    for name, members in sorted(groups.items()):
        waits = [r["wait"] for r in members if r["wait"] is not None]
        met = sum(r["met"] for r in members)
        table.add_row(
            name,
            str(len(members)),
            str(len(waits)),
            f"{100 * met / len(members):.0f} % ({met}/{len(members)})",
            f"{statistics.median(waits):.1f} s" if waits else "-",
            f"{max(waits):.1f} s" if waits else "-",
        )
    return table


def _always_open_routing() -> str:
    """The deployed routing rules, with every queue open around the clock: the demo must not depend on the hour."""
    config = yaml.safe_load(Path(__file__).resolve().parents[1].joinpath("routing", "routing.yaml").read_text())
    for queue in config["queues"].values():
        queue.pop("hours", None)
        queue.pop("out_of_hours", None)
        (queue.get("routing") or {}).pop("sla_clock", None)  # a business-hours clock needs the hours
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def replay_table(start: str, end: str) -> Table:
    """``switchboard replay`` of the demo's own contacts: their recorded waits per queue, the same contacts
    replayed through the simulator with the rules in force, and replayed under a stricter candidate rule
    (refunds need billing 5, which no agent has: they wait for the rule's first escalation step)."""
    import tempfile

    from chalicelib.cli import replay_period

    config = yaml.safe_load(_always_open_routing())
    for rule in config["rules"]:
        if "billing" in rule.get("skills", {}):
            rule["skills"]["billing"] = 5
    with tempfile.TemporaryDirectory(prefix="switchboard-demo-") as folder:
        candidate = Path(folder) / "refunds-need-billing-5.yaml"
        candidate.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        document = replay_period(start, end, candidate)
    table = Table(title="Replay of this run (switchboard replay): mean wait to accept")
    for column in ("queue", "contacts", "recorded", "replayed", "if refunds needed billing 5"):
        table.add_column(column)

    def wait(run: str, queue: str) -> str:
        found = document.get(run, {}).get(queue)
        return "-" if not found or found["mean_wait"] is None else f"{found['mean_wait']:.1f} s"

    for queue, recorded in sorted(document.get("recorded", {}).items()):
        table.add_row(
            queue, str(recorded["contacts"]), wait("recorded", queue), wait("current", queue), wait("candidate", queue)
        )
    return table


def _configure_demo_aws() -> None:
    """Runs once the stack points at moto: the routing override and SES's verified sender."""
    import boto3

    parameter = os.environ.setdefault("SWITCHBOARD_ROUTING_CONFIG_PARAMETER", "/switchboard/demo/routing")
    from chalicelib import settings

    settings.reload_settings()
    boto3.client("ssm").put_parameter(
        Name=parameter, Value=_always_open_routing(), Type="String", Tier="Advanced", Overwrite=True
    )
    boto3.client("ses").verify_email_identity(EmailAddress=SECRETS["EMAIL_FROM_ADDRESS"])


def main() -> int:
    # Wide enough for the tables when the output is not a terminal (CI, a pipe).
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 110)
    started = time.monotonic()
    LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
    log = LOG_FILE.open("w", buffering=1, encoding="utf-8")
    # Everything but the summary goes to the log: Powertools' JSON lines and metrics (printed to
    # stdout), moto's and the threads' tracebacks (stderr), library logging.
    real_stdout, real_stderr = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = log
    logging.basicConfig(stream=log, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("botocore", "boto3", "urllib3", "websockets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        with ProviderStandIn() as stand_in:
            os.environ.update(SECRETS)
            os.environ.update({"TWILIO_API_BASE": stand_in.url, "TELEGRAM_API_BASE": stand_in.url})
            sys.path.insert(0, os.getcwd())
            from app import app  # the real app, as deployed
            from chalicelib.local.stack import LocalStack
            from chalicelib.settings import get_settings

            with LocalStack(
                app,
                api_port=0,
                ws_port=0,
                management_port=0,
                moto_port=0,
                retry_delay_seconds=1,
                schedule_interval_seconds=5,
                setup=_configure_demo_aws,
            ) as stack:
                console.print(f"local stack up: API {stack.api_url}  WebSocket {stack.ws_url}")
                console.print(
                    f"{len(AGENTS)} agents; {len(SCENARIO)} customers on web chat, SMS, WhatsApp, Telegram, e-mail "
                    "and a call, in English and Spanish ..."
                )
                demo = Demo(stack.api_url, stack.ws_url, get_settings().public_base_url, console)
                began = clock.now_iso()
                asyncio.run(demo.run())
                stack.pump.wait_idle(timeout=20)  # the replies leave the outbox
                rows = demo.records()
                for table in demo.tables(rows):
                    console.print(table)
                console.print(replay_table(began, clock.plus_seconds(clock.now_iso(), 1)))
            contacts = demo.board.contacts.values()
            offered = sum(c.offered for c in contacts)
            accepted = sum(c.accepted for c in contacts)
            closed = sum(c.closed for c in contacts)
            met = sum(r["met"] for r in rows)
            total = len(SCENARIO)
            console.print(
                f"offered {offered}/{total}, accepted {accepted}/{total}, closed {closed}/{total}; "
                f"SLA met {met}/{total}; replies to providers {len(stand_in.sent)} (Twilio, Telegram) and e-mail "
                f"through SES; {time.monotonic() - started:.1f} s in all"
            )
    finally:
        sys.stdout, sys.stderr = real_stdout, real_stderr
        log.close()
    console.print(f"logs: {LOG_FILE}")
    if not (offered == accepted == closed == total):
        console.print("[red]demo failed: not every contact was offered, accepted and closed[/red]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
