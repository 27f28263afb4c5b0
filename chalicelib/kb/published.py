"""The knowledge base in force: the deployed ``articles/`` folder, indexed once per container."""

from __future__ import annotations

from functools import lru_cache

from chalicelib.kb.articles import DEFAULT_DIR, load_base
from chalicelib.kb.index import Index


@lru_cache(maxsize=1)
def default_index() -> Index:
    """The deployed base, parsed and indexed on first use in a container."""
    return Index(load_base(DEFAULT_DIR))


def current_index() -> Index:
    return default_index()
