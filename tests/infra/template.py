"""Reading a synthesized template: resources by type, references, and the IAM statements in it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Template = dict[str, Any]

# Services whose data an over-broad grant would expose or let a function destroy.
DATA_PLANE = ("dynamodb", "sqs", "sns", "ssm", "s3", "ses", "kms", "secretsmanager", "execute-api", "logs")


def resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def ref(value: Any) -> str | None:
    """The logical id a Ref or Fn::GetAtt points at."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def statements(template: Template) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM statement of every role, inline or attached policy: (resource name, statement)."""
    for name, role in resources(template, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                yield name, statement
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for name, policy in resources(template, kind).items():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                yield name, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def wildcard_grants(template: Template) -> list[str]:
    """Allow statements granting a wildcard data-plane action, or any DynamoDB/SQS action on Resource "*"."""
    found = []
    for name, statement in statements(template):
        if statement.get("Effect") != "Allow":
            continue
        actions = [str(a) for a in as_list(statement.get("Action", []))]
        if "NotAction" in statement or "NotResource" in statement:
            found.append(f"{name}: NotAction/NotResource")
        for action in actions:
            service = action.split(":")[0].lower()
            if action == "*" or (service in DATA_PLANE and "*" in action):
                found.append(f"{name}: {action}")
        if "*" in as_list(statement.get("Resource")):
            found.extend(f"{name}: {a} on *" for a in actions if a.split(":")[0].lower() in ("dynamodb", "sqs"))
    return found


def actions_of(role: dict[str, Any]) -> dict[str, list[Any]]:
    """Action -> the resources it is allowed on, over a role's inline policies."""
    granted: dict[str, list[Any]] = {}
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            if statement.get("Effect") == "Allow":
                for action in as_list(statement["Action"]):
                    granted.setdefault(action, []).extend(as_list(statement["Resource"]))
    return granted
