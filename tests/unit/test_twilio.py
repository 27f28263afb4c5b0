"""Twilio adapters on raw bytes, without AWS: the signature, SMS/MMS/WhatsApp, voice, status callbacks.

Payloads are the files in ``tests/fixtures/twilio``; each is signed here by ``twilio_signature``,
written from Twilio's description of the algorithm rather than borrowed from the module under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from chalicelib.channels import twilio
from chalicelib.channels.base import ChannelAdapter, StatusUpdate, WebhookRequest
from chalicelib.conversations.models import Attachment, Identity, StoredMessage
from chalicelib.errors import InvalidPayload, PayloadTooLarge, Unauthenticated
from chalicelib.settings import reload_settings

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "twilio"
TOKEN = "3f9c2b7e5d1a4c6e8b0f2d4a6c8e0b1d"  # made up; the shape of an auth token
BASE_URL = "https://api.example.com/api"

SMS_SID = "SM9f2e4d6c8b0a1f3e5d7c9b1a3f5e7d9c"
CALL_SID = "CA8e0c2a4f6b8d0e2c4a6f8b0d2e4c6a8f"
CUSTOMER_PHONE = Identity("phone", "+14155550123")


@pytest.fixture(autouse=True)
def _twilio_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SWITCHBOARD_SSM_PREFIX", raising=False)  # secrets from the environment
    monkeypatch.delenv("MAX_WEBHOOK_BODY_BYTES", raising=False)  # the 64 KB default
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    reload_settings()


def twilio_signature(token: str, url: str, body: bytes) -> str:
    """What Twilio puts in X-Twilio-Signature: the URL, then each parameter's name and value sorted
    by name (all values of a repeated name, sorted), HMAC-SHA1 under the auth token, base64."""
    params = sorted(parse_qsl(body.decode("ascii"), keep_blank_values=True))
    signed = url + "".join(f"{name}{value}" for name, value in params)
    return base64.b64encode(hmac.new(token.encode(), signed.encode("utf-8"), hashlib.sha1).digest()).decode()


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes().strip()


def form(body: bytes) -> list[tuple[str, str]]:
    return parse_qsl(body.decode("ascii"), keep_blank_values=True)


def reencoded(body: bytes, *, drop: str | None = None, **changes: str) -> bytes:
    """The body with one parameter removed and/or some replaced, still in Twilio's order."""
    pairs = [(k, changes.pop(k) if k in changes else v) for k, v in form(body) if k != drop]
    return urlencode(pairs + list(changes.items())).encode()


def request(
    adapter: ChannelAdapter, body: bytes, *, url: str | None = None, headers: dict[str, str] | None = None
) -> WebhookRequest:
    """A POST to ``adapter`` as Twilio makes it: signed for ``url`` unless ``headers`` say otherwise."""
    url = url or BASE_URL + adapter.path
    if headers is None:
        headers = {"X-Twilio-Signature": twilio_signature(TOKEN, url, body)}
    query = dict(parse_qsl(urlsplit(url).query))
    headers = {"Content-Type": "application/x-www-form-urlencoded", "I-Twilio-Idempotency-Token": "x", **headers}
    return WebhookRequest("POST", adapter.path, headers, query, body, url)


def stored(conversation_id: str = "conv_5d1f0a9e3b7c2d4e6f80", duplicate: bool = False) -> StoredMessage:
    return StoredMessage("msg_1", "cus_1", conversation_id, "2026-11-23T10:00:00+00:00", duplicate, not duplicate)


# --- Twilio's published examples ------------------------------------------------------------------

DOC_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}


def _doc_request(
    adapter: ChannelAdapter, url: str, params: Mapping[str, str] | Sequence[tuple[str, str]], signature: str
) -> WebhookRequest:
    body = urlencode(params).encode()
    return WebhookRequest("POST", adapter.path, {"X-Twilio-Signature": signature}, {}, body, url)


@pytest.fixture
def documented_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "12345")
    reload_settings()


@pytest.mark.usefixtures("documented_token")
def test_the_worked_example_in_twilios_webhook_security_guide_verifies():
    # https://www.twilio.com/docs/usage/webhooks/webhooks-security (formerly /docs/usage/security#validating-requests):
    # auth token 12345, this URL and these parameters sign to 0/KCTR6DLpKmkAf8muzZqo1nDgQ=.
    webhook = twilio.VOICE.handle(
        _doc_request(
            twilio.VOICE, "https://mycompany.com/myapp.php?foo=1&bar=2", DOC_PARAMS, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        )
    )
    [call] = webhook.messages
    assert call.provider_message_id == "CA1234567890ABCDE"
    assert call.identity == Identity("phone", "+12349013030")


@pytest.mark.usefixtures("documented_token")
def test_twilios_earlier_documented_example_verifies():
    # The same example as Twilio's docs and helper libraries gave it before the numbers changed
    # (twilio-php docs/usage/validation.rst; twilio-python tests/unit/test_request_validator.py).
    params = {**DOC_PARAMS, "Caller": "+14158675309", "From": "+14158675309"}
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    webhook = twilio.VOICE.handle(_doc_request(twilio.VOICE, url, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8="))
    assert webhook.messages[0].identity == Identity("phone", "+14158675309")
    # Twilio's helper libraries accept the same request signed with the default port written out.
    with_port = _doc_request(twilio.VOICE, url, params, "kvajT1Ptam85bY51eRf/AJRuM3w=")
    assert twilio.VOICE.handle(with_port).messages[0].provider_message_id == "CA1234567890ABCDE"
    # ...and, the other way round, the plain signature when our URL names the port.
    explicit = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    assert twilio.VOICE.handle(_doc_request(twilio.VOICE, explicit, params, "RSOYDt4T1cUTdK1PDd93/VVr8B8="))


@pytest.mark.usefixtures("documented_token")
def test_a_repeated_parameter_signs_every_value_sorted():
    # twilio-python's test vector for repeated names: Digits=5678&Digits=1234 signs as Digits1234Digits5678.
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    for order in (
        [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")],
        [("Digits", "1234"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Sid", "CA123")],
    ):
        # Verified, then refused for what it lacks: the signature was accepted.
        with pytest.raises(InvalidPayload):
            twilio.STATUS.handle(_doc_request(twilio.STATUS, url, order, "IK+Dwps556ElfBT0I3Rgjkr1wJU="))
    with pytest.raises(Unauthenticated):
        twilio.STATUS.handle(_doc_request(twilio.STATUS, url, [("Digits", "1234")], "IK+Dwps556ElfBT0I3Rgjkr1wJU="))


# --- the signature refuses what Twilio did not sign -------------------------------------------------


def test_a_forged_signature_is_refused():
    forged = base64.b64encode(os.urandom(20)).decode()
    with pytest.raises(Unauthenticated):
        twilio.MESSAGING.handle(
            request(twilio.MESSAGING, fixture("inbound_sms.txt"), headers={"X-Twilio-Signature": forged})
        )


def test_a_signature_under_another_auth_token_is_refused():
    body = fixture("inbound_sms.txt")
    url = BASE_URL + twilio.MESSAGING.path
    wrong = twilio_signature("0" * 32, url, body)
    with pytest.raises(Unauthenticated):
        twilio.MESSAGING.handle(request(twilio.MESSAGING, body, headers={"X-Twilio-Signature": wrong}))


def test_one_changed_byte_is_refused():
    body = fixture("inbound_sms.txt")
    signature = {"X-Twilio-Signature": twilio_signature(TOKEN, BASE_URL + twilio.MESSAGING.path, body)}
    tampered = body.replace(b"From=%2B14155550123", b"From=%2B14155550124")
    assert sum(a != b for a, b in zip(body, tampered, strict=True)) == 1
    assert twilio.MESSAGING.handle(request(twilio.MESSAGING, body, headers=signature)).messages
    with pytest.raises(Unauthenticated):
        twilio.MESSAGING.handle(request(twilio.MESSAGING, tampered, headers=signature))


@pytest.mark.parametrize(
    ("signed_for", "posted_to"),
    [
        ("/webhooks/twilio/voice?tenant=acme", "/webhooks/twilio/voice?tenant=evil"),
        ("/webhooks/twilio/voice?tenant=acme", "/webhooks/twilio/voice"),
        ("/webhooks/twilio/voice", "/webhooks/twilio/voice?tenant=acme"),
        ("/webhooks/twilio/messaging", "/webhooks/twilio/voice"),  # a signed request replayed at another endpoint
    ],
)
def test_a_signature_for_another_url_is_refused(signed_for: str, posted_to: str):
    body = fixture("incoming_call.txt")
    signature = {"X-Twilio-Signature": twilio_signature(TOKEN, BASE_URL + signed_for, body)}
    with pytest.raises(Unauthenticated):
        twilio.VOICE.handle(request(twilio.VOICE, body, url=BASE_URL + posted_to, headers=signature))


def test_the_query_string_is_part_of_what_is_signed():
    url = BASE_URL + "/webhooks/twilio/voice?tenant=acme"
    assert twilio.VOICE.handle(request(twilio.VOICE, fixture("incoming_call.txt"), url=url)).messages


@pytest.mark.parametrize("headers", [{}, {"X-Twilio-Signature": ""}], ids=["missing", "empty"])
def test_no_signature_is_refused(headers: dict[str, str]):
    with pytest.raises(Unauthenticated, match="X-Twilio-Signature"):
        twilio.STATUS.handle(request(twilio.STATUS, fixture("message_status_delivered_sms.txt"), headers=headers))


def test_the_header_name_is_case_insensitive():
    body = fixture("inbound_sms.txt")
    lower = {"x-twilio-signature": twilio_signature(TOKEN, BASE_URL + twilio.MESSAGING.path, body)}
    assert twilio.MESSAGING.handle(request(twilio.MESSAGING, body, headers=lower)).messages


def test_a_body_that_is_not_a_form_is_refused_before_it_is_read():
    body = "Body=caf\u00e9&From=%2B14155550123&MessageSid=SM1".encode()  # raw UTF-8: not a form Twilio sends
    with pytest.raises(Unauthenticated):
        twilio.MESSAGING.handle(request(twilio.MESSAGING, body, headers={"X-Twilio-Signature": "x"}))


def test_an_oversized_body_is_refused_before_anything_else():
    body = b"Body=" + b"a" * (64 * 1024)
    with pytest.raises(PayloadTooLarge):
        twilio.MESSAGING.handle(request(twilio.MESSAGING, body, headers={}))


# --- messaging: SMS, MMS, WhatsApp ---------------------------------------------------------------


def test_an_sms_becomes_one_message_from_the_senders_phone():
    webhook = twilio.MESSAGING.handle(request(twilio.MESSAGING, fixture("inbound_sms.txt")))
    [message] = webhook.messages
    assert (message.channel, message.provider, message.provider_message_id) == ("sms", "twilio", SMS_SID)
    assert message.dedupe_key == f"twilio#{SMS_SID}"
    assert message.identity == CUSTOMER_PHONE
    assert message.text == "Hi, where is my order #1042? It said Tuesday & it's Thursday."
    assert message.attachments == ()
    assert message.name is None
    assert message.metadata == {
        "to": "+14155550100",
        "account_sid": "AC7b4f2c9e1d3a5f60718293a4b5c6d7e8",
        "messaging_service_sid": "MG3e9d1c7b5a4f2e0d8c6b4a2f1e3d5c7b",
        "num_segments": "1",
        "from_country": "US",
        "from_state": "CA",
        "from_city": "SAN FRANCISCO",
        "from_zip": "94105",
        "to_country": "US",
    }
    assert webhook.statuses == ()


def test_an_mms_with_only_media_keeps_both_files_and_no_text():
    [message] = twilio.MESSAGING.handle(request(twilio.MESSAGING, fixture("inbound_mms_two_photos.txt"))).messages
    media = "https://api.twilio.com/2010-04-01/Accounts/AC7b4f2c9e1d3a5f60718293a4b5c6d7e8/Messages/MM4c6e8a0b2d4f6e8a0c2e4b6d8f0a2c4e/Media"
    assert message.channel == "sms"
    assert message.text == ""
    assert message.attachments == (
        Attachment("image/jpeg", f"{media}/ME1a2b3c4d5e6f708192a3b4c5d6e7f809"),
        Attachment("image/png", f"{media}/ME9f8e7d6c5b4a39281706f5e4d3c2b1a0"),
    )
    assert message.identity == Identity("phone", "+12125550147")


def test_a_whatsapp_message_is_the_same_customer_as_an_sms_from_that_phone():
    [whatsapp] = twilio.MESSAGING.handle(
        request(twilio.MESSAGING, fixture("inbound_whatsapp_profile_name.txt"))
    ).messages
    [sms] = twilio.MESSAGING.handle(request(twilio.MESSAGING, fixture("inbound_sms.txt"))).messages
    assert whatsapp.channel == "whatsapp"
    assert whatsapp.identity == sms.identity == CUSTOMER_PHONE
    assert whatsapp.name == "Ada Lovelace"
    assert whatsapp.text == "Olá! Can I change the delivery address? 👋"
    assert whatsapp.metadata["wa_id"] == "14155550123"
    assert whatsapp.metadata["to"] == "whatsapp:+14155550100"
    assert whatsapp.message_id != sms.message_id


@pytest.mark.parametrize("field", ["MessageSid", "From"])
@pytest.mark.parametrize("how", ["absent", "blank"])
def test_a_message_without_its_sid_or_sender_is_invalid_and_says_which(field: str, how: str):
    body = fixture("inbound_sms.txt")
    body = reencoded(body, drop=field) if how == "absent" else reencoded(body, **{field: ""})
    with pytest.raises(InvalidPayload, match=field) as caught:
        twilio.MESSAGING.handle(request(twilio.MESSAGING, body))
    assert caught.value.status == 422
    assert caught.value.details[0]["field"] == field


def test_a_sender_that_is_not_a_phone_number_is_invalid():
    body = reencoded(fixture("inbound_sms.txt"), From="ACME")
    with pytest.raises(InvalidPayload, match="From"):
        twilio.MESSAGING.handle(request(twilio.MESSAGING, body))


def test_media_announced_but_missing_is_invalid():
    body = reencoded(fixture("inbound_mms_two_photos.txt"), drop="MediaUrl1")
    with pytest.raises(InvalidPayload, match="MediaUrl1"):
        twilio.MESSAGING.handle(request(twilio.MESSAGING, body))


def test_messaging_answers_empty_twiml_so_twilio_sends_no_reply():
    webhook = twilio.MESSAGING.handle(request(twilio.MESSAGING, fixture("inbound_sms.txt")))
    reply = twilio.MESSAGING.respond(webhook, [stored()])
    assert (reply.status, reply.content_type) == (200, "text/xml")
    assert reply.body == '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
    assert len(ET.fromstring(str(reply.body))) == 0


# --- voice ---------------------------------------------------------------------------------------------


def test_an_incoming_call_is_a_voice_contact_from_the_callers_phone():
    webhook = twilio.VOICE.handle(request(twilio.VOICE, fixture("incoming_call.txt")))
    [call] = webhook.messages
    assert (call.channel, call.provider, call.provider_message_id) == ("voice", "twilio", CALL_SID)
    assert call.identity == CUSTOMER_PHONE  # the same customer as the SMS and the WhatsApp message
    assert call.text == "Incoming call"
    assert call.name == "LOVELACE ADA"
    assert call.metadata["stir_verstat"] == "TN-Validation-Passed-A"
    assert call.metadata["call_status"] == "ringing"
    assert "call_token" not in call.metadata  # a credential, never stored
    assert not any("parentCallInfoToken" in str(value) for value in call.metadata.values())
    assert webhook.context == {"call_sid": CALL_SID, "callback_base": "https://api.example.com/api"}


def test_twilio_asking_again_for_the_same_call_is_the_same_message():
    first = twilio.VOICE.handle(request(twilio.VOICE, fixture("incoming_call.txt"))).messages[0]
    again = reencoded(fixture("incoming_call.txt"), CallStatus="in-progress")
    second = twilio.VOICE.handle(request(twilio.VOICE, again)).messages[0]
    assert first.dedupe_keys == second.dedupe_keys
    assert first.message_id == second.message_id


def test_the_call_is_held_in_a_queue_named_after_its_conversation():
    webhook = twilio.VOICE.handle(request(twilio.VOICE, fixture("incoming_call.txt")))
    reply = twilio.VOICE.respond(webhook, [stored("conv_5d1f0a9e3b7c2d4e6f80")])
    assert (reply.status, reply.content_type) == (200, "text/xml")
    body = str(reply.body)
    assert body.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(body)
    assert root.tag == "Response"
    assert [child.tag for child in root] == ["Say", "Enqueue"]
    assert "hold" in (root.findtext("Say") or "")
    assert root.findtext("Enqueue") == "conv_5d1f0a9e3b7c2d4e6f80"
    # A repeated request for the call is answered with the same queue.
    assert twilio.VOICE.respond(webhook, [stored("conv_5d1f0a9e3b7c2d4e6f80", duplicate=True)]).body == body


def test_the_queue_name_is_escaped():
    webhook = twilio.VOICE.handle(request(twilio.VOICE, fixture("incoming_call.txt")))
    reply = twilio.VOICE.respond(webhook, [stored('conv_<a&b>"c')])
    assert ET.fromstring(str(reply.body)).findtext("Enqueue") == 'conv_<a&b>"c'


def test_a_call_that_was_not_stored_is_told_so_and_hung_up():
    webhook = twilio.VOICE.handle(request(twilio.VOICE, fixture("incoming_call.txt")))
    root = ET.fromstring(str(twilio.VOICE.respond(webhook, []).body))
    assert [child.tag for child in root] == ["Say", "Hangup"]


def test_a_withheld_caller_is_answered_and_is_nobody_else():
    body = fixture("incoming_call_anonymous.txt")
    webhook = twilio.VOICE.handle(request(twilio.VOICE, body))
    [call] = webhook.messages
    assert call.identity == Identity("anonymous_call", "CA3d5f7b9a1c3e5d7f9b1a3c5e7d9f1b3a")
    assert call.metadata["from"] == "anonymous"
    other = twilio.VOICE.handle(request(twilio.VOICE, reencoded(body, CallSid="CA" + "0" * 32))).messages[0]
    assert other.identity != call.identity  # two strangers are two customers
    root = ET.fromstring(str(twilio.VOICE.respond(webhook, [stored()]).body))
    assert root.findtext("Enqueue") == "conv_5d1f0a9e3b7c2d4e6f80"


@pytest.mark.parametrize(
    "caller",
    # Words and keypad spellings carriers send for a withheld number (ANONYMOUS, UNAVAILABLE, UNKNOWN,
    # RESTRICTED), a possible E.164 among them, a blank From and plain junk.
    ["Anonymous", "Restricted", "unknown", "+266696687", "+86282452253", "+8656696", "+7378742833", "", "12"],
)
def test_no_usable_caller_id_means_an_identity_for_this_call_only(caller: str):
    body = reencoded(fixture("incoming_call.txt"), From=caller, Caller=caller)
    [call] = twilio.VOICE.handle(request(twilio.VOICE, body)).messages
    assert call.identity == Identity("anonymous_call", CALL_SID)


def test_a_call_without_from_is_still_answered():
    body = reencoded(fixture("incoming_call.txt"), drop="From")
    [call] = twilio.VOICE.handle(request(twilio.VOICE, body)).messages
    assert call.identity == Identity("anonymous_call", CALL_SID)


def test_a_voice_sdk_caller_is_known_by_their_client_identity():
    webhook = twilio.VOICE.handle(request(twilio.VOICE, fixture("incoming_call_voice_sdk_client.txt")))
    assert webhook.messages[0].identity == Identity("twilio_client", "visitor_7f3a")
    assert ET.fromstring(str(twilio.VOICE.respond(webhook, [stored()]).body)).find("Enqueue") is not None


def test_a_sip_caller_is_known_by_their_sip_address():
    body = reencoded(fixture("incoming_call.txt"), From="sip:alice@pbx.example.com")
    assert twilio.VOICE.handle(request(twilio.VOICE, body)).messages[0].identity == Identity(
        "sip", "alice@pbx.example.com"
    )


def test_a_call_without_its_sid_is_invalid():
    body = reencoded(fixture("incoming_call.txt"), drop="CallSid")
    with pytest.raises(InvalidPayload, match="CallSid"):
        twilio.VOICE.handle(request(twilio.VOICE, body))


# --- status callbacks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "message_status_delivered_sms.txt",
            StatusUpdate("twilio", "SM5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b", "delivered", kind="message"),
        ),
        (
            "message_status_undelivered_sms_30003.txt",
            StatusUpdate("twilio", "SM2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a", "failed", error="30003", kind="message"),
        ),
        (
            "message_status_read_whatsapp.txt",
            StatusUpdate("twilio", "SM6f8b0d2a4c6e8f0b2d4a6c8e0f2b4d6a", "read", kind="message"),
        ),
        (
            "message_status_failed_whatsapp_63016.txt",
            StatusUpdate("twilio", "SM0e2a4c6b8d0f2e4a6c8b0d2f4e6a8c0b", "failed", error="63016", kind="message"),
        ),
        (
            "call_status_completed.txt",
            StatusUpdate("twilio", CALL_SID, "completed", at="2026-11-23T10:04:12+00:00", kind="call"),
        ),
    ],
)
def test_a_status_callback_is_a_status_update_and_never_a_message(name: str, expected: StatusUpdate):
    webhook = twilio.STATUS.handle(request(twilio.STATUS, fixture(name)))
    assert webhook.statuses == (expected,)
    assert webhook.messages == ()
    reply = twilio.STATUS.respond(webhook, [])
    assert (reply.status, reply.content_type) == (200, "text/xml")
    assert ET.fromstring(str(reply.body)).tag == "Response"


@pytest.mark.parametrize(
    ("twilio_status", "ours"),
    [
        ("accepted", "queued"),
        ("scheduled", "queued"),
        ("queued", "queued"),
        ("sending", "queued"),
        ("sent", "sent"),
        ("partially_delivered", "sent"),
        ("delivered", "delivered"),
        ("read", "read"),
        ("undelivered", "failed"),
        ("failed", "failed"),
        ("canceled", "failed"),
    ],
)
def test_message_statuses_are_normalised(twilio_status: str, ours: str):
    body = reencoded(fixture("message_status_delivered_sms.txt"), MessageStatus=twilio_status, SmsStatus=twilio_status)
    webhook = twilio.STATUS.handle(request(twilio.STATUS, body))
    if ours in ("queued", "sent"):
        # The outbox records a message sent when Twilio accepts it: these can never move it forward.
        assert webhook.statuses == () and webhook.immediate is not None and webhook.immediate.status == 200
        return
    [update] = webhook.statuses
    assert update.status == ours


@pytest.mark.parametrize(
    "call_status",
    ["queued", "initiated", "ringing", "in-progress", "completed", "busy", "no-answer", "canceled", "failed"],
)
def test_call_statuses_keep_twilios_names(call_status: str):
    body = reencoded(fixture("call_status_completed.txt"), CallStatus=call_status)
    [update] = twilio.STATUS.handle(request(twilio.STATUS, body)).statuses
    assert (update.kind, update.status) == ("call", call_status)


def test_an_inbound_message_posted_to_the_status_url_creates_nothing():
    # A number misconfigured with the status URL as its messaging webhook: SmsStatus=received, no contact.
    webhook = twilio.STATUS.handle(request(twilio.STATUS, fixture("inbound_sms.txt")))
    assert (webhook.messages, webhook.statuses) == ((), ())
    assert webhook.immediate is not None and webhook.immediate.status == 200


def test_a_status_twilio_adds_later_is_acknowledged_and_ignored():
    body = reencoded(fixture("message_status_delivered_sms.txt"), MessageStatus="teleported", SmsStatus="teleported")
    webhook = twilio.STATUS.handle(request(twilio.STATUS, body))
    assert webhook.statuses == ()
    assert webhook.immediate is not None and webhook.immediate.content_type == "text/xml"


def test_an_unreadable_call_timestamp_is_left_out():
    body = reencoded(fixture("call_status_completed.txt"), Timestamp="sometime on Monday")
    [update] = twilio.STATUS.handle(request(twilio.STATUS, body)).statuses
    assert update.at is None


def test_a_status_callback_about_nothing_is_invalid():
    body = urlencode({"AccountSid": "AC7b4f2c9e1d3a5f60718293a4b5c6d7e8", "ApiVersion": "2010-04-01"}).encode()
    with pytest.raises(InvalidPayload, match="MessageSid"):
        twilio.STATUS.handle(request(twilio.STATUS, body))


# --- the adapters themselves --------------------------------------------------------------------------


def test_the_endpoints():
    assert [(a.name, a.path, tuple(a.methods), tuple(a.content_types)) for a in twilio.ADAPTERS] == [
        ("twilio_messaging", "/webhooks/twilio/messaging", ("POST",), ("application/x-www-form-urlencoded",)),
        ("twilio_voice", "/webhooks/twilio/voice", ("POST",), ("application/x-www-form-urlencoded",)),
        ("twilio_status", "/webhooks/twilio/status", ("POST",), ("application/x-www-form-urlencoded",)),
        ("twilio_queue_exit", "/webhooks/twilio/voice/queue-exit", ("POST",), ("application/x-www-form-urlencoded",)),
    ]
