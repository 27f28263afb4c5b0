"""Twilio voice webhooks past "a call comes in": the caller's wait, the agent's leg, the conference, the bridge.

Every one is a signed form POST (``twilio._verified_form``) to a URL the app built on the call's
``callback_base``, naming the conversation in its query (``?conversation=...``). They answer TwiML at once:
their work is at most a conditional write and one Twilio REST request (``chalicelib.voice.connect``), within
Twilio's 15 s.

- ``/webhooks/twilio/voice/wait``: the ``<Enqueue waitUrl>``. Says the caller's position and expected wait, then
  hold audio or silence for ``voice.position_interval``, then asks again. Keeps the queue's ``QueueSid``.
- ``/webhooks/twilio/voice/agent-leg``: the ``Url`` of the call to an agent's phone: joins the conference.
- ``/webhooks/twilio/voice/conference``: the conference ``statusCallback``; the agent's join moves the caller.
- ``/webhooks/twilio/voice/bridge``: the caller's TwiML once dequeued: joins the conference.
- ``/webhooks/twilio/voice/callback-request``: the wait document's ``<Gather>`` action: 1 asks for a callback.
- ``/webhooks/twilio/voice/callback-leg``: the ``Url`` of the call back to the customer: joins the conference.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from chalicelib.channels.base import Reply, Webhook, WebhookRequest
from chalicelib.channels.twilio import FORM, TWIML, _empty_twiml, _Form, _verified_form, callback_base
from chalicelib.conversations.models import StoredMessage
from chalicelib.errors import InvalidPayload

_CONVERSATION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _conversation(request: WebhookRequest) -> str:
    value = request.query.get("conversation") or ""
    if not _CONVERSATION.match(value):
        raise InvalidPayload(
            "the conversation query parameter is missing or not a conversation id",
            [{"field": "conversation", "problem": "missing or invalid"}],
        )
    return value


def _twiml(document: str) -> Webhook:
    return Webhook(immediate=Reply(200, document, TWIML))


class _VoiceWebhook:
    methods = ("POST",)
    content_types = (FORM,)
    path = ""

    def handle(self, request: WebhookRequest) -> Webhook:
        form = _verified_form(request)  # nothing is read or written for a request Twilio did not sign
        return self.answer(_conversation(request), form, callback_base(request.public_url, self.path))

    def answer(self, conversation_id: str, form: _Form, base: str) -> Webhook:
        raise NotImplementedError

    def respond(self, webhook: Webhook, stored: Sequence[StoredMessage]) -> Reply:
        return _empty_twiml()


class TwilioWait(_VoiceWebhook):
    name = "twilio_voice_wait"
    path = "/webhooks/twilio/voice/wait"

    def answer(self, conversation_id: str, form: _Form, base: str) -> Webhook:
        from chalicelib.voice import waiting

        caller, call_sid = form.get("From"), form.get("CallSid") or ""
        return _twiml(waiting.wait_twiml(conversation_id, form.get("QueueSid"), base, caller, call_sid))


class TwilioAgentLeg(_VoiceWebhook):
    name = "twilio_voice_agent_leg"
    path = "/webhooks/twilio/voice/agent-leg"

    def answer(self, conversation_id: str, form: _Form, base: str) -> Webhook:
        from chalicelib.voice import connect

        return _twiml(connect.agent_leg_twiml(conversation_id, form.get("CallSid"), base))


class TwilioConference(_VoiceWebhook):
    name = "twilio_voice_conference"
    path = "/webhooks/twilio/voice/conference"

    def answer(self, conversation_id: str, form: _Form, base: str) -> Webhook:
        from chalicelib.voice import connect, controls

        controls.on_conference_event(conversation_id, dict(form.pairs))
        connect.on_conference_event(conversation_id, dict(form.pairs), base)
        return Webhook(immediate=_empty_twiml())


class TwilioBridge(_VoiceWebhook):
    name = "twilio_voice_bridge"
    path = "/webhooks/twilio/voice/bridge"

    def answer(self, conversation_id: str, form: _Form, base: str) -> Webhook:
        from chalicelib.voice import connect

        return _twiml(connect.bridge_twiml(conversation_id, base))


class TwilioCallbackRequest(_VoiceWebhook):
    name = "twilio_voice_callback_request"
    path = "/webhooks/twilio/voice/callback-request"

    def answer(self, conversation_id: str, form: _Form, base: str) -> Webhook:
        from chalicelib.voice import callback

        return _twiml(callback.on_digits(conversation_id, dict(form.pairs), base))


class TwilioCallbackLeg(_VoiceWebhook):
    name = "twilio_voice_callback_leg"
    path = "/webhooks/twilio/voice/callback-leg"

    def answer(self, conversation_id: str, form: _Form, base: str) -> Webhook:
        from chalicelib.voice import callback

        return _twiml(callback.callback_leg_twiml(conversation_id, form.get("CallSid"), base))


WAIT = TwilioWait()
AGENT_LEG = TwilioAgentLeg()
CONFERENCE = TwilioConference()
BRIDGE = TwilioBridge()
CALLBACK_REQUEST = TwilioCallbackRequest()
CALLBACK_LEG = TwilioCallbackLeg()
