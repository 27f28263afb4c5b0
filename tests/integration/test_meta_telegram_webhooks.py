"""Meta (WhatsApp Cloud API, Messenger, Instagram) and Telegram through the HTTP routes."""

from __future__ import annotations

import json

from chalicelib import clock
from chalicelib.store import outbound
from tests.support import (
    CHANNEL_SECRETS,
    data_items,
    drain,
    fixture,
    iter_contacts,
    post_meta,
    post_telegram,
    queued_message_count,
    stored_messages,
)


def _nothing_stored():
    assert data_items() == [] and queued_message_count() == 0


def test_meta_handshake_echoes_the_challenge_only_with_our_token(client):
    token = CHANNEL_SECRETS["META_VERIFY_TOKEN"]
    good = client.http.get(f"/webhooks/meta?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444")
    assert good.status_code == 200 and good.body == b"1158201444"
    bad = client.http.get("/webhooks/meta?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1158201444")
    assert bad.status_code == 403
    _nothing_stored()


def test_whatsapp_batch_delivered_three_times_is_stored_and_routed_once(client):
    body = fixture("meta/whatsapp_batch.json")
    responses = [post_meta(client, body) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    batch = json.loads(body)
    expected = sum(len(c["value"].get("messages", [])) for e in batch["entry"] for c in e["changes"])
    assert len(stored_messages()) == expected == 3
    drain(client)
    senders = {m["customer_id"] for m in stored_messages()}
    assert len(list(iter_contacts())) == len(senders)


def test_whatsapp_statuses_update_our_message_without_creating_contacts(client):
    body = fixture("meta/whatsapp_statuses.json")
    wamids = {s["id"] for e in json.loads(body)["entry"] for c in e["changes"] for s in c["value"].get("statuses", [])}
    for wamid in wamids:
        outbound.record("whatsapp", wamid, "conv_1", "queued", clock.now_iso())
    assert post_meta(client, body).status_code == 200
    assert {outbound.get_status("whatsapp", w)["status"] for w in wamids} <= {"sent", "delivered", "read", "failed"}
    assert any(outbound.get_status("whatsapp", w)["status"] != "queued" for w in wamids)
    assert stored_messages() == [] and queued_message_count() == 0


def test_messenger_and_instagram_messages_are_stored_and_echoes_ignored(client):
    post_meta(client, fixture("meta/messenger_text.json"))
    post_meta(client, fixture("meta/instagram_text.json"))
    post_meta(client, fixture("meta/messenger_echo_and_receipts.json"))
    channels = sorted(m["channel"] for m in stored_messages())
    assert channels == ["instagram", "messenger"]


def test_forged_meta_post_is_refused(client):
    body = fixture("meta/whatsapp_text.json")
    assert post_meta(client, body, secret="another-app").status_code == 401
    _nothing_stored()


def test_telegram_message_stored_once_and_edit_is_a_new_message(client):
    body = fixture("telegram/message_text.json")
    assert [post_telegram(client, body).status_code for _ in range(3)] == [200, 200, 200]
    post_telegram(client, fixture("telegram/edited_message.json"))
    messages = stored_messages()
    assert len(messages) == 2
    assert {m["channel"] for m in messages} == {"telegram"}
    assert sum(1 for m in messages if (m.get("metadata") or {}).get("edited")) == 1


def test_telegram_with_wrong_secret_is_refused(client):
    assert post_telegram(client, fixture("telegram/message_text.json"), secret="wrong").status_code == 401
    _nothing_stored()
