"""Twilio requests of a call that was not queued at once: voicemail (``<Record>``) and the speech question
(``<Gather input="speech">``). What happens is in ``chalicelib.voice.voicemail`` and ``chalicelib.voice.speech``;
this module reads Twilio's parameters.

Each is a signed form POST (``twilio._verified_form``: nothing is read or written for a request Twilio did not sign)
to a URL built on the webhooks' base the call came in on. No conversation exists yet when the URLs are made, so
none is named in them: the voicemail is found by its recording's sid, the speech answer by its call.

- ``/webhooks/twilio/voice/voicemail``: the Record ``action``. Stores the voicemail; thanks the caller and hangs up.
- ``/webhooks/twilio/voice/recording``: the ``recordingStatusCallback``. Notes the recording's status and length.
- ``/webhooks/twilio/voice/transcript``: the ``transcribeCallback``. The transcript becomes the voicemail's text.
- ``/webhooks/twilio/voice/speech``: the speech Gather's ``action``. Stores the call with what the caller said as its
  text, and answers as "a call comes in" does (the queue); or, where self-service answers calls and the knowledge
  base has a confident article, says its answer and asks whether it helped (``chalicelib.voice.self_service``).
- ``/webhooks/twilio/voice/self-service``: that question's Gather ``action``. Solved: thanks and ``<Hangup/>``;
  anything else: the call is stored and queued.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from chalicelib import clock
from chalicelib.channels.base import Reply, Webhook, WebhookRequest
from chalicelib.channels.twilio import (
    _CALL_METADATA,
    FORM,
    TWIML,
    VOICE,
    _empty_twiml,
    _Form,
    _parse_call,
    _verified_form,
    callback_base,
    caller_identity,
)
from chalicelib.conversations.models import Attachment, InboundMessage, StoredMessage
from chalicelib.voice import calls, self_service, speech, voicemail

# Twilio serves a recording as WAV at its URL and as MP3 with ".mp3": the smaller file for a browser to play.
RECORDING_FORMAT = (".mp3", "audio/mpeg")


def _voicemail(form: _Form) -> InboundMessage:
    """The voicemail as an inbound message: the same one from the Record action and from the transcript request
    (both carry the call's parameters and the recording), keyed by the recording so it is stored once."""
    recording_sid = form.require("RecordingSid")
    call_sid = form.require("CallSid")
    recording_url = form.require("RecordingUrl")
    duration = form.get("RecordingDuration")
    suffix, content_type = RECORDING_FORMAT
    metadata = {**form.metadata(_CALL_METADATA), "call_sid": call_sid}
    if duration:
        metadata["recording_duration"] = duration
    return InboundMessage(
        channel=voicemail.CHANNEL,
        provider=voicemail.PROVIDER,
        provider_message_id=recording_sid,
        identity=caller_identity(form.get("From") or "", call_sid),
        text=voicemail.text_of(duration),
        attachments=(Attachment(content_type=content_type, url=recording_url + suffix),),
        name=form.get("CallerName"),
        metadata=metadata,
    )


class _IvrWebhook:
    methods = ("POST",)
    content_types = (FORM,)


class TwilioVoicemail(_IvrWebhook):
    """The Record ``action``: the caller has left a message."""

    name = "twilio_voicemail"
    path = voicemail.RECORDED

    def handle(self, request: WebhookRequest) -> Webhook:
        return Webhook(messages=(_voicemail(_verified_form(request)),))

    def respond(self, webhook: Webhook, stored: Sequence[StoredMessage]) -> Reply:
        return Reply(200, voicemail.thanks_twiml(), TWIML)


class TwilioRecording(_IvrWebhook):
    """The ``recordingStatusCallback``: the recording's file is ready (or there is none)."""

    name = "twilio_voicemail_recording"
    path = voicemail.RECORDING

    def handle(self, request: WebhookRequest) -> Webhook:
        form = _verified_form(request)
        voicemail.recording_ready(
            form.require("RecordingSid"), form.require("RecordingStatus").lower(), form.get("RecordingDuration")
        )
        return Webhook(immediate=_empty_twiml())

    def respond(self, webhook: Webhook, stored: Sequence[StoredMessage]) -> Reply:
        return _empty_twiml()


class TwilioTranscript(_IvrWebhook):
    """The ``transcribeCallback``: the voicemail is stored (once, if the action has not), then its transcript."""

    name = "twilio_voicemail_transcript"
    path = voicemail.TRANSCRIPT

    def handle(self, request: WebhookRequest) -> Webhook:
        form = _verified_form(request)
        status = (form.get("TranscriptionStatus") or "failed").lower()
        text = form.get("TranscriptionText")
        if voicemail.transcribed_stored(form.require("RecordingSid"), status, text):
            return Webhook(immediate=_empty_twiml())
        # The action has not stored the voicemail (lost, or late): stored from here, then the transcript.
        context = {"transcription_status": status, "transcription_text": text}
        return Webhook(messages=(_voicemail(form),), context=context)

    def respond(self, webhook: Webhook, stored: Sequence[StoredMessage]) -> Reply:
        context = webhook.context
        voicemail.transcribed(stored[0], str(context["transcription_status"]), context["transcription_text"])
        return _empty_twiml()


class TwilioSpeechAnswer(_IvrWebhook):
    """The speech Gather's ``action``: the call, with what the caller said as its text; then the queue."""

    name = "twilio_voice_speech"
    path = speech.ANSWER

    def handle(self, request: WebhookRequest) -> Webhook:
        form = _verified_form(request)
        if (form.get("CallStatus") or "").lower() in calls.FINAL:
            # The caller hung up during the question: no call to hold, and nobody is offered it; counted abandoned
            # (once, with the call's status callback).
            speech.caller_left(form.require("CallSid"))
            return Webhook(immediate=_empty_twiml())
        if not speech.answered(form.require("CallSid")):
            return Webhook(immediate=_empty_twiml())  # its hang-up came first and was counted: a dead call
        call = _parse_call(form)
        metadata = dict(call.metadata)
        if form.get("SpeechResult") and form.get("Confidence"):
            metadata["speech_confidence"] = form.get("Confidence")
        message = replace(call, text=speech.contact_text(form.get("SpeechResult")), metadata=metadata)
        base = callback_base(request.public_url, self.path)
        answered = self_service.offer(message, base)  # the knowledge base answers it on the call first
        if answered is not None:
            return Webhook(immediate=Reply(200, answered, TWIML))
        return Webhook(messages=(message,), context={"call_sid": message.provider_message_id, "callback_base": base})

    def respond(self, webhook: Webhook, stored: Sequence[StoredMessage]) -> Reply:
        return VOICE.respond(webhook, stored)  # held in line exactly as a call that was asked nothing


class TwilioSelfServiceAnswer(_IvrWebhook):
    """The self-service answer's Gather ``action``: solved (thanks, hang up) or handed over (the queue); the call
    and the bot exchange stored once (``voice.self_service``)."""

    name = "twilio_voice_self_service"
    path = self_service.PATH

    def handle(self, request: WebhookRequest) -> Webhook:
        from chalicelib.store import self_service as sessions

        form = _verified_form(request)
        call_sid = form.require("CallSid")
        if (form.get("CallStatus") or "").lower() in calls.FINAL:
            self_service.caller_left(call_sid)  # hung up during the answer: unconfirmed
            return Webhook(immediate=_empty_twiml())
        base = callback_base(request.public_url, self.path)
        record = self_service.decided(call_sid, form.get("Digits"), form.get("SpeechResult"))
        if record is None:  # the bot never answered this call (its record expired): the call, queued as always
            return Webhook(messages=(_parse_call(form),), context={"call_sid": call_sid, "callback_base": base})
        if record.get("outcome") == sessions.UNCONFIRMED:
            return Webhook(immediate=_empty_twiml())  # its hang-up was handled first: nobody to answer
        stored = self_service.store_exchange(record)
        if record.get("outcome") == sessions.SOLVED:
            self_service.conclude(record, stored)
            return Webhook(immediate=Reply(200, self_service.thanks_twiml(record), TWIML))
        # Handed over: routed from the reply, then the call we hold from here on (status callbacks, the agent's leg),
        # as "a call comes in" does; a hang-up that came meanwhile abandons the contact (``calls.on_incoming``).
        context = {"call_sid": call_sid, "callback_base": base}
        self_service.conclude(record, stored)
        calls.on_incoming(self_service.question_message(record), stored.conversation_id, context, clock.now_iso())
        return Webhook(immediate=VOICE.respond(Webhook(context=context), [stored]))

    def respond(self, webhook: Webhook, stored: Sequence[StoredMessage]) -> Reply:
        return VOICE.respond(webhook, stored)  # never answered by the bot: held in line as a call


VOICEMAIL = TwilioVoicemail()
RECORDING = TwilioRecording()
TRANSCRIPT = TwilioTranscript()
SPEECH = TwilioSpeechAnswer()
SELF_SERVICE = TwilioSelfServiceAnswer()
