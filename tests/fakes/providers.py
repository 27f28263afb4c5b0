"""One loopback HTTP server playing Twilio Messages, the Meta Graph API and Telegram's Bot API.

Each API checks what the real one checks before it takes a message, and answers in the real
one's shape, so a test that passes here sends requests the provider would accept:

- Twilio ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``: HTTP basic auth with the
  account SID of the path and its auth token, or an API key (``SK...``) with its secret (else 401, error
  20003); a form body; ``To``;
  ``From`` or ``MessagingServiceSid``; ``Body``; both ends on the same channel (``whatsapp:`` or
  not); numbers in E.164 (else 400, error 21211); an absolute ``StatusCallback`` URL. Answers 201
  with the Message resource: ``sid`` ``SM...``, ``status`` ``queued``.
- Meta ``POST /v{N}/{phone_number_id}/messages`` (WhatsApp Cloud API) and
  ``POST /v{N}/{page_id or me}/messages`` (Messenger, Instagram): ``Authorization: Bearer`` the
  access token (else 401, OAuthException 190); a JSON body; for WhatsApp ``messaging_product``,
  ``to`` and ``text.body`` (or ``type: "interactive"`` reply buttons, checked against Meta's limits: body
  <= 1024, 1-3 buttons, titles <= 20 and unique; else 400 ``(#131009) Parameter value is not valid`` with
  ``error_data.details``), answered ``{"messaging_product", "contacts", "messages": [{"id":
  "wamid..."}]}``; for Messenger and Instagram ``recipient.id``, ``messaging_type`` and
  ``message.text``, answered ``{"recipient_id", "message_id"}``.
- Telegram ``POST /bot{token}/sendMessage``: the bot's token in the path (else 401); ``chat_id``
  and a non-empty ``text`` of at most 4096 characters; an optional ``reply_markup`` inline keyboard (buttons
  with a text and one action, ``callback_data`` 1-64 bytes); answered ``{"ok": true, "result": Message}``.

- Twilio's voice API (``Calls``, ``Conferences``, ``Participants``, ``Queues/.../Members``): ``voice``, a
  ``tests.fakes.twilio_voice.VoiceWorld``, which also plays Twilio's side of a call (signed callbacks).

Every request is recorded (``requests``; ``sent(api)`` for the ones taken). ``fail_next`` makes
the next requests fail the way each provider fails: a 5xx, a 429, a 400 for a bad recipient, or
a dropped connection (optionally after taking the message, as when an answer is lost).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from chalicelib.settings import reload_settings
from tests.fakes import twilio_voice

ACCOUNT_SID = "AC" + "5e1f0c3a9b7d2e4f6a8c0b1d3e5f7a9c"
META_ACCESS_TOKEN = "EAAtest-meta-access-token-0b4f"
TELEGRAM_BOT_TOKEN = "7301245689:AAtest-telegram-bot-token-9c1e"
BOT_ID = 7301245689

TWILIO = "twilio"
WHATSAPP = "whatsapp"  # the Cloud API's /{phone_number_id}/messages
MESSAGING = "messaging"  # Messenger and Instagram: /{page_id}/messages and /me/messages
TELEGRAM = "telegram"

_TWILIO_PATH = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages\.json$")
_GRAPH_PATH = re.compile(r"^/(v\d+\.\d+)/([^/]+)/messages$")
_TELEGRAM_PATH = re.compile(r"^/bot([^/]+)/sendMessage$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# Meta's message tags (Messenger; Instagram takes HUMAN_AGENT only): a MESSAGE_TAG send must name one.
_MESSAGE_TAGS = frozenset({"HUMAN_AGENT", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE"})
_SERVICE_SID = re.compile(r"^MG[0-9a-f]{32}$")


@dataclass
class Recorded:
    """One request as the fake received it, and what it answered."""

    api: str  # twilio, whatsapp, messaging, telegram, or "unknown"
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0
    answer: Any = None

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    @property
    def form_pairs(self) -> list[tuple[str, str]]:
        """Every parameter in order, repeats kept (Twilio's list parameters are repeated names)."""
        return parse_qsl(self.body.decode(), keep_blank_values=True)

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def taken(self) -> bool:
        """The provider took the message (whether or not its answer reached the caller)."""
        return 200 <= self.status < 300


@dataclass
class _Failure:
    status: int
    api: str | None
    body: Any = None
    drop: bool = False
    after_taking: bool = False


@dataclass
class _Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class FakeProviders:
    """The server; ``base_url`` is where every provider's API root points."""

    def __init__(self, account_sid: str, auth_token: str, meta_token: str, bot_token: str) -> None:
        self.account_sid, self.auth_token, self.meta_token, self.bot_token = (
            account_sid,
            auth_token,
            meta_token,
            bot_token,
        )
        self.requests: list[Recorded] = []
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._telegram_message_id = 1000
        self.voice = twilio_voice.VoiceWorld(account_sid, auth_token)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake._handle(self)

            def do_GET(self) -> None:
                fake._handle(self)

            def do_DELETE(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-providers", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeProviders:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- what tests use ------------------------------------------------------------------------

    def fail_next(
        self,
        times: int = 1,
        status: int = 500,
        api: str | None = None,
        body: Any = None,
        drop: bool = False,
        after_taking: bool = False,
    ) -> None:
        """Fail the next ``times`` requests (to ``api`` only, when given) with ``status`` and the provider's body.

        ``drop`` closes the connection without an answer; ``after_taking`` takes the message first
        (recorded as taken) and then drops the connection, as when a provider's answer is lost.
        """
        with self._lock:
            self._failures.extend(_Failure(status, api, body, drop, after_taking) for _ in range(times))

    def sent(self, api: str | None = None) -> list[Recorded]:
        """Requests whose message the provider took, oldest first."""
        with self._lock:
            return [r for r in self.requests if r.taken and (api is None or r.api == api)]

    # -- serving ---------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        path = urlsplit(handler.path).path
        api = _api_of(path, body)
        record = Recorded(api, handler.command, handler.path, {k: v for k, v in handler.headers.items()}, body)
        with self._lock:
            self.requests.append(record)
            failure = next((f for f in self._failures if f.api in (None, api)), None)
            if failure is not None:
                self._failures.remove(failure)
        reply: _Reply | None = None
        if failure is None or failure.after_taking:
            reply = self._answer(api, path, handler, body)
        elif not failure.drop:
            reply = self._failure(api, failure)
        if reply is not None:
            record.status, record.answer = reply.status, reply.body
        if failure is not None and (failure.drop or failure.after_taking):
            # No answer at all: the client sees the connection close (a taken message's answer is lost).
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        assert reply is not None
        media = isinstance(reply.body, bytes)  # a recording's audio (Twilio voice's Recordings/{sid}.mp3)
        payload = (
            reply.body
            if isinstance(reply.body, bytes)
            else b""
            if reply.body is None
            else json.dumps(reply.body).encode()
        )
        handler.send_response(reply.status)
        handler.send_header("Content-Type", "audio/mpeg" if media else "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def _answer(self, api: str, path: str, handler: BaseHTTPRequestHandler, body: bytes) -> _Reply:
        content_type = (handler.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        authorization = handler.headers.get("Authorization") or ""
        if api == TWILIO:
            return self._twilio(path, authorization, content_type, body)
        if api == twilio_voice.VOICE:
            return self._twilio_voice(handler, path, authorization, content_type, body)
        if api in (WHATSAPP, MESSAGING):
            return self._graph(path, authorization, content_type, body)
        if api == TELEGRAM:
            return self._telegram(path, content_type, body)
        return _Reply(404, {"error": f"no such API: {path}"})

    # -- Twilio ----------------------------------------------------------------------------------

    def _twilio(self, path: str, authorization: str, content_type: str, body: bytes) -> _Reply:
        match = _TWILIO_PATH.match(path)
        assert match is not None
        account = match.group(1)
        if account != self.account_sid:
            return _twilio_error(401, 20003, "Authenticate")
        # The account's auth token, or an API key of the account with its secret (Twilio takes either).
        if not _basic_auth_is(authorization, account, self.auth_token) and not _basic_auth_is(
            authorization, twilio_voice.API_KEY_SID, twilio_voice.API_KEY_SECRET
        ):
            return _twilio_error(401, 20003, "Authenticate")
        if content_type != "application/x-www-form-urlencoded":
            return _twilio_error(400, 21604, "A 'To' phone number is required.")  # Twilio reads no other body
        form = dict(parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True))
        to, sender, service = form.get("To", ""), form.get("From", ""), form.get("MessagingServiceSid", "")
        text = form.get("Body", "")
        if not to:
            return _twilio_error(400, 21604, "A 'To' phone number is required.")
        if not sender and not service:
            return _twilio_error(400, 21603, "A 'From' phone number is required.")
        if not text and not form.get("MediaUrl"):
            return _twilio_error(400, 21602, "Message body is required.")
        if len(text) > 1600:
            return _twilio_error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        whatsapp = to.startswith("whatsapp:")
        if sender and sender.startswith("whatsapp:") != whatsapp:
            return _twilio_error(400, 21910, "Invalid From and To pair. From and To should be of the same channel.")
        if not _E164.match(to.removeprefix("whatsapp:")):
            return _twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if sender and not _E164.match(sender.removeprefix("whatsapp:")):
            return _twilio_error(400, 21212, f"The 'From' number {sender} is not a valid phone number.")
        if service and not _SERVICE_SID.match(service):
            return _twilio_error(400, 21701, "The Messaging Service Sid is invalid.")
        callback = form.get("StatusCallback")
        if callback is not None and urlsplit(callback).scheme not in ("http", "https"):
            return _twilio_error(400, 21609, "Invalid StatusCallback url")
        sid = "SM" + secrets.token_hex(16)
        now = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
        return _Reply(
            201,
            {
                "account_sid": account,
                "api_version": "2010-04-01",
                "body": text,
                "date_created": now,
                "date_sent": None,
                "date_updated": now,
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": sender or None,
                "messaging_service_sid": service or None,
                "num_media": "0",
                "num_segments": "1",
                "price": None,
                "price_unit": "USD",
                "sid": sid,
                "status": "accepted" if service else "queued",
                "to": to,
                "uri": f"/2010-04-01/Accounts/{account}/Messages/{sid}.json",
            },
        )

    def _twilio_voice(
        self, handler: BaseHTTPRequestHandler, path: str, authorization: str, content_type: str, body: bytes
    ) -> _Reply:
        match = twilio_voice._PATH.match(path)
        assert match is not None
        user, password = _basic_credentials(authorization)
        refused = self.voice.authorized(match.group("account"), user, password)
        if refused is not None:
            return _Reply(*refused)
        if handler.command == "POST" and content_type != "application/x-www-form-urlencoded":
            return _twilio_error(400, 20001, "The request body must be application/x-www-form-urlencoded")
        try:
            pairs = twilio_voice.parse_form(body)
        except ValueError:
            return _twilio_error(400, 20001, "The request body is not a form")
        query = dict(parse_qsl(urlsplit(handler.path).query))
        return _Reply(*self.voice.serve(handler.command, match.group("rest"), pairs, query))

    # -- Meta Graph ------------------------------------------------------------------------------

    def _graph(self, path: str, authorization: str, content_type: str, body: bytes) -> _Reply:
        match = _GRAPH_PATH.match(path)
        assert match is not None
        node = match.group(2)
        scheme, _, token = authorization.partition(" ")
        if scheme != "Bearer" or token != self.meta_token:
            return _graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        if content_type != "application/json":
            return _graph_error(400, 100, "(#100) The parameter messaging_product is required.")
        try:
            document = json.loads(body)
        except ValueError:
            return _graph_error(400, 100, "(#100) Invalid JSON")
        if not isinstance(document, dict):
            return _graph_error(400, 100, "(#100) Invalid parameter")
        if node != "me" and not node.isdigit():
            return _graph_error(400, 100, f"Unsupported post request. Object with ID '{node}' does not exist")
        if "messaging_product" in document:
            return self._whatsapp(node, document)
        return self._messaging(document)

    def _whatsapp(self, phone_number_id: str, document: dict[str, Any]) -> _Reply:
        if phone_number_id == "me":
            return _graph_error(400, 100, "(#100) Unsupported post request")
        if document.get("messaging_product") != "whatsapp":
            return _graph_error(400, 100, "(#100) The parameter messaging_product is required.")
        if document.get("recipient_type", "individual") != "individual":
            return _graph_error(400, 100, "(#100) Invalid parameter recipient_type")
        to = document.get("to")
        if not isinstance(to, str) or not to.lstrip("+").isdigit():
            return _graph_error(400, 100, "(#100) Param to must be a phone number or WhatsApp ID")
        kind = document.get("type", "text")
        if kind == "interactive":
            refused = _whatsapp_interactive(document.get("interactive"))
            if refused is not None:
                return refused
        elif kind != "text":
            return _graph_error(400, 100, "(#100) This fake sends text and interactive messages only")
        else:
            text = document.get("text")
            message = text.get("body") if isinstance(text, dict) else None
            if not isinstance(message, str) or not message:
                return _graph_error(400, 100, "(#100) The parameter text['body'] is required.")
            if len(message) > 4096:
                return _graph_error(400, 100, "(#100) Param text['body'] must be at most 4096 characters long.")
        wamid = "wamid." + base64.b64encode(b"HBgM" + to.lstrip("+").encode() + secrets.token_bytes(12)).decode()
        return _Reply(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
                "messages": [{"id": wamid}],
            },
        )

    def _messaging(self, document: dict[str, Any]) -> _Reply:
        recipient = document.get("recipient")
        recipient_id = recipient.get("id") if isinstance(recipient, dict) else None
        if not isinstance(recipient_id, str) or not recipient_id:
            return _graph_error(400, 100, "(#100) The parameter recipient is required")
        if document.get("messaging_type") not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
            return _graph_error(400, 100, "(#100) Param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}")
        if document.get("messaging_type") == "MESSAGE_TAG" and document.get("tag") not in _MESSAGE_TAGS:
            return _graph_error(400, 100, "(#100) Param tag must be one of {" + ", ".join(sorted(_MESSAGE_TAGS)) + "}")
        message = document.get("message")
        text = message.get("text") if isinstance(message, dict) else None
        if not isinstance(text, str) or not text:
            return _graph_error(400, 100, "(#100) The parameter message['text'] is required")
        if len(text) > 2000:
            return _graph_error(400, 100, "(#100) Length of param message[text] must be less than or equal to 2000")
        return _Reply(200, {"recipient_id": recipient_id, "message_id": "m_" + secrets.token_urlsafe(40)})

    # -- Telegram --------------------------------------------------------------------------------

    def _telegram(self, path: str, content_type: str, body: bytes) -> _Reply:
        match = _TELEGRAM_PATH.match(path)
        assert match is not None
        if match.group(1) != self.bot_token:
            return _telegram_error(401, "Unauthorized")
        if content_type == "application/json":
            try:
                document = json.loads(body)
            except ValueError:
                return _telegram_error(400, "Bad Request: can't parse JSON object")
        elif content_type == "application/x-www-form-urlencoded":
            document = dict(parse_qsl(body.decode(), keep_blank_values=True))
        else:
            document = {}
        if not isinstance(document, dict):
            return _telegram_error(400, "Bad Request: can't parse JSON object")
        chat_id, text = document.get("chat_id"), document.get("text")
        if chat_id in (None, ""):
            return _telegram_error(400, "Bad Request: chat_id is empty")
        if not isinstance(chat_id, int | str) or isinstance(chat_id, bool):
            return _telegram_error(400, "Bad Request: chat not found")
        if not isinstance(text, str) or not text.strip():
            return _telegram_error(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return _telegram_error(400, "Bad Request: message is too long")
        if "reply_markup" in document:
            refused = _telegram_markup(document["reply_markup"])
            if refused is not None:
                return refused
        with self._lock:
            self._telegram_message_id += 1
            message_id = self._telegram_message_id
        numeric = int(chat_id) if str(chat_id).lstrip("-").isdigit() else chat_id
        return _Reply(
            200,
            {
                "ok": True,
                "result": {
                    "message_id": message_id,
                    "from": {"id": BOT_ID, "is_bot": True, "first_name": "Acme Support", "username": "acme_help_bot"},
                    "chat": {"id": numeric, "type": "private"},
                    "date": int(time.time()),
                    "text": text,
                    **({"reply_markup": document["reply_markup"]} if "reply_markup" in document else {}),
                },
            },
        )

    # -- failures ----------------------------------------------------------------------------------

    def _failure(self, api: str, failure: _Failure) -> _Reply:
        if failure.body is not None:
            return _Reply(failure.status, failure.body)
        status = failure.status
        if api == TWILIO:
            if status == 429:
                return _twilio_error(429, 20429, "Too Many Requests")
            if status == 400:
                return _twilio_error(400, 21211, "The 'To' number +15005550001 is not a valid phone number.")
            return _twilio_error(status, 20500, "Internal Server Error")
        if api in (WHATSAPP, MESSAGING):
            if status == 429:
                return _graph_error(429, 130429, "(#130429) Rate limit hit")
            if status == 400 and api == WHATSAPP:
                return _graph_error(400, 131030, "(#131030) Recipient phone number not in allowed list")
            if status == 400:
                return _graph_error(400, 100, "(#100) No matching user found", subcode=2018001)
            return _graph_error(status, 2, "An unexpected error has occurred. Please retry your request later.")
        if api == TELEGRAM:
            if status == 429:
                return _Reply(
                    429,
                    {
                        "ok": False,
                        "error_code": 429,
                        "description": "Too Many Requests: retry after 7",
                        "parameters": {"retry_after": 7},
                    },
                )
            if status == 400:
                return _telegram_error(400, "Bad Request: chat not found")
            if status == 403:
                return _telegram_error(403, "Forbidden: bot was blocked by the user")
            return _telegram_error(status, "Internal Server Error")
        return _Reply(status, {"error": "failure"})


def _whatsapp_interactive(interactive: Any) -> _Reply | None:
    """Meta's checks of an interactive reply-buttons message (``type: "button"``); None when it would be sent.

    Body text 1..1024 characters; 1 to 3 buttons, each ``{"type": "reply", "reply": {"id", "title"}}``, the id
    1..256 characters without leading or trailing spaces, the title 1..20 characters; ids and titles unique. A
    mistake is HTTP 400, ``(#131009) Parameter value is not valid`` with ``error_data.details`` saying what,
    or ``(#100)`` for a missing parameter, as Meta answers."""
    if not isinstance(interactive, dict):
        return _graph_error(400, 100, "(#100) The parameter interactive is required.")
    if interactive.get("type") != "button":
        return _graph_error(400, 100, "(#100) This fake sends interactive reply buttons (type button) only")
    body = interactive.get("body")
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text:
        return _graph_error(400, 100, "(#100) The parameter interactive['body']['text'] is required.")
    if len(text) > 1024:
        return _invalid_parameter("Message body text length invalid. Min length: 1, Max length: 1024")
    action = interactive.get("action")
    buttons = action.get("buttons") if isinstance(action, dict) else None
    if not isinstance(buttons, list):
        return _graph_error(400, 100, "(#100) The parameter interactive['action']['buttons'] is required.")
    if not 1 <= len(buttons) <= 3:
        return _invalid_parameter("Invalid buttons count. Min allowed buttons: 1, Max allowed buttons: 3")
    ids, titles = [], []
    for button in buttons:
        reply = button.get("reply") if isinstance(button, dict) and button.get("type") == "reply" else None
        if not isinstance(reply, dict):
            return _invalid_parameter("Button type must be reply, with a reply object")
        button_id, title = reply.get("id"), reply.get("title")
        if not isinstance(button_id, str) or not 1 <= len(button_id) <= 256 or button_id != button_id.strip():
            return _invalid_parameter("Button id length invalid. Min length: 1, Max length: 256")
        if not isinstance(title, str) or not 1 <= len(title) <= 20:
            return _invalid_parameter("Button title length invalid. Min length: 1, Max length: 20")
        ids.append(button_id)
        titles.append(title)
    if len(set(ids)) != len(ids):
        return _invalid_parameter("Duplicate button id")
    if len(set(titles)) != len(titles):
        return _invalid_parameter("Button title is not unique")
    return None


def _invalid_parameter(details: str) -> _Reply:
    reply = _graph_error(400, 131009, "(#131009) Parameter value is not valid")
    reply.body["error"]["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return reply


def _telegram_markup(markup: Any) -> _Reply | None:
    """The Bot API's checks of ``reply_markup`` with an ``inline_keyboard``; None when it is fine.

    An array of rows, each an array of buttons with a non-empty ``text`` and exactly one action field; a
    ``callback_data`` of 1..64 bytes. Sent as a form field it is a JSON string."""
    if isinstance(markup, str):
        try:
            markup = json.loads(markup)
        except ValueError:
            return _telegram_error(400, "Bad Request: can't parse reply keyboard markup JSON object")
    if not isinstance(markup, dict):
        return _telegram_error(400, "Bad Request: can't parse reply keyboard markup JSON object")
    keyboard = markup.get("inline_keyboard")
    if keyboard is None:
        return None  # another kind of keyboard: this fake does not check it
    if not isinstance(keyboard, list) or not all(isinstance(row, list) for row in keyboard):
        return _telegram_error(400, 'Bad Request: field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
    actions = ("callback_data", "url", "switch_inline_query", "switch_inline_query_current_chat", "pay", "web_app")
    for row in keyboard:
        for button in row:
            if not isinstance(button, dict) or not isinstance(button.get("text"), str) or not button["text"]:
                return _telegram_error(400, "Bad Request: can't parse inline keyboard button: Text must be non-empty")
            if sum(1 for name in actions if name in button) != 1:
                return _telegram_error(
                    400,
                    "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline "
                    "keyboard",
                )
            data = button.get("callback_data")
            if data is not None and (not isinstance(data, str) or not 1 <= len(data.encode()) <= 64):
                return _telegram_error(400, "Bad Request: BUTTON_DATA_INVALID")
    return None


def _api_of(path: str, body: bytes) -> str:
    if _TWILIO_PATH.match(path):
        return TWILIO
    if twilio_voice.is_voice_path(path):
        return twilio_voice.VOICE
    graph = _GRAPH_PATH.match(path)
    if graph:
        # Graph tells the products apart by node and body: a phone number id takes messaging_product,
        # a page (or "me") takes recipient and messaging_type.
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        whatsapp = isinstance(document, dict) and "messaging_product" in document
        return WHATSAPP if whatsapp and graph.group(2) != "me" else MESSAGING
    if _TELEGRAM_PATH.match(path):
        return TELEGRAM
    return "unknown"


def _basic_auth_is(header: str, user: str, password: str) -> bool:
    scheme, _, encoded = header.partition(" ")
    if scheme != "Basic":
        return False
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except ValueError:
        return False
    return decoded == f"{user}:{password}"


def _basic_credentials(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.partition(" ")
    if scheme != "Basic":
        return "", ""
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except ValueError:
        return "", ""
    return user, password


def _twilio_error(status: int, code: int, message: str) -> _Reply:
    return _Reply(
        status,
        {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
    )


def _graph_error(status: int, code: int, message: str, subcode: int | None = None) -> _Reply:
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "A" + secrets.token_urlsafe(16),
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return _Reply(status, {"error": error})


def _telegram_error(status: int, description: str) -> _Reply:
    return _Reply(status, {"ok": False, "error_code": status, "description": description})


@pytest.fixture
def fake_providers(env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProviders]:
    """The fakes running on 127.0.0.1, and the settings pointing every provider's API at them."""
    fake = FakeProviders(ACCOUNT_SID, os.environ["TWILIO_AUTH_TOKEN"], META_ACCESS_TOKEN, TELEGRAM_BOT_TOKEN).start()
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", ACCOUNT_SID)
    monkeypatch.setenv("META_ACCESS_TOKEN", META_ACCESS_TOKEN)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TELEGRAM_BOT_TOKEN)
    for name in ("TWILIO_API_BASE", "META_GRAPH_BASE", "TELEGRAM_API_BASE"):
        monkeypatch.setenv(name, fake.base_url)
    reload_settings()
    try:
        yield fake
    finally:
        fake.stop()
