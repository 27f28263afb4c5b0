"""One-time tokens (Mailgun's webhook token): accepted once, remembered until they could no longer verify."""

from __future__ import annotations

from chalicelib.settings import get_settings
from chalicelib.store import aws
from chalicelib.store.dynamo import get, to_item


def _pk(namespace: str, token: str) -> str:
    return f"REPLAY#{namespace}#{token}"


def seen(namespace: str, token: str) -> bool:
    return get(get_settings().data_table, _pk(namespace, token), "REPLAY") is not None


def remember(namespace: str, token: str, expires_epoch: int) -> None:
    """Record a used token; ``expires_at`` is the table's TTL attribute."""
    item = {"pk": _pk(namespace, token), "sk": "REPLAY", "expires_at": expires_epoch}
    aws.client("dynamodb").put_item(TableName=get_settings().data_table, Item=to_item(item))
