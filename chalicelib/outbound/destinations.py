"""Where a message to a customer goes, read from what that customer last sent us.

A reply leaves from the number, page, bot or address the customer wrote to, so the sending side
comes from their latest inbound message on the channel (from the identity the message goes to):

=========  =========  ==========================  ===================================================
channel    provider   ``to``                      ``sender``
=========  =========  ==========================  ===================================================
sms        twilio     +E.164                      ``To`` of their last SMS; without one, the Messaging
                                                  Service (or number) of their last Twilio message or call
whatsapp   twilio     whatsapp:+E.164             ``To`` of their last WhatsApp message through Twilio
whatsapp   whatsapp   E.164 digits (the wa_id)    ``phone_number_id`` of their last Cloud API message
messenger  messenger  PSID                        ``page_id`` (``/{page_id}/messages``)
instagram  instagram  IGSID                       ``instagram_account_id`` (sent to ``/me/messages``)
telegram   telegram   ``telegram_chat_id``        the bot
email      ses        the address                 ``EMAIL_FROM_ADDRESS``, else the address they wrote to
webchat    webchat    site/visitor                the widget
=========  =========  ==========================  ===================================================

``provider`` is also the namespace of the provider's message id: the one the status callbacks
use (``StatusUpdate.provider``). An e-mail answers the conversation's last e-mail from that
address (``In-Reply-To``), lists the conversation's e-mails in ``References`` and keeps its subject
(``Re: ...``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from chalicelib import clock
from chalicelib.errors import InvalidPayload
from chalicelib.settings import get_settings
from chalicelib.store import conversations

# Channels we can send text on, and the identity kind each one sends to.
IDENTITY_KIND = {
    "sms": "phone",
    "whatsapp": "phone",
    "email": "email",
    "telegram": "telegram",
    "messenger": "messenger",
    "instagram": "instagram",
    "webchat": "webchat",
}
MAX_REFERENCES = 20  # the nearest e-mails of the conversation: enough to thread, small enough for a header
_PAGE = 50  # inbound messages read per query; the one we need is nearly always on the first page
_REPLY_PREFIX = re.compile(r"^\s*re\s*:", re.IGNORECASE)
_SUBJECT_FROM_TEXT = 60


WHATSAPP_WINDOW_SECONDS = 24 * 3600
# Meta's Messenger and Instagram rules: a free reply within 24 hours of the person's last message (the
# standard messaging window); after that only a message tag, and for a person answering, HUMAN_AGENT:
# within 7 days of that message, for apps Meta granted the Human Agent permission.
META_MESSAGING_CHANNELS = frozenset({"messenger", "instagram"})
META_STANDARD_WINDOW_SECONDS = 24 * 3600
HUMAN_AGENT_WINDOW_SECONDS = 7 * 24 * 3600
HUMAN_AGENT_TAG = "HUMAN_AGENT"


class NoRoute(InvalidPayload):
    """Nothing we know tells us how to reach this customer there: no provider, address or sender."""

    code = "no_route"


class OutsideMessagingWindow(NoRoute):
    """The channel's provider takes no free-form message to this customer now (WhatsApp, Messenger, Instagram)."""


class OutsideMetaWindow(OutsideMessagingWindow):
    """Outside Meta's 24-hour standard messaging window (and the HUMAN_AGENT tag's 7 days, or not allowed it)."""

    def __init__(self, channel: str, *, beyond_human_agent: bool) -> None:
        name = channel.capitalize()
        if beyond_human_agent:
            why = (
                f"the customer last wrote on {name} more than 7 days ago, beyond Meta's 24-hour standard "
                "messaging window and the HUMAN_AGENT tag's 7 days: nothing can be sent there until they write "
                "again"
            )
        else:
            why = (
                f"the customer last wrote on {name} more than 24 hours ago, outside Meta's 24-hour standard "
                "messaging window: a reply cannot be sent there now. Within 7 days of their last message a human "
                "agent's reply may go with Meta's HUMAN_AGENT tag, once the Meta app has the Human Agent "
                "permission and META_HUMAN_AGENT_TAG=1 is set"
            )
        super().__init__(f"{why}; answer on another of the customer's channels (identity), or wait for them to write")


class OutsideWhatsAppWindow(OutsideMessagingWindow):
    """The customer has not written on WhatsApp in the last 24 hours: only a template may be sent."""

    def __init__(self) -> None:
        super().__init__(
            "the customer has not written on WhatsApp in the last 24 hours, outside the 24-hour customer "
            "service window: a free-form message cannot be sent: use a template"
        )


@dataclass(frozen=True)
class Destination:
    """Everything a provider call needs besides the text."""

    channel: str
    provider: str  # twilio, whatsapp (Cloud API), messenger, instagram, telegram, ses, webchat
    identity: str  # the customer's identity key: phone#+44..., email#..., telegram#...
    to: str  # the customer, as the provider addresses them
    sender: str | None = None  # our side: Twilio number or Messaging Service SID, phone_number_id, page, From
    last_inbound_at: str | None = None  # when they last wrote on this channel from this identity
    subject: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = field(default_factory=tuple)
    tag: str | None = None  # the Meta message tag it goes with (HUMAN_AGENT), outside the standard window
    automatic: bool = False  # written by no person (the bot, a place in the queue): e-mail marks it so


def default_channel(identity_key: str) -> str | None:
    """The channel a message to this identity goes on unless one is named: a phone gets an SMS."""
    kind = identity_key.partition("#")[0]
    return next((channel for channel, k in IDENTITY_KIND.items() if k == kind), None)


def resolve(
    customer_id: str,
    conversation_id: str,
    channel: str,
    identity_key: str | None = None,
    *,
    profile: dict[str, Any] | None = None,
    conversation: dict[str, Any] | None = None,
) -> Destination:
    """Where a message on ``channel`` to this customer goes; ``NoRoute`` when nothing says how to reach them.

    Without ``identity_key`` it goes to whoever last wrote in the conversation from an identity of
    the channel's kind (else in any of the customer's conversations). ``profile`` (the customer's) and
    ``conversation`` (its META item), when the caller has just read them, are not read again.
    """
    kind = IDENTITY_KIND.get(channel)
    if kind is None:
        raise NoRoute(f"messages cannot be sent to a customer on {channel}")
    if profile is None:
        profile = conversations.get_customer(customer_id) or {}
    inbound = _Inbound(customer_id, profile)
    if identity_key is None:
        found = inbound.newest(lambda m: _kind(m) == kind and m.get("conversation_id") == conversation_id)
        found = found or inbound.newest(lambda m: _kind(m) == kind)
        if found is None:
            raise NoRoute(f"the customer has never written from a {kind} identity, so there is no one to send to")
        identity_key = str(found["identity"])
    elif identity_key.partition("#")[0] != kind:
        raise NoRoute(f"{channel} messages go to a {kind} identity, not to {identity_key}")
    value = identity_key.partition("#")[2]
    last = inbound.newest(lambda m: m.get("channel") == channel and m.get("identity") == identity_key)
    base = Destination(channel, channel, identity_key, value, last_inbound_at=_written_at(last))
    if channel == "sms":
        return _sms(base, last, inbound)
    if channel == "whatsapp":
        return _whatsapp(base, last)
    if channel == "email":
        return _email(base, customer_id, conversation_id, inbound, profile, conversation)
    metadata = _metadata(last)
    if channel == "telegram":
        return replace(base, to=str(metadata.get("telegram_chat_id") or value))
    if channel == "messenger":
        return replace(base, sender=_text(metadata.get("page_id")))
    if channel == "instagram":
        return replace(base, sender=_text(metadata.get("instagram_account_id")))
    return base  # webchat: the visitor


def as_job(destination: Destination) -> dict[str, Any]:
    """The destination as an outbox job carries it (``from_job`` reads it back)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(destination).items() if v not in (None, ())}


def from_job(carried: object, message: dict[str, Any]) -> Destination | None:
    """The destination an outbox job carries for ``message``; None when it carries none, or none that fits."""
    if not isinstance(carried, dict):
        return None
    names = {f.name for f in fields(Destination)}
    try:
        found = Destination(**{k: v for k, v in carried.items() if k in names})
        found = replace(found, references=tuple(str(r) for r in found.references))
    except TypeError:
        return None
    if found.channel != message.get("channel") or found.identity != message.get("identity"):
        return None
    if not all(isinstance(v, str) for v in (found.provider, found.to)):
        return None
    return found


def for_message(message: dict[str, Any]) -> Destination:
    """Where a stored outbound message goes (its channel, and its identity when it names one)."""
    return resolve(
        str(message["customer_id"]), str(message["conversation_id"]), str(message["channel"]), message.get("identity")
    )


# --- per channel ------------------------------------------------------------------------------


def _sms(base: Destination, last: dict[str, Any] | None, inbound: _Inbound) -> Destination:
    metadata = _metadata(last)
    if (
        last is not None
        and last.get("provider") == "twilio"
        and (metadata.get("to") or metadata.get("messaging_service_sid"))
    ):
        # The number they texted is the number that answers (brief: ``To`` becomes our ``From``).
        return replace(base, provider="twilio", sender=str(metadata.get("to") or metadata["messaging_service_sid"]))
    # They never texted us: answer from the Twilio sender they know, a Messaging Service first (it picks an
    # SMS-capable number), else the number they wrote to on WhatsApp or called.
    other = inbound.newest(lambda m: m.get("provider") == "twilio" and bool(_metadata(m).get("to")))
    if other is None:
        raise NoRoute("no Twilio number of ours has heard from this customer, so no SMS can be sent from one")
    other_metadata = _metadata(other)
    sender = other_metadata.get("messaging_service_sid") or str(other_metadata["to"]).removeprefix("whatsapp:")
    return replace(base, provider="twilio", sender=str(sender))


def _whatsapp(base: Destination, last: dict[str, Any] | None) -> Destination:
    if last is None:
        raise OutsideWhatsAppWindow()
    metadata = _metadata(last)
    if last.get("provider") == "twilio":
        sender = metadata.get("to") or metadata.get("messaging_service_sid")
        if not sender:
            raise NoRoute("the customer's last WhatsApp message does not say which of our senders it went to")
        return replace(base, provider="twilio", to=f"whatsapp:{base.to}", sender=str(sender))
    phone_number_id = metadata.get("phone_number_id")
    if not phone_number_id:
        raise NoRoute("the customer's last WhatsApp message does not say which of our numbers it went to")
    return replace(base, provider="whatsapp", to=base.to.removeprefix("+"), sender=str(phone_number_id))


def _email(
    base: Destination,
    customer_id: str,
    conversation_id: str,
    inbound: _Inbound,
    profile: dict[str, Any],
    conversation: dict[str, Any] | None,
) -> Destination:
    answered = inbound.newest(
        lambda m: (
            m.get("channel") == "email"
            and m.get("identity") == base.identity
            and m.get("conversation_id") == conversation_id
        )
    )
    latest_from_them = answered or inbound.newest(
        lambda m: m.get("channel") == "email" and m.get("identity") == base.identity
    )
    sender = get_settings().email_from_address or _text(_metadata(latest_from_them).get("recipient"))
    if not sender:
        raise NoRoute("no address to send e-mail from: set EMAIL_FROM_ADDRESS")
    if conversation is None:
        conversation = conversations.get_conversation(conversation_id) or {}
    subject = (answered or {}).get("subject") or conversation.get("subject")
    in_reply_to = _text((answered or {}).get("email_message_id"))
    references = _conversation_email_ids(
        customer_id, conversation_id, str(conversation.get("created_at") or ""), profile
    )
    if in_reply_to and (not references or references[-1] != in_reply_to):
        references = (*(r for r in references if r != in_reply_to), in_reply_to)[-MAX_REFERENCES:]
    return replace(
        base,
        provider="ses",
        sender=sender,
        subject=reply_subject(subject) if subject else None,
        in_reply_to=in_reply_to,
        references=references if in_reply_to else (),
    )


def check_whatsapp_window(destination: Destination, now: str) -> None:
    """``OutsideWhatsAppWindow`` unless the customer wrote on WhatsApp, from this number, in the last 24 hours."""
    last = destination.last_inbound_at
    if last is None or clock.seconds_between(last, now) > WHATSAPP_WINDOW_SECONDS:
        raise OutsideWhatsAppWindow()


def within_window(destination: Destination, now: str, *, by_agent: bool = True) -> Destination:
    """The destination as it may be sent ``now`` (tagged HUMAN_AGENT where that is what allows it).

    Raises ``OutsideMessagingWindow`` saying what the agent can do when the provider would refuse a free-form
    message: WhatsApp after 24 hours (a template only); Messenger and Instagram after 24 hours, unless it is an
    agent's reply (``by_agent``, not an automated message) within 7 days and ``META_HUMAN_AGENT_TAG`` is on.
    """
    if destination.channel == "whatsapp":
        check_whatsapp_window(destination, now)
        return destination
    if destination.channel not in META_MESSAGING_CHANNELS:
        return destination
    last = destination.last_inbound_at
    age = None if last is None else clock.seconds_between(last, now)
    if age is not None and age <= META_STANDARD_WINDOW_SECONDS:
        return destination
    tag_allowed = by_agent and get_settings().meta_human_agent_tag
    if tag_allowed and age is not None and age <= HUMAN_AGENT_WINDOW_SECONDS:
        return replace(destination, tag=HUMAN_AGENT_TAG)
    raise OutsideMetaWindow(destination.channel, beyond_human_agent=tag_allowed)


def reply_subject(subject: str) -> str:
    """``Re: <subject>``, unless it already is one."""
    subject = " ".join(subject.split())
    return subject if _REPLY_PREFIX.match(subject) else f"Re: {subject}"


def subject_from_text(text: str) -> str:
    """A subject for an e-mail that starts a thread: the first line of what it says."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first if len(first) <= _SUBJECT_FROM_TEXT else first[: _SUBJECT_FROM_TEXT - 1].rstrip() + "…"


# --- reading the timeline -----------------------------------------------------------------------


class _Inbound:
    """A customer's inbound messages, newest first, across the partitions of merged customers.

    Read a page at a time and only as far as a question needs: the message a reply depends on is
    nearly always one of the last few.
    """

    def __init__(self, customer_id: str, profile: dict[str, Any]) -> None:
        self._partitions = [customer_id, *sorted(profile.get("merged_from", ()))]
        self._read: dict[str, list[dict[str, Any]]] = {p: [] for p in self._partitions}
        self._next: dict[str, dict[str, Any] | None] = {}

    def newest(self, accept: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        """The newest inbound message ``accept`` takes, or None."""
        found = [next((m for m in self._items(p) if accept(m)), None) for p in self._partitions]
        return max((m for m in found if m is not None), key=lambda m: str(m["sk"]), default=None)

    def _items(self, partition: str) -> Iterator[dict[str, Any]]:
        position = 0
        while True:
            read = self._read[partition]
            while position < len(read):
                yield read[position]
                position += 1
            if partition in self._next and self._next[partition] is None:
                return
            self._fetch(partition)

    def _fetch(self, partition: str) -> None:
        items, self._next[partition] = conversations.inbound_page(partition, _PAGE, self._next.get(partition))
        self._read[partition].extend(items)


def _conversation_email_ids(
    customer_id: str, conversation_id: str, since: str, profile: dict[str, Any]
) -> tuple[str, ...]:
    """Message-IDs of the conversation's e-mails, both ways, oldest first (the nearest ``MAX_REFERENCES``)."""
    partitions = [customer_id, *sorted(profile.get("merged_from", ()))]
    found = conversations.email_message_ids(partitions, conversation_id, since)
    ordered = [message_id for _, message_id in sorted(found)]
    return tuple(dict.fromkeys(ordered))[-MAX_REFERENCES:]


# --- small readers -------------------------------------------------------------------------------


def _kind(message: dict[str, Any]) -> str:
    return str(message.get("identity") or "").partition("#")[0]


def _metadata(message: dict[str, Any] | None) -> dict[str, Any]:
    metadata = (message or {}).get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def _written_at(message: dict[str, Any] | None) -> str | None:
    """When the customer wrote it: the provider's time when it says, never later than when we got it."""
    if message is None:
        return None
    times = [t for t in (message.get("sent_at"), message.get("received_at")) if isinstance(t, str) and t]
    return min(times) if times else None
