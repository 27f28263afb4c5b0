"""What helps an agent answer the open conversation: the knowledge base's best articles for what the customer asked
(``suggestions``) and routing.yaml's canned responses rendered for it (``canned_responses``).

Both read only what the agent may read (``work.contact_seen_by``: the conversation offered or assigned to them; any,
for a supervisor), and neither writes anything: the agent inserts the text in the reply box, edits it, and sends it
as any reply.
"""

from __future__ import annotations

import re
from typing import Any

from chalicelib.agents import work
from chalicelib.agents.service import get_agent
from chalicelib.errors import NotFound
from chalicelib.routing.config import current_config
from chalicelib.routing.config.canned import PLACEHOLDER, CannedResponse
from chalicelib.store import conversations as conversation_store

# Channels where an article's short answer is what an agent sends (a text message, not a page).
SHORT_CHANNELS = frozenset({"sms", "whatsapp"})
SUGGESTIONS = 3
QUESTIONS_READ = 5  # the customer's latest messages asked about, latest first
EXCERPT_CHARACTERS = 160


def _customer_messages(customer_id: str, conversation_id: str) -> list[dict[str, Any]]:
    """The customer's messages in this conversation, latest first; not their mail system's automatic replies (an
    out-of-office reply asks nothing)."""
    messages = [
        m
        for m in conversation_store.timeline(customer_id)
        if m.get("conversation_id") == conversation_id
        and m.get("direction") == "inbound"
        and m.get("text")
        and not (m.get("metadata") or {}).get("auto_submitted")
    ]
    return list(reversed(messages))


def _language(messages: list[dict[str, Any]], profile: dict[str, Any]) -> str | None:
    for message in messages:
        if message.get("language"):
            return str(message["language"]).lower().replace("_", "-").split("-")[0]
    language = profile.get("language")
    return str(language).lower().split("-")[0] if language else None


def suggestions(agent_id: str, conversation_id: str, oversee: bool = False) -> dict[str, Any]:
    """The best articles for the customer's questions in this conversation, the latest question's first."""
    from chalicelib import kb

    contact = work.contact_seen_by(agent_id, conversation_id, oversee)
    profile = conversation_store.get_customer(contact.customer_id) or {}
    messages = _customer_messages(contact.customer_id, conversation_id)
    language = _language(messages, profile)
    found: dict[str, Any] = {}
    pick = _rule_pick(contact.channel, messages, profile, language)
    if pick is not None:
        found[pick.article_id] = {**_suggestion(pick, contact.channel), "suggested_by_rule": True}
    for message in messages[:QUESTIONS_READ]:
        for hit in kb.search(str(message["text"]), language=language, channel=contact.channel, limit=SUGGESTIONS):
            if hit.article_id not in found and len(found) < SUGGESTIONS:
                found[hit.article_id] = _suggestion(hit, contact.channel)
        if len(found) >= SUGGESTIONS:
            break
    return {
        "conversation_id": conversation_id,
        "channel": contact.channel,
        "language": language,
        "suggestions": list(found.values()),
    }


def _rule_pick(channel: str, messages: list[dict[str, Any]], profile: dict[str, Any], language: str | None) -> Any:
    """Where the rule that routed the conversation says ``self_service: {mode: suggest}``: the article the bot would
    have answered the first message with (``kb.answer`` at the rule's ``min_coverage``), shown first; else None."""
    if not messages:
        return None
    from chalicelib import clock, kb
    from chalicelib.routing.rules import ContactFacts, classify

    first = messages[-1]
    facts = ContactFacts.of(
        channel,
        str(first["text"]),
        first.get("subject"),
        first.get("language") or profile.get("language"),
        profile.get("tier"),
        profile.get("tags", ()),
    )
    chosen = classify(current_config(), facts, clock.parse_iso(str(first["received_at"]))).self_service
    if chosen is None or chosen.mode != "suggest" or not chosen.applies(channel, language):
        return None
    return kb.answer(str(first["text"]), language=language, channel=channel, min_coverage=chosen.min_coverage)


def _suggestion(hit: Any, channel: str) -> dict[str, Any]:
    short = channel in SHORT_CHANNELS and bool(hit.short_answer)
    return {
        "article_id": hit.article_id,
        "title": hit.title,
        "score": hit.score,
        "coverage": hit.coverage,
        "language": hit.language,
        "excerpt": excerpt(hit.short_answer or hit.body),
        "insert_text": hit.short_answer if short else hit.body.strip(),
        "insert_form": "short_answer" if short else "body",
    }


def excerpt(text: str, limit: int = EXCERPT_CHARACTERS) -> str:
    """The start of an article's text as plain words: Markdown marks dropped, cut at a word, with an ellipsis."""
    plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # [label](url) -> label
    plain = re.sub(r"[#*_`>|]+", " ", plain)
    plain = re.sub(r"^\s*[-+]\s+", " ", plain, flags=re.MULTILINE)
    plain = " ".join(plain.split())
    if len(plain) <= limit:
        return plain
    return plain[:limit].rsplit(" ", 1)[0].rstrip(",.;:") + "…"


def canned_responses(agent_id: str, conversation_id: str, oversee: bool = False) -> dict[str, Any]:
    """routing.yaml's canned responses that fit this conversation (language, queues), rendered for it."""
    contact = work.contact_seen_by(agent_id, conversation_id, oversee)
    profile = conversation_store.get_customer(contact.customer_id) or {}
    messages = _customer_messages(contact.customer_id, conversation_id)
    language = _language(messages, profile)
    canned = current_config().canned
    values = variables(
        profile=profile,
        agent_name=_agent_name(agent_id),
        conversation_id=conversation_id,
        channel=contact.channel,
        order_number=order_number(canned.order_number, [str(m["text"]) for m in messages]),
    )
    fitting = [r for r in canned.responses if r.fits(language, tuple(contact.queues))]
    return {
        "conversation_id": conversation_id,
        "language": language,
        "canned_responses": [_rendered(r, values) for r in fitting],
    }


def _agent_name(agent_id: str) -> str | None:
    try:
        return get_agent(agent_id).name or None
    except NotFound:
        return None


def variables(
    *,
    profile: dict[str, Any],
    agent_name: str | None,
    conversation_id: str,
    channel: str,
    order_number: str | None,
) -> dict[str, str | None]:
    """Each variable's value for a conversation (None: no value)."""
    name = (profile.get("name") or "").strip() or None
    return {
        "customer.name": name,
        "customer.first_name": name.split()[0] if name else None,
        "customer.email": profile.get("email") or None,
        "customer.phone": profile.get("phone") or None,
        "agent.name": agent_name,
        "conversation.id": conversation_id,
        "conversation.channel": channel,
        "order_number": order_number,
    }


def order_number(pattern: str, texts: list[str]) -> str | None:
    """The first order number ``pattern`` finds in ``texts`` (latest message first): its first group that matched,
    or the whole match."""
    compiled = re.compile(pattern)
    for text in texts:
        match = compiled.search(text)
        if match:
            return next((g for g in match.groups() if g), match.group(0))
    return None


def render(text: str, values: dict[str, str | None]) -> tuple[str, list[str]]:
    """``text`` with its variables filled in, and the variables that had no value (left out, the spacing tidied)."""
    missing: list[str] = []

    def fill(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        if value is None:
            if match.group(1) not in missing:
                missing.append(match.group(1))
            return ""
        return value

    rendered = PLACEHOLDER.sub(fill, text)
    if missing:
        rendered = re.sub(r"[ \t]{2,}", " ", rendered)
        rendered = re.sub(r"[ \t]+([,.!?;:])", r"\1", rendered)
        rendered = re.sub(r"([,;:])(?=[,.!?;:])", "", rendered)
        rendered = "\n".join(line.strip() for line in rendered.split("\n"))
    return rendered, missing


def _rendered(response: CannedResponse, values: dict[str, str | None]) -> dict[str, Any]:
    text, missing = render(response.text, values)
    return {
        "id": response.response_id,
        "title": response.title,
        "language": response.language,
        "text": text,
        "missing": missing,
    }
