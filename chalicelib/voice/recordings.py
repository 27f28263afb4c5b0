"""A voicemail's recording, played for the agent through the app (issue 13 §5).

Twilio answers a recording's URL only with the account's credentials when "HTTP Basic Authentication for media" is
on (the default for new accounts), so a bare link would ask the agent for a Twilio login. The console fetches
``GET /conversations/{id}/recordings/{RecordingSid}`` with its sign-in token instead; this module says whether the
agent may have it and fetches it from Twilio.

No open proxy: the sid must be a recording sid (``RE`` + 32 hex) stored as a voicemail of this conversation's
customer (so one the account's own signed callbacks named), and the audio is always fetched from the account's own
``Recordings/{sid}.mp3`` on the configured Twilio API, never from a stored or given URL.
A Lambda response carries at most 6 MB, base64 included: ``MAX_BYTES`` of audio. Twilio's voicemails (two minutes
at most, MP3 at 32 kbit/s: about 0.5 MB) are far below it; a bigger one is refused, naming where to play it.
"""

from __future__ import annotations

import re

from aws_lambda_powertools import Logger

from chalicelib.agents import work
from chalicelib.errors import NotFound, PayloadTooLarge, SwitchboardError
from chalicelib.outbound.senders import ProviderRejected, ProviderUnavailable
from chalicelib.store import voicemail as voicemail_store
from chalicelib.voice import twilio_api
from chalicelib.voice.controls import CallUnavailable
from chalicelib.voice.voicemail import PROVIDER

logger = Logger(service="switchboard", child=True)

CONTENT_TYPE = "audio/mpeg"
MAX_BYTES = 4_500_000  # 6 MB less base64's third and the response's envelope
_RECORDING_SID = re.compile(r"^RE[0-9a-f]{32}$")


class RecordingTooLarge(PayloadTooLarge):
    code = "recording_too_large"


def for_agent(agent_id: str, conversation_id: str, recording_sid: str, *, oversee: bool = False) -> bytes:
    """The voicemail's MP3, for an agent who may see the conversation; checked before Twilio is asked."""
    if not _RECORDING_SID.match(recording_sid):
        raise SwitchboardError(f"{recording_sid!r} is not a recording sid (RE followed by 32 hex digits)")
    contact = work.contact_seen_by(agent_id, conversation_id, oversee)
    stored = voicemail_store.find(PROVIDER, recording_sid)
    # The timeline shows the customer's every conversation: an older voicemail of theirs plays too.
    if stored is None or contact.customer_id != stored.customer_id:
        raise NotFound(f"no voicemail {recording_sid} in this customer's conversations")
    try:
        media = twilio_api.recording_mp3(recording_sid, MAX_BYTES)
    except twilio_api.Gone:
        raise NotFound(f"recording {recording_sid} is no longer at Twilio (deleted)") from None
    except twilio_api.MediaTooLarge as error:
        raise RecordingTooLarge(
            f"recording {recording_sid} is over {MAX_BYTES} bytes ({error.size} read), more than the app can pass "
            f"on; play it in the Twilio console (Monitor, Call recordings)"
        ) from None
    except (ProviderUnavailable, ProviderRejected) as error:
        logger.warning("recording fetch failed", extra={"conversation_id": conversation_id})
        raise CallUnavailable(f"Twilio did not give the recording: {error}") from None
    logger.info("recording played", extra={"conversation_id": conversation_id, "bytes": len(media)})
    return media
