"""A caller who hangs up while waiting: the contact is abandoned, counted, and nobody is offered the dead call.

Twilio tells us twice: the number's "call status changes" callback (``CallStatus=completed``, signed like every
Twilio request) and the ``<Enqueue action>`` request with ``QueueResult=hangup``. Either closes the contact through
the router's ``abandon``; both, repeated or in any order, close it once and count it once.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from urllib.parse import parse_qsl, urlencode

from chalicelib.settings import get_settings
from chalicelib.store import routing as routing_store
from tests.support import (
    PUBLIC_BASE_URL,
    REGION,
    agent_says,
    bearer,
    connect_agent,
    create_agent,
    drain,
    fixture,
    iter_contacts,
    offers_to,
    post_twilio,
    pushed,
    stored_messages,
)

VOICE, STATUS, MESSAGING = "/webhooks/twilio/voice", "/webhooks/twilio/status", "/webhooks/twilio/messaging"
INCOMING = dict(parse_qsl(fixture("twilio/incoming_call.txt").decode()))
CALL_SID = INCOMING["CallSid"]


def _call(client) -> str:
    """A call comes in; returns its conversation id (the queue's name in the TwiML)."""
    answer = post_twilio(client, VOICE, fixture("twilio/incoming_call.txt"))
    enqueue = ET.fromstring(answer.body).find("Enqueue")
    assert enqueue is not None and enqueue.text
    return enqueue.text


def _status(client, status: str, sequence: int) -> int:
    form = dict(parse_qsl(fixture("twilio/call_status_completed.txt").decode()))
    form.update(CallSid=CALL_SID, CallStatus=status, SequenceNumber=str(sequence))
    if status != "completed":
        form.pop("CallDuration", None)
        form.pop("Duration", None)
    return post_twilio(client, STATUS, urlencode(form).encode()).status_code


def _queue_exit(client, conversation_id: str, result: str = "hangup"):
    """Twilio's ``<Enqueue action>`` request once the caller left the queue (the standard call fields and
    QueueResult, QueueSid, QueueTime)."""
    form = {
        **{k: v for k, v in INCOMING.items() if k != "CallToken"},
        "CallStatus": "completed",
        "QueueResult": result,
        "QueueSid": "QU5f2b7d1e9c3a4f60718293a4b5c6d7e8",
        "QueueTime": "31",
    }
    return post_twilio(client, "/webhooks/twilio/voice/queue-exit", urlencode(form).encode())


def _contact(conversation_id: str) -> dict:
    [contact] = [c for c in iter_contacts() if c["contact_id"] == conversation_id]
    return contact


def _emf(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def test_hangup_while_queued_closes_the_contact_abandoned_and_counts_it(client, capsys):
    conversation = _call(client)
    drain(client)  # nobody to take it: the call waits
    assert _contact(conversation)["state"] == "queued"
    capsys.readouterr()

    assert _status(client, "completed", 2) == 200
    drain(client)

    contact = _contact(conversation)
    assert (contact["state"], contact["wrap_up"]) == ("closed", "abandoned")
    [record] = routing_store.records_of(conversation)
    assert record["abandoned"] is True and record["events"][-1]["kind"] == "abandoned"
    assert routing_store.queue_stats("default")["abandoned"] == 1
    view = client.http.get("/supervisor", headers=bearer("sue", "supervisor"))
    [default] = [q for q in json.loads(view.body)["queues"] if q["queue"] == "default"]
    assert default["abandoned"] == 1 and default["waiting"] == 0
    documents = [d for d in _emf(capsys.readouterr().out) if "Abandoned" in d]
    assert len(documents) == 1 and documents[0]["Abandoned"] == [1.0]
    assert (documents[0]["queue"], documents[0]["channel"]) == ("default", "voice")
    assert len(documents[0]["TimeToAbandon"]) == 1 and documents[0]["TimeToAbandon"][0] >= 0


def test_hangup_while_offered_withdraws_the_offer_frees_the_agent_and_a_later_accept_conflicts(client):
    create_agent(client, "ada", channels=("voice",))
    connection = connect_agent(client, "ada")
    conversation = _call(client)
    drain(client)
    [offer] = offers_to(connection)
    assert offer["contact_id"] == conversation

    _status(client, "completed", 2)
    drain(client)

    withdrawn = [p for p in pushed(connection) if p.get("type") == "offer_withdrawn"]
    assert withdrawn == [{"type": "offer_withdrawn", "offer_id": offer["offer_id"], "reason": "abandoned"}]
    accepted = agent_says(client, connection, action="accept", contact_id=conversation, offer_id=offer["offer_id"])
    assert accepted.get("type") == "error" and accepted.get("status") == 409, accepted
    rest = client.http.post(f"/conversations/{conversation}/accept", headers=bearer("ada", "agent"))
    assert rest.status_code == 409
    assert _contact(conversation)["state"] == "closed"
    agent = routing_store.get_agent("ada")
    assert agent is not None and agent.used == 0
    assert len(offers_to(connection)) == 1, "nobody is offered the dead call"


def test_both_signals_repeated_and_out_of_order_abandon_once(client, capsys):
    conversation = _call(client)
    drain(client)
    capsys.readouterr()

    assert _queue_exit(client, conversation).status_code == 200
    _status(client, "completed", 2)
    _status(client, "completed", 2)  # Twilio retried
    _status(client, "in-progress", 1)  # a late, older callback
    exit_again = _queue_exit(client, conversation)
    drain(client)

    assert ET.fromstring(exit_again.body).tag == "Response" and len(ET.fromstring(exit_again.body)) == 0
    assert _contact(conversation)["wrap_up"] == "abandoned"
    assert routing_store.queue_stats("default")["abandoned"] == 1
    assert sum(d["Abandoned"][0] for d in _emf(capsys.readouterr().out) if "Abandoned" in d) == 1
    assert len(routing_store.records_of(conversation)) == 1


def test_queue_exit_hangup_alone_abandons_and_a_forged_one_stores_nothing(client):
    conversation = _call(client)
    drain(client)
    form = urlencode({"CallSid": CALL_SID, "QueueResult": "hangup", "AccountSid": INCOMING["AccountSid"]}).encode()
    path = "/webhooks/twilio/voice/queue-exit"
    from tests.support import twilio_headers

    signed_elsewhere = twilio_headers(STATUS, form)  # a valid signature, for another URL
    assert client.http.post(path, headers=signed_elsewhere, body=form).status_code == 401
    drain(client)
    assert _contact(conversation)["state"] == "queued"

    assert _queue_exit(client, conversation).status_code == 200
    drain(client)
    assert _contact(conversation)["wrap_up"] == "abandoned"


def test_a_caller_who_is_bridged_or_redirected_out_of_the_queue_is_not_abandoned(client):
    conversation = _call(client)
    drain(client)
    for result in ("redirected", "bridged"):
        answer = _queue_exit(client, conversation, result)
        assert answer.status_code == 200 and len(ET.fromstring(answer.body)) == 0, "never cut a bridge"
    drain(client)
    assert _contact(conversation)["state"] == "queued"


def test_a_call_opens_its_own_conversation_even_when_an_sms_one_is_open(client):
    """Finding 6: the caller's open SMS conversation does not swallow the call; the SMS thread keeps going."""
    sms = dict(parse_qsl(fixture("twilio/inbound_sms.txt").decode()))
    sms["From"] = INCOMING["From"]  # the same person texts, then calls
    post_twilio(client, MESSAGING, urlencode(sms).encode())
    conversation = _call(client)
    drain(client)

    messages = {m["channel"]: m for m in stored_messages()}
    assert messages["voice"]["customer_id"] == messages["sms"]["customer_id"]
    assert messages["voice"]["conversation_id"] == conversation != messages["sms"]["conversation_id"]
    contacts = {c["channel"]: c for c in iter_contacts()}
    assert contacts["voice"]["contact_id"] == conversation, "the call is a voice contact of its own, to be offered"
    assert contacts["voice"]["state"] == contacts["sms"]["state"] == "queued"

    later = {**sms, "MessageSid": "SM0d6c1f4b2e8a4f5b9c3d7e1a2b3c4d5e", "Body": "also, my address changed"}
    post_twilio(client, MESSAGING, urlencode(later).encode())
    texts = [m for m in stored_messages() if m["channel"] == "sms"]
    assert {m["conversation_id"] for m in texts} == {messages["sms"]["conversation_id"]}


def test_base_url_of_the_call_is_kept_for_later_callback_urls(client):
    """Finding 5: the URL the call came in on names the webhooks' API; later REST calls build callbacks on it."""
    _call(client)
    [call] = [i for i in _data() if i["pk"] == f"CALL#twilio#{CALL_SID}"]
    assert call["callback_base"] == PUBLIC_BASE_URL
    assert call["role"] == "customer"


def _data() -> list[dict]:
    from tests.support import all_items

    return all_items(get_settings().data_table)


def test_a_hangup_that_comes_while_the_call_is_being_stored_abandons_it(client):
    """The caller hangs up as the call comes in: the status callback (a concurrent Lambda, run at the AWS
    boundary) comes after the incoming call's routing event was queued and before the call was held. The call is
    not kept in line for a caller who is gone."""
    from typing import Any

    from chalicelib.store import aws as app_clients

    create_agent(client, "ada", channels=("voice",))
    connection = connect_agent(client, "ada")
    hung_up: list[int] = []

    def caller_hangs_up(**_: Any) -> None:
        if not hung_up:
            hung_up.append(_status(client, "completed", 2))

    events = app_clients.client("sqs").meta.events
    events.register("after-call.sqs.SendMessage", caller_hangs_up)
    try:
        conversation = _call(client)
    finally:
        events.unregister("after-call.sqs.SendMessage", caller_hangs_up)
    drain(client)

    assert hung_up == [200], "the hang-up came in between"
    contact = _contact(conversation)
    assert (contact["state"], contact["wrap_up"]) == ("closed", "abandoned")
    assert routing_store.queue_stats("default")["abandoned"] == 1
    offered = [o["offer_id"] for o in offers_to(connection)]
    withdrawn = [p["offer_id"] for p in pushed(connection) if p.get("type") == "offer_withdrawn"]
    assert offered == withdrawn, "no live offer of the dead call is left"


def test_a_call_whose_first_delivery_died_before_it_was_held_is_held_by_twilios_retry(client):
    """The Lambda dies after storing the call and queueing its routing event, before holding the call; Twilio
    retries the request. The retry holds the call, so the caller's hang-up later abandons the contact."""
    from typing import Any

    from botocore.exceptions import EndpointConnectionError

    from chalicelib.store import aws as app_clients

    fired: list[str] = []

    def dies_holding_the_call(params: dict[str, Any], **_: Any) -> None:
        pk = params.get("Item", {}).get("pk", {}).get("S", "")
        if pk.startswith(("CALL#", "VOICE#")) and not fired:
            fired.append(pk)
            raise EndpointConnectionError(endpoint_url=f"https://dynamodb.{REGION}.amazonaws.com")

    events = app_clients.client("dynamodb").meta.events
    events.register("before-parameter-build.dynamodb.PutItem", dies_holding_the_call)
    try:
        first = post_twilio(client, VOICE, fixture("twilio/incoming_call.txt"))
    finally:
        events.unregister("before-parameter-build.dynamodb.PutItem", dies_holding_the_call)
    assert len(fired) == 1 and first.status_code >= 500
    conversation = _call(client)  # Twilio's retry
    drain(client)
    assert _contact(conversation)["state"] == "queued"

    assert _status(client, "completed", 2) == 200
    drain(client)

    contact = _contact(conversation)
    assert (contact["state"], contact["wrap_up"]) == ("closed", "abandoned")
    assert len(stored_messages()) == 1
