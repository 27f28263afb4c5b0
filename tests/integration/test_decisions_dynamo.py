"""Decision records and contact records on DynamoDB (moto), through the API an agent and a supervisor use:
saved in the transactions of the changes they describe, read back by contact and by period, shown by
``GET /contacts/{id}/decisions``."""

from __future__ import annotations

import json

from chalicelib import cli, clock
from chalicelib.routing import records
from chalicelib.routing.model import Contact
from chalicelib.settings import get_settings
from chalicelib.store import aws
from chalicelib.store import routing as routing_store
from chalicelib.store.dynamo import from_item, key, to_item, transact
from tests.support import as_agent, bearer, connect_agent, create_agent, drain, offers_to, visitor_conversation


def as_supervisor() -> dict[str, str]:
    return {"Content-Type": "application/json", **bearer("sue", "supervisor")}


def _raw(contact_id: str, sk: str) -> dict:
    item = aws.client("dynamodb").get_item(TableName=get_settings().routing_table, Key=key(f"CONTACT#{contact_id}", sk))
    return from_item(item["Item"])


def test_an_offer_s_decision_is_stored_with_it_and_shown_to_supervisors(client):
    create_agent(client, "ada", skills={"english": 2})
    create_agent(client, "bob", presence="Away")
    create_agent(client, "cyd", capacity=1)
    connect_agent(client, "ada")
    connect_agent(client, "cyd")
    conversation = visitor_conversation(client, 1)
    drain(client)

    [decision] = routing_store.decisions_of(conversation)
    contact = routing_store.get_contact(conversation)
    assert decision["offer_id"] == contact.offer_id
    assert decision["agent_id"] == contact.offered_to
    assert {r["id"] for r in decision["ranked"]} == {"ada", "cyd"}, "bob is Away: not in the pool"
    assert set(decision["ranked"][0]["key"]) == {
        "preferred",
        "flexibility",
        "proficiency",
        "load_permille",
        "idle_since",
        "agent_id",
    }, "the default (balanced) policy's keys, by name"
    stored = _raw(conversation, f"DECISION#{decision['made_at']}#{decision['offer_id']}")
    retention = get_settings().decision_retention_days * 86400
    assert stored["expires_at"] == int(clock.parse_iso(decision["made_at"]).timestamp()) + retention

    shown = client.http.get(f"/contacts/{conversation}/decisions", headers=as_supervisor())
    assert shown.status_code == 200, shown.body
    assert shown.json_body["decisions"] == [decision]
    assert shown.json_body["records"][0]["offers"][0]["agent_id"] == contact.offered_to
    assert client.http.get(f"/contacts/{conversation}/decisions", headers=as_agent("ada")).status_code == 403
    assert client.http.get(f"/contacts/{conversation}/decisions").status_code == 401
    unknown = client.http.get("/contacts/nope/decisions", headers=as_supervisor())
    assert unknown.status_code == 404 and unknown.json_body["error"] == "not_found"


def test_a_contact_record_keeps_offers_accept_first_response_transfer_and_close(client):
    create_agent(client, "ada", capacity=2)
    create_agent(client, "bob", capacity=2)
    ada = connect_agent(client, "ada")
    connect_agent(client, "bob")
    conversation = visitor_conversation(client, 1)
    drain(client)
    first = "ada" if offers_to(ada) else "bob"
    second = "bob" if first == "ada" else "ada"
    assert client.http.post(f"/conversations/{conversation}/decline", headers=as_agent(first)).status_code == 200
    drain(client)
    assert client.http.post(f"/conversations/{conversation}/accept", headers=as_agent(second)).status_code == 200
    for text in ("Hello!", "Looking into it."):
        sent = client.http.post(
            f"/conversations/{conversation}/messages", headers=as_agent(second), body=json.dumps({"text": text})
        )
        assert sent.status_code == 202, sent.body
    moved = client.http.post(
        f"/conversations/{conversation}/transfer", headers=as_agent(second), body=json.dumps({"queue": "default"})
    )
    assert moved.status_code == 200, moved.body
    drain(client)
    taker = routing_store.get_contact(conversation).offered_to
    assert client.http.post(f"/conversations/{conversation}/accept", headers=as_agent(taker)).status_code == 200
    closed = client.http.post(
        f"/conversations/{conversation}/close", headers=as_agent(taker), body=json.dumps({"wrap_up": "resolved"})
    )
    assert closed.status_code == 200, closed.body

    [record] = routing_store.records_of(conversation)
    summary = records.summary(record)
    kinds = [e["kind"] for e in summary["lifecycle"]]
    assert kinds == [
        "arrived",
        "queued",
        "offered",
        "declined",
        "offered",
        "accepted",
        "first_response",
        "transferred",
        "offered",
        "accepted",
        "closed",
    ]
    assert summary["accepted_by"] == second, "the first acceptance is the customer's wait"
    assert summary["sla_met"] is True
    assert summary["wrap_up"] == "resolved" and summary["state"] == "closed"
    first_response = [e for e in summary["lifecycle"] if e["kind"] == "first_response"]
    assert len(first_response) == 1 and summary["first_response_at"] == first_response[0]["at"]
    assert len(routing_store.decisions_of(conversation)) == 3

    arrived = summary["arrived_at"]
    stored = _raw(conversation, f"RECORD#{arrived}")
    assert stored["gsi1pk"] == f"CONTACTS#{arrived[:10]}"
    assert [e["kind"] for e in stored["events"]] == ["arrived", "queued", "offered"], "the indexed part: written once"
    assert "gsi1pk" not in _raw(conversation, f"RECORDLOG#{arrived}"), "the rest is in no index"
    day = arrived[:10] + "T00:00:00.000000Z"
    period = list(routing_store.records_between(day, clock.plus_seconds(day, 86400)))
    assert [r["contact_id"] for r in period] == [conversation]
    assert list(routing_store.records_between(clock.plus_seconds(day, 86400), clock.plus_seconds(day, 2 * 86400))) == []


def test_a_period_is_read_from_the_index_without_a_scan(client):
    create_agent(client, "ada", capacity=3)
    connect_agent(client, "ada")
    conversations = [visitor_conversation(client, n) for n in range(3)]
    drain(client)
    calls: list[str] = []
    dynamodb = aws.client("dynamodb")

    def note(model, **_):
        calls.append(model.name)

    dynamodb.meta.events.register("before-call.dynamodb.*", note)
    try:
        now = clock.now_iso()
        found = list(routing_store.records_between(clock.plus_seconds(now, -3600), clock.plus_seconds(now, 60)))
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb.*", note)
    assert sorted(r["contact_id"] for r in found) == sorted(conversations)
    assert "Scan" not in calls and set(calls) == {"Query", "BatchGetItem"}, "the records' logs are read by key"


def test_explain_contact_names_every_candidate_and_who_got_it(client, capsys):
    create_agent(client, "ada", capacity=2)
    create_agent(client, "bob", capacity=2)
    create_agent(client, "cyd", capacity=2)
    connect_agent(client, "ada")
    connect_agent(client, "bob")
    connect_agent(client, "cyd")
    conversation = visitor_conversation(client, 1)
    drain(client)
    first = routing_store.get_contact(conversation).offered_to
    client.http.post(f"/conversations/{conversation}/decline", headers=as_agent(first))
    drain(client)
    second = routing_store.get_contact(conversation).offered_to
    client.http.post(f"/conversations/{conversation}/accept", headers=as_agent(second))

    assert cli.main(["explain-contact", conversation]) == 0
    out = capsys.readouterr().out
    for name in ("ada", "bob", "cyd"):
        assert f". {name}  preferred=False" in out, out
    assert f"{first}: declined it before" in out
    assert f"offer 1 ({routing_store.decisions_of(conversation)[0]['offer_id']}) to {first}" in out
    assert f"to {second} at" in out and ": accepted" in out
    assert "SLA met" in out

    assert cli.main(["explain-contact", conversation, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [d["agent_id"] for d in document["decisions"]] == [first, second]
    assert cli.main(["explain-contact", "nope"]) == 1
    assert "no contact nope" in capsys.readouterr().err


def test_a_record_an_earlier_version_kept_in_one_item_reads_whole_with_what_this_one_appends(client):
    """An earlier version appended every event to the indexed item: at a deploy, its open contacts' later
    events go to the log, and readers show one record, events in order, set-once fields kept."""
    now = clock.now_iso()
    contact = Contact("conv_up", "cus_up", "webchat", now, sla_deadline=clock.plus_seconds(now, 600), arrived_at=now)
    offered = contact.offered("ada", "off_up", now, clock.plus_seconds(now, 30), 20)
    assigned = offered.assigned(now)
    earlier = {
        "pk": "CONTACT#conv_up",
        "sk": f"RECORD#{now}",
        "gsi1pk": routing_store.record_partition(now),
        "gsi1sk": f"{now}#conv_up",
        "contact_id": "conv_up",
        "customer_id": "cus_up",
        "arrived_at": now,
        "state": "assigned",
        "accepted_at": now,
        "accepted_by": "ada",
        "events": [
            records.event("arrived", now),
            records.event("queued", now),
            records.event("offered", now, offer_id="off_up", agent_id="ada"),
            records.event("accepted", now, offer_id="off_up", agent_id="ada"),
        ],
    }
    aws.client("dynamodb").put_item(TableName=get_settings().routing_table, Item=to_item(earlier))
    later = clock.plus_seconds(now, 60)
    closed = assigned.closed(later, "resolved")
    transact(routing_store.lifecycle_actions([records.closed(assigned, closed, later)]))

    [record] = routing_store.records_of("conv_up")
    assert [e["kind"] for e in record["events"]] == ["arrived", "queued", "offered", "accepted", "closed"]
    assert record["state"] == "closed" and record["wrap_up"] == "resolved" and record["accepted_at"] == now
    [period] = list(routing_store.records_between(clock.plus_seconds(now, -1), clock.plus_seconds(now, 1)))
    assert period == record
