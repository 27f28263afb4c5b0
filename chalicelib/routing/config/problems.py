"""What is wrong with a routing configuration, and where: one ``FILE:LINE: FIELD: MESSAGE`` line per problem."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration: where (line, field path) and what."""

    line: int | None
    field: str
    message: str

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ConfigError(ValueError):
    """A routing configuration that cannot be used; ``str()`` is one ``FILE:LINE: FIELD: MESSAGE`` line per problem."""

    def __init__(self, message: str, source: str = "", problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message)
        self.source = source
        self.problems = problems

    @classmethod
    def from_problems(cls, source: str, problems: Iterable[Problem]) -> ConfigError:
        ordered = tuple(sorted(problems, key=lambda p: (p.line or 0, p.field)))
        return cls("\n".join(p.render(source) for p in ordered), source, ordered)
