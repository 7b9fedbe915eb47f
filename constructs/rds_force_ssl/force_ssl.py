"""``ForceSsl``: make one RDS for PostgreSQL instance or Aurora PostgreSQL cluster SSL-only."""

from __future__ import annotations

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from aws_cdk import aws_rds as rds
from constructs import Construct, IConstruct, IValidation

from rds_force_ssl import parameter_group as pg
from rds_force_ssl import rules
from rds_force_ssl.database import AURORA_POSTGRES, POSTGRES, Database, database_of
from rds_force_ssl.handlers import reboot as contract
from rds_force_ssl.reboot_provider import (
    DEFAULT_QUERY_INTERVAL,
    DEFAULT_TOTAL_TIMEOUT,
    RebootProvider,
    reboot_resource,
    shared_timing_problems,
    timing_problems,
)
from rds_force_ssl.report import PROTECTED_BY

DatabaseConstruct = (
    rds.DatabaseInstanceBase | rds.DatabaseCluster | rds.CfnDBInstance | rds.CfnDBCluster
)


class ForceSslError(ValueError):
    """Why a database cannot be protected; ``problems`` keeps each one with its rule."""

    def __init__(self, problems: list[rules.Problem]) -> None:
        self.problems = problems
        super().__init__(
            "ForceSsl cannot protect this database:\n- " + "\n- ".join(map(str, problems))
        )


def protected_by(database: IConstruct) -> str | None:
    """The construct path of the ForceSsl protecting ``database``, if any."""
    for entry in database.node.metadata:
        if entry.type == PROTECTED_BY:
            return str(entry.data)
    return None


class ForceSsl(Construct):
    """Enforce SSL on an RDS for PostgreSQL instance or a PostgreSQL cluster.

    database: an ``rds.DatabaseInstance`` (also ``FromSnapshot`` and ``ReadReplica``) or an
        ``rds.DatabaseCluster`` (aurora-postgresql), or their L1 ``CfnDBInstance`` /
        ``CfnDBCluster`` (which may also be a Multi-AZ DB cluster, engine postgres). Its engine
        version must be pinned, so that the parameter-group family is known.

    What it does: puts ``rds.force_ssl=1`` in the database's parameter group (adding to the one
    it already has in this app, or attaching the stack's own rds-force-ssl group for its family
    and settings, shared by every database that had none), and adds a custom resource that
    reboots what is still ``pending-reboot`` after the deploy and waits until the setting is in
    effect.

    min_tls_version: ``"TLSv1.2"`` or ``"TLSv1.3"`` as ``ssl_min_protocol_version``
        (default: None, the engine's default is left alone).
    ca_certificate: the server certificate's CA, e.g. ``rds.CaCertificate.RDS_CA_RSA2048_G1``;
        on a cluster it is set on every member declared in the app (default: None, left alone).
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
        database: DatabaseConstruct,
        min_tls_version: str | None = None,
        ca_certificate: rds.CaCertificate | None = None,
        force_failover: bool = False,
        query_interval: cdk.Duration = DEFAULT_QUERY_INTERVAL,
        total_timeout: cdk.Duration = DEFAULT_TOTAL_TIMEOUT,
    ) -> None:
        super().__init__(scope, construct_id)
        wanted = pg.wanted_parameters(min_tls_version)
        try:
            db = database_of(database)
            problems = check(self, database, db, wanted)
            usage = timing_problems(self.node.path, query_interval, total_timeout)
            usage += shared_timing_problems(self, self.node.path, query_interval, total_timeout)
            if db is not None:
                usage += pg.tls_problems(self.node.path, min_tls_version, db.major)
                if ca_certificate is not None:
                    usage += _ca_problems(db, ca_certificate)
            problems += [rules.Problem(None, text) for text in usage]
            provider = None
            if not problems:
                provider = RebootProvider.of(
                    self, query_interval=query_interval, total_timeout=total_timeout
                )
        except Exception:
            scope.node.try_remove_child(construct_id)
            raise
        if problems or db is None or provider is None:
            # Nothing has been added to the tree beyond this empty construct; take it back so a
            # caller that catches the error is left with the app it had.
            scope.node.try_remove_child(construct_id)
            raise ForceSslError(problems)

        group = pg.locate(self, db.group_name)
        if group.kind == "none":
            group = self._create_group(db, wanted)
        else:
            pg.merge(group, wanted)
        if ca_certificate is not None:
            for member in db.members if db.is_cluster else [db.cfn]:
                assert isinstance(member, rds.CfnDBInstance)
                member.ca_certificate_identifier = ca_certificate.to_string()
        assert group.l1 is not None
        self.parameter_group: cdk.CfnResource = group.l1
        self._grant(provider, db)
        self.reboot = reboot_resource(
            self,
            "Reboot",
            provider=provider,
            kind=contract.KIND_CLUSTER if db.is_cluster else contract.KIND_INSTANCE,
            identifier=db.cfn.ref,
            parameter_group_name=group.l1.ref,
            parameters=pg.LiveParameters(group.l1),
            force_failover=force_failover and not db.is_cluster,
        )
        self.node.add_validation(_StillEnforced(db.path, group.l1, wanted))
        # The Refs above already order it after the database and its group; cluster members are
        # not referenced, yet their creation must finish before anything is rebooted.
        if db.members:
            self.reboot.node.add_dependency(*db.members)
        database.node.add_metadata(PROTECTED_BY, self.node.path)

    @staticmethod
    def _create_group(db: Database, wanted: dict[str, str]) -> pg.GroupRef:
        """The stack's group for this family and these settings, made on first use.

        Databases that had no group of their own share it: it holds only what ForceSsl sets,
        and one group per database would cost a resource each (CloudFormation allows 500).
        """
        assert db.family is not None
        stack = cdk.Stack.of(db.cfn)
        floor = wanted.get(pg.MIN_TLS, "").replace("TLSv", "Tls").replace(".", "")
        family = "".join(ch for ch in db.family.title() if ch.isalnum())
        group_id = f"RdsForceSsl{'Cluster' if db.is_cluster else ''}Group{family}{floor}"
        group = stack.node.try_find_child(group_id)
        if group is None:
            kind = rds.CfnDBClusterParameterGroup if db.is_cluster else rds.CfnDBParameterGroup
            group = kind(
                stack,
                group_id,
                family=db.family,
                parameters=dict(wanted),
                description=f"rds-force-ssl: {', '.join(f'{k}={v}' for k, v in wanted.items())}",
            )
        assert isinstance(group, cdk.CfnResource)
        db.attach(group.ref)
        return pg.GroupRef("l1", group.node.path, l1=group, parameters=dict(wanted))

    @staticmethod
    def _grant(provider: RebootProvider, db: Database) -> None:
        # AddTagsToResource: the poller marks what it rebooted with the request it rebooted for
        # (handlers/reboot.py REBOOT_TAG), on the same ARNs it may reboot.
        if not db.is_cluster:
            read = ["rds:DescribeDBInstances"]
            reboot = ["rds:RebootDBInstance", "rds:AddTagsToResource"]
            targets = [db.arn()]
            reboot_targets = targets
        elif db.is_aurora:
            read = ["rds:DescribeDBClusters", "rds:DescribeDBInstances"]
            reboot = ["rds:RebootDBInstance", "rds:AddTagsToResource"]
            targets = [db.arn(), *db.member_arns()]
            reboot_targets = db.member_arns()
        else:
            # A Multi-AZ DB cluster reboots as a whole; RDS names its members.
            read = ["rds:DescribeDBClusters"]
            reboot = ["rds:RebootDBCluster", "rds:AddTagsToResource"]
            targets = reboot_targets = [db.arn()]
        provider.grant(
            read=iam.PolicyStatement(actions=read, resources=targets),
            reboot=iam.PolicyStatement(actions=reboot, resources=reboot_targets),
        )


@jsii.implements(IValidation)
class _StillEnforced:
    """At synth, the group must still say what ForceSsl put in it: a later
    ``add_parameter("rds.force_ssl", "0")`` in the user's code must not ship."""

    def __init__(self, db_path: str, group: cdk.CfnResource, wanted: dict[str, str]) -> None:
        self._db_path = db_path
        self._group = group
        self._wanted = wanted

    def validate(self) -> list[str]:
        have = pg.resolved_parameters(self._group, getattr(self._group, "parameters", None))
        return [
            f"{self._db_path}: parameter group {self._group.node.path} sets {key}="
            f"{(have or {}).get(key)} after ForceSsl set it to '{value}'; remove the later change"
            for key, value in self._wanted.items()
            if str((have or {}).get(key)) != value
        ]


def check(
    scope: IConstruct,
    database: IConstruct,
    db: Database | None,
    wanted: dict[str, str],
) -> list[rules.Problem]:
    """Every reason ``db`` cannot be protected as asked (empty when it can)."""
    path = database.node.path
    if db is None:
        return [
            rules.Problem(
                None,
                f"{path}: not a database ForceSsl can change (an imported instance or cluster, "
                "or an L1 that belongs to another construct); protect the construct that "
                "declares it in this app",
            )
        ]
    problems = rules.engine_problems(db)
    accepted = (AURORA_POSTGRES, POSTGRES) if db.is_cluster else (POSTGRES,)
    if db.engine is not None and db.engine not in accepted:
        problems = [
            rules.Problem(
                None,
                f"{path}: engine {db.engine} is not {' or '.join(accepted)}; ForceSsl only "
                "handles RDS for PostgreSQL and Aurora PostgreSQL (MySQL and MariaDB use "
                "require_secure_transport instead)",
            )
        ]
    earlier = protected_by(database)
    if earlier is not None:
        problems.append(
            rules.Problem(
                None, f"{path}: already protected by {earlier}; remove one of the two ForceSsl"
            )
        )
    problems += rules.group_problems(scope, db, pg.locate(scope, db.group_name), wanted)
    return problems


def _ca_problems(db: Database, ca: rds.CaCertificate) -> list[str]:
    problems = []
    for res in db.members if db.is_cluster else [db.cfn]:
        have = getattr(res, "ca_certificate_identifier", None)
        if have is not None and have != ca.to_string():
            problems.append(
                f"{db.path}: CA certificate is already {have}, but ForceSsl was asked for "
                f"{ca.to_string()}; make them agree"
            )
    return problems
