"""``chalicelib/store/`` is the only persistence layer: nothing else talks to DynamoDB, SQS, SSM, SNS or API Gateway.

Every module of ``chalicelib`` outside ``store/`` is parsed (``ast``, nothing is imported) and must not:

- import ``boto3`` or ``botocore`` (their clients, types or exceptions),
- reach the raw clients (``chalicelib.store.aws``: ``aws.client(...)``, ``aws.parameters()``),
- use the DynamoDB wire-format helpers of ``chalicelib.store.dynamo`` (only its ``TransactionConflict``, the
  error every conditional write raises, may be caught elsewhere),
- build AWS requests itself (``TableName=``, ``QueueUrl=``, ``UpdateExpression``... as keywords or dict keys).

The calling modules say what they want in the domain's words (``outbound.claim``, ``connections.post``,
``parameters.routing_override``); the store knows tables, keys, expressions and queues. That keeps the routing
engine and the outbox runnable against other adapters, and keeps one place to count and fault AWS calls.

Left out on purpose: ``chalicelib/local/`` (the local stack creates the tables, queues and parameters it emulates)
and the operators' tooling (``cli.py``, ``operate.py``: AWS errors and SSM paging shown to a person at a terminal).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHALICELIB = ROOT / "chalicelib"
OUTSIDE = ("store", "local")  # packages under chalicelib that are allowed AWS
TOOLING = {"cli.py", "operate.py"}  # the operators' command line, run at a terminal

# The modules that must keep some AWS access, each with the reason; anything else found is a failure.
ALLOWED: dict[str, tuple[str, str]] = {
    "outbound/ses.py": (
        "SES is the e-mail channel's provider, as Twilio's HTTP API is for SMS: sending through it is a provider "
        "call (a sender beside twilio.py and meta.py), not something we keep",
        "sesv2",
    ),
}

_AWS_PACKAGES = ("boto3", "botocore")
_RAW_MODULES = ("chalicelib.store.aws",)
_DYNAMO = "chalicelib.store.dynamo"
_DYNAMO_SHARED = {"TransactionConflict"}
# Request parameters of the DynamoDB, SQS, SSM, SNS and API Gateway management APIs.
_REQUEST_PARAMETERS = {
    "TableName",
    "IndexName",
    "KeyConditionExpression",
    "FilterExpression",
    "UpdateExpression",
    "ConditionExpression",
    "ExpressionAttributeValues",
    "ExpressionAttributeNames",
    "ProjectionExpression",
    "ExclusiveStartKey",
    "TransactItems",
    "RequestItems",
    "QueueUrl",
    "QueueName",
    "ReceiptHandle",
    "MessageBody",
    "TopicArn",
    "ConnectionId",
}


def violations(source: str) -> list[str]:
    """Every way ``source`` reaches AWS or the store's internals, as ``LINE: what``."""
    tree = ast.parse(source)
    found: list[str] = []
    raw_names: set[str] = set()  # local names bound to chalicelib.store.aws
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in _AWS_PACKAGES:
                    found.append(f"{node.lineno}: imports {alias.name}")
                if alias.name in _RAW_MODULES or alias.name == _DYNAMO:
                    found.append(f"{node.lineno}: imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in _AWS_PACKAGES:
                found.append(f"{node.lineno}: imports from {node.module}")
            for alias in node.names:
                qualified = f"{node.module}.{alias.name}"
                if qualified in _RAW_MODULES or qualified == _DYNAMO:
                    found.append(f"{node.lineno}: imports {qualified}")
                    raw_names.add(alias.asname or alias.name)
                if node.module == _DYNAMO and alias.name not in _DYNAMO_SHARED:
                    found.append(f"{node.lineno}: imports {alias.name} from {_DYNAMO}")
        elif isinstance(node, ast.Call):
            function = node.func
            if isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name):
                owner = function.value.id
                if owner in raw_names or owner in ("aws", "boto3") or owner in _AWS_PACKAGES:
                    found.append(f"{node.lineno}: calls {owner}.{function.attr}(...)")
            for keyword in node.keywords:
                if keyword.arg in _REQUEST_PARAMETERS:
                    found.append(f"{node.lineno}: builds an AWS request ({keyword.arg}=)")
        elif isinstance(node, ast.Dict):
            for item in node.keys:
                if isinstance(item, ast.Constant) and item.value in _REQUEST_PARAMETERS:
                    found.append(f"{node.lineno}: builds an AWS request ({item.value!r})")
    return sorted(set(found), key=lambda line: int(line.split(":")[0]))


def _modules() -> list[Path]:
    return sorted(
        path
        for path in CHALICELIB.rglob("*.py")
        if path.relative_to(CHALICELIB).parts[0] not in OUTSIDE and str(path.relative_to(CHALICELIB)) not in TOOLING
    )


def test_no_module_outside_the_store_talks_to_aws() -> None:
    found = {}
    for path in _modules():
        name = str(path.relative_to(CHALICELIB))
        problems = violations(path.read_text(encoding="utf-8"))
        if problems and name not in ALLOWED:
            found[name] = problems
    assert not found, "persistence outside chalicelib/store/:\n" + "\n".join(
        f"chalicelib/{name}:{line}" for name, lines in found.items() for line in lines
    )


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_each_exception_is_still_needed_and_only_for_its_service(name: str) -> None:
    """An allowed module that no longer needs AWS leaves the list; one that starts on another service fails."""
    path = CHALICELIB / name
    problems = violations(path.read_text(encoding="utf-8"))
    assert problems, f"chalicelib/{name} no longer reaches AWS: take it off ALLOWED"
    service = ALLOWED[name][1]
    clients = [c for c in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if _is_client_call(c)]
    assert clients, f"chalicelib/{name} is allowed {service} but makes no client"
    for call in clients:
        assert isinstance(call, ast.Call)
        named = call.args[0] if call.args else None
        assert isinstance(named, ast.Constant) and named.value == service, (
            f"chalicelib/{name}:{call.lineno} makes a client other than {service}"
        )


def _is_client_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "client"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in ("aws", "boto3")
    )


def test_the_walk_covers_the_modules_that_used_to_reach_aws() -> None:
    names = {str(p.relative_to(CHALICELIB)) for p in _modules()}
    for expected in (
        "outbound/outbox.py",
        "outbound/destinations.py",
        "agents/work.py",
        "routing/engine.py",
        "channels/ses.py",
        "notify/push.py",
        "settings.py",
    ):
        assert expected in names
    assert not any(n.startswith(("store/", "local/")) for n in names)
    assert any(n.startswith("routing/config") for n in names)


@pytest.mark.parametrize(
    ("source", "what"),
    [
        ("import boto3\n", "imports boto3"),
        ("from botocore.exceptions import ClientError\n", "imports from botocore.exceptions"),
        ("from chalicelib.store import aws\n", "imports chalicelib.store.aws"),
        ("from chalicelib.store import aws as clients\nclients.client('sqs')\n", "calls clients.client(...)"),
        ("def f():\n    from chalicelib.store import aws\n    aws.parameters()\n", "calls aws.parameters(...)"),
        ("from chalicelib.store.dynamo import to_item\n", "imports to_item from chalicelib.store.dynamo"),
        ("x = {'Put': {'TableName': 't'}}\n", "builds an AWS request ('TableName')"),
        ("client.send_message(QueueUrl=u, MessageBody=b)\n", "builds an AWS request (QueueUrl=)"),
    ],
)
def test_the_check_sees_each_way_in(source: str, what: str) -> None:
    assert any(what in line for line in violations(source))


def test_the_check_lets_the_stores_words_through() -> None:
    source = (
        "from chalicelib.store import outbound, queue\n"
        "from chalicelib.store.dynamo import TransactionConflict\n"
        "outbound.claim(key, now)\nqueue.publish(event)\n"
    )
    assert violations(source) == []
