"""The console softphone's access token (Twilio's Voice JavaScript SDK) and the identity it is minted for.

The token is a Twilio access token: a JWT signed (HS256) with an API key's secret, ``iss`` the key (SK...),
``sub`` the account (AC...), and a Voice grant whose outgoing application is the TwiML App (AP...) whose Voice
URL is ``/webhooks/twilio/voice/agent`` (the browser dials the contact's conference), and incoming allowed: a
colleague's consult (``voice.controls.consult``) rings ``client:<identity>``, which Twilio delivers only to Devices
registered with a token of that identity, and a token is minted only for the signed-in agent's own identity (no one
can ring or answer for another). It lives an hour; the console renews it on the SDK's ``tokenWillExpire``.

``twilio.jwt.access_token`` is imported when a token is minted, not with this module: only ``GET /voice/token``
needs it (it imports PyJWT and nothing of the rest of the ``twilio`` package).

The Device's identity is the agent id encoded to what the Voice SDK allows (letters, digits and ``_``, at most
121 characters), reversibly, so that the TwiML App's request (``From=client:<identity>``) names its agent:

- ``ag_`` then the id with ``_`` written ``_u``, ``.`` ``_d``, ``:`` ``_c``, ``-`` ``_h`` (``ag_ada``), when that fits;
- else ``ab_`` then the id's UTF-8 in lower-case base32 without padding (an id of 64 such characters).
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from chalicelib import settings
from chalicelib.errors import Conflict

TTL_SECONDS = 3600  # Twilio allows up to 24 h and advises the shortest practical
MAX_IDENTITY = 121  # the Voice SDK's limit
_ESCAPES = {"_": "_u", ".": "_d", ":": "_c", "-": "_h"}
_UNESCAPES = {v[1]: k for k, v in _ESCAPES.items()}
_PLAIN = re.compile(r"^[A-Za-z0-9]+$")
_AGENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")  # agents/service.py's Name


def identity_of(agent_id: str) -> str:
    """The Device identity of an agent."""
    escaped = "ag_" + "".join(_ESCAPES.get(c, c) for c in agent_id)
    if len(escaped) <= MAX_IDENTITY:
        return escaped
    return "ab_" + base64.b32encode(agent_id.encode()).decode().rstrip("=").lower()


def agent_of(identity: str) -> str:
    """The agent id an identity encodes; ``ValueError`` when it encodes none."""
    scheme, _, rest = identity.partition("_")
    if scheme == "ag" and rest:
        agent_id = _unescape(rest)
    elif scheme == "ab" and rest and re.fullmatch(r"[a-z2-7]+", rest):
        try:
            agent_id = base64.b32decode(rest.upper() + "=" * (-len(rest) % 8)).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError(f"{identity!r} is not an agent's Device identity") from None
    else:
        raise ValueError(f"{identity!r} is not an agent's Device identity")
    if not _AGENT_ID.match(agent_id) or identity_of(agent_id) != identity:
        raise ValueError(f"{identity!r} is not an agent's Device identity")  # one spelling per agent
    return agent_id


def _unescape(text: str) -> str:
    out, index = [], 0
    while index < len(text):
        char = text[index]
        if char == "_":
            code = text[index + 1 : index + 2]
            if code not in _UNESCAPES:
                raise ValueError(f"{text!r}: _{code} is not an escape")
            out.append(_UNESCAPES[code])
            index += 2
        elif _PLAIN.match(char):
            out.append(char)
            index += 1
        else:
            raise ValueError(f"{text!r}: {char!r} is not allowed")
    return "".join(out)


@dataclass(frozen=True)
class VoiceToken:
    token: str
    identity: str
    expires_at: str
    ttl_seconds: int

    def as_dict(self) -> dict[str, str | int]:
        return {
            "token": self.token,
            "identity": self.identity,
            "expires_at": self.expires_at,
            "ttl_seconds": self.ttl_seconds,
        }


class TakesCallsOnPhone(Conflict):
    """The agent is set up with ``voice_mode: phone``: the app calls their phone, the console does not dial."""

    code = "phone_mode"


def for_agent(agent_id: str) -> VoiceToken:
    """The token of ``GET /voice/token``: for a softphone agent (the default), not one who takes calls on a phone."""
    from chalicelib.store import voice as voice_store

    if (voice_store.agent_phone(agent_id) or {}).get("voice_mode") == "phone":
        raise TakesCallsOnPhone(f"agent {agent_id} takes calls on their phone (voice_mode phone): no softphone token")
    return mint(agent_id)


def mint(agent_id: str) -> VoiceToken:
    """An access token for the agent's softphone; ``MissingSetting``/``MissingSecret`` (503) until voice is set up."""
    config = settings.get_settings()
    wanted = {
        "TWILIO_ACCOUNT_SID": config.twilio_account_sid,
        "TWILIO_API_KEY_SID": config.twilio_api_key_sid,
        "TWILIO_TWIML_APP_SID": config.twilio_twiml_app_sid,
    }
    missing = [name for name, value in wanted.items() if not value]
    if missing:
        raise settings.MissingSetting(" and ".join(missing) + " (the softphone's Twilio settings; README, Voice)")
    secret = settings.get_secret(settings.TWILIO_API_KEY_SECRET)
    from twilio.jwt.access_token import AccessToken
    from twilio.jwt.access_token.grants import VoiceGrant

    identity = identity_of(agent_id)
    now = int(time.time())
    token = AccessToken(
        config.twilio_account_sid,
        config.twilio_api_key_sid,
        secret,
        identity=identity,
        nbf=now,
        valid_until=now + TTL_SECONDS,  # exp from the same clock reading as nbf
    )
    token.add_grant(VoiceGrant(outgoing_application_sid=config.twilio_twiml_app_sid, incoming_allow=True))
    expires = datetime.fromtimestamp(now + TTL_SECONDS, UTC).isoformat().replace("+00:00", "Z")
    return VoiceToken(token.to_jwt(), identity, expires, TTL_SECONDS)
