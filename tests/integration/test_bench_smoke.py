"""The benchmark's CI smoke: ``python -m bench --quick`` runs and writes every section with numbers.

The full run is ``make bench`` (minutes); this one uses small sizes and skips the local-stack section, and
asserts on what ran: counts that must hold whatever the machine (requests per flow, reads per decision), never
timings.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.integration.test_request_budget import REQUESTS_PER_MESSAGE

ROOT = Path(__file__).resolve().parents[2]


def test_quick_bench_writes_every_section_with_numbers(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    sections = results["sections"]
    assert set(sections) == {"cost", "routing_reads", "cold_import", "time_to_offer", "simulator", "kb_retrieval"}
    assert results["machine"]["nproc"] >= 1 and results["machine"]["commit"]

    cost = sections["cost"]
    assert cost["status"] == "ok", cost
    flows = {(row["flow"], row["channel"]): row for row in cost["data"]["flows"]}
    for channel in ("webchat", "sms", "email"):
        for flow in ("first message", "follow-up", "accept", "reply", "close"):
            row = flows[(flow, channel)]
            assert row["aws_requests"] > 0 and row["usd"]["total"] > 0, (flow, channel, row)
    first = flows[("first message", "webchat")]
    # One transaction, billed twice per item: the router's contact created offered with the agent's reservation;
    # the webhook's writes (identity, profile, conversation, claim, message) are plain, conditional or idempotent.
    assert first["by_operation"]["dynamodb.TransactWriteItems"] == 1 and first["wru"] >= 6
    assert first["by_operation"]["dynamodb.PutItem"] >= 1
    assert first["aws_requests"] <= REQUESTS_PER_MESSAGE, "the request budget of test_request_budget.py"
    assert flows[("status callback", "sms")]["aws_requests"] > 0
    assert flows[("first message, queued (queue position)", "webchat")]["by_operation"]["sqs.SendMessage"] >= 1
    # A supervisor watching: the stream function runs once for each flow that changes a queue's counts or an agent
    # (first message, accept, close), pushes to her, and is counted in the conversation, not in the message's budget.
    live = flows[("supervisor live view (one watching)", "sms")]
    assert live["lambda_invocations"] == {"on_routing_change": 1} and live["websocket_messages_out"] == 1, live
    assert cost["data"]["live_view_batches_per_conversation"] == {"webchat": 3, "sms": 3, "email": 3}
    mixed = cost["data"]["conversations"][-1]
    assert mixed["conversation"].startswith("mixed") and mixed["per_1000_inbound"]["usd"]["total"] > 0

    reads = sections["routing_reads"]
    assert reads["status"] == "ok", reads
    assert {row["n"] for row in reads["data"]["rows"]} == {10, 100}
    assert all(reads["data"]["flat"].values()), reads["data"]["rows"]
    assert all(0 < row["read_requests"] <= 5 for row in reads["data"]["rows"]), reads["data"]["rows"]

    retrieval = sections["kb_retrieval"]
    assert retrieval["status"] == "ok", retrieval
    (overall,) = [row for row in retrieval["data"]["rows"] if row["language"] == "all"]
    assert overall["top1_accuracy"] >= 0.85 and overall["unanswerable_answered"] <= 0.05, overall

    cold = sections["cold_import"]
    assert cold["status"] == "ok", cold
    [bare, api] = cold["data"]["rows"]
    assert bare["import_ms"] > 0 and api["import_ms"] > 0 and api["peak_rss_mb"] > 0
    assert api["modules"] > bare["modules"]

    assert sections["time_to_offer"]["status"] == "skipped"
    assert sections["simulator"]["status"] in ("ok", "not available")
    if sections["simulator"]["status"] == "ok":
        assert sections["simulator"]["data"]["rows"]

    report = (tmp_path / "RESULTS.md").read_text()
    assert "## Cost per flow and per conversation" in report and "| first message | webchat |" in report
