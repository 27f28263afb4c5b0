"""``replay``: stored contact records run again through the simulator reproduce the recorded waits with the
same rules, and show the difference a changed rule makes (on both stores)."""

from __future__ import annotations

import json
from pathlib import Path

from chalicelib import clock
from chalicelib.routing.events import ConversationMessage
from chalicelib.sim.replay import render, replay
from tests.router.conftest import T0, World

RULES = Path(__file__).parents[1] / "fixtures" / "routing" / "engine_test.yaml"
TEXTS = {"c1": "hello", "c2": "I want a refund", "c3": "hello again", "c4": "refund my invoice", "c5": "hi"}


def at(seconds: float) -> str:
    return clock.plus_seconds(T0, seconds)


def a_morning(world: World) -> None:
    """Five contacts; two agents answer after 4 s and work each for 100 s; ann alone knows billing."""
    world.add_agent("ann", {"billing": 4, "english": 3}, queues=("default", "billing"), capacity=20, idle_since=at(-60))
    world.add_agent("bob", {}, queues=("default",), capacity=20, idle_since=at(-30))
    for n, contact_id in enumerate(TEXTS):
        arrive = n * 30.0
        world.base.fire_timers_until(at(arrive))
        world.clock.set(at(arrive))
        event = ConversationMessage(
            contact_id, f"cus_{contact_id}", "webchat", f"m_{contact_id}", at(arrive), TEXTS[contact_id]
        )
        world.router.handle(event, at(arrive))
        world.run()
        for step in range(0, 300, 1):  # agents accept 4 s after an offer, close 100 s after accepting
            moment = at(arrive + step)
            for contact in list(world.router.store.work_of("ann")) + list(world.router.store.work_of("bob")):
                agent = contact.offered_to or contact.assigned_to
                if (
                    contact.offered_at
                    and contact.state.value == "offered"
                    and clock.seconds_between(contact.offered_at, moment) >= 4
                ):
                    world.clock.set(moment)
                    world.router.accept(agent, contact.contact_id)
                elif (
                    contact.accepted_at
                    and contact.state.value == "assigned"
                    and clock.seconds_between(contact.accepted_at, moment) >= 100
                ):
                    world.clock.set(moment)
                    world.router.close(agent, contact.contact_id, "resolved")
                    world.run()
            if n + 1 < len(TEXTS) and step >= 29:
                break


def test_replay_reproduces_the_recorded_waits_and_shows_a_changed_rule(world: World, tmp_path: Path) -> None:
    a_morning(world)
    store = world.router.store
    stored = store.records_between(T0, at(3600))
    agents = [a for a in (store.get_agent("ann"), store.get_agent("bob")) if a]
    text_of = lambda summary: TEXTS[summary["contact_id"]]  # noqa: E731 (the timeline's texts)
    lighter = tmp_path / "lighter-chats.yaml"  # a chat costs 10 units, not 20: each agent takes two at once
    lighter.write_text(RULES.read_text().replace("webchat: 20, email: 12", "webchat: 10, email: 12"))

    document = replay(stored, agents, T0, at(3600), current=RULES, candidate=lighter, text_of=text_of)

    assert document["contacts"] == 5
    recorded, current, candidate = document["recorded"], document["current"], document["candidate"]
    assert set(recorded) == set(current) == {"default", "billing"}
    for queue in recorded:
        assert current[queue]["contacts"] == recorded[queue]["contacts"]
        assert abs(current[queue]["mean_wait"] - recorded[queue]["mean_wait"]) <= 2.0, (queue, recorded, current)
    # 26 s -> 4 s under the default (balanced) policy (it already serves ann's billing work first: the classic
    # order waited longer, so the margin was 30 s).
    assert candidate["billing"]["mean_wait"] < current["billing"]["mean_wait"] - 15, (current, candidate)
    assert candidate["billing"]["service_level"] >= current["billing"]["service_level"]
    assert "billing" in "\n".join(render(document))


def test_switchboard_replay_reads_the_period_from_the_table(world: World, tmp_path: Path, capsys) -> None:
    """The command: records from DynamoDB (by day of arrival), texts from the timeline, the shipped or SSM rules."""
    if world.kind != "dynamodb":
        return  # the command reads the tables; the in-memory world is covered above
    from chalicelib import cli
    from chalicelib.settings import get_settings
    from chalicelib.store import aws, conversations
    from chalicelib.store import routing as routing_store
    from chalicelib.store.dynamo import to_item

    a_morning(world)
    for contact_id, text in TEXTS.items():  # the opening messages in the customers' timelines, as ingest keeps them
        [record] = routing_store.records_of(contact_id)
        item = {
            "pk": conversations.customer_key(f"cus_{contact_id}"),
            "sk": f"MESSAGE#{record['arrived_at']}#m_{contact_id}",
        }
        aws.client("dynamodb").put_item(TableName=get_settings().data_table, Item=to_item({**item, "text": text}))
    lighter = tmp_path / "lighter-chats.yaml"
    lighter.write_text(RULES.read_text().replace("webchat: 20, email: 12", "webchat: 10, email: 12"))

    assert cli.main(["replay", "--from", T0, "--to", at(3600), "--rules", str(lighter), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["contacts"] == 5 and document["agents"] == ["ann", "bob"]
    assert set(document["recorded"]) == {"default", "billing"}
    assert document["current"]["billing"]["contacts"] == 2, "the texts were read back: the shipped rules see refunds"
    assert "candidate" in document
    assert cli.main(["replay", "--from", at(3600), "--to", T0]) == 2
