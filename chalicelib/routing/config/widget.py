"""``widget:`` in routing.yaml: what the web-chat widget shows and allows, served by ``GET /widget/config``.

- ``greeting``: the first thing a visitor reads, per language (``{en: "Hi!", de: "Hallo!"}``, or one text for
  every language); the widget asks for the browser's language and gets that one, else ``en``, else the first.
- ``queue``: the queue whose business hours decide whether the widget offers a chat or the offline form
  (default: the queue the rules give a web-chat message, overflow followed).
- ``pre_chat_form``: ask the visitor's name and e-mail before the first message (default off).
- ``attachments``: what a visitor may upload (``max_size`` with a unit, ``10MB``; ``types``: MIME types, a
  ``type/*`` allows a family); ``enabled: false`` hides the button.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StringConstraints
from pydantic_core import PydanticCustomError

DEFAULT_GREETING = "Hi! How can we help you today?"
DEFAULT_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf")
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_BYTES = 25 * 1024 * 1024  # what a presigned POST of the widget may ever allow
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|MB)?\s*$", re.I)
_UNITS = {"": 1, "b": 1, "kb": 1024, "mb": 1024 * 1024}

_Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
_Queue = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
_Type = Annotated[str, StringConstraints(pattern=r"^[a-z]+/(\*|[a-z0-9.+-]+)$")]


def parse_size(value: Any) -> int:
    """Bytes in ``1048576``, ``"512KB"`` or ``"10MB"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if not match:
        raise PydanticCustomError("size", "a size is a number of bytes or a number with KB or MB (10MB)")
    return int(match.group(1)) * _UNITS[(match.group(2) or "").lower()]


def _greetings(value: Any) -> Any:
    return {"en": value} if isinstance(value, str) else value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AttachmentsIn(_Strict):
    enabled: StrictBool = True
    max_size: Annotated[int, BeforeValidator(parse_size), Field(ge=1, le=MAX_BYTES)] = DEFAULT_MAX_BYTES
    types: Annotated[list[_Type], Field(min_length=1)] = Field(default_factory=lambda: list(DEFAULT_TYPES))


class WidgetIn(_Strict):
    greeting: Annotated[dict[_Language, _Text], BeforeValidator(_greetings), Field(min_length=1)] = Field(
        default_factory=lambda: {"en": DEFAULT_GREETING}
    )
    queue: _Queue | None = None
    pre_chat_form: StrictBool = False
    attachments: AttachmentsIn = Field(default_factory=AttachmentsIn)


WidgetField = Annotated[WidgetIn, BeforeValidator(lambda value: {} if value is None else value)]


@dataclass(frozen=True)
class WidgetSettings:
    greetings: tuple[tuple[str, str], ...] = (("en", DEFAULT_GREETING),)
    queue: str | None = None
    pre_chat_form: bool = False
    attachments_enabled: bool = True
    max_attachment_bytes: int = DEFAULT_MAX_BYTES
    attachment_types: tuple[str, ...] = field(default=DEFAULT_TYPES)

    def greeting(self, language: str | None) -> str:
        """The greeting in ``language`` (``de-CH`` reads ``de``), else English, else the first one written."""
        texts = dict(self.greetings)
        wanted = (language or "").lower().replace("_", "-").split("-")[0]
        return texts.get(wanted) or texts.get("en") or self.greetings[0][1]

    def allows_type(self, content_type: str) -> bool:
        family = content_type.split("/")[0] + "/*"
        return content_type in self.attachment_types or family in self.attachment_types


def build_widget(raw: WidgetIn) -> WidgetSettings:
    return WidgetSettings(
        greetings=tuple(raw.greeting.items()),
        queue=raw.queue,
        pre_chat_form=raw.pre_chat_form,
        attachments_enabled=raw.attachments.enabled,
        max_attachment_bytes=raw.attachments.max_size,
        attachment_types=tuple(dict.fromkeys(raw.attachments.types)),
    )
