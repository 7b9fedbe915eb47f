"""One view of a database (or an RDS Proxy), whatever construct declares it.

ForceSsl and the baseline Aspect accept the L2 ``DatabaseInstance`` (and ``FromSnapshot`` /
``ReadReplica``), ``DatabaseCluster``, ``DatabaseProxy``, and the L1 ``CfnDBInstance`` /
``CfnDBCluster`` / ``CfnDBProxy``. This module turns each into the few facts they need: the L1
resource, instance or cluster, the engine (its row in the engine table) and version, and the
cluster members declared in the app.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_rds as rds
from constructs import IConstruct

from rds_force_ssl import tree
from rds_force_ssl.facts import engines
from rds_force_ssl.state import STATE

_FAMILY = re.compile(r"^([a-z-]+?)-?(\d+(?:\.\d+)?)$")  # postgres16, aurora-mysql8.0
# Aurora Serverless v1 L2s: clusters in engine mode "serverless".
V1_CLUSTERS = (rds.ServerlessCluster, rds.ServerlessClusterFromSnapshot)
# Every class database_of() and proxy_of() look at: for anything else both return None, which a
# caller that sees every construct (the baseline's Aspect) can tell without a round trip to jsii.
CANDIDATES = (
    *V1_CLUSTERS,
    rds.DatabaseClusterBase,
    rds.DatabaseInstanceBase,
    rds.DatabaseProxy,
    rds.CfnDBInstance,
    rds.CfnDBCluster,
    rds.CfnDBProxy,
)


@dataclass
class Database:
    construct: IConstruct
    cfn: rds.CfnDBInstance | rds.CfnDBCluster
    engine: str | None  # lower case; None when synth cannot tell
    version: str | None  # the engine version as written; None when not pinned or unknown
    members: list[rds.CfnDBInstance] = field(default_factory=list)
    # Aurora Serverless v1 (engine mode "serverless"): a cluster with no instances of its own.
    serverless_v1: bool = False

    @property
    def path(self) -> str:
        return tree.path_of(self.construct)

    @cached_property
    def ref(self) -> str:
        """The L1's ``Ref`` token (the instance or cluster identifier)."""
        return self.cfn.ref

    @property
    def is_cluster(self) -> bool:
        return isinstance(self.cfn, rds.CfnDBCluster)

    @property
    def facts(self) -> engines.Engine | None:
        """The engine's row in the engine table (None: unknown engine, or unknown at synth)."""
        return engines.lookup(self.engine)

    @property
    def major(self) -> int | None:
        parsed = engines.parse_version(self.version) if self.version else None
        return parsed[0] if parsed else None

    @property
    def is_aurora(self) -> bool:
        return self.facts is not None and self.facts.aurora

    @property
    def family(self) -> str | None:
        """The parameter-group family, e.g. postgres16, mysql8.0 or aurora-postgresql16."""
        facts = self.facts
        if facts is None or self.engine is None or self.version is None:
            return None
        return facts.family(self.engine, self.version)

    @property
    def group_name(self) -> str | None:
        if isinstance(self.cfn, rds.CfnDBCluster):
            return self.cfn.db_cluster_parameter_group_name
        return self.cfn.db_parameter_group_name

    def attach(self, group_name: str) -> None:
        if isinstance(self.cfn, rds.CfnDBCluster):
            self.cfn.db_cluster_parameter_group_name = group_name
        else:
            self.cfn.db_parameter_group_name = group_name

    def arn(self) -> str:
        return _arn(self.cfn, "cluster" if self.is_cluster else "db", self.ref)

    def member_arns(self) -> list[str]:
        return [_arn(self.cfn, "db", m.ref) for m in self.members]

    def defers_changes(self) -> bool:
        """Whether the database sets ``apply_immediately=False`` (CDK's ``DatabaseInstance``,
        or a cluster's ``ClusterInstance``, writes it to the L1 ``ApplyImmediately``; on a
        cluster, any member that sets it counts). A token reads as not set."""
        nodes = self.members if self.is_cluster else [self.cfn]
        return any(
            getattr(node, "apply_immediately", None) is False
            for node in nodes
            if isinstance(node, rds.CfnDBInstance)
        )


@contextmanager
def known(db: Database) -> Iterator[None]:
    """Within the block, database_of(db.construct) is ``db`` without reading it again: for the
    baseline, which has just read it, and then adds a ForceSsl that would read it again."""
    key = tree.ref(db.construct)
    STATE.known[key] = db
    try:
        yield
    finally:
        STATE.known.pop(key, None)


def database_of(node: IConstruct) -> Database | None:
    """The database ``node`` declares, or None if it declares none (or is part of another one:
    the L1 under an L2, or an Aurora cluster member)."""
    if STATE.known and tree.ref(node) in STATE.known:
        return STATE.known[tree.ref(node)]
    # An L2 writes its engine's type and full version into its L1 (aws-rds instance.ts and
    # cluster.ts), so the L1's two strings are read first: two round trips instead of four.
    if isinstance(node, V1_CLUSTERS):
        cfn = tree.node_of(node).default_child
        if not isinstance(cfn, rds.CfnDBCluster):
            return None
        engine, version = _engine_and_version(cfn.engine, cfn.engine_version)
        return Database(node, cfn, engine, version, serverless_v1=True)
    if isinstance(node, rds.DatabaseClusterBase):  # DatabaseCluster and ...FromSnapshot
        cfn = tree.node_of(node).default_child
        if not isinstance(cfn, rds.CfnDBCluster):
            return None
        engine, version = _engine_and_version(cfn.engine, cfn.engine_version)
        if engine is None:
            engine, version = _from_engine(node.engine)
        members = [c for c in tree.node_of(node).find_all() if isinstance(c, rds.CfnDBInstance)]
        return Database(node, cfn, engine, version, members)
    if isinstance(node, rds.DatabaseInstanceBase):
        cfn = tree.node_of(node).default_child
        if not isinstance(cfn, rds.CfnDBInstance):
            return None  # imported: nothing in this app to change
        engine, version = _engine_and_version(cfn.engine, cfn.engine_version)
        if engine is None:  # a read replica: the engine is its source's
            engine, version = _from_engine(node.engine)
        if engine is None:
            engine, version = _from_l1_instance(cfn)
        return Database(node, cfn, engine, version)
    if isinstance(node, (rds.CfnDBInstance, rds.CfnDBCluster)):
        if _owned_by_l2(node):
            return None
        if isinstance(node, rds.CfnDBInstance):
            if node.db_cluster_identifier is not None:
                return None  # a cluster member: its cluster is the database
            engine, version = _from_l1_instance(node)
            return Database(node, node, engine, version)
        engine, version = _engine_and_version(node.engine, node.engine_version)
        v1 = str(node.engine_mode or "").lower() == "serverless"
        return Database(node, node, engine, version, _l1_members(node), serverless_v1=v1)
    return None


@dataclass
class Proxy:
    """An RDS Proxy declared in the app: TLS is its ``RequireTLS`` property."""

    construct: IConstruct
    cfn: rds.CfnDBProxy

    @property
    def path(self) -> str:
        return tree.path_of(self.construct)


def proxy_of(node: IConstruct) -> Proxy | None:
    """The proxy ``node`` declares (None for anything else, and for the L1 under an L2)."""
    if isinstance(node, rds.DatabaseProxy):
        cfn = tree.node_of(node).default_child
        return Proxy(node, cfn) if isinstance(cfn, rds.CfnDBProxy) else None
    if isinstance(node, rds.CfnDBProxy) and not _owned_by_l2(node):
        return Proxy(node, node)
    return None


def _owned_by_l2(cfn: IConstruct) -> bool:
    owner = cfn.node.scope
    kinds = (rds.DatabaseInstanceBase, rds.DatabaseClusterBase, rds.DatabaseProxy, *V1_CLUSTERS)
    if not isinstance(owner, kinds):
        return False
    child = owner.node.default_child
    # jsii may hand back a different proxy for the same construct: compare references.
    return child is not None and tree.ref(child) == tree.ref(cfn)


def _from_engine(engine: rds.IEngine | None) -> tuple[str | None, str | None]:
    if engine is None:
        return None, None
    version = engine.engine_version
    return _engine_and_version(engine.engine_type, version.full_version if version else None)


def _from_l1_instance(cfn: rds.CfnDBInstance) -> tuple[str | None, str | None]:
    if cfn.engine is None and cfn.source_db_instance_identifier is not None:
        source = _source_instance(cfn)
        if source is not None:
            return _from_l1_or_owner(source)
        # A replica of a database outside this app: RDS requires its parameter group's family
        # to match the source's engine, so the family names the engine.
        return _from_family(cfn)
    return _engine_and_version(cfn.engine, cfn.engine_version)


def _from_family(cfn: rds.CfnDBInstance) -> tuple[str | None, str | None]:
    name = cfn.db_parameter_group_name
    target = cdk.Tokenization.reverse(name) if name and cdk.Token.is_unresolved(name) else None
    group = getattr(target, "target", None)
    family = getattr(group, "family", None) if isinstance(group, rds.CfnDBParameterGroup) else None
    m = _FAMILY.match(family) if isinstance(family, str) else None
    if m is None or engines.lookup(m.group(1)) is None:
        return None, None
    return _engine_and_version(m.group(1), m.group(2))


def _from_l1_or_owner(cfn: rds.CfnDBInstance) -> tuple[str | None, str | None]:
    owner = cfn.node.scope
    if isinstance(owner, rds.DatabaseInstanceBase) and owner.engine is not None:
        return _from_engine(owner.engine)
    return _engine_and_version(cfn.engine, cfn.engine_version)


def _engine_and_version(engine: Any, version: Any) -> tuple[str | None, str | None]:
    if not isinstance(engine, str) or tree.unresolved(engine):
        return None, None
    pinned = None
    if (
        isinstance(version, str)
        and not tree.unresolved(version)
        and engines.parse_version(version) is not None
    ):
        pinned = version
    return engine.lower(), pinned


def _source_instance(replica: rds.CfnDBInstance) -> rds.CfnDBInstance | None:
    """The CfnDBInstance a read replica's SourceDBInstanceIdentifier points at: in the replica's
    stack, or else the only one in the app with that logical ID (a source in another stack)."""
    stack = cdk.Stack.of(replica)
    refs = set(_refs(stack.resolve(replica.source_db_instance_identifier)))
    found = [
        c
        for c in stack.node.root.node.find_all()
        if isinstance(c, rds.CfnDBInstance) and cdk.Stack.of(c).get_logical_id(c) in refs
    ]
    here = [c for c in found if cdk.Stack.of(c).node.path == stack.node.path]
    if here:
        return here[0]
    return found[0] if len(found) == 1 else None


def _l1_members(cluster: rds.CfnDBCluster) -> list[rds.CfnDBInstance]:
    stack = cdk.Stack.of(cluster)
    logical_id = stack.get_logical_id(cluster)
    return [
        c
        for c in stack.node.find_all()
        if isinstance(c, rds.CfnDBInstance)
        and c.db_cluster_identifier is not None
        and logical_id in _refs(stack.resolve(c.db_cluster_identifier))
    ]


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        if set(value) == {"Ref"} and isinstance(value["Ref"], str):
            return [value["Ref"]]
        return [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def _arn(scope: IConstruct, resource: str, name: str) -> str:
    return tree.arn(tree.stack_of(scope), "rds", resource, name)
