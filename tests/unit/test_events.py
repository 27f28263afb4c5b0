"""Routing events survive the queue, and their FIFO keys make producer retries harmless."""

from __future__ import annotations

import pytest

from chalicelib.routing.events import (
    AgentFreed,
    AgentLeftCall,
    ContactRequeued,
    ConversationMessage,
    UnknownEvent,
    from_body,
)


def test_events_round_trip_through_a_queue_body():
    events = [
        ConversationMessage("conv_1", "cus_1", "webchat", "msg_1", "2026-11-23T10:00:00.000000Z"),
        ContactRequeued("conv_1", "off_1"),
        AgentFreed("ada", cause="closed-conv_1"),
        AgentLeftCall("conv_1", "ada", "CA1"),
    ]
    for event in events:
        assert from_body(event.to_body()) == event


def test_fifo_keys():
    message = ConversationMessage("conv_1", "cus_1", "webchat", "msg_1", "t")
    assert (message.group_id, message.dedupe_id) == ("conv_1", "msg_1")
    assert AgentFreed("ada", "x").dedupe_id == AgentFreed("ada", "x").dedupe_id != AgentFreed("ada", "y").dedupe_id
    assert len(AgentFreed("ada", "x" * 500).dedupe_id) <= 128
    left = AgentLeftCall("conv_1", "ada", "CA" + "0" * 32)
    assert (left.group_id, left.dedupe_id) == ("conv_1", "agent-left-CA" + "0" * 32), "one per agent leg"


@pytest.mark.parametrize("body", ["", "[]", '{"type": "Nope"}', '{"type": "AgentFreed"}', "{"])
def test_anything_else_is_an_unknown_event(body):
    with pytest.raises(UnknownEvent):
        from_body(body)
