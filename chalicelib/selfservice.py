"""Self-service answers first: the bot answers a customer's first message from the knowledge base and holds the
contact back from routing until the customer says how it went.

The router asks ``KnowledgeBaseDesk.take`` about a message that would open a contact, only where routing.yaml's
``self_service`` applies (``rules.Decision.self_service``, mode ``answer``): nothing here runs, and no AWS request
is made, for a channel or queue without it. The desk decides:

- a first message the best article covers well enough (``kb.answer``): the bot answers in the conversation (an
  outbound message, author ``bot``, in the channel's form (``answer_form``): on web chat with the choices "Yes" /
  "Talk to a person" as buttons; on SMS the short answer and "reply 1 or 2", on Telegram also with "1" and "2" as
  an inline keyboard; on WhatsApp an interactive message with two reply buttons; on e-mail the whole article and
  "reply YES") and the contact is held back: not offered, no SLA clock;
- "Yes" (SMS, Telegram: "1"; WhatsApp: the "solved" button's id; e-mail: a first own line saying yes) to that
  answer: solved, the conversation closed (wrap-up ``self_service``), never routed;
- anything else ("Talk to a person", "no", a second question): handed over, routed as today from this message (the
  SLA clock starts now); the rules read the first question with it, and the agent sees the exchange in the timeline;
- no confident article: routed as today;
- no reply at all: ``self_service.close_after`` after the answer a ``SelfServiceCloseDue`` timer closes the
  conversation ``self_service_unconfirmed`` (answered, no hand-over), unless the customer wrote in it meanwhile.

It measures what it solved: each outcome is an EMF metric (``metrics.self_service``) and a count of the UTC day per
article and channel (``store.self_service.count``, the supervisor view). An exchange that ended solved or
unconfirmed is remembered on the customer's profile (``self_service_last``); their next message on any channel
within ``RECONTACT_SECONDS`` is a recontact of that answer's article and channel, counted once (``seen_again``:
read from the profile the router reads anyway, so a customer without one costs no request).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from chalicelib import clock, metrics
from chalicelib.routing.config.values import SelfService
from chalicelib.routing.events import ConversationMessage, SelfServiceCloseDue
from chalicelib.routing.ports import SelfServiceVerdict

if TYPE_CHECKING:  # the knowledge base is imported when first asked, never on a handler's import
    from chalicelib.kb.index import Hit

logger = Logger(service="switchboard", child=True)

KIND = "self_service_answer"
# What the bot says after its answer, in the article's language, and the customer's two choices (web chat: buttons).
_ASK = {"en": "Did this solve it?", "de": "Hat Ihnen das geholfen?"}
_CHOICES = {"en": ("Yes", "Talk to a person"), "de": ("Ja", "Mit einer Person sprechen")}
# On SMS and Telegram (and WhatsApp through Twilio, which has no reply buttons): the choices as digits to reply with.
_REPLY_WITH = {
    "en": "Reply 1 if this solved it, 2 to talk to a person.",
    "de": "Antworten Sie 1, wenn das geholfen hat, oder 2 für eine Person.",
}
# WhatsApp's reply buttons: a title is at most 20 characters (Meta's limit), so German says it shorter.
_BUTTON_TITLES = {"en": ("Yes", "Talk to a person"), "de": ("Ja", "Mit Person sprechen")}
SOLVED_CHOICE, HAND_OVER_CHOICE = "selfservice.solved", "selfservice.person"  # the buttons' ids, which a tap names
# E-mail: the whole article, and how to answer it.
_EMAIL_REPLY_WITH = {
    "en": "Reply YES if this solved it, or reply with anything else to talk to a person.",
    "de": (
        "Antworten Sie JA, wenn das Ihre Frage beantwortet hat, oder mit etwas anderem, um mit einer Person zu "
        "sprechen."
    ),
}
NUMBERED = frozenset({"sms", "telegram", "whatsapp"})  # where "1" is a reply meaning solved
SMS_ANSWER_CHARACTERS = 480  # an article without a short answer: its text cut to about three SMS segments
RECONTACT_SECONDS = 72 * 3600  # a customer back within this after a deflection: it was no solution
WHATSAPP_BODY_CHARACTERS = 1024  # an interactive message's body.text, at most (Meta's limit)
WHATSAPP_TITLE_CHARACTERS = 20
# Replies meaning "solved" (a button's label, or typed); every other reply hands over.
_SOLVED = {"yes", "ja", "yes thanks", "yes thank you", "ja danke", "solved", "gelöst", "thanks", "danke"}
# An e-mail's first own line: a short "yes ..." is solved unless it goes on to say otherwise.
_YES = frozenset({"yes", "ja", "yep", "yeah", "jep", "jawohl"})
_BUT = frozenset({"but", "aber", "however", "jedoch", "not", "nicht", "no", "nein", "still", "noch", "doch"})
_EMAIL_YES_WORDS = 6
_GREETING = re.compile(
    r"^((hi|hello|hallo|hey|moin|servus)(\s+\w+)?|dear\b.*|liebe[rs]?\b.*|sehr geehrte.*|guten (tag|morgen|abend)\b.*)"
    r"\W*$",
    re.IGNORECASE,
)
_QUOTE_HEADER = re.compile(r"^(on|am|le|el)\s.*(wrote|schrieb|a écrit|escribió)\s*:?\s*$", re.IGNORECASE)
_OUTLOOK_HEADER = re.compile(r"^(-{2,}\s*original message|from:|von:|_{5,}|-- ?$)", re.IGNORECASE)


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def says_solved(text: str, channel: str = "webchat", choice: str | None = None) -> bool:
    """Whether a reply to the bot's answer means it solved the question.

    ``choice``: the id of the button tapped (WhatsApp's reply buttons) decides, whatever its title said.
    Where the choices are digits (SMS, Telegram, WhatsApp through Twilio) "1" is solved. An e-mail is read from
    its first own line only (greetings, quoted history and "On ... wrote:" skipped): "YES", or a short "yes"
    that goes on to no "but"."""
    if choice is not None:  # a button tapped: only our "solved" one is a yes, another business button is not
        return choice == SOLVED_CHOICE
    if channel == "email":
        return _email_says_yes(text)
    said = _normalised(text)
    return said in _SOLVED or (channel in NUMBERED and said == "1")


def _email_says_yes(text: str) -> bool:
    line = _first_own_line(text)
    said = _normalised(line)
    if said in _SOLVED:
        return True
    words = said.split()
    if not words or words[0] not in _YES or "?" in line or len(words) > _EMAIL_YES_WORDS:
        return False
    return not any(word in _BUT for word in words[1:])


def _first_own_line(text: str) -> str:
    """The first line the customer wrote themselves: not blank, not a greeting, not quoted, not a quote's header."""
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.strip()
        if _QUOTE_HEADER.match(line) or _OUTLOOK_HEADER.match(line):
            return ""  # the quoted conversation starts: nothing of their own above it
        if not line or line.startswith(">") or _GREETING.match(line):
            continue
        return line
    return ""


def _language(language: str | None) -> str | None:
    return language.lower().replace("_", "-").split("-")[0] if language else None


@dataclass(frozen=True)
class AnswerForm:
    """The bot's answer as a channel shows it.

    ``text``: the message (WhatsApp: the interactive body). ``choices``: the widget's button labels (web chat).
    ``buttons``: ``{"id", "title"}`` pairs, WhatsApp's reply buttons or Telegram's inline keyboard (its callback
    data the id). ``otherwise``: what replaces the buttons where the provider has none (WhatsApp through Twilio)."""

    text: str
    choices: tuple[str, ...] = ()
    buttons: tuple[dict[str, str], ...] = ()
    otherwise: str | None = None


def answer_form(hit: Hit, channel: str) -> AnswerForm:
    """The bot's answer in ``channel``'s form.

    Web chat: the article's title and text, then the question, with two buttons. SMS: the short answer (or the
    text, cut), then "reply 1 or 2". Telegram: the same, with "1" and "2" as an inline keyboard too. WhatsApp: the
    short answer (or the text, cut to fit) and the question as an interactive message with two reply buttons.
    E-mail: the title and the whole text, then "reply YES"."""
    language = hit.language if hit.language in _ASK else "en"
    if channel in ("sms", "telegram"):
        reply_with = _REPLY_WITH[language]
        text = f"{_short(hit, SMS_ANSWER_CHARACTERS)}\n\n{reply_with}"
        if channel == "sms":
            return AnswerForm(text)
        yes, person = _CHOICES[language]
        return AnswerForm(text, buttons=({"id": "1", "title": yes}, {"id": "2", "title": person}))
    if channel == "whatsapp":
        ask = _ASK[language]
        short = _short(hit, WHATSAPP_BODY_CHARACTERS - len(ask) - 2)
        ids = (SOLVED_CHOICE, HAND_OVER_CHOICE)
        buttons = tuple(
            {"id": id_, "title": title[:WHATSAPP_TITLE_CHARACTERS]}
            for id_, title in zip(ids, _BUTTON_TITLES[language], strict=True)
        )
        return AnswerForm(f"{short}\n\n{ask}", buttons=buttons, otherwise=_REPLY_WITH[language])
    if channel == "email":
        return AnswerForm(f"{hit.title}\n\n{hit.body.strip()}\n\n{_EMAIL_REPLY_WITH[language]}")
    ask = _ASK[language]
    return AnswerForm(f"{hit.title}\n\n{hit.body.strip()}\n\n{ask}", choices=_CHOICES[language])


def answer_text(hit: Hit, channel: str) -> tuple[str, list[str]]:
    """The bot's answer in ``channel``'s form, and the choices a widget shows as buttons (none elsewhere)."""
    form = answer_form(hit, channel)
    return form.text, list(form.choices)


def _short(hit: Hit, limit: int) -> str:
    short = hit.short_answer.strip() if hit.short_answer else ""
    return _cut(short or hit.body.strip(), limit)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


class KnowledgeBaseDesk:
    """The self-service desk over the knowledge base and the data table (``store.self_service``)."""

    def take(self, event: ConversationMessage, chosen: SelfService, now: str) -> SelfServiceVerdict:
        from chalicelib.store import self_service as sessions

        session = sessions.get_session(event.conversation_id)
        if session is not None:
            verdict = self._reply(session, event, now)
            if verdict is not None:
                return verdict
        if event.channel == "voice":
            return SelfServiceVerdict()  # a call is answered on the call, from its speech question (voice.self_service)
        return self._first_message(event, chosen, now)

    def _reply(self, session: dict[str, Any], event: ConversationMessage, now: str) -> SelfServiceVerdict | None:
        """The verdict on a message to a conversation the bot answered in; None: a new first message."""
        from chalicelib.store import self_service as sessions

        state, question = session.get("state"), str(session.get("message_id", ""))
        if state == sessions.WAITING and question == event.message_id:
            # A redelivered first message: its close timer again, in case the first delivery died before it.
            _arm_close(session, now)
            return SelfServiceVerdict(held="already answered by self-service")
        if state == sessions.WAITING:
            solved = says_solved(event.text, event.channel, event.choice)
            outcome = sessions.SOLVED if solved else sessions.HANDED_OVER
            if not sessions.resolve(event.conversation_id, question, outcome, event.message_id, now):
                return self._reply(sessions.get_session(event.conversation_id) or {}, event, now)
            article, channel = str(session.get("article_id", "")), _answered_on(session, event.channel)
            logger.info("self-service " + outcome, extra={"article_id": article})
            metrics.self_service(outcome, article, channel)
            sessions.count(outcome, article, channel, now)
            session = {**session, "state": outcome, "resolved_by": event.message_id, "resolved_at": now}
        if session.get("resolved_by") != event.message_id:
            return None
        if session.get("state") == sessions.SOLVED:
            ended = _ended(session, event.conversation_id, event.channel, now)
            sessions.close_solved(event.conversation_id, event.customer_id, now, ended)
            return SelfServiceVerdict(held="solved by self-service")
        return SelfServiceVerdict(asked=str(session.get("question", "")))

    def seen_again(self, event: ConversationMessage, customer: dict[str, Any], now: str) -> None:
        """The customer (their profile as the router read it) wrote a message that opens a contact: a recontact when
        their last bot exchange ended solved or unconfirmed before it, within ``RECONTACT_SECONDS``; counted once
        for that exchange's article and channel. No request unless it is one."""
        from chalicelib.store import self_service as sessions

        last = customer.get(sessions.LAST)
        if not isinstance(last, dict) or last.get("recontact_at") or not last.get("ended_at"):
            return
        ended_at = str(last["ended_at"])
        if not ended_at < event.received_at or clock.seconds_between(ended_at, event.received_at) > RECONTACT_SECONDS:
            return
        if not sessions.note_recontact(event.customer_id, last, event.message_id, event.channel, now):
            return  # counted already (a redelivery, or another message came first)
        article, channel = str(last.get("article_id", "")), str(last.get("channel", event.channel))
        logger.info("self-service recontact", extra={"article_id": article, "channel": channel})
        metrics.self_service(sessions.RECONTACT, article, channel)
        sessions.count(sessions.RECONTACT, article, channel, now)

    def _first_message(self, event: ConversationMessage, chosen: SelfService, now: str) -> SelfServiceVerdict:
        from chalicelib import kb
        from chalicelib.outbound import outbox
        from chalicelib.store import self_service as sessions

        language = _language(event.language)
        if chosen.languages and language not in chosen.languages:
            language = None  # not known well enough: the article's language decides below
        question = event.text
        if event.channel == "email" and event.subject:  # an e-mail's question is often its subject
            question = f"{event.subject}\n{event.text}"
        hit = kb.answer(question, language=language, channel=event.channel, min_coverage=chosen.min_coverage)
        if hit is None or (chosen.languages and hit.language not in chosen.languages):
            return SelfServiceVerdict()
        form = answer_form(hit, event.channel)
        message = outbox.new_system_message(
            event.conversation_id, event.customer_id, event.channel, form.text, KIND, now
        )
        message |= {"author": "bot", "article_id": hit.article_id} | _shown(form)
        session = {
            "conversation_id": event.conversation_id,
            "customer_id": event.customer_id,
            "channel": event.channel,
            "state": sessions.WAITING,
            "message_id": event.message_id,
            "question": event.text,
            "article_id": hit.article_id,
            "language": hit.language,
            "answered_at": now,
            "answer_id": message["message_id"],
            "close_due_at": clock.plus_seconds(now, chosen.close_after_seconds),
        }
        if not sessions.answered(session, message):
            again = sessions.get_session(event.conversation_id) or {}
            return self._reply(again, event, now) or SelfServiceVerdict()
        outbox.dispatch(message)
        _arm_close(session, now)
        logger.info("self-service answered", extra={"article_id": hit.article_id, "channel": event.channel})
        metrics.self_service("answered", hit.article_id, event.channel)
        sessions.count("answered", hit.article_id, event.channel, now, title=hit.title)
        return SelfServiceVerdict(held="answered by self-service")


def _answered_on(session: dict[str, Any], channel: str) -> str:
    """The channel the bot answered on (an exchange is counted there; sessions before it was kept: ``channel``)."""
    return str(session.get("channel") or channel)


def _ended(session: dict[str, Any], conversation_id: str, channel: str, now: str) -> dict[str, Any]:
    """The customer profile's record of an exchange that ended (``self_service_last``): its moment is the
    session's, so that a redelivery writes the same record."""
    return {
        "conversation_id": conversation_id,
        "article_id": str(session.get("article_id", "")),
        "channel": _answered_on(session, channel),
        "outcome": str(session.get("state", "")),
        "ended_at": str(session.get("resolved_at") or now),
    }


def _arm_close(session: dict[str, Any], now: str) -> None:
    """The timer that closes the exchange unconfirmed if the customer never replies (none for older sessions)."""
    from chalicelib.store import queue

    due = session.get("close_due_at")
    if due:
        event = SelfServiceCloseDue(str(session["conversation_id"]), str(session["message_id"]), str(due))
        queue.publish_timer(event, str(due), now)


def on_close_due(event: SelfServiceCloseDue, now: str) -> str:
    """The ``SelfServiceCloseDue`` timer: close the conversation unconfirmed if its answer still waits and the
    customer wrote nothing in it since the question (a reply stored but not routed yet keeps it: the router hands
    it over or closes it solved). Idempotent: a repeat finds the answer no longer waiting, or closes again."""
    from chalicelib.store import conversations, queue
    from chalicelib.store import self_service as sessions

    if clock.seconds_between(now, event.due_at) > 1:
        queue.publish_timer(event, event.due_at, now)  # delivered early (SQS delays 15 minutes at most)
        return "re-armed"
    session = sessions.get_session(event.conversation_id)
    if session is None or str(session.get("message_id")) != event.question_id:
        return "not this answer"
    customer_id = str(session.get("customer_id", ""))
    if session.get("state") == sessions.WAITING:
        since = str(session.get("answered_at", ""))
        written = [
            m
            for m in conversations.messages_since([customer_id], since, consistent=True)
            if m.get("direction") == "inbound"
            and m.get("conversation_id") == event.conversation_id
            and m.get("message_id") != event.question_id
        ]
        if written:
            return "replied"
        if not sessions.resolve(event.conversation_id, event.question_id, sessions.UNCONFIRMED, None, now):
            return on_close_due(event, now)  # a reply resolved it just now: look again
        article, channel = str(session.get("article_id", "")), _answered_on(session, "")
        logger.info("self-service unconfirmed", extra={"article_id": article, "channel": channel})
        metrics.self_service(sessions.UNCONFIRMED, article, channel)
        sessions.count(sessions.UNCONFIRMED, article, channel, now)
        session = {**session, "state": sessions.UNCONFIRMED, "resolved_at": now}
    if session.get("state") != sessions.UNCONFIRMED:
        return "answered"
    ended = _ended(session, event.conversation_id, "", now)
    sessions.close(event.conversation_id, customer_id, str(session["resolved_at"]), "self_service_unconfirmed", ended)
    return "closed unconfirmed"


def _shown(form: AnswerForm) -> dict[str, Any]:
    """What the bot's timeline message carries beside its text: the widget's choices, the buttons a provider shows
    (``outbox`` sends them: WhatsApp's reply buttons, Telegram's inline keyboard) and what replaces them elsewhere."""
    shown: dict[str, Any] = {"choices": list(form.choices)} if form.choices else {}
    if form.buttons:
        shown["buttons"] = [dict(button) for button in form.buttons]
    if form.otherwise:
        shown["buttons_otherwise"] = form.otherwise
    return shown
