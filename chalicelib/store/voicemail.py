"""A voicemail's message in the customer's timeline, completed by Twilio's later callbacks.

The voicemail is stored as an inbound message (``conversations.ingest``, keyed by the recording's sid, so the Record
action and the transcription callback store it once between them). What arrives after it is written onto that same
item, found through its delivery record (``INBOUND#twilio#<RecordingSid>``: customer, conversation, received_at,
message id):

- the recording's status and duration (``recordingStatusCallback``): plain ``SET``s, the same values every time;
- the transcript (``transcribeCallback``): the message's text becomes the transcript, once; a condition on
  ``transcript_status`` makes a repeat change nothing (and tell nobody twice).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from chalicelib.settings import get_settings
from chalicelib.store.conversations import customer_key, inbound_key
from chalicelib.store.dynamo import TransactionConflict, get, key, to_values, write


@dataclass(frozen=True)
class StoredVoicemail:
    """Where a voicemail's message is."""

    customer_id: str
    conversation_id: str
    message_id: str
    received_at: str

    @property
    def item_key(self) -> dict[str, Any]:
        return key(customer_key(self.customer_id), f"MESSAGE#{self.received_at}#{self.message_id}")


def _table() -> str:
    return get_settings().data_table


def find(provider: str, recording_sid: str) -> StoredVoicemail | None:
    """The voicemail stored for this recording, or None when neither of its callbacks has stored it yet."""
    seen = get(_table(), inbound_key(f"{provider}#{recording_sid}"), "INBOUND")
    if seen is None:
        return None
    return StoredVoicemail(
        str(seen["customer_id"]), str(seen["conversation_id"]), str(seen["message_id"]), str(seen["received_at"])
    )


def note_recording(stored: StoredVoicemail, status: str, duration: str | None) -> None:
    """The recording's status (``completed``, ``absent``, ``failed``) and length, on the message."""
    values: dict[str, Any] = {":status": status}
    expression = "SET metadata.recording_status = :status"
    if duration:
        values[":duration"] = duration
        expression += ", metadata.recording_duration = :duration"
    update = {
        "TableName": _table(),
        "Key": stored.item_key,
        "UpdateExpression": expression,
        "ConditionExpression": "attribute_exists(pk) AND attribute_type(metadata, :map)",
        "ExpressionAttributeValues": to_values({**values, ":map": "M"}),
    }
    with contextlib.suppress(TransactionConflict):  # not a voicemail's message (cannot happen): nothing to note
        write([{"Update": update}])


def add_transcript(stored: StoredVoicemail, status: str, text: str | None) -> bool:
    """The transcript on the message (its text, once ``completed``), or that it failed; False when it was there
    already (Twilio's repeat)."""
    names = {"#status": "transcript_status"}
    values: dict[str, Any] = {":status": status}
    expression = "SET #status = :status"
    if status == "completed" and text:
        names["#text"] = "text"
        values[":text"] = text
        expression += ", #text = :text, transcript = :text"
    update = {
        "TableName": _table(),
        "Key": stored.item_key,
        "UpdateExpression": expression,
        "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(#status)",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": to_values(values),
    }
    try:
        write([{"Update": update}])
    except TransactionConflict:
        return False
    return True
