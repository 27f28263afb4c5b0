"""An agent's day: dropped connections, transfers, notes, wrap-up codes, and what the supervisor sees."""

from __future__ import annotations

import json

from chalicelib import clock
from chalicelib.routing import engine
from chalicelib.settings import get_settings
from chalicelib.store import routing as routing_store
from tests.support import (
    as_admin,
    as_agent,
    connect_agent,
    create_agent,
    disconnect,
    drain,
    offers_to,
    post_webchat,
    visitor_conversation,
    webchat_payload,
)


def test_dropped_websocket_sets_the_agent_offline_after_the_grace_period_and_their_offer_moves_on(client):
    create_agent(client, "ada")
    create_agent(client, "bob", presence="Away")
    ada = connect_agent(client, "ada")
    bob = connect_agent(client, "bob")
    conversation = visitor_conversation(client, 1)
    drain(client)
    assert [o["contact_id"] for o in offers_to(ada)] == [conversation]
    client.http.put("/agents/bob/presence", headers=as_agent("bob"), body='{"presence": "Available"}')

    disconnect(client, ada)
    assert routing_store.get_agent("ada").presence.value == "Available", "within the reconnect grace period"
    engine.sweep(clock.plus_seconds(clock.now_iso(), get_settings().reconnect_grace_seconds + 1))
    drain(client)

    assert routing_store.get_agent("ada").presence.value == "Offline"
    assert routing_store.get_agent("ada").used == 0
    assert [o["contact_id"] for o in offers_to(bob)] == [conversation], "the offered contact moved on"
    visitor_conversation(client, 2)
    drain(client)
    assert len(offers_to(ada)) == 1, "no new offer for an agent who is gone"


def test_a_second_connection_keeps_the_agent_available(client):
    create_agent(client, "ada")
    first, second = connect_agent(client, "ada"), connect_agent(client, "ada")
    disconnect(client, first)
    assert routing_store.get_agent("ada").presence.value == "Available"
    conversation = visitor_conversation(client, 1)
    drain(client)
    assert [o["contact_id"] for o in offers_to(second)] == [conversation]


def _assigned_to_ada(client) -> str:
    create_agent(client, "ada", capacity=2)
    ada = connect_agent(client, "ada")
    conversation = visitor_conversation(client, 1)
    drain(client)
    assert offers_to(ada)
    accepted = client.http.post(f"/conversations/{conversation}/accept", headers=as_agent("ada"))
    assert accepted.status_code == 200, accepted.body
    return conversation


def test_transfer_to_an_agent_reaches_only_that_agent_and_frees_the_sender(client):
    conversation = _assigned_to_ada(client)
    create_agent(client, "bob", capacity=2)
    create_agent(client, "cyd", capacity=2)
    bob, cyd = connect_agent(client, "bob"), connect_agent(client, "cyd")

    moved = client.http.post(
        f"/conversations/{conversation}/transfer", headers=as_agent("ada"), body=json.dumps({"agent_id": "cyd"})
    )
    drain(client)

    assert moved.status_code == 200, moved.body
    assert [o["contact_id"] for o in offers_to(cyd)] == [conversation]
    assert offers_to(bob) == []
    assert routing_store.get_agent("ada").used == 0
    again = client.http.post(
        f"/conversations/{conversation}/transfer", headers=as_agent("ada"), body=json.dumps({"queue": "default"})
    )
    assert again.status_code == 403, "no longer hers"


def test_after_a_transfer_the_conversation_names_the_agent_who_has_it_not_the_one_who_handed_it_over(client):
    from chalicelib.store import conversations

    conversation = _assigned_to_ada(client)
    assert (conversations.get_conversation(conversation) or {}).get("agent_id") == "ada"
    create_agent(client, "cyd", capacity=2)
    connect_agent(client, "cyd")

    moved = client.http.post(
        f"/conversations/{conversation}/transfer", headers=as_agent("ada"), body=json.dumps({"agent_id": "cyd"})
    )
    drain(client)
    assert moved.status_code == 200, moved.body
    meta = conversations.get_conversation(conversation) or {}
    assert "agent_id" not in meta and "assigned_at" not in meta, "nobody has it while it waits for cyd"

    accepted = client.http.post(f"/conversations/{conversation}/accept", headers=as_agent("cyd"))
    assert accepted.status_code == 200, accepted.body
    assert (conversations.get_conversation(conversation) or {}).get("agent_id") == "cyd"


def test_transfer_to_a_queue_is_routed_again(client):
    conversation = _assigned_to_ada(client)
    moved = client.http.post(
        f"/conversations/{conversation}/transfer", headers=as_agent("ada"), body=json.dumps({"queue": "billing"})
    )
    assert moved.status_code == 200 and moved.json_body["queues"] == ["billing"]
    contact = routing_store.get_contact(conversation)
    assert contact.state.value == "queued" and contact.queues == ("billing",)
    bad = client.http.post(
        f"/conversations/{conversation}/transfer",
        headers=as_agent("ada"),
        body=json.dumps({"queue": "x", "agent_id": "y"}),
    )
    assert bad.status_code in (403, 422)


def test_notes_stay_internal_and_close_records_the_wrap_up(client):
    conversation = _assigned_to_ada(client)
    note = client.http.post(
        f"/conversations/{conversation}/notes", headers=as_agent("ada"), body=json.dumps({"text": "VIP, be kind"})
    )
    assert note.status_code == 201
    view = client.http.get(f"/conversations/{conversation}", headers=as_agent("ada")).json_body
    [internal] = [m for m in view["timeline"] if m["direction"] == "internal"]
    assert internal["text"] == "VIP, be kind" and internal["author"] == "ada"

    no_code = client.http.post(f"/conversations/{conversation}/close", headers=as_agent("ada"), body="{}")
    assert no_code.status_code == 422 and no_code.json_body["details"][0]["field"] == "wrap_up"
    closed = client.http.post(
        f"/conversations/{conversation}/close", headers=as_agent("ada"), body=json.dumps({"wrap_up": "resolved"})
    )
    assert closed.status_code == 200 and closed.json_body["state"] == "closed"
    assert client.http.get(f"/contacts/{conversation}", headers=as_admin()).json_body["wrap_up"] == "resolved"
    mine = client.http.get("/me/conversations", headers=as_agent("ada")).json_body["conversations"]
    assert mine == []


def test_my_conversations_lists_what_is_offered_and_assigned_to_me(client):
    conversation = _assigned_to_ada(client)
    visitor_conversation(client, 2)
    drain(client)
    mine = client.http.get("/me/conversations", headers=as_agent("ada")).json_body["conversations"]
    assert sorted(c["state"] for c in mine) == ["assigned", "offered"]
    assert conversation in [c["conversation_id"] for c in mine]


def test_supervisor_sees_queues_and_agents_live(client):
    create_agent(client, "ada", capacity=1)
    connect_agent(client, "ada")
    for n in range(3):
        visitor_conversation(client, n)
    drain(client)
    view = client.http.get("/supervisor", headers=as_admin()).json_body
    default = next(q for q in view["queues"] if q["queue"] == "default")
    assert default["waiting"] == 2
    assert default["oldest_wait_seconds"] >= 0
    [ada] = view["agents"]
    assert (ada["agent_id"], ada["presence"], ada["load"]) == ("ada", "Available", {"webchat": 1})


def test_only_the_assigned_agent_replies_and_the_reply_is_queued_for_the_customer(client):
    conversation = _assigned_to_ada(client)
    create_agent(client, "eve")
    body = json.dumps({"text": "Your order ships today."})
    assert (
        client.http.post(f"/conversations/{conversation}/messages", headers=as_agent("eve"), body=body).status_code
        == 403
    )
    sent = client.http.post(f"/conversations/{conversation}/messages", headers=as_agent("ada"), body=body)
    assert sent.status_code == 202, sent.body
    view = client.http.get(f"/conversations/{conversation}", headers=as_agent("ada")).json_body
    [reply] = [m for m in view["timeline"] if m["direction"] == "outbound"]
    assert (reply["text"], reply["author"], reply["channel"]) == ("Your order ships today.", "ada", "webchat")


def test_admin_changes_an_agents_skills_and_queues_and_routing_follows(client):
    create_agent(client, "ada", capacity=2)
    body = json.dumps({"skills": {"billing": 4}, "queues": ["billing", "default"]})
    assert client.http.patch("/agents/ada", headers=as_agent("ada"), body=body).status_code == 403
    changed = client.http.patch("/agents/ada", headers=as_admin(), body=body)
    assert changed.status_code == 200, changed.body
    assert (changed.json_body["skills"], changed.json_body["queues"]) == ({"billing": 4}, ["billing", "default"])
    unknown = client.http.patch("/agents/ada", headers=as_admin(), body=json.dumps({"queues": ["nowhere"]}))
    assert unknown.status_code == 422
    agent = routing_store.get_agent("ada")
    assert agent.skills == {"billing": 4} and agent.queues == ("billing", "default")


def test_admin_publishes_a_routing_change_that_is_checked_first(client, monkeypatch):
    from chalicelib.settings import reload_settings
    from tests.support import fixture

    monkeypatch.setenv("SWITCHBOARD_ROUTING_CONFIG_PARAMETER", "/switchboard/test/routing")
    reload_settings()
    yaml_text = fixture("routing/engine_test.yaml").decode()
    headers = {**as_admin(), "Content-Type": "application/yaml"}

    broken = client.http.put("/admin/routing", headers=headers, body=yaml_text.replace("billing: 3", "billing: 7"))
    assert broken.status_code == 422
    assert any(d["field"].endswith("skills.billing") and d["line"] for d in broken.json_body["details"])
    denied = client.http.put(
        "/admin/routing", headers={**as_agent("ada"), "Content-Type": "application/yaml"}, body=yaml_text
    )
    assert denied.status_code == 403

    published = client.http.put("/admin/routing", headers=headers, body=yaml_text)
    assert published.status_code == 200, published.body
    assert "billing questions" in published.json_body["rules"]
    conversation = post_webchat(client, webchat_payload(text="I need a refund")).json_body["conversation_id"]
    drain(client)
    assert routing_store.get_contact(conversation).queues == ("billing",), "the new rules route the next contact"
