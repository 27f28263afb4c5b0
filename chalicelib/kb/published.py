"""The knowledge base in force: the deployed ``articles/`` folder, or the base an admin published over it.

Like routing.yaml and its SSM override (``routing.config.loading``): a container looks at the published base's
digest at most every ``REFRESH_SECONDS`` and rebuilds its index only when the digest changed, so a publish is
live everywhere within a minute and a question never pays for an index build after the first.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

from aws_lambda_powertools import Logger
from pydantic import AfterValidator, BaseModel, ConfigDict, StrictStr

from chalicelib import clock
from chalicelib.kb.articles import DEFAULT_DIR, Base, load_base, parse_base
from chalicelib.kb.index import Index
from chalicelib.store import knowledge

logger = Logger(service="switchboard", child=True)

REFRESH_SECONDS = 60


@lru_cache(maxsize=1)
def default_index() -> Index:
    """The deployed base, parsed and indexed on first use in a container."""
    return Index(load_base(DEFAULT_DIR))


@dataclass
class _Published:
    checked_at: float | None = None
    digest: str | None = None
    index: Index | None = None


_published = _Published()


def current_index(now: float | None = None) -> Index:
    """The index in force: the published base's when there is one, else the deployed base's.

    A failed read keeps what this container had (logged): self-service degrades to yesterday's answers, not none.
    """
    now = time.monotonic() if now is None else now
    state = _published
    if state.checked_at is None or not 0 <= now - state.checked_at < REFRESH_SECONDS:
        state.checked_at = now
        try:
            _refresh(state)
        except Exception:
            logger.exception("reading the published knowledge base failed; keeping the one in force")
    return state.index or default_index()


def publish(files: dict[str, str], settings: str | None) -> Base:
    """Check a base (``KnowledgeBaseError`` naming file, line and field), index it, then make it the one in force."""
    base = parse_base(files, settings)
    Index(base)  # built once here so a base that cannot be indexed is refused, not found broken by every container
    knowledge.publish(digest(files, settings), files, settings, clock.now_iso())
    return base


def digest(files: dict[str, str], settings: str | None) -> str:
    return hashlib.sha256(json.dumps([sorted(files.items()), settings]).encode("utf-8")).hexdigest()


def forget_current_index() -> None:
    """Drop this container's view of the published base (tests; the next search reads it again)."""
    global _published
    _published = _Published()


def _refresh(state: _Published) -> None:
    latest = knowledge.published_digest()
    if latest is None:
        state.digest, state.index = None, None
        return
    if latest == state.digest:
        return
    found = knowledge.read()
    if found is None:
        state.digest, state.index = None, None
        return
    state.index = Index(parse_base(found.files, found.settings))
    state.digest = found.digest


def publish_request(body: object) -> dict[str, object]:
    """PUT /admin/kb: ``{"files": {"en/x.md": "...", ...}, "settings": "min_coverage: 0.6"}``, all files at once.

    ``InvalidPayload`` (422) for a body of another shape, or one detail per mistake naming file, line and field.
    """
    from pydantic import ValidationError

    from chalicelib.errors import InvalidPayload
    from chalicelib.kb.articles import KnowledgeBaseError

    try:
        request = PublishRequest.model_validate(body)
    except ValidationError as exc:
        raise InvalidPayload.naming_fields(exc) from None
    try:
        base = publish(request.files, request.settings)
    except KnowledgeBaseError as error:
        details: list[dict[str, object]] = [
            {"file": source, "line": p.line, "field": p.field, "problem": p.message}
            for source, p in zip(error.sources, error.problems, strict=True)
        ]
        raise InvalidPayload(str(error), details) from None
    except knowledge.BaseTooLarge as error:
        raise InvalidPayload(str(error)) from None
    forget_current_index()
    return {
        "articles": [a.article_id for a in base.articles],
        "languages": sorted({a.language for a in base.articles}),
        "min_coverage": base.min_coverage,
    }


def _article_paths(files: dict[str, str]) -> dict[str, str]:
    if not files:
        raise ValueError("a base needs at least one article")
    wrong = sorted(name for name in files if not name.endswith(".md"))
    if wrong:
        raise ValueError(f"articles are .md files: {wrong[0]}")
    return files


class PublishRequest(BaseModel):
    """The body of PUT /admin/kb."""

    model_config = ConfigDict(extra="forbid")

    files: Annotated[dict[str, StrictStr], AfterValidator(_article_paths)]
    settings: StrictStr | None = None
