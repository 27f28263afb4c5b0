"""Who may call Switchboard: sign-in tokens (``tokens``), principals and roles (``principal``), view guard (``views``).

Agents sign in through a Cognito user pool in AWS and with locally minted tokens on the local stack
(``SWITCHBOARD_DEV_AUTH=1``); either way a view gets a ``Principal`` and checks it with ``require`` or
``require_self_or``. Roles nest: admin ⊇ supervisor ⊇ agent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.auth.principal import ADMIN, AGENT, ROLES, SUPERVISOR, Principal, require, require_self_or
from chalicelib.auth.views import authorized

if TYPE_CHECKING:
    from chalicelib.auth.tokens import (
        SigningKeysUnavailable,
        forget_signing_keys,
        from_headers,
        from_query,
        generate_dev_key,
        issue_dev_token,
        sign_in_options,
        verify,
    )

# ``tokens`` (PyJWT, cryptography, requests) loads on first use: the router's functions import app.py, which
# names the roles and the view guard, but never verify a token.
_TOKENS = {
    "SigningKeysUnavailable",
    "forget_signing_keys",
    "from_headers",
    "from_query",
    "generate_dev_key",
    "issue_dev_token",
    "sign_in_options",
    "verify",
}


def __getattr__(name: str) -> Any:
    if name in _TOKENS:
        from chalicelib.auth import tokens

        return getattr(tokens, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ADMIN",
    "AGENT",
    "ROLES",
    "SUPERVISOR",
    "Principal",
    "SigningKeysUnavailable",
    "authorized",
    "forget_signing_keys",
    "from_headers",
    "from_query",
    "generate_dev_key",
    "issue_dev_token",
    "require",
    "require_self_or",
    "sign_in_options",
    "verify",
]
