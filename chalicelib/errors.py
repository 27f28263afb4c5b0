"""The small set of domain errors. ``app.py`` maps them to HTTP status and JSON in one place."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


class SwitchboardError(Exception):
    """Base of every error that is the caller's fault; carries its HTTP status and a machine-readable code."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def to_body(self) -> dict[str, Any]:
        """The JSON error body."""
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InvalidJson(SwitchboardError):
    code = "invalid_json"


class InvalidPayload(SwitchboardError):
    status = 422
    code = "invalid_payload"

    @classmethod
    def naming_fields(cls, exc: ValidationError) -> InvalidPayload:
        """From pydantic's errors: one detail per bad field, and a message listing them all."""
        details = [
            {"field": ".".join(str(p) for p in error["loc"]) or "(body)", "problem": error["msg"]}
            for error in exc.errors(include_url=False, include_input=False)
        ]
        return cls("; ".join(f"{d['field']}: {d['problem']}" for d in details), details)


class PayloadTooLarge(SwitchboardError):
    status = 413
    code = "payload_too_large"


class Unauthenticated(SwitchboardError):
    status = 401
    code = "invalid_signature"


class NotSignedIn(SwitchboardError):
    """No valid sign-in token: missing, malformed, expired or not ours."""

    status = 401
    code = "unauthenticated"


class Forbidden(SwitchboardError):
    status = 403
    code = "forbidden"


class NotFound(SwitchboardError):
    status = 404
    code = "not_found"


class Conflict(SwitchboardError):
    status = 409
    code = "conflict"


class IdempotencyKeyReused(Conflict):
    """A client idempotency key sent again with a different request: it names another message already."""

    code = "idempotency_key_reused"
