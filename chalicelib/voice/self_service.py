"""Self-service on the phone: the speech question's answer (``chalicelib.voice.speech``) is answered from the
knowledge base on the call, where routing.yaml's ``self_service`` covers ``voice`` for the call's rule or queue.

- The speech action (``channels.twilio_ivr.SPEECH``): what the caller said has a confident article (``kb.answer``,
  in the question's language): the call hears its short answer (``<Say language>``) and "Did this answer your
  question? Say yes or press 1; to talk to a person, say agent or press 2" in ``<Gather input="dtmf speech"
  numDigits="1" actionOnEmptyResult="true">``. Nothing is stored in a conversation yet; the answer is kept
  (``store.voice_answers``). No confident article (or self-service not on for calls): the call is stored and queued
  as always. A config whose ``self_service`` never names ``voice`` costs no request here.
- The Gather's action (``channels.twilio_ivr.SELF_SERVICE``, ``PATH``): the outcome is decided once, then the call
  is stored: the caller's question (the call's message), the bot's answer (author ``bot``, as said) and the caller's
  reply, in that order in the timeline. "Yes" or 1: solved, the caller is thanked and the call hung up; the router
  closes the conversation (wrap-up ``self_service``) from the reply, as on any channel. Anything else, or nothing:
  handed over, the caller held in line as a call; the router opens the contact from the reply (the SLA clock starts
  at the hand-over) and the agent reads the exchange.
- The caller hangs up during the answer (the call's status callback, or a final ``CallStatus`` on the action):
  unconfirmed, not abandoned: the question and the answer are stored and the conversation closed
  ``self_service_unconfirmed`` at once.

Each outcome is counted as on the other channels (``store.self_service.count``, ``metrics.self_service``), channel
``voice``.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from chalicelib import clock
from chalicelib.conversations.models import InboundMessage, StoredMessage
from chalicelib.routing.config.values import DEFAULT_SPEECH_LANGUAGE
from chalicelib.voice.twiml import XML_DECLARATION

if TYPE_CHECKING:
    from chalicelib.kb.index import Hit
    from chalicelib.routing.config import RoutingConfig

logger = Logger(service="switchboard", child=True)

CHANNEL = "voice"
PATH = "/webhooks/twilio/voice/self-service"  # the Gather's action
LISTEN_SECONDS = 5
SPOKEN_CHARACTERS = 400  # an article without a short answer: its text cut to about half a minute of speech
_PROMPT = {
    "en": "Did this answer your question? Say yes or press 1. To talk to a person, say agent or press 2.",
    "de": "Hat das Ihre Frage beantwortet? Sagen Sie ja oder drücken Sie die 1. Um mit einer Person zu sprechen,"
    " sagen Sie Mitarbeiter oder drücken Sie die 2.",
}
_THANKS = {"en": "Thank you for calling. Goodbye.", "de": "Vielen Dank für Ihren Anruf. Auf Wiederhören."}
_TAGS = {"en": "en-US", "de": "de-DE"}  # the Say language of an article in another language than the question's
# Words that ask for a person, whatever else the caller says ("yes, an agent please").
_PERSON = frozenset({"agent", "person", "human", "operator", "someone", "mitarbeiter", "mensch", "2", "two", "zwei"})
_PRESSED = {"1": "Pressed 1", "2": "Pressed 2"}
NO_REPLY = "(no answer)"
_MARKUP = re.compile(r"[*_`#>|]+|^\s*[-+]\s+", re.MULTILINE)


def configured(config: RoutingConfig) -> bool:
    """Whether any queue or rule of ``config`` answers calls itself (else nothing here costs a request)."""
    settings = [q.self_service for q in config.queues.values()] + [r.self_service for r in config.rules]
    return any(s is not None and s.mode == "answer" and CHANNEL in s.channels for s in settings)


def offer(call: InboundMessage, base: str) -> str | None:
    """The TwiML that answers the caller's question from the knowledge base, or None: store and queue the call."""
    from chalicelib.routing.config import current_config
    from chalicelib.voice import speech

    if call.text == speech.NO_ANSWER or not configured(current_config()):
        return None
    from chalicelib import kb
    from chalicelib.voice import arrival

    decision = arrival.decide(call)
    chosen = decision.self_service if decision is not None else None
    if decision is None or chosen is None or chosen.mode != "answer":
        return None
    tag = decision.ask.language if decision.ask else DEFAULT_SPEECH_LANGUAGE
    primary = tag.split("-")[0].lower()
    language = primary if not chosen.languages or primary in chosen.languages else None
    hit = kb.answer(call.text, language=language, channel=CHANNEL, min_coverage=chosen.min_coverage)
    if hit is None or (chosen.languages and hit.language not in chosen.languages):
        return None
    if hit.language != primary:
        tag = _TAGS.get(hit.language, DEFAULT_SPEECH_LANGUAGE)
    words = hit.language if hit.language in _PROMPT else "en"
    short = spoken(hit)
    from chalicelib.store import voice_answers

    now = clock.now_iso()
    answer = {
        "call_sid": call.provider_message_id,
        "question": call.text,
        "article_id": hit.article_id,
        "title": hit.title,
        "language": hit.language,
        "say_language": tag,
        "said": f"{short}\n\n{_PROMPT[words]}",
        "answered_at": now,
        "metadata": dict(call.metadata),
        **({"name": call.name} if call.name else {}),
    }
    voice_answers.note_answer(answer, now)
    logger.info("self-service answered a call", extra={"article_id": hit.article_id})
    return answer_twiml(short, _PROMPT[words], tag, base)


def spoken(hit: Hit) -> str:
    """What the call hears of an article: its short answer, else its text without Markdown, cut."""
    text = (hit.short_answer or "").strip() or " ".join(_MARKUP.sub(" ", hit.body).split())
    return text if len(text) <= SPOKEN_CHARACTERS else text[: SPOKEN_CHARACTERS - 1].rsplit(" ", 1)[0] + "…"


def answer_twiml(short: str, prompt: str, language: str, base: str) -> str:
    """Say ``short``, then ask and listen for a word or a key; ``base``: the webhooks' URL the call came in on."""
    response = ET.Element("Response")
    ET.SubElement(response, "Say", {"language": language}).text = short
    gather = ET.SubElement(
        response,
        "Gather",
        {
            "input": "dtmf speech",
            "numDigits": "1",
            "action": base + PATH,
            "method": "POST",
            "timeout": str(LISTEN_SECONDS),
            "speechTimeout": "auto",
            "language": language,
            "actionOnEmptyResult": "true",
        },
    )
    ET.SubElement(gather, "Say", {"language": language}).text = prompt
    ET.SubElement(response, "Redirect", {"method": "POST"}).text = base + PATH
    return XML_DECLARATION + ET.tostring(response, encoding="unicode")


def thanks_twiml(record: dict[str, Any]) -> str:
    """Thank the caller whose question was solved, and hang up."""
    language = str(record.get("language", "en"))
    response = ET.Element("Response")
    say_language = str(record.get("say_language") or DEFAULT_SPEECH_LANGUAGE)
    ET.SubElement(response, "Say", {"language": say_language}).text = _THANKS.get(language, _THANKS["en"])
    ET.SubElement(response, "Hangup")
    return XML_DECLARATION + ET.tostring(response, encoding="unicode")


def said_solved(digits: str | None, speech_result: str | None) -> bool:
    """1, or a short "yes" that asks for nobody: solved. Anything else (2, "agent", "no", silence) hands over."""
    from chalicelib.selfservice import _BUT, _SOLVED, _YES, _normalised

    if digits:
        return digits.strip() == "1"
    said = _normalised(speech_result or "")
    words = said.split()
    if not words or any(word in _PERSON or word in _BUT for word in words):
        return False
    return said in _SOLVED or said in ("1", "one", "eins") or (words[0] in _YES and len(words) <= 6)


def reply_text(digits: str | None, speech_result: str | None) -> str:
    """The caller's reply as the timeline shows it."""
    if digits:
        return _PRESSED.get(digits.strip(), f"Pressed {digits.strip()}")
    return " ".join((speech_result or "").split()) or NO_REPLY


def decided(call_sid: str, digits: str | None, speech_result: str | None) -> dict[str, Any] | None:
    """The outcome of the bot's answer to this call (the first request's, for every repeat), or None: not
    answered by the bot."""
    from chalicelib.store import self_service as sessions
    from chalicelib.store import voice_answers

    outcome = sessions.SOLVED if said_solved(digits, speech_result) else sessions.HANDED_OVER
    return voice_answers.decide(call_sid, outcome, reply_text(digits, speech_result), clock.now_iso())


def _caller(record: dict[str, Any]) -> dict[str, Any]:
    from chalicelib.channels.twilio import PROVIDER, caller_identity

    metadata = dict(record.get("metadata") or {})
    call_sid = str(record["call_sid"])
    return {
        "channel": CHANNEL,
        "provider": PROVIDER,
        "identity": caller_identity(str(metadata.get("from") or ""), call_sid),
        "name": record.get("name"),
    }


def question_message(record: dict[str, Any]) -> InboundMessage:
    """The call, with what the caller asked as its text (the message a call answered by nobody would be)."""
    metadata = dict(record.get("metadata") or {})
    return InboundMessage(
        **_caller(record), provider_message_id=str(record["call_sid"]), text=str(record["question"]), metadata=metadata
    )


def reply_message(record: dict[str, Any]) -> InboundMessage:
    """The caller's reply to the answer: the message the router closes the conversation or hands it over from
    (``ConversationMessage.choice``: the outcome decided, so the router reads it as it was decided here)."""
    from chalicelib.selfservice import HAND_OVER_CHOICE, SOLVED_CHOICE
    from chalicelib.store import self_service as sessions

    choice = SOLVED_CHOICE if record.get("outcome") == sessions.SOLVED else HAND_OVER_CHOICE
    return InboundMessage(
        **_caller(record),
        provider_message_id=f"{record['call_sid']}.self-service",
        text=str(record.get("reply") or NO_REPLY),
        metadata={"call_sid": str(record["call_sid"]), "self_service_choice": choice},
    )


def store_exchange(record: dict[str, Any]) -> StoredMessage:
    """Store the call's question and the bot's answer (once: Twilio's retries find them), counted answered."""
    from chalicelib import metrics
    from chalicelib.selfservice import KIND
    from chalicelib.store import conversations, outbound
    from chalicelib.store import self_service as sessions

    now = clock.now_iso()
    question = question_message(record)
    stored = conversations.ingest(question, now)
    call_sid = str(record["call_sid"])
    answer_id = "out_" + hashlib.sha256(f"voice-answer#{call_sid}".encode()).hexdigest()[:32]
    at = clock.now_iso()  # after the question's moment (microseconds; the ingest took several requests)
    said = str(record["said"])
    message = outbound.new_message(
        stored.conversation_id, stored.customer_id, answer_id, CHANNEL, said, KIND, at, author="bot", identity=None
    )
    del message["pending_send"], message["pending_since"]  # said on the call already: nothing to send
    message |= {"status": "delivered", "status_rank": outbound.MESSAGE_STATUS_RANK["delivered"]}
    message |= {"article_id": str(record["article_id"])}
    article = str(record["article_id"])
    session = {
        "conversation_id": stored.conversation_id,
        "customer_id": stored.customer_id,
        "channel": CHANNEL,
        "state": sessions.WAITING,
        "message_id": question.message_id,
        "question": question.text,
        "article_id": article,
        "language": str(record.get("language", "")),
        "answered_at": at,
        "answer_id": answer_id,
    }
    if sessions.answered(session, message, once=True):
        metrics.self_service("answered", article, CHANNEL)
        sessions.count("answered", article, CHANNEL, now, title=str(record.get("title") or "") or None)
    return stored


def conclude(record: dict[str, Any], stored: StoredMessage) -> None:
    """The caller's reply after the exchange (``store_exchange``: ``stored``) in the call's own conversation, and the
    reply's routing event queued: the router closes the conversation solved or hands it over from it, as on any
    channel. Idempotent: a repeat stores nothing twice and queues the same event."""
    from chalicelib.routing.events import ConversationMessage
    from chalicelib.store import conversations, queue, voice_answers

    reply = reply_message(record)
    at = voice_answers.reply_at(str(record["call_sid"]), clock.now_iso())
    conversations.add_to_conversation(reply, stored.customer_id, stored.conversation_id, at)
    event = ConversationMessage(
        conversation_id=stored.conversation_id,
        customer_id=stored.customer_id,
        channel=CHANNEL,
        message_id=reply.message_id,
        received_at=at,
        text=reply.text,
        choice=str(reply.metadata["self_service_choice"]),
    )
    queue.publish(event)


def caller_left(call_sid: str) -> bool:
    """The caller hung up while the bot's answer played: unconfirmed (never abandoned), the question and the answer
    stored and the conversation closed ``self_service_unconfirmed``. False when the bot never answered this call
    or the caller had answered first (then it is solved, or a call in line)."""
    from chalicelib.routing.config import current_config
    from chalicelib.routing.events import SelfServiceCloseDue
    from chalicelib.selfservice import on_close_due
    from chalicelib.store import self_service as sessions
    from chalicelib.store import voice_answers

    if not configured(current_config()):
        return False
    record = voice_answers.decide(call_sid, sessions.UNCONFIRMED, None, clock.now_iso())
    if record is None or record.get("outcome") != sessions.UNCONFIRMED:
        return False
    stored = store_exchange(record)
    now = clock.now_iso()
    on_close_due(SelfServiceCloseDue(stored.conversation_id, question_message(record).message_id, now), now)
    logger.info("caller left during the self-service answer")
    return True
