"""Signing in Chalice views: a decorator that verifies the caller's token and hands the view its ``Principal``.

Wire it once in ``app.py``, then put it under ``route`` so the ``NotSignedIn`` (401) and ``Forbidden`` (403) it
raises become JSON there like every other domain error::

    signed_in = authorized(lambda: app.current_request)

    @route("/agents/{agent_id}/presence", methods=["PUT"], content_types=["application/json"])
    @signed_in(AGENT)
    def set_presence(agent_id: str, principal: Principal) -> dict[str, Any]:
        require_self_or(principal, agent_id)
        ...

``@signed_in()`` with no role admits anyone signed in. Roles follow ``chalicelib.auth.principal``'s hierarchy.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from chalicelib.auth.principal import ROLES, require

View = Callable[..., Any]


def authorized(current_request: Callable[[], Any]) -> Callable[..., Callable[[View], View]]:
    """Make an app's ``signed_in(*roles)``; ``current_request`` returns the request being handled (has ``headers``)."""

    def signed_in(*roles: str) -> Callable[[View], View]:
        unknown = [role for role in roles if role not in ROLES]
        if unknown:
            raise ValueError(f"unknown roles {unknown}; roles are {', '.join(ROLES)}")

        def decorate(view: View) -> View:
            @functools.wraps(view)
            def guarded(*args: Any, **kwargs: Any) -> Any:
                request = current_request()
                if request is None:
                    raise RuntimeError(f"{view.__name__} ran outside a request")
                from chalicelib.auth.tokens import from_headers  # JWT and crypto: only where a view signs in

                principal = from_headers(request.headers)
                if roles:
                    require(principal, *roles)
                return view(*args, principal=principal, **kwargs)

            return guarded

        return decorate

    return signed_in
