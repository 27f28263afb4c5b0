"""Section 5, the simulator's standard scenarios against Erlang C and the baselines.

HOOK for the simulator (``chalicelib/sim/``, written separately): ``SIMULATOR_ENTRY`` names the function
that runs the repo's standard scenarios and returns rows, one per scenario (or queue), policy and load,
with the service level, the waits and the Erlang C (or A) bound, e.g.::

    {"scenario": "multi-skill mix", "queue": "billing", "load": 0.85, "policy": "switchboard",
     "sl": 0.812, "target_s": 20, "mean_wait_s": 9.1, "p90_wait_s": 31.0, "erlang_c_sl": 0.808}

It may take ``quick=True`` (fewer contacts for the CI smoke). Whatever keys the rows have become the table's
columns. Until ``chalicelib.sim`` exists and has the function, the section says "not available": it never
makes numbers up.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

SIMULATOR_ENTRY = "chalicelib.sim:bench_rows"


class NotAvailable(Exception):
    """The simulator is not in this checkout (yet)."""


def entry_point() -> Any:
    module_name, function_name = SIMULATOR_ENTRY.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise NotAvailable(f"{module_name} is not importable ({error})") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise NotAvailable(f"{module_name} has no {function_name}()")
    return function


def run(quick: bool = False) -> dict[str, Any]:
    function = entry_point()
    kwargs = {"quick": quick} if "quick" in inspect.signature(function).parameters else {}
    rows = [dict(row) for row in function(**kwargs)]
    return {"entry": SIMULATOR_ENTRY, "rows": rows}
