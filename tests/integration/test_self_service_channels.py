"""Self-service answers in each channel's form: WhatsApp's interactive reply buttons (a tap read by its id),
Telegram's "reply 1 or 2" with an inline keyboard, e-mail's plain answer with the whole article ("reply YES").
Every customer message is the provider's signed webhook; what the bot sends is what the fake provider (or SES,
moto) received; a "yes" closes the conversation solved, anything else hands it over, routed with the SLA clock
from the hand-over."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
import requests

from chalicelib.outbound import meta
from chalicelib.outbound.destinations import Destination
from chalicelib.outbound.senders import Button, ProviderRejected
from chalicelib.selfservice import HAND_OVER_CHOICE, SOLVED_CHOICE
from chalicelib.store import conversations
from chalicelib.store import routing as routing_store
from tests.fakes.providers import META_ACCESS_TOKEN, TELEGRAM, TWILIO, WHATSAPP, fake_providers  # noqa: F401 (a fixture)
from tests.integration.test_outbound import (  # noqa: F401 (fixtures)
    CLOUD_CUSTOMER,
    PHONE_NUMBER_ID,
    SUPPORT,
    TELEGRAM_CHAT,
    app,
    email_from,
    fake,
    pump,
    sent_emails,
)
from tests.integration.test_self_service import _use
from tests.support import (
    connect_agent,
    create_agent,
    drain,
    fixture,
    offers_to,
    post_meta,
    post_telegram,
    post_twilio,
    stored_messages,
)

ON = """
queues:
  default:
    self_service: {channels: [webchat, sms, whatsapp, telegram, email], languages: [en, de]}
rules:
  - name: everything
    queue: default
"""


@pytest.fixture
def agent(app, monkeypatch):  # noqa: F811
    """Ada takes WhatsApp, Telegram and e-mail; self-service answers first on them."""
    _use(monkeypatch, ON)
    create_agent(app, "ada", capacity=2, channels=("whatsapp", "telegram", "email"))
    connection = connect_agent(app, "ada")
    drain(app)
    return connection


def _bot_messages() -> list[dict[str, Any]]:
    return [m for m in stored_messages() if m["direction"] == "outbound" and m.get("author") == "bot"]


def _conversation() -> str:
    [conversation] = {m["conversation_id"] for m in stored_messages()}
    return str(conversation)


def _assert_handed_over(conversation: str, agent: str) -> None:
    contact = routing_store.get_contact(conversation)
    assert contact is not None, "handed over: routed"
    assert [o["conversation_id"] for o in offers_to(agent)] == [conversation]
    handed_over_at = max(m["received_at"] for m in stored_messages() if m["direction"] == "inbound")
    assert contact.enqueued_at == handed_over_at, "the SLA clock starts at the hand-over"


def _assert_solved(conversation: str, agent: str) -> None:
    assert routing_store.get_contact(conversation) is None and offers_to(agent) == []
    meta_item = conversations.get_conversation(conversation) or {}
    assert (meta_item.get("status"), meta_item.get("wrap_up")) == ("closed", "self_service")


# --- WhatsApp (Cloud API) ---------------------------------------------------------------------------


def _whatsapp(client, n: int, text: str | None = None, tap: tuple[str, str] | None = None) -> None:
    """The customer writes (or taps a reply button) on WhatsApp: Meta's signed webhook, sent now."""
    name = "whatsapp_interactive_button_reply.json" if tap else "whatsapp_text.json"
    document = json.loads(fixture(f"meta/{name}"))
    [message] = document["entry"][0]["changes"][0]["value"]["messages"]
    message.update(timestamp=str(int(time.time())), id=f"wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhgg{n:032d}")
    if tap:
        message["interactive"]["button_reply"] = {"id": tap[0], "title": tap[1]}
    else:
        message["text"]["body"] = text
    assert post_meta(client, json.dumps(document).encode()).status_code == 200
    drain(client)
    pump(client)


def test_whatsapp_gets_the_short_answer_as_an_interactive_message_with_two_reply_buttons(app, fake, agent):  # noqa: F811
    _whatsapp(app, 1, "What are your opening hours?")

    [request] = fake.sent(WHATSAPP)
    assert request.path == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    sent = request.json
    assert (sent["type"], sent["to"], sent["interactive"]["type"]) == (
        "interactive",
        CLOUD_CUSTOMER.removeprefix("+"),
        "button",
    )
    assert "text" not in sent
    body = sent["interactive"]["body"]["text"]
    assert len(body) <= 1024 and body.endswith("Did this solve it?") and "10:00" in body
    assert sent["interactive"]["action"]["buttons"] == [
        {"type": "reply", "reply": {"id": SOLVED_CHOICE, "title": "Yes"}},
        {"type": "reply", "reply": {"id": HAND_OVER_CHOICE, "title": "Talk to a person"}},
    ]
    [bot] = _bot_messages()
    assert (
        bot["text"] == body
        and bot["status"] == "sent"
        and bot["provider_message_id"] == request.answer["messages"][0]["id"]
    )
    assert routing_store.get_contact(_conversation()) is None and offers_to(agent) == [], "held back"


def test_a_tap_on_the_solved_button_closes_it_whatever_its_title_says(app, fake, agent):  # noqa: F811
    _whatsapp(app, 1, "What are your opening hours?")
    _whatsapp(app, 2, tap=(SOLVED_CHOICE, "Super, danke"))  # the id decides, not the title
    _assert_solved(_conversation(), agent)
    _whatsapp(app, 2, tap=(SOLVED_CHOICE, "Super, danke"))  # Meta redelivers the tap: nothing more happens
    _assert_solved(_conversation(), agent)
    assert len(fake.sent(WHATSAPP)) == 1


def test_a_tap_on_talk_to_a_person_hands_over_even_titled_yes(app, fake, agent):  # noqa: F811
    _whatsapp(app, 1, "What are your opening hours?")
    _whatsapp(app, 2, tap=(HAND_OVER_CHOICE, "Yes"))
    conversation = _conversation()
    _assert_handed_over(conversation, agent)
    texts = [m["text"] for m in sorted(stored_messages(), key=lambda m: m["received_at"])]
    assert texts[0] == "What are your opening hours?" and texts[-1] == "Yes"
    assert any(t.endswith("Did this solve it?") for t in texts), "the agent sees the bot's answer"


def test_a_german_customer_gets_german_buttons_that_fit_whatsapps_20_characters(app, fake, agent):  # noqa: F811
    _whatsapp(app, 1, "Wann habt ihr geöffnet?")
    [request] = fake.sent(WHATSAPP)
    interactive = request.json["interactive"]
    assert interactive["body"]["text"].endswith("Hat Ihnen das geholfen?")
    assert [b["reply"]["title"] for b in interactive["action"]["buttons"]] == ["Ja", "Mit Person sprechen"]
    _whatsapp(app, 2, text="nein")  # typed instead of tapped: hands over too
    _assert_handed_over(_conversation(), agent)


def test_whatsapp_through_twilio_has_no_buttons_so_it_asks_for_1_or_2(app, fake, agent):  # noqa: F811
    form = dict(parse_qsl(fixture("twilio/inbound_whatsapp_profile_name.txt").decode()))
    sid = "SM" + "c1" * 16
    form.update(Body="What are your opening hours?", MessageSid=sid, SmsSid=sid, SmsMessageSid=sid)
    assert post_twilio(app, "/webhooks/twilio/messaging", urlencode(form).encode()).status_code == 200
    drain(app)
    pump(app)
    [request] = fake.sent(TWILIO)
    [bot] = _bot_messages()
    assert request.form["Body"] == bot["text"] + "\n\nReply 1 if this solved it, 2 to talk to a person."
    assert request.form["To"].startswith("whatsapp:")

    sid = "SM" + "c2" * 16
    form.update(Body="1", MessageSid=sid, SmsSid=sid, SmsMessageSid=sid)
    assert post_twilio(app, "/webhooks/twilio/messaging", urlencode(form).encode()).status_code == 200
    drain(app)
    _assert_solved(_conversation(), agent)


def test_the_fake_meta_refuses_buttons_meta_would_refuse_and_the_send_fails_for_good(app, fake):  # noqa: F811
    destination = Destination("whatsapp", "whatsapp", f"phone#{CLOUD_CUSTOMER}", "447700900123", PHONE_NUMBER_ID)
    with pytest.raises(ProviderRejected) as caught:
        meta.send(destination, "Did this solve it?", "out_1", buttons=(Button("a", "A title far too long here"),))
    assert "131009" in caught.value.error
    [refused] = fake.requests
    assert refused.status == 400
    error = refused.answer["error"]
    assert (error["code"], error["message"], error["type"]) == (
        131009,
        "(#131009) Parameter value is not valid",
        "OAuthException",
    )
    assert error["error_data"]["details"] == "Button title length invalid. Min length: 1, Max length: 20"

    def refused_because(text: str, *buttons: tuple[str, str]) -> str:
        """What the fake Meta says to an interactive message sent as is (our sender keeps to Meta's limits)."""
        document = {
            "messaging_product": "whatsapp",
            "to": "447700900123",
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": {"text": text},
                "action": {"buttons": [{"type": "reply", "reply": {"id": i, "title": t}} for i, t in buttons]},
            },
        }
        answer = requests.post(
            f"{fake.base_url}/v21.0/{PHONE_NUMBER_ID}/messages",
            json=document,
            headers={"Authorization": f"Bearer {META_ACCESS_TOKEN}"},
            timeout=5,
        )
        if answer.status_code == 200:
            return ""
        assert answer.status_code == 400 and answer.json()["error"]["code"] == 131009
        return str(answer.json()["error"]["error_data"]["details"])

    assert "buttons count" in refused_because("Pick one", *((str(n), f"Choice {n}") for n in range(4)))
    assert "buttons count" in refused_because("Pick one")
    assert "body text length" in refused_because("x" * 1025, ("a", "Yes"))
    assert "not unique" in refused_because("Pick", ("a", "Yes"), ("b", "Yes"))
    assert "id length" in refused_because("Pick", (" a", "Yes"))
    assert refused_because("x" * 1024, ("a", "Yes"), ("b", "Mit Person sprechen"), ("c", "No")) == ""


# --- Telegram ---------------------------------------------------------------------------------------


def _telegram(client, update_id: int, text: str | None = None, data: str | None = None) -> dict:
    if data is not None:
        document = json.loads(fixture("telegram/callback_query.json"))
        document["callback_query"]["data"] = data
        document["callback_query"]["id"] = f"22306471958430{update_id}"
    else:
        document = json.loads(fixture("telegram/message_text.json"))
        document["message"].update(text=text, date=int(time.time()), message_id=400 + update_id)
    document["update_id"] = 734290000 + update_id
    answer = post_telegram(client, json.dumps(document).encode())
    assert answer.status_code == 200
    drain(client)
    pump(client)
    return json.loads(answer.body)


def test_telegram_gets_reply_1_or_2_with_an_inline_keyboard_and_a_tap_on_1_closes_it(app, fake, agent):  # noqa: F811
    _telegram(app, 1, "What are your opening hours?")
    [request] = fake.sent(TELEGRAM)
    [bot] = _bot_messages()
    assert request.json["chat_id"] == TELEGRAM_CHAT and request.json["text"] == bot["text"]
    assert bot["text"].endswith("Reply 1 if this solved it, 2 to talk to a person.")
    assert request.json["reply_markup"] == {
        "inline_keyboard": [[{"text": "Yes", "callback_data": "1"}, {"text": "Talk to a person", "callback_data": "2"}]]
    }
    assert routing_store.get_contact(_conversation()) is None, "held back"

    tapped = _telegram(app, 2, data="1")
    # The tap is answered in the webhook's reply, so the button stops spinning on the customer's phone.
    assert tapped == {"method": "answerCallbackQuery", "callback_query_id": "223064719584302"}
    _assert_solved(_conversation(), agent)
    assert _telegram(app, 2, data="1") == tapped, "Telegram's retry of the tap is answered again, stored once"
    _assert_solved(_conversation(), agent)


@pytest.mark.parametrize(("reply", "tapped"), [("2", True), ("2", False), ("no", False)])
def test_on_telegram_2_or_no_hands_over(app, fake, agent, reply, tapped):  # noqa: F811
    _telegram(app, 1, "What are your opening hours?")
    _telegram(app, 2, data=reply) if tapped else _telegram(app, 2, text=reply)
    _assert_handed_over(_conversation(), agent)


def test_the_fake_telegram_refuses_a_bad_inline_keyboard(app, fake):  # noqa: F811
    from chalicelib.outbound import telegram

    destination = Destination("telegram", "telegram", f"telegram#{TELEGRAM_CHAT}", str(TELEGRAM_CHAT))
    with pytest.raises(ProviderRejected) as caught:
        telegram.send(destination, "Pick", "out_1", buttons=(Button("x" * 65, "Yes"),))
    assert caught.value.error == "Bad Request: BUTTON_DATA_INVALID"


# --- e-mail -----------------------------------------------------------------------------------------


def _email(client, n: int, **changes: str) -> None:
    email_from(client, **{"Message-Id": f"<CAF3kX9m2Q+n{n}@mail.gmail.com>", **changes})
    drain(client)
    pump(client)


QUOTE = (
    "\n\nOn Wed, 2 Dec 2026 at 10:02, Acme Support <support@acme-shop.example> wrote:\n"
    "> Opening hours of our shop and customer service\n> Reply YES if this solved it\n"
)


def test_email_gets_the_whole_article_threaded_under_the_customers_subject(app, fake, agent):  # noqa: F811
    _email(app, 1, subject="Opening hours", **{"stripped-text": "When are you open on Saturdays?"})
    [answer] = sent_emails()
    [bot] = _bot_messages()
    assert answer["Subject"] == "Re: Opening hours" and answer["To"] == "ada.lovelace@example.com"
    assert answer["From"] == SUPPORT and answer["In-Reply-To"] == "<CAF3kX9m2Q+n1@mail.gmail.com>"
    assert answer.get_content().replace("\r\n", "\n").strip() == bot["text"], "plain text: the message as stored"
    title, _, rest = bot["text"].partition("\n\n")
    assert "opening hours" in title.lower() and "Saturday" in rest, "the article's title, then its whole text"
    assert bot["text"].endswith("Reply YES if this solved it, or reply with anything else to talk to a person.")
    assert routing_store.get_contact(_conversation()) is None and offers_to(agent) == [], "held back"


def test_an_email_reply_yes_above_the_quoted_answer_closes_it_solved(app, fake, agent):  # noqa: F811
    _email(app, 1, subject="Opening hours", **{"stripped-text": "When are you open on Saturdays?"})
    our_id = sent_emails()[0]["Message-ID"]
    _email(
        app,
        2,
        subject="Re: Opening hours",
        **{"In-Reply-To": our_id, "stripped-text": "", "body-plain": "Yes, thanks!\r\n\r\nAda" + QUOTE},
    )
    _assert_solved(_conversation(), agent)


def test_an_email_reply_with_anything_else_hands_over(app, fake, agent):  # noqa: F811
    _email(app, 1, subject="Opening hours", **{"stripped-text": "When are you open on Saturdays?"})
    our_id = sent_emails()[0]["Message-ID"]
    reply = "No, I meant the warehouse pick-up counter, is that open on Saturdays too?" + QUOTE
    _email(app, 2, subject="Re: Opening hours", **{"In-Reply-To": our_id, "stripped-text": "", "body-plain": reply})
    _assert_handed_over(_conversation(), agent)
    assert len(sent_emails()) == 1, "no second bot answer"
