"""A closed queue's contacts wait until it opens, whatever path would offer them; then the sweeper offers them.

The engine tests' config (tests/fixtures/routing/engine_test.yaml): ``support`` is open Monday to Friday
08:00-18:00 London time and replies out of hours; ``vip`` (New York office hours) overflows to ``default``.
Time is fixed: every engine call is given its moment, never the wall clock.
"""

from __future__ import annotations

from chalicelib.routing import engine
from chalicelib.routing.model import ContactState
from tests.integration.test_routing_engine import agent, at, contact, system_messages, write
from tests.support import offers_to

EVENING = "2026-11-24T19:00:00.000000Z"  # a Tuesday, 19:00 in London: support closed since 18:00
OPENING = "2026-11-25T08:00:00.000000Z"  # Wednesday 08:00 in London: support opens
MORNING = "2026-11-25T10:00:00.000000Z"


def test_a_contact_of_a_closed_queue_is_told_so_and_not_offered_to_an_available_agent(routed):
    sofia = agent(routed, "sofia", skills={"spanish": 3}, queues=["support"])

    conversation = write("hola", visitor="es", when=EVENING, language="es")

    queued = contact(conversation)
    assert queued.state is ContactState.QUEUED and queued.queues == ("support",)
    assert [m["kind"] for m in system_messages(queued.customer_id)] == ["out_of_hours"]
    assert offers_to(sofia) == [], "the customer was told we are closed: nobody may be offered it yet"


def test_an_agent_freed_while_the_queue_is_closed_takes_nothing_from_it(routed):
    conversation = write("hola", visitor="es", when=EVENING, language="es")
    sofia = agent(routed, "sofia", skills={"spanish": 3}, queues=["support"])

    outcome = engine.on_agent_freed("sofia", at(60, EVENING))

    assert outcome.offers == () and offers_to(sofia) == []
    assert contact(conversation).state is ContactState.QUEUED


def test_the_sweeper_offers_what_waited_once_the_queue_opens_and_not_a_minute_before(routed):
    conversations = [write("hola", visitor=f"es{n}", when=at(n, EVENING), language="es") for n in range(2)]
    sofia = agent(routed, "sofia", skills={"spanish": 3}, queues=["support"])

    for minute in range(1, 4):  # the sweeper runs every minute through the night
        assert engine.sweep(at(60 * minute, EVENING)).offers == ()
    assert engine.sweep(at(-60, OPENING)).offers == (), "07:59 in London: still closed"
    assert offers_to(sofia) == []

    opened = engine.sweep(OPENING)

    assert sorted(o.contact.contact_id for o in opened.offers) == sorted(conversations)
    assert sorted(o["contact_id"] for o in offers_to(sofia)) == sorted(conversations)


def test_an_escalation_into_a_closed_queue_offers_nothing_there(routed):
    # Billing is always open but has nobody; step 2 (after 120 s) also queues the contact in support.
    helper = agent(routed, "helper", skills={"billing": 2}, queues=["support"])
    conversation = write("Where is my refund?", visitor="b1", when=EVENING)

    assert engine.escalate(conversation, 0, at(60, EVENING))
    assert engine.escalate(conversation, 1, at(120, EVENING))

    escalated = contact(conversation)
    assert escalated.queues == ("billing", "support") and escalated.state is ContactState.QUEUED
    assert offers_to(helper) == [], "support is closed in the evening"


def test_the_same_escalation_in_opening_hours_reaches_the_support_agent(routed):
    helper = agent(routed, "helper", skills={"billing": 2}, queues=["support"])
    conversation = write("Where is my refund?", visitor="b1", when=MORNING)

    assert engine.escalate(conversation, 0, at(60, MORNING))
    assert engine.escalate(conversation, 1, at(120, MORNING))

    assert [o["contact_id"] for o in offers_to(helper)] == [conversation]


def test_a_contact_waiting_in_an_open_and_a_closed_queue_goes_only_to_the_open_queues_agents(routed):
    conversation = write("Where is my refund?", visitor="b1", when=EVENING)
    engine.escalate(conversation, 0, at(60, EVENING))
    engine.escalate(conversation, 1, at(120, EVENING))  # now waits in billing and support
    helper = agent(routed, "helper", skills={"billing": 2}, queues=["support"])
    biller = agent(routed, "biller", skills={"billing": 2}, queues=["billing"])

    assert engine.on_agent_freed("helper", at(130, EVENING)).offers == ()
    [offer] = engine.on_agent_freed("biller", at(140, EVENING)).offers

    assert offer.contact.contact_id == conversation and offers_to(helper) == []
    assert [o["contact_id"] for o in offers_to(biller)] == [conversation]


def test_out_of_hours_overflow_to_an_open_queue_is_offered_at_once(routed):
    dan = agent(routed, "dan", queues=["default"])
    night = "2026-11-25T03:00:00.000000Z"  # 22:00 in New York: closed, overflows to default
    late = write("hello", visitor="vip", when=night, tier="vip")

    assert contact(late).queues == ("default",)
    assert [o["contact_id"] for o in offers_to(dan)] == [late]


def test_a_contact_still_waiting_when_its_queue_closes_overflows_as_the_queue_says(routed):
    dan = agent(routed, "dan", queues=["default"])
    before_closing = "2026-11-24T21:50:00.000000Z"  # 16:50 in New York: the VIP desk is open, nobody is there
    vip = write("hello", visitor="vip", when=before_closing, tier="vip")
    assert contact(vip).queues == ("vip",) and offers_to(dan) == []

    assert engine.sweep(at(5 * 60, before_closing)).offers == (), "16:55: still open, still the VIP desk's"
    swept = engine.sweep(at(11 * 60, before_closing))  # 17:01: closed; out of hours vip overflows to default

    assert contact(vip).queues == ("default",)
    assert [o.contact.contact_id for o in swept.offers] == [vip]
    assert [o["contact_id"] for o in offers_to(dan)] == [vip]
