"""``canned_responses:`` in routing.yaml: replies agents insert from the console, with variables.

A text names variables in braces: ``{customer.name}``, ``{customer.first_name}``, ``{customer.email}``,
``{customer.phone}``, ``{agent.name}``, ``{conversation.id}``, ``{conversation.channel}`` and ``{order_number}``
(found in the customer's messages by ``order_number``, a regular expression whose first group, or whole match,
is the number). Any other name in braces is a config error naming the line and field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

VARIABLES = (
    "customer.name",
    "customer.first_name",
    "customer.email",
    "customer.phone",
    "agent.name",
    "conversation.id",
    "conversation.channel",
    "order_number",
)
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
# An order number as customers write it: "order 12345", "Bestellung Nr. 12345", "#12345".
DEFAULT_ORDER_NUMBER = (
    r"(?i)(?:order|bestellung|auftrag)\s*(?:number|no\.?|nr\.?|nummer)?\s*#?\s*(\d{4,12})|#(\d{4,12})"
)

_Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
_Title = Annotated[str, StringConstraints(min_length=1, max_length=120)]
_Text = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
_Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CannedResponseIn(_Strict):
    id: _Id
    title: _Title
    text: _Text
    language: _Language | None = None  # None: shown whatever the conversation's language
    queues: Annotated[list[_Id], BeforeValidator(_listify)] = Field(default_factory=list)  # empty: every queue

    @field_validator("text")
    @classmethod
    def _known_variables(cls, text: str) -> str:
        unknown = [name for name in PLACEHOLDER.findall(text) if name not in VARIABLES]
        if unknown:
            raise PydanticCustomError(
                "canned_variable",
                f"unknown variable {{{unknown[0]}}}; known: " + ", ".join(f"{{{v}}}" for v in VARIABLES),
            )
        return text


def _check_pattern(value: str) -> str:
    try:
        re.compile(value)
    except re.error as error:
        raise PydanticCustomError("canned_pattern", f"order_number is not a regular expression: {error}") from None
    return value


class CannedResponsesIn(_Strict):
    """A list of responses, or a mapping with ``order_number`` (the pattern) and ``responses``."""

    order_number: Annotated[str, StringConstraints(min_length=1, max_length=300)] = DEFAULT_ORDER_NUMBER
    responses: list[CannedResponseIn] = Field(default_factory=list)

    @field_validator("order_number")
    @classmethod
    def _pattern(cls, value: str) -> str:
        return _check_pattern(value)

    @field_validator("responses")
    @classmethod
    def _unique(cls, responses: list[CannedResponseIn]) -> list[CannedResponseIn]:
        seen: set[str] = set()
        for response in responses:
            if response.id in seen:
                raise PydanticCustomError("canned_id", f"canned response id {response.id!r} is used twice")
            seen.add(response.id)
        return responses


def canned_in(value: Any) -> Any:
    """``canned_responses:`` written as a plain list means the responses, with the default order-number pattern."""
    return {"responses": value} if isinstance(value, list) else value


CannedField = Annotated[CannedResponsesIn, BeforeValidator(canned_in)]


@dataclass(frozen=True)
class CannedResponse:
    response_id: str
    title: str
    text: str
    language: str | None = None
    queues: tuple[str, ...] = ()

    def fits(self, language: str | None, queues: tuple[str, ...]) -> bool:
        """Whether it is offered in a conversation in ``language`` waiting in (or taken from) ``queues``."""
        if self.language and language and self.language != language.lower().replace("_", "-").split("-")[0]:
            return False
        return not self.queues or any(q in self.queues for q in queues)


@dataclass(frozen=True)
class CannedResponses:
    responses: tuple[CannedResponse, ...] = ()
    order_number: str = DEFAULT_ORDER_NUMBER


def build_canned(raw: CannedResponsesIn) -> CannedResponses:
    return CannedResponses(
        responses=tuple(CannedResponse(r.id, r.title, r.text, r.language, tuple(r.queues)) for r in raw.responses),
        order_number=raw.order_number,
    )
