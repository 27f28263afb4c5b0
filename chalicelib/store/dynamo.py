"""Thin helpers over the DynamoDB client: plain dicts in and out, transactions with readable conflicts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from chalicelib.store import aws
from chalicelib.store.retry import TransactionConflict

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

__all__ = ["TransactionConflict", "from_item", "get", "key", "to_item", "to_values", "transact", "write"]


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    """A plain dict as a DynamoDB item (``None`` values dropped)."""
    return {k: _serializer.serialize(_to_dynamo(v)) for k, v in values.items() if v is not None}


def to_values(values: dict[str, Any]) -> dict[str, Any]:
    """Expression attribute values (``:name`` keys) in DynamoDB form."""
    return {k: _serializer.serialize(_to_dynamo(v)) for k, v in values.items()}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as a plain dict (numbers as int where whole)."""
    return {k: _from_dynamo(_deserializer.deserialize(v)) for k, v in item.items()}


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def get(table: str, pk: str, sk: str) -> dict[str, Any] | None:
    """One item by key, read consistently."""
    response = aws.client("dynamodb").get_item(TableName=table, Key=key(pk, sk), ConsistentRead=True)
    item = response.get("Item")
    return from_item(item) if item else None


def transact(actions: list[dict[str, Any]]) -> None:
    """TransactWriteItems; a failed condition raises ``TransactionConflict``."""
    client = aws.client("dynamodb")
    try:
        client.transact_write_items(TransactItems=actions)
    except client.exceptions.TransactionCanceledException as exc:
        reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
        raise TransactionConflict(reasons) from None


_SINGLE = {"Put": "put_item", "Update": "update_item", "Delete": "delete_item"}


def write(actions: list[dict[str, Any]]) -> None:
    """Writes that happen together or not at all, at the lowest price.

    One action (``{"Put": ...}``, ``{"Update": ...}``, ``{"Delete": ...}``) is a plain conditional write: atomic
    by itself, and half the write units of the same item in a transaction. More actions are one transaction.
    A failed condition raises ``TransactionConflict`` either way.
    """
    if len(actions) != 1 or next(iter(actions[0])) not in _SINGLE:
        transact(actions)
        return
    [(kind, params)] = actions[0].items()
    client = aws.client("dynamodb")
    try:
        getattr(client, _SINGLE[kind])(**params)
    except client.exceptions.ConditionalCheckFailedException:
        raise TransactionConflict(["ConditionalCheckFailed"]) from None


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    if isinstance(value, set):
        return {_from_dynamo(v) for v in value}
    return value
