"""Reads of the construct tree that cross to jsii once, not once per database.

Every read of a CDK object from Python is a round trip to the jsii kernel, a node process
(0.1 to 0.3 ms each), and ForceSsl used to make about 80 per database: most of its synth cost.
What cannot change once it exists (which object a reference is, a construct's path and stack, a
stack's partition, region and account, a Duration's seconds) is read once and kept here, keyed
by the object's jsii reference. That reference names the object on the node side, so it stays
the same when jsii hands Python a new proxy for an object it already gave out.
"""

from __future__ import annotations

import re

import aws_cdk as cdk
from constructs import IConstruct, Node

from rds_force_ssl.state import STATE

# aws-cdk-lib core/lib/private/encoding.ts: how a token is encoded in a string (unresolved()).
_MARKER = "Token["
_STRING_TOKEN = re.compile(r"\$\{Token\[[a-zA-Z0-9:._-]+\]\}|-1\.\d{10,16}e\+289")


def ref(obj: object) -> str:
    """The jsii reference of a CDK object: the same for every Python proxy of it."""
    return str(obj.__jsii_ref__.ref)  # type: ignore[attr-defined]


def node_of(construct: IConstruct) -> Node:
    """``construct.node``: the same object every time, so one read."""
    key = ref(construct)
    node = STATE.nodes.get(key)
    if node is None:
        node = STATE.nodes[key] = construct.node
    return node


def path_of(construct: IConstruct) -> str:
    key = ref(construct)
    path = STATE.paths.get(key)
    if path is None:
        path = STATE.paths[key] = node_of(construct).path
    return path


def child_path(scope: IConstruct, construct_id: str, child: IConstruct | None = None) -> str:
    """The path a child ``construct_id`` of ``scope`` has (the app's children have no prefix);
    remembered as ``child``'s path when it is given."""
    parent = path_of(scope)
    path = f"{parent}/{construct_id}" if parent else construct_id
    if child is not None:
        STATE.paths[ref(child)] = path
    return path


def stack_of(construct: IConstruct) -> cdk.Stack:
    key = ref(construct)
    stack = STATE.stacks.get(key)
    if stack is None:
        stack = STATE.stacks[key] = cdk.Stack.of(construct)
    return stack


def arn(stack: cdk.Stack, service: str, resource: str, name: str) -> str:
    """The ARN ``stack.format_arn`` makes with ``ArnFormat.COLON_RESOURCE_NAME``: the same string,
    tokens included, built here without two round trips per ARN."""
    key = ref(stack)
    env = STATE.envs.get(key)
    if env is None:
        env = STATE.envs[key] = (stack.partition, stack.region, stack.account)
    partition, region, account = env
    return f"arn:{partition}:{service}:{region}:{account}:{resource}:{name}"


def seconds(duration: cdk.Duration) -> float:
    key = ref(duration)
    value = STATE.seconds.get(key)
    if value is None:
        value = STATE.seconds[key] = duration.to_seconds()
    return value


def unresolved(value: object) -> bool:
    """``cdk.Token.is_unresolved``, answered here for a string (the same test CDK makes)."""
    if isinstance(value, str):
        return _MARKER in value and _STRING_TOKEN.search(value) is not None
    return bool(cdk.Token.is_unresolved(value))


class Resolvable:
    """What every Python ``cdk.IResolvable`` here repeats: no creation stack, no type hint, and
    a string token for itself. A subclass writes ``resolve`` and carries
    ``@jsii.implements(cdk.IResolvable)``."""

    @property
    def creation_stack(self) -> list[str]:
        return []

    @property
    def type_hint(self) -> None:
        return None

    def to_string(self) -> str:
        return cdk.Token.as_string(self)
