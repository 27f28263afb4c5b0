"""The synthesized CloudFormation templates, one per stage, made fresh for the test session.

The CDK app runs as it does under `make synth` (infra/cdk_app.py, Chalice packaging included), minus the npm
command line: CDK_OUTDIR and CDK_CONTEXT_JSON are how that command line hands an app its output folder and context.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra"))  # switchboard_infra.package: what ships (no CDK import in it)
STAGES = ("dev", "prod")
# What an operator passes to `make deploy` (README, Deploy); prod is synthesized with them, dev without.
PROD_CONTEXT = {
    "alarmEmail": "ops@example.com",
    "snsTopicArns": "arn:aws:sns:eu-west-1:123456789012:inbound-mail",
    "twilioAccountSid": "AC0123456789abcdef0123456789abcdef",
    "emailFromAddress": "support@example.com",
    "widgetPostsPerIp": "300",
    "apiRate": "500",
}


# Where each stage's synthesis went (its assets: the Lambda package's zip), filled by ``synthesize``.
OUTDIRS: dict[str, Path] = {}


def synthesize(stage: str, outdir: Path, context: dict[str, str] | None = None) -> dict[str, Any]:
    outdir.mkdir(parents=True, exist_ok=True)
    OUTDIRS[stage] = outdir
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps({"stage": stage, **(context or {})}),
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "infra" / "cdk_app.py")],
        cwd=outdir,  # chalice.cdk packages into ./chalice.out
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return dict(json.loads((outdir / f"switchboard-{stage}.template.json").read_text()))


def synthesized_once(stage: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``synthesize`` once per test run, even when pytest-xdist runs these modules on several workers: the workers
    share the run's base temporary folder, and the first to take the lock synthesizes for the others."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return synthesize(stage, tmp_path_factory.mktemp(f"synth-{stage}"), PROD_CONTEXT if stage == "prod" else None)
    outdir = tmp_path_factory.getbasetemp().parent / f"synth-{stage}"
    outdir.mkdir(exist_ok=True)
    with open(outdir.parent / f"synth-{stage}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        written = outdir / f"switchboard-{stage}.template.json"
        if written.exists():
            OUTDIRS[stage] = outdir
            return dict(json.loads(written.read_text()))
        return synthesize(stage, outdir, PROD_CONTEXT if stage == "prod" else None)


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return {stage: synthesized_once(stage, tmp_path_factory) for stage in STAGES}


@pytest.fixture(params=STAGES)
def template(request: pytest.FixtureRequest, templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return templates[request.param]
