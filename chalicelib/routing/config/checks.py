"""Checks across fields of a validated routing document, each found at a path of the document.

Queues named anywhere exist, overflow has no cycles, opening hours do not overlap, costs fit an agent,
the rules end in one catch-all, and escalation steps fire in the order listed and only relax what the
rule requires. Each finding is ``(path, message)``; ``loading`` places it at its line.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date

from chalicelib.routing.config.lines import Path_
from chalicelib.routing.config.schema import (
    ConfigIn,
    HoursIn,
    RuleIn,
    SelfServiceIn,
    WhenIn,
    minute_of_day,
    parse_days,
    parse_window,
)

Found = tuple[Path_, str]


def cross_checks(raw: ConfigIn) -> list[Found]:
    """Every problem that spans fields, with the path it is at."""
    found: list[Found] = []
    queues = set(raw.queues)

    def queue_exists(path: Path_, name: str | None) -> None:
        if name is not None and name not in queues:
            found.append((path, f"unknown queue {name!r} (queues: {', '.join(sorted(queues))})"))

    for channel, cost in raw.capacity.costs.items():
        if cost > raw.capacity.per_agent:
            found.append(
                (("capacity", "costs", channel), f"costs more than an agent's capacity ({raw.capacity.per_agent})")
            )
    if raw.capacity.default_cost > raw.capacity.per_agent:
        found.append((("capacity", "default_cost"), f"costs more than an agent's capacity ({raw.capacity.per_agent})"))

    for name, queue in raw.queues.items():
        path: Path_ = ("queues", name)
        if queue.hours:
            found.extend(_check_hours(queue.hours, (*path, "hours")))
        if queue.out_of_hours:
            if not queue.hours:
                found.append(((*path, "out_of_hours"), "the queue has no hours, so it is never out of hours"))
            queue_exists((*path, "out_of_hours", "overflow_to"), queue.out_of_hours.overflow_to)
        found.extend(_check_self_service(queue.self_service, path))
        if queue.routing.sla_clock == "business_hours" and not queue.hours:
            problem = "business_hours needs the queue's hours (without them it is always open)"
            found.append(((*path, "routing", "sla_clock"), problem))
    found.extend(_overflow_cycles(raw))
    queue_exists(("widget", "queue"), raw.widget.queue)

    names: dict[str, int] = {}
    for index, rule in enumerate(raw.rules):
        path = ("rules", index)
        if rule.name in names:
            found.append(((*path, "name"), f"duplicate rule name (also rules[{names[rule.name]}])"))
        names.setdefault(rule.name, index)
        queue_exists((*path, "queue"), rule.queue)
        found.extend(_check_self_service(rule.self_service or None, path))
        catch_all = rule.when == WhenIn()
        if catch_all and index < len(raw.rules) - 1:
            found.append((path, "this rule has no conditions, so the rules after it can never match"))
        if not catch_all and index == len(raw.rules) - 1:
            found.append((path, "the last rule must have no conditions (a catch-all), so every contact has a queue"))
        # The SLAs this rule's contacts can have: its own, or the defaults of the channels it names.
        slas = {rule.sla} if rule.sla else {raw.sla.channels.get(c, raw.sla.default) for c in rule.when.channel}
        found.extend(_check_escalation(rule, path, sorted(slas), queue_exists))
    return found


def _check_self_service(raw: SelfServiceIn | None, path: Path_) -> list[Found]:
    """Self-service languages are ones the knowledge base has a stemmer for (no article can be in another)."""
    from chalicelib.kb.articles import STEMMERS  # imported here: the knowledge base's articles import the schema

    languages = raw.languages if raw else []
    return [
        (
            (*path, "self_service", "languages", index),
            f"no article can be in {language} (languages: {', '.join(STEMMERS)})",
        )
        for index, language in enumerate(languages)
        if language not in STEMMERS
    ]


def _check_hours(hours: HoursIn, path: Path_) -> list[Found]:
    found: list[Found] = []
    by_day: dict[str, str] = {}
    for spec, windows in hours.weekly.items():
        for day in parse_days(spec):
            if day in by_day:
                found.append(((*path, "weekly", spec), f"{day} is already given by {by_day[day]}"))
            by_day.setdefault(day, spec)
        spans = sorted(parse_window(w) for w in windows)
        for (_, end), (start, _) in itertools.pairwise(spans):
            if minute_of_day(start) < minute_of_day(end):
                found.append(((*path, "weekly", spec), "opening hours overlap"))
    seen: set[date] = set()
    for index, holiday in enumerate(hours.holidays):
        if holiday in seen:
            found.append(((*path, "holidays", index), "date listed twice"))
        seen.add(holiday)
    return found


def _overflow_cycles(raw: ConfigIn) -> list[Found]:
    found: list[Found] = []
    reported: set[frozenset[str]] = set()
    for start in raw.queues:
        chain = [start]
        while True:
            queue = raw.queues.get(chain[-1])
            target = queue.out_of_hours.overflow_to if queue and queue.out_of_hours else None
            if target is None or target not in raw.queues:
                break
            if target in chain:
                cycle = chain[chain.index(target) :]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    found.append(
                        (
                            ("queues", cycle[0], "out_of_hours", "overflow_to"),
                            f"overflow cycle {' -> '.join([*cycle, target])}",
                        )
                    )
                break
            chain.append(target)
    return found


def _check_escalation(
    rule: RuleIn, path: Path_, slas: list[int], queue_exists: Callable[[Path_, str | None], None]
) -> list[Found]:
    """Steps name existing queues, fire in the order listed, and only relax skills the rule requires."""
    found: list[Found] = []
    skills = dict(rule.skills)
    last_after: int | None = None
    last_before: int | None = None
    last_fire: dict[int, int] = {}
    for index, step in enumerate(rule.escalation):
        here: Path_ = (*path, "escalation", index)
        for q_index, queue in enumerate(step.add_queues):
            queue_exists((*here, "add_queues", q_index), queue)
        queue_exists((*here, "overflow_to"), step.overflow_to)
        if step.after is not None:
            if last_after is not None and step.after <= last_after:
                found.append(((*here, "after"), "escalation steps must be in increasing order of after"))
            last_after = step.after
        if step.before_breach is not None:
            if slas and step.before_breach >= slas[0]:
                found.append(
                    ((*here, "before_breach"), f"must be shorter than the SLA ({slas[0]}s), or it fires at once")
                )
            if last_before is not None and step.before_breach >= last_before:
                found.append(
                    (
                        (*here, "before_breach"),
                        "escalation steps must be in the order they fire (decreasing before_breach)",
                    )
                )
            last_before = step.before_breach
        # With known SLAs, steps mixing after and before_breach can be put in order too.
        fires = {sla: step.after if step.after is not None else sla - (step.before_breach or 0) for sla in slas}
        if any(fire < last_fire.get(sla, fire) for sla, fire in fires.items()):
            found.append((here, "fires before the step above it; list steps in the order they fire"))
        last_fire = fires
        for skill, level in step.set_skills.items():
            if skill not in skills:
                found.append(((*here, "set_skills", skill), "not a skill this rule requires at this step"))
            elif level >= skills[skill]:
                found.append(((*here, "set_skills", skill), f"must be lower than {skills[skill]} (escalation relaxes)"))
            else:
                skills[skill] = level
        for s_index, skill in enumerate(step.drop_skills):
            if skills.pop(skill, None) is None:
                found.append(((*here, "drop_skills", s_index), "not a skill this rule requires at this step"))
    return found
