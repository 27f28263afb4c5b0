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
- no confident article: routed as today.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from chalicelib import metrics
from chalicelib.routing.config.values import SelfService
from chalicelib.routing.events import ConversationMessage
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
            return SelfServiceVerdict(held="already answered by self-service")  # a redelivered first message
        if state == sessions.WAITING:
            solved = says_solved(event.text, event.channel)
            outcome = sessions.SOLVED if solved else sessions.HANDED_OVER
            if not sessions.resolve(event.conversation_id, question, outcome, event.message_id, now):
                return self._reply(sessions.get_session(event.conversation_id) or {}, event, now)
            logger.info("self-service " + outcome, extra={"article_id": session.get("article_id")})
            metrics.self_service(outcome, str(session.get("article_id", "")), event.channel)
            session = {**session, "state": outcome, "resolved_by": event.message_id}
        if session.get("resolved_by") != event.message_id:
            return None
        if session.get("state") == sessions.SOLVED:
            sessions.close_solved(event.conversation_id, event.customer_id, now)
            return SelfServiceVerdict(held="solved by self-service")
        return SelfServiceVerdict(asked=str(session.get("question", "")))

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
            "state": sessions.WAITING,
            "message_id": event.message_id,
            "question": event.text,
            "article_id": hit.article_id,
            "language": hit.language,
            "answered_at": now,
            "answer_id": message["message_id"],
        }
        if not sessions.answered(session, message):
            again = sessions.get_session(event.conversation_id) or {}
            return self._reply(again, event, now) or SelfServiceVerdict()
        outbox.dispatch(message)
        logger.info("self-service answered", extra={"article_id": hit.article_id, "channel": event.channel})
        metrics.self_service("answered", hit.article_id, event.channel)
        return SelfServiceVerdict(held="answered by self-service")
