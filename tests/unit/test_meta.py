"""Meta's webhook (WhatsApp Cloud API, Messenger, Instagram): handshake, signature and parsing, on raw bytes, no AWS.

Payloads are files in ``tests/fixtures/meta``, written from Meta's webhook
references, and signed here the way Meta signs them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.channels.base import Webhook, WebhookRequest
from chalicelib.channels.meta import ADAPTER
from chalicelib.errors import (
    Forbidden,
    InvalidJson,
    InvalidPayload,
    PayloadTooLarge,
    SwitchboardError,
    Unauthenticated,
)
from chalicelib.settings import reload_settings
from tests.mutations import mutated_fixtures

FIXTURES = Path(__file__).parent.parent / "fixtures" / "meta"
APP_SECRET = "9f3c2a7e1b6d4f08a5c3e2d1b0a98765"
VERIFY_TOKEN = "switchboard-verify-3b1f"
LIMIT = 64 * 1024


@pytest.fixture(autouse=True)
def meta_env(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("SWITCHBOARD_SSM_PREFIX", raising=False)
    monkeypatch.setenv("MAX_WEBHOOK_BODY_BYTES", str(LIMIT))
    monkeypatch.setenv("META_APP_SECRET", APP_SECRET)
    monkeypatch.setenv("META_VERIFY_TOKEN", VERIFY_TOKEN)
    reload_settings()
    yield
    reload_settings()


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def meta_signature(body: bytes, secret: str = APP_SECRET) -> str:
    # Written out independently of chalicelib.channels.signing, the way Meta documents it.
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(body: bytes, signature: str | None = None, *, signed: bool = True) -> WebhookRequest:
    headers = {"Content-Type": "application/json"}
    if signed:
        headers["X-Hub-Signature-256"] = signature if signature is not None else meta_signature(body)
    return WebhookRequest("POST", "/webhooks/meta", headers, {}, body, "https://api.example.com/webhooks/meta")


def deliver(name: str) -> Webhook:
    return ADAPTER.handle(post(fixture(name)))


def get(query: dict[str, str]) -> WebhookRequest:
    return WebhookRequest("GET", "/webhooks/meta", {}, query, b"", "https://api.example.com/webhooks/meta")


# --- the handshake --------------------------------------------------------------------------


def test_handshake_answers_the_challenge_as_plain_text():
    webhook = ADAPTER.handle(
        get({"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"})
    )
    assert webhook.immediate is not None
    assert (webhook.immediate.status, webhook.immediate.body, webhook.immediate.content_type) == (
        200,
        "1158201444",
        "text/plain",
    )
    assert not webhook.messages


def test_handshake_with_a_wrong_token_is_forbidden():
    with pytest.raises(Forbidden) as raised:
        ADAPTER.handle(get({"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1158201444"}))
    assert raised.value.status == 403


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN},
        {"hub.mode": "subscribe", "hub.challenge": "1158201444"},
        {"hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
        {},
    ],
)
def test_handshake_without_its_parameters_is_invalid(query):
    with pytest.raises(InvalidPayload):
        ADAPTER.handle(get(query))


def test_handshake_for_another_mode_is_invalid():
    with pytest.raises(InvalidPayload):
        ADAPTER.handle(get({"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"}))


# --- WhatsApp -------------------------------------------------------------------------------


def test_whatsapp_text_is_a_phone_identity_named_from_contacts():
    webhook = deliver("whatsapp_text.json")
    [message] = webhook.messages
    assert message.channel == "whatsapp"
    assert message.provider == "meta"
    assert message.provider_message_id.startswith("wamid.HBgM")
    assert message.dedupe_key == "meta#" + message.provider_message_id
    # The same identity Twilio SMS and Twilio WhatsApp produce for this number: one person.
    assert message.identity.key == "phone#+447700900123"
    assert message.phone == "+447700900123"
    assert message.name == "Ada Lovelace"
    assert message.text == "Hi, where is my order #4417?"
    assert message.sent_at == "2025-11-23T10:00:00.000000Z"
    assert message.metadata["phone_number_id"] == "106540352242922"
    assert message.metadata["display_phone_number"] == "15550783881"
    assert message.metadata["waba_id"] == "102290129340398"
    assert message.metadata["whatsapp_type"] == "text"
    assert not webhook.statuses


def test_whatsapp_image_keeps_the_caption_as_text_and_a_media_reference():
    [message] = deliver("whatsapp_image_caption.json").messages
    assert message.text == "The parcel arrived like this"
    [attachment] = message.attachments
    assert attachment.content_type == "image/jpeg"
    assert attachment.url == "whatsapp-media:1003383421387256"


def test_whatsapp_document_voice_note_and_an_unsupported_type():
    document, voice, unsupported = deliver("whatsapp_document_and_unsupported.json").messages
    assert document.text == ""
    assert document.attachments[0].filename == "invoice-4417.pdf"
    assert document.attachments[0].content_type == "application/pdf"
    assert document.attachments[0].url == "whatsapp-media:1284902718839561"
    assert voice.attachments[0].content_type == "audio/ogg; codecs=opus"
    # Kept, so an agent sees the customer wrote something.
    assert unsupported.text == "[whatsapp unsupported message]"
    assert unsupported.metadata["unsupported"] is True
    assert unsupported.metadata["whatsapp_type"] == "unsupported"


def test_whatsapp_interactive_button_reply_is_its_title_with_the_button_id_in_metadata():
    [message] = deliver("whatsapp_interactive_button_reply.json").messages
    assert message.text == "Talk to a person"
    assert message.metadata["interactive_type"] == "button_reply"
    assert message.metadata["interactive_id"] == "talk-to-agent"
    assert message.metadata["in_reply_to"].startswith("wamid.")


def test_whatsapp_list_reply():
    [message] = deliver("whatsapp_interactive_list_reply.json").messages
    assert message.text == "Returns"
    assert message.metadata["interactive_type"] == "list_reply"
    assert message.metadata["interactive_id"] == "returns"
    assert message.metadata["interactive_description"] == "Send something back"


def test_whatsapp_template_button_location_and_reaction():
    [button] = deliver("whatsapp_template_button.json").messages
    assert (button.text, button.metadata["button_payload"]) == ("Reschedule", "RESCHEDULE_DELIVERY")
    [place] = deliver("whatsapp_location.json").messages
    assert "British Museum" in place.text
    assert place.metadata["location"]["latitude"] == pytest.approx(51.5194133)
    [reaction] = deliver("whatsapp_reaction.json").messages
    assert reaction.text == "\N{THUMBS UP SIGN}"
    assert reaction.metadata["reaction_to"].startswith("wamid.")


def test_whatsapp_batch_returns_every_message_of_every_entry_in_order():
    messages = deliver("whatsapp_batch.json").messages
    assert [m.text for m in messages] == [
        "First question",
        "Is the shop open on Sunday?",
        "Hola, do you ship to Madrid?",
    ]
    assert [m.identity.value for m in messages] == ["+447700900123", "+447700900456", "+14155550123"]
    # Each name comes from the contact with the sender's wa_id, not from the position.
    assert [m.name for m in messages] == ["Ada Lovelace", "Charles Babbage", "Grace Hopper"]
    assert messages[2].metadata["phone_number_id"] == "117295841203344"
    assert len({m.message_id for m in messages}) == 3


def test_whatsapp_statuses_become_status_updates_keyed_by_wamid():
    webhook = deliver("whatsapp_statuses.json")
    assert not webhook.messages
    assert [(s.provider, s.status) for s in webhook.statuses] == [
        ("whatsapp", "sent"),
        ("whatsapp", "delivered"),
        ("whatsapp", "read"),
        ("whatsapp", "failed"),
    ]
    sent, _, read, failed = webhook.statuses
    assert sent.provider_message_id == "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAERgSNDE0QkY4QTlCRDFDMUQ1NDU0AA=="
    assert sent.at == "2025-11-23T10:05:00.000000Z"
    assert read.error is None
    assert failed.error == "131047: Re-engagement message"
    assert ADAPTER.respond(webhook, []).status == 200


def test_a_change_we_do_not_subscribe_to_is_answered_200_with_nothing_to_store():
    webhook = deliver("whatsapp_template_status_update.json")
    assert (webhook.messages, webhook.statuses, webhook.immediate) == ((), (), None)
    assert ADAPTER.respond(webhook, []).status == 200


def test_one_unreadable_message_does_not_lose_the_rest_of_the_batch():
    document = json.loads(fixture("whatsapp_batch.json"))
    del document["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    document["entry"][0]["changes"][0]["value"]["messages"][1]["from"] = "not a phone"
    body = json.dumps(document).encode()
    webhook = ADAPTER.handle(post(body))
    assert [m.text for m in webhook.messages] == ["Hola, do you ship to Madrid?"]
    assert len(webhook.context["skipped"]) == 2


# --- Messenger and Instagram ----------------------------------------------------------------


def test_messenger_text_is_a_page_scoped_identity():
    [message] = deliver("messenger_text.json").messages
    assert message.channel == "messenger"
    assert message.provider == "meta"
    assert message.identity.key == "messenger#7034928461927365"
    assert message.provider_message_id.startswith("m_Xk3b7")
    assert message.text == "Hello! Can I change my delivery address?"
    assert message.sent_at == "2025-11-23T10:13:20.987000Z"
    assert message.metadata["page_id"] == "109876543210987"
    assert message.phone is None


def test_messenger_attachments_keep_their_cdn_urls():
    [message] = deliver("messenger_attachment.json").messages
    assert message.text == ""
    image, receipt = message.attachments
    assert image.content_type == "image/*"
    assert image.url is not None and image.url.startswith("https://scontent.xx.fbcdn.net/")
    assert receipt.content_type == "application/octet-stream"
    assert message.metadata["attachment_types"] == ["image", "file"]


def test_messenger_quick_reply_keeps_its_payload():
    [message] = deliver("messenger_quick_reply.json").messages
    assert message.text == "Track my order"
    assert message.metadata["quick_reply_payload"] == "TRACK_ORDER"


def test_messenger_postback_is_its_title_keyed_by_its_mid():
    [message] = deliver("messenger_postback.json").messages
    assert message.text == "Talk to support"
    assert message.provider_message_id.startswith("m_An6e0")
    assert message.metadata["postback_payload"] == "SUPPORT_MENU"


def test_a_postback_without_a_mid_is_keyed_by_sender_and_time_so_retries_dedupe():
    document = json.loads(fixture("messenger_postback.json"))
    del document["entry"][0]["messaging"][0]["postback"]["mid"]
    body = json.dumps(document).encode()
    first = ADAPTER.handle(post(body)).messages[0]
    again = ADAPTER.handle(post(body)).messages[0]
    assert first.message_id == again.message_id
    assert first.provider_message_id == "postback:7034928461927365:1763892980222"


def test_messenger_echo_is_ignored_and_a_delivery_becomes_a_status():
    webhook = deliver("messenger_echo_and_receipts.json")
    assert webhook.messages == ()
    [delivered] = webhook.statuses  # the read watermark names no message: ignored
    assert (delivered.provider, delivered.status) == ("messenger", "delivered")
    assert delivered.provider_message_id.startswith("m_Bo7f1")
    assert ADAPTER.respond(webhook, []).status == 200


def test_instagram_text_is_an_instagram_scoped_identity():
    [message] = deliver("instagram_text.json").messages
    assert message.channel == "instagram"
    assert message.provider == "meta"
    assert message.identity.key == "instagram#1184503262783104"
    assert message.text == "Is the green jacket still in stock?"
    assert message.metadata["instagram_account_id"] == "17841405793187218"


def test_instagram_echo_is_ignored_and_a_read_becomes_a_status():
    webhook = deliver("instagram_echo_and_read.json")
    assert webhook.messages == ()
    [read] = webhook.statuses
    assert (read.provider, read.status) == ("instagram", "read")


# --- rejections -----------------------------------------------------------------------------


def test_a_forged_signature_is_unauthenticated():
    body = fixture("whatsapp_text.json")
    with pytest.raises(Unauthenticated) as raised:
        ADAPTER.handle(post(body, meta_signature(body, secret="not-the-app-secret")))
    assert raised.value.status == 401


def test_a_signature_under_the_wrong_secret_or_in_the_wrong_form_is_unauthenticated():
    body = fixture("whatsapp_text.json")
    bare_hex = meta_signature(body).removeprefix("sha256=")
    for signature in (bare_hex, "sha1=" + bare_hex, "sha256=", "sha256=zz"):
        with pytest.raises(Unauthenticated):
            ADAPTER.handle(post(body, signature))


def test_one_changed_byte_breaks_the_signature():
    body = fixture("whatsapp_text.json")
    signature = meta_signature(body)
    tampered = body.replace(b"#4417", b"#4418")
    assert tampered != body
    with pytest.raises(Unauthenticated):
        ADAPTER.handle(post(tampered, signature))


def test_a_missing_signature_is_unauthenticated():
    with pytest.raises(Unauthenticated):
        ADAPTER.handle(post(fixture("whatsapp_text.json"), signed=False))


def test_the_signature_header_is_found_whatever_its_case():
    body = fixture("whatsapp_text.json")
    request = WebhookRequest("POST", "/webhooks/meta", {"x-hub-signature-256": meta_signature(body)}, {}, body, "")
    assert len(ADAPTER.handle(request).messages) == 1


def test_an_oversized_body_is_refused_before_its_signature_is_checked():
    body = b" " * (LIMIT + 1)
    with pytest.raises(PayloadTooLarge) as raised:
        ADAPTER.handle(post(body, "sha256=00"))
    assert raised.value.status == 413


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe",
        b"[]",
        b'"text"',
        b'{"object": "page"}',
        b'{"entry": []}',
        b'{"object": 1, "entry": {}}',
    ],
)
def test_a_signed_body_that_is_not_a_meta_batch_is_a_client_error(body):
    with pytest.raises((InvalidJson, InvalidPayload)) as raised:
        ADAPTER.handle(post(body))
    assert 400 <= raised.value.status < 500


def test_signed_nan_and_deep_nesting_are_client_errors():
    for body in (b'{"object": "page", "entry": [], "x": NaN}', b"[" * 100_000 + b"]" * 100_000):
        with pytest.raises(SwitchboardError):
            ADAPTER.handle(post(body))


# --- whatever arrives signed, the answer is a message, a status, or a client error ----------

_KEYS = [
    "object", "entry", "changes", "value", "field", "messages", "statuses", "contacts", "from", "id", "type",
    "text", "body", "image", "interactive", "button_reply", "messaging", "sender", "message", "mid", "postback",
    "delivery", "mids", "read", "timestamp", "wa_id", "profile", "name", "errors", "status", "location",
    "latitude", "attachments", "payload", "url", "is_echo", "reaction", "emoji",
]  # fmt: skip
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    | st.sampled_from(["whatsapp_business_account", "page", "instagram", "messages", "text", "447700900123"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(_KEYS), children, max_size=6),
    max_leaves=12,
)  # fmt: skip


def _client_error_or_parsed(body: bytes) -> None:
    try:
        webhook = ADAPTER.handle(post(body))
    except SwitchboardError as error:
        assert 400 <= error.status < 500
        assert error.to_body()["message"]
    else:
        for message in webhook.messages:
            assert message.provider == "meta" and message.provider_message_id
            assert message.channel in {"whatsapp", "messenger", "instagram"}


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2048))
def test_arbitrary_signed_bytes_give_a_client_error_or_a_webhook(body):
    _client_error_or_parsed(body)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=300)
@given(mutated_fixtures(FIXTURES, _json_values, max_changes=4))
def test_mutated_real_payloads_signed_give_a_client_error_or_a_webhook(document):
    _client_error_or_parsed(json.dumps(document).encode())
