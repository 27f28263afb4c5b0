"""Twilio's voice REST API, the few requests the app makes: place a call, move a queued caller, hang up, fetch a
recording's audio.

``{TWILIO_API_BASE}/2010-04-01/Accounts/{AccountSid}/...``, form-encoded, HTTP Basic as the Messages sender
authenticates (``outbound.twilio.rest_credentials``: the API key when set, else ``AccountSid:AuthToken``).
Errors are JSON ``{"code", "message", "more_info", "status"}``; 20404 (a call that left the queue, a participant
gone) is ``Gone``: the thing asked for has already happened or cannot any more.
Sources: https://www.twilio.com/docs/voice/api/call-resource, https://www.twilio.com/docs/voice/api/member-resource.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

import requests

from chalicelib.outbound.senders import (
    CONNECT_TIMEOUT_SECONDS,
    READ_TIMEOUT_SECONDS,
    ProviderUnavailable,
    _session,
    final_by_status,
    post,
    unavailable_or_rejected,
)
from chalicelib.outbound.twilio import rest_credentials
from chalicelib.settings import get_settings

PROVIDER = "twilio"
API_VERSION = "2010-04-01"
CALL_EVENTS = ("initiated", "ringing", "answered", "completed")


class Gone(Exception):
    """Twilio's 20404: the call, queue member or participant is not there (any more)."""


def _account() -> tuple[str, str, tuple[str, str]]:
    settings = get_settings()
    account_sid = settings.twilio_account_sid
    if not account_sid:
        raise ProviderUnavailable(PROVIDER, "TWILIO_ACCOUNT_SID is not set")
    base = f"{settings.twilio_api_base}/{API_VERSION}/Accounts/{quote(account_sid, safe='')}"
    return account_sid, base, rest_credentials(account_sid)


def _post(path: str, form: Sequence[tuple[str, str]]) -> dict[str, object]:
    _sid, base, auth = _account()
    answer = post(PROVIDER, base + path, data=list(form), auth=auth)
    body = answer.body if isinstance(answer.body, dict) else {}
    if answer.ok:
        return body
    code, message = body.get("code"), body.get("message")
    if code == 20404:
        raise Gone(f"{code}: {message}")
    error = f"{code}: {message}" if code and message else str(message or code or f"HTTP {answer.status}")
    raise unavailable_or_rejected(PROVIDER, answer, error, final_by_status(answer.status))


def create_call(*, to: str, from_: str, url: str, status_callback: str, timeout: int) -> str:
    """Place a call whose TwiML is at ``url``; its status callbacks (every event) go to ``status_callback``."""
    form = [
        ("To", to),
        ("From", from_),
        ("Url", url),
        ("Method", "POST"),
        ("StatusCallback", status_callback),
        ("StatusCallbackMethod", "POST"),
        *(("StatusCallbackEvent", event) for event in CALL_EVENTS),
        ("Timeout", str(max(1, min(600, timeout)))),
    ]
    sid = _post("/Calls.json", form).get("sid")
    if not isinstance(sid, str) or not sid:
        raise ProviderUnavailable(PROVIDER, "a created call without a sid")
    return sid


def dequeue(queue_sid: str, call_sid: str, url: str) -> None:
    """Take the caller out of the queue and run the TwiML at ``url`` on their call (``Gone``: not queued)."""
    path = f"/Queues/{quote(queue_sid, safe='')}/Members/{quote(call_sid, safe='')}.json"
    _post(path, [("Url", url), ("Method", "POST")])


def redirect(call_sid: str, url: str) -> None:
    """Run the TwiML at ``url`` on a live call (``Gone``: the call ended)."""
    _post(f"/Calls/{quote(call_sid, safe='')}.json", [("Url", url), ("Method", "POST")])


def update_participant(conference_sid: str, who: str, form: Sequence[tuple[str, str]]) -> dict[str, object]:
    """Change a conference participant (``Hold``/``HoldUrl``, ``Muted``); ``who`` is its CallSid or its label,
    as Twilio accepts either (``Gone``: not in the conference any more).
    Source: https://www.twilio.com/docs/voice/api/conference-participant-resource#update-a-participant-resource.
    """
    path = f"/Conferences/{quote(conference_sid, safe='')}/Participants/{quote(who, safe='')}.json"
    return _post(path, form)


def end_call(call_sid: str) -> None:
    """Hang up a live call (``Status=completed``; ``Gone``: it ended already)."""
    _post(f"/Calls/{quote(call_sid, safe='')}.json", [("Status", "completed")])


def add_participant(
    conference_sid: str, *, to: str, from_: str, label: str, timeout: int, status_callback: str | None = None
) -> str:
    """Call ``to`` into the conference (``client:<identity>`` rings a softphone) as participant ``label``; its
    CallSid. The new participant neither starts nor ends the conference. ``status_callback`` hears the call's end
    (``completed``, whose ``CallStatus`` says busy, no-answer... for a call that never joined: a declined consult
    sends no conference event).
    Source: https://www.twilio.com/docs/voice/api/conference-participant-resource#create-a-participant-agent-conference-only.
    """
    form = [
        ("To", to),
        ("From", from_),
        ("Label", label),
        ("StartConferenceOnEnter", "true"),
        ("EndConferenceOnExit", "false"),
        ("Beep", "false"),
        ("Timeout", str(max(5, min(600, timeout)))),
    ]
    if status_callback:
        form += [
            ("StatusCallback", status_callback),
            ("StatusCallbackMethod", "POST"),
            ("StatusCallbackEvent", "completed"),
        ]
    sid = _post(f"/Conferences/{quote(conference_sid, safe='')}/Participants.json", form).get("call_sid")
    if not isinstance(sid, str) or not sid:
        raise ProviderUnavailable(PROVIDER, "an added participant without a call_sid")
    return sid


class MediaTooLarge(Exception):
    """A recording bigger than the caller can pass on; ``size`` as far as it was read or announced."""

    def __init__(self, size: int) -> None:
        super().__init__(f"{size} bytes")
        self.size = size


def recording_mp3(recording_sid: str, max_bytes: int) -> bytes:
    """A recording's MP3, with the account's credentials (Twilio asks for them when "HTTP Basic Authentication
    for media" is on, the default for new accounts). ``Gone``: no such recording (deleted); ``MediaTooLarge``
    past ``max_bytes``. Twilio may redirect to its media store; ``requests`` drops the credentials on the way.
    Source: https://www.twilio.com/docs/voice/api/recording#fetch-a-recording-media-file.
    """
    _sid, base, auth = _account()
    url = f"{base}/Recordings/{quote(recording_sid, safe='')}.mp3"
    try:
        response = _session(PROVIDER).get(
            url, auth=auth, stream=True, timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS)
        )
    except requests.RequestException as exc:
        raise ProviderUnavailable(PROVIDER, f"cannot reach the API: {type(exc).__name__}") from None
    with response:
        if response.status_code == 404:
            raise Gone(f"recording {recording_sid} not found")
        if response.status_code != 200:
            raise ProviderUnavailable(PROVIDER, f"HTTP {response.status_code} for the recording")
        announced = response.headers.get("Content-Length", "")
        if announced.isdigit() and int(announced) > max_bytes:
            raise MediaTooLarge(int(announced))
        media = bytearray()
        for chunk in response.iter_content(chunk_size=64 * 1024):
            media += chunk
            if len(media) > max_bytes:
                raise MediaTooLarge(len(media))
        return bytes(media)
