"""E-mail parsing shared by the e-mail channels: real-looking raw messages in, the customer's new words out."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.channels import mime
from chalicelib.conversations.models import EmailThread, Identity

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "email"


def _parse(name: str) -> mime.ParsedEmail:
    return mime.parse((FIXTURES / name).read_bytes())


def test_a_first_message_gives_sender_subject_text_and_its_own_id():
    email = _parse("plain_first.eml")
    assert email.sender == Identity("email", "ada.lovelace@example.com")  # case-folded
    assert email.name == "Ada Lovelace"
    assert email.subject == "Order 1234 has not arrived"
    assert email.text == (
        "Hello,\n\nI ordered a bike on 20 October (order 1234) and it still hasn\u2019t arrived. "
        "Could you check where it is?\n\nThanks,\nAda"
    )  # quoted-printable soft break joined; the "-- " signature gone
    assert email.thread == EmailThread(message_id="<CAF3kX9m2Q+order1234@mail.gmail.com>")
    assert email.sent_at == "2025-11-03T09:58:04.000000Z"
    assert email.attachments == ()


def test_a_gmail_reply_loses_the_attribution_and_quoted_lines_and_keeps_its_thread():
    email = _parse("gmail_reply.eml")
    assert (
        email.text == "Thanks! The tracking number works now.\n\nOne more question: can I change the delivery address?"
    )
    assert "Tracking: 1Z999" not in email.text
    assert email.thread.message_id == "<CAF3kX9nR7+reply2@mail.gmail.com>"
    assert email.thread.in_reply_to == "<0100019a4f2b-agent-reply-1@email.amazonses.com>"
    assert email.thread.references == (
        "<CAF3kX9m2Q+order1234@mail.gmail.com>",
        "<0100019a4f2b-agent-reply-1@email.amazonses.com>",
    )
    assert email.thread.earlier[0] == "<0100019a4f2b-agent-reply-1@email.amazonses.com>"
    assert email.attachments == ()  # the HTML alternative is the same body, not a file


def test_an_outlook_reply_loses_the_header_block_and_everything_below_it():
    email = _parse("outlook_reply.eml")
    assert (
        email.text == "Hi Grace,\n\nYes, the serial number is SN-4471-B. Photos to follow.\n\nBest regards,\nMargaret"
    )
    assert email.name == "Hamilton, Margaret"
    assert email.sender == Identity("email", "margaret.hamilton@contoso.example")
    assert email.thread.references[-1] == "<0100019a5c77-agent-reply-7@email.amazonses.com>"  # folded header


def test_html_only_mail_is_turned_into_text_without_scripts_styles_or_quotes():
    email = _parse("html_only.eml")
    assert email.text.startswith("Bonjour,\n\nI would like to return the helmet & the gloves from order 5678.")
    assert "Helmet, size M" in email.text and "Gloves, size L" in email.text
    assert email.text.endswith("Merci !")
    for hidden in ("console.log", "color: #333", "Newsletter template", "has shipped"):
        assert hidden not in email.text
    assert email.subject == "Retour d\u2019article"  # RFC 2047 decoded
    assert email.name == "Zo\u00eb Martin"


def test_a_pdf_attachment_is_listed_with_its_decoded_size_and_no_url():
    email = _parse("pdf_attachment.eml")
    assert email.text == "Please find the invoice attached; the VAT number is wrong."
    [attachment] = email.attachments
    assert attachment.content_type == "application/pdf"
    assert attachment.filename == "invoice-9012.pdf"
    assert attachment.size == 148  # bytes after base64 decoding, not the encoded length
    assert attachment.url is None


def test_an_iso_8859_1_message_is_decoded_body_subject_and_name():
    email = _parse("latin1.eml")
    assert email.text == (
        "Bonjour,\n\nLe v\u00e9lo est arriv\u00e9 ab\u00eem\u00e9 : la fourche est tordue.\n"
        "Merci de me r\u00e9pondre rapidement.\n\nFran\u00e7ois"
    )
    assert email.subject == "V\u00e9lo ab\u00eem\u00e9"
    assert email.name == "Fran\u00e7ois Ch\u00e9rin"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Yes please.\n\n-----Original Message-----\nFrom: Acme\nSent: today\n\nOld text", "Yes please."),
        ("Yes please.\n\nFrom: Acme <a@acme.example>\nDate: 6 Nov 2025\nSubject: Hi\n\nOld", "Yes please."),
        ("Ja.\n\nAm 03.11.2025 um 10:02 schrieb Acme <a@acme.example>:\n> Alt", "Ja."),
        ("Oui.\n\nLe lun. 3 nov. 2025 \u00e0 10:02, Acme <a@acme.example> a \u00e9crit :\n> Ancien", "Oui."),
        ("Answer one.\n> question two?\nAnswer two.", "Answer one.\nAnswer two."),  # interleaved reply
        ("Thanks\n--\nAda\nAnalytical Engines", "Thanks"),  # "-- " with its space trimmed by the client
        ("On Monday the parcel came, but the box was wet.", "On Monday the parcel came, but the box was wet."),
        (
            "From: my experience, the size runs small.\nCan I swap it?",
            "From: my experience, the size runs small.\nCan I swap it?",
        ),
    ],
)
def test_quote_stripping(text, expected):
    assert mime.strip_quoted(text) == expected


def test_a_message_that_is_all_quote_keeps_its_text_rather_than_becoming_empty():
    assert mime.strip_quoted("> forwarded: the order number is 42") == "> forwarded: the order number is 42"


def test_threading_headers_are_normalised_to_angle_bracket_ids():
    thread = mime.thread(" abc@host ", "<p@h> (comment)", "<a@h>\r\n <b@h> junk <c@h>")
    assert thread == EmailThread(message_id="<abc@host>", in_reply_to="<p@h>", references=("<a@h>", "<b@h>", "<c@h>"))
    assert mime.normalise_message_id("not an id") is None
    assert mime.message_id_key("<abc@host>") == ("email-message-id#<abc@host>",)
    assert mime.message_id_key(None) == ()


def test_addresses_without_a_usable_e_mail_give_no_identity():
    assert mime.address("Ada <ADA@Example.com>") == (Identity("email", "ada@example.com"), "Ada")
    assert mime.address("undisclosed-recipients:;")[0] is None
    assert mime.address("")[0] is None


def test_a_message_without_any_body_or_sender_parses_to_empties():
    email = mime.parse(b"Subject: nothing\r\n\r\n")
    assert (email.sender, email.text, email.attachments, email.thread.message_id) == (None, "", (), None)


@given(st.binary(max_size=4096))
def test_arbitrary_bytes_never_raise(raw):
    email = mime.parse(raw)
    assert isinstance(email.text, str)
    assert all(a.size is None or a.size >= 0 for a in email.attachments)
