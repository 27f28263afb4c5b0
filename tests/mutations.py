"""A hypothesis strategy shared by the channel fuzz tests: real provider payloads, a few fields broken."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import strategies as st


def _paths(node: object, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield from _paths(child, (*prefix, key))


def mutated_fixtures(directory: Path, values: st.SearchStrategy[Any], max_changes: int) -> st.SearchStrategy[Any]:
    """A JSON fixture from ``directory`` with 1..``max_changes`` fields deleted or replaced by ``values``."""

    @st.composite
    def mutated(draw: st.DrawFn) -> Any:
        name = draw(st.sampled_from(sorted(p.name for p in directory.glob("*.json"))))
        document = json.loads((directory / name).read_bytes())
        for _ in range(draw(st.integers(min_value=1, max_value=max_changes))):
            path = draw(st.sampled_from([p for p in _paths(document) if p][::-1] or [()]))  # deepest first
            if not path:
                return draw(values)
            parent = document
            for key in path[:-1]:
                parent = parent[key]
            if draw(st.booleans()):
                del parent[path[-1]]
            else:
                parent[path[-1]] = draw(values)
        return document

    return mutated()
