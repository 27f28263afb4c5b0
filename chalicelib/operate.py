"""After a deploy: which secrets are set, setting one, and the checklist an operator follows.

Secrets are SSM SecureString parameters ``<SWITCHBOARD_SSM_PREFIX>/<NAME>``. Their values are never read back
or printed here: the status comes from the parameters' metadata (DescribeParameters).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chalicelib.channels import registry
from chalicelib.settings import DEPLOYED_SECRETS, SECRET_NAMES, SECRET_PURPOSES, get_settings
from chalicelib.store import aws

# Which providers take which webhook (output key -> what to do with the URL there).
WEBHOOK_STEPS = {
    "webchat": "your site's server posts visitors' messages here (or use /widget.js)",
    "api": "your own systems post messages here, signed with API_CHANNEL_SECRET",
    "twilio_messaging": "Twilio console > Phone Numbers > your number > Messaging: 'A message comes in' (HTTP POST)",
    "twilio_voice": "Twilio console > Phone Numbers > your number > Voice: 'A call comes in' (HTTP POST)",
    "twilio_status": "nothing to do: replies name it as their StatusCallback",
    "meta": "Meta app > WhatsApp / Messenger / Instagram > Webhooks: Callback URL, with META_VERIFY_TOKEN",
    "telegram": "curl https://api.telegram.org/bot<TOKEN>/setWebhook -d url=<URL> -d secret_token=<SECRET>",
    "email_ses": "SES receipt rule > SNS action to a topic; subscribe this URL (HTTPS) to the topic",
    "email_mailgun": "Mailgun > Receiving > a route forwarding to this URL",
}


class SecretError(ValueError):
    """A secret that cannot be set as asked."""


def secret_parameter(name: str) -> str:
    prefix = get_settings().ssm_prefix
    if not prefix:
        raise SecretError("SWITCHBOARD_SSM_PREFIX is not set: pass --stage")
    return f"{prefix}/{name}"


def secrets_status() -> dict[str, bool]:
    """Each secret a deployed stage reads, and whether its parameter exists (from metadata only)."""
    names = {secret_parameter(name): name for name in DEPLOYED_SECRETS}
    present: set[str] = set()
    paginator = aws.client("ssm").get_paginator("describe_parameters")
    for page in paginator.paginate(ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": list(names)}]):
        present |= {str(p["Name"]) for p in page["Parameters"]}
    return {name: parameter in present for parameter, name in names.items()}


def set_secret(name: str, value: str) -> str:
    """Store a secret as a SecureString (replacing any earlier value); returns the parameter's name."""
    if name not in SECRET_NAMES:
        raise SecretError(f"unknown secret {name!r}; secrets are {', '.join(DEPLOYED_SECRETS)}")
    if name not in DEPLOYED_SECRETS:
        raise SecretError(f"{name} is for local sign-in only and must not be set in AWS")
    value = value.strip()
    if not value:
        raise SecretError(f"{name}: the value is empty")
    parameter = secret_parameter(name)
    aws.client("ssm").put_parameter(Name=parameter, Value=value, Type="SecureString", Overwrite=True)
    return parameter


def load_outputs(path: str | Path, stack: str) -> dict[str, str]:
    """The stack's outputs from `cdk deploy --outputs-file`."""
    document: dict[str, Any] = json.loads(Path(path).read_text())
    if stack not in document:
        raise SecretError(f"{path} has no outputs of {stack} (it has {', '.join(document) or 'none'})")
    return {str(k): str(v) for k, v in document[stack].items()}


def checklist(stage: str, outputs: dict[str, str]) -> list[str]:
    """What is left to do after `make deploy`, in order, with the URLs and ids this deployment got."""
    status = secrets_status()
    missing = [name for name, present in status.items() if not present]
    lines = [f"Switchboard {stage} is deployed. Left to do:", ""]
    lines.append(f"1. Secrets ({len(status) - len(missing)} of {len(status)} set). Set those of your channels:")
    for name, present in status.items():
        mark = "set    " if present else "missing"
        lines.append(f"   [{mark}] {name}: {SECRET_PURPOSES[name]}")
    if missing:
        lines.append(f"   switchboard secrets set NAME --stage {stage}    (reads the value from stdin)")
    lines += ["", "2. Give each provider its webhook URL:"]
    for adapter in registry.CHANNELS:
        url = outputs.get(output_key(adapter.name), "?")
        lines.append(f"   {adapter.name}: {url}")
        lines.append(f"      {WEBHOOK_STEPS.get(adapter.name, '')}")
    pool = outputs.get("UserPoolId", "?")
    lines += [
        "",
        "3. Create the first admin: a Cognito user (e-mailed a temporary password), in the admin group, and the",
        "   agent record the routing knows them by (add agents later the same way, with --group-name agent):",
        f"   aws cognito-idp admin-create-user --user-pool-id {pool} --username ADMIN --user-attributes "
        "Name=email,Value=ADMIN@EXAMPLE.COM Name=email_verified,Value=true Name=custom:agent_id,Value=ADMIN",
        f"   aws cognito-idp admin-add-user-to-group --user-pool-id {pool} --username ADMIN --group-name admin",
        f"   switchboard agents create ADMIN --name 'Your Name' --stage {stage}",
        "",
        f"4. Agents sign in at {outputs.get('ConsoleUrl', '?')}?ws={outputs.get('WebSocketUrl', '?')}",
        f"5. Subscribe to alarms: {outputs.get('AlarmTopicArn', '?')}; dashboard: {outputs.get('DashboardUrl', '?')}",
        "6. Tune routing: switchboard rules check routing.yaml, then PUT /admin/routing (as an admin).",
    ]
    return lines


def output_key(channel: str) -> str:
    """The stack output holding a channel's webhook URL (WebhookTwilioMessaging)."""
    return "Webhook" + "".join(part.capitalize() for part in channel.split("_"))
