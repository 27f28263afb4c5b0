"""``wrap_up_codes:`` in routing.yaml: the codes an agent closes a conversation with, each with its label.

The console offers them as a picker; closing with a code not listed is a 400. A document without the section
accepts any well-formed code (older configs keep working).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

WrapUpCodeName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,40}$")]
Label = Annotated[str, StringConstraints(min_length=1, max_length=60)]


class WrapUpCodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: WrapUpCodeName
    label: Label


def unique_codes(codes: list[WrapUpCodeIn]) -> list[WrapUpCodeIn]:
    """The list as given, refusing a code listed twice (a picker with two same-named entries)."""
    seen: set[str] = set()
    for entry in codes:
        if entry.code in seen:
            raise ValueError(f"wrap-up code {entry.code!r} is listed twice")
        seen.add(entry.code)
    return codes


WrapUpCodes = Annotated[list[WrapUpCodeIn], AfterValidator(unique_codes)]
