"""The agent workspace's API: the list's previews and unread counts (read markers), filters, the customer panel,
search, transfer targets and wrap-up codes from config."""

from __future__ import annotations

import json

from tests.support import (
    as_admin,
    as_agent,
    bearer,
    connect_agent,
    create_agent,
    drain,
    offers_to,
    post_webchat,
    webchat_payload,
)


def as_supervisor(agent_id: str = "sue") -> dict[str, str]:
    return {"Content-Type": "application/json", **bearer(agent_id, "supervisor")}


def _grace_assigned_to_ada(client) -> str:
    create_agent(client, "ada", capacity=2)
    ada = connect_agent(client, "ada")
    first = webchat_payload(visitor="v_grace", message="m1", text="Where is order 12345?", name="Grace Hopper")
    conversation = post_webchat(client, {**first, "email": "grace@example.com"}).json_body["conversation_id"]
    drain(client)
    assert offers_to(ada)
    accepted = client.http.post(f"/conversations/{conversation}/accept", headers=as_agent("ada"))
    assert accepted.status_code == 200, accepted.body
    return conversation


def _mine(client, agent: str = "ada", which: str = "") -> dict:
    response = client.http.get("/me/conversations" + (f"?filter={which}" if which else ""), headers=as_agent(agent))
    assert response.status_code == 200, response.body
    return response.json_body


def test_the_list_shows_a_preview_a_waiting_time_and_unread_counts_that_a_read_marker_clears(client):
    conversation = _grace_assigned_to_ada(client)
    post_webchat(client, webchat_payload(visitor="v_grace", message="m2", text="It said Tuesday,   it's Thursday"))
    drain(client)

    [item] = _mine(client)["conversations"]
    assert item["conversation_id"] == conversation
    assert item["preview"] == "It said Tuesday, it's Thursday"
    assert item["unread"] == 2 and item["last_direction"] == "inbound"
    assert item["waiting_seconds"] is not None and item["waiting_seconds"] >= 0
    assert _mine(client, which="waiting")["conversations"][0]["conversation_id"] == conversation

    read = client.http.post(f"/conversations/{conversation}/read", headers=as_agent("ada"))
    assert read.status_code == 200 and read.json_body["unread"] == 0
    again = _mine(client)
    assert again["conversations"][0]["unread"] == 0 and again["unread_total"] == 0, "the marker is server-side"

    post_webchat(client, webchat_payload(visitor="v_grace", message="m3", text="Hello?"))
    drain(client)
    assert _mine(client)["conversations"][0]["unread"] == 1

    reply = client.http.post(
        f"/conversations/{conversation}/messages", headers=as_agent("ada"), body=json.dumps({"text": "On its way"})
    )
    assert reply.status_code == 202, reply.body
    assert _mine(client, which="waiting")["conversations"] == [], "answered: nobody waits"


def test_a_read_marker_is_only_for_a_conversation_the_agent_may_see(client):
    conversation = _grace_assigned_to_ada(client)
    create_agent(client, "eve")
    assert client.http.post(f"/conversations/{conversation}/read", headers=as_agent("eve")).status_code == 403
    assert client.http.post("/conversations/nope/read", headers=as_agent("ada")).status_code == 404
    assert client.http.post(f"/conversations/{conversation}/read", headers=as_supervisor()).status_code == 200


def test_an_unknown_filter_is_a_400_naming_the_filters(client):
    create_agent(client, "ada")
    response = client.http.get("/me/conversations?filter=everything", headers=as_agent("ada"))
    assert response.status_code == 400, response.body
    assert "mine, waiting, closed" in response.json_body["message"]
    assert response.json_body["details"][0]["field"] == "filter"


def test_closing_needs_a_configured_wrap_up_code_and_the_closed_filter_lists_it(client):
    conversation = _grace_assigned_to_ada(client)
    codes = client.http.get("/wrap-up-codes", headers=as_agent("ada")).json_body["codes"]
    assert {"code": "resolved", "label": "Resolved"} in codes and len(codes) >= 4
    client.http.post(f"/conversations/{conversation}/read", headers=as_agent("ada"))

    unknown = client.http.post(
        f"/conversations/{conversation}/close", headers=as_agent("ada"), body=json.dumps({"wrap_up": "made_up"})
    )
    assert unknown.status_code == 400, unknown.body
    assert "made_up" in unknown.json_body["message"] and unknown.json_body["details"][0]["field"] == "wrap_up"
    assert _mine(client)["conversations"][0]["state"] == "assigned", "nothing closed"

    closed = client.http.post(
        f"/conversations/{conversation}/close", headers=as_agent("ada"), body=json.dumps({"wrap_up": "follow_up"})
    )
    assert closed.status_code == 200, closed.body
    assert _mine(client)["conversations"] == []
    [done] = _mine(client, which="closed")["conversations"]
    assert (done["conversation_id"], done["state"], done["wrap_up"]) == (conversation, "closed", "follow_up")


def test_a_close_on_the_socket_with_an_unknown_code_is_refused(client):
    from tests.support import agent_says

    conversation = _grace_assigned_to_ada(client)
    connection = connect_agent(client, "ada")
    answer = agent_says(client, connection, action="close", contact_id=conversation, wrap_up="made_up")
    assert answer["type"] == "error" and answer["status"] == 400, answer
    assert _mine(client)["conversations"][0]["state"] == "assigned"


def test_the_customer_panel_shows_identities_tier_tags_and_every_conversation(client):
    conversation = _grace_assigned_to_ada(client)
    panel = client.http.get(f"/conversations/{conversation}/customer", headers=as_agent("ada"))
    assert panel.status_code == 200, panel.body
    body = panel.json_body
    assert body["name"] == "Grace Hopper"
    assert body["identities"]["email"] == ["grace@example.com"]
    assert list(body["identities"]) == ["email", "webchat"]
    [past] = body["conversations"]
    assert past["conversation_id"] == conversation and past["channels"] == ["webchat"] and past["current"] is True

    customer = body["customer_id"]
    agent_edit = client.http.put(
        f"/customers/{customer}/attributes", headers=as_agent("ada"), body=json.dumps({"tier": "vip"})
    )
    assert agent_edit.status_code == 403
    edited = client.http.put(
        f"/customers/{customer}/attributes",
        headers=as_supervisor(),
        body=json.dumps({"tier": "vip", "tags": ["late-delivery"]}),
    )
    assert edited.status_code == 200, edited.body
    bad = client.http.put(
        f"/customers/{customer}/attributes", headers=as_supervisor(), body=json.dumps({"tier": "V I P"})
    )
    assert bad.status_code == 422 and bad.json_body["details"][0]["field"] == "tier"
    body = client.http.get(f"/conversations/{conversation}/customer", headers=as_agent("ada")).json_body
    assert (body["tier"], body["tags"]) == ("vip", ["late-delivery"])

    create_agent(client, "eve")
    assert client.http.get(f"/conversations/{conversation}/customer", headers=as_agent("eve")).status_code == 403


def test_search_finds_customers_by_name_email_and_conversation_id_for_supervisors_only(client):
    conversation = _grace_assigned_to_ada(client)
    post_webchat(client, webchat_payload(visitor="v_other", message="o1", text="Hi", name="Alan Turing"))
    drain(client)

    def search(q: str, headers: dict | None = None):
        from urllib.parse import quote

        return client.http.get(f"/search?q={quote(q)}", headers=headers or as_supervisor())

    by_name = search("grace hop").json_body
    assert [c["name"] for c in by_name["customers"]] == ["Grace Hopper"]
    assert by_name["customers"][0]["matched"] == "name"
    by_email = search("Grace@Example.com").json_body
    assert [(c["name"], c["matched"]) for c in by_email["customers"]] == [("Grace Hopper", "email")]
    by_id = search(conversation).json_body
    assert [c["conversation_id"] for c in by_id["conversations"]] == [conversation]
    assert search("nobody at all").json_body["customers"] == []
    assert search("x").status_code == 400
    assert search("grace", as_agent("ada")).status_code == 403
    assert search("grace", {"Content-Type": "application/json", **bearer("root", "admin")}).status_code == 200


def test_transfer_targets_list_every_queue_the_available_and_the_away_agents_but_me(client):
    create_agent(client, "ada")
    create_agent(client, "bob")
    create_agent(client, "cyd", presence="Away")
    targets = client.http.get("/transfer-targets", headers=as_agent("ada"))
    assert targets.status_code == 200, targets.body
    assert [a["agent_id"] for a in targets.json_body["agents"]] == ["bob"]
    assert [a["agent_id"] for a in targets.json_body["away"]] == ["cyd"], "signed in, Away: a call may consult her"
    assert {"default", "support", "vip"} <= set(targets.json_body["queues"]), targets.json_body
    assert targets.json_body["queues"] == sorted(targets.json_body["queues"])
    assert client.http.get("/transfer-targets").status_code == 401
    as_root = client.http.get("/transfer-targets", headers=as_admin()).json_body
    assert [a["agent_id"] for a in as_root["agents"]] == ["ada", "bob"]


def test_a_read_marker_goes_only_as_far_as_the_console_had_shown(client):
    """The console marks read half a second after showing messages; one that arrived meanwhile (after it moved to
    another conversation) stays unread: ``?up_to=`` the newest message it showed."""
    conversation = _grace_assigned_to_ada(client)
    [shown] = [m for m in _mine(client)["conversations"]]
    shown_at = client.http.get(f"/conversations/{conversation}", headers=as_agent("ada")).json_body["timeline"][-1][
        "received_at"
    ]
    post_webchat(client, webchat_payload(visitor="v_grace", message="m2", text="Are you there?"))
    drain(client)
    read = client.http.post(f"/conversations/{conversation}/read?up_to={shown_at}", headers=as_agent("ada"))
    assert read.status_code == 200, read.body
    assert read.json_body["read_at"] == shown_at
    [item] = _mine(client)["conversations"]
    assert item["unread"] == 1 and shown["unread"] == 1, item

    bad = client.http.post(f"/conversations/{conversation}/read?up_to=yesterday", headers=as_agent("ada"))
    assert bad.status_code == 400 and bad.json_body["details"][0]["field"] == "up_to", bad.body
