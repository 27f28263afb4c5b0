"""The ``switchboard`` command for ops: routing configurations, dead letters, secrets, the post-deploy checklist.

    switchboard rules check FILE [--scenario NAME] [--against CURRENT_FILE]
    switchboard rules explain FILE --message JSON [--at ISO8601] [--customer JSON]
    switchboard dlq list|redrive [--queue NAME] [--stage STAGE]
    switchboard secrets status [--stage STAGE]
    switchboard secrets set NAME [--stage STAGE]      (the value from stdin, never from the command line)
    switchboard setup --stage STAGE --outputs FILE    (after `make deploy`: the post-deploy checklist)
    switchboard agents create AGENT_ID [--name NAME] [--queue Q] [--stage STAGE]
    switchboard explain-contact CONTACT_ID [--json] [--stage STAGE]   (why each offer went where it went)
    switchboard replay --from ISO8601 --to ISO8601 [--rules NEW.yaml] [--json] [--stage STAGE]
    switchboard simulate SCENARIO.yaml [--rules FILE] [--seed N] [--out DIR] [--policy NAME]   (the routing lab)

``--message`` is ``{"channel": ..., "text": ..., "subject": ..., "language": ...}`` (only ``channel`` is
required); ``--customer`` is ``{"tier": ..., "tags": [...]}``. Either may be ``@path`` to read a JSON file.
Exit status: 0 fine, 1 the configuration is invalid (or no such contact), 2 the command line is wrong, 3 AWS
could not be used (no credentials, endpoint unreachable, access denied, a queue, parameter or table not
found): one line on stderr says which, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from chalicelib import clock
from chalicelib.routing.config import CHANNELS, ConfigError, load_file
from chalicelib.routing.rules import ContactFacts, explain

_MESSAGE_KEYS = {"channel", "text", "subject", "language"}
_CUSTOMER_KEYS = {"tier", "tags"}


class UsageError(Exception):
    """A command-line argument that cannot be used (exit status 2)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default: the process's arguments); returns the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on bad usage; report the status instead
        return exc.code if isinstance(exc.code, int) else 2
    try:
        _use_stage(args)
        if args.group in _AWS_COMMANDS:
            _remember_resources()
        return int(args.run(args))
    except UsageError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as exc:
        print(f"switchboard: {_aws_problem(exc)}", file=sys.stderr)
        return 3


# --- AWS failures as one line ------------------------------------------------------------------------

_AWS_COMMANDS = ("dlq", "secrets", "agents", "setup", "explain-contact", "replay")
_touched = threading.local()  # the resource the last AWS request named, for "not found" and "access denied"
_RESOURCE_PARAMETERS = (("QueueName", "queue"), ("QueueUrl", "queue"), ("TableName", "table"), ("Name", "parameter"))
_NOT_FOUND = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "ParameterNotFound"}
_NOT_FOUND |= {"ResourceNotFoundException"}
_BAD_CREDENTIALS = {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch"}
_BAD_CREDENTIALS |= {"InvalidSignatureException", "ExpiredToken", "ExpiredTokenException", "AuthFailure"}
_ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}


def _remember_resources() -> None:
    """Note what each AWS request names (queue, table, parameter) so a failure can say which."""
    from chalicelib.store import aws

    for service in ("sqs", "ssm", "dynamodb"):
        aws.client(service).meta.events.register(
            "provide-client-params.*.*", _note_resource, unique_id="switchboard-cli-resource"
        )


def _note_resource(params: dict[str, Any], **_: Any) -> None:
    actions = params.get("TransactItems") or [{}]
    named = {**params, **next(iter(actions[0].values()), {})} if isinstance(actions[0], dict) else params
    _touched.value = next(
        (f"{kind} {_short(kind, str(named[key]))}" for key, kind in _RESOURCE_PARAMETERS if named.get(key)), None
    )


def _short(kind: str, name: str) -> str:
    return name.rsplit("/", 1)[-1] if kind == "queue" else name  # a queue URL ends with the queue's name


def _aws_problem(exc: BotoCoreError | ClientError) -> str:
    """One line naming what is wrong with the AWS side of a command, and what to check."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            "no AWS credentials: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or run "
            "`aws configure`"
        )
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError | ConnectionClosedError):
        url = exc.kwargs.get("endpoint_url", "?")
        hint = (
            "AWS_ENDPOINT_URL is set: is the local stack (make local) running?"
            if os.environ.get("AWS_ENDPOINT_URL")
            else "check the network and the region"
        )
        return f"cannot reach the AWS endpoint {url} ({hint})"
    if isinstance(exc, NoRegionError):
        return "no AWS region: set AWS_REGION or AWS_DEFAULT_REGION"
    if isinstance(exc, ClientError):
        return _client_problem(exc)
    return f"AWS request failed: {exc}"


def _client_problem(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", ""))
    embedded = re.search(r"<Code>([^<]*)</Code>.*?<Message>([^<]*)</Message>", message, re.DOTALL)
    if embedded:  # some endpoints (moto's IAM checks among them) put an XML error inside a JSON one
        code, message = embedded.group(1), embedded.group(2)
    resource = getattr(_touched, "value", None)
    where = f" {resource}" if resource else ""
    if code in _BAD_CREDENTIALS:
        return f"AWS refused the credentials ({code}): {message} (check AWS_PROFILE / AWS_ACCESS_KEY_ID)"
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in _ACCESS_DENIED or status == 403:
        return f"access denied: {exc.operation_name} on{where or ' AWS'}: {message}"
    if code in _NOT_FOUND:
        region = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("x-amz-region")
        region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        deployed = f"deployed in {region}" if region else "deployed"
        return f"not found:{where or ' ' + exc.operation_name}: is --stage right, and the stack {deployed}?"
    return f"AWS {exc.operation_name} failed ({code}): {message}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchboard", description="Switchboard tools for ops.")
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    rules = groups.add_parser("rules", help="check and explain a routing configuration (routing.yaml)")
    commands = rules.add_subparsers(dest="command", required=True, metavar="ACTION")

    check = commands.add_parser("check", help="validate a routing configuration file")
    check.add_argument("file", metavar="FILE")
    check.add_argument(
        "--scenario",
        metavar="NAME",
        help="also simulate this scenario with the current and these rules; warn on SL loss",
    )
    check.add_argument(
        "--against", metavar="FILE", help="the current rules to compare with (default: the shipped ones)"
    )
    check.set_defaults(run=_check)

    explained = commands.add_parser("explain", help="show which rule, queue, skills and SLA a message would get")
    explained.add_argument("file", metavar="FILE")
    explained.add_argument(
        "--message",
        required=True,
        metavar="JSON",
        help='{"channel": "email", "text": "...", "language": "es"} or @file',
    )
    explained.add_argument("--at", metavar="ISO8601", help="the moment to decide at (default: now; no zone means UTC)")
    explained.add_argument("--customer", metavar="JSON", help='{"tier": "vip", "tags": ["..."]} or @file')
    explained.set_defaults(run=_explain)

    _add_kb_commands(groups)

    dlq = groups.add_parser("dlq", help="see and redrive the dead-letter queues")
    dlq_commands = dlq.add_subparsers(dest="command", required=True, metavar="ACTION")
    listed = dlq_commands.add_parser("list", help="how many dead letters each queue has, and a look at them")
    listed.add_argument("--queue", metavar="NAME", help="one source queue (default: all)")
    _stage_option(listed)
    listed.set_defaults(run=_dlq_list)
    redriven = dlq_commands.add_parser("redrive", help="send dead letters back to their queue")
    redriven.add_argument("--queue", metavar="NAME", help="one source queue (default: all)")
    _stage_option(redriven)
    redriven.add_argument("--max", type=int, default=1000, metavar="N", help="at most N messages per queue")
    redriven.set_defaults(run=_dlq_redrive)

    secrets = groups.add_parser("secrets", help="see and set a deployed stage's secrets (SSM SecureString)")
    secret_commands = secrets.add_subparsers(dest="command", required=True, metavar="ACTION")
    status = secret_commands.add_parser("status", help="which secrets are set (values are never shown)")
    _stage_option(status)
    status.set_defaults(run=_secrets_status)
    setter = secret_commands.add_parser("set", help="set one secret; the value is read from stdin")
    setter.add_argument("name", metavar="NAME")
    _stage_option(setter)
    setter.set_defaults(run=_secrets_set)

    agents_group = groups.add_parser("agents", help="create an agent record (the first admin's, before the console)")
    agent_commands = agents_group.add_subparsers(dest="command", required=True, metavar="ACTION")
    created = agent_commands.add_parser("create", help="an agent the routing knows, for a Cognito user of that id")
    created.add_argument("agent_id", metavar="AGENT_ID", help="the user's custom:agent_id (or user name)")
    created.add_argument("--name", help="shown to supervisors (default: the id)")
    created.add_argument("--queue", action="append", metavar="QUEUE", help="a queue to work (repeatable)")
    _stage_option(created)
    created.set_defaults(run=_agents_create)

    explain_contact = groups.add_parser(
        "explain-contact", help="why each offer of a contact went where it went, and the contact's lifecycle"
    )
    explain_contact.add_argument("contact_id", metavar="CONTACT_ID", help="the contact (= conversation) id")
    explain_contact.add_argument("--json", action="store_true", help="the document GET /contacts/{id}/decisions gives")
    _stage_option(explain_contact)
    explain_contact.set_defaults(run=_explain_contact)

    replayed = groups.add_parser(
        "replay", help="run a period's stored contacts again with the rules in force and a candidate"
    )
    replayed.add_argument("--from", dest="start", required=True, metavar="ISO8601", help="first arrival (UTC)")
    replayed.add_argument("--to", dest="end", required=True, metavar="ISO8601", help="arrivals before this (UTC)")
    replayed.add_argument("--rules", metavar="NEW.yaml", help="a candidate routing configuration to compare")
    replayed.add_argument("--json", action="store_true", help="the comparison as JSON")
    _stage_option(replayed)
    replayed.set_defaults(run=_replay)

    setup = groups.add_parser("setup", help="after `make deploy`: what is left to do, with this deployment's URLs")
    setup.add_argument("--stage", metavar="STAGE", required=True)
    setup.add_argument("--outputs", metavar="FILE", required=True, help="cdk deploy --outputs-file")
    setup.set_defaults(run=_setup)

    simulate = groups.add_parser("simulate", help="run a scenario through the real router on a virtual clock")
    simulate.add_argument("scenario", metavar="SCENARIO", help="a scenario YAML file, or a standard scenario's name")
    simulate.add_argument("--rules", metavar="FILE", help="routing rules to use (default: the scenario's, or shipped)")
    simulate.add_argument("--seed", type=int, metavar="N", help="random seed (default: the scenario's)")
    simulate.add_argument("--out", metavar="DIR", help="where report.json, report.md and the plots go")
    simulate.add_argument(
        "--policy",
        choices=("switchboard", "classic", "longest-idle", "round-robin", "pooled"),
        default="switchboard",
        help="the router's own (switchboard), the order before the routing lab (classic), a baseline, or "
        "pooled: every agent given every skill and queue, the cross-trained pool Erlang C assumes",
    )
    simulate.set_defaults(run=_simulate)
    return parser


def _stage_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stage", metavar="STAGE", help="a deployed stage of .chalice/config.json (default: the environment's names)"
    )


def _sources(args: argparse.Namespace) -> list[str]:
    from chalicelib.store import dead_letters

    known = dead_letters.source_queues()
    if args.queue and args.queue not in known:
        raise UsageError(f"--queue: one of {', '.join(known)}")
    return [args.queue] if args.queue else known


def _dlq_list(args: argparse.Namespace) -> int:
    from chalicelib.store import dead_letters

    for source in _sources(args):
        print(f"{source}: {dead_letters.count(source)} dead letters")
        for letter in dead_letters.peek(source):
            group = f" group {letter.group}" if letter.group else ""
            print(
                f"  {letter.message_id}  {letter.kind}  sent {letter.sent_at}  received {letter.receive_count}x{group}"
            )
    return 0


def _dlq_redrive(args: argparse.Namespace) -> int:
    from chalicelib.store import dead_letters

    for source in _sources(args):
        print(f"{source}: {dead_letters.redrive(source, args.max)} moved back")
    return 0


def _use_stage(args: argparse.Namespace) -> None:
    from chalicelib import stages

    if getattr(args, "stage", None):
        try:
            stages.use(args.stage)
        except stages.UnknownStage as exc:
            raise UsageError(f"--stage: {exc}") from None


def _secrets_status(args: argparse.Namespace) -> int:
    from chalicelib import operate

    try:
        status = operate.secrets_status()
    except operate.SecretError as exc:
        raise UsageError(str(exc)) from None
    for name, present in status.items():
        print(f"{'set    ' if present else 'missing'}  {operate.secret_parameter(name)}")
    return 0


def _secrets_set(args: argparse.Namespace) -> int:
    from chalicelib import operate

    if sys.stdin.isatty():
        import getpass

        value = getpass.getpass(f"{args.name}: ")
    else:
        value = sys.stdin.read()
    try:
        parameter = operate.set_secret(args.name, value)
    except operate.SecretError as exc:
        raise UsageError(str(exc)) from None
    print(f"{parameter} set (SecureString); functions read it within 5 minutes")
    return 0


def _agents_create(args: argparse.Namespace) -> int:
    from chalicelib.agents import service as agents
    from chalicelib.errors import SwitchboardError

    document: dict[str, Any] = {"agent_id": args.agent_id, "name": args.name or args.agent_id}
    if args.queue:
        document["queues"] = args.queue
    try:
        agent = agents.create_agent(document)
    except SwitchboardError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 1
    print(f"agent {agent.agent_id} ({agent.name}) created, {agent.presence.value}")
    return 0


def _explain_contact(args: argparse.Namespace) -> int:
    """Every candidate the router looked at for each offer of the contact: where each ranked and on which
    key, why each other was skipped, who got it and what came of it. Reads the routing table (the local stack's
    with AWS_ENDPOINT_URL, a deployed stage's with --stage)."""
    from chalicelib.routing import records
    from chalicelib.store import routing as routing_store

    if routing_store.get_contact(args.contact_id) is None:
        print(f"switchboard: no contact {args.contact_id}", file=sys.stderr)
        return 1
    decisions = routing_store.decisions_of(args.contact_id)
    summaries = [records.summary(r) for r in routing_store.records_of(args.contact_id)]
    if args.json:
        print(json.dumps({"contact_id": args.contact_id, "decisions": decisions, "records": summaries}, indent=2))
        return 0
    print("\n".join(explain_lines(args.contact_id, decisions, summaries)))
    return 0


def explain_lines(contact_id: str, decisions: list[dict[str, Any]], summaries: list[dict[str, Any]]) -> list[str]:
    """``explain-contact`` as text: per arrival its lifecycle, per offer its decision."""
    lines: list[str] = []
    by_offer = {d["offer_id"]: d for d in decisions}
    for summary in summaries or [{"arrived_at": "?", "lifecycle": [], "offers": []}]:
        lines.append(
            f"contact {contact_id}: {summary.get('channel')} in {summary.get('queue')} "
            f"(rule {summary.get('rule')!r}), arrived {summary.get('arrived_at')}, now {summary.get('state')}"
        )
        for happened in summary["lifecycle"]:
            detail = " ".join(f"{k}={v}" for k, v in happened.items() if k not in ("kind", "at"))
            lines.append(f"  {happened['at']}  {happened['kind']:<15} {detail}".rstrip())
        if summary.get("sla_met") is not None:
            lines.append(f"  SLA {'met' if summary['sla_met'] else 'missed'} (deadline {summary.get('sla_deadline')})")
        for number, offer in enumerate(summary["offers"], start=1):
            lines.append(
                f"  offer {number} ({offer['offer_id']}) to {offer['agent_id']} at {offer['offered_at']}: "
                f"{offer['outcome'] or 'open'}"
            )
            decision = by_offer.pop(offer["offer_id"], None)
            lines += _decision_lines(decision, contact_id) if decision else ["    (no decision recorded)"]
    for decision in by_offer.values():  # an offer past the record's listed ones
        lines.append(f"  offer {decision['offer_id']} to {decision['agent_id']} at {decision['made_at']}")
        lines += _decision_lines(decision, contact_id)
    if not decisions:
        lines.append("  no decision recorded: the contact was never offered (or its records expired)")
    return lines


def _decision_lines(decision: dict[str, Any], contact_id: str) -> list[str]:
    if decision["chosen_for"] == "agent":
        head = (
            f"    {decision['agent_id']} was free and chose among {decision['ranked_total']} waiting contacts "
            f"(policy {decision['policy']}):"
        )
    else:
        head = f"    {decision['ranked_total']} agents could take it (policy {decision['policy']}):"
    lines = [head]
    chosen = decision["agent_id"] if decision["chosen_for"] == "contact" else contact_id
    for ranked in decision["ranked"]:
        key = ", ".join(f"{k}={v}" for k, v in ranked["key"].items())
        mark = "  <- chosen" if ranked["id"] == chosen else ""
        lines.append(f"      {ranked['rank']:>2}. {ranked['id']}  {key}{mark}")
    if decision["ranked_total"] > len(decision["ranked"]):
        lines.append(f"      ... and {decision['ranked_total'] - len(decision['ranked'])} more ranked")
    if decision["skipped_total"]:
        lines.append(f"    skipped {decision['skipped_total']}:")
        lines += [f"      {s['id']}: {s['reason']}" for s in decision["skipped"]]
        if decision["skipped_total"] > len(decision["skipped"]):
            lines.append(f"      ... and {decision['skipped_total'] - len(decision['skipped'])} more skipped")
    return lines


def _replay(args: argparse.Namespace) -> int:
    """Read the period's contact records (no scan: by day of arrival) and replay them through the simulator."""
    start, end = (clock.to_iso(_moment(value).astimezone(UTC)) for value in (args.start, args.end))
    if end <= start:
        raise UsageError("--to must be after --from")
    if args.rules:
        load_file(args.rules)  # an invalid candidate is reported like `rules check` (exit 1)
    from chalicelib.sim.replay import render

    document = replay_period(start, end, args.rules)
    print(json.dumps(document, indent=2) if args.json else "\n".join(render(document)))
    return 0


def replay_period(start: str, end: str, candidate: str | Path | None = None) -> dict[str, Any]:
    """Replay the stored contacts that arrived from ``start`` to ``end`` with the rules in force (the published
    override, else the shipped rules) and, if given, a candidate routing file; ``sim.replay.replay``'s document."""
    import tempfile

    from chalicelib.settings import get_settings
    from chalicelib.sim.replay import replay
    from chalicelib.store import conversations, parameters
    from chalicelib.store import routing as routing_store

    stored = list(routing_store.records_between(start, end))
    working = sorted({str(e.get("agent_id")) for r in stored for e in r.get("events", []) if e.get("agent_id")})
    agents = [a for a in (routing_store.get_agent(agent_id) for agent_id in working) if a is not None]
    parameter = get_settings().routing_config_parameter
    in_force = None
    if parameter:
        try:
            in_force = parameters.read_routing_config(parameter)
        except parameters.ParameterMissing:
            in_force = None  # nobody published an override: the shipped rules are in force

    def text_of(summary: dict[str, Any]) -> str:
        if not summary.get("message_id"):
            return ""
        return conversations.opening_text(summary["customer_id"], summary["arrived_at"], summary["message_id"])

    with tempfile.TemporaryDirectory(prefix="switchboard-rules-") as folder:
        current = None
        if in_force is not None:
            current = Path(folder) / "routing.yaml"
            current.write_text(in_force, encoding="utf-8")
        return replay(stored, agents, start, end, current=current, candidate=candidate, text_of=text_of)


def _setup(args: argparse.Namespace) -> int:
    from chalicelib import operate, stages

    try:
        outputs = operate.load_outputs(args.outputs, stages.prefix(args.stage))
    except (OSError, ValueError) as exc:
        raise UsageError(f"--outputs: {exc}") from None
    try:
        lines = operate.checklist(args.stage, outputs)
    except operate.SecretError as exc:
        raise UsageError(str(exc)) from None
    print("\n".join(lines))
    return 0


def _check(args: argparse.Namespace) -> int:
    config = load_file(args.file)
    print(f"{args.file}: OK ({len(config.queues)} queues, {len(config.rules)} rules)")
    if args.scenario or args.against:
        # The routing lab: warn (exit status stays 0) when the candidate loses SL on the scenario.
        from chalicelib.routing.config import default_config
        from chalicelib.sim.lab import compare
        from chalicelib.sim.scenario import ScenarioError

        current = load_file(args.against) if args.against else default_config()
        try:
            verdict = compare(current, config, args.scenario or (config.lab.scenario if config.lab else None))
        except (ScenarioError, ValueError) as exc:
            raise UsageError(f"--scenario: {exc}") from None
        print("\n".join(verdict.lines()))
    return 0


def _explain(args: argparse.Namespace) -> int:
    message = _json_object("--message", args.message, _MESSAGE_KEYS)
    customer = _json_object("--customer", args.customer, _CUSTOMER_KEYS) if args.customer else {}
    channel = message.get("channel")
    if channel not in CHANNELS:
        raise UsageError(f"--message: channel must be one of {', '.join(CHANNELS)}")
    tags = customer.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise UsageError("--customer: tags must be a list of strings")
    facts = ContactFacts.of(
        channel,
        _optional_str("--message", message, "text") or "",
        _optional_str("--message", message, "subject"),
        _optional_str("--message", message, "language"),
        _optional_str("--customer", customer, "tier"),
        tags,
    )
    config = load_file(args.file)
    print(explain(config, facts, _moment(args.at)), end="")
    return 0


def _json_object(option: str, value: str, allowed: set[str]) -> dict[str, Any]:
    if value.startswith("@"):
        try:
            value = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{option}: cannot read {value[1:]}: {exc.strerror}") from None
    try:
        document = json.loads(value)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{option}: not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise UsageError(f"{option}: must be a JSON object")
    unknown = sorted(set(document) - allowed)
    if unknown:
        raise UsageError(f"{option}: unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})")
    return document


def _optional_str(option: str, document: dict[str, Any], key: str) -> str | None:
    value = document.get(key)
    if value is not None and not isinstance(value, str):
        raise UsageError(f"{option}: {key} must be a string")
    return value or None


def _moment(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--at: not an ISO-8601 date and time: {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _simulate(args: argparse.Namespace) -> int:
    """Run a scenario; print the Markdown report and write it with its JSON and plots to ``--out``."""
    from chalicelib.sim import report
    from chalicelib.sim.scenario import ScenarioError, load_scenario, scenario_path
    from chalicelib.sim.simulator import simulate

    try:
        scenario, folder = load_scenario(scenario_path(args.scenario))
        result = simulate(scenario, folder, rules=args.rules, seed=args.seed, policy=args.policy)
    except ScenarioError as exc:
        print(exc, file=sys.stderr)
        return 1
    out = Path(args.out or f"simulations/{scenario.name}-{args.policy}")
    written = report.write(result, out)
    print((out / "report.md").read_text(encoding="utf-8"))
    print("wrote " + ", ".join(str(path) for path in written))
    return 0


# --- switchboard kb ----------------------------------------------------------------------------------


def _add_kb_commands(groups: Any) -> None:
    kb_group = groups.add_parser("kb", help="check and search the self-service knowledge base")
    kb_commands = kb_group.add_subparsers(dest="command", required=True, metavar="ACTION")
    checked = kb_commands.add_parser("check", help="validate a folder of articles (default: the shipped base)")
    checked.add_argument("folder", metavar="DIR", nargs="?")
    checked.set_defaults(run=_kb_check)
    searched = kb_commands.add_parser("search", help="rank a base's articles for a question, with their scores")
    searched.add_argument("question", metavar="QUESTION")
    searched.add_argument("--language", metavar="CODE", help="only this language's articles (en, de)")
    searched.add_argument("--channel", metavar="NAME", help="only articles offered on this channel")
    searched.add_argument("--dir", metavar="DIR", help="the base to search (default: the shipped base)")
    searched.add_argument("--limit", type=int, default=5, metavar="N")
    searched.set_defaults(run=_kb_search)


def _kb_check(args: argparse.Namespace) -> int:
    from chalicelib import kb

    folder = args.folder or str(kb.DEFAULT_DIR)
    base = kb.load_base(folder)
    languages = ", ".join(sorted({a.language for a in base.articles}))
    print(f"{folder}: OK ({len(base.articles)} articles: {languages}; min_coverage {base.min_coverage})")
    return 0


def _kb_search(args: argparse.Namespace) -> int:
    """One line per hit: BM25 score, article id, coverage, title; and whether it would answer by itself."""
    from chalicelib import kb
    from chalicelib.kb import published

    index = kb.build_index(kb.load_base(args.dir)) if args.dir else published.default_index()
    hits = index.search(args.question, language=args.language, channel=args.channel, limit=args.limit)
    if not hits:
        print("no article matches")
        return 0
    for hit in hits:
        verdict = "answers" if hit.coverage >= index.min_coverage else "below min_coverage"
        print(f"{hit.score:7.3f}  {hit.article_id:<24} coverage {hit.coverage:.2f} ({verdict})  {hit.title}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
