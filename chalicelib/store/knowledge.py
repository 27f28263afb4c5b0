"""The knowledge base ops published over the deployed articles: one item in the data table.

Too big for an SSM parameter (routing's override): a base of a few dozen articles is tens of KB, so it is kept
zlib-compressed in one DynamoDB item (400 KB limit; a few MB of Markdown) with the digest containers compare.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

from chalicelib.settings import get_settings
from chalicelib.store import aws

_KEY = {"pk": {"S": "KB"}, "sk": {"S": "PUBLISHED"}}
# Below DynamoDB's 400 KB item limit, with room for the other attributes.
MAX_COMPRESSED_BYTES = 380_000


class BaseTooLarge(ValueError):
    """The base does not fit in one item even compressed."""


@dataclass(frozen=True)
class PublishedBase:
    """The files of a published base as ops sent them, and their digest."""

    digest: str
    files: dict[str, str]
    settings: str | None


def publish(digest: str, files: dict[str, str], settings: str | None, published_at: str) -> None:
    """Make this base the one in force (replacing any earlier publish)."""
    blob = zlib.compress(json.dumps({"files": files, "settings": settings}).encode("utf-8"), 9)
    if len(blob) > MAX_COMPRESSED_BYTES:
        raise BaseTooLarge(f"the base is {len(blob)} bytes compressed; at most {MAX_COMPRESSED_BYTES}")
    item = {**_KEY, "digest": {"S": digest}, "base": {"B": blob}, "published_at": {"S": published_at}}
    aws.client("dynamodb").put_item(TableName=get_settings().data_table, Item=item)


def published_digest() -> str | None:
    """The digest of the base in force, or ``None`` when nobody published one (a small read, every minute)."""
    item = _get(projection="digest")
    return item["digest"]["S"] if item else None


def read() -> PublishedBase | None:
    """The published base, or ``None`` when nobody published one."""
    item = _get()
    if not item:
        return None
    data = json.loads(zlib.decompress(item["base"]["B"]).decode("utf-8"))
    return PublishedBase(digest=item["digest"]["S"], files=dict(data["files"]), settings=data.get("settings"))


def _get(projection: str | None = None) -> dict[str, Any] | None:
    extra = {"ProjectionExpression": projection} if projection else {}
    response = aws.client("dynamodb").get_item(TableName=get_settings().data_table, Key=_KEY, **extra)
    item: dict[str, Any] | None = response.get("Item")
    return item
