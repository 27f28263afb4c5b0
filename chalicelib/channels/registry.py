"""Every channel endpoint the API serves. Adding a channel: its module, and one line here."""

from __future__ import annotations

from chalicelib.channels import api, mailgun, meta, ses, telegram, twilio, webchat
from chalicelib.channels.base import ChannelAdapter

CHANNELS: tuple[ChannelAdapter, ...] = (
    webchat.ADAPTER,
    api.ADAPTER,
    *twilio.ADAPTERS,
    meta.ADAPTER,
    telegram.ADAPTER,
    ses.ADAPTER,
    mailgun.ADAPTER,
)
