"""The routing engine under a routing config: rules, both matching directions, preferred agent, escalation,
offer expiry, business hours, queue-position acknowledgements and metrics. Time is controlled: messages are
stored and routed at chosen moments, and timers are fired at chosen moments."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib import clock
from chalicelib.conversations.models import Identity, InboundMessage
from chalicelib.routing import engine
from chalicelib.routing.events import ConversationMessage, EscalationDue, OfferTimeout, from_body
from chalicelib.store import aws
from chalicelib.store import conversations as conversation_store
from chalicelib.store import routing as routing_store
from chalicelib.store.dynamo import key, to_values
from chalicelib.store.queue import _queue_url
from tests.support import agent_says, as_admin, connect_agent, drain, offers_to, pushed

T0 = "2026-11-24T10:00:00.000000Z"  # a Tuesday; 10:00 in London, 05:00 in New York
JSON = {"Content-Type": "application/json"}


def at(seconds: float, base: str = T0) -> str:
    return clock.plus_seconds(base, seconds)


def write(
    text: str,
    visitor: str = "v1",
    when: str = T0,
    language: str | None = None,
    tier: str | None = None,
    channel: str = "webchat",
) -> str:
    """A customer's message (or, with ``channel="voice"``, a call) stored and routed at ``when``; returns the
    conversation id."""
    message = InboundMessage(
        channel=channel,
        provider="test",
        provider_message_id=f"{visitor}/{when}",
        identity=Identity("phone", visitor) if channel == "voice" else Identity("webchat", visitor),
        text=text,
        language=language,
    )
    stored = conversation_store.ingest(message, when)
    if tier:
        conversation_store.set_attributes(stored.customer_id, tier, [])
    event = ConversationMessage(
        stored.conversation_id, stored.customer_id, channel, stored.message_id, when, text, language
    )
    engine.handle(event, now=when)
    return stored.conversation_id


def agent(client, agent_id: str, presence: str = "Available", **spec: Any) -> str:
    body = {"agent_id": agent_id, "name": agent_id.title(), "presence": presence, **spec}
    response = client.http.post("/agents", headers=as_admin(), body=json.dumps(body))
    assert response.status_code == 201, response.body
    return connect_agent(client, agent_id)


def contact(contact_id: str):
    found = routing_store.get_contact(contact_id)
    assert found is not None
    return found


def system_messages(customer_id: str) -> list[dict[str, Any]]:
    return [m for m in conversation_store.timeline(customer_id) if m.get("author") == "system"]


def timers() -> list[dict[str, Any]]:
    """The delayed timers waiting on the timer queue (peeked without consuming them)."""
    sqs = aws.client("sqs")
    url = _queue_url("switchboard-timers")
    return [json.loads(m) for m in _peek_all(sqs, url)]


def _peek_all(sqs: Any, url: str) -> list[str]:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    delayed = int(attrs["Attributes"]["ApproximateNumberOfMessagesDelayed"])
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].queues["switchboard-timers"]
    bodies = [m.body for m in queue._messages]
    assert len(bodies) >= delayed
    return bodies


# --- rules -----------------------------------------------------------------------------------------


def test_the_first_matching_rule_sets_queue_skills_priority_and_deadline(routed):
    conversation = write("I want a refund for order 12")
    queued = contact(conversation)
    assert queued.rule == "billing questions"
    assert queued.queues == ("billing",)
    assert queued.required_skills == {"billing": 3, "english": 2}
    assert queued.sla_deadline == at(600), "the rule's own 10 minute SLA"
    other = contact(write("hello", visitor="v2"))
    assert (other.rule, other.queues, other.sla_deadline) == ("everything else", ("default",), at(60))


# --- matching, contact to agent ------------------------------------------------------------------------


def test_contact_goes_to_an_eligible_agent_and_the_more_proficient_first(routed):
    novice = agent(routed, "novice", skills={"billing": 2, "english": 5}, queues=["billing"])
    pro3 = agent(routed, "pro3", skills={"billing": 3, "english": 2}, queues=["billing"])
    pro5 = agent(routed, "pro5", skills={"billing": 5, "english": 2}, queues=["billing"])
    outsider = agent(routed, "outsider", skills={"billing": 5, "english": 5}, queues=["default"])
    drain(routed)

    conversation = write("Where is my refund?")

    assert [o["contact_id"] for o in offers_to(pro5)] == [conversation]
    assert offers_to(pro3) == offers_to(novice) == offers_to(outsider) == []


# --- matching, agent to contact ------------------------------------------------------------------------


def test_freed_agent_takes_highest_priority_then_earliest_deadline(routed):
    # Written while nobody works: an e-mail-like long wait, a chat due sooner, and a VIP.
    slow = write("a question", visitor="slow", when=at(-600))
    sooner = write("another question", visitor="sooner", when=at(-30))
    vip = write("VIP here", visitor="vip", when=at(-10), tier="vip")
    assert contact(vip).queues == ("default",), "VIP desk closed at 05:00 in New York: overflow to default"
    assert contact(vip).priority == 7
    assert contact(slow).sla_deadline < contact(sooner).sla_deadline < contact(vip).sla_deadline

    ada = agent(routed, "ada", capacity=20)  # room for one chat at a time
    drain(routed)
    served = []
    for _ in range(3):
        [offer] = [o for o in offers_to(ada) if o["contact_id"] not in served]
        served.append(offer["contact_id"])
        agent_says(routed, ada, action="accept", contact_id=offer["contact_id"])
        agent_says(routed, ada, action="close", contact_id=offer["contact_id"])
        drain(routed)

    # Under the default (balanced) policy priority ages, one level per quarter of the SLA waited (15 s for a
    # chat): slow waited 10 minutes longer than the others (+40 levels, more than the VIP's 7), while the VIP's 7
    # levels still beat the 20 s (+1.3 levels) that sooner waited longer. Classic order: strict priority.
    assert served == [slow, vip, sooner], "aged priority first; the VIP before a chat 20 s older"


# --- the preferred agent ---------------------------------------------------------------------------------


def test_returning_customer_goes_to_the_agent_who_served_them_within_the_window(routed):
    ada = agent(routed, "ada")
    bob = agent(routed, "bob", presence="Away")
    drain(routed)
    first = write("hello", visitor="ret", when=clock.now_iso())
    agent_says(routed, ada, action="accept", contact_id=first)
    agent_says(routed, ada, action="close", contact_id=first)
    busy = write("keep ada busy", visitor="busy", when=clock.now_iso())
    agent_says(routed, ada, action="accept", contact_id=busy)
    routed.http.put("/agents/bob/presence", headers=as_admin(), body='{"presence": "Available"}')
    drain(routed)

    again = write("it's me again", visitor="ret", when=clock.now_iso())
    stranger = write("new here", visitor="stranger", when=clock.now_iso())

    offer = next(o for o in offers_to(ada) if o["contact_id"] == again)
    assert offer["returning_customer"] is True, "ada is busier, but she served this customer"
    assert [o["contact_id"] for o in offers_to(bob)] == [stranger], "without a preference, the least loaded"


def test_preference_expires_after_the_window(routed):
    ada = agent(routed, "ada")
    drain(routed)
    first = write("hello", visitor="old", when=clock.now_iso())
    agent_says(routed, ada, action="accept", contact_id=first)
    agent_says(routed, ada, action="close", contact_id=first)
    customer = contact(first).customer_id
    assert conversation_store.get_customer(customer)["last_agent_id"] == "ada"
    aws.client("dynamodb").update_item(  # served two hours ago; the window is one hour
        TableName="switchboard-data",
        Key=key(f"CUSTOMER#{customer}", "PROFILE"),
        UpdateExpression="SET last_served_at = :then",
        ExpressionAttributeValues=to_values({":then": clock.plus_seconds(clock.now_iso(), -7200)}),
    )
    later = write("hello again", visitor="old", when=clock.now_iso())
    assert contact(later).preferred_agent is None
    fresh = write("within the hour", visitor="new", when=clock.now_iso())
    assert contact(fresh).preferred_agent is None, "never served: no preference"


# --- escalation ---------------------------------------------------------------------------------------------


def test_every_escalation_step_fires_at_its_time(routed):
    conversation = write("refund please")
    armed = [t for t in timers() if t["type"] == "EscalationDue"]
    assert armed == [{"type": "EscalationDue", "contact_id": conversation, "step": 0, "due_at": at(60)}]

    assert engine.escalate(conversation, 0, at(59)) is False, "not before its time"
    assert engine.escalate(conversation, 0, at(60)) is True
    assert contact(conversation).required_skills == {"billing": 2, "english": 2}
    assert engine.escalate(conversation, 0, at(61)) is False, "each step once"

    assert engine.escalate(conversation, 1, at(120)) is True
    assert contact(conversation).required_skills == {"billing": 2}
    assert contact(conversation).queues == ("billing", "support")

    assert engine.escalate(conversation, 2, at(180)) is True
    assert contact(conversation).queues == ("default",)

    assert engine.escalate(conversation, 3, at(569)) is False
    assert engine.escalate(conversation, 3, at(570)) is True, "30 s before the 10 minute deadline"
    assert contact(conversation).priority == 3
    steps = [t for t in timers() if t["type"] == "EscalationDue"]
    assert [(t["step"], t["due_at"]) for t in steps] == [(0, at(60)), (1, at(120)), (2, at(180)), (3, at(570))]


def test_a_relaxed_step_reaches_an_agent_who_could_not_take_it_before(routed):
    helper = agent(routed, "helper", skills={"billing": 2, "english": 3}, queues=["billing"])
    drain(routed)
    conversation = write("invoice is wrong")
    assert offers_to(helper) == []
    engine.on_timer(EscalationDue(conversation, 0, at(60)), at(60))
    assert [o["contact_id"] for o in offers_to(helper)] == [conversation]


def test_an_early_timer_is_re_armed_and_the_sweeper_catches_up_on_missed_steps(routed):
    conversation = write("refund")
    assert engine.on_timer(EscalationDue(conversation, 0, at(60)), at(10)).note == "re-armed"
    assert contact(conversation).next_step == 0
    engine.sweep(at(200))  # timers lost: the sweeper fires every step that is due
    assert contact(conversation).next_step == 3
    assert contact(conversation).queues == ("default",)


# --- offers that expire ---------------------------------------------------------------------------------------


def test_expired_offer_goes_to_the_next_agent_never_back(routed):
    ada = agent(routed, "ada")
    bob = agent(routed, "bob")
    drain(routed)
    now = clock.now_iso()
    conversation = write("hi", when=now)
    first, second = (ada, bob) if offers_to(ada) else (bob, ada)
    [offer] = offers_to(first)
    [timer] = [t for t in timers() if t["type"] == "OfferTimeout"]
    assert timer == {
        "type": "OfferTimeout",
        "contact_id": conversation,
        "offer_id": offer["offer_id"],
        "due_at": offer["expires_at"],
    }

    assert engine.on_timer(from_body(json.dumps(timer)), clock.plus_seconds(offer["expires_at"], -5)).note == "re-armed"
    assert (
        engine.on_timer(OfferTimeout(conversation, offer["offer_id"], offer["expires_at"]), offer["expires_at"]).note
        == "expired"
    )
    drain(routed)

    assert [o["contact_id"] for o in offers_to(second)] == [conversation]
    assert len(offers_to(first)) == 1
    assert {"type": "offer_withdrawn", "offer_id": offer["offer_id"], "reason": "expired"} in pushed(first)


def test_agent_who_lets_offers_expire_in_a_row_is_set_away(routed):
    ada = agent(routed, "ada")
    drain(routed)
    for n in range(2):
        conversation = write("hi", visitor=f"v{n}", when=clock.now_iso())
        offer = next(o for o in offers_to(ada) if o["contact_id"] == conversation)
        engine.expire_offer(conversation, offer["offer_id"], clock.plus_seconds(offer["expires_at"], 1))
        drain(routed)
    assert routing_store.get_agent("ada").presence.value == "Away"
    assert {"type": "presence", "presence": "Away", "reason": "offers expired"} in pushed(ada)


# --- business hours ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "open_"),
    [
        ("2026-06-02T07:30:00.000000Z", True),  # 08:30 in London (summer time)
        ("2026-06-02T17:30:00.000000Z", False),  # 18:30 in London
        ("2026-11-24T17:30:00.000000Z", True),  # 17:30 in London (winter: UTC)
        ("2026-12-25T10:00:00.000000Z", False),  # Christmas, a Friday: the holiday closes all day
        ("2026-11-28T10:00:00.000000Z", False),  # a Saturday
    ],
)
def test_out_of_hours_reply_in_the_queues_time_zone(routed, when, open_):
    conversation = write("hola", visitor="es", when=when, language="es")
    queued = contact(conversation)
    assert queued.queues == ("support",)
    replies = [m for m in system_messages(queued.customer_id) if m["kind"] == "out_of_hours"]
    if open_:
        assert replies == []
    else:
        assert [m["text"] for m in replies] == ["We are closed; we will answer when we open at 08:00 UK time."]
        assert queued.state.value == "queued", "kept queued until the queue opens"


def test_a_caller_out_of_hours_is_not_texted_the_out_of_hours_reply(routed):
    closed = "2026-11-28T10:00:00.000000Z"  # a Saturday: support is closed
    conversation = write("Incoming call", visitor="+34911234567", when=closed, language="es", channel="voice")
    queued = contact(conversation)
    assert queued.queues == ("support",) and queued.state.value == "queued"
    assert system_messages(queued.customer_id) == [], "no text to a caller, so none failed in the timeline"
    assert queued.acknowledged_at is None


# --- telling the customer where they stand ---------------------------------------------------------------------------


def test_waiting_customers_hear_their_position_and_expected_wait_at_most_once_per_interval(routed):
    conversations = [write("hello", visitor=f"q{n}", when=at(n)) for n in range(3)]
    third = contact(conversations[2])
    [ack] = system_messages(third.customer_id)
    assert ack["text"] == "You are number 3 in the queue; about 15 minutes."
    assert ack["channel"] == "webchat" and ack["direction"] == "outbound"

    write("still there?", visitor="q2", when=at(60))
    assert len(system_messages(third.customer_id)) == 1, "not again within two minutes"
    write("hello??", visitor="q2", when=at(200))
    assert len(system_messages(third.customer_id)) == 2

    routing_store.record_started("default", sla_met=True)
    routing_store.record_started("default", sla_met=True)
    routing_store.record_handled("default", 120)  # one finished in 2 minutes, one still at work
    write("ping", visitor="q2", when=at(400))
    # Third in line, one contact at work, the average handle time now 120 s: 3 x 120 s = 6 minutes.
    assert system_messages(third.customer_id)[-1]["text"].endswith("about 6 minutes.")


# --- metrics ---------------------------------------------------------------------------------------------


def test_wait_and_sla_metrics_per_queue_and_channel(routed, capsys):
    ada = agent(routed, "ada")
    drain(routed)
    capsys.readouterr()
    conversation = write("hi", when=clock.now_iso())
    agent_says(routed, ada, action="accept", contact_id=conversation)

    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    # (metric, dimension set) of every directive of every EMF document (one per invocation, queue and channel).
    published = {
        (metric["Name"], tuple(dimensions)): document
        for document in emitted
        for directive in document["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
        for dimensions in directive["Dimensions"]
    }
    per_queue = ("queue", "channel", "service")
    assert {("WaitUntilOffer", per_queue), ("WaitUntilAccept", per_queue), ("SLAMet", per_queue)} <= set(published)
    for document in emitted:
        assert {d["Namespace"] for d in document["_aws"]["CloudWatchMetrics"]} == {"Switchboard"}
        assert document["queue"] == "default" and document["channel"] == "webchat"
    # The stage-wide SLA count the breach-rate alarm divides: the service dimension alone.
    assert ("SLAMet", ("service",)) in published
    assert not [key for key in published if key[0] == "SLABreached"]
