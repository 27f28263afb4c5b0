"""E-mail as the e-mail channels need it: the customer's new words, who wrote them, and which thread they answer.

Shared by the SES adapter (raw MIME inside an SNS notification) and the
Mailgun adapter (already parsed fields; it uses the quote stripper, the
address and threading helpers). Parsing is the standard library's
``email`` package with ``policy.default``; nothing here touches a network
or AWS.

What "the new words" means: the plain-text body (or, for HTML-only mail,
the HTML crudely turned into text) with the quoted conversation removed:
``>`` lines, everything from a Gmail-style "On <date>, <someone> wrote:"
line, an Outlook "-----Original Message-----" or "From: ... Sent: ..."
block, and a signature after the RFC 3676 "-- " delimiter. If nothing is
left (a message that is all quote, such as a bare forward) the whole text
is kept rather than storing an empty message.
"""

from __future__ import annotations

import email.errors
import re
from dataclasses import dataclass
from datetime import UTC
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import parseaddr, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any

from chalicelib import clock
from chalicelib.conversations import identity
from chalicelib.conversations.models import Attachment, EmailThread, Identity

# The stdlib header parser has raised all of these on malformed input; a header that cannot be read is absent.
MALFORMED = (ValueError, IndexError, TypeError, AttributeError, LookupError, email.errors.MessageError)
MAX_REFERENCES = 20  # nearest ids only: enough to find the thread, small enough for one stored item
MAX_ATTACHMENTS = 50
_MAX_PARTS = 500  # a crafted message can nest thousands of parts; we stop walking
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True)
class ParsedEmail:
    """What one raw e-mail says, reduced to what a conversation needs."""

    sender: Identity | None  # from the From header; None when it has no usable address
    name: str | None  # the From header's display name
    subject: str | None
    text: str  # the new words: quoted reply and signature removed
    thread: EmailThread
    attachments: tuple[Attachment, ...]
    sent_at: str | None  # the Date header, as Switchboard's UTC ISO-8601


def parse(raw: bytes) -> ParsedEmail:
    """Parse raw MIME bytes; never raises on malformed mail (missing parts come back empty)."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    sender, name = address(_header(message, "From") or "")
    plain = _body_part(message, "plain")
    html = _body_part(message, "html")
    if plain is not None:
        text = _text_of(plain)
    elif html is not None:
        text = html_to_text(_text_of(html))
    else:
        text = ""
    return ParsedEmail(
        sender=sender,
        name=name,
        subject=_one_line(_header(message, "Subject")),
        text=strip_quoted(text),
        thread=thread(_header(message, "Message-ID"), _header(message, "In-Reply-To"), _header(message, "References")),
        attachments=_attachments(message, skip=(plain, html)),
        sent_at=sent_at(_header(message, "Date")),
    )


# --- addresses and threading -------------------------------------------------------


def address(value: str) -> tuple[Identity | None, str | None]:
    """The e-mail identity and display name in a From-style header (``Ada <ada@example.com>``)."""
    name, addr = parseaddr(value.replace("\r", " ").replace("\n", " "))
    try:
        who = identity.email(addr) if addr else None
    except identity.InvalidIdentity:
        who = None
    return who, (_one_line(name) or None)


def normalise_message_id(value: str | None) -> str | None:
    """A Message-ID in its ``<id@host>`` form (the first one, if a header carries several)."""
    if not value:
        return None
    found = _MESSAGE_ID.search(value)
    if found:
        return found.group(0)
    bare = value.strip().strip("<>").strip()
    return f"<{bare}>" if bare and not any(c.isspace() or c in "<>" for c in bare) else None


def thread(message_id: str | None, in_reply_to: str | None, references: str | None) -> EmailThread:
    """RFC 5322 threading headers as an ``EmailThread``; References keeps the nearest ``MAX_REFERENCES``."""
    ids = tuple(_MESSAGE_ID.findall(references or ""))
    return EmailThread(
        message_id=normalise_message_id(message_id),
        in_reply_to=normalise_message_id(in_reply_to),
        references=ids[-MAX_REFERENCES:],
    )


def message_id_key(message_id: str | None) -> tuple[str, ...]:
    """The dedupe key that makes one e-mail one message whichever provider delivered it (empty without an id)."""
    return (f"email-message-id#{message_id}",) if message_id else ()


def sent_at(date_header: str | None) -> str | None:
    """A Date header as Switchboard's UTC ISO-8601 time (a zone-less date is taken as UTC)."""
    if not date_header:
        return None
    try:
        moment = parsedate_to_datetime(date_header)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return clock.to_iso(moment)
    except (ValueError, OverflowError):  # a year the UTC conversion cannot hold
        return None


# --- the new words ------------------------------------------------------------------

_ATTRIBUTION_START = re.compile(r"^\s*(On|Le|Am|El)\s")
_ATTRIBUTION_VERB = re.compile(r"\b(wrote|a\s+écrit|schrieb|escribió)\b", re.IGNORECASE)
_MAX_ATTRIBUTION = 400  # characters: a real one is short, and a long line is not worth searching
_ORIGINAL_MESSAGE = re.compile(r"^\s*-{2,}\s*Original Message\s*-{2,}\s*$", re.IGNORECASE)
_OUTLOOK_FROM = re.compile(r"^\s*\*?(From|Von|De)\s*:\*?\s+\S", re.IGNORECASE)
_OUTLOOK_SENT = re.compile(r"^\s*\*?(Sent|Date|Gesendet|Envoyé|Enviado)\s*:\*?\s+\S", re.IGNORECASE)
_SEPARATOR = re.compile(r"^\s*[_-]{5,}\s*$")


def strip_quoted(text: str) -> str:
    """The text without quoted lines, the quoted conversation below a reply header, or a signature."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut = next((i for i in range(len(lines)) if _quote_starts(lines, i)), len(lines))
    kept = [line.rstrip() for line in lines[:cut] if not line.lstrip().startswith(">")]
    while kept and (not kept[-1].strip() or _SEPARATOR.match(kept[-1])):
        kept.pop()  # Outlook's "______" rule above its header block, and trailing blank lines
    stripped = _tidy("\n".join(kept))
    return stripped or _tidy(text.replace("\r\n", "\n").replace("\r", "\n"))


def _quote_starts(lines: list[str], i: int) -> bool:
    line = lines[i]
    if line in ("-- ", "--"):  # RFC 3676 signature delimiter (many clients trim its trailing space)
        return True
    if _ORIGINAL_MESSAGE.match(line):
        return True
    if _ATTRIBUTION_START.match(line):
        # Gmail wraps a long "On <date>, <name> <address> wrote:" over two or three lines.
        for end in range(i, min(i + 3, len(lines))):
            joined = " ".join(part.strip() for part in lines[i : end + 1])
            if len(joined) > _MAX_ATTRIBUTION:
                break
            if joined.endswith(":") and _ATTRIBUTION_VERB.search(joined) and any(c.isdigit() for c in joined):
                return True
    if _OUTLOOK_FROM.match(line):
        return any(_OUTLOOK_SENT.match(following) for following in lines[i + 1 : i + 5])
    return False


def _tidy(text: str) -> str:
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


class _TextOfHtml(HTMLParser):
    """Text of an HTML body, a line per block element; ``<blockquote>`` lines come out as ``> `` quotes."""

    _BLOCKS = frozenset(
        {"address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "footer", "form", "h1", "h2"}
        | {"h3", "h4", "h5", "h6", "header", "hr", "li", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul"}
    )
    _HIDDEN = frozenset({"script", "style", "head", "title", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._line: list[str] = []
        self._quoted_line = False
        self._hidden = 0
        self._quote = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        if tag in self._BLOCKS:
            self._break()
        if tag == "blockquote":
            self._quote += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        if tag == "blockquote":
            self._quote = max(0, self._quote - 1)
        if tag in self._BLOCKS:
            self._break()

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        words = " ".join(data.split())
        if words:
            self._line.append(words)
            self._quoted_line = self._quoted_line or self._quote > 0

    def _break(self) -> None:
        text = " ".join(self._line).strip()
        self.lines.append(("> " + text) if text and self._quoted_line else text)
        self._line = []
        self._quoted_line = False

    def text(self) -> str:
        self._break()
        return _tidy("\n".join(self.lines))


def html_to_text(html: str) -> str:
    """HTML turned into plain text, crudely: tags dropped, blocks on their own lines, quotes marked ``> ``."""
    parser = _TextOfHtml()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # html.parser's own complaints about badly broken markup
        pass
    return parser.text()


# --- MIME parts ---------------------------------------------------------------------


def _header(message: Message, name: str) -> str | None:
    try:
        value = message.get(name)
        return None if value is None else str(value)
    except MALFORMED:
        return None


def _one_line(value: str | None) -> str | None:
    if value is None:
        return None
    return " ".join(value.split()) or None


def _body_part(message: EmailMessage, subtype: str) -> EmailMessage | None:
    try:
        part = message.get_body(preferencelist=(subtype,))
    except MALFORMED:
        return None
    return part if isinstance(part, EmailMessage) else None


def _text_of(part: EmailMessage) -> str:
    try:
        content = part.get_content()
        if isinstance(content, str):
            return content
    except MALFORMED:
        pass
    payload = _payload_bytes(part)
    charset = _charset(part)
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        return payload.decode("utf-8", errors="replace")


def _charset(part: Message) -> str:
    try:
        return str(part.get_content_charset() or "utf-8")
    except MALFORMED:
        return "utf-8"


def _payload_bytes(part: Message) -> bytes:
    try:
        payload: Any = part.get_payload(decode=True)
    except MALFORMED:
        return b""
    return payload if isinstance(payload, bytes) else b""


def _attachments(message: EmailMessage, skip: tuple[EmailMessage | None, ...]) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    stack: list[Message] = [message]
    visited = 0
    while stack and visited < _MAX_PARTS and len(found) < MAX_ATTACHMENTS:
        part = stack.pop()
        visited += 1
        if any(part is body for body in skip if body is not None):
            continue
        content_type = _content_type(part)
        if content_type == "message/rfc822":  # a forwarded e-mail is one attachment, not parts of ours
            found.append(Attachment(content_type, size=_size_of_message(part), filename=_filename(part)))
            continue
        if part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend(reversed([c for c in children if isinstance(c, Message)]))
            continue
        filename = _filename(part)
        if content_type in ("text/plain", "text/html") and filename is None and not _is_attachment(part):
            continue  # the other alternative of the body, not a file
        found.append(Attachment(content_type, size=len(_payload_bytes(part)), filename=filename))
    return tuple(found)


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except MALFORMED:
        return "application/octet-stream"


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except MALFORMED:
        return None
    return _one_line(str(name)) if name else None


def _is_attachment(part: Message) -> bool:
    try:
        return part.get_content_disposition() == "attachment"
    except MALFORMED:
        return False


def _size_of_message(part: Message) -> int | None:
    try:
        inner = part.get_payload(0)
        return len(inner.as_bytes()) if isinstance(inner, Message) else None
    except (*MALFORMED, KeyError):
        return None
