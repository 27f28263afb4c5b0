"""Optimistic concurrency in one place: read, decide, write against the version read; on a lost race, again.

Every change of shared state (a contact, an agent, a conversation) is a conditional write. When another
writer got there first the write raises ``TransactionConflict`` and the whole step runs again from fresh
reads, at most ``ATTEMPTS`` times. A step that finds nothing to do simply returns. Pure: the in-memory
store of the simulator raises the same ``TransactionConflict`` as the DynamoDB one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

ATTEMPTS = 5

T = TypeVar("T")


class TransactionConflict(Exception):
    """A conditional write lost: somebody changed the item first. ``reasons`` holds one code per action."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(", ".join(reasons))
        self.reasons = reasons

    def failed(self, index: int) -> bool:
        """Whether the action at ``index`` is the one whose condition failed."""
        return index < len(self.reasons) and self.reasons[index] == "ConditionalCheckFailed"


class StillConflicting(TransactionConflict):
    """Every attempt lost its race: the state changes faster than this step can act on it."""


def on_conflict(step: Callable[[], T], attempts: int = ATTEMPTS) -> T:
    """Run ``step`` (read, decide, write) until it does not lose a race; ``StillConflicting`` after ``attempts``."""
    last: TransactionConflict | None = None
    for _ in range(attempts):
        try:
            return step()
        except StillConflicting:
            raise  # a nested step gave up already: retrying around it multiplies the attempts
        except TransactionConflict as exc:
            last = exc
    raise StillConflicting(last.reasons if last else ["conflict"])


def or_else(step: Callable[[], T], exhausted: T, attempts: int = ATTEMPTS) -> T:
    """``on_conflict``, but ``exhausted`` instead of raising when every attempt lost."""
    try:
        return on_conflict(step, attempts)
    except StillConflicting:
        return exhausted
