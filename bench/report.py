"""RESULTS.md from results.json: a header about the machine, then one table per section with its sentence."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.sections import SECTIONS


def table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.6f}".rstrip("0").rstrip(".") if abs(value) < 1 else f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).replace("|", "\\|")


def _usd(value: float) -> str:
    return f"${value:.6f}" if value < 0.01 else f"${value:.4f}"


def generic(data: dict[str, Any]) -> str:
    rows = data.get("rows") or []
    if not rows:
        return "(no rows)"
    headers: list[str] = []
    for row in rows:
        headers += [k for k in row if k not in headers and not isinstance(row[k], dict | list)]
    return table(headers, [[row.get(h, "") for h in headers] for row in rows])


FLOW_ORDER = (
    "first message",
    "accept",
    "offer timer",
    "follow-up",
    "reply",
    "status callback",
    "close",
    "first message, queued (queue position)",
    "agent available, offered",
    "sweep (idle, one run)",
)


def _flow_order(row: dict[str, Any]) -> tuple[int, str]:
    flow = row["flow"]
    return (FLOW_ORDER.index(flow) if flow in FLOW_ORDER else len(FLOW_ORDER), row["channel"])


def render_cost(data: dict[str, Any]) -> str:
    flows = table(
        ["flow", "channel", "runs", "AWS requests", "DynamoDB requests", "WRU", "RRU", "$ per 1,000"],
        [
            [
                r["flow"],
                r["channel"],
                r["runs"],
                r["aws_requests"],
                r["dynamodb_requests"],
                r["wru"],
                r["rru"],
                _usd(r["usd"]["total"] * 1000),
            ]
            for r in sorted(data["flows"], key=_flow_order)
        ],
    )
    services = ["dynamodb", "sqs", "api_gateway", "lambda", "xray", "cloudwatch_logs"]
    conversations = table(
        ["conversation", "AWS requests", "WRU", "RRU", "$ per conversation", "$ per 1,000 inbound", *services],
        [
            [
                c["conversation"],
                c["per_conversation"]["aws_requests"],
                c["per_conversation"]["wru"],
                c["per_conversation"]["rru"],
                _usd(c["per_conversation"]["usd"]["total"]),
                _usd(c["per_1000_inbound"]["usd"]["total"]),
                *[_usd(c["per_1000_inbound"]["usd"][s]) for s in services],
            ]
            for c in data["conversations"]
        ],
    )
    fixed = data["fixed_monthly"]
    assumptions = data["assumptions"]
    return "\n\n".join(
        [
            f"DynamoDB units: {data['units_source']}. Dollars: the app's own requests as counted, plus what the "
            "services bill around them, modelled (API Gateway per request and WebSocket message, Lambda per "
            f"invocation at {assumptions['lambda_memory_mb']} MB and an assumed {assumptions['lambda_duration_ms']} "
            "ms, the Lambda poller's receive and delete per SQS record, one X-Ray trace per entry request, log "
            "bytes as written plus Lambda's own lines); assumptions in bench/prices.json.",
            "Per flow (mean of the measured runs; `$ per 1,000` is per 1,000 runs of that flow):",
            flows,
            "A typical conversation (counts per flow: "
            + ", ".join(f"{name} x{n}" for name, n in data["typical_conversation"].items())
            + "; status callbacks only where the channel has them, SMS; one WebSocket connection-minute) and per "
            "1,000 inbound messages (250 conversations), with the per-1,000 split by service:",
            conversations,
            f"Fixed, whatever the traffic: the sweeper every minute about {_usd(fixed['sweep_usd_per_month'] or 0)} "
            f"a month; Lambda's idle polling of the three queues about {_usd(fixed['idle_sqs_polling_usd_per_month'])}"
            " a month.",
        ]
    )


def render_routing_reads(data: dict[str, Any]) -> str:
    rows = sorted(data["rows"], key=lambda r: (r["decision"], r["n"]))
    body = table(
        ["decision", "N agents = N waiting", "read requests", "items read", "RRU", "all DynamoDB requests", "outcome"],
        [
            [
                r["decision"],
                f"{r['n']:,}",
                r["read_requests"],
                r["items_read"],
                r["rru"],
                r["dynamodb_requests"],
                r["outcome"],
            ]
            for r in rows
        ],
    )
    verdict = "; ".join(
        f"{decision}: {'flat' if flat else 'GROWS'} from N = 100 on (at most {data['max_read_requests'][decision]} "
        f"read requests, {data['max_items_read'][decision]} items)"
        for decision, flat in data["flat"].items()
    )
    loads = ", ".join(f"{r['n']:,}: {r['load_seconds']} s" for r in rows if r["decision"] == "offer a new contact")
    return f"{body}\n\n{verdict}. Bulk-loading the table into moto took {loads}."


def render_cold_import(data: dict[str, Any]) -> str:
    body = table(
        [
            "function",
            "runs",
            "import ms (median)",
            "import + first client ms",
            "ratio to bare (median per round)",
            "with first client",
            "same, CPU time",
            "modules",
            "peak RSS MB",
        ],
        [
            [
                r["function"],
                r["runs"],
                r["import_ms"],
                r["import_and_first_client_ms"],
                r["ratio_to_bare"],
                r.get("ratio_to_bare_with_client", "?"),
                r.get("cpu_ratio_to_bare_with_client", "?"),
                r["modules"],
                r["peak_rss_mb"],
            ]
            for r in data["rows"]
        ],
    )
    note = (
        f"Pooled over all {data.get('pooled_samples', '?')} function-rounds, the median ratio to the bare app is "
        f"{data.get('pooled_ratio_to_bare', '?')} for the import alone and "
        f"**{data.get('pooled_ratio_to_bare_with_client', '?')}** for the import and the first client (the "
        f"target's comparison; {data.get('pooled_cpu_ratio_to_bare_with_client', '?')} in CPU time), "
        f"Python {data['python']}. The package is the one the stack ships (compiled bytecode, no local stack); "
        f"the bare app is `chalice package`'s, without bytecode."
    )
    return f"{body}\n\n{note}"


def render_time_to_offer(data: dict[str, Any]) -> str:
    return table(
        ["contacts", "p50 ms", "p99 ms", "mean ms", "max ms"],
        [[data["contacts"], data["p50_ms"], data["p99_ms"], data["mean_ms"], data["max_ms"]]],
    )


def render_simulator(data: dict[str, Any]) -> str:
    """The issue's routing targets first (required, measured, holds), then every scenario, queue and policy."""
    parts = []
    if data.get("targets"):
        marks = {True: "holds", False: "**missed**", None: "not measured"}
        parts.append(
            table(
                ["target", "scenario", "required", "measured", "result"],
                [
                    [t["target"], t["scenario"], t["required"], t["measured"], marks[t["holds"]]]
                    for t in data["targets"]
                ],
            )
        )
    parts.append(generic(data))
    return "\n\n".join(parts)


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "simulator": render_simulator,
    "cost": render_cost,
    "routing_reads": render_routing_reads,
    "cold_import": render_cold_import,
    "time_to_offer": render_time_to_offer,
}


def render(results: dict[str, Any]) -> str:
    machine = results["machine"]
    parts = [
        "# Switchboard benchmarks",
        "Written by `make bench` (`python -m bench`); the numbers are also in `bench/results.json`. "
        "See bench/README.md for what each section does.",
        f"Machine: {machine['nproc']} cores (`nproc`), Python {machine['python']}, {machine['platform']}; "
        f"run {machine['date']}, commit `{machine['commit']}`" + (" (quick run)" if results.get("quick") else "") + ".",
    ]
    for name, section in SECTIONS.items():
        entry = results["sections"].get(name)
        parts.append(f"## {section.title}")
        parts.append(section.summary)
        if entry is None:
            parts.append("Not run.")
        elif entry["status"] == "ok":
            parts.append(RENDERERS.get(name, generic)(entry["data"]))
            parts.append(f"(section took {entry['seconds']} s)")
        elif entry["status"] == "not available":
            parts.append(f"**Not available**: {entry['reason']}.")
        elif entry["status"] == "skipped":
            parts.append(f"Skipped: {entry['reason']}.")
        else:
            parts.append(f"**Failed**: `{entry['error']}`")
    return "\n\n".join(parts) + "\n"
