"""Telegram's bot webhook: secret token and Update parsing, on raw bytes, no AWS.

Payloads are files in ``tests/fixtures/telegram``, written from the Bot API's
``Update`` documentation.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.channels.base import Webhook, WebhookRequest
from chalicelib.channels.telegram import ADAPTER
from chalicelib.errors import InvalidJson, InvalidPayload, PayloadTooLarge, SwitchboardError, Unauthenticated
from chalicelib.settings import reload_settings
from tests.mutations import mutated_fixtures

FIXTURES = Path(__file__).parent.parent / "fixtures" / "telegram"
SECRET_TOKEN = "tg_webhook-7Qx2vN9pL4sK8dR1"  # Telegram allows A-Z, a-z, 0-9, _ and -
LIMIT = 64 * 1024
ADA = 5193624807


@pytest.fixture(autouse=True)
def telegram_env(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("SWITCHBOARD_SSM_PREFIX", raising=False)
    monkeypatch.setenv("MAX_WEBHOOK_BODY_BYTES", str(LIMIT))
    monkeypatch.setenv("TELEGRAM_SECRET_TOKEN", SECRET_TOKEN)
    reload_settings()
    yield
    reload_settings()


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def post(body: bytes, token: str | None = SECRET_TOKEN) -> WebhookRequest:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = token
    return WebhookRequest("POST", "/webhooks/telegram", headers, {}, body, "https://api.example.com/webhooks/telegram")


def deliver(name: str) -> Webhook:
    return ADAPTER.handle(post(fixture(name)))


def test_a_message_is_a_telegram_identity_keyed_by_update_id():
    webhook = deliver("message_text.json")
    [message] = webhook.messages
    assert message.channel == "telegram"
    assert message.provider == "telegram"
    assert message.provider_message_id == "734281950"
    assert message.dedupe_key == "telegram#734281950"
    assert message.identity.key == f"telegram#{ADA}"
    assert message.name == "Ada Lovelace"
    assert message.language == "en"
    assert message.text == "Hi! My order #4417 hasn't arrived yet."
    assert message.sent_at == "2025-11-23T10:00:00.000000Z"
    assert message.metadata["telegram_chat_id"] == ADA
    assert message.metadata["telegram_message_id"] == 412
    assert message.also_known_as == ()
    reply = ADAPTER.respond(webhook, [])
    assert (reply.status, reply.body, reply.content_type) == (200, {}, "application/json")


def test_an_edit_is_a_new_message_marked_edited():
    [original] = deliver("message_text.json").messages
    [edit] = deliver("edited_message.json").messages
    assert edit.text == "Hi! My order #4471 hasn't arrived yet."
    assert edit.metadata["edited"] is True
    assert edit.metadata["telegram_message_id"] == original.metadata["telegram_message_id"] == 412
    assert edit.message_id != original.message_id
    assert edit.identity == original.identity
    assert edit.sent_at == "2025-11-23T10:00:42.000000Z"


def test_a_callback_query_is_its_data_from_the_user_who_tapped():
    [message] = deliver("callback_query.json").messages
    assert message.text == "agent"
    assert message.identity.key == f"telegram#{ADA}"  # not the bot that sent the keyboard
    assert message.provider_message_id == "734281952"
    assert message.metadata["callback_query_id"] == "2230647195843077151"
    assert message.metadata["telegram_chat_id"] == ADA
    assert message.metadata["telegram_message_id"] == 413


def test_a_tap_is_answered_in_the_webhook_reply_so_the_button_stops_spinning():
    # Telegram's clients show a progress bar on a tapped button until the bot calls answerCallbackQuery. A webhook
    # may make that call in its own answer ("method" plus the method's parameters): no request of ours, no token.
    webhook = deliver("callback_query.json")
    reply = ADAPTER.respond(webhook, [])
    assert (reply.status, reply.content_type) == (200, "application/json")
    assert reply.body == {"method": "answerCallbackQuery", "callback_query_id": "2230647195843077151"}


def test_a_tap_we_store_nothing_for_is_answered_too():
    document = json.loads(fixture("callback_query.json"))
    del document["callback_query"]["data"]  # a game button's tap carries game_short_name, not data
    document["callback_query"]["game_short_name"] = "quiz"
    webhook = ADAPTER.handle(post(json.dumps(document).encode()))
    assert webhook.messages == ()
    assert ADAPTER.respond(webhook, []).body == {
        "method": "answerCallbackQuery",
        "callback_query_id": "2230647195843077151",
    }


def test_a_photo_is_its_largest_size_with_the_caption_as_text():
    [message] = deliver("photo_with_caption.json").messages
    assert message.text == "This is how the parcel arrived"
    [photo] = message.attachments
    assert photo.content_type == "image/jpeg"
    largest = json.loads(fixture("photo_with_caption.json"))["message"]["photo"][2]  # 1280x960, not the last
    assert photo.url == "telegram-file:" + largest["file_id"]
    assert photo.size == 164320


def test_a_document_and_a_voice_note_are_file_references():
    [document] = deliver("document.json").messages
    [attachment] = document.attachments
    assert (attachment.content_type, attachment.filename, attachment.size) == (
        "application/pdf",
        "invoice-4417.pdf",
        48213,
    )
    assert attachment.url is not None and attachment.url.startswith("telegram-file:BQAC")
    [voice] = deliver("voice.json").messages
    assert voice.attachments[0].content_type == "audio/ogg"
    assert voice.name == "Ada"
    assert voice.language == "en-GB"


def test_sharing_your_own_contact_links_your_phone_number():
    [message] = deliver("contact_own.json").messages
    assert message.identity.key == f"telegram#{ADA}"
    assert [i.key for i in message.also_known_as] == ["phone#+447700900123"]
    assert message.phone == "+447700900123"
    assert "447700900123" in message.text


def test_sharing_someone_elses_contact_links_nothing():
    [message] = deliver("contact_someone_else.json").messages
    assert message.also_known_as == ()
    assert message.phone is None
    assert message.text == "Shared a contact: Charles Babbage +447700900456"
    assert message.metadata["contact"]["user_id"] == 6021784533


def test_an_own_contact_whose_number_is_not_a_phone_links_nothing_but_is_kept():
    document = json.loads(fixture("contact_own.json"))
    document["message"]["contact"]["phone_number"] = "12"
    [message] = ADAPTER.handle(post(json.dumps(document).encode())).messages
    assert message.also_known_as == ()


@pytest.mark.parametrize("name", ["channel_post.json", "my_chat_member.json", "group_service_message.json"])
def test_updates_we_do_not_handle_are_answered_200_with_nothing_to_store(name):
    webhook = deliver(name)
    assert webhook.messages == ()
    assert ADAPTER.respond(webhook, []).status == 200


def test_an_unsupported_content_type_is_kept_as_a_placeholder():
    document = json.loads(fixture("message_text.json"))
    del document["message"]["text"]
    document["message"]["dice"] = {"emoji": "\N{GAME DIE}", "value": 4}
    [message] = ADAPTER.handle(post(json.dumps(document).encode())).messages
    assert message.text == "[telegram dice message]"
    assert message.metadata["unsupported"] is True


# --- rejections -----------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["wrong-token", SECRET_TOKEN[:-1], SECRET_TOKEN + "x", SECRET_TOKEN.upper(), ""])
def test_a_wrong_secret_token_is_unauthenticated(token):
    with pytest.raises(Unauthenticated) as raised:
        ADAPTER.handle(post(fixture("message_text.json"), token))
    assert raised.value.status == 401


def test_one_changed_byte_of_the_secret_is_unauthenticated():
    forged = SECRET_TOKEN[:5] + ("A" if SECRET_TOKEN[5] != "A" else "B") + SECRET_TOKEN[6:]
    with pytest.raises(Unauthenticated):
        ADAPTER.handle(post(fixture("message_text.json"), forged))


def test_a_missing_secret_header_is_unauthenticated():
    with pytest.raises(Unauthenticated):
        ADAPTER.handle(post(fixture("message_text.json"), None))


def test_the_secret_header_is_found_whatever_its_case():
    body = fixture("message_text.json")
    request = WebhookRequest(
        "POST", "/webhooks/telegram", {"x-telegram-bot-api-secret-token": SECRET_TOKEN}, {}, body, ""
    )
    assert len(ADAPTER.handle(request).messages) == 1


def test_an_oversized_body_is_refused_before_the_secret_is_checked():
    with pytest.raises(PayloadTooLarge) as raised:
        ADAPTER.handle(post(b" " * (LIMIT + 1), None))
    assert raised.value.status == 413


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff",
        b"[1]",
        b"{}",
        b'{"update_id": "734281950"}',
        b'{"update_id": true}',
        b'{"update_id": 1, "message": {"message_id": 1}}',
        b'{"update_id": 1, "callback_query": {"id": "1", "data": "x"}}',
        b'{"update_id": 1, "x": NaN}',
    ],
)
def test_a_body_with_the_right_secret_that_is_not_an_update_is_a_client_error(body):
    with pytest.raises((InvalidJson, InvalidPayload)) as raised:
        ADAPTER.handle(post(body))
    assert 400 <= raised.value.status < 500


def test_an_invalid_message_names_its_bad_fields():
    document = json.loads(fixture("message_text.json"))
    document["message"]["from"]["id"] = "ada"
    with pytest.raises(InvalidPayload) as raised:
        ADAPTER.handle(post(json.dumps(document).encode()))
    assert {d["field"] for d in raised.value.details} == {"from.id"}


# --- whatever arrives with the secret, the answer is a message, nothing, or a client error --

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=12,
)


def _client_error_or_parsed(body: bytes) -> None:
    try:
        webhook = ADAPTER.handle(post(body))
    except SwitchboardError as error:
        assert 400 <= error.status < 500
        assert error.to_body()["message"]
    else:
        for message in webhook.messages:
            assert message.provider == "telegram"
            assert message.identity.kind == "telegram"
            assert message.text or message.attachments


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_with_the_secret_give_a_client_error_or_a_webhook(body):
    _client_error_or_parsed(body)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=300)
@given(mutated_fixtures(FIXTURES, _json_values, max_changes=3))
def test_mutated_real_updates_give_a_client_error_or_a_webhook(document):
    _client_error_or_parsed(json.dumps(document).encode())
