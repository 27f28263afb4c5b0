"""RESULTS.md from results.json: a header about the machine, then one table per section with its sentence."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
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


def _traced(assumptions: dict[str, Any]) -> str:
    """The traced shares the cost model used (``chalicelib.stages.traced_fractions`` of prod)."""
    traced = assumptions.get("xray_traced_fraction")
    if not isinstance(traced, dict):
        return f"{traced:.0%} of them" if isinstance(traced, (int, float)) else "as bench/prices.json says"
    return (
        f"{traced['rest']:.0%} of REST requests, {traced['direct']:.0%} of WebSocket messages and schedule runs; "
        "SWITCHBOARD_TRACE_PERCENT in .chalice/config.json"
    )


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
    services = ["dynamodb", "sqs", "api_gateway", "waf", "lambda", "xray", "cloudwatch_logs"]
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
                *[_usd(c["per_1000_inbound"]["usd"].get(s, 0.0)) for s in services],
            ]
            for c in data["conversations"]
        ],
    )
    fixed = data["fixed_monthly"]
    assumptions = data["assumptions"]
    widget = data.get("widget") or {}
    widget_line = (
        f"The widget, per 1,000 web-chat messages with its panel open {widget['open_minutes_per_conversation']} "
        f"minutes a conversation: polling every 2 s ({widget['polls_per_conversation_before']:.0f} reads) cost "
        f"{_usd(widget['usd_per_1000_webchat_messages_before'])}; pushed on its WebSocket (2 connections, each "
        f"with one catch-up read, its connection minutes, and the pushes of the replies and the close) "
        f"{_usd(widget['usd_per_1000_webchat_messages_after'])}, included in the web-chat row above."
        if widget
        else ""
    )
    return "\n\n".join(
        [
            f"DynamoDB units: {data['units_source']}. Dollars: the app's own requests as counted, plus what the "
            "services bill around them, modelled (API Gateway per request and WebSocket message, WAF per REST "
            f"request, Lambda per invocation at {assumptions['lambda_memory_mb']} MB and an assumed "
            f"{assumptions['lambda_duration_ms']} ms, the Lambda poller's receive and delete per SQS record, "
            "one X-Ray trace per entry request recorded at the prod stage's sampling "
            f"({_traced(assumptions)}), log bytes as written plus Lambda's own lines at the prod stage's "
            f"SystemLogLevel, {assumptions.get('lambda_system_log_level', 'INFO')}); assumptions in "
            "bench/prices.json.",
            "Per flow (mean of the measured runs; `$ per 1,000` is per 1,000 runs of that flow):",
            flows,
            "A typical conversation (counts per flow: "
            + ", ".join(f"{name} x{n}" for name, n in data["typical_conversation"].items())
            + "; status callbacks only where the channel has them, SMS; "
            + _live_view(data.get("live_view_batches_per_conversation"))
            + "one WebSocket connection-minute) and per 1,000 inbound messages (250 conversations), with the "
            "per-1,000 split by service:",
            conversations,
            *_front_door(data.get("front_door")),
            f"Fixed, whatever the traffic: the sweeper every minute about {_usd(fixed['sweep_usd_per_month'] or 0)} "
            f"a month; Lambda's idle polling of the three queues about {_usd(fixed['idle_sqs_polling_usd_per_month'])}"
            " a month.",
            *([widget_line] if widget_line else []),
        ]
    )


def _live_view(batches: dict[str, float] | None) -> str:
    """The supervisor's live view in the typical conversation: the stream batches its flows gave."""
    if not batches:
        return ""
    counts = ", ".join(f"{channel} {n:g}" for channel, n in batches.items())
    return f"a supervisor watching the live view, on_routing_change batches per conversation {counts}; "


def _front_door(rows: list[dict[str, Any]] | None) -> list[str]:
    """The front-door comparison: the typical conversation's HTTP requests priced at each way in."""
    if not rows:
        return []
    counts, doors = rows[0], rows[1:]
    return [
        "The front door: per 1,000 inbound messages the typical conversation makes "
        f"{counts['requests_per_1000_inbound']:,} HTTP requests, {counts['webhooks_per_1000_inbound']:,} of them "
        'providers\' webhooks. What they cost at each way in (request fees only; README, "The front door", says '
        "which one ships and why):",
        table(
            ["front door", "$ per 1,000 inbound", "saving vs REST for everything", "what it keeps and loses"],
            [
                [d["front_door"], _usd(d["usd_per_1000_inbound"]), _usd(d["saving_vs_rest"]), d["protections"]]
                for d in doors
            ],
        ),
    ]


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


BASELINE_FILE = Path(__file__).with_name("baseline.json")


def _mixed_per_1000(results: dict[str, Any]) -> dict[str, float] | None:
    entry = results["sections"].get("cost")
    if not entry or entry["status"] != "ok":
        return None
    mixed = [c for c in entry["data"]["conversations"] if c["conversation"].startswith("mixed")]
    return dict(mixed[0]["per_1000_inbound"]["usd"]) if mixed else None


def _cold_ratio(results: dict[str, Any]) -> float | None:
    entry = results["sections"].get("cold_import")
    if not entry or entry["status"] != "ok":
        return None
    data = entry["data"]
    value = data.get("pooled_ratio_to_bare_with_client", data.get("pooled_ratio_to_bare"))
    return float(value) if isinstance(value, int | float) else None


def _ships_tooling(results: dict[str, Any]) -> bool | None:
    entry = results["sections"].get("cold_import")
    if not entry or entry["status"] != "ok" or "ships_tooling" not in entry["data"]:
        return None
    return bool(entry["data"]["ships_tooling"])


def before_after(results: dict[str, Any]) -> str:
    """The cost and cold-start targets: the numbers before the work on them (bench/baseline.json), now, and whether
    each target holds."""
    baseline = json.loads(BASELINE_FILE.read_text())
    targets = baseline["targets"]
    before_usd = baseline["cost_usd_per_1000_inbound"]
    now_usd = _mixed_per_1000(results)
    ratio = _cold_ratio(results)
    ships = _ships_tooling(results)

    def verdict(holds: bool | None) -> str:
        return "not measured" if holds is None else ("holds" if holds else "**missed**")

    rows = [
        [
            "$ per 1,000 inbound messages (typical conversation, mixed)",
            _usd(before_usd["total"]),
            _usd(now_usd["total"]) if now_usd else "not measured",
            f"<= {_usd(targets['cost_usd_per_1000_inbound'])}",
            verdict(now_usd["total"] <= targets["cost_usd_per_1000_inbound"] if now_usd else None),
        ],
        [
            "cold import, ratio to a bare Chalice app + one boto3 client",
            f"{baseline['cold_import_ratio_to_bare']}x",
            f"{ratio}x" if ratio is not None else "not measured",
            f"<= {targets['cold_import_ratio_to_bare']}x",
            verdict(ratio <= targets["cold_import_ratio_to_bare"] if ratio is not None else None),
        ],
        [
            "the package ships the local stack, the CLI or the demo",
            "yes" if baseline["package_ships_local_stack_cli_demo"] else "no",
            "not measured" if ships is None else ("yes" if ships else "no"),
            "no",
            verdict(None if ships is None else not ships),
        ],
    ]
    parts = [table(["what", f"before (`{baseline['commit']}`)", "now", "target", "result"], rows)]
    if now_usd:
        services = [k for k in before_usd if k != "total"]
        parts.append(
            table(
                ["$ per 1,000 inbound, by service", *services, "total"],
                [
                    ["before", *[_usd(before_usd[k]) for k in services], _usd(before_usd["total"])],
                    ["now", *[_usd(now_usd.get(k, 0.0)) for k in services], _usd(now_usd["total"])],
                ],
            )
        )
    if now_usd and now_usd["total"] > targets["cost_usd_per_1000_inbound"]:
        parts.append(target_leaves(now_usd, targets["cost_usd_per_1000_inbound"]))
    return "\n\n".join(parts)


def target_leaves(now_usd: dict[str, float], target: float) -> str:
    """What a missed cost target leaves DynamoDB once every other service is paid as measured: its dollars and the
    write units they buy per conversation, beside the units the conversation writes now."""
    from bench.cost import INBOUND_PER_CONVERSATION, load_prices

    prices = load_prices()["prices"]
    per_wru = prices["dynamodb_wru"]["usd"] / prices["dynamodb_wru"]["per"]
    conversations = 1000 / INBOUND_PER_CONVERSATION
    others = sum(v for k, v in now_usd.items() if k not in ("total", "dynamodb"))
    left = target - others
    rows = [
        [name, _usd(value), f"{value / target:.0%}"]
        for name, value in sorted(now_usd.items(), key=lambda kv: -kv[1])
        if name not in ("total", "dynamodb") and value > 0
    ]
    rows.append(["all but DynamoDB", _usd(others), f"{others / target:.0%}"])
    if left > 0:
        units = left / conversations / per_wru
        rows.append(["left for DynamoDB", _usd(left), f"{left / target:.0%}: {units:.0f} write units per conversation"])
    else:
        rows.append(["left for DynamoDB", "nothing", "the other services alone exceed the target"])
    intro = (
        f"Where the target of {_usd(target)} per 1,000 inbound goes, with every service but DynamoDB at this run's "
        f"cost ({conversations:.0f} conversations; DynamoDB now {_usd(now_usd.get('dynamodb', 0.0))}, "
        "its write units per conversation in the typical conversation's row below):"
    )
    return intro + "\n\n" + table(["service", "$ per 1,000 inbound", "share of the target"], rows)


def render(results: dict[str, Any]) -> str:
    machine = results["machine"]
    parts = [
        "# Switchboard benchmarks",
        "Written by `make bench` (`python -m bench`); the numbers are also in `bench/results.json`. "
        "See bench/README.md for what each section does.",
        f"Machine: {machine['nproc']} cores (`nproc`), Python {machine['python']}, {machine['platform']}; "
        f"run {machine['date']}, commit `{machine['commit']}`" + (" (quick run)" if results.get("quick") else "") + ".",
        "## Cost and cold start: before and now",
        "The targets of the work on cost per message and cold start, against the numbers before it "
        "(bench/baseline.json) and this run's (the sections below).",
        before_after(results),
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
