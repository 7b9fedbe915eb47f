"""``ForceSsl``: make one RDS for PostgreSQL instance or Aurora PostgreSQL cluster SSL-only."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_rds as rds
from constructs import Construct

from rds_force_ssl import parameter_group as pg
from rds_force_ssl.handlers import reboot as contract
from rds_force_ssl.reboot_provider import (
    DEFAULT_QUERY_INTERVAL,
    DEFAULT_TOTAL_TIMEOUT,
    RebootProvider,
    reboot_resource,
    timing_problems,
)
from rds_force_ssl.report import PROTECTED_BY

_ENGINES = {"instance": ("postgres",), "cluster": ("aurora-postgresql",)}


def protected_by(database: Construct) -> str | None:
    """The construct path of the ForceSsl protecting ``database``, if any."""
    for entry in database.node.metadata:
        if entry.type == PROTECTED_BY:
            return str(entry.data)
    return None


class ForceSsl(Construct):
    """Enforce SSL on an RDS for PostgreSQL instance or an Aurora PostgreSQL cluster.

    ``database``: the ``rds.DatabaseInstance`` (postgres) or ``rds.DatabaseCluster``
    (aurora-postgresql) to protect. Its engine version must be pinned, so that the
    parameter-group family is known.

    What it does: puts ``rds.force_ssl=1`` in the database's parameter group (creating one, or
    adding to the CDK group it already has), and adds a custom resource that reboots what is
    still ``pending-reboot`` after the deploy and waits until the setting is in effect.

    min_tls_version: ``"TLSv1.2"`` or ``"TLSv1.3"`` as ``ssl_min_protocol_version``
        (default: None, the engine's default is left alone).
    ca_certificate: the server certificate's CA, e.g. ``rds.CaCertificate.RDS_CA_RSA2048_G1``;
        on a cluster it is set on every member (default: None, left alone).
    force_failover: reboot a Multi-AZ instance with failover, which is shorter; ignored on
        Single-AZ instances and clusters (default: False).
    query_interval: how often the reconciler looks while it waits (default: 10 s).
    total_timeout: how long it may wait in all, at most 60 min (default: 50 min). Every
        ForceSsl in a stack shares one provider, so they must agree on both timings.

    Protecting the same database twice is an error that names the first ForceSsl.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        database: rds.DatabaseInstance | rds.DatabaseCluster,
        min_tls_version: str | None = None,
        ca_certificate: rds.CaCertificate | None = None,
        force_failover: bool = False,
        query_interval: cdk.Duration = DEFAULT_QUERY_INTERVAL,
        total_timeout: cdk.Duration = DEFAULT_TOTAL_TIMEOUT,
    ) -> None:
        super().__init__(scope, construct_id)
        path = self.node.path
        db_path = database.node.path
        problems: list[str] = []

        kind = "cluster" if isinstance(database, rds.DatabaseCluster) else "instance"
        cfn = database.node.default_child
        engine = database.engine
        engine_type = engine.engine_type if engine is not None else None
        family = engine.parameter_group_family if engine is not None else None
        major = _major(engine)
        if engine is None:
            problems.append(
                f"{db_path}: its engine is unknown to CDK (a read replica does not expose it); "
                "protect the source instance, and give a replica a parameter_group with "
                f"{pg.FORCE_SSL}=1 yourself"
            )
        elif engine_type not in _ENGINES[kind]:
            problems.append(
                f"{db_path}: engine {engine_type} is not {' or '.join(_ENGINES[kind])}; ForceSsl "
                "only handles RDS for PostgreSQL instances and Aurora PostgreSQL clusters "
                "(MySQL and MariaDB use require_secure_transport instead)"
            )
        elif family is None:
            problems.append(
                f"{db_path}: engine version is not pinned, so the parameter-group family is "
                "unknown; pass e.g. engine=rds.DatabaseInstanceEngine.postgres("
                "version=rds.PostgresEngineVersion.VER_16_9)"
            )
        if not isinstance(cfn, (rds.CfnDBInstance, rds.CfnDBCluster)):
            problems.append(f"{db_path}: no CfnDBInstance/CfnDBCluster found under it")
        earlier = protected_by(database)
        if earlier is not None:
            problems.append(
                f"{db_path}: already protected by {earlier}; remove one of the two ForceSsl"
            )
        problems += pg.tls_problems(path, min_tls_version, major)
        problems += timing_problems(path, query_interval, total_timeout)
        if ca_certificate is not None and kind == "instance":
            problems += _ca_problems(db_path, [cfn], ca_certificate)
        members = _cluster_members(database) if isinstance(database, rds.DatabaseCluster) else []
        if ca_certificate is not None and kind == "cluster":
            problems += _ca_problems(db_path, members, ca_certificate)

        wanted = pg.wanted_parameters(min_tls_version)
        group = pg.GroupRef("none", "")
        if isinstance(cfn, rds.CfnDBInstance):
            group = pg.locate(self, cfn.db_parameter_group_name)
        elif isinstance(cfn, rds.CfnDBCluster):
            group = pg.locate(self, cfn.db_cluster_parameter_group_name)
        if group.kind != "none":
            problems += pg.conflicts(db_path, group, wanted)
        if problems:
            # Nothing has been added to the tree yet beyond this empty construct; take it back
            # so a caller that catches the error is left with the app it had.
            scope.node.try_remove_child(construct_id)
            raise ValueError("ForceSsl cannot protect this database:\n- " + "\n- ".join(problems))

        assert engine is not None
        if group.kind == "none":
            created = rds.ParameterGroup(
                self,
                "ParameterGroup",
                engine=engine,
                parameters=wanted,
                description=f"rds-force-ssl for {db_path}",
            )
            if isinstance(cfn, rds.CfnDBInstance):
                cfn.db_parameter_group_name = created.bind_to_instance().parameter_group_name
            else:
                assert isinstance(cfn, rds.CfnDBCluster)
                cfn.db_cluster_parameter_group_name = created.bind_to_cluster().parameter_group_name
            group_name = (
                cfn.db_parameter_group_name
                if isinstance(cfn, rds.CfnDBInstance)
                else cfn.db_cluster_parameter_group_name
            )
            group = pg.locate(self, group_name)
        else:
            pg.merge(group, wanted)
        if ca_certificate is not None:
            for member in [cfn] if kind == "instance" else members:
                member.ca_certificate_identifier = ca_certificate.to_string()  # type: ignore[union-attr]
        assert group.l1 is not None
        self.parameter_group = group.l1

        provider = RebootProvider.of(
            self, query_interval=query_interval, total_timeout=total_timeout, requester=path
        )
        stack = cdk.Stack.of(self)
        if isinstance(database, rds.DatabaseCluster):
            identifier = database.cluster_identifier
            member_arns = [_instance_arn(stack, i) for i in database.instance_identifiers]
            provider.grant(
                read=iam.PolicyStatement(
                    actions=["rds:DescribeDBClusters", "rds:DescribeDBInstances"],
                    resources=[database.cluster_arn, *member_arns],
                ),
                reboot=iam.PolicyStatement(actions=["rds:RebootDBInstance"], resources=member_arns),
            )
        else:
            identifier = database.instance_identifier
            provider.grant(
                read=iam.PolicyStatement(
                    actions=["rds:DescribeDBInstances"], resources=[database.instance_arn]
                ),
                reboot=iam.PolicyStatement(
                    actions=["rds:RebootDBInstance"], resources=[database.instance_arn]
                ),
            )
        self.reboot = reboot_resource(
            self,
            "Reboot",
            provider=provider,
            kind=contract.KIND_CLUSTER if kind == "cluster" else contract.KIND_INSTANCE,
            identifier=identifier,
            parameter_group_name=group.l1.ref,
            parameters=group.l1.parameters,  # type: ignore[attr-defined]
            force_failover=force_failover and kind == "instance",
        )
        # The Refs above already order it after the database and its group; cluster members are
        # not referenced, yet their creation must finish before anything is rebooted.
        if members:
            self.reboot.node.add_dependency(*members)
        database.node.add_metadata(PROTECTED_BY, path)


def _major(engine: rds.IEngine | None) -> int | None:
    version = engine.engine_version if engine is not None else None
    if version is None or not version.major_version:
        return None
    try:
        return int(version.major_version.split(".")[0])
    except ValueError:
        return None


def _cluster_members(cluster: rds.DatabaseCluster) -> list[rds.CfnDBInstance]:
    return [c for c in cluster.node.find_all() if isinstance(c, rds.CfnDBInstance)]


def _ca_problems(db_path: str, resources: Sequence[object], ca: rds.CaCertificate) -> list[str]:
    problems = []
    for res in resources:
        have = getattr(res, "ca_certificate_identifier", None)
        if have is not None and have != ca.to_string():
            problems.append(
                f"{db_path}: CA certificate is already {have}, but ForceSsl was asked for "
                f"{ca.to_string()}; make them agree"
            )
    return problems


def _instance_arn(stack: cdk.Stack, identifier: str) -> str:
    return stack.format_arn(
        service="rds",
        resource="db",
        resource_name=identifier,
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )
