"""Escalation steps and the expected-wait estimate, without AWS."""

from __future__ import annotations

import pytest

from chalicelib.routing.model import Contact

QUEUED_AT = "2026-11-23T10:00:00.000000Z"
DEADLINE = "2026-11-23T10:05:00.000000Z"


@pytest.fixture
def engine():
    from chalicelib.routing import engine

    return engine


def _contact(**overrides) -> Contact:
    values = {
        "contact_id": "c1",
        "customer_id": "cus_1",
        "channel": "webchat",
        "enqueued_at": QUEUED_AT,
        "queues": ("billing",),
        "required_skills": {"billing": 4, "spanish": 2},
        "priority": 2,
        "sla_deadline": DEADLINE,
    }
    return Contact(**{**values, **overrides})


def _step(**values):
    return {
        "after_seconds": None,
        "before_breach_seconds": None,
        "set_skills": {},
        "drop_skills": [],
        "add_queues": [],
        "overflow_to": None,
        "raise_priority": 0,
        **values,
    }


def test_relax_then_drop_a_skill(engine):
    relaxed = engine.apply_step(_contact(), _step(set_skills={"billing": 2}))
    assert relaxed.required_skills == {"billing": 2, "spanish": 2} and relaxed.next_step == 1
    dropped = engine.apply_step(relaxed, _step(drop_skills=["spanish"]))
    assert dropped.required_skills == {"billing": 2}


def test_widen_then_overflow_then_raise_priority(engine):
    wider = engine.apply_step(_contact(), _step(add_queues=["support", "billing"]))
    assert wider.queues == ("billing", "support")
    moved = engine.apply_step(wider, _step(overflow_to="default"))
    assert moved.queues == ("default",)
    urgent = engine.apply_step(moved, _step(raise_priority=9))
    assert urgent.priority == 9, "priority stops at 9"


def test_step_times_after_queueing_or_before_the_breach(engine):
    contact = _contact(escalation=(_step(after_seconds=90), _step(before_breach_seconds=30)))
    assert engine.step_due(contact, 0) == "2026-11-23T10:01:30.000000Z"
    assert engine.step_due(contact, 1) == "2026-11-23T10:04:30.000000Z"


def test_expected_wait_grows_with_position_and_shrinks_with_agents_at_work(engine):
    stats = {"avg_handle_seconds": 240, "working": 2}
    assert engine.expected_wait_seconds(0, stats) == 240
    assert engine.expected_wait_seconds(1, stats) == 240
    assert engine.expected_wait_seconds(2, stats) == 480
    assert engine.expected_wait_seconds(0, {}) == 300, "no history yet: five minutes"


def test_every_set_of_required_skills_the_config_can_produce_is_known(engine):
    from chalicelib.routing.config import load_file
    from tests.support import FIXTURES

    config = load_file(FIXTURES / "routing/engine_test.yaml")
    found = engine.requirements(config)
    # Each rule's skills, then after each step: billing relaxed to 2, english dropped; no skills at all.
    assert len(found) == 5 and {frozenset(skills.items()) for skills in found} == {
        frozenset(),
        frozenset({"billing": 3, "english": 2}.items()),
        frozenset({"billing": 2, "english": 2}.items()),
        frozenset({"billing": 2}.items()),
        frozenset({"spanish": 2}.items()),
    }
