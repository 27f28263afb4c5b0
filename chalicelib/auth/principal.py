"""Who is calling, and what their roles let them do.

Roles come from the user pool groups ``agent``, ``supervisor`` and ``admin``
(other groups are ignored). A role grants every role below it:
admin ⊇ supervisor ⊇ agent. So ``require(p, AGENT)`` admits agents,
supervisors and admins (a supervisor can take contacts too), and
``require(p, ADMIN)`` admits admins only. The hierarchy holds for every
endpoint, reads and writes alike; an endpoint that must exclude higher roles
has to say so itself (none does today).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chalicelib.errors import Forbidden

AGENT = "agent"
SUPERVISOR = "supervisor"
ADMIN = "admin"
# Lowest first: each role includes those before it.
ROLES = (AGENT, SUPERVISOR, ADMIN)


@dataclass(frozen=True)
class Principal:
    """A signed-in user, from a verified token."""

    subject: str  # Cognito's ``sub`` (stable, never reused), or the dev token's
    agent_id: str  # the agent this user acts as (``custom:agent_id``, else the username, else ``sub``)
    roles: frozenset[str] = field(default_factory=frozenset)  # the known groups the user is in, as given
    name: str | None = None
    email: str | None = None

    def has_role(self, role: str) -> bool:
        """Whether the user holds ``role`` or a role above it."""
        rank = _rank(role)
        return any(ROLES.index(held) >= rank for held in self.roles if held in ROLES)


def require(principal: Principal, *roles: str) -> None:
    """Raise ``Forbidden`` unless the principal holds one of ``roles`` (or a role above it)."""
    if not roles:
        raise ValueError("name at least one role")
    if not any(principal.has_role(role) for role in roles):
        raise Forbidden(f"needs the {' or '.join(roles)} role")


def require_self_or(principal: Principal, agent_id: str, *roles: str) -> None:
    """Raise ``Forbidden`` unless the principal is agent ``agent_id`` acting as themselves, or holds one of ``roles``.

    ``roles`` defaults to ``supervisor`` (so supervisors and admins may act for any agent). Acting as oneself
    still needs the agent role: a signed-in user in no group is not an agent.
    """
    others = roles or (SUPERVISOR,)
    if principal.agent_id == agent_id and principal.has_role(AGENT):
        return
    if any(principal.has_role(role) for role in others):
        return
    raise Forbidden(f"agents may only act as themselves; acting for {agent_id} needs the {' or '.join(others)} role")


def _rank(role: str) -> int:
    try:
        return ROLES.index(role)
    except ValueError:
        # A typo in a view's role list must not quietly deny (or allow) everyone.
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}") from None
