"""Self-service answers first: the bot answers a customer's first message from the knowledge base and holds the
contact back from routing until the customer says how it went.

The router asks ``KnowledgeBaseDesk.take`` about a message that would open a contact, only where routing.yaml's
``self_service`` applies (``rules.Decision.self_service``, mode ``answer``): nothing here runs, and no AWS request
is made, for a channel or queue without it. The desk decides:

- a first message the best article covers well enough (``kb.answer``): the bot answers in the conversation (an
  outbound message, author ``bot``: on web chat with the choices "Yes" / "Talk to a person" as buttons, on SMS the
  short answer and "reply 1 or 2") and the contact is held back: not offered, no SLA clock;
- "Yes" (SMS: "1") to that answer: solved, the conversation closed (wrap-up ``self_service``), never routed;
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
# On SMS: the short answer, and the choices as digits to reply with.
_REPLY_WITH = {
    "en": "Reply 1 if this solved it, 2 to talk to a person.",
    "de": "Antworten Sie 1, wenn das geholfen hat, oder 2 für eine Person.",
}
NUMBERED = frozenset({"sms"})
SMS_ANSWER_CHARACTERS = 480  # an article without a short answer: its text cut to about three SMS segments
RECONTACT_SECONDS = 72 * 3600  # a customer back within this after a deflection: it was no solution
# Replies meaning "solved" (a button's label, or typed); every other reply hands over.
_SOLVED = {"yes", "ja", "yes thanks", "yes thank you", "ja danke", "solved", "gelöst", "thanks", "danke"}


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def says_solved(text: str, channel: str = "webchat") -> bool:
    """Whether a reply to the bot's answer means it solved the question (on SMS also "1")."""
    said = _normalised(text)
    return said in _SOLVED or (channel in NUMBERED and said == "1")


def _language(language: str | None) -> str | None:
    return language.lower().replace("_", "-").split("-")[0] if language else None


def answer_text(hit: Hit, channel: str) -> tuple[str, list[str]]:
    """The bot's answer in ``channel``'s form, and the choices a widget shows as buttons (none elsewhere).

    Web chat: the article's title and text, then the question. SMS: the short answer (or the text, cut), then
    "reply 1 or 2"."""
    if channel in NUMBERED:
        short = hit.short_answer or _cut(hit.body.strip(), SMS_ANSWER_CHARACTERS)
        return f"{short}\n\n{_REPLY_WITH.get(hit.language, _REPLY_WITH['en'])}", []
    ask = _ASK.get(hit.language, _ASK["en"])
    return f"{hit.title}\n\n{hit.body.strip()}\n\n{ask}", list(_CHOICES.get(hit.language, _CHOICES["en"]))


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
            solved = says_solved(event.text, event.channel)
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
        hit = kb.answer(event.text, language=language, channel=event.channel, min_coverage=chosen.min_coverage)
        if hit is None or (chosen.languages and hit.language not in chosen.languages):
            return SelfServiceVerdict()
        text, choices = answer_text(hit, event.channel)
        message = outbox.new_system_message(event.conversation_id, event.customer_id, event.channel, text, KIND, now)
        message |= {"author": "bot", "article_id": hit.article_id} | ({"choices": choices} if choices else {})
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
        if not sessions.resolve_unanswered(event.conversation_id, event.question_id, now):
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
