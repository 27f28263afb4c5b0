"""Field types shared by our own JSON channels (web chat, the API channel)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, ValidationError

from chalicelib.errors import InvalidJson, InvalidPayload

Id = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Language = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
Model = TypeVar("Model", bound=BaseModel)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("is not an e-mail address")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _iso_time(value: str) -> str:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be an ISO-8601 time such as 2026-11-23T10:00:00Z") from None
    return value


def _flat(value: dict[str, Any]) -> dict[str, Any]:
    for key, item in value.items():
        if not isinstance(item, str | bool | int | float) or (isinstance(item, str) and len(item) > 500):
            raise ValueError(f"value of {key!r} must be a string (up to 500 characters), number or boolean")
    return value


Email = Annotated[str, StringConstraints(max_length=254), AfterValidator(_email)]
MessageText = Annotated[Text, AfterValidator(_not_blank)]
Timestamp = Annotated[str, AfterValidator(_iso_time)]
Metadata = Annotated[dict[str, Any], Field(max_length=20), AfterValidator(_flat)]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def load_json(raw: bytes | str) -> Any:
    """JSON as providers may send it, or ``InvalidJson``: never a 5xx for what a caller controls.

    ``ValueError`` covers bad UTF-8, bad syntax and integers too long to convert; NaN and Infinity
    are refused (DynamoDB cannot hold them); ``RecursionError`` is absurd nesting.
    """
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidJson(f"body is not JSON we accept: {str(exc)[:200]}") from None


def load_json_object(raw_body: bytes, model: type[Model]) -> Model:
    """Parse a JSON object body into ``model``; errors name the problem (400 not JSON, 422 bad fields)."""
    document = load_json(raw_body)
    if not isinstance(document, dict):
        raise InvalidPayload("body must be a JSON object")
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise InvalidPayload.naming_fields(exc) from None
