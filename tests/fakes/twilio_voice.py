"""Twilio's voice REST API on loopback, and Twilio's side of a call: signed callbacks to the app.

Mounted on ``FakeProviders``' server (``tests/fakes/providers.py``): requests under
``/2010-04-01/Accounts/{AccountSid}/`` for ``Calls``, ``Conferences``, ``Participants`` and ``Queues/.../Members``
come here. Each is checked the way Twilio checks it:

- HTTP Basic auth: the account SID with its auth token, or an API key SID (``SK...``) with its secret; the path
  names the ``AC...`` account in both cases. A wrong pair answers 401 (20003); a path that is not the account
  (an ``SK...`` sid) answers 404 (20404).
- A form body; ``To``/``From`` in E.164 (or ``client:``/``sip:``); exactly one of ``Url``, ``Twiml`` and
  ``ApplicationSid``; absolute callback URLs; ``StatusCallbackEvent`` within ``initiated ringing answered
  completed`` (repeated parameters, as the helper libraries send a list); ``Timeout`` 1..600 (5..600 for a
  participant); a participant ``Label`` unique in its conference (16025 otherwise); unknown sids 404 (20404).

Twilio's side of the call is played by ``VoiceWorld``: it keeps calls, queues and conferences, and every callback
it owes the app (a call's ``Url``, an ``<Enqueue action>``, a conference ``statusCallback``, a call's
``StatusCallback``) goes to ``pending``. ``deliver(post)`` then posts them, signed with the auth token as Twilio
signs, runs each TwiML answer through ``tests.fakes.twiml.check`` and acts on it (``<Enqueue>`` puts the call in
its queue and fetches the waitUrl, ``<Dial><Conference>`` joins the conference and posts ``participant-join``).
A wait document's ``<Gather>`` listens while it plays: ``press(call_sid, digits)`` posts its action with
``Digits``; a call's own ``<Gather>`` takes speech (``speak``) or digits (``key_in``); ``<Leave>`` takes the call
out of its queue (the Enqueue action with ``QueueResult=leave``), and the
call ends when that action's TwiML holds nothing more.
Nothing is posted from the server's own threads: the app's request to the fake never waits on the app.
"""

from __future__ import annotations

import itertools
import re
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes import twiml

# The account's one API key (what TWILIO_API_KEY_SID/SECRET name when a test sets them).
API_KEY_SID = "SK3f1e5d7c9b0a2f4e6d8c0b2a4f6e8d0c"
API_KEY_SECRET = "testApiKeySecret2c7e0123456789ab"  # 32 characters, as Twilio makes them
VOICE = "twilio_voice"

_PATH = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>[^/]+)/(?P<rest>"
    r"Calls\.json|Calls/[^/]+\.json|Conferences\.json|Conferences/[^/]+\.json|"
    r"Conferences/[^/]+/Participants\.json|Conferences/[^/]+/Participants/[^/]+\.json|"
    r"Queues/[^/]+/Members/[^/]+\.json|Recordings/[^/]+\.mp3)$"
)
# An MPEG audio frame: its header, then silence (what a recording's bytes are made of here).
_MP3_FRAME = b"\xff\xfb\x10\xc4" + b"\x00" * 1020
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_CONFERENCE_EVENTS = {"start", "end", "join", "leave", "mute", "hold", "modify", "speaker", "announcement"}

# (status, body): what a handler answers
Answer = tuple[int, Any]
# post(url, form) -> (HTTP status, body): how the world reaches the app (signed by the world)
Post = Callable[[str, list[tuple[str, str]]], tuple[int, str]]


def is_voice_path(path: str) -> bool:
    return _PATH.match(path) is not None


def error(status: int, code: int, message: str) -> Answer:
    return status, {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _rfc2822() -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())


def _absolute(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _address(value: str) -> bool:
    return bool(_E164.match(value)) or value.startswith(("client:", "sip:"))


@dataclass
class Call:
    sid: str
    to: str
    from_: str
    direction: str  # inbound, outbound-api
    url: str | None = None
    twiml: str | None = None
    status: str = "queued"
    status_callback: str | None = None
    status_events: tuple[str, ...] = ("completed",)
    queue: str | None = None  # the queue's sid while it waits in one
    enqueue_action: str | None = None
    enqueue_wait_url: str | None = None
    conference: str | None = None  # the conference's sid while it is in one
    label: str | None = None
    gather_action: str | None = None  # the <Gather action> of the wait document the caller hears now
    ends_after_queue_action: bool = False  # left the queue by <Leave>: the Enqueue action's TwiML is the last
    hold: bool = False  # a conference participant on hold (Participants API ``Hold``)
    hold_url: str | None = None
    muted: bool = False
    end_on_exit: bool = False  # <Conference endConferenceOnExit="true">: leaving ends the conference
    listening: ET.Element | None = None  # the <Record> or <Gather> the call is in, waiting for the caller
    then: list[ET.Element] = field(default_factory=list)  # the verbs after it, run when it ends without its action


@dataclass
class Conference:
    sid: str
    friendly_name: str
    status: str = "init"
    status_callback: str | None = None
    events: tuple[str, ...] = ()
    participants: dict[str, Call] = field(default_factory=dict)  # by CallSid
    sequence: itertools.count = field(default_factory=lambda: itertools.count(1))


@dataclass
class Queue:
    sid: str
    friendly_name: str
    members: list[str] = field(default_factory=list)  # CallSids, front first


class VoiceWorld:
    """Twilio's voice side: the REST API's state, and the callbacks it owes the app."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid, self.auth_token = account_sid, auth_token
        self.calls: dict[str, Call] = {}
        self.conferences: dict[str, Conference] = {}
        self.queues: dict[str, Queue] = {}
        # (url, form, context) still to post; context is how its TwiML answer is checked and run
        self.pending: list[tuple[str, list[tuple[str, str]], str, str | None]] = []
        self.lock = threading.RLock()
        # recording sid -> its MP3 bytes, served at Recordings/{sid}.mp3 with the account's credentials
        self.recordings: dict[str, bytes] = {}

    # -- the REST API --------------------------------------------------------------------------------

    def authorized(self, account: str, user: str, password: str) -> Answer | None:
        """None when the request may go on; else Twilio's answer."""
        if account != self.account_sid:
            return error(404, 20404, f"The requested resource /2010-04-01/Accounts/{account} was not found")
        if (user, password) not in ((self.account_sid, self.auth_token), (API_KEY_SID, API_KEY_SECRET)):
            return error(401, 20003, "Authenticate")
        return None

    def serve(self, method: str, rest: str, pairs: list[tuple[str, str]], query: dict[str, str]) -> Answer:
        with self.lock:
            parts = rest.removesuffix(".json").split("/")
            if parts == ["Calls"] and method == "POST":
                return self._create_call(pairs)
            if len(parts) == 2 and parts[0] == "Calls" and method == "POST":
                return self._update_call(parts[1], dict(pairs))
            if parts == ["Conferences"] and method == "GET":
                return self._list_conferences(query)
            if len(parts) == 2 and parts[0] == "Conferences" and method == "POST":
                return self._update_conference(parts[1], dict(pairs))
            if len(parts) == 3 and parts[2] == "Participants" and method == "POST":
                return self._add_participant(parts[1], pairs)
            if len(parts) == 4 and parts[2] == "Participants" and method in ("POST", "DELETE"):
                return self._participant(method, parts[1], parts[3], dict(pairs))
            if len(parts) == 4 and parts[0] == "Queues" and parts[2] == "Members" and method == "POST":
                return self._dequeue(parts[1], parts[3], dict(pairs))
            if len(parts) == 2 and parts[0] == "Recordings" and rest.endswith(".mp3") and method == "GET":
                return self._recording_media(parts[1].removesuffix(".mp3"))
            return error(405, 20004, "Method not allowed")

    def _recording_media(self, sid: str) -> Answer:
        """A recording's MP3 (bytes: served as ``audio/mpeg``), as with "HTTP Basic Authentication for media" on:
        the request was authenticated before it got here."""
        media = self.recordings.get(sid)
        if media is None:
            return error(404, 20404, f"The requested resource /Recordings/{sid}.mp3 was not found")
        return 200, media

    def _create_call(self, pairs: list[tuple[str, str]]) -> Answer:
        form = dict(pairs)
        to, sender = form.get("To", ""), form.get("From", "")
        if not to:
            return error(400, 21201, "No 'To' number is specified")
        if not sender:
            return error(400, 21213, "No 'From' number is specified")
        if not _address(to):
            return error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not _address(sender):
            return error(400, 21212, f"Invalid 'From' Phone Number: {sender}")
        given = [name for name in ("Url", "Twiml", "ApplicationSid") if form.get(name)]
        if not given:
            return error(400, 21205, "Url parameter is required.")
        if form.get("Url") and not _absolute(form["Url"]):
            return error(400, 21205, f"Url is not a valid URL: {form['Url']}")
        if form.get("Twiml") and len(form["Twiml"]) > 4000:
            return error(400, 21232, "Twiml exceeds 4000 characters")
        problem = self._callback_problem(pairs, twiml.STATUS_EVENTS)
        if problem:
            return problem
        timeout = form.get("Timeout", "60")
        if not timeout.isdigit() or not 1 <= int(timeout) <= 600:
            return error(400, 21207, f"Timeout must be between 1 and 600: {timeout}")
        call = Call(
            sid="CA" + secrets.token_hex(16),
            to=to,
            from_=sender,
            direction="outbound-api",
            url=form.get("Url"),
            twiml=None if form.get("Url") else form.get("Twiml"),
            status_callback=form.get("StatusCallback"),
            status_events=tuple(v for k, v in pairs if k == "StatusCallbackEvent") or ("completed",),
        )
        self.calls[call.sid] = call
        return 201, self._call_json(call)

    def _callback_problem(self, pairs: list[tuple[str, str]], events: set[str]) -> Answer | None:
        form = dict(pairs)
        for name in ("StatusCallback", "ConferenceStatusCallback", "WaitUrl"):
            if form.get(name) and not _absolute(form[name]):
                return error(400, 21609, f"Invalid {name} url")
        asked = {token for k, v in pairs if k == "StatusCallbackEvent" for token in v.split()}
        if asked - events:
            return error(400, 21626, f"Invalid StatusCallbackEvent: {sorted(asked - events)}")
        conference_events = {t for k, v in pairs if k == "ConferenceStatusCallbackEvent" for t in v.split()}
        if conference_events - _CONFERENCE_EVENTS:
            return error(400, 21626, f"Invalid ConferenceStatusCallbackEvent: {sorted(conference_events)}")
        if form.get("StatusCallbackMethod", "POST") not in ("GET", "POST"):
            return error(400, 21610, "Invalid StatusCallbackMethod")
        return None

    def _update_call(self, sid: str, form: dict[str, str]) -> Answer:
        call = self.calls.get(sid)
        if call is None or call.status in ("completed", "canceled", "failed", "busy", "no-answer"):
            return error(404, 20404, f"The requested resource Calls/{sid}.json was not found")
        if form.get("Status") not in (None, "completed", "canceled"):
            return error(400, 21220, "Invalid call state for update")
        if form.get("Url"):
            if not _absolute(form["Url"]):
                return error(400, 21205, "Url is not a valid URL")
            self._leave_queue(call, "redirected")
            self.pending.append((form["Url"], self._call_form(call), twiml.CALL, call.sid))
        elif form.get("Status"):
            self.end(call.sid, form["Status"])
        return 200, self._call_json(call)

    def _list_conferences(self, query: dict[str, str]) -> Answer:
        wanted_name, wanted_status = query.get("FriendlyName"), query.get("Status")
        found = [
            self._conference_json(c)
            for c in self.conferences.values()
            if (wanted_name is None or c.friendly_name == wanted_name)
            and (wanted_status is None or c.status == wanted_status)
        ]
        return 200, {"conferences": found, "page": 0, "page_size": 50}

    def _update_conference(self, sid: str, form: dict[str, str]) -> Answer:
        conference = self.conferences.get(sid)
        if conference is None or conference.status == "completed":
            return error(404, 20404, f"The requested resource Conferences/{sid}.json was not found")
        if form.get("Status") == "completed":
            for call_sid in list(conference.participants):
                self.end(call_sid, "completed")
        return 200, self._conference_json(conference)

    def _add_participant(self, conference_sid: str, pairs: list[tuple[str, str]]) -> Answer:
        conference = self.conferences.get(conference_sid)
        if conference is None or conference.status == "completed":
            return error(404, 20404, f"The requested resource Conferences/{conference_sid} was not found")
        form = dict(pairs)
        if not form.get("From") or not form.get("To"):
            return error(400, 21604, "'From' and 'To' are required")
        if not _address(form["To"]) and not form["To"].startswith("app:"):
            return error(400, 21211, f"Invalid 'To' Phone Number: {form['To']}")
        label = form.get("Label")
        if label and (len(label) > 128 or any(p.label == label for p in conference.participants.values())):
            return error(400, 16025, f"Participant label {label} already in use or too long")
        timeout = form.get("Timeout", "60")
        if not timeout.isdigit() or not 5 <= int(timeout) <= 600:
            return error(400, 21207, "Timeout must be between 5 and 600")
        problem = self._callback_problem(pairs, twiml.STATUS_EVENTS)
        if problem:
            return problem
        call = Call("CA" + secrets.token_hex(16), form["To"], form["From"], "outbound-api", label=label)
        call.status_callback = form.get("StatusCallback")
        call.end_on_exit = form.get("EndConferenceOnExit") == "true"
        self.calls[call.sid] = call
        # Joins once answered: ``answer(call_sid)``; the participant is "queued" until then.
        call.conference = conference.sid
        return 201, {**self._participant_json(conference, call), "status": "queued"}

    def _participant(self, method: str, conference_sid: str, who: str, form: dict[str, str]) -> Answer:
        conference = self.conferences.get(conference_sid)
        found = None
        if conference is not None:
            found = conference.participants.get(who) or next(
                (p for p in conference.participants.values() if p.label == who), None
            )
        if conference is None or found is None:
            return error(404, 20404, f"The requested resource Participants/{who}.json was not found")
        if method == "DELETE":
            self._leave_conference(found, "participant_updated_via_api")
            return 204, None
        for name in ("HoldUrl", "AnnounceUrl", "WaitUrl"):
            if form.get(name) and not _absolute(form[name]):
                return error(400, 21609, f"Invalid {name}")
        for name in ("Hold", "Muted"):
            if name in form and form[name] not in ("true", "false"):
                return error(400, 21218, f"Invalid {name}: {form[name]}")
        if form.get("HoldMethod", "POST") not in ("GET", "POST"):
            return error(400, 21218, "Invalid HoldMethod")
        if "Hold" in form and (form["Hold"] == "true") != found.hold:
            found.hold = form["Hold"] == "true"
            found.hold_url = form.get("HoldUrl") if found.hold else None
            self._conference_event(conference, "participant-hold" if found.hold else "participant-unhold", found)
        if "Muted" in form and (form["Muted"] == "true") != found.muted:
            found.muted = form["Muted"] == "true"
            self._conference_event(conference, "participant-mute" if found.muted else "participant-unmute", found)
        return 200, self._participant_json(conference, found)

    def _dequeue(self, queue_sid: str, who: str, form: dict[str, str]) -> Answer:
        queue = self.queues.get(queue_sid)
        if queue is None:
            return error(404, 20404, f"The requested resource Queues/{queue_sid} was not found")
        call_sid = (queue.members[0] if queue.members else None) if who == "Front" else who
        if call_sid is None or call_sid not in queue.members:
            return error(404, 20404, f"The requested resource Members/{who}.json was not found")
        url = form.get("Url")
        if not url or not _absolute(url):
            return error(400, 21205, "Url parameter is required and must be absolute")
        call = self.calls[call_sid]
        position = queue.members.index(call_sid) + 1
        answer = {
            "call_sid": call_sid,
            "queue_sid": queue_sid,
            "position": position,
            "wait_time": 30,
            "date_enqueued": _rfc2822(),
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Queues/{queue_sid}/Members/{call_sid}.json",
        }
        # Dequeued through the REST API: the <Enqueue action> is requested right away, then the new Url.
        self._leave_queue(call, "redirected")
        self.pending.append((url, self._call_form(call), twiml.CALL, call.sid))
        return 200, answer

    # -- JSON -------------------------------------------------------------------------------------------

    def _call_json(self, call: Call) -> dict[str, Any]:
        return {
            "sid": call.sid,
            "account_sid": self.account_sid,
            "to": call.to,
            "from": call.from_,
            "status": call.status,
            "direction": call.direction,
            "api_version": "2010-04-01",
            "date_created": _rfc2822(),
            "parent_call_sid": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{call.sid}.json",
        }

    def _conference_json(self, conference: Conference) -> dict[str, Any]:
        return {
            "sid": conference.sid,
            "account_sid": self.account_sid,
            "friendly_name": conference.friendly_name,
            "status": conference.status,
            "region": "us1",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Conferences/{conference.sid}.json",
        }

    def _participant_json(self, conference: Conference, call: Call) -> dict[str, Any]:
        return {
            "account_sid": self.account_sid,
            "call_sid": call.sid,
            "conference_sid": conference.sid,
            "label": call.label,
            "muted": call.muted,
            "hold": call.hold,
            "status": "connected" if call.sid in conference.participants else "queued",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Conferences/{conference.sid}/Participants/{call.sid}.json",
        }

    # -- Twilio's side of a call -----------------------------------------------------------------------

    def _call_form(self, call: Call, **more: str) -> list[tuple[str, str]]:
        form = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": call.sid,
            "CallStatus": call.status,
            "Direction": call.direction,
            "From": call.from_,
            "To": call.to,
            "Called": call.to,
            "Caller": call.from_,
            **more,
        }
        return sorted(form.items())

    def incoming(
        self, url: str, caller: str = "+14155550123", number: str = "+14155550100", status_url: str | None = None
    ) -> Call:
        """A caller dials our number, whose "a call comes in" URL is ``url`` and "call status changes" URL
        ``status_url`` (Twilio posts the inbound call's ``completed`` there)."""
        with self.lock:
            call = Call("CA" + secrets.token_hex(16), number, caller, "inbound", url=url, status="ringing")
            call.status_callback = status_url
            self.calls[call.sid] = call
            self.pending.append((url, self._call_form(call), twiml.CALL, call.sid))
            return call

    def client_call(self, url: str, identity: str, application_sid: str, params: dict[str, str]) -> Call:
        """A browser ``Device`` (``client:identity``) connects through the TwiML App whose Voice URL is ``url``,
        with ``params`` (``device.connect({params})``): Twilio asks that URL what to do with the call."""
        with self.lock:
            call = Call("CA" + secrets.token_hex(16), "", "client:" + identity, "inbound", url=url, status="ringing")
            self.calls[call.sid] = call
            form = dict(self._call_form(call), ApplicationSid=application_sid, **params)
            self.pending.append((url, sorted(form.items()), twiml.CALL, call.sid))
            return call

    def answer(self, call_sid: str) -> None:
        """The far end of a call we placed picks up: Twilio fetches its Url (or runs its Twiml)."""
        with self.lock:
            call = self.calls[call_sid]
            call.status = "in-progress"
            self._status(call, "answered")
            conference = self.conferences.get(call.conference or "")
            if conference is not None and call.sid not in conference.participants:  # a participant added by API
                attributes = {"participantLabel": call.label or ""} if call.label else {}
                if call.end_on_exit:
                    attributes["endConferenceOnExit"] = "true"
                self._join(call, conference.friendly_name, attributes)
            elif call.url:
                self.pending.append((call.url, self._call_form(call), twiml.CALL, call.sid))

    def fetch_wait(self, call_sid: str) -> None:
        """Twilio asks the queued caller's waitUrl again (as the wait document's ``<Redirect>`` makes it)."""
        with self.lock:
            call = self.calls[call_sid]
            queue = self.queues[call.queue or ""]
            position = str(queue.members.index(call.sid) + 1)
            form = self._call_form(
                call,
                QueueSid=queue.sid,
                QueuePosition=position,
                QueueTime="12",
                AvgQueueTime="0",
                CurrentQueueSize=str(len(queue.members)),
            )
            self.pending.append((call.enqueue_wait_url or "", form, twiml.ENQUEUE_WAIT, call.sid))

    def press(self, call_sid: str, digits: str) -> None:
        """The queued caller presses ``digits`` while hearing the wait document: Twilio posts its ``<Gather>``'s
        action (the standard call fields and ``Digits``) and runs the answer in the wait document's place."""
        with self.lock:
            call = self.calls[call_sid]
            assert call.queue and call.gather_action, "no <Gather> is listening on this call"
            form = self._call_form(call, Digits=digits, FinishedOnKey="", msg="Gather End")
            self.pending.append((call.gather_action, form, twiml.ENQUEUE_WAIT, call.sid))

    def no_answer(self, call_sid: str) -> None:
        with self.lock:
            self.end(call_sid, "no-answer")

    def hang_up(self, call_sid: str) -> None:
        """The party of ``call_sid`` hangs up (the caller while waiting, or in the conference)."""
        with self.lock:
            call = self.calls[call_sid]
            if call.queue:
                self._leave_queue(call, "hangup")
            self.end(call_sid, "completed")

    def end(self, call_sid: str, status: str) -> None:
        call = self.calls[call_sid]
        if call.status in ("completed", "canceled", "failed", "busy", "no-answer"):
            return
        if call.conference:
            self._leave_conference(call, "participant_hung_up")
        call.status = status
        self._status(call, "completed")

    def _status(self, call: Call, event: str) -> None:
        if call.status_callback and event in call.status_events:
            form = self._call_form(call, CallbackSource="call-progress-events", Timestamp=_rfc2822())
            self.pending.append((call.status_callback, form, twiml.CALLBACK, None))

    def _leave_queue(self, call: Call, result: str) -> None:
        if call.queue is None:
            return
        queue = self.queues[call.queue]
        queue.members.remove(call.sid)
        if call.enqueue_action:
            form = self._call_form(call, QueueResult=result, QueueSid=queue.sid, QueueTime="30")
            self.pending.append((call.enqueue_action, form, twiml.CALL, call.sid))
        call.queue = None

    def _join(self, call: Call, name: str, attributes: dict[str, str]) -> None:
        conference = next(
            (c for c in self.conferences.values() if c.friendly_name == name and c.status != "completed"), None
        )
        if conference is None:
            conference = Conference("CF" + secrets.token_hex(16), name)
            self.conferences[conference.sid] = conference
        label = attributes.get("participantLabel")
        if label and any(p.label == label for p in conference.participants.values()):
            return  # 16025: "the call will not be added into the conference"
        if conference.status_callback is None and attributes.get("statusCallback"):
            # The first participant to join fixes the conference's callbacks.
            conference.status_callback = attributes["statusCallback"]
            conference.events = tuple(attributes.get("statusCallbackEvent", "").split())
        call.label, call.conference = label, conference.sid
        call.end_on_exit = attributes.get("endConferenceOnExit") == "true"
        conference.participants[call.sid] = call
        self._conference_event(conference, "participant-join", call)
        if conference.status == "init" and len(conference.participants) >= 2:
            conference.status = "in-progress"
            self._conference_event(conference, "conference-start", None)

    def _leave_conference(self, call: Call, reason: str) -> None:
        conference = self.conferences.get(call.conference or "")
        call.conference = None
        if conference is None or call.sid not in conference.participants:
            return
        del conference.participants[call.sid]
        self._conference_event(
            conference, "participant-leave", call, ReasonParticipantLeft=reason, ParticipantCallStatus="completed"
        )
        if call.end_on_exit:  # the others' <Dial> ends; with nothing after it in their TwiML, their calls end
            conference.status = "completed"
            for other in list(conference.participants.values()):
                self.end(other.sid, "completed")
            self._conference_event(conference, "conference-end", None, ReasonConferenceEnded="participant-left")
            return
        if not conference.participants and conference.status != "completed":
            conference.status = "completed"
            self._conference_event(conference, "conference-end", None, ReasonConferenceEnded="last-participant-left")

    def _conference_event(self, conference: Conference, event: str, call: Call | None, **more: str) -> None:
        short = event.split("-")[-1] if event.startswith("participant") else event.removeprefix("conference-")
        short = {"unhold": "hold", "unmute": "mute"}.get(short, short)
        if not conference.status_callback or short not in conference.events:
            return
        form = {
            "AccountSid": self.account_sid,
            "ConferenceSid": conference.sid,
            "FriendlyName": conference.friendly_name,
            "StatusCallbackEvent": event,
            "SequenceNumber": str(next(conference.sequence)),
            "Timestamp": _rfc2822(),
            **more,
        }
        if call is not None:
            form.update(
                CallSid=call.sid,
                ParticipantLabel=call.label or "",
                Muted="true" if call.muted else "false",
                Hold="true" if call.hold else "false",
                Coaching="false",
                EndConferenceOnExit="false",
                StartConferenceOnEnter="true",
            )
        self.pending.append((conference.status_callback, sorted(form.items()), twiml.CALLBACK, None))

    # -- delivering callbacks -------------------------------------------------------------------------

    def deliver(self, post: Post, base: str | None = None, limit: int = 50) -> list[tuple[str, int, str]]:
        """Post every pending callback (and those their answers cause) to the app; returns (url, status, body)."""
        done: list[tuple[str, int, str]] = []
        for _ in range(limit):
            with self.lock:
                if not self.pending:
                    return done
                url, form, context, call_sid = self.pending.pop(0)
            status, body = post(url, form)
            done.append((url, status, body))
            assert status == 200, (url, status, body)
            root = twiml.check(body, context, base)
            if call_sid is not None:
                with self.lock:
                    call = self.calls[call_sid]
                    if context == twiml.ENQUEUE_WAIT and url == call.enqueue_wait_url:
                        self._hear(call, root)
                    else:
                        self._run(call, root)
        raise AssertionError("callbacks did not settle")

    def _hear(self, call: Call, root: ET.Element) -> None:
        """A wait document plays: its ``<Gather>`` (if any) listens for digits (``press``) until the next one."""
        gather = root.find("Gather")
        call.gather_action = gather.attrib.get("action") if gather is not None else None

    def _run(self, call: Call, root: ET.Element) -> None:
        """What Twilio does with the TwiML a call got (the verbs the app uses)."""
        after_leave = call.ends_after_queue_action  # this is the Enqueue action's TwiML, after a <Leave>
        self._run_verbs(call, root)
        if after_leave:
            call.ends_after_queue_action = False
            if not any(verb.tag in ("Enqueue", "Dial", "Redirect") for verb in root):
                self.end(call.sid, "completed")  # nothing more to do: the call ends

    def _run_verbs(self, call: Call, root: ET.Element) -> None:
        for verb in root:
            if verb.tag == "Enqueue":
                name = (verb.text or "").strip()
                queue = next((q for q in self.queues.values() if q.friendly_name == name), None)
                if queue is None:
                    queue = Queue("QU" + secrets.token_hex(16), name)
                    self.queues[queue.sid] = queue
                queue.members.append(call.sid)
                call.queue, call.enqueue_action = queue.sid, verb.attrib.get("action")
                call.enqueue_wait_url = verb.attrib.get("waitUrl")
                call.status = "in-progress"
                if call.enqueue_wait_url:
                    position = str(queue.members.index(call.sid) + 1)
                    form = self._call_form(
                        call,
                        QueueSid=queue.sid,
                        QueuePosition=position,
                        QueueTime="0",
                        AvgQueueTime="0",
                        CurrentQueueSize=str(len(queue.members)),
                    )
                    self.pending.append((call.enqueue_wait_url, form, twiml.ENQUEUE_WAIT, call.sid))
                return
            if verb.tag == "Dial":
                for noun in verb:
                    if noun.tag == "Conference":
                        call.status = "in-progress"
                        self._join(call, (noun.text or "").strip(), dict(noun.attrib))
                return
            if verb.tag in ("Hangup", "Reject"):
                self.end(call.sid, "completed")
                return
            if verb.tag == "Redirect":
                context = twiml.ENQUEUE_WAIT if call.queue else twiml.CALL
                self.pending.append(((verb.text or "").strip(), self._call_form(call), context, call.sid))
                return
            if verb.tag == "Leave" and call.queue:
                call.ends_after_queue_action, call.gather_action = True, None
                self._leave_queue(call, "leave")
                return
            if verb.tag in ("Record", "Gather"):
                # Twilio waits for the caller here: ``leave_voicemail`` / ``speak`` say what they do.
                call.status = "in-progress"
                call.listening, call.then = verb, list(root)[list(root).index(verb) + 1 :]
                return

    # -- the caller at a <Record> or a <Gather> ---------------------------------------------------------

    def _listening(self, call_sid: str, tag: str) -> tuple[Call, ET.Element]:
        call = self.calls[call_sid]
        verb = call.listening
        assert verb is not None and verb.tag == tag, f"the call is not at a <{tag}>"
        call.listening = None
        return call, verb

    def _run_rest(self, call: Call) -> None:
        """Twilio goes on with the verbs after the one that ended without requesting its action."""
        rest = ET.Element("Response")
        rest.extend(call.then)
        call.then = []
        self._run(call, rest)

    def leave_voicemail(
        self, call_sid: str, seconds: int, transcript: str | None = "", *, hang_up: bool = True
    ) -> tuple[str, str]:
        """The caller speaks for ``seconds`` at the ``<Record>`` (then hangs up, or presses #). Returns the
        recording's (sid, url).

        As Twilio does: an empty recording (0 s) requests no action and the call goes on with the next verb; else
        the action is requested with the standard call parameters and ``RecordingUrl``, ``RecordingDuration``,
        ``RecordingSid`` and ``Digits`` (``hangup`` when the caller hung up), then the ``recordingStatusCallback``
        (no caller parameters) once the file is ready, then the ``transcribeCallback`` (the standard parameters and
        the ``Transcription*`` ones; ``transcript=None``: the transcription failed)."""
        with self.lock:
            call, record = self._listening(call_sid, "Record")
            max_length = int(record.attrib.get("maxLength", "3600"))
            if seconds <= 0:
                self._run_rest(call)
                return "", ""
            seconds = min(seconds, max_length)
            sid = "RE" + secrets.token_hex(16)
            self.recordings[sid] = _MP3_FRAME * (seconds * 4)  # 32 kbit/s: 4 kB a second
            url = f"https://api.twilio.com/2010-04-01/Accounts/{self.account_sid}/Recordings/{sid}"
            if hang_up:
                call.status = "completed"
            action = record.attrib.get("action")
            assert action, "a <Record> without action requests the current document again"
            done = {"RecordingUrl": url, "RecordingDuration": str(seconds), "RecordingSid": sid}
            form = self._call_form(call, **done, Digits="hangup" if hang_up else "#")
            # The action's TwiML is run only while the caller is still on the line.
            self.pending.append((action, form, twiml.CALL, None if hang_up else call.sid))
            status_url = record.attrib.get("recordingStatusCallback")
            if status_url:
                status = {
                    "AccountSid": self.account_sid,
                    "CallSid": call.sid,
                    "RecordingSid": sid,
                    "RecordingUrl": url,
                    "RecordingStatus": "completed",
                    "RecordingDuration": str(seconds),
                    "RecordingChannels": "1",
                    "RecordingStartTime": _rfc2822(),
                    "RecordingSource": "RecordVerb",
                    "RecordingTrack": "both",
                }
                self.pending.append((status_url, sorted(status.items()), twiml.CALLBACK, None))
            transcribe_url = record.attrib.get("transcribeCallback")
            if record.attrib.get("transcribe") == "true" and transcribe_url and seconds <= 120:
                transcription = {
                    "TranscriptionSid": "TR" + secrets.token_hex(16),
                    "TranscriptionText": transcript or "",
                    "TranscriptionStatus": "completed" if transcript is not None else "failed",
                    "TranscriptionUrl": f"https://api.twilio.com/2010-04-01/Accounts/{self.account_sid}/"
                    f"Recordings/{sid}/Transcriptions/TR",
                    "RecordingSid": sid,
                    "RecordingUrl": url,
                }
                if transcript is None:
                    del transcription["TranscriptionText"]
                form = self._call_form(call, **transcription)
                self.pending.append((transcribe_url, form, twiml.CALLBACK, None))
            if hang_up:
                self._status(call, "completed")
            return sid, url

    def speak(self, call_sid: str, words: str, confidence: str = "0.91") -> None:
        """The caller answers the ``<Gather input="speech">`` (``""``: silence until it times out).

        An answer (or silence with ``actionOnEmptyResult="true"``) requests the action with the standard call
        parameters and ``SpeechResult`` and ``Confidence``; silence without it goes on with the next verb."""
        with self.lock:
            call, gather = self._listening(call_sid, "Gather")
            assert "speech" in gather.attrib.get("input", "dtmf"), "this <Gather> does not listen for speech"
            if not words and gather.attrib.get("actionOnEmptyResult") != "true":
                self._run_rest(call)
                return
            action = gather.attrib.get("action")
            assert action, "a <Gather> without action requests the current document again"
            more = {"SpeechResult": words, "Confidence": confidence} if words else {}
            self.pending.append((action, self._call_form(call, **more), twiml.CALL, call.sid))

    def key_in(self, call_sid: str, digits: str) -> None:
        """The caller presses ``digits`` at the call's ``<Gather input="dtmf ...">`` (not a wait document's: that is
        ``press``): Twilio posts its action with the standard call parameters and ``Digits`` (and no
        ``SpeechResult``), once ``numDigits`` are in."""
        with self.lock:
            call, gather = self._listening(call_sid, "Gather")
            assert "dtmf" in gather.attrib.get("input", "dtmf"), "this <Gather> does not listen for digits"
            wanted = gather.attrib.get("numDigits")
            assert wanted is None or len(digits) == int(wanted), f"this <Gather> takes {wanted} digit(s)"
            action = gather.attrib.get("action")
            assert action, "a <Gather> without action requests the current document again"
            form = self._call_form(call, Digits=digits, FinishedOnKey="", msg="Gather End")
            self.pending.append((action, form, twiml.CALL, call.sid))

    # -- what tests read ---------------------------------------------------------------------------------

    def participants(self, friendly_name: str) -> list[Call]:
        with self.lock:
            return [
                p
                for c in self.conferences.values()
                if c.friendly_name == friendly_name
                for p in c.participants.values()
            ]


def parse_form(body: bytes) -> list[tuple[str, str]]:
    return parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=bool(body))
