"""Pure matching: which agent gets a contact, which waiting contact a freed agent takes. No I/O here.

Eligible: Available and connected (not waiting to reconnect), serves one of the contact's queues that is open
now, has every required skill at the minimum proficiency, has room for the channel's cost, and has
not already declined or let this contact's offer expire; a contact transferred to
one agent waits for that agent only.
Agent for a contact: the preferred agent (who served this customer last,
within the configured window), then higher proficiency, then the least
loaded, then the longest idle.
Contact for a freed agent: highest priority, then the earliest SLA deadline
(then their own returning customers, then the longest waiting).

How eligible candidates are ordered is a ``Policy``; every choice comes with its ``Ranking``: who was
considered with which ordering key, and who was skipped and why (the decision record of an offer).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from chalicelib import clock
from chalicelib.routing.config.values import DEFAULT_QUEUE_ROUTING, QueueRouting
from chalicelib.routing.model import Agent, Contact, ContactState, Presence

CostOf = Callable[[str], int]  # a channel's cost in capacity units, from the routing config


def cost_for(agent: Agent, channel: str, cost_of: CostOf) -> int:
    """What a contact of ``channel`` costs this agent (their own cost if they have one)."""
    return agent.channel_costs.get(channel, cost_of(channel))


def meets(agent: Agent, required_skills: Mapping[str, int]) -> bool:
    """Whether the agent has every one of these skills at its minimum proficiency."""
    return all(agent.skills.get(skill, 0) >= level for skill, level in required_skills.items())


def requirement_key(skills: Mapping[str, int]) -> str:
    """Required skills as one name: ``billing=3+english=2``, ``-`` for none (names hold no = or +)."""
    return "+".join(f"{skill}={level}" for skill, level in sorted(skills.items())) or "-"


def waiting_sort_key(contact: Contact) -> str:
    """Where a contact sorts among those waiting: highest priority first, then the earliest SLA deadline, then
    the longest waiting (the order of the waiting indexes a freed agent reads a page of)."""
    return f"{9 - contact.priority}#{contact.sla_deadline}#{contact.enqueued_at}#{contact.contact_id}"


def key_skill(required_skills: Mapping[str, int]) -> tuple[str, int] | None:
    """The skill whose pool of agents is searched for a contact: the highest minimum, then by name.

    Every eligible agent is in that pool, whichever skill it is; the most demanding one keeps it small.
    """
    if not required_skills:
        return None
    skill = min(required_skills, key=lambda name: (-required_skills[name], name))
    return skill, required_skills[skill]


def why_not(agent: Agent, contact: Contact, cost_of: CostOf, open_queues: Collection[str] | None = None) -> str | None:
    """Why ``agent`` may not be offered ``contact`` now (None: they may); ``open_queues``: the queues open now
    (None: all are)."""
    shared = set(contact.queues).intersection(agent.queues)
    if open_queues is not None:
        shared.intersection_update(open_queues)  # a closed queue's contacts wait for it to open
    if agent.presence is not Presence.AVAILABLE:
        return f"presence {agent.presence.value}"
    if agent.disconnected_at is not None:
        return "reconnecting"  # they could not see the offer
    if not shared:
        return "no open queue in common"
    if agent.agent_id in contact.declined_by:
        return "declined it before"
    if contact.reserved_for not in (None, agent.agent_id):
        return f"reserved for {contact.reserved_for}"
    missing = [s for s, level in sorted(contact.required_skills.items()) if agent.skills.get(s, 0) < level]
    if missing:
        return "skill " + ", ".join(f"{s} {agent.skills.get(s, 0)}<{contact.required_skills[s]}" for s in missing)
    if not agent.has_room(contact.channel, cost_for(agent, contact.channel, cost_of)):
        return "capacity"
    return None


def can_take(agent: Agent, contact: Contact, cost_of: CostOf, open_queues: Collection[str] | None = None) -> bool:
    """Whether ``agent`` may be offered ``contact`` now; ``open_queues``: the queues open now (None: all are)."""
    return why_not(agent, contact, cost_of, open_queues) is None


def proficiency(agent: Agent, contact: Contact) -> int:
    """How well the agent covers the contact's required skills (sum of their levels in them)."""
    return sum(agent.skills.get(skill, 0) for skill in contact.required_skills)


class Policy(Protocol):
    """How eligible candidates are ordered: the smallest key wins."""

    @property
    def name(self) -> str: ...

    def agent_key(self, contact: Contact, agent: Agent, now: str) -> tuple[Any, ...]: ...

    def contact_key(self, agent: Agent, contact: Contact, now: str) -> tuple[Any, ...]: ...


@dataclass(frozen=True)
class Classic:
    """Preferred agent, then proficiency, then the least loaded, then the longest idle; contacts by priority,
    then the earliest SLA deadline."""

    name: str = "classic"
    # What each place of the keys means (``named_key``): "!x" holds not-x, "-x" holds minus x.
    agent_key_names: tuple[str, ...] = ("!preferred", "-proficiency", "load_permille", "idle_since", "agent_id")
    contact_key_names: tuple[str, ...] = ("-priority", "sla_deadline", "!returning", "enqueued_at", "contact_id")

    def agent_key(self, contact: Contact, agent: Agent, now: str) -> tuple[Any, ...]:
        return (
            agent.agent_id != contact.preferred_agent,
            -proficiency(agent, contact),
            agent.load_permille,
            agent.idle_since,
            agent.agent_id,
        )

    def contact_key(self, agent: Agent, contact: Contact, now: str) -> tuple[Any, ...]:
        return (
            -contact.priority,
            contact.sla_deadline,
            contact.preferred_agent != agent.agent_id,
            contact.enqueued_at,
            contact.contact_id,
        )


# --- the default policy: scarce skills kept free, priorities that age -------------------------------------------


# Without aging_seconds a contact gains one priority level per quarter of its SLA target: one waiting through
# its whole target is four levels up, and a contact past it keeps climbing, so no class starves.
AGING_SHARE = 0.25
# When a freed agent chooses, work that needs a skill counts as if it had waited this many of its SLA targets
# longer (with the default aging: 10 priority levels). Agents with skills then do first what only they can do,
# and the contacts anyone could take go to those without (measured in the simulator: a head start of a quarter
# target won 1.7 SL points over longest-idle on the multi-skill mix, 2.5 targets 3.5; beyond that, no more).
# No class starves: a contact anyone could take that has waited that much longer still goes first.
SCARCE_HEAD_START = 2.5


def sla_target_seconds(contact: Contact) -> float:
    """The contact's first-response budget as queued: from queueing to its deadline (at least one second)."""
    if not contact.sla_deadline or not contact.enqueued_at:
        return 300.0
    return max(1.0, clock.seconds_between(contact.enqueued_at, contact.sla_deadline))


@dataclass(frozen=True)
class Balanced:
    """Routing that keeps scarce skills free and lets no class starve (Wallace and Whitt's limited cross-training:
    priority to the least flexible server; an aging priority for the contact choice).

    - Agent for a contact: the preferred agent, then the *least flexible* one (who meets the fewest of the
      other skill sets the rules ask for, so the agent who alone can take the next refund or Spanish chat
      stays free), then proficiency, the least loaded, the longest idle.
    - Contact for a freed agent: the highest *effective priority* = priority + waited / aging, where work that
      needs a skill (which fewer agents can do) counts as having waited ``SCARCE_HEAD_START`` SLA targets
      longer; then the earliest deadline, their own returning customers, the longest waiting.

    ``queues`` holds each queue's ``QueueRouting`` (a contact is routed by its first queue's); ``needs`` the
    skill sets the rules can ask for (``router.requirements``). ``bound(config)`` makes one for a config.
    """

    queues: Mapping[str, QueueRouting] = field(default_factory=dict)
    needs: tuple[Mapping[str, int], ...] = ()
    name: str = "balanced"
    # What each place of the keys means, for decision records (``named_key``: ``!`` not, ``-`` minus).
    agent_key_names: tuple[str, ...] = (
        "!preferred",
        "flexibility",
        "-proficiency",
        "load_permille",
        "idle_since",
        "agent_id",
    )
    contact_key_names: tuple[str, ...] = (
        "-effective_priority",
        "sla_deadline",
        "!returning",
        "enqueued_at",
        "contact_id",
    )

    def settings(self, contact: Contact) -> QueueRouting:
        return self.queues.get(contact.queues[0] if contact.queues else "", DEFAULT_QUEUE_ROUTING)

    def flexibility(self, agent: Agent, contact: Contact) -> int:
        """How many skill sets other than this contact's the agent could serve (0: only work like this one)."""
        own = requirement_key(contact.required_skills)
        return sum(1 for need in self.needs if need and requirement_key(need) != own and meets(agent, need))

    def effective_priority(self, contact: Contact, now: str, scarce: bool = False) -> float:
        """Priority plus what waiting has earned; ``scarce``: with the head start of work that needs a skill."""
        settings = self.settings(contact)
        if settings.policy == "classic" or not now:
            return float(contact.priority)
        target = sla_target_seconds(contact)
        aging = settings.aging_seconds or AGING_SHARE * target
        waited = max(0.0, clock.seconds_between(contact.enqueued_at, now))
        if scarce and settings.keep_scarce_skills and contact.required_skills:
            waited += SCARCE_HEAD_START * target
        return contact.priority + waited / aging

    def agent_key(self, contact: Contact, agent: Agent, now: str) -> tuple[Any, ...]:
        settings = self.settings(contact)
        spare = settings.policy == "balanced" and settings.keep_scarce_skills
        return (
            agent.agent_id != contact.preferred_agent,
            self.flexibility(agent, contact) if spare else 0,
            -proficiency(agent, contact),
            agent.load_permille,
            agent.idle_since,
            agent.agent_id,
        )

    def contact_key(self, agent: Agent, contact: Contact, now: str) -> tuple[Any, ...]:
        return (
            -round(self.effective_priority(contact, now, scarce=True), 6),
            contact.sla_deadline,
            contact.preferred_agent != agent.agent_id,
            contact.enqueued_at,
            contact.contact_id,
        )

    def bound(self, queues: Mapping[str, QueueRouting], needs: Iterable[Mapping[str, int]]) -> Balanced:
        """This policy for one config: each queue's settings and every skill set its rules can ask for."""
        return Balanced(queues=dict(queues), needs=tuple(needs), name=self.name)


DEFAULT_POLICY: Policy = Balanced()


def key_names(policy: Policy, direction: str) -> tuple[str, ...]:
    """The names a policy gives the places of its ``agent`` or ``contact`` keys (optional: ``agent_key_names``,
    ``contact_key_names``); none named: ``named_key`` calls them by position."""
    return tuple(getattr(policy, f"{direction}_key_names", ()))


def named_key(names: Sequence[str], key: Sequence[Any]) -> dict[str, Any]:
    """An ordering key as a reader wants it: each place by name, ``!x`` and ``-x`` turned back into x (so
    ``(True, -7)`` named ``("!preferred", "-proficiency")`` reads ``{"preferred": False, "proficiency": 7}``).
    Places without a name are ``key<n>``."""
    named: dict[str, Any] = {}
    for place, value in enumerate(key):
        name = names[place] if place < len(names) else f"key{place}"
        if name.startswith("!") and isinstance(value, bool):
            name, value = name[1:], not value
        elif name.startswith("-") and isinstance(value, int | float) and not isinstance(value, bool):
            name, value = name[1:], -value
        named[name.lstrip("!-")] = value
    return named


T = TypeVar("T")


@dataclass(frozen=True)
class Ranking(Generic[T]):
    """One choice and why: the eligible candidates in order with their keys, and who was skipped and why."""

    chosen: T | None
    policy: str
    ranked: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def rank_agents(
    contact: Contact,
    agents: Iterable[Agent],
    cost_of: CostOf,
    open_queues: Collection[str] | None = None,
    policy: Policy = DEFAULT_POLICY,
    now: str = "",
) -> Ranking[Agent]:
    """The agents for ``contact`` in the policy's order (the first is chosen), and those who may not take it."""
    return _ranking(
        policy,
        ((a.agent_id, a, why_not(a, contact, cost_of, open_queues)) for a in agents),
        lambda a: policy.agent_key(contact, a, now),
    )


def _ranking(
    policy: Policy, judged: Iterable[tuple[str, T, str | None]], key: Callable[[T], tuple[Any, ...]]
) -> Ranking[T]:
    """Order the candidates that may be chosen (reason None) by ``key``; list the others with their reason."""
    eligible: dict[str, tuple[tuple[Any, ...], T]] = {}
    skipped: dict[str, str] = {}
    for identity, candidate, reason in judged:
        if reason is None:
            eligible[identity] = (key(candidate), candidate)
        else:
            skipped[identity] = reason
    ordered = sorted(eligible.items(), key=lambda item: item[1][0])
    return Ranking(
        chosen=ordered[0][1][1] if ordered else None,
        policy=policy.name,
        ranked=tuple((identity, k) for identity, (k, _) in ordered),
        skipped=tuple(sorted(skipped.items())),
    )


def rank_contacts(
    agent: Agent,
    contacts: Iterable[Contact],
    cost_of: CostOf,
    open_queues: Collection[str] | None = None,
    policy: Policy = DEFAULT_POLICY,
    now: str = "",
) -> Ranking[Contact]:
    """The waiting contacts for a freed ``agent`` in the policy's order (the first is chosen), and those they
    may not take."""
    return _ranking(
        policy,
        (
            (
                c.contact_id,
                c,
                "not queued" if c.state is not ContactState.QUEUED else why_not(agent, c, cost_of, open_queues),
            )
            for c in contacts
        ),
        lambda c: policy.contact_key(agent, c, now),
    )


def choose_agent(
    contact: Contact,
    agents: Iterable[Agent],
    cost_of: CostOf,
    open_queues: Collection[str] | None = None,
    policy: Policy = DEFAULT_POLICY,
    now: str = "",
) -> Agent | None:
    return rank_agents(contact, agents, cost_of, open_queues, policy, now).chosen


def choose_contact(
    agent: Agent,
    contacts: Iterable[Contact],
    cost_of: CostOf,
    open_queues: Collection[str] | None = None,
    policy: Policy = DEFAULT_POLICY,
    now: str = "",
) -> Contact | None:
    return rank_contacts(agent, contacts, cost_of, open_queues, policy, now).chosen
