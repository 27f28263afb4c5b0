"""Every channel endpoint the API serves. Adding a channel: its module, and one line here.

``ENDPOINTS`` says what app.py registers as routes without importing a channel module: every function imports
app.py, and the router's need no channel parser (their pydantic models and crypto cost most of a cold start).
An endpoint loads its adapter on its first request. ``CHANNELS`` (the adapters themselves) loads them all; a
test keeps both saying the same.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.channels.base import ChannelAdapter


@dataclass(frozen=True)
class Endpoint:
    """A channel adapter's route, and where the adapter lives (``module:attribute`` in chalicelib.channels)."""

    name: str
    path: str
    methods: tuple[str, ...]
    content_types: tuple[str, ...]
    adapter_at: str

    def adapter(self) -> ChannelAdapter:
        module, attribute = self.adapter_at.split(":")
        adapter: ChannelAdapter = getattr(importlib.import_module(f"chalicelib.channels.{module}"), attribute)
        return adapter


_JSON = ("application/json",)
_FORM = ("application/x-www-form-urlencoded",)
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("webchat", "/webhooks/webchat", ("POST",), _JSON, "webchat:ADAPTER"),
    Endpoint("api", "/webhooks/api", ("POST",), _JSON, "api:ADAPTER"),
    Endpoint("twilio_messaging", "/webhooks/twilio/messaging", ("POST",), _FORM, "twilio:MESSAGING"),
    Endpoint("twilio_voice", "/webhooks/twilio/voice", ("POST",), _FORM, "twilio:VOICE"),
    Endpoint("twilio_status", "/webhooks/twilio/status", ("POST",), _FORM, "twilio:STATUS"),
    Endpoint("twilio_queue_exit", "/webhooks/twilio/voice/queue-exit", ("POST",), _FORM, "twilio:QUEUE_EXIT"),
    Endpoint("twilio_voice_wait", "/webhooks/twilio/voice/wait", ("POST",), _FORM, "twilio_voice:WAIT"),
    Endpoint("twilio_voice_agent_leg", "/webhooks/twilio/voice/agent-leg", ("POST",), _FORM, "twilio_voice:AGENT_LEG"),
    Endpoint(
        "twilio_voice_conference", "/webhooks/twilio/voice/conference", ("POST",), _FORM, "twilio_voice:CONFERENCE"
    ),
    Endpoint("twilio_voice_bridge", "/webhooks/twilio/voice/bridge", ("POST",), _FORM, "twilio_voice:BRIDGE"),
    # A waiting caller's callback: the wait document's <Gather> action, and the call back's TwiML.
    Endpoint(
        "twilio_voice_callback_request",
        "/webhooks/twilio/voice/callback-request",
        ("POST",),
        _FORM,
        "twilio_voice:CALLBACK_REQUEST",
    ),
    Endpoint(
        "twilio_voice_callback_leg",
        "/webhooks/twilio/voice/callback-leg",
        ("POST",),
        _FORM,
        "twilio_voice:CALLBACK_LEG",
    ),
    # A call sent to voicemail (its <Record>'s action and callbacks) or asked a question first (its <Gather>'s action).
    Endpoint("twilio_voicemail", "/webhooks/twilio/voice/voicemail", ("POST",), _FORM, "twilio_ivr:VOICEMAIL"),
    Endpoint(
        "twilio_voicemail_recording", "/webhooks/twilio/voice/recording", ("POST",), _FORM, "twilio_ivr:RECORDING"
    ),
    Endpoint(
        "twilio_voicemail_transcript", "/webhooks/twilio/voice/transcript", ("POST",), _FORM, "twilio_ivr:TRANSCRIPT"
    ),
    Endpoint("twilio_voice_speech", "/webhooks/twilio/voice/speech", ("POST",), _FORM, "twilio_ivr:SPEECH"),
    # The knowledge base's answer to that question (chalicelib.voice.self_service): its <Gather>'s action.
    Endpoint(
        "twilio_voice_self_service", "/webhooks/twilio/voice/self-service", ("POST",), _FORM, "twilio_ivr:SELF_SERVICE"
    ),
    # The console softphone's TwiML App (its Voice URL): a browser Device's call joins its contact's conference.
    Endpoint("twilio_softphone", "/webhooks/twilio/voice/agent", ("POST",), _FORM, "twilio_softphone:ADAPTER"),
    Endpoint("meta", "/webhooks/meta", ("GET", "POST"), _JSON, "meta:ADAPTER"),
    Endpoint("telegram", "/webhooks/telegram", ("POST",), _JSON, "telegram:ADAPTER"),
    Endpoint(
        "email_ses",
        "/webhooks/email/ses",
        ("POST",),
        ("text/plain", "application/json"),
        "ses:ADAPTER",
    ),
    Endpoint(
        "email_mailgun",
        "/webhooks/email/mailgun",
        ("POST",),
        (*_FORM, "multipart/form-data"),
        "mailgun:ADAPTER",
    ),
)

if TYPE_CHECKING:
    CHANNELS: tuple[ChannelAdapter, ...]


def __getattr__(name: str) -> Any:
    if name == "CHANNELS":  # the adapters, each module imported
        return tuple(endpoint.adapter() for endpoint in ENDPOINTS)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
