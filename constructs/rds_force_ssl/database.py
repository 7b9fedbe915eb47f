"""One view of a database, whatever construct declares it.

ForceSsl and the baseline Aspect accept the L2 ``DatabaseInstance`` (and ``FromSnapshot`` /
``ReadReplica``), ``DatabaseCluster``, and the L1 ``CfnDBInstance`` / ``CfnDBCluster``. This module
turns each into the few facts they need: the L1 resource, instance or cluster, the engine and its
parameter-group family, and the cluster members declared in the app.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_rds as rds
from constructs import IConstruct

POSTGRES = "postgres"
AURORA_POSTGRES = "aurora-postgresql"
_MAJOR = re.compile(r"^(\d+)")


@dataclass
class Database:
    construct: IConstruct
    cfn: rds.CfnDBInstance | rds.CfnDBCluster
    engine: str | None  # lower case; None when synth cannot tell
    major: int | None
    members: list[rds.CfnDBInstance] = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.construct.node.path

    @property
    def is_cluster(self) -> bool:
        return isinstance(self.cfn, rds.CfnDBCluster)

    @property
    def is_postgres(self) -> bool:
        return self.engine in (POSTGRES, AURORA_POSTGRES)

    @property
    def is_aurora(self) -> bool:
        return self.engine == AURORA_POSTGRES

    @property
    def family(self) -> str | None:
        """The parameter-group family, e.g. postgres16 or aurora-postgresql16."""
        if self.engine is None or self.major is None:
            return None
        return f"{self.engine}{self.major}"

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
        return _arn(self.cfn, "cluster" if self.is_cluster else "db", self.cfn.ref)

    def member_arns(self) -> list[str]:
        return [_arn(self.cfn, "db", m.ref) for m in self.members]


def database_of(node: IConstruct) -> Database | None:
    """The database ``node`` declares, or None if it declares none (or is part of another one:
    the L1 under an L2, or an Aurora cluster member)."""
    if isinstance(node, rds.DatabaseCluster):
        cfn = node.node.default_child
        if not isinstance(cfn, rds.CfnDBCluster):
            return None
        engine, major = _from_engine(node.engine)
        members = [c for c in node.node.find_all() if isinstance(c, rds.CfnDBInstance)]
        return Database(node, cfn, engine, major, members)
    if isinstance(node, rds.DatabaseInstanceBase):
        cfn = node.node.default_child
        if not isinstance(cfn, rds.CfnDBInstance):
            return None  # imported: nothing in this app to change
        engine, major = _from_engine(node.engine)
        if engine is None:
            engine, major = _from_l1_instance(cfn)
        return Database(node, cfn, engine, major)
    if isinstance(node, (rds.CfnDBInstance, rds.CfnDBCluster)):
        if _owned_by_l2(node):
            return None
        if isinstance(node, rds.CfnDBInstance):
            if node.db_cluster_identifier is not None:
                return None  # a cluster member: its cluster is the database
            engine, major = _from_l1_instance(node)
            return Database(node, node, engine, major)
        engine, major = _engine_and_major(node.engine, node.engine_version)
        return Database(node, node, engine, major, _l1_members(node))
    return None


def _owned_by_l2(cfn: IConstruct) -> bool:
    owner = cfn.node.scope
    if not isinstance(owner, (rds.DatabaseInstanceBase, rds.DatabaseCluster)):
        return False
    child = owner.node.default_child
    # jsii may hand back a different proxy for the same construct: compare paths.
    return child is not None and child.node.path == cfn.node.path


def _from_engine(engine: rds.IEngine | None) -> tuple[str | None, int | None]:
    if engine is None:
        return None, None
    version = engine.engine_version
    return _engine_and_major(engine.engine_type, version.full_version if version else None)


def _from_l1_instance(cfn: rds.CfnDBInstance) -> tuple[str | None, int | None]:
    if cfn.engine is None and cfn.source_db_instance_identifier is not None:
        source = _source_instance(cfn)
        if source is not None:
            return _from_l1_or_owner(source)
    return _engine_and_major(cfn.engine, cfn.engine_version)


def _from_l1_or_owner(cfn: rds.CfnDBInstance) -> tuple[str | None, int | None]:
    owner = cfn.node.scope
    if isinstance(owner, rds.DatabaseInstanceBase) and owner.engine is not None:
        return _from_engine(owner.engine)
    return _engine_and_major(cfn.engine, cfn.engine_version)


def _engine_and_major(engine: Any, version: Any) -> tuple[str | None, int | None]:
    if not isinstance(engine, str) or cdk.Token.is_unresolved(engine):
        return None, None
    major = None
    if isinstance(version, str) and not cdk.Token.is_unresolved(version):
        m = _MAJOR.match(version)
        major = int(m.group(1)) if m else None
    return engine.lower(), major


def _source_instance(replica: rds.CfnDBInstance) -> rds.CfnDBInstance | None:
    """The CfnDBInstance a read replica's SourceDBInstanceIdentifier points at, in this stack."""
    stack = cdk.Stack.of(replica)
    refs = set(_refs(stack.resolve(replica.source_db_instance_identifier)))
    for c in stack.node.find_all():
        if isinstance(c, rds.CfnDBInstance) and stack.get_logical_id(c) in refs:
            return c
    return None


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
    return cdk.Stack.of(scope).format_arn(
        service="rds",
        resource=resource,
        resource_name=name,
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )
