"""The widget's side of the API: what a visitor's browser may do without holding ``WEBCHAT_SECRET``.

A browser cannot hold the web-chat secret, so ``POST /widget/messages`` takes
the visitor's message unsigned, keeps only the fields a visitor may set (no
``email``: a claimed e-mail would link the visitor to that customer's history; the pre-chat form's address comes
as ``contact_email`` and is kept, unverified, in the message's metadata, never as an identity)
and signs it here, so it goes through the very adapter and inbox the signed
webhook uses: same validation, same routing. The visitor's ``message_id`` is
scoped to the visitor before signing (``scoped_message_id``): the signed webhook
dedupes per site, and two visitors choosing the same id must neither drop the
second message nor answer it with the first visitor's conversation.

Reading back is keyed by the visitor id, which the widget makes random per
browser; it is the visitor's only credential, as a session cookie would be.
Abuse control (rate limits, bot filtering) belongs in front of the API:
API Gateway usage plans/throttling and AWS WAF rate-based rules in production.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from chalicelib import clock
from chalicelib.channels import webchat
from chalicelib.channels.base import WebhookRequest
from chalicelib.channels.fields import load_json
from chalicelib.channels.signing import sign_sha256
from chalicelib.conversations import inbox
from chalicelib.conversations.models import Identity
from chalicelib.errors import Conflict, InvalidPayload, NotFound, PayloadTooLarge
from chalicelib.notify.visitors import agent_names, visible
from chalicelib.settings import WEBCHAT_SECRET, get_secret, get_settings
from chalicelib.store import attachments, conversations, visitor_connections

VISITOR_FIELDS = frozenset({"site", "visitor_id", "message_id", "text", "name", "contact_email", "attachment"})
_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A read's cursor is a received_at the API gave out (ISO-8601); anything longer is not one.
_MAX_CURSOR = 64
_CONVERSATION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def scoped_message_id(visitor_id: str, message_id: str) -> str:
    """The id a widget message is signed with: unique per site *and visitor*, stable across the visitor's retries.

    A hash, so no visitor can choose ids that land on another visitor's (or the site backend's) ``message_id``.
    """
    digest = hashlib.sha256(f"{visitor_id}\n{message_id}".encode()).hexdigest()
    return f"w.{digest[:40]}"


def post_message(raw_body: bytes) -> dict[str, Any]:
    """Take one visitor message; answers ``{"conversation_id", "message_id", "message"}`` (the last as shown)."""
    if len(raw_body) > get_settings().max_body_bytes:
        # Checked before parsing; the adapter checks the re-signed body again.
        raise PayloadTooLarge(f"body is {len(raw_body)} bytes; the limit is {get_settings().max_body_bytes}")
    document = load_json(raw_body or b"null")  # absurd nesting is InvalidJson (400), not a RecursionError
    if not isinstance(document, dict):
        raise InvalidPayload("send a JSON object")
    unknown = sorted(set(document) - VISITOR_FIELDS)
    if unknown:
        raise InvalidPayload(
            f"the widget may send only {', '.join(sorted(VISITOR_FIELDS))}",
            [{"field": name, "problem": "not allowed from the widget"} for name in unknown],
        )
    # Every widget field but the attachment is a string: refused here by name, before anything nested is signed.
    bad = [
        {"field": k, "problem": "must be a string"}
        for k in sorted(document)
        if k != "attachment" and not isinstance(document[k], str)
    ]
    # Checked here because the adapter only ever sees the scoped id, which is always well-formed.
    bad += [
        {"field": name, "problem": "required: 1-128 of A-Z a-z 0-9 . _ : @ -"}
        for name in ("visitor_id", "message_id")
        if isinstance(document.get(name, ""), str) and not _ID.match(document.get(name, ""))
    ]
    if bad:
        raise InvalidPayload("send the widget's fields as strings", bad)
    visitor_id, message_id = document["visitor_id"], document["message_id"]
    signed_fields = {k: v for k, v in document.items() if k not in ("attachment", "contact_email")}
    if "contact_email" in document:
        # The pre-chat form's address, unproven: kept with the message for the agent, never an identity link (that
        # would show whoever typed it another customer's history and name in the agent's console).
        address = document["contact_email"]
        if not _EMAIL.match(address) or len(address) > 254:
            bad_address = [{"field": "contact_email", "problem": "not an e-mail address"}]
            raise InvalidPayload("contact_email is not an e-mail address", bad_address)
        signed_fields["metadata"] = {"contact_email": address, "email_verified": False, "source": "pre_chat_form"}
    if "attachment" in document:
        signed_fields["attachments"] = [_attachment(document["site"], visitor_id, document["attachment"])]
    body = json.dumps({**signed_fields, "message_id": scoped_message_id(visitor_id, message_id)}).encode()
    headers = {
        "Content-Type": "application/json",
        webchat.SIGNATURE_HEADER: sign_sha256(get_secret(WEBCHAT_SECRET), body),
    }
    path = webchat.ADAPTER.path
    request = WebhookRequest("POST", path, headers, {}, body, get_settings().public_base_url + path)
    reply = inbox.deliver(webchat.ADAPTER, request)
    answer = reply.body if isinstance(reply.body, dict) else {}
    if answer.get("status") == "duplicate" and not _is_visitors(document.get("site", ""), visitor_id, answer):
        # Only the same visitor's retry can repeat a scoped id; anything else must not learn whose message it is.
        raise Conflict("this message_id is already taken: send the message with a new message_id")
    # The message as the widget's read would show it, so the widget shows it without reading it back.
    shown = {"message_id": answer.get("message_id"), "from": "visitor", "text": document["text"]}
    if "attachments" in signed_fields:
        shown = attachments.signed({**shown, "attachments": signed_fields["attachments"]})
    return {"conversation_id": answer.get("conversation_id"), "message_id": message_id, "message": shown}


def _attachment(site: str, visitor_id: str, given: Any) -> dict[str, Any]:
    """The file a message carries: one this visitor uploaded (``POST /widget/attachments``), as S3 holds it."""
    if not isinstance(given, dict) or set(given) - {"key", "filename"} or not isinstance(given.get("key"), str):
        raise InvalidPayload(
            'send the attachment as {"key": ..., "filename": ...}, the key POST /widget/attachments gave',
            [{"field": "attachment", "problem": "an object with key (and filename)"}],
        )
    key, filename = given["key"], given.get("filename")
    if not _ID.match(site) or not key.startswith(attachments.visitor_prefix(site, visitor_id)) or ".." in key:
        raise InvalidPayload("that attachment is not yours", [{"field": "attachment.key", "problem": "not yours"}])
    if filename is not None and (not isinstance(filename, str) or not 1 <= len(filename) <= 200):
        raise InvalidPayload("bad file name", [{"field": "attachment.filename", "problem": "1-200 characters"}])
    found = attachments.uploaded(key)
    if found is None:
        raise InvalidPayload("upload the file first", [{"field": "attachment.key", "problem": "nothing uploaded"}])
    size, content_type = found
    return {"url": attachments.url_of(key), "content_type": content_type, "size": size, "filename": filename}


def _is_visitors(site: str, visitor_id: str, answer: Mapping[str, Any]) -> bool:
    """Whether a duplicate's stored customer is this visitor's (or merged into it)."""
    visitor = Identity(webchat.CHANNEL, f"{site}/{visitor_id}")
    customer_id = conversations.customers_of([visitor]).get(visitor.key)
    return customer_id is not None and _owns(customer_id, str(answer.get("customer_id")))


def messages(conversation_id: str, query: Mapping[str, str]) -> dict[str, Any]:
    """The visitor's conversation as the visitor sees it: their messages and the answers, from ``after`` on.

    What the widget reads once whenever its WebSocket (re)opens, so it reads only what was received at or
    after the cursor (a key condition on the timeline's sort key), never the customer's whole history; read
    consistently, so a message recorded just before the socket was registered (its push found no connection)
    is in the answer.
    """
    after = query.get("after", "")
    bad = [] if len(after) <= _MAX_CURSOR else [{"field": "after", "problem": "a received_at from an earlier answer"}]
    conversation, partitions, visitor_key = _visitors_conversation(conversation_id, query, bad)
    found = [
        m
        for m in conversations.messages_since(partitions, after, consistent=True)
        if m.get("conversation_id") == conversation_id and _for_the_visitor(m, visitor_key)
    ]
    names = agent_names(found)  # one read per agent who answered, not per answer
    shown = [visible(m, names) for m in found]
    return {"conversation_id": conversation_id, "status": conversation.get("status"), "messages": shown}


def connect(connection_id: str, query: Mapping[str, str]) -> None:
    """A widget's WebSocket ``$connect``: ``?site=&visitor_id=&conversation_id=``, the credentials of the read.

    Only the conversation's own visitor may listen to it (anyone else's attempt is refused exactly as a
    missing conversation is); the connection is then registered for the pushes of ``notify.visitors``.
    """
    conversation_id = query.get("conversation_id", "")
    bad = []
    if not _CONVERSATION.match(conversation_id):
        bad.append({"field": "conversation_id", "problem": "required: the conversation_id the widget was given"})
    _visitors_conversation(conversation_id, query, bad, partitions=False)
    visitor_connections.add(conversation_id, connection_id, clock.now_iso())


def prove_visitor(conversation_id: str, query: Mapping[str, str]) -> None:
    """``NotFound`` unless ``query`` (site, visitor_id) is the conversation's own visitor (as at ``$connect``)."""
    bad = [] if _CONVERSATION.match(conversation_id) else [{"field": "conversation_id", "problem": "malformed"}]
    _visitors_conversation(conversation_id, query, bad, partitions=False)


def is_visitor(query: Mapping[str, str]) -> bool:
    """Whether a WebSocket ``$connect`` is a widget's (it names a visitor) rather than an agent's (a token)."""
    return "visitor_id" in query and "token" not in query


def _visitors_conversation(
    conversation_id: str, query: Mapping[str, str], bad: list[dict[str, str]], *, partitions: bool = True
) -> tuple[dict[str, Any], list[str], str]:
    """The conversation, the customer partitions its visitor's timeline is in and the visitor's identity key.

    ``InvalidPayload`` for malformed credentials (with ``bad``, problems found by the caller); ``NotFound`` for a
    conversation that is not this visitor's: the answer never tells whether an id exists. The visitor's identity
    and the conversation are one read; the profile (merged customers) a second, which a caller that only needs
    the proof (``partitions=False``: the WebSocket's $connect) skips when the conversation is the visitor's own
    customer's; a read of the timeline always takes it, since merged customers' partitions hold messages too.
    """
    site, visitor_id = query.get("site", ""), query.get("visitor_id", "")
    bad = [
        *(
            {"field": name, "problem": "required: 1-128 of A-Z a-z 0-9 . _ : @ -"}
            for name, value in (("site", site), ("visitor_id", visitor_id))
            if not _ID.match(value)
        ),
        *bad,
    ]
    if bad:
        raise InvalidPayload("send ?site=...&visitor_id=...", bad)
    visitor = Identity(webchat.CHANNEL, f"{site}/{visitor_id}")
    customer_id, conversation = conversations.owner_and_conversation(visitor, conversation_id)
    missing = NotFound(f"no conversation {conversation_id} for this visitor")
    if customer_id is None or conversation is None:
        raise missing
    if not partitions and str(conversation["customer_id"]) == customer_id:
        return conversation, [customer_id], visitor.key
    profile = conversations.get_customer(customer_id) or {}
    found = [customer_id, *sorted(profile.get("merged_from", ()))]
    if str(conversation["customer_id"]) not in found:
        raise missing
    return conversation, found, visitor.key


def _owns(customer_id: str, conversation_customer: str) -> bool:
    if customer_id == conversation_customer:
        return True
    profile = conversations.get_customer(customer_id) or {}
    return conversation_customer in set(profile.get("merged_from", ()))


def _for_the_visitor(message: Mapping[str, Any], visitor_key: str) -> bool:
    """What this visitor wrote here, and what was sent to them on web chat; never internal notes."""
    if message.get("direction") == "inbound":
        return message.get("identity") == visitor_key
    return message.get("direction") == "outbound" and message.get("channel") == webchat.CHANNEL
