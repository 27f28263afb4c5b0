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
from chalicelib.channels import auto_reply
from chalicelib.conversations import identity
from chalicelib.conversations.models import Attachment, EmailThread, Identity

# The stdlib header parser has raised all of these on malformed input; a header that cannot be read is absent.
MALFORMED = (ValueError, IndexError, TypeError, AttributeError, LookupError, email.errors.MessageError)
MAX_REFERENCES = 20  # nearest ids only: enough to find the thread, small enough for one stored item
MAX_ATTACHMENTS = 50
_MAX_PARTS = 500  # a crafted message can nest thousands of parts; we stop walking
# Levels of multipart and message/* nesting parsed as they are. The stdlib parser (and get_body, as_bytes)
# recurse once per level, so a mail nesting 1,000 deep raises RecursionError; real mail nests under 10.
MAX_DEPTH = 32
CUT_NOTE = f"the e-mail's MIME parts nest more than {MAX_DEPTH} deep; the parts below were flattened or left out"
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
    truncated: bool = False  # its structure nested deeper than MAX_DEPTH and was cut (see CUT_NOTE)
    automatic: str | None = None  # sent by a machine answering on its own: why (``auto_reply.reason``)


def parse(raw: bytes) -> ParsedEmail:
    """Parse raw MIME bytes; never raises on malformed mail (missing parts come back empty).

    A mail nesting deeper than ``MAX_DEPTH`` is parsed with its structure cut (``truncated``), keeping the
    headers and what text there is; should the stdlib still recurse too deep, only its headers are read.
    """
    nesting = limit_nesting(raw)
    try:
        return _parse(BytesParser(policy=policy.default).parsebytes(nesting.raw), truncated=nesting.cut)
    except RecursionError:  # a structure limit_nesting read otherwise than the stdlib does: headers only
        return _parse(BytesParser(policy=policy.default).parsebytes(raw, headersonly=True), truncated=True)


def _parse(message: EmailMessage, truncated: bool) -> ParsedEmail:
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
        truncated=truncated,
        automatic=auto_reply.reason(lambda name: _header(message, name)),
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


# --- nesting ------------------------------------------------------------------------


@dataclass(frozen=True)
class Nesting:
    """A raw e-mail with its MIME nesting limited: ``raw`` is the original bytes unless ``cut``."""

    raw: bytes
    cut: bool


@dataclass(frozen=True)
class _Level:
    """One open level of the structure: a multipart (its boundary) or an embedded message (no boundary)."""

    boundary: bytes | None
    written_as: bytes | None  # the boundary its delimiters are written with: another level's, when flattened
    digest: bool = False  # a multipart/digest, whose parts are messages unless they say otherwise

    @property
    def flattened(self) -> bool:
        return self.boundary != self.written_as


def _delimiter_candidates(line: bytes) -> tuple[bytes, bytes, tuple[tuple[bytes, bool], ...]]:
    """For a ``--boundary`` or ``--boundary--`` line: its line ending, and each (boundary, closing) it could be."""
    body = line.rstrip(b"\r\n")
    ending = line[len(body) :]
    if not body.startswith(b"--"):
        return body, ending, ()
    rest = body[2:].rstrip(b" \t")  # the stdlib allows blanks after the delimiter
    candidates = [(rest, False)]
    if rest.endswith(b"--"):
        candidates.append((rest[:-2], True))
    return body, ending, tuple(candidates)


# What the stdlib's feedparser takes for a header line; any other line ends the headers.
_HEADER_LINE = re.compile(rb"^(From |[\041-\071\073-\176]*:|[\t ])")
_LINE_ENDINGS = (b"\r\n", b"\n", b"\r")


def limit_nesting(raw: bytes, max_depth: int = MAX_DEPTH) -> Nesting:
    """``raw`` with multipart and message/* nesting cut at ``max_depth`` levels, read line by line (no recursion).

    Below the limit a multipart's parts are flattened into the deepest multipart kept (so their text
    survives) and embedded messages are left out. The lines are split, and a part's headers and
    boundaries read, as the stdlib's feedparser reads them; mail within the limit comes back untouched.
    """
    lowered = raw.lower()
    if 2 * (lowered.count(b"multipart") + lowered.count(b"message/")) < max_depth:
        # Each mention makes two levels at most (a digest's parts are messages without saying so): too few
        # to reach the limit, so the scan is skipped.
        return Nesting(raw, cut=False)
    return _Flattener(max_depth).run(raw)


class _Flattener:
    """The line-by-line walk behind ``limit_nesting``: parts' headers, bodies and boundaries, with a stack."""

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.out: list[bytes] = []
        self.stack: list[_Level] = []
        self.open: dict[bytes, list[int]] = {}  # boundary -> indices in the stack of multiparts using it
        self.kept = 0  # levels in the stack that are not flattened: the depth of the structure kept
        self.headers: list[bytes] = []
        self.in_headers = True  # reading a part's (or the message's) header block
        self.skipping = False  # inside something left out: lines are dropped until a known boundary
        self.pending: bytes | None = None  # a delimiter held until the part after it is known to be kept
        self.absorbing: int | None = None  # just after a delimiter of this level: its repeats are part of it
        self.cut = False

    @property
    def depth(self) -> int:
        return self.kept

    def _push(self, level: _Level) -> None:
        if level.boundary is not None:
            self.open.setdefault(level.boundary, []).append(len(self.stack))
        self.kept += not level.flattened
        self.stack.append(level)

    def _pop_above(self, index: int) -> None:
        while len(self.stack) > index + 1:
            level = self.stack.pop()
            self.kept -= not level.flattened
            if level.boundary is not None:
                self.open[level.boundary].pop()
                if not self.open[level.boundary]:
                    del self.open[level.boundary]

    def _matching_level(self, line: bytes) -> tuple[int, bool, bytes] | None:
        """The open multipart whose delimiter ``line`` is, as (index, closing, line ending).

        The outermost one when several match: the stdlib checks a part's enclosing boundaries first.
        """
        _, ending, candidates = _delimiter_candidates(line)
        found = [(self.open[b][0], closing) for b, closing in candidates if b in self.open]
        if not found:
            return None
        index, closing = min(found)
        return index, closing, ending

    def run(self, raw: bytes) -> Nesting:
        lines = raw.splitlines(keepends=True)
        i = 0
        while i < len(lines):
            if self._line(lines[i]):
                i += 1
        if self.in_headers:
            self._end_headers()
        self._flush_pending()
        return Nesting(b"".join(self.out), cut=True) if self.cut else Nesting(raw, cut=False)

    def _line(self, line: bytes) -> bool:
        """Take one line; False when it must be read again (it ended a header block without being part of it)."""
        found = self._matching_level(line) if self.open and line.startswith(b"--") else None
        absorbing, self.absorbing = self.absorbing, None
        if found is not None and absorbing is not None and found[0] >= absorbing:
            # The stdlib reads every delimiter line right after a delimiter as part of it, even a closing one.
            self.absorbing = absorbing
            return True
        if found is not None:
            self._delimiter(found[0], closing=found[1], ending=found[2], line=line)
            return True
        if self.in_headers:
            if _HEADER_LINE.match(line):
                self.headers.append(line)
                return True
            if line in _LINE_ENDINGS:  # the blank line that ends the headers belongs to them
                self.headers.append(line)
                self._end_headers()
                return True
            self._end_headers()  # a line that is no header starts the body
            return False
        if not self.skipping:
            self.out.append(line)
        return True

    def _delimiter(self, index: int, closing: bool, ending: bytes, line: bytes) -> None:
        if self.in_headers and (self.headers or self.pending is not None):
            self._end_headers()  # the part after a delimiter exists even when an outer boundary ends it at once
        self._pop_above(index)  # a boundary of an outer multipart ends every part inside it
        level = self.stack[index]
        if closing:
            self._pop_above(index - 1)
            self.in_headers, self.skipping = False, level.flattened  # a flattened multipart's epilogue goes
            # A delimiter still held here comes from a flattened multipart whose part was empty: dropped, since
            # the stdlib would read this closing line as its repeat and the parts after as more of its parts.
            self.pending = None
            if not level.flattened:
                self.out.append(line)
            return
        # The stdlib reads consecutive delimiters as one: a newer one replaces a held one.
        assert level.written_as is not None
        self.pending = line if not level.flattened else b"--" + level.written_as + (ending or b"\r\n")
        self.in_headers, self.skipping, self.headers, self.absorbing = True, False, [], index

    def _end_headers(self) -> None:
        block, self.headers, self.in_headers = self.headers, [], False
        if not block and self.pending is None and self.stack:
            return  # no part here at all (text after a boundary's line ending, say)
        # A digest's own parts default to message/rfc822; an embedded message's headers (top: a message level) do not.
        top = self.stack[-1] if self.stack else None
        content_type, boundary = _part_type(block, digest=top is not None and top.boundary is not None and top.digest)
        parent = next((level for level in reversed(self.stack) if level.boundary is not None), None)
        embeds_message = content_type.startswith("message/") and content_type != "message/delivery-status"
        # A bounce's status blocks are parsed as parts too, and a block may hold a message: three levels at most.
        needs = 2 if embeds_message else 3 if content_type == "message/delivery-status" else 1
        if needs > 1 and self.depth + needs > self.max_depth:
            self._leave_out()  # a forwarded mail (whose body can nest again) or a bounce too deep to read
            return
        if boundary is not None and self.depth + 1 > self.max_depth and parent is not None:
            # Too deep: its parts become parts of the deepest multipart kept.
            self._push(_Level(boundary, parent.written_as, digest=parent.digest))
            self.pending, self.skipping, self.cut = None, True, True  # its preamble goes too
            return
        self._flush_pending()
        self.out.extend(block)
        self.skipping = False
        if boundary is not None:
            self._push(_Level(boundary, boundary, digest=content_type == "multipart/digest"))
        elif embeds_message:
            self._push(_Level(None, None))
            self.in_headers = True  # the embedded message's own headers come next

    def _leave_out(self) -> None:
        self.pending, self.skipping, self.cut = None, True, True

    def _flush_pending(self) -> None:
        if self.pending is not None:
            self.out.append(self.pending)
            self.pending = None


# A Content-Type as mail clients write it: type/subtype and plain parameters. The stdlib's quick compat32
# parameter parsing reads these exactly as policy.default does; anything else goes the slow, exact way.
_TOKEN = r"[!#$%&'+\-.0-9A-Z^_`a-z|~]+"
_PLAIN_CONTENT_TYPE = re.compile(
    rf'[ \t]*{_TOKEN}/{_TOKEN}[ \t]*(;[ \t]*{_TOKEN}[ \t]*=[ \t]*({_TOKEN}|"[^"\\\r\n]*")[ \t]*)*;?[ \t]*'
)


def _part_type(block: list[bytes], digest: bool) -> tuple[str, bytes | None]:
    """A header block's content type and, for a multipart, its boundary, as the stdlib reads them.

    Only the first Content-Type header is read (unfolded as the stdlib unfolds it); parsing whole blocks
    with ``policy.default`` costs about a millisecond a part, too slow for thousands of parts.
    """
    value: str | None = None
    for line in block:
        text = line.decode("ascii", "surrogateescape")
        if value is not None:
            if text[:1] not in (" ", "\t"):
                break
            value += text.rstrip("\r\n")
        elif text[:13].lower() == "content-type:":
            value = text[13:].lstrip(" \t").rstrip("\r\n")
    part = Message() if value is None or _PLAIN_CONTENT_TYPE.fullmatch(value) else EmailMessage(policy.default)
    if digest:
        part.set_default_type("message/rfc822")
    if value is not None:
        try:
            part["Content-Type"] = value
        except MALFORMED:
            return "text/plain", None
    content_type = _content_type(part)
    if not content_type.startswith("multipart/"):
        return content_type, None
    try:
        boundary = part.get_boundary()
    except MALFORMED:
        return content_type, None
    return content_type, boundary.encode("ascii", "surrogateescape") if boundary else None
