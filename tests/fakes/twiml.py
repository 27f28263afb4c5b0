"""A checker for every TwiML document the app returns: Twilio's documented verbs, attributes and nesting.

Hand-written from Twilio's TwiML pages (https://www.twilio.com/docs/voice/twiml and the verb pages:
``conference``, ``enqueue``, ``gather``, ``record``, ``say``, ``play``, ``pause``, ``redirect``, ``hangup``,
``leave``, ``reject``, ``dial``, ``queue``) and cross-checked against the attribute names of the ``twilio``
package's ``voice_response.py``. Context rules:

- a conference ``waitUrl``, ``holdUrl`` or ``announceUrl`` document holds only Play, Say, Pause and Redirect
  (Twilio error 13238);
- an ``<Enqueue waitUrl>`` document may also hold Gather, Leave and Hangup;
- every URL attribute (and ``<Redirect>``'s text) is absolute, http(s), and under ``base`` when given;
- enumerated values are in their documented sets; ``participantLabel`` is at most 128 characters, a queue
  name at most 64, a conference name carries no phone number;
- ``<Record transcribe="true">`` names its ``transcribeCallback`` and records at most 120 s (Twilio transcribes
  recordings of up to two minutes only); ``<Gather input="speech">`` has ``speechTimeout`` ``auto`` or seconds and
  a ``language`` tag (``en-US``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

_HEX_ID = re.compile(r"^[a-z]+_[0-9a-f]+$")  # our ids (conv_4a73...): hex, not a number someone dials
CALL = "call"  # a voice webhook's answer: any verb
ENQUEUE_WAIT = "enqueue_wait"  # an <Enqueue waitUrl> document
CONFERENCE_WAIT = "conference_wait"  # a conference waitUrl / holdUrl / announceUrl document
CALLBACK = "callback"  # a status callback's answer: Twilio reads nothing, an empty <Response/> is expected

_STATUS_EVENTS = {"initiated", "ringing", "answered", "completed"}
_CONFERENCE_EVENTS = {"start", "end", "join", "leave", "mute", "hold", "modify", "speaker", "announcement"}
_BOOL = {"true", "false"}
_METHOD = {"GET", "POST"}

# verb -> attribute -> allowed values (None: free text, "url": an absolute URL, "int": a whole number)
ATTRIBUTES: dict[str, dict[str, object]] = {
    "Response": {},
    "Say": {"voice": None, "loop": "int", "language": None},
    "Play": {"loop": "int", "digits": None},
    "Pause": {"length": "int"},
    "Redirect": {"method": _METHOD},
    "Hangup": {},
    "Leave": {},
    "Reject": {"reason": {"rejected", "busy"}},
    "Enqueue": {
        "action": "url",
        "method": _METHOD,
        "waitUrl": "url",
        "waitUrlMethod": _METHOD,
        "workflowSid": None,
        "maxQueueSize": "int",
    },
    "Gather": {
        "input": {"dtmf", "speech", "dtmf speech", "speech dtmf"},
        "action": "url",
        "method": _METHOD,
        "timeout": "int",
        "speechTimeout": None,
        "maxSpeechTime": "int",
        "profanityFilter": _BOOL,
        "finishOnKey": None,
        "numDigits": "int",
        "partialResultCallback": "url",
        "partialResultCallbackMethod": _METHOD,
        "language": None,
        "hints": None,
        "bargeIn": _BOOL,
        "actionOnEmptyResult": _BOOL,
        "speechModel": None,
        "enhanced": _BOOL,
    },
    "Record": {
        "action": "url",
        "method": _METHOD,
        "timeout": "int",
        "finishOnKey": None,
        "maxLength": "int",
        "playBeep": _BOOL,
        "trim": {"trim-silence", "do-not-trim"},
        "recordingStatusCallback": "url",
        "recordingStatusCallbackMethod": _METHOD,
        "recordingStatusCallbackEvent": None,
        "transcribe": _BOOL,
        "transcribeCallback": "url",
    },
    "Dial": {
        "action": "url",
        "method": _METHOD,
        "timeout": "int",
        "hangupOnStar": _BOOL,
        "timeLimit": "int",
        "callerId": None,
        "record": None,
        "answerOnBridge": _BOOL,
        "ringTone": None,
    },
    "Conference": {
        "muted": _BOOL,
        "beep": {"true", "false", "onEnter", "onExit"},
        "startConferenceOnEnter": _BOOL,
        "endConferenceOnExit": _BOOL,
        "participantLabel": None,
        "waitUrl": "url-or-empty",
        "waitMethod": _METHOD,
        "maxParticipants": "int",
        "record": {"do-not-record", "record-from-start"},
        "statusCallback": "url",
        "statusCallbackMethod": _METHOD,
        "statusCallbackEvent": "conference-events",
        "coach": None,
        "trim": {"trim-silence", "do-not-trim"},
        "region": None,
    },
    "Queue": {"url": "url", "method": _METHOD},
}
# Where each verb may appear: parent -> allowed children.
CHILDREN: dict[str, set[str]] = {
    "Response": {
        "Say",
        "Play",
        "Pause",
        "Redirect",
        "Hangup",
        "Leave",
        "Reject",
        "Enqueue",
        "Gather",
        "Record",
        "Dial",
    },
    "Gather": {"Say", "Play", "Pause"},
    "Dial": {"Conference", "Queue", "Number", "Client", "Sip"},
}
_TEXT_VERBS = {"Say", "Play", "Redirect", "Enqueue", "Conference", "Queue"}
_TOP_LEVEL = {
    CALL: CHILDREN["Response"],
    ENQUEUE_WAIT: {"Say", "Play", "Pause", "Redirect", "Gather", "Leave", "Hangup"},
    CONFERENCE_WAIT: {"Say", "Play", "Pause", "Redirect"},
    CALLBACK: set(),
}
_PHONE = re.compile(r"(^|\D)\+?\d{7,15}($|\D)")  # a run of 7..15 digits on its own


def check(document: str | bytes, context: str = CALL, base: str | None = None) -> ET.Element:
    """Parse and check one TwiML document; AssertionError listing every problem. Returns the root."""
    root = ET.fromstring(document)
    problems: list[str] = []
    if root.tag != "Response":
        problems.append(f"the root is <{root.tag}>, not <Response>")
    for child in root:
        if child.tag not in _TOP_LEVEL[context]:
            problems.append(f"<{child.tag}> is not allowed in a {context} document")
    _walk(root, problems, base)
    assert not problems, "TwiML refused:\n- " + "\n- ".join(problems) + "\n" + ET.tostring(root, encoding="unicode")
    return root


def _walk(element: ET.Element, problems: list[str], base: str | None) -> None:
    allowed = ATTRIBUTES.get(element.tag)
    if allowed is None:
        problems.append(f"<{element.tag}> is not a TwiML verb or noun this app may use")
        return
    for name, value in element.attrib.items():
        if name not in allowed:
            problems.append(f"<{element.tag}> has no attribute {name!r}")
            continue
        _value(element.tag, name, value, allowed[name], problems, base)
    for child in element:
        if element.tag == "Response":
            continue  # checked by context
        if child.tag not in CHILDREN.get(element.tag, set()):
            problems.append(f"<{child.tag}> may not be nested in <{element.tag}>")
    text = (element.text or "").strip()
    if element.tag in _TEXT_VERBS and not text:
        problems.append(f"<{element.tag}> needs text")
    if element.tag == "Redirect" and text:
        _url(element.tag, "text", text, problems, base)
    if element.tag == "Enqueue" and len(text) > 64:
        problems.append(f"queue name {text!r} is over 64 characters")
    if element.tag == "Conference":
        if len(text) > 128 or (_PHONE.search(text.replace("_", " ").replace("-", " ")) and not _HEX_ID.match(text)):
            problems.append(f"conference name {text!r} is too long or holds a phone number")
        if len(element.attrib.get("participantLabel", "")) > 128:
            problems.append("participantLabel is over 128 characters")
    if element.tag in ("Record", "Gather"):
        _listening(element, problems)
    for child in element:
        _walk(child, problems, base)


_SPEECH_LANGUAGE = re.compile(r"^[a-z]{2,3}-[A-Za-z0-9]{2,8}$")


def _listening(element: ET.Element, problems: list[str]) -> None:
    """What Twilio's Record and Gather pages ask of the attributes together."""
    attributes = element.attrib
    if element.tag == "Record":
        max_length = attributes.get("maxLength", "3600")
        if max_length.isdigit() and int(max_length) < 1:
            problems.append("<Record maxLength> must be at least 1")
        if attributes.get("transcribe") == "true":
            if not attributes.get("transcribeCallback"):
                problems.append("<Record transcribe> without transcribeCallback: the transcript would reach nobody")
            if not max_length.isdigit() or int(max_length) > 120:
                problems.append("<Record transcribe> needs maxLength <= 120: Twilio transcribes two minutes at most")
        return
    if "speech" in attributes.get("input", "dtmf"):
        timeout = attributes.get("speechTimeout")
        if timeout is not None and timeout != "auto" and not timeout.isdigit():
            problems.append(f"<Gather speechTimeout={timeout!r}> is not auto or a number of seconds")
        language = attributes.get("language")
        if language is not None and not _SPEECH_LANGUAGE.match(language):
            problems.append(f"<Gather language={language!r}> is not a language tag such as en-US")


def _value(verb: str, name: str, value: str, rule: object, problems: list[str], base: str | None) -> None:
    if rule is None:
        return
    if rule == "int":
        if not value.isdigit():
            problems.append(f"<{verb} {name}={value!r}> is not a whole number")
    elif rule == "url":
        _url(verb, name, value, problems, base)
    elif rule == "url-or-empty":
        if value:
            _url(verb, name, value, problems, base)
    elif rule == "conference-events":
        unknown = set(value.split()) - _CONFERENCE_EVENTS
        if unknown or not value.strip():
            problems.append(f"<{verb} {name}={value!r}>: unknown events {sorted(unknown)}")
    elif isinstance(rule, set) and value not in rule:
        problems.append(f"<{verb} {name}={value!r}> is not one of {sorted(rule)}")


def _url(verb: str, name: str, value: str, problems: list[str], base: str | None) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        problems.append(f"<{verb} {name}={value!r}> is not an absolute URL")
    elif base is not None and not value.startswith(base):
        problems.append(f"<{verb} {name}={value!r}> is not under the app's webhooks {base!r}")


STATUS_EVENTS = _STATUS_EVENTS
CONFERENCE_EVENTS = _CONFERENCE_EVENTS
