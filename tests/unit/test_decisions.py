"""Decision records from a ranking, and ordering keys named for a reader (pure).

The router's records on both stores are tested in tests/router/test_records.py.
"""

from __future__ import annotations

from chalicelib.routing import matching, records
from chalicelib.routing.model import Agent, Contact, Presence

T0 = "2026-11-24T10:00:00.000000Z"


def test_a_decision_lists_at_most_25_ranked_and_25_skipped_but_counts_them_all():
    contact = Contact("c1", "cus_1", "webchat", T0, required_skills={"billing": 3})
    agents = [
        Agent(f"a{n:02d}", "A", Presence.AVAILABLE, {"billing": 3 if n % 2 else 1}, idle_since=T0) for n in range(70)
    ]
    # The classic order's keys (preferred, proficiency, load, idle, id); the default policy's differ.
    ranking = matching.rank_agents(contact, agents, lambda channel: 20, policy=matching.Classic())

    decision = records.offer_decision(
        ranking, chosen_for="contact", contact_id="c1", offer_id="off_1", made_at=T0, key_names=("a", "b")
    ).as_item()

    assert (len(decision["ranked"]), len(decision["skipped"])) == (records.MAX_LISTED, records.MAX_LISTED)
    assert (decision["ranked_total"], decision["skipped_total"]) == (35, 35)
    assert decision["ranked"][0] == {
        "id": "a01",
        "rank": 1,
        "key": {"a": True, "b": -3, "key2": 0, "key3": T0, "key4": "a01"},
    }
    assert decision["agent_id"] == "a01"


def test_ordering_keys_are_named_readably_and_unnamed_ones_by_position():
    assert matching.named_key(("!preferred", "-proficiency", "load"), (True, -7, 333)) == {
        "preferred": False,
        "proficiency": 7,
        "load": 333,
    }
    assert matching.named_key((), (1, "x")) == {"key0": 1, "key1": "x"}
