"""What every provider call shares: its result, its two kinds of failure, and one HTTP POST.

A failed send is one of two things, and each provider module says which:

- ``ProviderUnavailable``: it may work later. The provider is down or slow (5xx, timeout, no
  connection), limits our rate (429), or refuses our credentials (ops can fix those; the messages
  wait in the dead-letter queue to be redriven). The outbox record raises, SQS redelivers it with
  backoff, and after the queue's ``maxReceiveCount`` it lands in the dead-letter queue.
- ``ProviderRejected``: it never will, as it is: a malformed or unreachable number, a customer who
  blocked the bot, a closed messaging window. The message is marked ``failed`` with the
  provider's words, and nothing is retried.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import requests

CONNECT_TIMEOUT_SECONDS = 3.05
READ_TIMEOUT_SECONDS = 10
ERROR_CHARS = 500
# The longest text each channel takes in one message (Twilio's Body, the Graph API's, Bot API's sendMessage).
MAX_TEXT = {
    "sms": 1600,
    "whatsapp": 4096,
    "messenger": 2000,
    "instagram": 1000,
    "telegram": 4096,
    "email": 100_000,
    "webchat": 4000,
}

_session_lock = threading.Lock()
_sessions: dict[str, requests.Session] = {}


@dataclass(frozen=True)
class SendResult:
    """What the provider said when it took the message."""

    provider: str
    provider_message_id: str
    # E-mail only: the Message-ID we gave it, and every Message-ID a reply to it may name.
    email_message_id: str | None = None
    thread_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Button:
    """A reply button sent with a message: its id comes back when the customer taps it (WhatsApp's
    ``button_reply.id``, Telegram's ``callback_data``); the title is its label."""

    id: str
    title: str


class ProviderRejected(Exception):
    """The provider refused this message for good; sending it again cannot help."""

    def __init__(self, provider: str, error: str) -> None:
        super().__init__(f"{provider}: {error}")
        self.provider = provider
        self.error = error[:ERROR_CHARS]


class ProviderUnavailable(Exception):
    """The provider could not take the message now; a later attempt may succeed."""

    def __init__(self, provider: str, error: str, retry_after: int = 0) -> None:
        super().__init__(f"{provider}: {error}")
        self.provider = provider
        self.error = error[:ERROR_CHARS]
        self.retry_after = retry_after  # seconds the provider asked us to wait, 0 when it did not say


@dataclass(frozen=True)
class Answer:
    """A provider's HTTP answer: status, the JSON body when there is one, and the first of its text."""

    status: int
    body: Any
    text: str
    retry_after: int = 0

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def post(provider: str, url: str, **kwargs: Any) -> Answer:
    """POST through a kept-alive session; no answer at all (timeout, refused connection) is ``ProviderUnavailable``.

    ``kwargs`` are ``requests``' (``json``, ``data``, ``auth``, ``headers``). Nothing is retried here:
    a retry is SQS's redelivery, with backoff, after the message's claim is released.
    """
    try:
        response = _session(provider).post(url, timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS), **kwargs)
    except requests.Timeout:
        raise ProviderUnavailable(provider, "no answer in time (it may have taken the message)") from None
    except requests.RequestException as exc:
        raise ProviderUnavailable(provider, f"cannot reach the API: {type(exc).__name__}") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    return Answer(response.status_code, body, response.text[:ERROR_CHARS], _retry_after(response.headers))


def unavailable_or_rejected(provider: str, answer: Answer, error: str, final: bool) -> Exception:
    """The exception for a failed answer: ``final`` ones are rejections; the rest are worth retrying."""
    if final:
        return ProviderRejected(provider, error)
    return ProviderUnavailable(provider, error, answer.retry_after)


def final_by_status(status: int) -> bool:
    """The HTTP view: a 4xx is final, except the ones that say "later" or "not with these credentials"."""
    return 400 <= status < 500 and status not in (401, 403, 408, 409, 425, 429)


def _session(provider: str) -> requests.Session:
    found = _sessions.get(provider)
    if found is None:
        with _session_lock:
            found = _sessions.setdefault(provider, requests.Session())
    return found


def _retry_after(headers: Any) -> int:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0, int(str(value))) if value is not None else 0
    except ValueError:
        return 0  # an HTTP date: rare from these APIs; the exponential backoff covers it
