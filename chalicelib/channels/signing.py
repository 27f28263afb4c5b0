"""Signature checks shared by the channels that sign with an HMAC over the raw body."""

from __future__ import annotations

import base64
import hashlib
import hmac

from chalicelib.errors import Unauthenticated


def sign_sha256(secret: str, body: bytes) -> str:
    """The ``sha256=<hex>`` signature of ``body`` under ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_sha256(secret: str, body: bytes, header_name: str, header_value: str | None) -> None:
    """Raise ``Unauthenticated`` unless ``header_value`` is the HMAC-SHA256 of ``body`` (constant-time compare)."""
    if not header_value:
        raise Unauthenticated(f"missing {header_name} header")
    if not header_value.startswith("sha256="):
        raise Unauthenticated(f"{header_name} must look like sha256=<hex digest>")
    expected = sign_sha256(secret, body)
    if not hmac.compare_digest(expected.encode(), header_value.strip().encode()):
        raise Unauthenticated(f"{header_name} does not match the request body")


def sign_twilio(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """``X-Twilio-Signature`` of a form post to ``url``: base64 HMAC-SHA1 of the URL, then each name+value sorted.

    What Twilio sends (and ``chalicelib.channels.twilio`` checks); the demo signs its calls with it.
    """
    data = url + "".join(name + value for name, value in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def sign_mailgun(signing_key: str, timestamp: str, token: str) -> str:
    """Mailgun's webhook ``signature`` field: hex HMAC-SHA256 of ``timestamp + token`` under the signing key."""
    return hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
