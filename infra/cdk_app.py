"""CDK entry point: `make synth STAGE=dev` / `make deploy STAGE=prod` (see the README's Deploy section).

One stack per run, named switchboard-<stage>, for the stage given as `-c stage=...` (default dev).
Operator choices come as context too: -c alarmEmail=ops@example.com -c publicBaseUrl=https://hooks.example.com
-c snsTopicArns=arn:aws:sns:...:inbound-mail.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# The stack reads the product's own names (secrets, channels, queue limits) from chalicelib.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import aws_cdk as cdk
from switchboard_infra.stack import SwitchboardStack
from switchboard_infra.stages import CONTEXT_SETTINGS, load_stage


def main() -> None:
    app = cdk.App()
    stage_name = str(app.node.try_get_context("stage") or "dev")
    context = {
        key: app.node.try_get_context(key)
        for key in (
            "alarmEmail",
            "publicBaseUrl",
            "snsTopicArns",
            "slaBreachPercent",
            "routingAgeSeconds",
            "apiRate",
            "apiBurst",
            "widgetRate",
            "widgetPostsPerIp",
            "tracePercent",
            *CONTEXT_SETTINGS,
        )
    }
    stage = load_stage(stage_name, context)
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    SwitchboardStack(
        app,
        stage.prefix,
        stage=stage,
        # `cdk deploy` fills these from the credentials; synth without credentials stays environment-agnostic.
        env=cdk.Environment(account=account, region=region) if account and region else None,
    )
    app.synth()


if __name__ == "__main__":
    main()
