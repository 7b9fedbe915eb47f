"""``ForceSsl``: make one RDS database (or RDS Proxy) SSL-only, whatever its engine.

What differs by engine (the parameter, its value, the group family, static or dynamic, the
minimum version) comes from the engine table in ``facts/engines.py``; this module has no
per-engine branch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_rds as rds
from constructs import Construct, IConstruct, IValidation

from rds_force_ssl import parameter_group as pg
from rds_force_ssl import rules, tree
from rds_force_ssl.database import Database, Proxy, database_of, proxy_of
from rds_force_ssl.facts import contract, engines, window
from rds_force_ssl.facts.policy import Reboot
from rds_force_ssl.handlers import maintenance
from rds_force_ssl.handlers.decide import SETTLE_S
from rds_force_ssl.handlers.observe import AUTOSCALED_PREFIX, AUTOSCALED_TAG
from rds_force_ssl.options import (
    FLOOR_NOT_AT_SYNTH,
    DatabaseConstruct,
    ForceSslError,
    Option,
    _autoscaled_readers_problem,
    _is_token,
    _known_keywords,
    _policy_problems,
    database_problems,
    options_of,
    type_problems,
)
from rds_force_ssl.options import option_problems as _option_problems
from rds_force_ssl.reboot_provider import (
    DEFAULT_QUERY_INTERVAL,
    DEFAULT_TOTAL_TIMEOUT,
    RebootProvider,
    reboot_resource,
    shared_timing_problems,
    timing_problems,
    window_problems,
)
from rds_force_ssl.report import PROTECTED_BY, REBOOT_RESOURCE
from rds_force_ssl.state import STATE

# What one Aurora member's turn in a rolling reboot takes: the reboot itself (crash recovery;
# usually one to three minutes, AWS publishes no bound) and the poll that sees it back. An
# estimate for the synth-time warning, not a limit.
MEMBER_REBOOT_ESTIMATE_S = 240
ROLLING_WARNING = "rds-force-ssl:rolling-reboot-time"
NEVER_WARNING = "rds-force-ssl:reboot-never"
CLOUDFORMATION_WARNING = "rds-force-ssl:cloudformation-restarts-it"
WINDOW_WARNING = "rds-force-ssl:window-too-short"


def options() -> dict[str, Option]:
    """ForceSsl's options, read from its own signature: every keyword but ``database``."""
    return options_of(ForceSsl.__init__)


def option_problems(path: str, given: Mapping[str, Any]) -> list[str]:
    """Every problem with ForceSsl options that does not depend on the database (see
    ``options.option_problems``): SslBaseline.apply checks the options it will pass on."""
    return _option_problems(path, given, options())


def protected_by(database: IConstruct) -> str | None:
    """The construct path of the ForceSsl protecting ``database``, if any."""
    return STATE.protected.get(tree.ref(database))


class ForceSsl(Construct):
    """Enforce SSL on an RDS database or an RDS Proxy.

    database: an ``rds.DatabaseInstance`` (also ``FromSnapshot`` and ``ReadReplica``), an
        ``rds.DatabaseCluster`` (Aurora), an ``rds.DatabaseProxy``, or their L1
        ``CfnDBInstance`` / ``CfnDBCluster`` (also a Multi-AZ DB cluster) / ``CfnDBProxy``. The
        engine is one the engine table covers (PostgreSQL, Aurora PostgreSQL, MySQL, MariaDB
        10.5+, Aurora MySQL 2+, SQL Server) and its version is pinned, so that the
        parameter-group family is known.

    What it does on a database: puts the engine's SSL parameter (``rds.force_ssl=1``,
    ``require_secure_transport``) in the database's parameter group (adding to the one it
    already has in this app, or attaching the stack's own rds-force-ssl group for its family
    and settings, shared by every database that had none), and adds a custom resource that
    reboots what is still ``pending-reboot`` after the deploy and waits until the setting is in
    effect. On a proxy: sets ``RequireTLS`` (no reboot, no custom resource).

    reboot: when ForceSsl may restart the database for its parameters: ``Reboot.IMMEDIATE``
        (during the deploy, which finishes once they are in effect),
        ``Reboot.MAINTENANCE_WINDOW`` (the deploy finishes with ``Outcome`` ``reboot-scheduled``
        when a restart is owed, and the stack's schedule restarts the database inside its own
        ``PreferredMaintenanceWindow``) or ``Reboot.NEVER`` (``Outcome`` ``pending-reboot``:
        restarting is yours; a warning at synth). Ignored on a proxy (default: IMMEDIATE, or
        MAINTENANCE_WINDOW where the database sets ``apply_immediately=False``, which synth
        reports).
    reboot_for_other_parameters: restart (as ``reboot`` says) for a ``pending-reboot`` that
        only the group's other parameters cause, which ForceSsl otherwise leaves to you once its
        own are in effect; not with ``Reboot.NEVER`` (default: False).

    min_tls_version: ``"TLSv1.2"`` or ``"TLSv1.3"``; on PostgreSQL as
        ``ssl_min_protocol_version``; on MySQL 8.0+ TLS 1.2 is the engine's own floor, so
        ``"TLSv1.2"`` needs nothing; elsewhere it is refused (default: None, left alone).
    ca_certificate: the server certificate's CA, e.g. ``rds.CaCertificate.RDS_CA_RSA2048_G1``;
        on a cluster it is set on every member declared in the app (default: None, left alone).
    force_failover: reboot a Multi-AZ instance with failover, which is shorter; ignored on
        Single-AZ instances, clusters and proxies (default: False).
    autoscaled_readers: let the reconciler describe and reboot the readers Aurora Auto Scaling
        adds to this cluster, which the app cannot declare. IAM names them by the tag AWS puts
        on them (``application-autoscaling:resourceId`` = ``cluster:<id>``), so no other
        database is reachable. Aurora clusters only (default: False: such a reader that needs
        a reboot fails the deploy with its name and the fix).
    log_connections: also set ``log_connections=1`` (PostgreSQL and Aurora PostgreSQL only;
        dynamic in a group already in effect, but a newly associated group waits for a
        restart like any other change of group): PostgreSQL then logs every login, with
        ``SSL enabled`` when it uses TLS, which ``rds-force-ssl clients --log-file`` /
        ``--instance`` reads. To log before enforcing, set it in the group yourself first
        (README, "Before you enforce") (default: False).
    outcome_output: add a stack output with the reboot resource's ``Outcome`` (``in-sync``,
        ``reboot-scheduled``, ...), so that ``cdk deploy`` prints what the deploy left in
        effect; ignored on a proxy, which has no reboot (default: False).
    query_interval: how often the reconciler looks while it waits (default: 10 s).
    total_timeout: how long it may wait in all, at most 60 min (default: 50 min). Every
        ForceSsl in a stack shares one provider, so they must agree on both timings.

    Protecting the same database twice is an error that names the first ForceSsl.
    """

    @_known_keywords
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        database: DatabaseConstruct,
        min_tls_version: str | None = None,
        ca_certificate: rds.CaCertificate | None = None,
        force_failover: bool = False,
        autoscaled_readers: bool = False,
        reboot: Reboot | None = None,
        reboot_for_other_parameters: bool = False,
        outcome_output: bool = False,
        log_connections: bool = False,
        query_interval: cdk.Duration = DEFAULT_QUERY_INTERVAL,
        total_timeout: cdk.Duration = DEFAULT_TOTAL_TIMEOUT,
    ) -> None:
        # First the arguments themselves, before anything joins the tree. locals() holds exactly
        # the parameters here, so an option added to the signature is checked with the rest.
        path = tree.child_path(scope, construct_id)  # self.node.path, read once per scope
        given = {name: value for name, value in locals().items() if name in options()}
        usage = database_problems(path, database) + type_problems(path, given, options())
        usage = usage or _policy_problems(path, reboot, reboot_for_other_parameters)
        if usage:
            raise ForceSslError([rules.Problem(None, text) for text in usage])
        super().__init__(scope, construct_id)
        # The group it wrote to (None on a proxy), and the reboot resource (None on a proxy).
        self.parameter_group: cdk.CfnResource | None = None
        self.reboot: cdk.CustomResource | None = None
        self._path = path
        try:
            proxy = proxy_of(database)
            if proxy is not None:
                problems = check_proxy(database, proxy, min_tls_version, ca_certificate)
                if autoscaled_readers:
                    problems.append(_autoscaled_readers_problem(self._path))
                if log_connections:
                    problems.append(_log_connections_problem(self._path, "an RDS Proxy"))
                if not problems:
                    self._protect_proxy(scope, proxy)
            else:
                problems = self._protect_database(
                    scope,
                    database,
                    min_tls_version=min_tls_version,
                    ca_certificate=ca_certificate,
                    force_failover=force_failover,
                    autoscaled_readers=autoscaled_readers,
                    reboot=reboot,
                    reboot_for_other_parameters=reboot_for_other_parameters,
                    outcome_output=outcome_output,
                    log_connections=log_connections,
                    query_interval=query_interval,
                    total_timeout=total_timeout,
                )
        except Exception:
            scope.node.try_remove_child(construct_id)
            raise
        if problems:
            # Nothing has been added to the tree beyond this empty construct; take it back so a
            # caller that catches the error is left with the app it had.
            scope.node.try_remove_child(construct_id)
            raise ForceSslError(problems)
        tree.node_of(database).add_metadata(PROTECTED_BY, self._path)
        STATE.protected[tree.ref(database)] = self._path

    def _protect_database(
        self,
        scope: Construct,
        database: IConstruct,
        *,
        min_tls_version: str | None,
        ca_certificate: rds.CaCertificate | None,
        force_failover: bool,
        autoscaled_readers: bool,
        reboot: Reboot | None,
        reboot_for_other_parameters: bool,
        outcome_output: bool,
        log_connections: bool,
        query_interval: cdk.Duration,
        total_timeout: cdk.Duration,
    ) -> list[rules.Problem]:
        """Protect ``database``, or return every reason it cannot be (changing nothing).

        Everything deployed goes to the database's own stack (``home``), wherever this
        construct sits: its group is there already, and a reboot resource in another stack
        would make that stack depend on the database's, a cycle whenever the database's stack
        uses anything of it (a VPC in a network stack, say). One deploy then both changes the
        group and puts it in effect."""
        db = database_of(database)
        home = tree.stack_of(database)
        problems, group = check(
            self, database, db, min_tls_version, log_connections=log_connections
        )
        usage = timing_problems(self._path, query_interval, total_timeout)
        if log_connections and db is not None and db.facts and not db.facts.connection_log:
            usage.append(_log_connections_problem(self._path, db.facts.title).text)
        if cdk.Stage.of(home) is not cdk.Stage.of(self):
            usage.append(
                f"{self._path}: the database {tree.path_of(database)} is in another Stage, and "
                "CloudFormation stacks of different Stages cannot refer to each other; create "
                "the ForceSsl in the database's Stage (or its stack)"
            )
        usage += shared_timing_problems(home, self._path, query_interval, total_timeout)
        if db is not None and ca_certificate is not None:
            usage += _ca_problems(db, ca_certificate)
        if autoscaled_readers and not (db is not None and db.is_cluster and db.is_aurora):
            usage.append(_autoscaled_readers_problem(self._path).text)
        # Only where the policy is not given: one read of the L1 (a member's, on a cluster).
        deferred = reboot is None and db is not None and db.defers_changes()
        policy = reboot or (Reboot.MAINTENANCE_WINDOW if deferred else Reboot.IMMEDIATE)
        if policy is Reboot.MAINTENANCE_WINDOW and db is not None:
            members = len(db.members) if db.is_aurora else 0
            usage += window_problems(home, self._path, members=members)
        problems += [rules.Problem(None, text) for text in usage]
        if problems:
            return problems
        assert db is not None  # check() reports a None db as a problem
        assert group is not None  # and locates the group when it finds none
        facts = db.facts
        assert facts is not None
        provider = RebootProvider.of(
            home, query_interval=query_interval, total_timeout=total_timeout
        )
        wanted = enforced_parameters(facts, min_tls_version, group, log_connections=log_connections)
        note = facts.tls_floor_note(min_tls_version) if min_tls_version else None
        if note is not None:  # a floor is always either set or explained
            cdk.Annotations.of(self).add_info(f"[rds-force-ssl] {note}")
        attached = group.kind == "none"  # ForceSsl changes which group the database uses
        if attached:
            group = self._create_group(db, wanted)
        else:
            pg.merge(group, wanted)
        if ca_certificate is not None:
            for member in db.members if db.is_cluster else [db.cfn]:
                assert isinstance(member, rds.CfnDBInstance)
                member.ca_certificate_identifier = ca_certificate.to_string()
        assert group.l1 is not None
        self.parameter_group = group.l1
        self._grant(provider, db, group.ref, autoscaled_readers=autoscaled_readers)
        elsewhere = home is not tree.stack_of(self)
        self.reboot = reboot_resource(
            # In the database's stack, named after this construct's path when that is another.
            home if elsewhere else self,
            _elsewhere_id(self._path) if elsewhere else "Reboot",
            provider=provider,
            kind=contract.KIND_CLUSTER if db.is_cluster else contract.KIND_INSTANCE,
            identifier=db.ref,
            parameter_group_name=group.ref,
            parameters=group.live_parameters,
            enforced=wanted,
            members=[m.ref for m in db.members] if db.is_aurora else [],
            autoscaled_readers=autoscaled_readers,
            force_failover=force_failover and not db.is_cluster,
            reboot=policy,
            reboot_for_other_parameters=reboot_for_other_parameters,
        )
        if policy is Reboot.MAINTENANCE_WINDOW:
            provider.schedule(
                identifier=db.ref,
                owed_since=self.reboot.get_att_string(contract.ATTR_REBOOT_OWED_SINCE),
                members=[m.ref for m in db.members] if db.is_aurora else [],
                cluster=db.is_cluster,
                autoscaled_readers=autoscaled_readers,
                force_failover=force_failover and not db.is_cluster,
            )
        self._say_policy(db, policy, deferred=deferred, attached=attached)
        if policy is Reboot.IMMEDIATE:
            self._warn_if_rolling_reboot_is_too_long(db, provider)
        elif policy is Reboot.MAINTENANCE_WINDOW:
            self._warn_if_members_outnumber_the_window(db)
        if elsewhere:
            tree.node_of(database).add_metadata(REBOOT_RESOURCE, tree.path_of(self.reboot))
        if outcome_output:
            cdk.CfnOutput(
                home if elsewhere else self,
                _elsewhere_id(self._path).removesuffix("Reboot") + "Outcome"
                if elsewhere
                else "Outcome",
                value=self.reboot.get_att_string("Outcome"),
                description=f"rds-force-ssl: what the deploy left on {tree.path_of(database)}: "
                + _OUTCOME_MEANINGS[policy],
            )
        _checks(home).append(_StillEnforced(db, group.l1, group.ref, facts, wanted))
        # The Refs above already order it after the database and its group; cluster members are
        # not referenced, yet their creation must finish before anything is rebooted.
        if db.members:
            self.reboot.node.add_dependency(*db.members)
        return []

    @staticmethod
    def _protect_proxy(scope: Construct, proxy: Proxy) -> None:
        # No reboot: RequireTLS is a property of the proxy, which CloudFormation modifies itself.
        proxy.cfn.require_tls = True
        _checks(scope).append(_ProxyStillRequiresTls(proxy))

    @staticmethod
    def _create_group(db: Database, wanted: dict[str, str]) -> pg.GroupRef:
        """The stack's group for this family and these settings, made on first use.

        Databases that had no group of their own share it: it holds only what ForceSsl sets,
        and one group per database would cost a resource each (CloudFormation allows 500).
        """
        assert db.family is not None
        stack = tree.stack_of(db.cfn)
        floor = "".join(
            value.replace("TLSv", "Tls").replace(".", "")
            for value in wanted.values()
            if value in engines.TLS_VERSIONS
        )
        family = "".join(ch for ch in db.family.title() if ch.isalnum())
        if db.facts is not None and db.facts.connection_log in wanted:
            floor += "LogConnections"  # a group of its own: the others' stay as they are
        group_id = f"RdsForceSsl{'Cluster' if db.is_cluster else ''}Group{family}{floor}"
        shared = STATE.groups.get((tree.ref(stack), group_id))
        if shared is None:
            group = stack.node.try_find_child(group_id)
            if group is None:
                kind = rds.CfnDBClusterParameterGroup if db.is_cluster else rds.CfnDBParameterGroup
                group = kind(
                    stack,
                    group_id,
                    family=db.family,
                    parameters=dict(wanted),
                    description="rds-force-ssl: "
                    + ", ".join(f"{k}={v}" for k, v in wanted.items()),
                )
            assert isinstance(group, cdk.CfnResource)
            shared = STATE.groups[(tree.ref(stack), group_id)] = pg.GroupRef(
                "l1", tree.path_of(group), l1=group, parameters=dict(wanted)
            )
        assert shared.l1 is not None
        db.attach(shared.ref)
        return shared

    @staticmethod
    def _grant(
        provider: RebootProvider, db: Database, group_name: str, *, autoscaled_readers: bool
    ) -> None:
        """IAM for this database: describe it, read the parameters ForceSsl owns in its group,
        reboot what it may need to reboot; only its own ARNs (the Service Authorization
        Reference gives each of these actions a resource type)."""
        stack = tree.stack_of(db.cfn)

        def rds_arn(resource: str, name: str) -> str:
            return tree.arn(stack, "rds", resource, name)

        if not db.is_cluster:
            provider.grant(["rds:DescribeDBInstances"], [db.arn()], reboot=False)
            provider.grant(["rds:DescribeDBParameters"], [rds_arn("pg", group_name)], reboot=False)
            provider.grant(["rds:RebootDBInstance"], [db.arn()], reboot=True)
            return
        provider.grant(["rds:DescribeDBClusters"], [db.arn()], reboot=False)
        provider.grant(
            ["rds:DescribeDBClusterParameters"], [rds_arn("cluster-pg", group_name)], reboot=False
        )
        if not db.is_aurora:
            # A Multi-AZ DB cluster reboots as a whole. The Service Authorization Reference
            # lists rds:RebootDBInstance as a dependent action of rds:RebootDBCluster, on
            # resources it does not name: the members, which RDS names after the cluster
            # ("<cluster>-instance-1" in AWS's examples); not verified against an account.
            provider.grant(["rds:RebootDBCluster"], [db.arn()], reboot=True)
            provider.grant(["rds:RebootDBInstance"], [rds_arn("db", f"{db.ref}-*")], reboot=True)
            return
        members = db.member_arns()
        if members:
            provider.grant(["rds:DescribeDBInstances"], members, reboot=False)
            provider.grant(["rds:RebootDBInstance"], members, reboot=True)
        if autoscaled_readers:
            # Aurora Auto Scaling names its readers application-autoscaling-<uuid> and tags them
            # application-autoscaling:resourceId = cluster:<cluster id> (Aurora user guide, "DB
            # instance IDs and tagging"); RDS's db resource type takes aws:ResourceTag.
            tagged = rds_arn("db", f"{AUTOSCALED_PREFIX}*")
            condition = {
                "StringEquals": {
                    f"aws:ResourceTag/{AUTOSCALED_TAG}": cdk.Fn.join("", ["cluster:", db.ref])
                }
            }
            for action, reboot in (("DescribeDBInstances", False), ("RebootDBInstance", True)):
                provider.grant([f"rds:{action}"], [tagged], reboot=reboot, conditions=condition)

    def _say_policy(self, db: Database, policy: Reboot, *, deferred: bool, attached: bool) -> None:
        """At synth, what the stack will say when the deploy ends without a restart it owes, and
        where CloudFormation itself would restart what the policy leaves alone."""
        if (
            policy is not Reboot.IMMEDIATE
            and attached
            and not db.is_cluster
            and not deferred
            and not db.defers_changes()
        ):
            # CloudFormation's DBInstance update handler reboots an instance it leaves
            # pending-reboot unless ApplyImmediately is false (aws-cloudformation-resource-
            # providers-rds, aws-rds-dbinstance UpdateHandler.shouldReboot). A new group
            # association on an existing instance is such an update.
            cdk.Annotations.of(self).add_warning_v2(
                CLOUDFORMATION_WARNING,
                f"{db.path}: reboot=Reboot.{policy.name}, but ForceSsl attaches a parameter group "
                "to it, and on an existing instance CloudFormation's own DBInstance handler "
                "restarts it during the deploy when that leaves it pending-reboot, unless the "
                "instance has apply_immediately=False. Give it apply_immediately=False (a new "
                "instance, created with the group, is not restarted either way).",
            )
        if policy is Reboot.NEVER:
            cdk.Annotations.of(self).add_warning_v2(
                NEVER_WARNING,
                f"{db.path}: reboot=Reboot.NEVER: ForceSsl never restarts it, so where its "
                "parameters need a restart the deploy ends with Outcome pending-reboot and the "
                "database accepts plaintext until you reboot it (rds-force-ssl audit shows it "
                "as pending-reboot). Use Reboot.MAINTENANCE_WINDOW to have it done in its "
                "maintenance window.",
            )
        elif deferred:
            cdk.Annotations.of(self).add_info(
                f"{db.path} sets apply_immediately=False, so ForceSsl restarts it in its "
                "maintenance window (Reboot.MAINTENANCE_WINDOW): the deploy ends with Outcome "
                "reboot-scheduled where a restart is owed. Pass reboot=Reboot.IMMEDIATE to "
                "restart it during the deploy."
            )

    @property
    def outcome(self) -> str:
        """The reboot resource's ``Outcome`` attribute, a token for a ``CfnOutput`` or anything
        that takes a string: ``in-sync``, ``reboot-scheduled``, ``pending-reboot``,
        ``in-effect-other-changes-pending-reboot`` or ``stopped-applies-at-next-start``."""
        return self._attribute("Outcome")

    @property
    def rebooted(self) -> str:
        """The reboot resource's ``Rebooted`` attribute, a token: ``true`` when RDS restarted
        the database, or a member, while the deploy ran."""
        return self._attribute("Rebooted")

    def _attribute(self, name: str) -> str:
        if self.reboot is None:
            raise AttributeError(
                f"{self._path}: protects an RDS Proxy, which has no reboot resource and so no "
                f"{name} (RequireTLS applies without a restart); read it on a database's ForceSsl"
            )
        return self.reboot.get_att_string(name)

    def _warn_if_members_outnumber_the_window(self, db: Database) -> None:
        """The schedule restarts one Aurora member per run: warn when the cluster's window (as
        written in the app, else RDS's default 30 minutes) has fewer runs than members."""
        if not (db.is_cluster and db.is_aurora) or not db.members:
            return
        written = getattr(db.cfn, "preferred_maintenance_window", None)
        try:
            length = window.parse(written).length if isinstance(written, str) else 1800
        except ValueError:
            length = 1800  # a token: RDS's default length
        runs = max(0, int(length - maintenance.MARGIN_S) // (maintenance.RATE_MINUTES * 60) + 1)
        if len(db.members) <= runs:
            return
        cdk.Annotations.of(self).add_warning_v2(
            WINDOW_WARNING,
            f"{db.path}: its {len(db.members)} members are restarted one per run of the "
            f"maintenance-window schedule (every {maintenance.RATE_MINUTES} min), and its "
            f"{length // 60}-minute window holds {runs} runs: the rest wait for the next "
            "week's window. Lengthen the cluster's preferred_maintenance_window, or use "
            "Reboot.IMMEDIATE for it.",
        )

    def _warn_if_rolling_reboot_is_too_long(self, db: Database, provider: RebootProvider) -> None:
        """Aurora members are rebooted one at a time: warn when that cannot fit the time budget."""
        if not (db.is_cluster and db.is_aurora) or not db.members:
            return
        need = len(db.members) * MEMBER_REBOOT_ESTIMATE_S + SETTLE_S
        if need <= provider.total_timeout_s:
            return
        cdk.Annotations.of(self).add_warning_v2(
            ROLLING_WARNING,
            f"{db.path}: its {len(db.members)} members, rebooted one at a time, take about "
            f"{need // 60} min ({MEMBER_REBOOT_ESTIMATE_S // 60} min each, plus "
            f"{SETTLE_S // 60} min for RDS to settle), more than total_timeout "
            f"({int(provider.total_timeout_s) // 60} min); a deploy that must reboot them all "
            "would time out. Raise total_timeout (at most 60 min), or protect fewer members per "
            "cluster. Aurora Auto Scaling readers add to this.",
        )


def enforced_parameters(
    facts: engines.Engine,
    min_tls_version: str | None,
    group: pg.GroupRef,
    *,
    log_connections: bool = False,
) -> dict[str, str]:
    """The parameters ForceSsl owns on this database, from the engine table: the one place they
    are computed (the group, the reboot resource and the synth-time check all use them).

    A group that already enforces with another spelling the engine accepts (``ON`` for ``1``)
    keeps its own value: ForceSsl does not rewrite what already holds.
    """
    wanted = facts.wanted_parameters(min_tls_version, log_connections=log_connections)
    assert facts.parameter is not None
    have = (group.parameters or {}).get(facts.parameter)
    if have is not None and facts.enforces(have):
        wanted[facts.parameter] = str(have)
    return wanted


class _StillEnforced:
    """At synth, the database must still use the group, and the group must still say what
    ForceSsl put in it: a later ``add_parameter("rds.force_ssl", "0")``, or a later
    ``db_parameter_group_name = ...``, in the user's code must not ship."""

    def __init__(
        self,
        db: Database,
        group: cdk.CfnResource,
        group_name: str,
        facts: engines.Engine,
        wanted: Mapping[str, str],
    ) -> None:
        self._db = db
        self.group = group
        self._group_name = group_name  # the group's Ref, as ForceSsl attached or found it
        self._facts = facts
        self._wanted = dict(wanted)

    def problems(self, have: Mapping[str, object]) -> list[str]:
        """What is wrong, given the group's parameters as synth resolves them now."""
        problems = []
        uses = self._db.group_name
        if uses != self._group_name:
            shown = tree.stack_of(self.group).resolve(uses) if uses is not None else "no group"
            problems.append(
                f"{self._db.path}: uses parameter group {shown} after ForceSsl gave it "
                f"{tree.path_of(self.group)}; remove the later change"
            )
        for key, value in self._wanted.items():
            now = have.get(key)
            held = self._facts.enforces(now) if key == self._facts.parameter else str(now) == value
            if not held:
                problems.append(
                    f"{self._db.path}: parameter group {tree.path_of(self.group)} sets {key}="
                    f"{now} after ForceSsl set it to '{value}'; remove the later change"
                )
        return problems


class _ProxyStillRequiresTls:
    """At synth, the proxy must still require TLS: a later ``require_tls = False`` fails."""

    def __init__(self, proxy: Proxy) -> None:
        self._proxy = proxy

    def problems(self) -> list[str]:
        if self._proxy.cfn.require_tls is True:
            return []
        return [
            f"{self._proxy.path}: {engines.PROXY.property} is "
            f"{self._proxy.cfn.require_tls} after ForceSsl set it to true; remove the later change"
        ]


# One synth-time check of a stack (see _StackChecks).
StackCheck = _StillEnforced | _ProxyStillRequiresTls


@jsii.implements(IValidation)
class _StackChecks:
    """One validation per stack for every ForceSsl in it: a jsii callback per database, and a
    resolve of the same shared group for each, cost more than the checks themselves."""

    def __init__(self, checks: list[StackCheck]) -> None:
        self._checks = checks

    def validate(self) -> list[str]:
        problems: list[str] = []
        groups: dict[str, Mapping[str, object]] = {}
        for check in self._checks:
            if isinstance(check, _ProxyStillRequiresTls):
                problems += check.problems()
                continue
            key = tree.ref(check.group)
            if key not in groups:
                groups[key] = (
                    pg.resolved_parameters(check.group, getattr(check.group, "parameters", None))
                    or {}
                )
            problems += check.problems(groups[key])
        return problems


# What the Outcome a deploy can end with means, per policy (the stack output's description).
_OUTCOME_MEANINGS = {
    Reboot.IMMEDIATE: "in-sync = SSL-only in effect; in-effect-other-changes-pending-reboot = "
    "in effect, your other changes wait for a restart; stopped-applies-at-next-start",
    Reboot.MAINTENANCE_WINDOW: "reboot-scheduled = in effect after the restart in the "
    "maintenance window; in-sync = SSL-only in effect already",
    Reboot.NEVER: "pending-reboot = configured, in effect after a restart that is yours to make; "
    "in-sync = SSL-only in effect already",
}


def _log_connections_problem(path: str, what: str) -> rules.Problem:
    return rules.Problem(
        None,
        f"{path}: log_connections=True applies to PostgreSQL engines only (RDS for PostgreSQL, "
        f"Aurora PostgreSQL); {what} has no such parameter: remove it (docs/cli/clients.md says "
        "what MySQL's and MariaDB's logs can show)",
    )


def _elsewhere_id(path: str) -> str:
    """The reboot resource's ID in the database's stack for a ForceSsl at ``path`` in another
    stack: the path, letters and digits only (unique per ForceSsl)."""
    return "RdsForceSsl" + "".join(c for c in path.title() if c.isalnum()) + "Reboot"


def _checks(scope: IConstruct) -> list[StackCheck]:
    """The synth-time checks of ``scope``'s stack, registered with the stack on first use."""
    stack = tree.stack_of(scope)
    checks = STATE.checks.get(tree.ref(stack))
    if checks is None:
        checks = STATE.checks[tree.ref(stack)] = []
        stack.node.add_validation(_StackChecks(checks))
    return checks


def check(
    scope: IConstruct,
    database: IConstruct,
    db: Database | None,
    min_tls_version: str | None,
    *,
    log_connections: bool = False,
) -> tuple[list[rules.Problem], pg.GroupRef | None]:
    """Every reason ``db`` cannot be protected as asked (empty when it can), and its parameter
    group once the engine allows one."""
    if db is None:
        return [
            rules.Problem(
                None,
                f"{tree.path_of(database)}: not a database ForceSsl can change (an imported "
                "instance or cluster, or an L1 that belongs to another construct); protect the "
                "construct that declares it in this app",
            )
        ], None
    problems = rules.engine_problems(db)
    earlier = protected_by(database)
    if earlier is not None:
        problems.append(
            rules.Problem(
                None,
                f"{tree.path_of(database)}: already protected by {earlier}; remove one of the two "
                "ForceSsl",
            )
        )
    facts = db.facts
    if problems or facts is None:
        return problems, None
    if min_tls_version is not None:
        floor = (
            FLOOR_NOT_AT_SYNTH
            if _is_token(min_tls_version)
            else facts.tls_floor_problem(min_tls_version, db.version)
        )
        if floor is not None:
            problems.append(rules.Problem(None, f"{tree.path_of(scope)}: {floor}"))
    group = pg.locate(scope, db.group_name)
    wanted = facts.wanted_parameters(
        min_tls_version if min_tls_version in engines.TLS_VERSIONS else None,
        log_connections=log_connections,
    )
    return problems + rules.group_problems(scope, db, group, wanted), group


def check_proxy(
    database: IConstruct,
    proxy: Proxy,
    min_tls_version: str | None,
    ca_certificate: rds.CaCertificate | None,
) -> list[rules.Problem]:
    """Every reason ``proxy`` cannot be made TLS-only as asked (empty when it can)."""
    problems = []
    earlier = protected_by(database)
    if earlier is not None:
        problems.append(
            rules.Problem(
                None,
                f"{proxy.path}: already protected by {earlier}; remove one of the two ForceSsl",
            )
        )
    found = rules.proxy_problems(proxy)
    if proxy.cfn.require_tls is not None:
        # An explicit require_tls=False (or a token) is the user's choice: refuse, never flip it.
        problems += found
    if min_tls_version is not None:
        problems.append(
            rules.Problem(
                None,
                f"{proxy.path}: RDS Proxy has no TLS-floor setting; drop min_tls_version (set "
                "the floor on the database behind it)",
            )
        )
    if ca_certificate is not None:
        problems.append(
            rules.Problem(
                None,
                f"{proxy.path}: RDS Proxy serves its own certificate, not an RDS CA; drop "
                "ca_certificate",
            )
        )
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
