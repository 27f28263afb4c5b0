"""One retry-on-conflict helper (``chalicelib.store.retry``) instead of a hand-written loop per writer.

A step reads, decides and makes one conditional write; when another writer got there first the write raises
``TransactionConflict`` and the whole step runs again from fresh reads, at most ``ATTEMPTS`` times.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from chalicelib.store import retry
from chalicelib.store.dynamo import TransactionConflict

CHALICELIB = Path(__file__).resolve().parents[2] / "chalicelib"
NOT_YET: set[str] = set()  # files allowed a loop of their own while they move to the helper: none left


def retry_loops(source: str) -> list[int]:
    """Lines of ``for``/``while`` loops that catch ``TransactionConflict`` themselves to go round again."""
    found = []
    for loop in ast.walk(ast.parse(source)):
        if not isinstance(loop, ast.For | ast.While):
            continue
        for node in ast.walk(loop):
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                caught = [node.type] if not isinstance(node.type, ast.Tuple) else list(node.type.elts)
                if any(isinstance(c, ast.Name) and c.id == "TransactionConflict" for c in caught):
                    found.append(loop.lineno)
                    break
    return found


def test_no_writer_hand_writes_its_retry_loop() -> None:
    found = {
        str(path.relative_to(CHALICELIB)): lines
        for path in sorted(CHALICELIB.rglob("*.py"))
        if str(path.relative_to(CHALICELIB)) not in NOT_YET
        and path.name != "retry.py"
        and (lines := retry_loops(path.read_text(encoding="utf-8")))
    }
    assert not found, f"use chalicelib.store.retry.on_conflict instead of these loops: {found}"


def test_the_check_finds_the_loops_it_replaced() -> None:
    loop = (
        "for _ in range(_ATTEMPTS):\n"
        "    try:\n        transact(actions)\n"
        "    except TransactionConflict:\n        continue\n"
        "    return done\n"
    )
    assert retry_loops(loop) == [1]
    assert retry_loops("try:\n    transact(a)\nexcept TransactionConflict:\n    pass\n") == []


def _losing(times: int) -> tuple[list[int], object]:
    calls: list[int] = []

    def step() -> str:
        calls.append(len(calls) + 1)
        if len(calls) <= times:
            raise TransactionConflict(["ConditionalCheckFailed"])
        return "written"

    return calls, step


def test_a_step_that_loses_a_race_runs_again_from_the_start() -> None:
    calls, step = _losing(2)
    assert retry.on_conflict(step) == "written"  # type: ignore[arg-type]
    assert calls == [1, 2, 3]


def test_after_every_attempt_lost_it_gives_up_with_the_reasons() -> None:
    calls, step = _losing(99)
    with pytest.raises(retry.StillConflicting) as raised:
        retry.on_conflict(step)  # type: ignore[arg-type]
    assert len(calls) == retry.ATTEMPTS
    assert raised.value.reasons == ["ConditionalCheckFailed"]
    calls, step = _losing(99)
    assert retry.or_else(step, "gave up") == "gave up"  # type: ignore[arg-type]
    assert len(calls) == retry.ATTEMPTS


def test_a_nested_step_that_gave_up_is_not_retried_around() -> None:
    runs: list[int] = []

    def outer() -> None:
        runs.append(1)
        retry.on_conflict(lambda: (_ for _ in ()).throw(TransactionConflict(["None"])))

    with pytest.raises(retry.StillConflicting):
        retry.on_conflict(outer)
    assert runs == [1]  # not ATTEMPTS x ATTEMPTS


def test_other_errors_are_not_retried() -> None:
    runs: list[int] = []

    def step() -> None:
        runs.append(1)
        raise ValueError("not a race")

    with pytest.raises(ValueError):
        retry.on_conflict(step)
    assert runs == [1]
