"""What the rest of Switchboard reads of the routing configuration: plain frozen values, and their defaults.

Nothing here knows YAML, pydantic or AWS: the router, the simulator and the tests build and read these
directly. ``schema`` describes the document ops write, ``build`` turns a validated one into these values.

A new setting is added in three places: its field here (on ``RoutingConfig`` for a global one, on
``QueueConfig`` for one per queue, with the default that holds when the document leaves it out), its shape
in ``schema`` (``ConfigIn`` / ``QueueIn``), and one line in ``build`` that copies it across; checks that span
fields go to ``checks``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from chalicelib.routing.config.canned import CannedResponses
from chalicelib.routing.config.widget import WidgetSettings

# Every channel an adapter delivers (``InboundMessage.channel``). Config keys naming another channel are typos.
_MESSAGING = ("sms", "whatsapp", "telegram", "app", "in_store", "voice_assistant")
_SOCIAL = ("messenger", "instagram")
# ``voicemail``: a message a caller left (``chalicelib.voice.voicemail``), routed at e-mail's pace, not a live call.
CHANNELS: tuple[str, ...] = ("voice", "webchat", *_MESSAGING, *_SOCIAL, "email", "voicemail")
# Where the bot can answer a first message (``chalicelib.selfservice``; a call: its answer to the speech question,
# ``chalicelib.voice.self_service``); other channels are routed straight away.
SELF_SERVICE_CHANNELS = ("webchat", "sms", "whatsapp", "telegram", "email", "voice")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Defaults for what a config leaves out; routing.yaml spells the same values out, with the reasons, for ops.
DEFAULT_SLA_SECONDS = {
    "voice": 20,
    "webchat": 60,
    **dict.fromkeys(_MESSAGING, 300),
    **dict.fromkeys(_SOCIAL, 900),
    "email": 3600,
    "voicemail": 3600,
}
# A call takes a whole agent (60 units), a chat or message a third, an e-mail a fifth.
DEFAULT_CHANNEL_COSTS = {
    "voice": 60,
    "webchat": 20,
    **dict.fromkeys((*_MESSAGING, *_SOCIAL), 20),
    "email": 12,
    "voicemail": 12,
}
DEFAULT_VOICEMAIL_GREETING = "Sorry, nobody can take your call right now. Please leave a message after the tone."
DEFAULT_SPEECH_LANGUAGE = "en-US"
DEFAULT_ACKNOWLEDGEMENT = (
    "Thanks for waiting. You are number {position} in the queue; the expected wait is about {wait_minutes} minutes."
)


@dataclass(frozen=True)
class Hours:
    """Opening hours in ``timezone``: windows per day ("mon".."sun", every day present) and closed dates."""

    timezone: str
    weekly: dict[str, list[tuple[str, str]]]  # "mon" -> [("08:00", "18:00")]; "24:00" ends a day
    holidays: tuple[date, ...] = ()


@dataclass(frozen=True)
class OutOfHours:
    """What happens to a contact while its queue is closed: ``reply`` (and keep it queued), ``overflow``, or
    ``voicemail`` (a call is greeted with ``message`` and records a voicemail; other contacts wait for opening)."""

    action: Literal["reply", "overflow", "voicemail"]
    message: str = ""
    overflow_to: str | None = None


@dataclass(frozen=True)
class QueueRouting:
    """How one queue's contacts are routed (``queues.<name>.routing`` in routing.yaml).

    ``policy``: ``balanced`` (the default: ``matching.Balanced``) or ``classic`` (strict priority, then the earliest
    deadline; the most proficient agent). ``aging_seconds``: each this many seconds waited add one priority
    level; None: one level per ``matching.AGING_SHARE`` of the contact's own SLA target, so a call ages in seconds and
    an e-mail in minutes. ``keep_scarce_skills``: offer a contact to the agent whose skills other work needs
    least, and let a freed agent take the work only they can do first. ``sla_clock``: ``arrival`` (the SLA
    runs from arrival) or ``business_hours`` (it runs only while the queue is open). ``reply_window_margin_seconds``:
    a WhatsApp or Messenger contact is due this long before the customer's 24-hour reply window closes.
    """

    policy: str = "balanced"
    aging_seconds: float | None = None
    keep_scarce_skills: bool = True
    sla_clock: str = "arrival"
    reply_window_margin_seconds: int = 3600


DEFAULT_QUEUE_ROUTING = QueueRouting()


@dataclass(frozen=True)
class SpeechQuestion:
    """What a rule asks a caller before queueing the call (``<Gather input="speech">``), in a Twilio language."""

    question: str
    language: str = DEFAULT_SPEECH_LANGUAGE


DEFAULT_SELF_SERVICE_CLOSE_AFTER_SECONDS = 30 * 60


@dataclass(frozen=True)
class SelfService:
    """Where the bot answers first from the knowledge base (``mode="answer"``) or only suggests (``"suggest"``):
    these channels, these languages (empty: any), when the best article covers ``min_coverage`` of the question
    (None: ``kb.yaml``'s). ``source`` says whose setting it is, for ``rules explain``."""

    channels: tuple[str, ...]
    languages: tuple[str, ...] = ()
    min_coverage: float | None = None
    mode: str = "answer"
    source: str = ""
    # An answer the customer never replies to closes the conversation this long after it was sent.
    close_after_seconds: int = DEFAULT_SELF_SERVICE_CLOSE_AFTER_SECONDS

    def applies(self, channel: str, language: str | None) -> bool:
        """Whether a message on ``channel`` in ``language`` (None: not known yet, the article's decides) is tried."""
        if channel not in self.channels:
            return False
        if not self.languages or not language:
            return True
        primary = language.lower().replace("_", "-").split("-")[0]
        return primary in self.languages


# A rule's ``self_service: false``.
SELF_SERVICE_OFF = SelfService(channels=(), source="off")


@dataclass(frozen=True)
class QueueConfig:
    name: str
    hours: Hours | None = None  # None: always open
    out_of_hours: OutOfHours | None = None
    routing: QueueRouting = field(default_factory=QueueRouting)  # how its contacts are routed and timed
    ask: SpeechQuestion | None = None  # its callers are asked this first (a rule's own question comes first)
    self_service: SelfService | None = None  # the bot answers its contacts first (None: off)


@dataclass(frozen=True)
class EscalationStep:
    """One step that relaxes or widens a waiting contact's requirements; exactly one of the two times is set."""

    after_seconds: int | None = None  # fires this long after the contact was queued
    before_breach_seconds: int | None = None  # or this long before the SLA deadline
    set_skills: dict[str, int] = field(default_factory=dict)  # lower the minimum proficiency of these skills
    drop_skills: tuple[str, ...] = ()  # stop requiring these skills
    add_queues: tuple[str, ...] = ()  # also wait in these queues
    overflow_to: str | None = None  # move to this queue, replacing the current ones
    raise_priority: int = 0  # add to the priority (the result is capped at 9)

    def delay_seconds(self, sla_seconds: int) -> int:
        """Seconds after queueing at which this step fires, for a contact with ``sla_seconds`` to first response."""
        if self.after_seconds is not None:
            return self.after_seconds
        return max(0, sla_seconds - (self.before_breach_seconds or 0))

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (stored with a queued contact); ``from_dict`` reads it back."""
        return {
            "after_seconds": self.after_seconds,
            "before_breach_seconds": self.before_breach_seconds,
            "set_skills": dict(self.set_skills),
            "drop_skills": list(self.drop_skills),
            "add_queues": list(self.add_queues),
            "overflow_to": self.overflow_to,
            "raise_priority": self.raise_priority,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EscalationStep:
        return cls(
            after_seconds=_int_or_none(data.get("after_seconds")),
            before_breach_seconds=_int_or_none(data.get("before_breach_seconds")),
            set_skills={str(k): int(v) for k, v in (data.get("set_skills") or {}).items()},
            drop_skills=tuple(data.get("drop_skills") or ()),
            add_queues=tuple(data.get("add_queues") or ()),
            overflow_to=data.get("overflow_to"),
            raise_priority=int(data.get("raise_priority") or 0),
        )


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class TimeWindow:
    """A rule's time condition: on these days (empty: every day) and between these local times (None: all day)."""

    timezone: str
    days: tuple[str, ...] = ()
    between: tuple[str, str] | None = None  # start inclusive, end exclusive; start > end spans midnight


@dataclass(frozen=True)
class Conditions:
    """What a contact must look like for a rule to match; every condition given must hold, none given matches all."""

    channels: tuple[str, ...] = ()
    text_matches: str | None = None  # regular expression, searched case-insensitively
    languages: tuple[str, ...] = ()  # language prefixes: "es" matches "es" and "es-MX"
    tiers: tuple[str, ...] = ()
    tags_any: tuple[str, ...] = ()
    tags_all: tuple[str, ...] = ()
    time: TimeWindow | None = None

    @property
    def is_empty(self) -> bool:
        return self == Conditions()


@dataclass(frozen=True)
class Rule:
    name: str
    conditions: Conditions
    queue: str
    skills: dict[str, int] = field(default_factory=dict)  # skill -> minimum proficiency 1..5
    priority: int = 0  # 0..9, higher first
    sla_seconds: int | None = None  # None: the channel's default
    escalation: tuple[EscalationStep, ...] = ()
    voicemail: str | None = None  # a call matching this rule records a voicemail after this greeting
    ask: SpeechQuestion | None = None  # a call matching this rule is asked this first; the answer is its text
    # Its own self-service (overrides its queue's); ``OFF``: none even where the queue has it; None: the queue's.
    self_service: SelfService | None = None


@dataclass(frozen=True)
class LabCheck:
    """Before a rules change is published, the routing lab runs ``scenario`` (a standard simulator scenario)
    with the current and the candidate rules, and warns when the candidate loses more than
    ``max_sl_loss_points`` points of service level, in total or on a queue and channel."""

    scenario: str
    max_sl_loss_points: float = 2.0


@dataclass(frozen=True)
class VoiceCallback:
    """Press 1 to be called back (``offer``); a call back not answered is tried ``attempts`` times in all."""

    offer: bool = True
    attempts: int = 3
    retry_after_seconds: int = 120


@dataclass(frozen=True)
class RoutingConfig:
    queues: dict[str, QueueConfig]
    rules: tuple[Rule, ...]
    default_capacity: int = 60
    channel_costs: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_CHANNEL_COSTS))
    default_channel_cost: int = 20
    sla_seconds: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_SLA_SECONDS))
    default_sla_seconds: int = 300
    offer_timeout_seconds: dict[str, int] = field(default_factory=lambda: {"webchat": 30, "voice": 20})
    default_offer_timeout_seconds: int = 30
    max_consecutive_expired_offers: int = 3
    preferred_agent_window_seconds: int = 7 * 24 * 3600
    acknowledgement_interval_seconds: int = 120
    acknowledgement_message: str = DEFAULT_ACKNOWLEDGEMENT
    voice_position_interval_seconds: int = 45  # how often a waiting caller hears their position and wait
    voice_hold_audio: str | None = None  # https URL played between announcements; None: silence
    voice_callback: VoiceCallback = field(default_factory=VoiceCallback)
    canned: CannedResponses = field(default_factory=CannedResponses)  # routing.yaml's canned_responses
    lab: LabCheck | None = None  # simulate rule changes before publishing them (None: not checked)
    wrap_up_codes: tuple[tuple[str, str], ...] = ()  # (code, label) an agent closes with; () accepts any code
    widget: WidgetSettings = field(default_factory=WidgetSettings)  # routing.yaml's widget: (config/widget.py)

    def cost(self, channel: str) -> int:
        """Capacity units one contact of ``channel`` takes from an agent."""
        return self.channel_costs.get(channel, self.default_channel_cost)

    def sla_for(self, channel: str) -> int:
        """First-response target for ``channel``, in seconds."""
        return self.sla_seconds.get(channel, self.default_sla_seconds)

    def offer_timeout(self, channel: str) -> int:
        """Seconds an agent has to accept an offer on ``channel``."""
        return self.offer_timeout_seconds.get(channel, self.default_offer_timeout_seconds)
