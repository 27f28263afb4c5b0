"""From the validated document (``schema``) to the frozen values the rest of Switchboard reads (``values``).

Day ranges become each day, opening hours are sorted, labels case-folded, and a rule's time condition takes
the config's time zone unless it names its own.
"""

from __future__ import annotations

from dataclasses import replace

from chalicelib.routing.config.canned import build_canned
from chalicelib.routing.config.schema import (
    ConfigIn,
    CustomerIn,
    QueueIn,
    RuleIn,
    SelfServiceIn,
    parse_days,
    parse_window,
)
from chalicelib.routing.config.values import (
    DAYS,
    DEFAULT_VOICEMAIL_GREETING,
    SELF_SERVICE_OFF,
    Conditions,
    EscalationStep,
    Hours,
    LabCheck,
    OutOfHours,
    QueueConfig,
    QueueRouting,
    RoutingConfig,
    Rule,
    SelfService,
    SpeechQuestion,
    TimeWindow,
    VoiceCallback,
)
from chalicelib.routing.config.widget import build_widget


def build_config(raw: ConfigIn) -> RoutingConfig:
    """The values of a document that passed the schema and the checks."""
    return RoutingConfig(
        queues={name: _build_queue(name, queue) for name, queue in raw.queues.items()},
        rules=tuple(_build_rule(rule, raw.timezone) for rule in raw.rules),
        default_capacity=raw.capacity.per_agent,
        channel_costs=dict(raw.capacity.costs),
        default_channel_cost=raw.capacity.default_cost,
        sla_seconds=dict(raw.sla.channels),
        default_sla_seconds=raw.sla.default,
        offer_timeout_seconds=dict(raw.offers.timeouts),
        default_offer_timeout_seconds=raw.offers.timeout,
        max_consecutive_expired_offers=raw.offers.max_consecutive_expired,
        preferred_agent_window_seconds=raw.preferred_agent_window,
        acknowledgement_interval_seconds=raw.acknowledgement.interval,
        acknowledgement_message=raw.acknowledgement.message,
        voice_position_interval_seconds=raw.voice.position_interval,
        voice_hold_audio=raw.voice.hold_audio,
        voice_callback=VoiceCallback(
            raw.voice.callback.offer, raw.voice.callback.attempts, raw.voice.callback.retry_after
        ),
        canned=build_canned(raw.canned_responses),
        lab=LabCheck(raw.lab.scenario, raw.lab.max_sl_loss_points) if raw.lab else None,
        wrap_up_codes=tuple((c.code, c.label) for c in raw.wrap_up_codes),
        widget=build_widget(raw.widget),
    )


def _build_queue(name: str, raw: QueueIn) -> QueueConfig:
    hours = None
    if raw.hours:
        weekly: dict[str, list[tuple[str, str]]] = {day: [] for day in DAYS}
        for spec, windows in raw.hours.weekly.items():
            for day in parse_days(spec):
                weekly[day] = sorted(parse_window(w) for w in windows)
        hours = Hours(timezone=raw.hours.timezone, weekly=weekly, holidays=tuple(sorted(raw.hours.holidays)))
    ooh = raw.out_of_hours
    return QueueConfig(
        name=name,
        hours=hours,
        out_of_hours=OutOfHours(action=ooh.action, message=ooh.message.strip(), overflow_to=ooh.overflow_to)
        if ooh
        else None,
        routing=QueueRouting(
            policy=raw.routing.policy,
            aging_seconds=raw.routing.aging_seconds,
            keep_scarce_skills=raw.routing.keep_scarce_skills,
            sla_clock=raw.routing.sla_clock,
            reply_window_margin_seconds=raw.routing.reply_window_margin,
        ),
        ask=SpeechQuestion(raw.ask.question, raw.ask.language) if raw.ask else None,
        self_service=_self_service(raw.self_service, f"queue {name}") if raw.self_service else None,
    )


def _self_service(raw: SelfServiceIn, source: str) -> SelfService:
    return SelfService(
        channels=tuple(dict.fromkeys(raw.channels)),
        languages=tuple(dict.fromkeys(raw.languages)),
        min_coverage=raw.min_coverage,
        mode=raw.mode,
        source=source,
        close_after_seconds=raw.close_after,
    )


def _build_rule(raw: RuleIn, timezone: str) -> Rule:
    when = raw.when
    customer = when.customer or CustomerIn()
    time_window = None
    if when.time:
        days = {day for spec in when.time.days for day in parse_days(spec)}
        time_window = TimeWindow(
            timezone=when.time.timezone or timezone,
            days=tuple(day for day in DAYS if day in days),
            between=when.time.between,
        )
    return Rule(
        name=raw.name,
        conditions=Conditions(
            channels=tuple(when.channel),
            text_matches=when.text_matches,
            languages=tuple(when.language),
            tiers=tuple(t.casefold() for t in customer.tier),
            tags_any=tuple(t.casefold() for t in customer.tags_any),
            tags_all=tuple(t.casefold() for t in customer.tags_all),
            time=time_window,
        ),
        queue=raw.queue,
        skills=dict(raw.skills),
        priority=raw.priority,
        sla_seconds=raw.sla,
        escalation=tuple(
            EscalationStep(
                after_seconds=step.after,
                before_breach_seconds=step.before_breach,
                set_skills=dict(step.set_skills),
                drop_skills=tuple(step.drop_skills),
                add_queues=tuple(step.add_queues),
                overflow_to=step.overflow_to,
                raise_priority=step.raise_priority,
            )
            for step in raw.escalation
        ),
        voicemail=DEFAULT_VOICEMAIL_GREETING if raw.voicemail is True else (raw.voicemail or None),
        ask=SpeechQuestion(raw.ask.question, raw.ask.language) if raw.ask else None,
        self_service=(
            replace(SELF_SERVICE_OFF, source=f"rule {raw.name!r}")
            if raw.self_service is False
            else _self_service(raw.self_service, f"rule {raw.name!r}")
            if raw.self_service
            else None
        ),
    )
