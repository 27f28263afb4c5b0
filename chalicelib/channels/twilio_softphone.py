"""``POST /webhooks/twilio/voice/agent``: the Voice URL of the console softphone's TwiML App.

Twilio posts it (signed, form-encoded, like every Twilio webhook: ``twilio._verified_form``) when a browser
``Device`` connects: the standard call fields (``CallSid``, ``AccountSid``, ``ApplicationSid``, ``From`` and
``Caller`` = ``client:<identity>``, ``Direction``...) and the connect's ``params`` as fields of their own, here
``contact_id``. What it answers is ``chalicelib.voice.softphone``'s to decide; nothing of it is a message to store.
"""

from __future__ import annotations

from collections.abc import Sequence

from chalicelib import clock
from chalicelib.channels.base import ChannelAdapter, Reply, Webhook, WebhookRequest
from chalicelib.channels.twilio import FORM, TWIML, _verified_form, callback_base
from chalicelib.conversations.models import StoredMessage


class TwilioSoftphone:
    name = "twilio_softphone"
    path = "/webhooks/twilio/voice/agent"
    methods = ("POST",)
    content_types = (FORM,)

    def handle(self, request: WebhookRequest) -> Webhook:
        from chalicelib.voice import softphone

        form = _verified_form(request)
        document = softphone.admit(
            caller=form.get("From") or "",
            application_sid=form.get("ApplicationSid"),
            contact_id=form.require("contact_id"),
            call_sid=form.require("CallSid"),
            base_url=callback_base(request.public_url, self.path),
            now=clock.now_iso(),
        )
        return Webhook(immediate=Reply(200, document, TWIML))

    def respond(self, webhook: Webhook, stored: Sequence[StoredMessage]) -> Reply:
        raise AssertionError("answered in handle: a softphone call stores no message")


ADAPTER: ChannelAdapter = TwilioSoftphone()  # mypy checks it against the protocol
