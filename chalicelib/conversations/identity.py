"""Normalising what identifies a person, so the same person is the same key on every channel."""

from __future__ import annotations

import phonenumbers

from chalicelib.conversations.models import EMAIL, PHONE, Identity
from chalicelib.errors import InvalidPayload


class InvalidIdentity(InvalidPayload):
    code = "invalid_identity"


def phone(raw: str, default_region: str | None = None) -> Identity:
    """A phone identity in E.164 (``+447700900123``); ``whatsapp:`` and ``tel:`` prefixes are dropped."""
    cleaned = raw.strip().removeprefix("whatsapp:").removeprefix("tel:").strip()
    if cleaned and cleaned[0].isdigit() and default_region is None:
        cleaned = "+" + cleaned  # WhatsApp Cloud sends wa_id without the plus
    try:
        number = phonenumbers.parse(cleaned, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidIdentity(f"{raw!r} is not a phone number: {exc}") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidIdentity(f"{raw!r} is not a possible phone number")
    return Identity(PHONE, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def email(raw: str) -> Identity:
    """An e-mail identity, case-folded (``Ada@Example.COM`` and ``ada@example.com`` are one person)."""
    cleaned = raw.strip()
    if cleaned.count("@") != 1 or " " in cleaned or not cleaned.split("@")[1]:
        raise InvalidIdentity(f"{raw!r} is not an e-mail address")
    return Identity(EMAIL, cleaned.casefold())
