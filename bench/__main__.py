"""``python -m bench [--quick] [--only SECTION] [--out DIR]``: run the benchmark sections, write
``DIR/results.json`` and ``DIR/RESULTS.md`` (default DIR: bench/).

Each section runs in a fresh interpreter (its own environment, moto and memory); one that fails is reported
as failed and the others still run. ``--only`` reruns one section and keeps the others from the results.json
already in DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.sections import SECTIONS, NotAvailable

ROOT = Path(__file__).resolve().parent.parent


def machine() -> dict[str, Any]:
    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return result.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--untracked-files=no", "--", "app.py", "chalicelib"):
        commit += " + uncommitted changes"
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
    }


def run_worker(name: str, quick: bool, out: Path) -> None:
    """Inside the fresh interpreter: run one section, write its outcome as JSON."""
    started = time.perf_counter()
    try:
        entry: dict[str, Any] = {"status": "ok", "data": SECTIONS[name].run(quick)}
    except NotAvailable as reason:
        entry = {"status": "not available", "reason": str(reason)}
    entry["seconds"] = round(time.perf_counter() - started, 1)
    out.write_text(json.dumps(entry, default=str))


def run_section(name: str, quick: bool) -> dict[str, Any]:
    section = SECTIONS[name]
    if quick and not section.in_quick:
        return {"status": "skipped", "reason": "not part of --quick (it needs the local stack and takes minutes)"}
    with tempfile.TemporaryDirectory(prefix="bench-") as where:
        out = Path(where) / "section.json"
        command = [sys.executable, "-m", "bench", "--worker", name, "--worker-out", str(out)]
        if quick:
            command.append("--quick")
        started = time.perf_counter()
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        if result.returncode == 0 and out.exists():
            return dict(json.loads(out.read_text()))
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"status": "failed", "error": tail[0], "seconds": round(time.perf_counter() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for the CI smoke (under a minute)")
    parser.add_argument("--only", choices=list(SECTIONS), help="run this section only")
    parser.add_argument("--out", type=Path, default=ROOT / "bench", help="where results.json and RESULTS.md go")
    parser.add_argument("--worker", choices=list(SECTIONS), help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        run_worker(args.worker, args.quick, args.worker_out)
        return 0

    from bench.report import render

    args.out.mkdir(parents=True, exist_ok=True)
    results_file = args.out / "results.json"
    results: dict[str, Any] = {"sections": {}}
    if args.only and results_file.exists():
        results = json.loads(results_file.read_text())
    results["machine"], results["quick"] = machine(), args.quick
    for name in [args.only] if args.only else list(SECTIONS):
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        entry = run_section(name, args.quick)
        results["sections"][name] = entry
        print(f"bench: {name} {entry['status']} in {entry.get('seconds', 0)} s", file=sys.stderr, flush=True)
    results_file.write_text(json.dumps(results, indent=1, default=str) + "\n")
    (args.out / "RESULTS.md").write_text(render(results))
    failed = [name for name, entry in results["sections"].items() if entry["status"] == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
