"""The supervisor's view pushed live: a supervisor's console asks for it on its WebSocket, and what the routing
table's stream shows changed (queues' counts, agents) reaches it through ``on_routing_change``, with no polling.

The stream is moto's, read as Lambda's event source mapping reads it, through the mapping's own filters
(``tests.support.stream_records``)."""

from __future__ import annotations

import json
import uuid

from chalicelib.auth import issue_dev_token
from tests.support import (
    agent_says,
    as_admin,
    connect_agent,
    create_agent,
    deliver_stream,
    drain,
    post_webchat,
    pushed,
    record_aws_requests,
    routing_items,
    stream_records,
    webchat_payload,
    ws_event,
)


def _supervisor(client, agent_id: str = "sam") -> str:
    """A supervisor signed in on the console's WebSocket, watching the live view."""
    create_agent(client, agent_id, presence="Offline")
    connection = uuid.uuid4().hex[:12] + "="
    token = issue_dev_token(agent_id, ["supervisor"])
    answer = client.lambda_.invoke("ws_connect", ws_event("$connect", connection, query={"token": token}))
    assert answer.payload["statusCode"] == 200
    assert agent_says(client, connection, action="watch_supervisor", token=token) == {
        "type": "watching",
        "view": "supervisor",
    }
    return connection


def _frames(connection: str) -> list[dict]:
    return [f for f in pushed(connection) if f.get("type") == "supervisor"]


def _presence(client, agent_id: str, presence: str) -> None:
    body = json.dumps({"presence": presence})
    response = client.http.put(f"/agents/{agent_id}/presence", headers=as_admin(), body=body)
    assert response.status_code == 200, response.body


def test_an_agent_going_away_reaches_the_watching_supervisor_with_the_queue_counts(client):
    create_agent(client, "ada")
    sam = _supervisor(client)
    deliver_stream(client)  # what the set-up changed
    before = len(_frames(sam))

    _presence(client, "ada", "Away")
    answer = deliver_stream(client)

    assert answer == {"delivered": 1}
    [frame] = _frames(sam)[before:]
    [ada] = [a for a in frame["agents"] if a["agent_id"] == "ada"]
    assert ada["presence"] == "Away"
    [default] = [q for q in frame["queues"] if q["queue"] == "default"]
    assert default["agents"]["Away"] >= 1 and default["agents"]["Available"] == 0
    assert frame["removed_agents"] == [] and frame["at"]


def test_a_customer_waiting_shows_in_the_queue_pushed(client):
    create_agent(client, "ada", presence="Away")
    sam = _supervisor(client)
    deliver_stream(client)
    before = len(_frames(sam))

    post_webchat(client, webchat_payload(visitor="v_wait", message="m_wait"))
    drain(client)
    deliver_stream(client)

    queues = {q["queue"]: q for frame in _frames(sam)[before:] for q in frame["queues"]}
    assert queues["default"]["waiting"] == 1


def test_several_changes_in_one_batch_make_one_frame_with_the_newest_state(client):
    create_agent(client, "ada")
    sam = _supervisor(client)
    deliver_stream(client)
    before = len(_frames(sam))

    _presence(client, "ada", "Away")
    _presence(client, "ada", "Available")
    deliver_stream(client)

    [frame] = _frames(sam)[before:]
    assert [a["presence"] for a in frame["agents"] if a["agent_id"] == "ada"] == ["Available"]


def test_an_agent_cannot_watch_the_supervisor_view(client):
    create_agent(client, "ada")
    ada = connect_agent(client, "ada")

    answer = agent_says(client, ada, action="watch_supervisor", token=issue_dev_token("ada", ["agent"]))

    assert answer["type"] == "error" and answer["status"] == 403
    assert not [i for i in routing_items() if i["pk"] == "SUPERVISORS"], "nothing stored"


def test_a_supervisor_token_cannot_watch_on_another_agents_connection(client):
    create_agent(client, "ada")
    ada = connect_agent(client, "ada")
    create_agent(client, "sam")

    answer = agent_says(client, ada, action="watch_supervisor", token=issue_dev_token("sam", ["supervisor"]))

    assert answer["type"] == "error" and answer["status"] == 403
    assert not [i for i in routing_items() if i["pk"] == "SUPERVISORS"]


def test_watching_without_a_token_is_a_clear_422(client):
    create_agent(client, "sam")
    sam = connect_agent(client, "sam")

    answer = agent_says(client, sam, action="watch_supervisor")

    assert answer["status"] == 422 and "token" in answer["message"]


def test_unwatching_stops_the_pushes(client):
    create_agent(client, "ada")
    sam = _supervisor(client)
    assert agent_says(client, sam, action="unwatch_supervisor")["type"] == "unwatched"
    deliver_stream(client)
    before = len(_frames(sam))

    _presence(client, "ada", "Away")
    answer = deliver_stream(client)

    assert answer == {"delivered": 0}
    assert _frames(sam)[before:] == []


def test_with_nobody_watching_a_batch_costs_one_query(client):
    create_agent(client, "ada")
    deliver_stream(client)
    _presence(client, "ada", "Away")
    records = stream_records()
    assert records, "an agent's change passes the filters"

    sent = record_aws_requests()
    answer = client.lambda_.invoke("on_routing_change", {"Records": records}).payload

    assert answer == {"delivered": 0}
    assert sent == ["dynamodb.Query"]


def test_only_queue_counts_and_agents_pass_the_filters(client):
    create_agent(client, "ada", capacity=2)
    connect_agent(client, "ada")
    deliver_stream(client)

    post_webchat(client, webchat_payload(visitor="v_f", message="m_f"))
    drain(client)
    records = stream_records()

    keys = {(r["dynamodb"]["Keys"]["pk"]["S"].split("#")[0], r["dynamodb"]["Keys"]["sk"]["S"]) for r in records}
    assert keys, "the offer changed the agent"
    assert all(pk == "QUEUESTATS" or (pk == "AGENT" and sk == "AGENT") for pk, sk in keys), keys
