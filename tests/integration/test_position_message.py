"""A waiting customer is told their place in the queue once, whatever fails around the telling.

The router marks the contact as acknowledged and records the message in one transaction (with the
message pending-send), so a Lambda that dies after the marking can neither lose the message nor send
it twice; a job that never reached the outbox queue is queued by the sweeper. Faults are injected at
the AWS boundary (``tests/faults.py``); the customer's phone is the fake Twilio server.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.fakes.providers import TWILIO, FakeProviders, fake_providers  # noqa: F401 (a fixture)
from tests.faults import AFTER, BEFORE, Call, Faults
from tests.integration.test_fault_matrix import FIRST, SECOND, Flow
from tests.integration.test_outbound import app, fake  # noqa: F401 (fixtures)
from tests.support import stored_messages


def _marking(call: Call) -> bool:
    """The router's write that marks the waiting contact as acknowledged."""
    return call.handler == "on_routing_event" and "_mark_acknowledged" in call.site


def _queueing_the_position_message(call: Call) -> bool:
    return call.handler == "on_routing_event" and call.site.endswith("queue.send_to_outbox")


def _position_messages(providers: FakeProviders) -> list[str]:
    return [r.form["Body"] for r in providers.sent(TWILIO) if r.form["To"] == SECOND[0]]


@pytest.mark.parametrize(
    ("fault", "when"),
    [
        pytest.param(_marking, AFTER, id="dies right after marking the contact acknowledged"),
        pytest.param(_marking, BEFORE, id="dies before marking it"),
        pytest.param(_queueing_the_position_message, BEFORE, id="the outbox queue is unreachable"),
        pytest.param(_queueing_the_position_message, AFTER, id="queued, but the answer is lost"),
    ],
)
def test_the_queue_position_message_is_sent_exactly_once(app, fake, fault: Callable[[Call], bool], when: str):  # noqa: F811
    flow = Flow(app)
    flow.set_up()
    flow.customer_texts(*FIRST, "Hi, where is my order?")
    flow.router()  # offered to Ada, who is now full
    flow.faults = Faults(fail=fault, when=when)
    with flow.faults.installed():
        flow.customer_texts(*SECOND, "Hello, is anyone there?")
        flow.router()  # SQS redelivers the failed record
        flow.outbox()
        flow.sweeper()  # a minute later
        flow.outbox()
    assert flow.faults.fired, "the fault never fired"

    outbound = [m for m in stored_messages() if m["direction"] == "outbound"]
    assert [(m["kind"], m["status"]) for m in outbound] == [("queue_position", "sent")], "lost, or left queued"
    assert _position_messages(fake) == [outbound[0]["text"]], "told once, at the provider"
