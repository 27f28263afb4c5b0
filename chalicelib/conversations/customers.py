"""Admin work on customers: link identities that are one person, merge two customers, read a timeline."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from chalicelib import clock
from chalicelib.conversations import identity
from chalicelib.conversations.models import EMAIL, PHONE, Identity
from chalicelib.errors import InvalidPayload, NotFound
from chalicelib.store import conversations

Kind = Annotated[str, StringConstraints(pattern=r"^[a-z_]{2,32}$")]


class IdentityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    value: Annotated[str, StringConstraints(min_length=1, max_length=320)]


class LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identities: Annotated[list[IdentityIn], Field(min_length=2, max_length=10)]


class MergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Annotated[str, StringConstraints(pattern=r"^cus_[0-9a-f]{20}$")]
    target: Annotated[str, StringConstraints(pattern=r"^cus_[0-9a-f]{20}$")]


def _validated(model: type[BaseModel], document: Any) -> Any:
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise InvalidPayload.naming_fields(exc) from None


def normalised(kind: str, value: str) -> Identity:
    """An identity as ingest would store it: phones in E.164, e-mails case-folded."""
    if kind == PHONE:
        return identity.phone(value)
    if kind == EMAIL:
        return identity.email(value)
    return Identity(kind, value)


def link(document: Any) -> dict[str, Any]:
    request: LinkRequest = _validated(LinkRequest, document)
    identities = [normalised(i.kind, i.value) for i in request.identities]
    return conversations.link_identities(identities, clock.now_iso())


def merge(document: Any) -> dict[str, Any]:
    request: MergeRequest = _validated(MergeRequest, document)
    return conversations.merge_customers(request.source, request.target)


def profile_with_timeline(customer_id: str) -> dict[str, Any]:
    profile = conversations.get_customer(customer_id)
    if profile is None:
        raise NotFound(f"no customer {customer_id}")
    if profile.get("merged_into"):
        return profile_with_timeline(profile["merged_into"])
    shown = {k: v for k, v in profile.items() if k not in ("pk", "sk")}
    shown["identities"] = sorted(profile.get("identities", ()))
    shown["merged_from"] = sorted(profile.get("merged_from", ()))
    messages = [
        {k: v for k, v in m.items() if k not in ("pk", "sk", "type")} for m in conversations.timeline(customer_id)
    ]
    return {"customer": shown, "timeline": messages}


class CustomerAttributes(BaseModel):
    """What routing rules may look at: the customer's tier and tags (set by an admin or a CRM sync)."""

    model_config = ConfigDict(extra="forbid")

    tier: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,32}$")] | None = None
    tags: Annotated[list[Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,32}$")]], Field(max_length=20)] = (
        Field(default_factory=list)
    )


def set_attributes(customer_id: str, document: Any) -> dict[str, Any]:
    attributes: CustomerAttributes = _validated(CustomerAttributes, document)
    if conversations.get_customer(customer_id) is None:
        raise NotFound(f"no customer {customer_id}")
    conversations.set_attributes(customer_id, attributes.tier, sorted(set(attributes.tags)))
    return {"customer_id": customer_id, "tier": attributes.tier, "tags": sorted(set(attributes.tags))}
