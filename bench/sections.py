"""The registry of benchmark sections: ``python -m bench`` runs each one registered here, in this order.

Adding a section is one function::

    @section("name", "Title", "One sentence: what the table shows.")
    def name(quick: bool) -> dict:
        return {"rows": [{"column": 1.0, ...}, ...]}

Its result goes to results.json under its name; RESULTS.md renders ``rows`` as a table (or the section's own
renderer in ``bench/report.py``). A section raises ``NotAvailable`` when what it measures is absent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.simulator import NotAvailable

__all__ = ["SECTIONS", "NotAvailable", "Section", "section"]


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    summary: str  # what the table shows, one sentence
    run: Callable[[bool], dict[str, Any]]
    in_quick: bool = True  # run by --quick (the CI smoke); else reported as skipped there


SECTIONS: dict[str, Section] = {}


def section(name: str, title: str, summary: str, in_quick: bool = True) -> Callable[[Callable[[bool], Any]], Any]:
    def register(function: Callable[[bool], dict[str, Any]]) -> Callable[[bool], dict[str, Any]]:
        SECTIONS[name] = Section(name, title, summary, function, in_quick)
        return function

    return register


@section(
    "cost",
    "Cost per flow and per conversation",
    "AWS requests, DynamoDB request units and modelled dollars for each flow the app has, and for a typical "
    "conversation (4 customer messages, accept, 3 replies, close) per channel and mixed evenly, per 1,000 "
    "inbound messages; counted with botocore hooks against moto, priced from bench/prices.json.",
)
def cost(quick: bool) -> dict[str, Any]:
    from bench import cost as cost_section

    return cost_section.run(quick)


@section(
    "routing_reads",
    "Routing reads per decision",
    "DynamoDB requests, items and read units the router needs for one decision with N agents and N waiting "
    "contacts in the table: flat in N means the reads are bounded.",
)
def routing_reads(quick: bool) -> dict[str, Any]:
    from bench import routing_reads as reads_section

    return reads_section.run(quick)


@section(
    "cold_import",
    "Cold import of each function's handler",
    "Import time of each Lambda function's handler from the package as the stack ships it "
    "(infra/switchboard_infra/package.py), beside a bare Chalice app that creates one boto3 client as "
    "`chalice package` leaves it (no .pyc), medians of interleaved runs; the ratio is what to read on a "
    "noisy machine.",
)
def cold_import(quick: bool) -> dict[str, Any]:
    from bench import cold_import as cold_section

    return cold_section.run(quick)


@section(
    "time_to_offer",
    "Time to offer on the local stack",
    "From a web-chat message posted over HTTP to the offer arriving on the agent's WebSocket, on the local "
    "stack (moto server, REST server, WebSocket gateway, SQS pump), one contact at a time.",
    in_quick=False,
)
def time_to_offer(quick: bool) -> dict[str, Any]:
    from bench import time_to_offer as offer_section

    return offer_section.run(quick)


# HOOK: the simulator section. bench/simulator.py names the entry point in chalicelib/sim/ it calls.
@section(
    "simulator",
    "Simulator: standard scenarios against Erlang C and the baselines",
    "The repo's standard scenarios run by the real engine on a virtual clock (chalicelib/sim), with the "
    "Erlang C bound and the round-robin and longest-idle baselines.",
)
def simulator(quick: bool) -> dict[str, Any]:
    from bench import simulator as simulator_section

    return simulator_section.run(quick)


@section(
    "kb_retrieval",
    "Self-service retrieval on the evaluation set",
    "Top-1 accuracy of the knowledge base's BM25 retrieval (chalicelib/kb) on bench/kb_eval.yaml's questions "
    "(paraphrases, typos, English and German), and at the shipped min_coverage how many answerable questions "
    "get the right / a wrong answer and how many unanswerable ones get an answer (issue 14: top-1 >= 85 %, "
    "unanswerable answered <= 5 %).",
)
def kb_retrieval(quick: bool) -> dict[str, Any]:
    from bench import kb_retrieval as kb_section

    return kb_section.run(quick)
