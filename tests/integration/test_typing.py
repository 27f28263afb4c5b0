"""A typing indicator both ways over the WebSockets: the widget's {"action": "typing"} (with the visitor's own
credentials) reaches the agent the conversation is assigned to, the agent's reaches the conversation's open
widgets; nobody else hears either, nothing is stored, and a bad command is an error frame."""

from __future__ import annotations

import json

from tests.integration.test_widget_api import _accepted_by_ada, _frames, _post, _visitor_query, _widget_connects
from tests.support import agent_says, connect_agent, create_agent, data_items, pushed, ws_event


def _says(client, connection_id: str, **command) -> None:
    """A command on a WebSocket that answers nothing when it works."""
    client.lambda_.invoke("ws_message", ws_event("$default", connection_id, body=json.dumps(command)))


def test_the_visitor_typing_reaches_the_assigned_agent_only(client):
    conversation, ada = _accepted_by_ada(client, "v_grace", "My card was charged twice")
    create_agent(client, "bob")
    bob = connect_agent(client, "bob")
    widget, status = _widget_connects(client, _visitor_query("v_grace", conversation))
    assert status == 200
    stored_before = len(data_items())

    _says(client, widget, action="typing", **_visitor_query("v_grace", conversation))

    [frame] = _frames(ada, "typing")
    assert frame == {"type": "typing", "contact_id": conversation, "who": "visitor"}
    assert _frames(bob, "typing") == [] and pushed(widget) == []
    assert len(data_items()) == stored_before, "typing stores nothing"


def test_someone_elses_visitor_id_cannot_type_into_a_conversation(client):
    conversation, ada = _accepted_by_ada(client, "v_grace", "My card was charged twice")
    mallorys = _post(client, "v_mallory", "m_1", "Hello?").json_body["conversation_id"]
    mallory, _ = _widget_connects(client, _visitor_query("v_mallory", mallorys))

    _says(client, mallory, action="typing", **_visitor_query("v_mallory", conversation))

    assert _frames(ada, "typing") == []
    [error] = _frames(mallory, "error")
    assert error["status"] == 404


def test_the_agent_typing_reaches_the_visitors_open_widgets(client):
    conversation, ada = _accepted_by_ada(client, "v_grace", "My card was charged twice")
    widget, _ = _widget_connects(client, _visitor_query("v_grace", conversation))
    other_tab, _ = _widget_connects(client, _visitor_query("v_grace", conversation))

    _says(client, ada, action="typing", conversation_id=conversation)

    assert _frames(widget, "typing") == [{"type": "typing", "conversation_id": conversation}]
    assert _frames(other_tab, "typing") == _frames(widget, "typing")
    assert not _frames(ada, "error") and not _frames(ada, "typing"), "no answer to the typing agent"


def test_an_agent_cannot_type_into_a_conversation_not_theirs(client):
    conversation, _ = _accepted_by_ada(client, "v_grace", "My card was charged twice")
    widget, _ = _widget_connects(client, _visitor_query("v_grace", conversation))
    create_agent(client, "bob")
    bob = connect_agent(client, "bob")

    agent_says(client, bob, action="typing", conversation_id=conversation)

    assert _frames(widget, "typing") == []
    [error] = _frames(bob, "error")
    assert error["status"] == 403
    agent_says(client, bob, action="typing")
    assert _frames(bob, "error")[-1]["status"] == 422
