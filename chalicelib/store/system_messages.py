"""Messages Switchboard itself sends a customer (queue position, out-of-hours replies).

Each is written to the customer's timeline and put on the outbox queue, like
an agent's reply; the outbox's channel senders deliver it. A message that must
go with another write (the contact marked as told) is ``prepare``d, recorded by
``record_action`` in the caller's own transaction, then ``dispatch``ed: it is
pending-send from the moment it exists, so the sweeper queues it if its job is lost.
"""

from __future__ import annotations

from typing import Any


def reaches(channel: str) -> bool:
    """Whether a written message can go to a customer on ``channel``.

    Not a caller (``voice``), nor an app, shop counter or voice assistant on our own channel: nothing
    carries text back to them, so such a message would only sit failed in the timeline. A waiting
    caller hears the hold message of the call instead (``channels.twilio.hold_twiml``).
    """
    from chalicelib.outbound import destinations  # as below: imported when first used

    return channel in destinations.IDENTITY_KIND


def send(conversation_id: str, customer_id: str, channel: str, text: str, kind: str, now: str) -> str:
    """Record and queue one system message; returns its id."""
    from chalicelib.outbound import outbox  # the outbox imports the stores; import it when first used

    return str(outbox.enqueue(conversation_id, customer_id, channel, text, kind, now)["message_id"])


def prepare(conversation_id: str, customer_id: str, channel: str, text: str, kind: str, now: str) -> dict[str, Any]:
    """A system message, not written yet: record it with ``record_action``, then ``dispatch`` it."""
    from chalicelib.outbound import outbox

    return outbox.new_system_message(conversation_id, customer_id, channel, text, kind, now)


def record_action(message: dict[str, Any]) -> dict[str, Any]:
    """The transaction action recording a prepared message (pending-send)."""
    from chalicelib.outbound import outbox

    return outbox.record_action(message)


def dispatch(message: dict[str, Any]) -> None:
    """Queue a recorded message's job; if SQS fails, the sweeper queues it."""
    from chalicelib.outbound import outbox

    outbox.dispatch(message)
