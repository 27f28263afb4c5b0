"""The bot's answer in each channel's form: WhatsApp's interactive reply buttons (Meta's limits), Telegram's
"reply 1 or 2" with an inline keyboard, e-mail's plain answer with the whole article; in English and German. And
how a reply is read: a WhatsApp tap by its button id, an e-mail by its first own line only."""

from __future__ import annotations

import pytest

from chalicelib import selfservice
from chalicelib.kb.index import Hit
from chalicelib.selfservice import HAND_OVER_CHOICE, SOLVED_CHOICE, answer_form, says_solved

BODY = "Our **shop** is open Monday to Friday 10:00-19:00.\n\nCustomer service answers by chat and e-mail. " * 3
SHORT = "Mon-Fri 10:00-19:00, Sat 10:00-18:00."


def _hit(language: str = "en", short: str | None = SHORT, body: str = BODY) -> Hit:
    return Hit("opening-hours", "Opening hours", 3.2, 0.9, body, short, language)


@pytest.mark.parametrize("language", ["en", "de"])
def test_whatsapp_answers_with_two_reply_buttons_within_metas_limits(language):
    form = answer_form(_hit(language), "whatsapp")
    assert form.text.startswith(SHORT) and len(form.text) <= 1024
    assert form.text.endswith(selfservice._ASK[language])
    assert [b["id"] for b in form.buttons] == [SOLVED_CHOICE, HAND_OVER_CHOICE]
    titles = [b["title"] for b in form.buttons]
    assert all(1 <= len(title) <= 20 for title in titles) and len(set(titles)) == 2
    assert titles == (["Yes", "Talk to a person"] if language == "en" else ["Ja", "Mit Person sprechen"])
    assert form.choices == (), "no widget buttons off web chat"
    # Sent through Twilio's WhatsApp (no reply buttons there), the customer is asked for 1 or 2 instead.
    assert form.otherwise == selfservice._REPLY_WITH[language]


def test_whatsapp_without_a_short_answer_cuts_the_text_to_fit_the_1024_character_body():
    form = answer_form(_hit(short=None, body="Word " * 600), "whatsapp")
    assert len(form.text) <= 1024 and form.text.startswith("Word Word") and "…" in form.text


@pytest.mark.parametrize("language", ["en", "de"])
def test_telegram_asks_for_1_or_2_and_offers_them_as_an_inline_keyboard(language):
    form = answer_form(_hit(language), "telegram")
    assert form.text == f"{SHORT}\n\n{selfservice._REPLY_WITH[language]}"
    assert [b["id"] for b in form.buttons] == ["1", "2"], "callback data: what a typed reply would say"
    assert all(b["title"] for b in form.buttons)


@pytest.mark.parametrize(
    ("language", "line"),
    [
        ("en", "Reply YES if this solved it, or reply with anything else to talk to a person."),
        ("de", "Antworten Sie JA, wenn das Ihre Frage beantwortet hat, oder mit etwas anderem, um mit einer Person"),
    ],
)
def test_email_is_a_plain_answer_with_the_whole_article(language, line):
    form = answer_form(_hit(language), "email")
    assert form.text.startswith("Opening hours\n\n" + BODY.strip())
    assert line in form.text
    assert form.buttons == () and form.choices == ()


def test_web_chat_and_sms_keep_their_forms():
    assert answer_form(_hit(), "webchat").choices == ("Yes", "Talk to a person")
    sms = answer_form(_hit("de"), "sms")
    assert sms.text.endswith("Antworten Sie 1, wenn das geholfen hat, oder 2 für eine Person.") and not sms.buttons


def test_a_whatsapp_tap_is_read_by_its_button_id_not_its_title():
    assert says_solved("Ja", "whatsapp", choice=SOLVED_CHOICE)
    assert says_solved("anything the title became", "whatsapp", choice=SOLVED_CHOICE)
    assert not says_solved("Yes", "whatsapp", choice=HAND_OVER_CHOICE)
    assert not says_solved("Yes", "whatsapp", choice="some-other-button"), "another button: not ours to read"
    assert says_solved("1", "whatsapp") and not says_solved("2", "whatsapp"), "typed, after Twilio's 1-or-2"


def test_telegram_reads_1_and_2():
    assert says_solved("1", "telegram") and not says_solved("2", "telegram")


QUOTED = "\n\nOn Mon, 23 Nov 2026 at 10:02, Acme Support <support@acme-shop.example> wrote:\n> Did this solve it?\n"


@pytest.mark.parametrize(
    ("reply", "solved"),
    [
        ("YES", True),
        ("yes" + QUOTED, True),
        ("Yes, thanks!\n\nAnna\nSent from my phone" + QUOTED, True),
        ("Hi,\n\nyes it did, thank you." + QUOTED, True),
        ("Hello Acme,\r\nYES\r\n" + QUOTED, True),
        ("Hi there, my parcel is still missing.", False),
        ("ja\n\n> Antworten Sie JA, wenn ...", True),
        ("> YES\n\nNo, that is not my question" + QUOTED, False),
        ("No" + QUOTED, False),
        ("Yes, but where is my parcel?", False),
        ("Yes but it did not arrive", False),
        ("\n\n" + QUOTED, False),
        ("I want to talk to a person.\nyes", False),
    ],
)
def test_an_email_reply_is_read_from_its_first_own_line(reply, solved):
    assert says_solved(reply, "email") is solved


@pytest.mark.parametrize("channel", ["webchat", "sms", "whatsapp", "telegram", "email"])
def test_every_shipped_article_fits_every_channels_limits(channel):
    from chalicelib.kb.articles import DEFAULT_DIR, load_base
    from chalicelib.outbound.senders import MAX_TEXT

    base = load_base(DEFAULT_DIR)
    assert {a.language for a in base.articles} == {"en", "de"}
    for article in base.articles:
        hit = Hit(article.article_id, article.title, 1.0, 1.0, article.body, article.short_answer, article.language)
        form = answer_form(hit, channel)
        assert 0 < len(form.text) <= MAX_TEXT[channel], article.article_id
        if channel == "whatsapp":
            assert len(form.text) <= 1024 and 1 <= len(form.buttons) <= 3, article.article_id
            assert all(1 <= len(b["title"]) <= 20 and 1 <= len(b["id"]) <= 256 for b in form.buttons)
            assert len(form.text) + len(f"\n\n{form.otherwise}") <= MAX_TEXT["sms"], "through Twilio too"
        if channel == "telegram":
            assert all(1 <= len(b["id"].encode()) <= 64 for b in form.buttons), "callback_data: 1-64 bytes"
