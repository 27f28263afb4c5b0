"""Twilio: SMS, MMS and WhatsApp messages, incoming voice calls, and their status callbacks.

Three endpoints, each a URL set in the Twilio console (or per message or call):

- ``POST /webhooks/twilio/messaging``: "a message comes in" on a number, a Messaging
  Service or a WhatsApp sender. One message each; answered with empty TwiML (no auto reply).
- ``POST /webhooks/twilio/voice``: "a call comes in". The call becomes a voice contact and
  is answered with TwiML that holds the caller in a Twilio queue named after its conversation (or, when the
  routing rules say so, with a voicemail greeting or a question first: ``chalicelib.voice.arrival``).
- ``POST /webhooks/twilio/status``: ``StatusCallback`` of messages we sent and of calls.
  Status updates only: a status callback never creates a contact.
- ``POST /webhooks/twilio/voice/queue-exit``: the ``<Enqueue action>``; ``QueueResult=hangup`` is the caller
  giving up, applied as the call's ``completed``. The other voice routes are in ``twilio_voice``.

Every request is ``application/x-www-form-urlencoded`` and signed in ``X-Twilio-Signature``:
base64 HMAC-SHA1, keyed with the account's auth token, of the full URL Twilio called (query
string included) followed by every POST parameter's name and value, sorted by name. Twilio's
worked example (https://www.twilio.com/docs/usage/webhooks/webhooks-security) is in the tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from chalicelib import settings
from chalicelib.channels.base import ChannelAdapter, Reply, StatusUpdate, Webhook, WebhookRequest
from chalicelib.conversations import identity
from chalicelib.conversations.identity import InvalidIdentity
from chalicelib.conversations.models import Attachment, Identity, InboundMessage, StoredMessage
from chalicelib.errors import InvalidPayload, PayloadTooLarge, Unauthenticated

PROVIDER = "twilio"
SIGNATURE_HEADER = "X-Twilio-Signature"
FORM = "application/x-www-form-urlencoded"
TWIML = "text/xml"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
# No verbs: Twilio sends no auto reply, and for callbacks it is the documented "200 OK + valid TwiML".
EMPTY_TWIML = XML_DECLARATION + "<Response></Response>"

HOLD_MESSAGE = "Thank you for calling. Please hold while we connect you to the next available agent."
UNAVAILABLE_MESSAGE = "Sorry, we cannot take your call right now. Please try again later."
# Twilio names a queue by up to 64 characters.
MAX_QUEUE_NAME = 64
WAIT_PATH = "/webhooks/twilio/voice/wait"  # chalicelib.channels.twilio_voice.TwilioWait

# Identity kinds only Twilio voice produces (phones use the shared ``phone`` kind).
TWILIO_CLIENT = "twilio_client"
SIP = "sip"
ANONYMOUS_CALL = "anonymous_call"

# What carriers and Twilio put in ``From`` when the caller withholds their number: words, and the same
# words typed on a phone keypad (ANONYMOUS, UNAVAILABLE, UNKNOWN, BLOCKED, RESTRICTED). Some of those
# are possible E.164 numbers (+86282452253, +8656696): without this list every withheld caller
# would become one shared "customer".
_WITHHELD_WORDS = frozenset({"", "anonymous", "unknown", "unavailable", "restricted", "private", "blocked"})
_WITHHELD_NUMBERS = frozenset({"+266696687", "+86282452253", "+8656696", "+2562533", "+7378742833"})

# Inbound-message parameters worth keeping, under our names. Everything else Twilio sends
# (SmsSid, SmsStatus, ApiVersion, ReferralNumMedia...) repeats these or says nothing to an agent.
_MESSAGE_METADATA = {
    "To": "to",
    "AccountSid": "account_sid",
    "MessagingServiceSid": "messaging_service_sid",
    "NumSegments": "num_segments",
    "FromCountry": "from_country",
    "FromState": "from_state",
    "FromCity": "from_city",
    "FromZip": "from_zip",
    "ToCountry": "to_country",
    "WaId": "wa_id",
    "MessageType": "message_type",
    "ButtonText": "button_text",
    "ButtonPayload": "button_payload",
    "Latitude": "latitude",
    "Longitude": "longitude",
    "Address": "address",
    "Label": "label",
    "OriginalRepliedMessageSid": "replied_to_message_sid",
    "Forwarded": "forwarded",
    "FrequentlyForwarded": "frequently_forwarded",
}
# Incoming-call parameters worth keeping. ``CallToken`` is deliberately absent: it lets its holder
# place calls presenting this caller's ID, so it is a credential, not metadata.
_CALL_METADATA = {
    "To": "to",
    "AccountSid": "account_sid",
    "CallStatus": "call_status",
    "Direction": "direction",
    "From": "from",
    "ForwardedFrom": "forwarded_from",
    "CallerName": "caller_name",
    "FromCountry": "from_country",
    "FromState": "from_state",
    "FromCity": "from_city",
    "FromZip": "from_zip",
    "ToCountry": "to_country",
    # SHAKEN/STIR attestation of the caller ID: tells an agent how far to trust the number.
    "StirVerstat": "stir_verstat",
}

# Twilio's message statuses, normalised. A status callback never reports the initial status,
# so ``accepted``/``scheduled``/``queued`` are rare; ``sending`` has not left Twilio yet.
# ``partially_delivered`` (some parts arrived) claims no more than ``sent``.
MESSAGE_STATUSES = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "partially_delivered": "sent",
    "delivered": "delivered",
    "read": "read",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}
# What a message callback can tell us that we do not hold already. Twilio calls a message's StatusCallback on
# every status change after its creation and takes no list of the ones wanted (only calls have
# ``StatusCallbackEvent``), while the outbox records a message ``sent`` as soon as Twilio accepts it: a
# ``queued``/``sending`` or ``sent`` callback can never move it forward, so it is answered without reading or
# writing anything.
NEWS = frozenset({"delivered", "read", "failed"})


# --- shared: size, signature, form ---------------------------------------------------------


@dataclass(frozen=True)
class _Form:
    """A verified form body: its parameters in the order Twilio sent them."""

    pairs: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        """The parameter's value, ``None`` when absent or blank (Twilio sends an unknown value as ``Name=``)."""
        value = next((v for k, v in self.pairs if k == name), None)
        return value if value else None

    def require(self, name: str) -> str:
        """The parameter's value, or ``InvalidPayload`` naming it."""
        value = self.get(name)
        if value is None:
            raise InvalidPayload(f"{name} is required", [{"field": name, "problem": "is required"}])
        return value

    def metadata(self, names: dict[str, str]) -> dict[str, Any]:
        """The named parameters that are present, under our names; values stay strings (DynamoDB-safe)."""
        return {ours: value for theirs, ours in names.items() if (value := self.get(theirs)) is not None}


def _verified_form(request: WebhookRequest) -> _Form:
    """Check size and ``X-Twilio-Signature``; only a body Twilio signed is handed on for reading."""
    limit = settings.get_settings().max_body_bytes
    if len(request.body) > limit:
        raise PayloadTooLarge(f"body is {len(request.body)} bytes; the limit is {limit}")
    signature = request.header(SIGNATURE_HEADER)
    if not signature:
        raise Unauthenticated(f"missing {SIGNATURE_HEADER} header")
    pairs = _form_pairs(request.body)
    token = settings.get_secret(settings.TWILIO_AUTH_TOKEN)
    # Every candidate is computed and compared in constant time; the loop does not stop early.
    matches = [
        hmac.compare_digest(_signature(token, url, pairs).encode(), signature.strip().encode())
        for called in (request.public_url, *request.public_url_forms)
        for url in _signed_url_forms(called)
    ]
    if not any(matches):
        raise Unauthenticated(f"{SIGNATURE_HEADER} does not match the URL and parameters")
    return _Form(pairs)


def _form_pairs(body: bytes) -> tuple[tuple[str, str], ...]:
    """Decode the form: needed to check the signature, which covers decoded names and values.

    A form body is ASCII (everything else is percent-encoded), and Twilio encodes text as UTF-8.
    ``parse_qsl`` is given text, not bytes: on bytes it re-encodes decoded values as ASCII and
    fails on the first accented letter. A body that is not such a form cannot be a request Twilio
    signed, so it is refused as unauthenticated rather than parsed.
    """
    try:
        text = body.decode("ascii")
        return tuple(parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict"))
    except (UnicodeDecodeError, ValueError):
        raise Unauthenticated(f"body is not a form {SIGNATURE_HEADER} could sign") from None


def _signature(token: str, url: str, pairs: Sequence[tuple[str, str]]) -> str:
    """Twilio's signature: base64 HMAC-SHA1 of the URL then each name+value, sorted by name.

    A name sent more than once contributes every value, the values sorted too, as Twilio's own
    helper libraries do (twilio-python ``RequestValidator.compute_signature``). Sorting the
    (name, value) pairs is exactly that, with Python's code-point order as the "case-sensitive
    Unix sort" Twilio describes.
    """
    data = url + "".join(name + value for name, value in sorted(pairs))
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _signed_url_forms(url: str) -> tuple[str, ...]:
    """The URL as given, and with its default port written out or left off.

    Twilio does not sign the port consistently (``https://host/`` vs ``https://host:443/``), so its
    helper libraries accept either; so do we. Anything else (scheme, host, path, query) must match.
    """
    parts = urlsplit(url)
    default_port = {"https": 443, "http": 80}.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:  # not a number: nothing to normalise
        return (url,)
    if default_port is None or port not in (None, default_port):
        return (url,)  # a non-default port is part of the address, never dropped
    userinfo, at, host_port = parts.netloc.rpartition("@")
    host = host_port if port is None else host_port.rsplit(":", 1)[0]
    without_port = urlunsplit(parts._replace(netloc=f"{userinfo}{at}{host}"))
    with_port = urlunsplit(parts._replace(netloc=f"{userinfo}{at}{host}:{default_port}"))
    return tuple(dict.fromkeys((url, without_port, with_port)))


def _empty_twiml() -> Reply:
    return Reply(200, EMPTY_TWIML, TWIML)


def _invalid_from(raw: str, exc: InvalidIdentity) -> InvalidIdentity:
    return InvalidIdentity(f"From: {exc.message}", [{"field": "From", "problem": f"{raw!r} is not a phone number"}])


# --- messaging ---------------------------------------------------------------------------------


def _parse_message(form: _Form) -> InboundMessage:
    """One SMS, MMS or WhatsApp message from Twilio's inbound-message parameters."""
    message_sid = form.require("MessageSid")
    sender = form.require("From")
    channel = "whatsapp" if sender.lower().startswith("whatsapp:") else "sms"
    try:
        # One phone identity whatever the channel: the same person texting, WhatsApping and calling
        # is one customer. ``phone`` drops the ``whatsapp:`` prefix.
        who = identity.phone(sender)
    except InvalidIdentity as exc:
        raise _invalid_from(sender, exc) from None
    return InboundMessage(
        channel=channel,
        provider=PROVIDER,
        provider_message_id=message_sid,
        identity=who,
        text=form.get("Body") or "",  # MMS and WhatsApp media arrive with an empty Body
        attachments=_attachments(form),
        name=form.get("ProfileName"),  # WhatsApp only: the name the customer gave WhatsApp
        metadata=form.metadata(_MESSAGE_METADATA),
    )


def _attachments(form: _Form) -> tuple[Attachment, ...]:
    raw_count = form.get("NumMedia") or "0"
    if not raw_count.isdigit():
        raise InvalidPayload("NumMedia must be a whole number", [{"field": "NumMedia", "problem": "not a number"}])
    return tuple(
        Attachment(
            content_type=form.get(f"MediaContentType{index}") or "application/octet-stream",
            url=form.require(f"MediaUrl{index}"),
        )
        for index in range(int(raw_count))
    )


class TwilioMessaging:
    """``POST /webhooks/twilio/messaging``: SMS, MMS and WhatsApp messages sent to our Twilio senders."""

    name = "twilio_messaging"
    path = "/webhooks/twilio/messaging"
    methods = ("POST",)
    content_types = (FORM,)

    def handle(self, request: WebhookRequest) -> Webhook:
        return Webhook(messages=(_parse_message(_verified_form(request)),))

    def respond(self, webhook: Webhook, stored: Sequence[StoredMessage]) -> Reply:
        # Agents answer later through the API; an empty Response tells Twilio to send nothing now.
        return _empty_twiml()


# --- voice -------------------------------------------------------------------------------------


def caller_identity(caller: str, call_sid: str) -> Identity:
    """Who is calling, decided so that a call is always answered.

    - A phone number: the shared phone identity, so a caller is the customer who texts from it.
    - ``client:alice`` (a Twilio Voice SDK app): ``twilio_client/alice``, the app's own user id.
    - ``sip:alice@example.com``: ``sip/alice@example.com``.
    - A withheld or unreadable caller ID: ``anonymous_call/<CallSid>``, an identity of its own per
      call. One shared "anonymous" customer would pile every stranger's history into one record;
      an agent can still link the caller to a known customer once they say who they are.
    """
    raw = caller.strip()
    scheme, _, rest = raw.partition(":")
    if scheme.lower() == "client" and rest:
        return Identity(TWILIO_CLIENT, rest)
    if scheme.lower() == "sip" and rest:
        return Identity(SIP, rest)
    if raw.lower() in _WITHHELD_WORDS or raw in _WITHHELD_NUMBERS:
        return Identity(ANONYMOUS_CALL, call_sid)
    try:
        return identity.phone(raw)
    except InvalidIdentity:
        return Identity(ANONYMOUS_CALL, call_sid)


def _parse_call(form: _Form) -> InboundMessage:
    """An incoming call as a voice contact. Twilio re-requests the URL with the same CallSid: stored once."""
    call_sid = form.require("CallSid")
    caller = form.get("From") or ""
    who = caller_identity(caller, call_sid)
    caller_name = form.get("CallerName")  # only with Caller Name Lookup enabled on the number
    return InboundMessage(
        channel="voice",
        provider=PROVIDER,
        provider_message_id=call_sid,
        identity=who,
        text="Incoming call",
        name=caller_name,
        metadata=form.metadata(_CALL_METADATA),
    )


def hold_twiml(queue_name: str, action: str | None = None, wait_url: str | None = None) -> str:
    """Greet the caller and hold them in the named queue until an agent dequeues them.

    ``wait_url`` (absolute) is what the caller hears while waiting (position, expected wait, hold audio: the
    ``/webhooks/twilio/voice/wait`` route); without it Twilio plays its default hold music. ``action`` is the URL Twilio
    asks when the caller leaves the queue (``QueueResult``: ``hangup`` when they gave up); with no verb after
    ``<Enqueue>``, the call simply ends when the caller leaves the queue otherwise.
    """
    response = ET.Element("Response")
    ET.SubElement(response, "Say").text = HOLD_MESSAGE
    attributes = {"action": action, "method": "POST"} if action else {}
    if wait_url:
        attributes.update(waitUrl=wait_url, waitUrlMethod="POST")
    ET.SubElement(response, "Enqueue", attributes).text = queue_name
    return XML_DECLARATION + ET.tostring(response, encoding="unicode")


def unavailable_twiml() -> str:
    """Say sorry and hang up: for a call we could not store, so there is no queue to hold it in."""
    response = ET.Element("Response")
    ET.SubElement(response, "Say").text = UNAVAILABLE_MESSAGE
    ET.SubElement(response, "Hangup")
    return XML_DECLARATION + ET.tostring(response, encoding="unicode")


class TwilioVoice:
    """``POST /webhooks/twilio/voice``: a call to one of our numbers (or from a Voice SDK app)."""

    name = "twilio_voice"
    path = "/webhooks/twilio/voice"
    methods = ("POST",)
    content_types = (FORM,)

    def handle(self, request: WebhookRequest) -> Webhook:
        message = _parse_call(_verified_form(request))
        # The webhooks' base URL as Twilio called it: every later callback URL for this call is built on it
        # (the API's own handlers cannot name the webhooks' API).
        base = callback_base(request.public_url, self.path)
        # Voicemail, or a question first: then nothing is stored until the caller has spoken.
        from chalicelib.voice import arrival

        first = arrival.first_answer(message, base)
        if first is not None:
            return Webhook(immediate=Reply(200, first, TWIML))
        return Webhook(messages=(message,), context={"call_sid": message.provider_message_id, "callback_base": base})

    def respond(self, webhook: Webhook, stored: Sequence[StoredMessage]) -> Reply:
        if not stored or len(stored[0].conversation_id) > MAX_QUEUE_NAME:
            return Reply(200, unavailable_twiml(), TWIML)
        # The queue is named by the conversation, so whoever takes the contact can dequeue it, and a repeated
        # request for the call lands in the same queue.
        base, conversation_id = str(webhook.context["callback_base"]), stored[0].conversation_id
        # The wait document names the conversation in its query: ids are letters, digits and "_", rebuilt exactly.
        wait_url = f"{base}{WAIT_PATH}?conversation={conversation_id}"
        return Reply(200, hold_twiml(conversation_id, action=base + QUEUE_EXIT.path, wait_url=wait_url), TWIML)


def callback_base(public_url: str, path: str) -> str:
    """The base URL (scheme, host, stage) of a webhook Twilio called at ``path``."""
    return public_url.split("?", 1)[0].removesuffix(path)


class TwilioQueueExit:
    """``POST /webhooks/twilio/voice/queue-exit``: the ``<Enqueue action>``, asked when a caller leaves the queue.

    ``QueueResult=hangup`` says the caller gave up while waiting: applied as the call's status ``completed``,
    the same forward-only update (and abandonment) as the number's status callback, so either signal, both, or
    repeats of them close the contact once. ``bridged``/``redirected`` (an agent took the call) are answered
    with an empty ``<Response/>``, never ``<Hangup/>``: a late request must not cut the bridge.
    """

    name = "twilio_queue_exit"
    path = "/webhooks/twilio/voice/queue-exit"
    methods = ("POST",)
    content_types = (FORM,)

    def handle(self, request: WebhookRequest) -> Webhook:
        form = _verified_form(request)
        call_sid = form.require("CallSid")
        if (form.get("QueueResult") or "").lower() != "hangup":
            return Webhook(immediate=_empty_twiml())
        return Webhook(statuses=(StatusUpdate(PROVIDER, call_sid, "completed", kind="call"),))

    def respond(self, webhook: Webhook, stored: Sequence[StoredMessage]) -> Reply:
        return _empty_twiml()


# --- status callbacks --------------------------------------------------------------------------


def _error(form: _Form) -> str | None:
    code, text = form.get("ErrorCode"), form.get("ErrorMessage")
    if code and text:
        return f"{code}: {text}"
    return code or text


def _rfc2822_to_iso(value: str | None) -> str | None:
    """Twilio's ``Timestamp`` (``Mon, 23 Nov 2026 10:04:12 +0000``) as ISO 8601; None if unreadable."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).isoformat()
    except (TypeError, ValueError):
        return None


def _parse_status(form: _Form) -> StatusUpdate | None:
    """What a status callback says, or None for a status that says nothing about delivery.

    A message callback carries ``MessageSid`` and ``MessageStatus`` (and the older ``SmsStatus``);
    a call callback ``CallSid`` and ``CallStatus``.
    """
    message_sid, message_status = form.get("MessageSid"), form.get("MessageStatus") or form.get("SmsStatus")
    if message_sid and message_status:
        normalised = MESSAGE_STATUSES.get(message_status.lower())
        if normalised is None:
            # ``receiving``/``received`` belong to inbound messages; a status Twilio adds later is not an
            # error of the request, and a 4xx would only make Twilio log failures and retry.
            return None
        return StatusUpdate(PROVIDER, message_sid, normalised, error=_error(form), kind="message")
    call_sid, call_status = form.get("CallSid"), form.get("CallStatus")
    if call_sid and call_status:
        return StatusUpdate(
            PROVIDER,
            call_sid,
            call_status.lower(),  # Twilio's own names: ringing, in-progress, completed, no-answer...
            at=_rfc2822_to_iso(form.get("Timestamp")),
            error=_error(form),
            kind="call",
        )
    raise InvalidPayload(
        "a status callback needs MessageSid and MessageStatus, or CallSid and CallStatus",
        [{"field": "MessageSid", "problem": "is required"}, {"field": "CallSid", "problem": "is required"}],
    )


class TwilioStatus:
    """``POST /webhooks/twilio/status``: message and call status callbacks. Never creates a contact."""

    name = "twilio_status"
    path = "/webhooks/twilio/status"
    methods = ("POST",)
    content_types = (FORM,)

    def handle(self, request: WebhookRequest) -> Webhook:
        update = _parse_status(_verified_form(request))
        if update is None or (update.kind == "message" and update.status not in NEWS):
            return Webhook(immediate=_empty_twiml())
        return Webhook(statuses=(update,))

    def respond(self, webhook: Webhook, stored: Sequence[StoredMessage]) -> Reply:
        # Twilio reads nothing from a status callback's answer; 200 with valid TwiML keeps its debugger quiet.
        return _empty_twiml()


MESSAGING = TwilioMessaging()
VOICE = TwilioVoice()
STATUS = TwilioStatus()
QUEUE_EXIT = TwilioQueueExit()
# Annotated so that mypy checks each one against the ``ChannelAdapter`` protocol.
ADAPTERS: tuple[ChannelAdapter, ...] = (MESSAGING, VOICE, STATUS, QUEUE_EXIT)
