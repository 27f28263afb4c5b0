"""The outbox: what we send customers, queued in their timeline and on SQS, sent once per claim.

Queueing (``queue_reply`` for an agent's reply, ``enqueue`` for any message): the message is
written to the customer's timeline (``direction: outbound``, ``status: queued``) marked pending-send
(``pending_send``/``pending_since``, which put it in the data table's sparse ``outbox`` index), and
then a small job ``{"message_id", "conversation_id", "customer_id", "channel", "kind", "received_at"}``
(an agent's reply adds the ``destination`` it was resolved to, so sending does not read the customer's
profile and timeline again) goes on the ``switchboard-outbox`` queue (standard, with a dead-letter
queue after ``MAX_RECEIVES`` receives). This is a transactional outbox: the record is the promise, the
job only a fast path. If the job's send fails or the Lambda dies before it, ``requeue_pending`` (run
by the minute sweeper) finds the message in the index once it is ``PENDING_GRACE_SECONDS`` old and
queues its job again.
The first claim removes the mark: from then on SQS redelivers the job until it is done.

An agent's reply may carry a client idempotency key (``client_message_id``): its record
(``REPLYKEY#<conversation>#<agent>#<key>``) is written in the same transaction as the message, so
the agent's retry after any failure (even a write that succeeded but whose answer was lost) finds
the first message and answers with it instead of storing a second one.

Sending (``process_record``, the outbox Lambda's record handler) takes each job through four steps:

1. **Claim** the timeline message with one conditional update: only one that has no
   ``provider_message_id``, is ``queued``/``sending`` (or gave up earlier and was redriven), and is
   not leased to another attempt right now. The claim leases it for ``LEASE_SECONDS``.
   A job for a message that was sent already does nothing: redelivery never sends twice.
2. **Resolve** where it goes (``destinations``) and **call the provider**.
3. **Commit** in plain writes, the message's own last (``outbound.record_sent``): an e-mail records the
   Message-ID SES gave it as an ``EMAILTHREAD`` item, so the customer's answer threads back into the
   conversation; a provider that reports statuses (``REPORTS_STATUS``) gets the
   ``OUTBOUND#<provider>#<id>`` item (``store.outbound``'s shape, plus where its timeline message is)
   that lets its status callbacks find it; then one conditional update gives the timeline message
   ``provider_message_id`` and ``sent``.
4. **Fail or retry**: a final rejection (``ProviderRejected``: a bad number, 400) marks the message
   ``failed`` with the provider's error and returns; anything else releases the lease and raises,
   and ``process_record`` sets the job's visibility to ``min(900, 2**attempt * 5)`` seconds (or
   what the provider asked) so SQS redelivers it later. The last attempt also marks the message
   ``failed``; a redrive from the dead-letter queue may claim it again.

An agent's reply skips the queue (``queue_reply(send_now=True)``, what ``agents.work.reply`` asks for): it is
recorded already claimed by its request (``REQUEST_LEASE_SECONDS``, longer than an API function lives) and still
pending-send, and ``send_recorded`` sends and commits it from that request. A failed send releases the lease and
queues the job (steps 1-4 then run in the outbox Lambda); a request that dies leaves the message pending, and
the sweeper queues it once the lease and the grace are over.

What remains at-least-once (none of Twilio, the Graph API, Telegram or SES takes an idempotency
key): if the provider took the message but we never learned it (our read timed out, or the Lambda
died between the provider's answer and the commit), the next attempt after the lease sends it
again. The window is the provider call plus the commit's writes; the claim makes sure it is
never wider, and that two deliveries of one job never send concurrently.

A message may carry reply buttons (``buttons``: ``{"id", "title"}`` pairs, the self-service bot's "Yes" / "Talk to
a person"): WhatsApp's Cloud API sends them as an interactive message, Telegram as an inline keyboard; a provider
without them (WhatsApp through Twilio) gets the text with the message's ``buttons_otherwise`` ("Reply 1 or 2").

Web chat messages have no provider: "sending" one pushes it to the visitor's open widget connections
(``notify.visitors``), then it is marked ``sent`` (provider ``webchat``). A widget that was not connected reads
it from the timeline when it connects again. A failed push (other than a connection gone) is retried like a
provider's failure; the widget shows a message id once, however often it arrives.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib import clock
from chalicelib.channels.base import StatusUpdate
from chalicelib.conversations import identity as identities
from chalicelib.errors import Conflict, Forbidden, IdempotencyKeyReused, InvalidPayload, NotFound
from chalicelib.observability import redact
from chalicelib.outbound import destinations, meta, ses, telegram, twilio
from chalicelib.outbound.destinations import Destination, NoRoute, OutsideMessagingWindow
from chalicelib.outbound.senders import MAX_TEXT, Button, ProviderRejected, ProviderUnavailable, SendResult
from chalicelib.store import conversations, outbound, queue
from chalicelib.store.outbound import MessageKey, ReplyKeyTaken, Sent
from chalicelib.store.resources import MAX_RECEIVES

logger = Logger(service="switchboard", child=True)

LEASE_SECONDS = 60  # longer than a provider call can take (connect 3 s + read 10 s) with room to commit
# A reply sent from its own request is leased as it is recorded, for longer than that request can live (the API
# and WebSocket functions time out after 29 s): past it, nobody is sending it and the outbox may claim it.
REQUEST_LEASE_SECONDS = 30
MAX_BACKOFF_SECONDS = 900  # the longest wait between two attempts: 15 minutes
REPLY = "reply"
_MERGE_HOPS = 5

Sender = Callable[[Destination, str, str], SendResult]
_SENDERS: dict[str, Sender] = {
    "twilio": twilio.send,
    "whatsapp": meta.send,
    "messenger": meta.send,
    "instagram": meta.send,
    "telegram": telegram.send,
    "ses": ses.send,
}
# Providers that show a message's reply buttons: WhatsApp's Cloud API (interactive reply buttons) and Telegram (an
# inline keyboard). Elsewhere a message with buttons is sent as text with its ``buttons_otherwise``.
BUTTON_SENDERS: dict[str, Callable[..., SendResult]] = {"whatsapp": meta.send, "telegram": telegram.send}
_DONE = frozenset({"sent", "delivered", "read", "failed"})
# Providers whose status callbacks name what we sent (Twilio's, Meta's): only their messages get an OUTBOUND item.
REPORTS_STATUS = frozenset({"twilio", "whatsapp", "messenger", "instagram"})
PENDING = outbound.PENDING  # the pending-send mark of a recorded, not yet claimed message
# A pending message younger than this may still have its own job on the way: the sweeper leaves it alone.
PENDING_GRACE_SECONDS = 60
_REQUEUE_PAGE = 100  # pending messages one sweep queues at most (bounded work per minute)


class SendInProgress(Exception):
    """Another attempt holds this message's lease; this one retries after it runs out."""

    def __init__(self, message_id: str, retry_after: int) -> None:
        super().__init__(f"{message_id} is being sent by another attempt")
        self.retry_after = retry_after


# --- queueing -----------------------------------------------------------------------------------


def queue_reply(
    conversation_id: str,
    agent_id: str,
    text: str,
    identity_key: str | None,
    now: str,
    *,
    channel: str | None = None,
    client_message_id: str | None = None,
    also: Sequence[dict[str, Any]] = (),
    send_now: bool = False,
) -> dict[str, Any]:
    """Queue an agent's reply to the conversation's customer; returns the queued message.

    By default it goes on the conversation's latest channel (a call's caller gets an SMS) to whoever
    wrote there last. ``identity_key`` (``phone#+44...``, ``email#a@b.c``, ``telegram#123``) sends it
    to another identity of the same customer, on that identity's channel (a phone gets an SMS) unless
    ``channel`` names one (``whatsapp``). Raises ``InvalidPayload`` (empty or too long text, an
    identity that is not one, no way to reach them), ``Forbidden`` (another customer's identity),
    ``NotFound`` and, outside WhatsApp's, Messenger's or Instagram's messaging window, ``Conflict``:
    nothing is stored or queued then.

    ``client_message_id`` (the client's idempotency key for this message): the same key from the same
    agent on the same conversation returns the first reply and stores nothing; with another text it
    raises ``IdempotencyKeyReused``.

    ``also``: transaction actions recorded with the reply, all or nothing; their failed condition raises
    ``TransactionConflict``.

    ``send_now``: the reply is recorded already claimed by this request and sent from it (``send_recorded``),
    without the outbox queue and its Lambda; the queue takes it only when that send fails, and the sweeper
    when the request dies. Returns the message as it is then (``sent`` when the provider took it).
    """
    if client_message_id is not None:
        earlier = _earlier_reply(conversation_id, agent_id, client_message_id, text)
        if earlier is not None:
            return earlier
    text = text.strip() if isinstance(text, str) else ""
    if not text:
        raise InvalidPayload("text must not be empty", [{"field": "text", "problem": "is empty"}])
    conversation = conversations.get_conversation(conversation_id)
    if conversation is None:
        raise NotFound(f"no conversation {conversation_id}")
    customer_id, profile = _surviving_customer(str(conversation["customer_id"]))
    target = _own_identity(identity_key, customer_id) if identity_key else None
    if channel is None:
        channel = destinations.default_channel(target) if target else conversation.get("channel")
    if channel in ("voice", "voicemail"):
        channel = "sms"  # a caller is answered in writing by text message
    if not isinstance(channel, str) or channel not in destinations.IDENTITY_KIND:
        raise NoRoute(f"messages cannot be sent to a customer on {channel or target}")
    limit = MAX_TEXT[channel]
    if len(text) > limit:
        raise InvalidPayload(
            f"{channel} messages take at most {limit} characters; this one has {len(text)}",
            [{"field": "text", "problem": f"longer than {limit} characters"}],
        )
    try:
        destination = destinations.resolve(
            customer_id, conversation_id, channel, target, profile=profile, conversation=conversation
        )
        destinations.within_window(destination, now)  # WhatsApp's, Messenger's and Instagram's windows
    except OutsideMessagingWindow as exc:
        raise Conflict(exc.message) from None
    message = _outbound_message(
        conversation_id, customer_id, channel, text, REPLY, now, author=agent_id, identity=destination.identity
    )
    if send_now:
        message = _leased(message, now)
    if client_message_id is None:
        if send_now:
            outbound.record_message(message, also)
            return send_recorded(message, destination, now)
        return _record_and_dispatch(message, also, destination)
    message["client_message_id"] = client_message_id
    try:
        # A digest, not the text: enough to tell a retry from a different message under the same key.
        outbound.record_reply(message, agent_id, client_message_id, _digest(text), also)
    except ReplyKeyTaken:
        # Another request with this key (the agent's earlier try, or a double click) got there first.
        earlier = _earlier_reply(conversation_id, agent_id, client_message_id, text)
        if earlier is None:  # cannot happen: the key's condition failed because its record exists
            raise Conflict("the reply's idempotency record vanished; retry") from None
        return earlier
    if send_now:
        return send_recorded(message, destination, now)
    dispatch(message, destination)
    return view(message)


def enqueue(
    conversation_id: str,
    customer_id: str,
    channel: str,
    text: str,
    kind: str,
    now: str,
    *,
    author: str = "system",
    identity: str | None = None,
) -> dict[str, Any]:
    """Write one outbound message to the customer's timeline and put its job on the outbox queue.

    The one writer for every outbound message: agents' replies and Switchboard's own messages
    (queue position, out of hours). ``identity`` is who it goes to; without it, whoever last wrote
    in the conversation on ``channel``. Returns the stored message.
    """
    return _record_and_dispatch(
        _outbound_message(conversation_id, customer_id, channel, text, kind, now, author=author, identity=identity)
    )


def _outbound_message(
    conversation_id: str,
    customer_id: str,
    channel: str,
    text: str,
    kind: str,
    now: str,
    *,
    author: str = "system",
    identity: str | None = None,
) -> dict[str, Any]:
    """A new outbound timeline message, queued and marked pending-send (not written yet)."""
    message_id = "out_" + conversations.new_id("m").removeprefix("m_")
    return outbound.new_message(
        conversation_id, customer_id, message_id, channel, text, kind, now, author=author, identity=identity
    )


def _leased(message: dict[str, Any], now: str) -> dict[str, Any]:
    """A new message as its first claim leaves it (``outbound.claim``), keeping its pending-send mark: recorded so,
    it is this request's to send, and the sweeper's (after ``PENDING_GRACE_SECONDS``) if the request dies."""
    return {
        **message,
        "status": "sending",
        "status_rank": outbound.MESSAGE_STATUS_RANK["sending"],
        "lease_until": clock.plus_seconds(now, REQUEST_LEASE_SECONDS),
        "attempts": 1,
    }


def send_recorded(message: dict[str, Any], destination: Destination, now: str) -> dict[str, Any]:
    """Send a message this request recorded leased (``_leased``), then record it sent; returns it as it is now.

    Whatever fails after the record, the reply stands (the answer is the message, never an error an agent would
    retry by writing it again): a final rejection marks it ``failed``; any other failure releases the lease and
    queues its job (the outbox Lambda retries it with backoff); a failed job or a dead request leaves it pending
    for the sweeper. The provider taking it and the commit failing is the documented at-least-once window: the
    lease holds, then the queued job (or the sweeper's) sends it again.
    """
    message_key = MessageKey(str(message["customer_id"]), str(message["sk"]))
    log = {"message_id": message["message_id"], "channel": message.get("channel"), "attempt": 1}
    try:
        result = _send(destination, message)
    except (NoRoute, ProviderRejected) as exc:
        error = exc.error if isinstance(exc, ProviderRejected) else exc.message
        logger.warning("outbound message failed", extra={**log, "error": redact(error)})
        try:
            outbound.mark_failed(message_key, error, now)
        except Exception:  # still leased and pending: the outbox's attempt after the lease meets the same refusal
            logger.exception("could not mark the message failed; the outbox will", extra=log)
            return view(message)
        rank = outbound.MESSAGE_STATUS_RANK["failed"]
        return view({**message, "status": "failed", "status_rank": rank, "error": error})
    except Exception as exc:
        error = exc.error if isinstance(exc, ProviderUnavailable) else f"{type(exc).__name__}: {exc}"
        logger.warning("outbound message not sent; queued for the outbox", extra={**log, "error": redact(error)})
        try:
            _release(message_key, error, now, gave_up=False)
        except Exception:  # the lease runs out by itself; the queued job then claims it
            logger.exception("could not release the message's lease", extra=log)
        dispatch(message, destination)
        return view({**{k: v for k, v in message.items() if k != "lease_until"}, "last_error": error[:500]})
    try:
        committed = _commit(message_key, message, destination, result, now)
    except Exception:
        logger.exception("sent, but not recorded: it will be sent again after its lease", extra=log)
        dispatch(message, destination)
        return view(message)
    logger.info("outbound message sent", extra={**log, "provider": result.provider})
    if committed is None:
        return view(message)
    hidden = ("lease_until", "last_error", "pending_send", "pending_since")
    return view({**{k: v for k, v in message.items() if k not in hidden}, **committed})


def record_action(message: dict[str, Any]) -> dict[str, Any]:
    """The transaction action that records an outbound message (for writes that must go with another one)."""
    return outbound.record_message_action(message)


def new_system_message(
    conversation_id: str, customer_id: str, channel: str, text: str, kind: str, now: str
) -> dict[str, Any]:
    """A system message to record in a caller's own transaction (``record_action``), then ``dispatch``."""
    return _outbound_message(conversation_id, customer_id, channel, text, kind, now)


def _record_and_dispatch(
    message: dict[str, Any], also: Sequence[dict[str, Any]] = (), destination: Destination | None = None
) -> dict[str, Any]:
    outbound.record_message(message, also)
    dispatch(message, destination)
    return view(message)


def dispatch(message: dict[str, Any], destination: Destination | None = None) -> bool:
    """Put a recorded message's job on the outbox queue; False (logged) when SQS failed: the sweeper sends it.

    ``destination``, resolved already (an agent's reply): the job carries it, so sending reads neither the
    customer's profile nor their timeline again.
    """
    job = _job_of(message)
    if destination is not None:
        job["destination"] = destinations.as_job(destination)
    try:
        queue.send_to_outbox(json.dumps(job))
    except Exception:
        # Recorded and pending: requeue_pending picks it up within a minute or two. The reply stands.
        logger.warning("outbox job not queued; the sweeper will queue it", extra={"message_id": message["message_id"]})
        return False
    return True


def view(message: dict[str, Any]) -> dict[str, Any]:
    """A stored message as the API shows it."""
    hidden = ("pk", "sk", "type", "pending_send", "pending_since", "lease_until")
    return {k: v for k, v in message.items() if k not in hidden and v is not None}


def _job_of(message: dict[str, Any]) -> dict[str, Any]:
    return {k: message[k] for k in ("message_id", "conversation_id", "customer_id", "channel", "kind", "received_at")}


# --- the client's idempotency key -----------------------------------------------------------------


def _digest(text: str) -> str:
    return hashlib.sha256(text.strip().encode()).hexdigest()


def _earlier_reply(conversation_id: str, agent_id: str, client_message_id: str, text: str) -> dict[str, Any] | None:
    """The reply this key already made (its job queued again if it is still pending), or None."""
    record = outbound.reply_of_key(conversation_id, agent_id, client_message_id)
    if record is None:
        return None
    if record.get("text_sha256") != _digest(text if isinstance(text, str) else ""):
        raise IdempotencyKeyReused(
            f"client_message_id {client_message_id} was already used for another message; "
            "use a new key for each message you compose"
        )
    message = outbound.get_message(MessageKey(str(record["customer_id"]), str(record["message_sk"])))
    if message is None:  # cannot happen: both were written in one transaction
        raise Conflict("the reply recorded under this key is gone")
    if message.get("pending_send"):
        dispatch(message)  # the first try may have died before queueing it; the claim makes this harmless
    return view(message)


# --- the transactional outbox's safety net ----------------------------------------------------------


def requeue_pending(now: str, limit: int = _REQUEUE_PAGE) -> int:
    """Queue the job of every message recorded but never claimed and older than the grace; returns how many.

    One bounded query of the sparse outbox index (only pending messages are in it), oldest first. A
    job queued twice is harmless: the claim sends each message once.
    """
    pending = outbound.pending_messages(clock.plus_seconds(now, -PENDING_GRACE_SECONDS), limit)
    jobs = [json.dumps(_job_of(message)) for message in pending]
    for start in range(0, len(jobs), 10):
        queue.send_batch_to_outbox(jobs[start : start + 10])
    if jobs:
        logger.warning("queued outbox jobs that were never queued or were lost", extra={"count": len(jobs)})
    return len(jobs)


def _surviving_customer(customer_id: str) -> tuple[str, dict[str, Any] | None]:
    """The customer a merged one lives on as (a closed conversation keeps the id it had), and their profile
    as read (None past the hops)."""
    for _ in range(_MERGE_HOPS):
        profile = conversations.get_customer(customer_id) or {}
        if not profile.get("merged_into"):
            return customer_id, profile
        customer_id = str(profile["merged_into"])
    return customer_id, None


def _own_identity(identity_key: str, customer_id: str) -> str:
    """The identity key, normalised, once it is shown to be this customer's."""
    kind, _, value = identity_key.partition("#")
    if not kind or not value.strip():
        raise InvalidPayload(
            "identity must be <kind>#<value>, e.g. phone#+447700900123",
            [{"field": "identity", "problem": "not <kind>#<value>"}],
        )
    if kind == "phone":
        normalised = identities.phone(value)
    elif kind == "email":
        normalised = identities.email(value)
    else:
        normalised = identities.Identity(kind, value.strip())
    owner = conversations.customers_of([normalised]).get(normalised.key)
    if owner is None or _surviving_customer(owner)[0] != customer_id:
        raise Forbidden(f"{normalised.key} is not an identity of this conversation's customer")
    return normalised.key


# --- sending --------------------------------------------------------------------------------------


def process_record(record: SQSRecord) -> None:
    """The outbox Lambda's record handler (Powertools ``BatchProcessor``, partial batch failures).

    A record that fails is given a later visibility (exponential backoff on its receive count)
    before the exception marks it failed in the batch response.
    """
    attempt = int(record.attributes.approximate_receive_count or 1)
    try:
        handle_outbox_record(record.body, clock.now_iso(), attempt)
    except Exception as exc:
        wait = getattr(exc, "retry_after", 0)
        try:
            back_off(record.receipt_handle, attempt, wait if isinstance(wait, int) else 0)
        except Exception:  # the record is retried after the queue's own visibility timeout instead
            logger.exception("could not set the outbox record's backoff", extra={"attempt": attempt})
        raise


def back_off(receipt_handle: str, attempt: int, at_least: int = 0) -> int:
    """Hide a failed outbox message from the queue for ``backoff_seconds``; returns how long."""
    delay = backoff_seconds(attempt, at_least)
    queue.delay_outbox_job(receipt_handle, delay)
    return delay


def backoff_seconds(attempt: int, at_least: int = 0) -> int:
    """``min(900, 2**attempt * 5)``, or longer when the provider asked (``at_least``), never over 900."""
    return min(MAX_BACKOFF_SECONDS, max(2 ** max(1, attempt) * 5, at_least))


def handle_outbox_record(body: str, now: str, attempt: int) -> None:
    """Send one outbox job's message, at most once per claim; raises when SQS should try again."""
    job = _job(body)
    if job is None:
        return
    message_key = _message_key(job)
    if message_key is None:
        ids = {k: job.get(k) for k in ("message_id", "conversation_id", "customer_id")}
        logger.error("outbox message not in the timeline; dropped", extra=ids)
        return
    message = _claim(message_key, str(job["message_id"]), now)
    if message is None:
        return
    log = {"message_id": message["message_id"], "channel": message.get("channel"), "attempt": attempt}
    try:
        destination = _destination(job, message, now)
        result = _send(destination, message)
    except (NoRoute, ProviderRejected) as exc:
        error = exc.error if isinstance(exc, ProviderRejected) else exc.message
        logger.warning("outbound message failed", extra={**log, "error": redact(error)})
        outbound.mark_failed(message_key, error, now)
        return
    except Exception as exc:
        error = exc.error if isinstance(exc, ProviderUnavailable) else f"{type(exc).__name__}: {exc}"
        logger.warning("outbound message not sent; will retry", extra={**log, "error": redact(error)})
        _release(message_key, error, now, gave_up=attempt >= MAX_RECEIVES)
        raise
    _commit(message_key, message, destination, result, now)
    logger.info("outbound message sent", extra={**log, "provider": result.provider})


def _destination(job: dict[str, Any], message: dict[str, Any], now: str) -> Destination:
    """Where the claimed message goes, as it may be sent now: the destination the job carries (resolved when the
    reply was queued) or, for a job without one (system messages, the sweeper's), resolved from the timeline.

    A late retry or a system message outside the provider's window: no pointless provider call. A carried
    destination outside the window is resolved again first: the customer may have written since.
    """
    by_agent = message.get("kind") == REPLY
    carried = destinations.from_job(job.get("destination"), message)
    if carried is not None:
        try:
            return destinations.within_window(carried, now, by_agent=by_agent)
        except OutsideMessagingWindow:
            pass
    return destinations.within_window(destinations.for_message(message), now, by_agent=by_agent)


def _send(destination: Destination, message: dict[str, Any]) -> SendResult:
    if destination.provider == "webchat":
        # No provider: pushed to the visitor's open widgets (none open: the widget reads it when it reconnects).
        from chalicelib.notify import visitors  # only the web-chat sends need it

        visitors.message(str(message["conversation_id"]), message)
        return SendResult("webchat", str(message["message_id"]))
    text, message_id = str(message["text"]), str(message["message_id"])
    if message.get("kind") != REPLY:  # not an agent's: the bot's answer, a place in the queue, a notice
        destination = dataclasses.replace(destination, automatic=True)
    buttons = _buttons(message)
    if buttons and destination.provider in BUTTON_SENDERS:
        return BUTTON_SENDERS[destination.provider](destination, text, message_id, buttons=buttons)
    if buttons and isinstance(message.get("buttons_otherwise"), str):
        text = f"{text}\n\n{message['buttons_otherwise']}"  # no buttons here (WhatsApp through Twilio): ask in words
    return _SENDERS[destination.provider](destination, text, message_id)


def _buttons(message: dict[str, Any]) -> tuple[Button, ...]:
    """The reply buttons a message carries (the self-service bot's ``{"id", "title"}`` pairs), as stored."""
    stored = message.get("buttons")
    if not isinstance(stored, list):
        return ()
    return tuple(
        Button(str(b["id"]), str(b["title"])) for b in stored if isinstance(b, dict) and b.get("id") and b.get("title")
    )


def _job(body: str) -> dict[str, Any] | None:
    try:
        job = json.loads(body)
    except ValueError:
        job = None
    if not isinstance(job, dict) or not all(isinstance(job.get(k), str) for k in ("message_id", "customer_id")):
        # Retrying cannot fix a job that does not say what to send.
        # Not the body itself: a job is ids only, but whatever sits there instead may hold anything.
        logger.error("unreadable outbox job; dropped", extra={"body_chars": len(body)})
        return None
    return job


def _message_key(job: dict[str, Any]) -> MessageKey | None:
    """The timeline key: built from the job, or (jobs without ``received_at``) found newest first."""
    if isinstance(job.get("received_at"), str):
        return MessageKey.of(str(job["customer_id"]), job["received_at"], str(job["message_id"]))
    return outbound.find_message(str(job["customer_id"]), str(job["message_id"]))


def _claim(message_key: MessageKey, message_id: str, now: str) -> dict[str, Any] | None:
    """Lease the message to this attempt; None when there is nothing to send (sent, failed, gone)."""
    claimed = outbound.claim(message_key, now, clock.plus_seconds(now, LEASE_SECONDS))
    if claimed is None:
        _raise_if_in_progress(message_key, message_id, now)
    return claimed


def _raise_if_in_progress(message_key: MessageKey, message_id: str, now: str) -> None:
    """After a lost claim: ``SendInProgress`` if another attempt holds the lease; else there is nothing to do."""
    current = outbound.get_message(message_key)
    if current is None:
        logger.error("outbox message not in the timeline; dropped", extra={"message_id": message_id})
        return
    if current.get("provider_message_id") or current.get("status") in _DONE:
        logger.info("outbox job for a message already done", extra={"message_id": message_id})
        return
    lease = str(current.get("lease_until") or now)
    raise SendInProgress(message_id, max(1, int(clock.seconds_between(now, lease)) + 1))


def _commit(
    message_key: MessageKey, message: dict[str, Any], destination: Destination, result: SendResult, now: str
) -> dict[str, Any] | None:
    subject = None
    if destination.channel == "email":
        subject = destination.subject or destinations.subject_from_text(str(message["text"]))
    sent = Sent(
        provider=result.provider,
        provider_message_id=result.provider_message_id,
        to=destination.to,
        identity=destination.identity,
        sender=destination.sender,
        email_message_id=result.email_message_id,
        subject=subject,
        thread_ids=result.thread_ids,
        reports_status=result.provider in REPORTS_STATUS,
    )
    committed = outbound.record_sent(message_key, message, sent, now)
    if committed is None:
        # Another attempt committed first: its lease ran out while ours was in flight, so both sent.
        logger.warning(
            "outbound message was sent twice; the first send is recorded",
            extra={"message_id": message["message_id"], "provider_message_id": result.provider_message_id},
        )
    return committed


def _release(message_key: MessageKey, error: str, now: str, gave_up: bool) -> None:
    """Let the next attempt claim at once; after the last attempt, show the message as failed."""
    final = f"gave up after {MAX_RECEIVES} attempts: {error[:400]}" if gave_up else None
    outbound.release(message_key, error[:500], now, gave_up_with=final)


# --- statuses --------------------------------------------------------------------------------------


def apply_status(update: StatusUpdate, now: str) -> dict[str, Any] | None:
    """``store.outbound.advance`` (one conditional update), and the same forward-only move on the message in the
    customer's timeline, found from the record that update returned (nothing is read).

    Call it wherever provider status callbacks are applied; returns the ``OUTBOUND`` record as it now is, or None
    when the status changed nothing (an unknown message, or one already further along).
    """
    sent = outbound.advance(update, now)
    if sent is None or update.kind != "message":
        return sent
    if sent.get("customer_id") and sent.get("message_sk"):  # else recorded by something other than the outbox
        outbound.apply_to_timeline(str(sent["customer_id"]), str(sent["message_sk"]), update, now)
    return sent
