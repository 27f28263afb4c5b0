"""Suppressions for the template scanners, each with its reason, written into the resource's Metadata."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnResource
from constructs import IConstruct


def skip(construct: IConstruct, check_id: str, reason: str) -> None:
    """Tell checkov to skip ``check_id`` on this resource, and why (the reason is mandatory)."""
    if not reason.strip():
        raise ValueError(f"a suppression of {check_id} needs its reason")
    resource = _resource(construct)
    metadata: dict[str, Any] = resource.get_metadata("checkov") or {"skip": []}
    metadata["skip"] = [*metadata["skip"], {"id": check_id, "comment": reason}]
    resource.add_metadata("checkov", metadata)


def _resource(construct: IConstruct) -> CfnResource:
    if isinstance(construct, CfnResource):
        return construct
    child = construct.node.default_child
    if not isinstance(child, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to annotate")
    return child


def lint_ignore(construct: IConstruct, rule: str, reason: str) -> None:
    """Tell cfn-lint to ignore ``rule`` on this resource (``reason``: why, mandatory; cfn-lint keeps no comment)."""
    if not reason.strip():
        raise ValueError(f"ignoring {rule} needs its reason")
    resource = _resource(construct)
    metadata: dict[str, Any] = resource.get_metadata("cfn-lint") or {"config": {"ignore_checks": []}}
    metadata["config"]["ignore_checks"] = [*metadata["config"]["ignore_checks"], rule]
    resource.add_metadata("cfn-lint", metadata)
