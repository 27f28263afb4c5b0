"""The knowledge base: articles ops edit like routing.yaml, and BM25 retrieval over them, for self-service.

- ``articles``: the Markdown files with front matter, checked with file, line and field (``load_base``).
- ``index``: one BM25 index per language (``Index.search`` / ``Index.answer``, ``Hit``).
- ``published``: the base in force (deployed ``articles/`` or the published override), indexed once per container.

The channels call ``search`` (ranked hits) and ``answer`` (the best hit when confident, else ``None``).
"""

from __future__ import annotations

from chalicelib.kb.articles import (
    DEFAULT_DIR,
    Article,
    Base,
    KnowledgeBaseError,
    load_base,
    parse_base,
)
from chalicelib.kb.index import Hit, Index
from chalicelib.routing.config.problems import ConfigError, Problem

build_index = Index


def current_index() -> Index:
    """The index of the base in force, built once per container (and again after a publish)."""
    from chalicelib.kb import published

    return published.current_index()


def search(text: str, *, language: str | None = None, channel: str | None = None, limit: int = 3) -> list[Hit]:
    """The best ``limit`` articles for a customer's question in the base in force, best first (maybe none)."""
    return current_index().search(text, language=language, channel=channel, limit=limit)


def answer(
    text: str, *, language: str | None = None, channel: str | None = None, min_coverage: float | None = None
) -> Hit | None:
    """The best article when it covers at least ``min_coverage`` of the question (default: ``kb.yaml``'s), else None."""
    return current_index().answer(text, language=language, channel=channel, min_coverage=min_coverage)


__all__ = [
    "DEFAULT_DIR",
    "Article",
    "Base",
    "ConfigError",
    "Hit",
    "Index",
    "KnowledgeBaseError",
    "Problem",
    "answer",
    "build_index",
    "current_index",
    "load_base",
    "parse_base",
    "search",
]
