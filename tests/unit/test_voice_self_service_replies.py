"""How a caller's reply to the phone's self-service answer is read: a key, or what Twilio heard."""

from __future__ import annotations

import pytest

from chalicelib.voice.self_service import NO_REPLY, reply_text, said_solved


@pytest.mark.parametrize(
    ("digits", "speech"),
    [("1", None), (None, "Yes."), (None, "Yes, thank you."), (None, "yes please"), (None, "Ja, danke."), (None, "One")],
)
def test_one_or_a_plain_yes_is_solved(digits, speech):
    assert said_solved(digits, speech)


@pytest.mark.parametrize(
    ("digits", "speech"),
    [
        ("2", None),
        ("9", None),
        (None, "I want to talk to an agent"),
        (None, "Yes, an agent please"),
        (None, "No."),
        (None, "Nein"),
        (None, "Yes but where is my parcel"),
        (None, "Two"),
        (None, "Mitarbeiter bitte"),
        (None, "What about returns"),
        (None, ""),
        (None, None),
    ],
)
def test_anything_else_hands_over(digits, speech):
    assert not said_solved(digits, speech)


def test_the_timeline_shows_the_key_the_words_or_that_nothing_came():
    assert reply_text("2", None) == "Pressed 2"
    assert reply_text(None, "  talk to   a person ") == "talk to a person"
    assert reply_text(None, None) == NO_REPLY
