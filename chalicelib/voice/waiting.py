"""The waiting caller's wait document: position and expected wait, as the router counts them.

Each conversation has its own Twilio queue, so Twilio's ``QueuePosition`` is always 1: the position said is the
contact's place among the contacts waiting in its routing queue (``store.routing.place_in_queue``, as the written
acknowledgement of a waiting texter uses), the wait ``router.expected_wait_seconds`` of the queue's statistics.
"""

from __future__ import annotations

from chalicelib.routing.config import current_config
from chalicelib.routing.model import ContactState
from chalicelib.routing.router import expected_wait_seconds
from chalicelib.store import routing as routing_store
from chalicelib.store import voice as store
from chalicelib.voice import callback, connect, twiml


def wait_twiml(
    conversation_id: str, queue_sid: str | None, base: str, caller: str | None = None, call_sid: str = ""
) -> str:
    """The wait document; with "press 1 to be called back" (``voice.callback``) when the caller has a number."""
    config = current_config()
    if queue_sid:
        store.note_queue(conversation_id, queue_sid)  # set once; the dequeue names it
    sentence = None
    contact = routing_store.get_contact(conversation_id)
    if contact is not None and contact.state in (ContactState.QUEUED, ContactState.OFFERED):
        home = contact.queues[0]
        position, stats = routing_store.place_in_queue(contact, home)
        wait = expected_wait_seconds(position, stats)
        sentence = twiml.position_sentence(position + 1, max(1, round(wait / 60)))
    offer = sentence is not None and callback.offered_to(caller, call_sid)
    return twiml.waiting(
        sentence,
        interval_seconds=config.voice_position_interval_seconds,
        hold_audio=config.voice_hold_audio,
        again=connect.url(base, connect.WAIT, conversation_id),
        callback_action=connect.url(base, callback.CALLBACK_REQUEST, conversation_id) if offer else None,
    )
