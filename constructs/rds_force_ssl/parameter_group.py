"""Find, check and fill the parameter group that carries the engine's SSL parameter.

A database's group is one of four things at synth time:
- none, or an engine default (``default.*``): we attach the stack's rds-force-ssl group for
  the family and settings (made on first use);
- a CDK ``ParameterGroup`` (passed as ``parameter_group=`` or made from ``parameters=``): we add
  our parameters to it, so the user's own parameters stay where they are;
- an L1 ``CfnDBParameterGroup`` / ``CfnDBClusterParameterGroup`` whose parameters are a plain
  mapping: we add to that mapping;
- anything else (an imported name, a token we cannot follow): its contents are unknown, so we
  refuse rather than guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_rds as rds
from constructs import IConstruct

from rds_force_ssl import tree


@dataclass
class GroupRef:
    """Where the database's parameter group stands, as far as synth can see."""

    kind: str  # "none" | "l2" | "l1" | "unknown"
    name: str  # the literal name or a token, for messages
    l2: rds.ParameterGroup | None = None
    l1: cdk.CfnResource | None = None
    parameters: dict[str, Any] | None = None  # resolved, when known

    @cached_property
    def ref(self) -> str:
        """The group's ``Ref`` token (its name), read once."""
        assert self.l1 is not None
        return self.l1.ref

    @cached_property
    def live_parameters(self) -> str:
        """A token for the group's parameters as the template will have them (LiveParameters),
        encoded once as a string: passing the Python object would make jsii register it anew
        for every reboot resource of the group."""
        assert self.l1 is not None
        return cdk.Token.as_string(LiveParameters(self.l1))


def locate(scope: IConstruct, group_name: str | None) -> GroupRef:
    """Classify a database's ``DBParameterGroupName`` / ``DBClusterParameterGroupName``."""
    if group_name is None or (
        not tree.unresolved(group_name) and group_name.startswith("default.")
    ):
        return GroupRef("none", group_name or "")
    if not tree.unresolved(group_name):
        return GroupRef("unknown", group_name)
    ref = cdk.Tokenization.reverse(group_name)
    target = getattr(ref, "target", None)
    if not isinstance(target, (rds.CfnDBParameterGroup, rds.CfnDBClusterParameterGroup)):
        return GroupRef("unknown", group_name)
    params = resolved_parameters(scope, target.parameters)
    owner = target.node.scope
    if isinstance(owner, rds.ParameterGroup):
        return GroupRef("l2", target.node.path, l2=owner, l1=target, parameters=params)
    if params is None:
        return GroupRef("unknown", target.node.path, l1=target)
    return GroupRef("l1", target.node.path, l1=target, parameters=params)


def resolved_parameters(scope: IConstruct, value: Any) -> dict[str, Any] | None:
    """The group's parameters as plain values, or None when they cannot be read at synth."""
    if value is None:
        return {}
    resolved = tree.stack_of(scope).resolve(value)
    if not isinstance(resolved, Mapping):
        return None
    return dict(resolved)


def merge(group: GroupRef, wanted: Mapping[str, str]) -> None:
    """Add ``wanted`` to an existing CDK or L1 group (once rules.group_problems found none)."""
    if group.l2 is not None:
        for key, value in wanted.items():
            group.l2.add_parameter(key, value)
    elif group.l1 is not None:
        # Set the property itself (not an override) so the reboot resource and later readers see it.
        group.l1.parameters = {**(group.parameters or {}), **wanted}  # type: ignore[attr-defined]
    else:  # pragma: no cover - callers create a group for kind "none"
        raise AssertionError(f"nothing to merge into for {group.kind}")


@jsii.implements(cdk.IResolvable)
class LiveParameters(tree.Resolvable):
    """A group's ``Parameters`` as they are when the template is written, not when ForceSsl ran.

    The reboot resource carries them so that any later change to the group (a parameter the
    user adds after ForceSsl, or a deploy-time value) changes its properties and sends an Update.
    """

    def __init__(self, group: cdk.CfnResource) -> None:
        self._group = group

    def resolve(self, context: cdk.IResolveContext) -> Any:
        parameters = getattr(self._group, "parameters", None)
        if isinstance(parameters, Mapping) and all(
            isinstance(k, str) and isinstance(v, str) and not tree.unresolved(v)
            for k, v in parameters.items()
        ):
            return dict(parameters)  # plain strings (ForceSsl's own groups): nothing to resolve
        return context.resolve(parameters)
