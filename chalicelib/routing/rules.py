"""Which queue, skills, priority and SLA a contact gets, and why: the routing rules applied to one contact. Pure.

``classify`` returns a ``Decision`` for the router; ``explain`` renders the
same reasoning as text for ops (``switchboard rules explain``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from chalicelib.clock import parse_iso, to_iso
from chalicelib.conversations.models import InboundMessage
from chalicelib.routing.config import (
    DAYS,
    EscalationStep,
    OutOfHours,
    QueueConfig,
    QueueRouting,
    RoutingConfig,
    Rule,
    TimeWindow,
)
from chalicelib.routing.config.values import DEFAULT_VOICEMAIL_GREETING, SelfService, SpeechQuestion
from chalicelib.routing.hours import after_open_seconds, is_open, local_time, minute_of_day, next_opening
from chalicelib.routing.matching import AGING_SHARE

# Patterns are searched in at most this much text, so one huge message costs no more than a long one.
MAX_TEXT = 10_000
MAX_PRIORITY = 9
# Channels whose provider lets an agent reply freely only within a window after the customer's last message:
# WhatsApp's 24-hour customer service window, Meta's 24-hour standard messaging window (Messenger, Instagram).
REPLY_WINDOW_SECONDS = {"whatsapp": 24 * 3600, "messenger": 24 * 3600, "instagram": 24 * 3600}


@dataclass(frozen=True)
class ContactFacts:
    """What the rules look at: the channel, the message, and what we know of the customer."""

    channel: str
    text: str = ""
    language: str | None = None
    customer_tier: str | None = None
    customer_tags: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        channel: str,
        text: str = "",
        subject: str | None = None,
        language: str | None = None,
        customer_tier: str | None = None,
        customer_tags: Iterable[str] = (),
    ) -> ContactFacts:
        """What the rules see of a message: live routing and ``switchboard rules explain`` both build it here.

        An e-mail's subject counts as text, before the body (that is where "Refund" or "Invoice" often is);
        only the first ``MAX_TEXT`` characters of the two together are searched.
        """
        return cls(
            channel=channel,
            text="\n".join(part for part in (subject, text) if part)[:MAX_TEXT],
            language=language,
            customer_tier=customer_tier,
            customer_tags=frozenset(customer_tags),
        )

    @classmethod
    def from_message(
        cls, message: InboundMessage, customer_tier: str | None = None, customer_tags: Iterable[str] = ()
    ) -> ContactFacts:
        """Facts of an inbound message (see ``of``)."""
        return cls.of(message.channel, message.text, message.subject, message.language, customer_tier, customer_tags)


@dataclass(frozen=True)
class Decision:
    """Where a contact waits and what it needs; ``reasons`` says why, rule by rule."""

    rule: str
    queue: str
    skills: dict[str, int]
    priority: int
    sla_seconds: int
    deadline: str  # ISO-8601 UTC: at + sla_seconds (of open time with a business-hours clock), or earlier
    escalation: tuple[EscalationStep, ...]
    queue_open: bool
    out_of_hours: OutOfHours | None  # set only when the queue is closed at the moment of the decision
    reasons: tuple[str, ...]
    sla_clock: str = "arrival"  # how the deadline was counted: "arrival" or "business_hours"
    reply_window_closes: str | None = None  # when the channel's reply window closes, if it has one
    due_by_window: bool = False  # the deadline is the reply window's closing less the queue's margin
    voicemail: str | None = None  # a call: record a voicemail after this greeting instead of queueing the call
    ask: SpeechQuestion | None = None  # a call: ask this first; the spoken answer becomes the contact's text
    # The bot answers (or suggests) from the knowledge base first: the rule's or the queue's, for this channel and
    # language; None: routed straight away, as without self-service.
    self_service: SelfService | None = None


@dataclass(frozen=True)
class Check:
    """One condition of a rule, tested against one contact."""

    condition: str
    passed: bool
    detail: str


def evaluate(rule: Rule, facts: ContactFacts, at: datetime) -> tuple[Check, ...]:
    """Every condition ``rule`` sets, tested; the rule matches when all pass (a rule without conditions always does)."""
    when = rule.conditions
    checks: list[Check] = []
    if when.channels:
        passed = facts.channel in when.channels
        checks.append(Check("channel", passed, f"channel {facts.channel} {_is(passed)} {_one_of(when.channels)}"))
    if when.text_matches is not None:
        passed = _pattern(when.text_matches).search(facts.text[:MAX_TEXT]) is not None
        checks.append(
            Check("text_matches", passed, f"text {'matches' if passed else 'does not match'} /{when.text_matches}/")
        )
    if when.languages:
        language = (facts.language or "").lower().replace("_", "-")
        passed = any(language == prefix or language.startswith(prefix + "-") for prefix in when.languages)
        verb = "matches" if passed else "does not match"
        detail = f"language {facts.language or 'unknown'} {verb} {_one_of(when.languages)}"
        checks.append(Check("language", passed, detail))
    if when.tiers:
        tier = (facts.customer_tier or "").casefold()
        passed = tier in when.tiers
        checks.append(
            Check("customer.tier", passed, f"customer tier {tier or 'none'} {_is(passed)} {_one_of(when.tiers)}")
        )
    tags = {tag.casefold() for tag in facts.customer_tags}
    if when.tags_any:
        present = [tag for tag in when.tags_any if tag in tags]
        detail = (
            f"customer has tag {', '.join(present)}" if present else f"customer has none of {', '.join(when.tags_any)}"
        )
        checks.append(Check("customer.tags_any", bool(present), detail))
    if when.tags_all:
        missing = [tag for tag in when.tags_all if tag not in tags]
        detail = (
            f"customer lacks {', '.join(missing)}" if missing else f"customer has all of {', '.join(when.tags_all)}"
        )
        checks.append(Check("customer.tags_all", not missing, detail))
    if when.time is not None:
        checks.append(_check_time(when.time, at))
    return tuple(checks)


def _is(passed: bool) -> str:
    return "is" if passed else "is not"


def _one_of(values: tuple[str, ...]) -> str:
    return values[0] if len(values) == 1 else "one of " + ", ".join(values)


@lru_cache(maxsize=256)
def _pattern(source: str) -> re.Pattern[str]:
    return re.compile(source, re.IGNORECASE)


def _check_time(window: TimeWindow, at: datetime) -> Check:
    local = local_time(at, window.timezone)
    day = DAYS[local.weekday()]
    minute = local.hour * 60 + local.minute
    passed = not window.days or day in window.days
    wanted = []
    if window.days:
        wanted.append(f"on {', '.join(window.days)}")
    if window.between:
        start, end = (minute_of_day(t) for t in window.between)
        # start > end spans midnight: 18:00-08:00 is the evening and the early morning.
        inside = start <= minute < end if start < end else (minute >= start or minute < end)
        passed = passed and inside
        wanted.append(f"between {window.between[0]} and {window.between[1]}")
    detail = f"local time {local:%a %H:%M} ({window.timezone}) {_is(passed)} {' and '.join(wanted)}"
    return Check("time", passed, detail)


def classify(config: RoutingConfig, facts: ContactFacts, at: datetime) -> Decision:
    """The first rule whose conditions all hold decides; a closed queue's overflow is followed (never in a loop)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("a moment must carry its time zone (e.g. 2026-04-07T09:00:00+00:00)")
    reasons: list[str] = []
    for rule in config.rules:
        checks = evaluate(rule, facts, at)
        if all(check.passed for check in checks):
            reasons.append(f"rule {rule.name!r} matched: " + ("; ".join(c.detail for c in checks) or "no conditions"))
            return _decide(config, rule, facts, at, reasons)
        reasons.append(f"rule {rule.name!r} did not match: " + "; ".join(c.detail for c in checks if not c.passed))
    # parse_config insists on a catch-all last rule; only a hand-built config can get here.
    raise LookupError("no routing rule matched; the last rule must have no conditions")


def _decide(config: RoutingConfig, rule: Rule, facts: ContactFacts, at: datetime, reasons: list[str]) -> Decision:
    queue = config.queues[rule.queue]
    visited = {queue.name}
    out_of_hours = None
    queue_open = is_open(queue, at)
    while not queue_open:
        policy = queue.out_of_hours
        target = policy.overflow_to if policy and policy.action == "overflow" else None
        closed = f"queue {queue.name} is closed ({_local(at, queue.hours.timezone if queue.hours else 'UTC')})"
        if target and target in config.queues and target not in visited:
            reasons.append(f"{closed}; out of hours it overflows to {target}")
            queue = config.queues[target]
            visited.add(target)
            queue_open = is_open(queue, at)
            continue
        out_of_hours = policy
        if policy and policy.action == "reply":
            reasons.append(f"{closed}; the customer gets the out-of-hours reply and the contact waits for it to open")
        else:
            reasons.append(f"{closed}; the contact waits for it to open")
        break
    if queue_open:
        reasons.append(f"queue {queue.name} is open")
    voicemail, ask = _call_handling(rule, queue, facts, out_of_hours if not queue_open else None, reasons)
    sla = rule.sla_seconds if rule.sla_seconds is not None else config.sla_for(facts.channel)
    routing = queue.routing
    due, clock_kind = at + timedelta(seconds=sla), "arrival"
    if routing.sla_clock == "business_hours" and queue.hours is not None:
        counted = after_open_seconds(queue, at, sla)
        if counted is not None:  # a queue that never opens keeps the arrival clock
            due, clock_kind = counted, "business_hours"
            reasons.append(f"the SLA clock of queue {queue.name} runs only while it is open")
    window = REPLY_WINDOW_SECONDS.get(facts.channel)
    closes = at + timedelta(seconds=window) if window else None
    by_window = False
    if closes is not None:
        latest = max(at, closes - timedelta(seconds=routing.reply_window_margin_seconds))
        if latest < due:
            # An answer after the window closes needs a paid template (or is not allowed): due before it does.
            due, by_window = latest, True
            reasons.append(
                f"the {facts.channel} reply window closes at {to_iso(closes)}: due "
                f"{format_duration(routing.reply_window_margin_seconds)} before"
            )
    return Decision(
        rule=rule.name,
        queue=queue.name,
        skills=dict(rule.skills),
        priority=rule.priority,
        sla_seconds=sla,
        deadline=to_iso(due),
        escalation=rule.escalation,
        queue_open=queue_open,
        out_of_hours=out_of_hours,
        reasons=tuple(reasons),
        sla_clock=clock_kind,
        reply_window_closes=to_iso(closes) if closes else None,
        due_by_window=by_window,
        voicemail=voicemail,
        ask=ask,
        self_service=_self_service(rule, queue, facts),
    )


def _self_service(rule: Rule, queue: QueueConfig, facts: ContactFacts) -> SelfService | None:
    """The rule's own self-service (``false`` turns it off), else the (final) queue's; only for its channels and
    languages."""
    chosen = rule.self_service if rule.self_service is not None else queue.self_service
    if chosen is None or not chosen.applies(facts.channel, facts.language):
        return None
    return chosen


def _call_handling(
    rule: Rule, queue: QueueConfig, facts: ContactFacts, closed_policy: OutOfHours | None, reasons: list[str]
) -> tuple[str | None, SpeechQuestion | None]:
    """What a live call gets before (or instead of) waiting in line: a voicemail greeting or a question.

    Only calls: a voicemail left, a chat or an e-mail in the same queue is routed as usual. A closed queue's
    voicemail comes first (nobody could answer the call), then the rule's voicemail, then the rule's question, then
    the queue's.
    """
    if facts.channel != "voice":
        return None, None
    if closed_policy is not None and closed_policy.action == "voicemail":
        reasons.append("out of hours a call records a voicemail, routed once left")
        return closed_policy.message or DEFAULT_VOICEMAIL_GREETING, None
    if rule.voicemail:
        reasons.append(f"rule {rule.name!r} sends calls to voicemail")
        return rule.voicemail, None
    if rule.ask:
        reasons.append(f"rule {rule.name!r} asks the caller first: {rule.ask.question!r}")
        return None, rule.ask
    if queue.ask and closed_policy is None:
        reasons.append(f"queue {queue.name} asks the caller first: {queue.ask.question!r}")
        return None, queue.ask
    return None, None


def _local(at: datetime, timezone: str) -> str:
    return f"{local_time(at, timezone):%a %H:%M} {timezone}"


def format_duration(seconds: int) -> str:
    """``90`` -> ``1m30s``, ``3600`` -> ``1h``: durations the way routing.yaml writes them."""
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def explain(config: RoutingConfig, facts: ContactFacts, at: datetime) -> str:
    """What ``classify`` decides for this contact at ``at``, and why, as text for a person."""
    decision = classify(config, facts, at)
    lines = [
        f"Contact:      {_describe(facts)}",
        f"At:           {to_iso(at)}",
        "",
        "Rules (the first that matches decides):",
    ]
    for number, rule in enumerate(config.rules, start=1):
        checks = evaluate(rule, facts, at)
        matched = all(check.passed for check in checks)
        lines.append(f"  {number}. {rule.name}: {'MATCH' if matched else 'no match'}")
        lines.extend(f"       {'pass' if c.passed else 'FAIL'}  {c.detail}" for c in checks)
        if not checks:
            lines.append("       (no conditions: matches every contact)")
        if matched:
            break
    lines.append("")
    lines.append(f"Rule:         {decision.rule}")
    lines.extend(_describe_queue(config, decision, at))
    if decision.voicemail:
        lines.append(f"Call:         voicemail after {decision.voicemail!r}, routed as a voicemail once left")
    elif decision.ask:
        lines.append(f"Call:         asked {decision.ask.question!r} ({decision.ask.language}) first")
    lines.append(f"Self-service: {describe_self_service(decision.self_service, facts.channel)}")
    skills = ", ".join(f"{name} >= {level}" for name, level in sorted(decision.skills.items())) or "none"
    lines.append(f"Skills:       {skills}")
    lines.append(f"Priority:     {decision.priority}")
    rule = next(r for r in config.rules if r.name == decision.rule)
    source = "the rule's" if rule.sla_seconds is not None else f"the {facts.channel} default"
    lines.append(f"SLA:          {format_duration(decision.sla_seconds)} ({source}); deadline {decision.deadline}")
    lines.extend(_describe_clock(config, decision))
    if decision.escalation:
        lines.append("Escalation:")
        priority = decision.priority
        for step in decision.escalation:
            when = (
                f"after {format_duration(step.after_seconds)}"
                if step.after_seconds is not None
                else f"{format_duration(step.before_breach_seconds or 0)} before the deadline"
            )
            if step.after_seconds is not None:
                moment = to_iso(at + timedelta(seconds=step.after_seconds))
            else:  # relative to the deadline, which business hours or a reply window may have moved
                moment = to_iso(parse_iso(decision.deadline) - timedelta(seconds=step.before_breach_seconds or 0))
            priority = min(MAX_PRIORITY, priority + step.raise_priority)
            lines.append(f"  {when}, at {moment}: {_describe_step(step, priority)}")
    else:
        lines.append("Escalation:   none")
    return "\n".join(lines) + "\n"


def _describe(facts: ContactFacts) -> str:
    parts = [f"channel {facts.channel}"]
    if facts.language:
        parts.append(f"language {facts.language}")
    if facts.customer_tier:
        parts.append(f"customer tier {facts.customer_tier}")
    if facts.customer_tags:
        parts.append(f"tags {', '.join(sorted(facts.customer_tags))}")
    parts.append(f"text of {len(facts.text)} characters")
    return ", ".join(parts)


def _describe_queue(config: RoutingConfig, decision: Decision, at: datetime) -> list[str]:
    lines = [reason for reason in decision.reasons if reason.startswith("queue ") and "overflows to" in reason]
    lines = [f"              ({reason})" for reason in lines]
    queue = config.queues[decision.queue]
    if decision.queue_open:
        state = "open now" if queue.hours else "open now (always open)"
        return [f"Queue:        {decision.queue}, {state}", *lines]
    opens = next_opening(queue, at)
    when = f"opens {opens:%a %Y-%m-%d %H:%M %Z}" if opens else "has no opening hours"
    result = [f"Queue:        {decision.queue}, closed now; {when}", *lines]
    policy = decision.out_of_hours
    if policy and policy.action == "reply":
        result.append(f"Out of hours: reply {policy.message!r} and keep the contact queued")
    elif policy and policy.action == "voicemail":
        result.append("Out of hours: a call records a voicemail; other contacts wait for the queue to open")
    else:
        result.append("Out of hours: keep the contact queued until the queue opens")
    return result


def _describe_clock(config: RoutingConfig, decision: Decision) -> list[str]:
    """How the deadline was counted and how the queue orders its work (its ``routing`` settings)."""
    routing = config.queues[decision.queue].routing
    if decision.sla_clock == "business_hours":
        lines = [f"SLA clock:    business hours of queue {decision.queue} (stands still while it is closed)"]
    elif routing.sla_clock == "business_hours":
        lines = ["SLA clock:    from arrival (the queue has no opening hours to count)"]
    else:
        lines = ["SLA clock:    from arrival"]
    if decision.reply_window_closes:
        margin = format_duration(routing.reply_window_margin_seconds)
        lines.append(
            f"Reply window: closes {decision.reply_window_closes}; "
            + (f"due {margin} before it (earlier than the SLA)" if decision.due_by_window else "the SLA is earlier")
        )
    lines.append(f"Routing:      {describe_routing(routing)}")
    return lines


def describe_self_service(chosen: SelfService | None, channel: str) -> str:
    """What the bot does with a first message on ``channel``, as one line for a person."""
    if chosen is None:
        return "off (routed to a person straight away)"
    coverage = f"min coverage {chosen.min_coverage:g}" if chosen.min_coverage is not None else "min coverage kb.yaml's"
    if chosen.mode == "suggest":
        return f"suggests articles only ({chosen.source}; {coverage}); routed to a person straight away"
    form = _SELF_SERVICE_FORMS.get(channel)
    return (
        f"answers first on {channel} ({chosen.source}; {coverage}); "
        + (f"{form}; " if form else "")
        + "routed to a person when not sure, on a second question, or when the customer asks"
    )


# How the bot's answer looks on each channel it answers on (``selfservice.answer_form``), for ``rules explain``.
_SELF_SERVICE_FORMS = {
    "webchat": "the article with Yes / Talk to a person buttons",
    "sms": "the short answer, reply 1 or 2",
    "telegram": "the short answer, reply 1 or 2 (also as buttons)",
    "whatsapp": "the short answer with two reply buttons (through Twilio: reply 1 or 2)",
    "email": "the whole article, reply YES",
    "voice": "the short answer spoken after the speech question, say yes / press 1 or say agent / press 2",
}


def self_service_settings(config: RoutingConfig) -> list[str]:
    """Where self-service is configured, one line per queue or rule (``switchboard rules check``)."""
    settings = [(queue.self_service, _calls_asked(config, queue=queue.name)) for queue in config.queues.values()]
    settings += [(rule.self_service, _calls_asked(config, rule=rule)) for rule in config.rules]
    lines = []
    for chosen, asked in settings:
        if chosen is None:
            continue
        if not chosen.channels:
            lines.append(f"self-service: {chosen.source} off")
            continue
        verb = "answers" if chosen.mode == "answer" else "suggests"
        languages = ", ".join(chosen.languages) or "any language"
        coverage = (
            f"min coverage {chosen.min_coverage:g}" if chosen.min_coverage is not None else "min coverage kb.yaml's"
        )
        closes = f", closes unanswered after {format_duration(chosen.close_after_seconds)}" if verb == "answers" else ""
        lines.append(
            f"self-service: {chosen.source} {verb} on {', '.join(chosen.channels)} ({languages}; {coverage}){closes}"
        )
        if "voice" in chosen.channels and chosen.mode == "answer" and not asked:
            lines.append(
                f"warning: self-service: {chosen.source} covers voice, but the calls it applies to are asked no"
                " question (ask: on the rule or its queue), so the bot has nothing to answer on a call"
            )
    return lines


def _calls_asked(config: RoutingConfig, queue: str | None = None, rule: Rule | None = None) -> bool:
    """Whether calls under a self-service setting are asked the speech question (what the bot answers on a call):
    a rule's own setting, by the rule or its queue; a queue's, by the queue or a rule into it that takes its
    setting."""
    if rule is not None:
        home = config.queues.get(rule.queue)
        return rule.ask is not None or (home is not None and home.ask is not None)
    home = config.queues.get(queue or "")
    return (home is not None and home.ask is not None) or any(
        r.ask is not None and r.queue == queue and r.self_service is None for r in config.rules
    )


def describe_routing(routing: QueueRouting) -> str:
    """A queue's routing settings as one line for a person."""
    if routing.policy == "classic":
        return "classic: strict priority, then the earliest deadline; the most proficient agent"
    aging = (
        f"one priority level per {format_duration(round(routing.aging_seconds))} waited"
        if routing.aging_seconds
        else f"one priority level per {round(AGING_SHARE * 100)} % of the SLA waited"
    )
    spare = (
        "the least flexible agent first (scarce skills kept free)"
        if routing.keep_scarce_skills
        else "the most proficient agent first"
    )
    return f"balanced: {aging}; {spare}"


def _describe_step(step: EscalationStep, priority: int) -> str:
    actions = [f"relax {name} to >= {level}" for name, level in sorted(step.set_skills.items())]
    actions += [f"drop {name}" for name in step.drop_skills]
    if step.add_queues:
        actions.append(f"also wait in {', '.join(step.add_queues)}")
    if step.overflow_to:
        actions.append(f"move to {step.overflow_to}")
    if step.raise_priority:
        actions.append(f"priority +{step.raise_priority} (now {priority})")
    return "; ".join(actions)
