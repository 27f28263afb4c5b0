"""The X-Ray setting: one number per stage, read the same way by the functions, the CDK app and the cost model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from chalicelib import stages
from chalicelib.settings import TRACE_PERCENT, trace_percent

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "infra"))
from switchboard_infra.stages import load_stage


def test_the_percent_is_read_from_a_stages_variables_and_off_when_unset():
    assert trace_percent({}) == 0
    assert trace_percent({TRACE_PERCENT: ""}) == 0
    assert trace_percent({TRACE_PERCENT: "2.5"}) == 2.5
    for bad in ("101", "-1", "five", "nan"):
        with pytest.raises(ValueError, match=TRACE_PERCENT):
            trace_percent({TRACE_PERCENT: bad})


def test_tracing_is_on_by_default_only_in_dev():
    assert stages.trace_percent("dev") == 100
    assert stages.trace_percent("prod") == 0
    assert stages.traced_fractions("dev") == {"rest": 1.0, "direct": 1.0}
    assert stages.traced_fractions("prod") == {"rest": 0.0, "direct": 0.0}


def test_only_a_stage_tracing_everything_lets_lambda_sample_by_itself():
    assert stages.tracing_mode(100) == "Active"
    assert {stages.tracing_mode(p) for p in (0, 1, 5, 99.9)} == {"PassThrough"}


def test_the_operators_context_overrides_the_config_and_reaches_the_functions():
    stage = load_stage("prod", {"tracePercent": "5"})
    assert stage.trace_percent == 5
    assert stage.environment[TRACE_PERCENT] == "5"
    assert stage.tracing_mode == "PassThrough"
    assert load_stage("prod").trace_percent == 0
    assert load_stage("dev").tracing_mode == "Active"
    with pytest.raises(ValueError, match=TRACE_PERCENT):
        load_stage("prod", {"tracePercent": "500"})
