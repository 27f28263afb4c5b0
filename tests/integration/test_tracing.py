"""X-Ray costs nothing in an invocation it does not trace, and a traced one still records its subsegments.

Each case runs in a fresh interpreter, as a Lambda container would (``LAMBDA_TASK_ROOT``, the function name,
Lambda's per-invocation trace header in ``_X_AMZN_TRACE_ID``), against moto: the sweep's scheduled handler is
called with a Lambda context, through the app's middleware. The X-Ray SDK sends subsegments over UDP to the
daemon at ``AWS_XRAY_DAEMON_ADDRESS``; here that is a socket of the test's own process on 127.0.0.1, so what a
traced invocation would send to X-Ray is read back, and nothing leaves the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TRACE_ROOT = "1-67891233-abcdef012345678912345678"
SAMPLED = f"Root={TRACE_ROOT};Parent=53995c3f42cd8ad8;Sampled=1"
NOT_SAMPLED = f"Root={TRACE_ROOT};Parent=53995c3f42cd8ad8;Sampled=0"
# What PassThrough functions get when nothing upstream sampled the request: the root id only.
PASSED_THROUGH = f"Root={TRACE_ROOT};Lineage=a87bd80c:0"

INVOCATION = r"""
import json, os, socket, sys

daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
daemon.bind(("127.0.0.1", 0))
daemon.settimeout(0.5)
os.environ["AWS_XRAY_DAEMON_ADDRESS"] = "127.0.0.1:%d" % daemon.getsockname()[1]

from moto import mock_aws

with mock_aws():
    from chalicelib.store.resources import create_all

    create_all()
    import app

    imported_with_sdk = "aws_xray_sdk" in sys.modules
    from chalicelib.store import aws

    trace_headers = []  # the X-Amzn-Trace-Id botocore sends on each AWS request (SQS keeps it as AWSTraceHeader)
    for service in ("dynamodb", "sqs"):
        aws.client(service).meta.events.register_first(
            "before-send", lambda request, **_: trace_headers.append(request.headers.get("X-Amzn-Trace-Id"))
        )

    class Context:
        function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        memory_limit_in_mb = 512
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + function_name
        aws_request_id = "6f1cf5a4-0b1e-4c55-9d3b-8a4e4b1a7c11"

        @staticmethod
        def get_remaining_time_in_millis():
            return 30000

    tick = {
        "version": "0", "id": "cdc73f9d-aea9-11e3-9d5a-835b769c0d9c", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-12-02T03:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/switchboard-sweep"], "detail": {},
    }
    answer = app.sweep_offers(tick, Context())
    if len(sys.argv) > 1:  # a provider's API called from inside the traced invocation, its path holding a secret
        import requests
        from aws_xray_sdk.core import xray_recorder

        with xray_recorder.in_subsegment("provider call"):
            try:
                requests.get(sys.argv[1], timeout=0.2)
            except requests.RequestException:
                pass

documents = []
while True:
    try:
        datagram, _ = daemon.recvfrom(65536)
    except socket.timeout:
        break
    header, _, body = datagram.decode().partition("\n")
    documents.append(json.loads(body))
print("RESULT " + json.dumps({
    "answer": answer,
    "imported_with_sdk": imported_with_sdk,
    "sdk_loaded": "aws_xray_sdk" in sys.modules,
    "documents": documents,
    "trace_headers": [h.decode() if isinstance(h, bytes) else h for h in trace_headers],
}))
"""


def invoke_sweep(trace_header: str | None, percent: str = "5", *args: str) -> dict[str, Any]:
    """The sweep's handler, invoked once in a fresh interpreter set up as Lambda sets up a container."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "POWERTOOLS_", "SWITCHBOARD_", "_X_AMZN")) and key != "LAMBDA_TASK_ROOT"
    }
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "LAMBDA_TASK_ROOT": str(ROOT),
            "AWS_LAMBDA_FUNCTION_NAME": "switchboard-test-sweep_offers",
            "SWITCHBOARD_TRACE_PERCENT": percent,
        }
    )
    if trace_header is not None:
        env["_X_AMZN_TRACE_ID"] = trace_header
    done = subprocess.run(
        [sys.executable, "-c", INVOCATION, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    [line] = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    return dict(json.loads(line.removeprefix("RESULT ")))


def test_an_invocation_that_is_not_sampled_never_loads_the_xray_sdk() -> None:
    for header in (NOT_SAMPLED, PASSED_THROUGH, None):
        run = invoke_sweep(header)
        assert run["answer"] == {"offers": 0, "outbox_requeued": 0}
        assert not run["imported_with_sdk"], "importing app loads aws_xray_sdk"
        assert not run["sdk_loaded"], f"an invocation with trace header {header!r} loaded aws_xray_sdk"
        assert run["documents"] == []


def test_a_stage_that_traces_nothing_ignores_a_sampled_header() -> None:
    """A caller can send its own X-Amzn-Trace-Id with Sampled=1; a stage set to 0 % still loads nothing."""
    run = invoke_sweep(SAMPLED, "0")
    assert not run["sdk_loaded"]
    assert run["documents"] == []
    # Nor is the caller's decision carried on: botocore sends the invocation's trace header with every AWS
    # request, and a queue's PassThrough function would be traced for a message queued with Sampled=1.
    assert run["trace_headers"], "the sweep made no AWS request"
    assert all(h and h.endswith(";Sampled=0") for h in run["trace_headers"]), run["trace_headers"]


def test_a_sampled_invocation_records_the_handler_and_its_aws_calls() -> None:
    run = invoke_sweep(SAMPLED)
    assert run["answer"] == {"offers": 0, "outbox_requeued": 0}
    assert not run["imported_with_sdk"]
    documents = run["documents"]
    assert documents, "nothing sent to the X-Ray daemon"
    assert {d["trace_id"] for d in documents} == {TRACE_ROOT}
    handler = [d for d in documents if d["name"].startswith("## ")]
    assert len(handler) == 1, [d["name"] for d in documents]
    assert handler[0]["annotations"]["Service"] == "switchboard"
    assert "metadata" not in handler[0], "the handler's response is not captured"
    dynamodb = [d for d in documents if d.get("namespace") == "aws" and d["name"] == "dynamodb"]
    assert dynamodb, "boto3 calls are not traced"
    assert {d["parent_id"] for d in dynamodb} == {handler[0]["id"]}
    assert {d["aws"]["operation"] for d in dynamodb} == {"Query"}
    assert {d["aws"]["table_name"] for d in dynamodb} == {"switchboard-data", "switchboard-routing"}
    assert run["trace_headers"] and all("Sampled=1" in h for h in run["trace_headers"]), "the queues follow"


def test_provider_calls_are_not_traced_with_their_urls() -> None:
    """Telegram's Bot API takes the bot's token in the path: an HTTP subsegment would record it in X-Ray."""
    secret = "bot123456:AAE-not-a-real-token"
    run = invoke_sweep(SAMPLED, "5", f"http://127.0.0.1:9/{secret}/sendMessage")
    documents = run["documents"]
    assert [d for d in documents if d["name"] == "provider call"], "the probe's own subsegment was not sent"
    assert secret not in json.dumps(documents)


def test_a_broken_trace_setting_never_breaks_an_invocation() -> None:
    run = invoke_sweep(SAMPLED, "five")
    assert run["answer"] == {"offers": 0, "outbox_requeued": 0}
    assert not run["sdk_loaded"]
