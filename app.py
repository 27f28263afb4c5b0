"""Switchboard's Lambda entry points. Thin: each handler reads the event and calls one thing in chalicelib."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalice.app import Chalice, Request, Response, WebsocketEvent

from chalicelib import auth, clock
from chalicelib.agents import commands, work
from chalicelib.agents import service as agents
from chalicelib.channels import registry
from chalicelib.channels.base import WebhookRequest
from chalicelib.channels.fields import load_json
from chalicelib.channels.webhook_url import called_urls
from chalicelib.errors import Conflict, Forbidden, InvalidPayload, NotFound, SwitchboardError
from chalicelib.notify import push
from chalicelib.observability import correlate, logger, middleware
from chalicelib.routing import config as routing_config
from chalicelib.routing import engine, records
from chalicelib.routing.events import (
    AgentLegDue,
    CallbackDue,
    EscalationDue,
    OfferTimeout,
    ReconnectGraceExpired,
    RoutingEvent,
    SelfServiceCloseDue,
    UnknownEvent,
    from_body,
)
from chalicelib.settings import (
    MissingSecret,
    get_settings,
    outbox_queue_name,
    routing_queue_name,
    routing_stream_arn,
    timer_queue_name,
)
from chalicelib.store import routing as routing_store

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

# Every function imports this module, so what only some of them need is imported where it is used: channel
# adapters (registry.Endpoint), sign-in tokens (chalicelib.auth), the console and widget, customers, the inbox
# and outbox, Powertools' batch utility. The README's "What ships" tells what that saves at cold start.

app = Chalice(app_name="switchboard", configure_logs=False)  # Powertools owns logging
app.experimental_feature_flags.update(["WEBSOCKETS"])
# Mailgun posts multipart/form-data with attachments: keep the raw bytes intact.
app.api.binary_types.append("multipart/form-data")
# Every handler (REST, WebSocket, SQS, schedule): Lambda context on each log line and state cleared per
# invocation, X-Ray tracing, and the conversation id as correlation id (see chalicelib/observability.py).
app.register_middleware(middleware, "all")


def route(path: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``app.route`` whose view maps domain errors to their HTTP status and JSON body, in this one place.

    (Chalice turns exceptions raised in a view into a 500 before HTTP middleware sees them.)
    """

    def register(view: Callable[..., Any]) -> Any:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return view(*args, **kwargs)
            except SwitchboardError as error:
                return Response(body=error.to_body(), status_code=error.status)
            except MissingSecret as error:
                logger.error(f"{error.kind} not configured", extra={error.kind: error.name})
                return Response(body={"error": "not_configured", "message": str(error)}, status_code=503)

        return app.route(path, **options)(guarded)

    return register


# --- channels -------------------------------------------------------------------
# One route per registered channel adapter; the adapter verifies, parses and says what to answer.


def _public_base_url(request: Request) -> str:
    """The URL prefix the provider called: PUBLIC_BASE_URL when set (a custom domain), else, behind API Gateway,
    the domain and stage the request came in on (a stack cannot name its own API in its functions' settings)."""
    settings = get_settings()
    context = request.context or {}
    domain, stage = context.get("domainName"), context.get("stage")
    if not settings.public_base_url_set and domain and stage:
        # An HTTP API's $default stage (the webhooks' front door) is served at the root: no stage in the URL.
        return f"https://{domain}" if stage == "$default" else f"https://{domain}/{stage}"
    return settings.public_base_url


def _webhook_view(endpoint: registry.Endpoint) -> Callable[..., Response]:
    def view() -> Response:
        from chalicelib.conversations import inbox

        adapter = endpoint.adapter()
        request = _request()
        raw = request.raw_body if request.method != "GET" else b""
        body = raw if isinstance(raw, bytes) else raw.encode()
        query = dict(request.query_params or {})
        # The query as the provider called it, not rebuilt from the parsed one (Twilio signs it byte for byte).
        public_url, *forms = called_urls(_public_base_url(request) + adapter.path, request.to_original_event())
        webhook_request = WebhookRequest(
            request.method, adapter.path, request.headers, query, body, public_url, tuple(forms)
        )
        reply = inbox.deliver(adapter, webhook_request)
        if isinstance(reply.body, dict):
            return Response(body=reply.body, status_code=reply.status)
        return Response(body=reply.body, status_code=reply.status, headers={"Content-Type": reply.content_type})

    view.__name__ = f"webhook_{endpoint.name}"
    return view


for _endpoint in registry.ENDPOINTS:
    route(_endpoint.path, methods=list(_endpoint.methods), content_types=list(_endpoint.content_types))(
        _webhook_view(_endpoint)
    )


# --- agents, supervisors, admins (every route below needs a signed-in principal) ----------------

signed_in = auth.authorized(lambda: app.current_request)


@route("/agents", methods=["POST"], content_types=["application/json"])
@signed_in(auth.ADMIN)
def create_agent(principal: auth.Principal) -> Response:
    agent = agents.create_agent(_json_body())
    return Response(body=agents.agent_view(agent), status_code=201)


@route("/agents/{agent_id}", methods=["PATCH"], content_types=["application/json"])
@signed_in(auth.ADMIN)
def update_agent(agent_id: str, principal: auth.Principal) -> dict[str, Any]:
    return agents.agent_view(agents.update_agent(agent_id, _json_body()))


@route("/admin/routing", methods=["PUT"], content_types=["text/plain", "application/yaml", "application/x-yaml"])
@signed_in(auth.ADMIN)
def publish_routing(principal: auth.Principal) -> dict[str, Any]:
    """Replace the routing config (YAML): checked first, then live within 60 s everywhere."""
    raw = _request().raw_body
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    current = routing_config.current_config()
    try:
        config = routing_config.publish_override(text)
    except routing_config.ConfigError as error:
        problems = [{"field": p.field, "line": p.line, "problem": p.message} for p in error.problems]
        raise InvalidPayload(str(error), problems) from None
    routing_config.forget_current_config()
    published: dict[str, Any] = {"queues": sorted(config.queues), "rules": [rule.name for rule in config.rules]}
    if config.lab or current.lab:
        # The routing lab (routing.yaml `lab:`): simulated against what was live; it warns, it never refuses.
        from chalicelib.sim import lab

        try:
            verdict = lab.compare(current, config)
        except Exception:  # the config is live already; a lab failure must not make its publishing look failed
            logger.exception("routing lab check failed")
            published["warnings"] = ["the routing lab could not simulate this config; it is published unchecked"]
        else:
            published |= {"lab": verdict.as_dict(), "warnings": list(verdict.warnings)}
    return published


@route("/admin/kb", methods=["PUT"])
@signed_in(auth.ADMIN)
def publish_knowledge_base(principal: auth.Principal) -> dict[str, Any]:
    """Replace the self-service knowledge base (JSON: every article file): checked first, live within 60 s."""
    from chalicelib.kb import published

    return published.publish_request(_json_body())


@route("/agents", methods=["GET"])
@signed_in(auth.SUPERVISOR)
def list_agents(principal: auth.Principal) -> dict[str, Any]:
    return {"agents": [agents.agent_view(a) for a in routing_store.list_agents()]}


@route("/agents/{agent_id}", methods=["GET"])
@signed_in(auth.AGENT)
def get_agent(agent_id: str, principal: auth.Principal) -> dict[str, Any]:
    auth.require_self_or(principal, agent_id)
    return agents.agent_view(agents.get_agent(agent_id))


@route("/agents/{agent_id}/presence", methods=["PUT"], content_types=["application/json"])
@signed_in(auth.AGENT)
def set_presence(agent_id: str, principal: auth.Principal) -> dict[str, Any]:
    auth.require_self_or(principal, agent_id)
    return agents.agent_view(agents.set_presence(agent_id, _json_body()))


@route("/me", methods=["GET"])
@signed_in(auth.AGENT)
def me(principal: auth.Principal) -> dict[str, Any]:
    return {**agents.agent_view(agents.get_agent(principal.agent_id)), "roles": sorted(principal.roles)}


@route("/me/conversations", methods=["GET"])
@signed_in(auth.AGENT)
def my_conversations(principal: auth.Principal) -> dict[str, Any]:
    """What the agent works on (``?filter=mine|waiting|closed``), each with a preview and its unread count."""
    from chalicelib.agents import workspace

    which = dict(_request().query_params or {}).get("filter")
    return workspace.my_conversations(principal.agent_id, which)


@route("/conversations/{conversation_id}", methods=["GET"])
@signed_in(auth.AGENT)
def get_conversation(conversation_id: str, principal: auth.Principal) -> dict[str, Any]:
    return work.conversation(principal.agent_id, conversation_id, oversee=principal.has_role(auth.SUPERVISOR))


@route("/conversations/{conversation_id}/accept", methods=["POST"])
@signed_in(auth.AGENT)
def accept(conversation_id: str, principal: auth.Principal) -> dict[str, Any]:
    return work.contact_view(agents.accept(principal.agent_id, conversation_id))


@route("/conversations/{conversation_id}/decline", methods=["POST"])
@signed_in(auth.AGENT)
def decline(conversation_id: str, principal: auth.Principal) -> dict[str, Any]:
    return work.contact_view(agents.decline(principal.agent_id, conversation_id))


@route("/conversations/{conversation_id}/messages", methods=["POST"], content_types=["application/json"])
@signed_in(auth.AGENT)
def reply(conversation_id: str, principal: auth.Principal) -> Response:
    """The agent's reply, sent on the customer's channel (or another identity of theirs) through the outbox."""
    return Response(body=work.reply(principal.agent_id, conversation_id, _json_body()), status_code=202)


@route("/conversations/{conversation_id}/notes", methods=["POST"], content_types=["application/json"])
@signed_in(auth.AGENT)
def add_note(conversation_id: str, principal: auth.Principal) -> Response:
    return Response(body=work.add_note(principal.agent_id, conversation_id, _json_body()), status_code=201)


@route("/conversations/{conversation_id}/transfer", methods=["POST"], content_types=["application/json"])
@signed_in(auth.AGENT)
def transfer(conversation_id: str, principal: auth.Principal) -> dict[str, Any]:
    return work.transfer(principal.agent_id, conversation_id, _json_body())


@route("/conversations/{conversation_id}/call", methods=["POST"], content_types=["application/json"])
@signed_in(auth.AGENT)
def call_control(conversation_id: str, principal: auth.Principal) -> dict[str, Any]:
    """The agent's in-call controls (hold, mute, hang up, consult, hand over): conference changes at Twilio."""
    from chalicelib.voice import controls

    return controls.control(principal.agent_id, conversation_id, _json_body())


@route("/conversations/{conversation_id}/recordings/{recording_sid}", methods=["GET"])
@signed_in(auth.AGENT)
def voicemail_recording(conversation_id: str, recording_sid: str, principal: auth.Principal) -> Response:
    """A voicemail's audio, fetched from Twilio with the account's credentials (send ``Accept: audio/mpeg``)."""
    from chalicelib.voice import recordings

    media = recordings.for_agent(
        principal.agent_id, conversation_id, recording_sid, oversee=principal.has_role(auth.SUPERVISOR)
    )
    return Response(body=media, headers={"Content-Type": recordings.CONTENT_TYPE, "Cache-Control": "private, no-store"})


@route("/conversations/{conversation_id}/close", methods=["POST"], content_types=["application/json"])
@signed_in(auth.AGENT)
def close(conversation_id: str, principal: auth.Principal) -> dict[str, Any]:
    from chalicelib.agents import workspace

    wrap_up = agents.validate(agents.WrapUp, _json_body())
    try:
        workspace.check_wrap_up(wrap_up.wrap_up)
    except workspace.UnknownWrapUpCode:  # someone else's or no such conversation: its 403/404 first
        work.contact_seen_by(principal.agent_id, conversation_id)  # a read only for a bad code, not every close
        raise
    try:
        return work.contact_view(agents.close(principal.agent_id, conversation_id, wrap_up.wrap_up))
    except (Conflict, Forbidden):  # not theirs: a supervisor closes it for the agent working it
        if not principal.has_role(auth.SUPERVISOR):
            raise
        from chalicelib.agents import oversight

        return work.contact_view(oversight.close(principal.agent_id, conversation_id, wrap_up.wrap_up))


@route("/supervisor", methods=["GET"])
@signed_in(auth.SUPERVISOR)
def supervisor(principal: auth.Principal) -> dict[str, Any]:
    after = dict(_request().query_params or {}).get("agents_after")
    return work.supervisor_view(clock.now_iso(), work.agents_cursor(after))


@route("/contacts/{contact_id}", methods=["GET"])
@signed_in(auth.SUPERVISOR)
def get_contact(contact_id: str, principal: auth.Principal) -> dict[str, Any]:
    contact = routing_store.get_contact(contact_id)
    if contact is None:
        raise NotFound(f"no contact {contact_id}")
    return {
        "contact_id": contact.contact_id,
        "state": contact.state.value,
        "channel": contact.channel,
        "queues": list(contact.queues),
        "rule": contact.rule,
        "priority": contact.priority,
        "required_skills": contact.required_skills,
        "sla_deadline": contact.sla_deadline,
        "next_escalation_step": contact.next_step,
        "preferred_agent": contact.preferred_agent,
        "enqueued_at": contact.enqueued_at,
        "offered_at": contact.offered_at,
        "offered_to": contact.offered_to,
        "assigned_to": contact.assigned_to,
        "accepted_at": contact.accepted_at,
        "declined_by": list(contact.declined_by),
        "offer_count": contact.offer_count,
        "wrap_up": contact.wrap_up,
    }


@route("/contacts/{contact_id}/decisions", methods=["GET"])
@signed_in(auth.SUPERVISOR)
def contact_decisions(contact_id: str, principal: auth.Principal) -> dict[str, Any]:
    """Why each offer of the contact went where it went, and the contact's records (its lifecycle)."""
    if routing_store.get_contact(contact_id) is None:
        raise NotFound(f"no contact {contact_id}")
    return {
        "contact_id": contact_id,
        "decisions": routing_store.decisions_of(contact_id),
        "records": [records.summary(r) for r in routing_store.records_of(contact_id)],
    }


# --- agent assist: suggested articles and canned responses for the open conversation ---


@route("/conversations/{conversation_id}/suggestions", methods=["GET"])
@signed_in(auth.AGENT)
def conversation_suggestions(conversation_id: str, principal: auth.Principal) -> dict[str, Any]:
    """The knowledge base's best articles for what the customer asked, with the text an agent would insert."""
    from chalicelib.agents import assist

    return assist.suggestions(principal.agent_id, conversation_id, oversee=principal.has_role(auth.SUPERVISOR))


@route("/canned-responses", methods=["GET"])
@signed_in(auth.AGENT)
def canned_responses(principal: auth.Principal) -> dict[str, Any]:
    """routing.yaml's canned responses, rendered for ``?conversation_id=`` (variables without a value: "missing")."""
    from chalicelib.agents import assist

    conversation_id = dict(_request().query_params or {}).get("conversation_id", "")
    if not conversation_id:
        raise InvalidPayload("conversation_id is required: GET /canned-responses?conversation_id=...")
    return assist.canned_responses(principal.agent_id, conversation_id, oversee=principal.has_role(auth.SUPERVISOR))


# --- supervisor actions: another agent's conversations, reassign (close: the close route above) ---


@route("/agents/{agent_id}/conversations", methods=["GET"])
@signed_in(auth.SUPERVISOR)
def agent_conversations(agent_id: str, principal: auth.Principal) -> dict[str, Any]:
    from chalicelib.agents import oversight

    return oversight.agent_conversations(agent_id)


@route("/conversations/{conversation_id}/reassign", methods=["POST"], content_types=["application/json"])
@signed_in(auth.SUPERVISOR)
def reassign(conversation_id: str, principal: auth.Principal) -> dict[str, Any]:
    from chalicelib.agents import oversight

    return oversight.reassign(principal.agent_id, conversation_id, _json_body())


@route("/auth/options", methods=["GET"])
def sign_in_options() -> dict[str, Any]:
    """What the console's sign-in offers here: Cognito (endpoint, app client id) in AWS, dev tokens locally;
    and the WebSocket URL it connects to (``?ws=`` may name only one of ``websocket.allowed``)."""
    from chalicelib.console import pages

    return {**auth.sign_in_options(), "websocket": pages.websocket_options()}


@route("/dev/tokens", methods=["POST"], content_types=["application/json"])
def dev_token() -> dict[str, Any]:
    """Local development only (``SWITCHBOARD_DEV_AUTH=1``): a signed token with Cognito's claims."""
    if not get_settings().dev_auth:
        raise NotFound("no such route")
    body = _json_body()
    usage = 'send {"agent_id": "...", "roles": ["agent" | "supervisor" | "admin"]}'
    if not isinstance(body, dict):
        raise InvalidPayload(f"the body must be a JSON object: {usage}")
    agent_id, roles = body.get("agent_id"), body.get("roles", [auth.AGENT])
    if not isinstance(agent_id, str) or not agent_id:
        raise InvalidPayload(f"agent_id: name the agent to sign in as (a string); {usage}")
    return {"token": auth.issue_dev_token(agent_id, _dev_roles(roles))}


def _dev_roles(roles: Any) -> list[str]:
    """The roles of a development token: a non-empty list of role names, else a 422 saying what is wrong."""
    known = ", ".join(auth.ROLES)
    if roles is None:
        return [auth.AGENT]
    if not isinstance(roles, list):
        raise InvalidPayload(f'roles: must be a list of role names such as ["agent"]; roles are {known}')
    if not roles:
        raise InvalidPayload(f"roles: name at least one; roles are {known}")
    unknown = [repr(r) if not isinstance(r, str) else r for r in roles if r not in auth.ROLES]
    if unknown:
        raise InvalidPayload(f"roles: unknown {', '.join(unknown)}; roles are {known}")
    return list(roles)


def _request() -> Request:
    request = app.current_request
    assert request is not None, "only called while handling a request"
    return request


def _json_body() -> Any:
    """The request's JSON; ``InvalidJson`` (400) for bad syntax and for nesting too deep to parse (RecursionError)."""
    return load_json(_request().raw_body or b"null")


# --- customers (admin) --------------------------------------------------------------


@route("/customers/{customer_id}", methods=["GET"])
@signed_in(auth.SUPERVISOR)
def get_customer(customer_id: str, principal: auth.Principal) -> dict[str, Any]:
    from chalicelib.conversations import customers

    return customers.profile_with_timeline(customer_id)


@route("/customers/{customer_id}/attributes", methods=["PUT"], content_types=["application/json"])
@signed_in(auth.SUPERVISOR)  # supervisors and admins: the console's customer panel edits tier and tags
def set_customer_attributes(customer_id: str, principal: auth.Principal) -> dict[str, Any]:
    from chalicelib.conversations import customers

    return customers.set_attributes(customer_id, _json_body())


@route("/admin/identities/link", methods=["POST"], content_types=["application/json"])
@signed_in(auth.ADMIN)
def link_identities(principal: auth.Principal) -> dict[str, Any]:
    from chalicelib.conversations import customers

    return customers.link(_json_body())


@route("/admin/customers/merge", methods=["POST"], content_types=["application/json"])
@signed_in(auth.ADMIN)
def merge_customers(principal: auth.Principal) -> dict[str, Any]:
    from chalicelib.conversations import customers

    return customers.merge(_json_body())


# --- agent workspace: read markers, the customer panel, search, transfer targets, wrap-up codes ---------


@route("/conversations/{conversation_id}/read", methods=["POST"])
@signed_in(auth.AGENT)
def mark_read(conversation_id: str, principal: auth.Principal) -> dict[str, Any]:
    from chalicelib.agents import workspace

    up_to = dict(_request().query_params or {}).get("up_to")
    return workspace.mark_read(
        principal.agent_id, conversation_id, oversee=principal.has_role(auth.SUPERVISOR), up_to=up_to
    )


@route("/conversations/{conversation_id}/customer", methods=["GET"])
@signed_in(auth.AGENT)
def conversation_customer(conversation_id: str, principal: auth.Principal) -> dict[str, Any]:
    from chalicelib.agents import workspace

    return workspace.customer_panel(principal.agent_id, conversation_id, oversee=principal.has_role(auth.SUPERVISOR))


@route("/search", methods=["GET"])
@signed_in(auth.SUPERVISOR)
def search(principal: auth.Principal) -> dict[str, Any]:
    from chalicelib.agents import workspace

    return workspace.search(dict(_request().query_params or {}).get("q"))


@route("/transfer-targets", methods=["GET"])
@signed_in(auth.AGENT)
def transfer_targets(principal: auth.Principal) -> dict[str, Any]:
    from chalicelib.agents import workspace

    return workspace.transfer_targets(principal.agent_id)


@route("/wrap-up-codes", methods=["GET"])
@signed_in(auth.AGENT)
def wrap_up_codes(principal: auth.Principal) -> dict[str, Any]:
    from chalicelib.agents import workspace

    return workspace.wrap_up_codes()


# --- browsers: the agent console and the web-chat widget (no sign-in here: the console signs in itself) ---


@route("/console", methods=["GET"])
def console_page() -> Response:
    """The agent and supervisor console (its WebSocket URL comes from ``/auth/options``), under a strict CSP."""
    from chalicelib.console import pages

    return Response(body=pages.console_html(), headers=pages.console_headers())


@route("/console/voice-sdk/{name}", methods=["GET"])
def voice_sdk(name: str) -> Response:
    """Twilio's Voice JavaScript SDK (npm, pinned) for the console's softphone: served here, never from a CDN."""
    from chalicelib.console import pages

    return Response(body=pages.voice_sdk(name), headers=pages.voice_sdk_headers())


@route("/voice/token", methods=["GET"])
@signed_in(auth.AGENT)
def voice_token(principal: auth.Principal) -> Response:
    """An access token for the agent's softphone (the Voice SDK's ``Device``), valid for an hour."""
    from chalicelib.voice import tokens

    return Response(body=tokens.for_agent(principal.agent_id).as_dict(), headers={"Cache-Control": "no-store"})


@route("/widget.js", methods=["GET"])
def widget_script() -> Response:
    from chalicelib.console import pages

    return Response(body=pages.widget_js(), headers=pages.widget_headers())


@route("/widget/messages", methods=["POST"], content_types=["application/json"], cors=True)
def widget_message() -> dict[str, Any]:
    """A visitor's message from the widget: unsigned, so it is checked and signed server-side."""
    from chalicelib.console import visitors

    raw = _request().raw_body
    return visitors.post_message(raw if isinstance(raw, bytes) else raw.encode())


@route("/widget/conversations/{conversation_id}/messages", methods=["GET"], cors=True)
def widget_messages(conversation_id: str) -> dict[str, Any]:
    """What the widget reads when its WebSocket (re)opens: ``?site=&visitor_id=&after=<received_at>``."""
    from chalicelib.console import visitors

    return visitors.messages(conversation_id, dict(_request().query_params or {}))


# --- widget: greeting, hours, the offline form and attachments (chalicelib/console/widget_api.py) ---


@route("/widget/config", methods=["GET"], cors=True)
def widget_config() -> dict[str, Any]:
    """``?site=&lang=``: the greeting, the pre-chat form and attachment limits, and whether web chat is open."""
    from chalicelib.console import widget_api

    return widget_api.widget_config(dict(_request().query_params or {}))


@route("/widget/offline", methods=["POST"], content_types=["application/json"], cors=True)
def widget_offline() -> Response:
    """The widget's offline form (web chat closed): becomes an e-mail-channel contact from the address given."""
    from chalicelib.console import widget_api

    raw = _request().raw_body
    return Response(body=widget_api.post_offline(raw if isinstance(raw, bytes) else raw.encode()), status_code=202)


@route("/widget/attachments", methods=["POST"], content_types=["application/json"], cors=True)
def widget_attachment() -> dict[str, Any]:
    """A presigned S3 POST for one file the visitor attaches (type and size from routing.yaml's widget:)."""
    from chalicelib.console import widget_api

    raw = _request().raw_body
    return widget_api.post_attachment(raw if isinstance(raw, bytes) else raw.encode())


# --- agent WebSocket --------------------------------------------------------------


@app.on_ws_connect()
def ws_connect(event: WebsocketEvent) -> Response:
    """Agents connect with ``?token=<their sign-in token>`` (browsers cannot send headers on a WebSocket), the
    widget with ``?site=&visitor_id=&conversation_id=`` (``visitors.connect``: only that conversation's visitor)."""
    from chalicelib.console import visitors

    query = event.to_dict().get("queryStringParameters") or {}
    try:
        if visitors.is_visitor(query):
            visitors.connect(event.connection_id, query)
            return Response(body="", status_code=200)
        principal = auth.from_query(query)
        auth.require(principal, auth.AGENT)
        agents.connect(principal.agent_id, event.connection_id)
    except SwitchboardError as error:
        return Response(body=error.to_body(), status_code=403 if error.status == 404 else error.status)
    except MissingSecret as error:
        logger.error(f"{error.kind} not configured", extra={error.kind: error.name})
        return Response(body={"error": "not_configured", "message": str(error)}, status_code=503)
    return Response(body="", status_code=200)


@app.on_ws_message()
def ws_message(event: WebsocketEvent) -> None:
    """Agent actions: {"action": "accept" | "decline" | "close", "contact_id": ..., "offer_id": ...},
    {"action": "reply", "conversation_id": ..., "text": ..., "client_message_id": ...} (the REST reply's service,
    answered here: ``agents.commands``), {"action": "typing", ...} (``console.typing_indicator``, either side),
    {"action": "watch_supervisor", "token": ...} and {"action": "unwatch_supervisor"} (the supervisor's live
    view: ``agents.live``), and {"action": "heartbeat"}, which keeps API Gateway from closing the idle socket;
    the widget's {"action": "ping"} (``PING``) only keeps its socket open. Errors are answered as
    ``{"type": "error", "status": <the REST status>, "error", "message"}``."""
    command: Any = None
    try:
        command = load_json(event.body)  # InvalidJson (an error frame) for bad syntax and absurd nesting alike
        if command == PING:  # the widget's keep-alive: the message itself resets the idle timeout, nothing to do
            return
        if isinstance(command, dict) and command.get("action") == "typing":  # answered with nothing when it works
            from chalicelib.console import typing_indicator as typing

            if typing.is_visitors(command):
                typing.from_visitor(command)
            else:
                typing.from_agent(agents.agent_of_connection(event.connection_id), command)
            return
        reply = _agent_action(event.connection_id, command)
    except SwitchboardError as error:
        reply = {"type": "error", "status": error.status, **error.to_body(), **commands.about(command)}
    except MissingSecret as error:
        logger.error(f"{error.kind} not configured", extra={error.kind: error.name})
        reply = {"type": "error", "status": 503, "error": "not_configured", "message": str(error)}
        reply |= commands.about(command)
    except Exception:
        if commands.about(command):  # a reply: its console must hear it failed, to send it again with its key
            failed = "the reply may not have been sent; send it again with the same client_message_id"
            push.to_connection(
                event.connection_id,
                {"type": "error", "status": 500, "error": "internal_error", "message": failed}
                | commands.about(command),
            )
        raise
    push.to_connection(event.connection_id, reply)


# What the widget sends just under API Gateway's 10-minute idle timeout (widget.js, PING_MS): answered with no
# AWS call and no frame, only the invocation API Gateway makes for any message.
PING = {"action": "ping"}


def _agent_action(connection_id: str, command: Any) -> dict[str, Any]:
    if isinstance(command, dict) and command.get("action") == "heartbeat":
        # API Gateway cannot push from $connect (the socket opens only once it returns), so a console learns its
        # true presence from the answer to the heartbeat it sends as soon as the socket is open.
        agent = agents.heartbeat(agents.agent_of_connection(connection_id))
        return agents.presence_frame(agent, "heartbeat")
    if isinstance(command, dict) and command.get("action") == commands.REPLY:
        return commands.reply(agents.agent_of_connection(connection_id), command)
    if isinstance(command, dict) and command.get("action") in ("watch_supervisor", "unwatch_supervisor"):
        from chalicelib.agents import live

        return live.watch(connection_id, command) if command["action"] == live.WATCH else live.unwatch(connection_id)
    if not isinstance(command, dict) or not isinstance(command.get("contact_id"), str):
        raise InvalidPayload('send {"action": "accept" | "decline" | "close", "contact_id": "..."}')
    action, contact_id, offer_id = command.get("action"), command["contact_id"], command.get("offer_id")
    agent_id = agents.agent_of_connection(connection_id)
    if action == "accept":
        agents.accept(agent_id, contact_id, offer_id)
        return {"type": "accepted", "contact_id": contact_id}
    if action == "decline":
        agents.decline(agent_id, contact_id, offer_id)
        return {"type": "declined", "contact_id": contact_id}
    if action == "close":
        wrap_up = command.get("wrap_up")  # optional here; when given, the REST close's code
        if wrap_up is not None:
            wrap_up = agents.validate(agents.WrapUp, {"wrap_up": wrap_up}).wrap_up
            from chalicelib.agents import workspace

            workspace.check_wrap_up(wrap_up)
        agents.close(agent_id, contact_id, wrap_up)
        return {"type": "closed", "contact_id": contact_id}
    raise InvalidPayload(f"unknown action {action!r}; use accept, decline, close, reply or heartbeat")


@app.on_ws_disconnect()
def ws_disconnect(event: WebsocketEvent) -> None:
    agents.disconnect(event.connection_id)


# --- router -----------------------------------------------------------------------


def _correlated(body: str) -> RoutingEvent:
    """The record's routing event; its log lines carry its own conversation (a batch mixes them)."""
    logger.remove_keys(["conversation_id"])
    event = from_body(body)
    correlate(getattr(event, "conversation_id", None) or getattr(event, "contact_id", None))  # contact id == conv id
    return event


def _route_record(record: SQSRecord) -> None:
    redelivered = int(record.attributes.approximate_receive_count or 1) > 1
    engine.handle(_correlated(record.body), redelivered=redelivered)


@app.on_sqs_message(queue=routing_queue_name(), batch_size=10)
def on_routing_event(event: Any) -> dict[str, Any]:
    """Routing events in FIFO batches; a failed record fails only the rest of its own message group."""
    from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response

    processor = SqsFifoPartialProcessor(skip_group_on_error=True)
    response = process_partial_response(
        event=event.to_dict(), record_handler=_route_record, processor=processor, context=event.context
    )
    return dict(response)


def _timer_record(record: SQSRecord) -> None:
    event = _correlated(record.body)
    if isinstance(event, AgentLegDue):
        from chalicelib.voice import lifecycle

        lifecycle.on_timer(event, clock.now_iso())
        return
    if isinstance(event, CallbackDue):  # the next call back to a customer: voice, not routing
        from chalicelib.voice import callback

        callback.on_due(event, clock.now_iso())
        return
    if isinstance(event, SelfServiceCloseDue):  # a bot answer nobody replied to: self-service closes it
        from chalicelib import selfservice

        selfservice.on_close_due(event, clock.now_iso())
        return
    if not isinstance(event, OfferTimeout | EscalationDue | ReconnectGraceExpired):
        raise UnknownEvent(f"{type(event).__name__} is not a timer")
    engine.handle(event)


@app.on_sqs_message(queue=timer_queue_name(), batch_size=10)
def on_timer(event: Any) -> dict[str, Any]:
    """Offer timeouts, escalation steps, reconnect grace periods, call back retries and self-service answers left
    unanswered, delivered when due."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    processor = BatchProcessor(event_type=EventType.SQS)
    response = process_partial_response(
        event=event.to_dict(), record_handler=_timer_record, processor=processor, context=event.context
    )
    return dict(response)


@app.on_sqs_message(queue=outbox_queue_name(), batch_size=10)
def on_outbox(event: Any) -> dict[str, Any]:
    """Messages to customers: each sent once per claim; a failed one comes back after its backoff."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    from chalicelib.outbound import outbox

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(
        event=event.to_dict(), record_handler=outbox.process_record, processor=processor, context=event.context
    )
    return dict(response)


@app.on_dynamodb_record(stream_arn=routing_stream_arn(), batch_size=100, maximum_batching_window_in_seconds=1)
def on_routing_change(event: Any) -> dict[str, int]:
    """The supervisor's live view: what the routing table's stream shows changed (queues' counts, agents), pushed
    to the supervisors watching (``agents.live``)."""
    from chalicelib.agents import live

    return {"delivered": live.on_stream(event.to_dict().get("Records", []))}


@app.schedule("rate(1 minute)")
def sweep_offers(event: Any) -> dict[str, Any]:
    """Safety net: expire stale offers, fire escalation steps past due, offer whatever waits; and queue the
    outbox jobs of messages recorded but never queued (the transactional outbox)."""
    from chalicelib.outbound import outbox

    requeued = outbox.requeue_pending(clock.now_iso())
    outcome = engine.sweep()
    return {"offers": len(outcome.offers), "outbox_requeued": requeued}
