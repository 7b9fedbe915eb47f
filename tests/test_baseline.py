"""SslBaseline: compliant and non-compliant pairs for every construct type, in both modes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import jsii
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from aws_cdk.assertions import Template

from rds_force_ssl import ForceSsl, SslBaseline, exempt
from rds_force_ssl.baseline import ANCHOR_ID, COMPLIANCE, EXEMPT
from rds_force_ssl.facts.contract import PROP_AUTOSCALED_READERS, PROP_IDENTIFIER, RESOURCE_TYPE
from tests.conftest import (
    AURORA16,
    AURORA_MYSQL3,
    MARIADB104,
    MARIADB1011,
    MYSQL80,
    ORACLE_SE2_19,
    PG16,
    SQLSERVER_SE16,
    Sandbox,
)

Build = Callable[[Sandbox], None]


def synth(sb: Sandbox, mode: str) -> tuple[SslBaseline, dict[str, list[tuple[str, str]]]]:
    baseline = SslBaseline.apply(sb.app, mode=mode)  # type: ignore[arg-type]
    stack = sb.app.synth().get_stack_by_name("Stack")
    messages: dict[str, list[tuple[str, str]]] = {}
    for m in stack.messages:
        level = m.level.name if hasattr(m.level, "name") else str(m.level)
        messages.setdefault(m.id.lstrip("/"), []).append((level.lower(), str(m.entry.data)))
    return baseline, messages


def verdict(baseline: SslBaseline, path: str) -> str:
    found = [v.compliance for v in baseline.verdicts if v.path == path]
    assert len(found) == 1, baseline.verdicts
    return found[0]


# ---- builders: one database at Stack/Db (or Stack/Cluster) -------------------------------
def instance_default(sb: Sandbox) -> None:
    sb.instance("Db")


def instance_protected(sb: Sandbox) -> None:
    ForceSsl(sb.stack, "Ssl", database=sb.instance("Db"))


def instance_param_only(sb: Sandbox) -> None:
    sb.instance("Db", parameters={"rds.force_ssl": "1"})


def instance_off(sb: Sandbox) -> None:
    sb.instance("Db", parameters={"rds.force_ssl": "0"})


def instance_imported_group(sb: Sandbox) -> None:
    group = rds.ParameterGroup.from_parameter_group_name(sb.stack, "Imported", "team-pg16")
    sb.instance("Db", parameter_group=group)


def instance_token(sb: Sandbox) -> None:
    value = cdk.CfnParameter(sb.stack, "ForceSslValue", default="1").value_as_string
    sb.instance("Db", parameters={"rds.force_ssl": value})


def _from_snapshot(sb: Sandbox) -> rds.DatabaseInstanceFromSnapshot:
    return rds.DatabaseInstanceFromSnapshot(
        sb.stack,
        "Db",
        snapshot_identifier="snap-1",
        engine=PG16,
        vpc=sb.vpc,
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
    )


def snapshot_default(sb: Sandbox) -> None:
    _from_snapshot(sb)


def snapshot_protected(sb: Sandbox) -> None:
    ForceSsl(sb.stack, "Ssl", database=_from_snapshot(sb))


def _replica(sb: Sandbox, source: rds.DatabaseInstance) -> rds.DatabaseInstanceReadReplica:
    return rds.DatabaseInstanceReadReplica(
        sb.stack,
        "Db",
        source_database_instance=source,
        instance_type=ec2.InstanceType("t4g.micro"),
        vpc=sb.vpc,
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
    )


def replica_default(sb: Sandbox) -> None:
    source = sb.instance("Source")
    ForceSsl(sb.stack, "SourceSsl", database=source)
    _replica(sb, source)


def replica_protected(sb: Sandbox) -> None:
    source = sb.instance("Source")
    ForceSsl(sb.stack, "SourceSsl", database=source)
    ForceSsl(sb.stack, "Ssl", database=_replica(sb, source))


def cluster_default(sb: Sandbox) -> None:
    sb.cluster("Db")


def cluster_protected(sb: Sandbox) -> None:
    ForceSsl(sb.stack, "Ssl", database=sb.cluster("Db"))


def cluster_param_only(sb: Sandbox) -> None:
    group = rds.ParameterGroup(
        sb.stack, "Group", engine=AURORA16, parameters={"rds.force_ssl": "1"}
    )
    sb.cluster("Db", parameter_group=group)


def cluster_member_contradicts(sb: Sandbox) -> None:
    member_group = rds.ParameterGroup(
        sb.stack, "MemberGroup", engine=AURORA16, parameters={"rds.force_ssl": "0"}
    )
    sb.cluster(
        "Db",
        writer=rds.ClusterInstance.provisioned("Writer", parameter_group=member_group),
        readers=[],
    )


def l1_instance(sb: Sandbox, **kwargs: Any) -> rds.CfnDBInstance:
    kwargs.setdefault("engine_version", "16.9")
    return rds.CfnDBInstance(
        sb.stack,
        "Db",
        engine="postgres",
        db_instance_class="db.t4g.micro",
        allocated_storage="20",
        **kwargs,
    )


def l1_instance_default(sb: Sandbox) -> None:
    l1_instance(sb)


def l1_instance_with_l1_group(sb: Sandbox) -> None:
    group = rds.CfnDBParameterGroup(
        sb.stack,
        "Group",
        family="postgres16",
        description="mine",
        parameters={"rds.force_ssl": "1", "work_mem": "4096"},
    )
    ForceSsl(sb.stack, "Ssl", database=l1_instance(sb, db_parameter_group_name=group.ref))


def l1_instance_named_group(sb: Sandbox) -> None:
    l1_instance(sb, db_parameter_group_name="made-by-hand")


def l1_instance_unpinned(sb: Sandbox) -> None:
    l1_instance(sb, engine_version=None)


def l1_cluster(sb: Sandbox, force_ssl: object = None) -> rds.CfnDBCluster:
    """An L1 Aurora cluster; with ``force_ssl``, behind an L1 cluster group that sets it."""
    group = None
    if force_ssl is not None:
        group = rds.CfnDBClusterParameterGroup(
            sb.stack,
            "Group",
            family="aurora-postgresql16",
            description="mine",
            parameters={"rds.force_ssl": force_ssl},
        )
    return rds.CfnDBCluster(
        sb.stack,
        "Db",
        engine="aurora-postgresql",
        engine_version="16.9",
        master_username="postgres",
        manage_master_user_password=True,
        db_cluster_parameter_group_name=group.ref if group else None,
    )


def l1_cluster_default(sb: Sandbox) -> None:
    rds.CfnDBInstance(
        sb.stack,
        "Member",
        engine="aurora-postgresql",
        db_instance_class="db.r6g.large",
        db_cluster_identifier=l1_cluster(sb).ref,
    )


def l1_cluster_with_group(sb: Sandbox) -> None:
    ForceSsl(sb.stack, "Ssl", database=l1_cluster(sb, force_ssl="1"))


def l1_cluster_off(sb: Sandbox) -> None:
    l1_cluster(sb, force_ssl=0)


def multi_az_cluster(sb: Sandbox) -> None:
    sb.multi_az_cluster("Db")


def mysql_default(sb: Sandbox) -> None:
    sb.instance("Db", engine=MYSQL80)


def mysql_protected(sb: Sandbox) -> None:
    ForceSsl(sb.stack, "Ssl", database=sb.instance("Db", engine=MYSQL80))


def mysql_off(sb: Sandbox) -> None:
    sb.instance("Db", engine=MYSQL80, parameters={"require_secure_transport": "0"})


def mariadb_default(sb: Sandbox) -> None:
    sb.instance("Db", engine=MARIADB1011)


def mariadb_too_old(sb: Sandbox) -> None:
    sb.instance("Db", engine=MARIADB104)


def aurora_mysql_default(sb: Sandbox) -> None:
    sb.cluster("Db", engine=AURORA_MYSQL3)


def aurora_mysql_param_only(sb: Sandbox) -> None:
    group = rds.ParameterGroup(
        sb.stack, "Group", engine=AURORA_MYSQL3, parameters={"require_secure_transport": "ON"}
    )
    sb.cluster("Db", engine=AURORA_MYSQL3, parameter_group=group)


def sqlserver_default(sb: Sandbox) -> None:
    sb.instance("Db", engine=SQLSERVER_SE16, license_model=rds.LicenseModel.LICENSE_INCLUDED)


def oracle_instance(sb: Sandbox) -> None:
    sb.instance("Db", engine=ORACLE_SE2_19, license_model=rds.LicenseModel.LICENSE_INCLUDED)


def proxy_l1_default(sb: Sandbox) -> None:
    sb.l1_proxy("Db")


def proxy_l2_default(sb: Sandbox) -> None:
    sb.proxy("Db", target=sb.instance("Target"))


def proxy_tls_off(sb: Sandbox) -> None:
    sb.proxy("Db", target=sb.instance("Target"), require_tls=False)


def exempted(sb: Sandbox) -> None:
    exempt(sb.instance("Db"), reason="legacy client without TLS until Q3; ticket DB-123")


@dataclass(frozen=True)
class Case:
    name: str
    build: Build
    audit: str  # expected verdict in audit mode: COMPLIANT, or the rule ID of the error
    enforce: str  # expected verdict in enforce mode
    warning: str = ""  # a rule ID expected as a warning in audit mode
    enforce_warning: str = ""  # a rule ID expected as a warning in enforce mode


CASES = [
    Case("instance, default group", instance_default, "RFS1", "COMPLIANT"),
    Case("instance, ForceSsl", instance_protected, "COMPLIANT", "COMPLIANT"),
    Case("instance, force_ssl=1 only", instance_param_only, "COMPLIANT", "COMPLIANT", "RFS4"),
    Case("instance, force_ssl=0", instance_off, "RFS2", "RFS2"),
    Case("instance, imported group", instance_imported_group, "RFS3", "RFS3"),
    Case("instance, deploy-time token", instance_token, "RFS3", "RFS3"),
    Case("from snapshot, default group", snapshot_default, "RFS1", "COMPLIANT"),
    Case("from snapshot, ForceSsl", snapshot_protected, "COMPLIANT", "COMPLIANT"),
    Case("read replica, default group", replica_default, "RFS1", "COMPLIANT"),
    Case("read replica, ForceSsl", replica_protected, "COMPLIANT", "COMPLIANT"),
    Case("cluster, default group", cluster_default, "RFS1", "COMPLIANT"),
    Case("cluster, ForceSsl", cluster_protected, "COMPLIANT", "COMPLIANT"),
    Case("cluster, force_ssl=1 without reboots", cluster_param_only, "RFS4", "COMPLIANT"),
    Case("cluster, member group contradicts", cluster_member_contradicts, "RFS1", "RFS5"),
    Case("L1 instance, no group", l1_instance_default, "RFS1", "COMPLIANT"),
    Case("L1 instance, L1 group + ForceSsl", l1_instance_with_l1_group, "COMPLIANT", "COMPLIANT"),
    Case("L1 instance, group by name", l1_instance_named_group, "RFS3", "RFS3"),
    Case("L1 instance, version unpinned", l1_instance_unpinned, "RFS3", "RFS3"),
    Case("L1 cluster, no group", l1_cluster_default, "RFS1", "COMPLIANT"),
    Case("L1 cluster, L1 group + ForceSsl", l1_cluster_with_group, "COMPLIANT", "COMPLIANT"),
    Case("L1 cluster, force_ssl=0", l1_cluster_off, "RFS2", "RFS2"),
    Case("Multi-AZ DB cluster, no group", multi_az_cluster, "RFS1", "COMPLIANT"),
    Case("MySQL, default group", mysql_default, "RFS1", "COMPLIANT"),
    Case("MySQL, ForceSsl", mysql_protected, "COMPLIANT", "COMPLIANT"),
    Case("MySQL, require_secure_transport=0", mysql_off, "RFS2", "RFS2"),
    Case("MariaDB 10.11, default group", mariadb_default, "RFS1", "COMPLIANT"),
    Case("MariaDB 10.4, too old", mariadb_too_old, "RFS7", "RFS7"),
    Case("Aurora MySQL, default group", aurora_mysql_default, "RFS1", "COMPLIANT"),
    Case("Aurora MySQL, ON without reboots", aurora_mysql_param_only, "RFS4", "COMPLIANT"),
    Case("SQL Server, default group", sqlserver_default, "RFS1", "COMPLIANT"),
    Case(
        "Oracle is reported, not passed",
        oracle_instance,
        "NOT_APPLICABLE",
        "NOT_APPLICABLE",
        warning="RFS8",
        enforce_warning="RFS8",
    ),
    Case("L1 proxy without RequireTLS", proxy_l1_default, "RFS6", "COMPLIANT"),
    Case("CDK proxy (require_tls defaults to True)", proxy_l2_default, "COMPLIANT", "COMPLIANT"),
    Case("proxy with require_tls=False", proxy_tls_off, "RFS6", "RFS6"),
    Case("exempted, with a reason", exempted, "EXEMPT", "EXEMPT"),
]


def _check(case: Case, mode: str, expected: str) -> None:
    sb = Sandbox()
    case.build(sb)
    baseline, messages = synth(sb, mode)
    errors = [text for level, text in messages.get("Stack/Db", []) if level == "error"]
    warnings = [text for level, text in messages.get("Stack/Db", []) if level == "warning"]
    if expected.startswith("RFS"):
        assert verdict(baseline, "Stack/Db") == "NON_COMPLIANT"
        assert any(e.startswith(f"[{expected}] Stack/Db") for e in errors), errors
        assert all("(why: " in e for e in errors)
    else:
        assert verdict(baseline, "Stack/Db") == expected
        assert errors == []
    if mode == "audit" and case.warning:
        assert any(w.startswith(f"[{case.warning}]") for w in warnings), warnings
    elif mode == "enforce" and case.enforce_warning:
        assert any(w.startswith(f"[{case.enforce_warning}]") for w in warnings), warnings
    elif mode == "enforce":
        assert warnings == []


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_audit(case: Case) -> None:
    _check(case, "audit", case.audit)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_enforce(case: Case) -> None:
    _check(case, "enforce", case.enforce)


def test_audit_changes_nothing(sandbox: Sandbox) -> None:
    sandbox.instance("Db")
    synth(sandbox, "audit")
    t = Template.from_stack(sandbox.stack)
    t.resource_count_is(RESOURCE_TYPE, 0)
    t.resource_count_is("AWS::RDS::DBParameterGroup", 0)


def test_enforce_adds_the_same_as_force_ssl(sandbox: Sandbox) -> None:
    sandbox.instance("Db", parameters={"work_mem": "4096"})
    sandbox.cluster("Cluster")
    synth(sandbox, "enforce")
    t = Template.from_stack(sandbox.stack)
    t.resource_count_is(RESOURCE_TYPE, 2)
    t.has_resource_properties(
        "AWS::RDS::DBParameterGroup", {"Parameters": {"work_mem": "4096", "rds.force_ssl": "1"}}
    )
    t.has_resource_properties(
        "AWS::RDS::DBClusterParameterGroup", {"Parameters": {"rds.force_ssl": "1"}}
    )


def test_enforce_then_audit_finds_nothing() -> None:
    app = Sandbox().app
    builds = (instance_default, cluster_default, l1_instance_default, snapshot_default)
    for i, build in enumerate(builds):
        build(Sandbox(app, f"Stack{i}"))
    enforce = SslBaseline.apply(app, mode="enforce")
    audit = SslBaseline.apply(app, mode="audit")
    assembly = app.synth()
    assert [v.compliance for v in enforce.verdicts] == ["COMPLIANT"] * 4
    assert [v.compliance for v in audit.verdicts] == ["COMPLIANT"] * 4
    levels = [str(m.level) for s in assembly.stacks for m in s.messages]
    assert not [level for level in levels if "ERROR" in level.upper()]


def test_enforce_options_reach_every_force_ssl(sandbox: Sandbox) -> None:
    sandbox.instance("Db")
    SslBaseline.apply(sandbox.app, mode="enforce", min_tls_version="TLSv1.3")
    sandbox.app.synth()
    Template.from_stack(sandbox.stack).has_resource_properties(
        "AWS::RDS::DBParameterGroup",
        {"Parameters": {"rds.force_ssl": "1", "ssl_min_protocol_version": "TLSv1.3"}},
    )


def test_verdicts_and_exemptions_are_in_the_synthesized_metadata(sandbox: Sandbox) -> None:
    sandbox.instance("Db")
    exempt(sandbox.instance("Legacy"), reason="vendor appliance, TLS from 2027; ticket DB-9")
    sandbox.instance(
        "Oracle", engine=ORACLE_SE2_19, license_model=rds.LicenseModel.LICENSE_INCLUDED
    )
    baseline, messages = synth(sandbox, "audit")
    stack = sandbox.app.synth().get_stack_by_name("Stack")
    metadata: dict[str, list[tuple[str, object]]] = {}
    for kind in (EXEMPT, COMPLIANCE):
        for entry in stack.find_metadata_by_type(kind):
            metadata.setdefault(entry.path, []).append((kind, entry.data))
    assert (EXEMPT, "vendor appliance, TLS from 2027; ticket DB-9") in metadata["/Stack/Legacy"]
    assert (COMPLIANCE, "EXEMPT") in metadata["/Stack/Legacy"]
    assert (COMPLIANCE, "NOT_APPLICABLE") in metadata["/Stack/Oracle"]
    assert (COMPLIANCE, "NON_COMPLIANT") in metadata["/Stack/Db"]
    assert (
        "info",
        "[rds-force-ssl] EXEMPT from the baseline: vendor appliance, TLS from 2027; ticket DB-9",
    ) in messages["Stack/Legacy"]
    assert baseline.summary() == (
        "rds-force-ssl audit: 0 COMPLIANT, 1 NON_COMPLIANT, 1 NOT_APPLICABLE, 1 EXEMPT"
    )


def test_an_l1_with_a_group_by_name_gets_the_l1_fix(sandbox: Sandbox) -> None:
    l1_instance_named_group(sandbox)
    _, messages = synth(sandbox, "audit")
    (error,) = [text for level, text in messages["Stack/Db"] if level == "error"]
    assert "made-by-hand is imported or not defined in this app" in error
    assert "reference a CfnDBParameterGroup / CfnDBClusterParameterGroup" in error


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_exemption_needs_a_reason(sandbox: Sandbox, reason: str) -> None:
    with pytest.raises(ValueError, match="Stack/Db: an exemption needs a reason"):
        exempt(sandbox.instance("Db"), reason=reason)


def test_bad_modes_and_options_are_refused() -> None:
    with pytest.raises(ValueError, match="use 'enforce' or 'audit'"):
        SslBaseline(mode="fix")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="audit mode changes nothing"):
        SslBaseline(mode="audit", min_tls_version="TLSv1.2")


def test_priorities_run_enforce_before_audit() -> None:
    assert SslBaseline(mode="enforce").priority == cdk.AspectPriority.MUTATING
    assert SslBaseline(mode="audit").priority == cdk.AspectPriority.READONLY


def test_enforce_still_checks_a_database_the_user_protected(sandbox: Sandbox) -> None:
    users = rds.ParameterGroup(sandbox.stack, "Users", engine=PG16, parameters={"a": "1"})
    ForceSsl(sandbox.stack, "Ssl", database=sandbox.instance("Db", parameter_group=users))
    users.add_parameter("rds.force_ssl", "0")
    baseline = SslBaseline.apply(sandbox.app, mode="enforce")
    with pytest.raises(RuntimeError, match=r"rds\.force_ssl=0 after ForceSsl"):
        sandbox.app.synth()
    assert verdict(baseline, "Stack/Db") == "NON_COMPLIANT"


def test_enforce_picks_a_free_id_next_to_the_database(sandbox: Sandbox) -> None:
    sandbox.instance("Db")
    cdk.CfnOutput(sandbox.stack, "DbForceSsl", value="taken")
    baseline, _ = synth(sandbox, "enforce")
    assert [v.detail for v in baseline.verdicts] == ["protected by Stack/DbForceSsl2"]


def test_findings_name_the_engines_own_parameter(sandbox: Sandbox) -> None:
    mysql_default(sandbox)
    sandbox.instance("Sql", engine=SQLSERVER_SE16, license_model=rds.LicenseModel.LICENSE_INCLUDED)
    _, messages = synth(sandbox, "audit")
    (mysql,) = [text for level, text in messages["Stack/Db"] if level == "error"]
    assert mysql.startswith("[RFS1] Stack/Db: uses the engine's default parameter group, whose ")
    assert "require_secure_transport depends on the engine version" in mysql
    (sql,) = [text for level, text in messages["Stack/Sql"] if level == "error"]
    assert "whose rds.force_ssl depends" in sql


def test_enforce_sets_require_tls_on_an_l1_proxy(sandbox: Sandbox) -> None:
    proxy_l1_default(sandbox)
    synth(sandbox, "enforce")
    Template.from_stack(sandbox.stack).has_resource_properties(
        "AWS::RDS::DBProxy", {"RequireTLS": True}
    )


def test_a_floor_the_engine_cannot_take_is_left_out_with_a_warning(sandbox: Sandbox) -> None:
    """The baseline's TLS floor reaches PostgreSQL; MySQL 8.0 meets 1.2 by itself; MariaDB has
    no floor in the table: it is still made SSL-only, and the warning says the floor is not."""
    sandbox.instance("Pg", engine=PG16)
    sandbox.instance("Mysql", engine=MYSQL80)
    sandbox.instance("Maria", engine=MARIADB1011)
    sandbox.l1_proxy("Proxy")
    baseline = SslBaseline.apply(sandbox.app, mode="enforce", min_tls_version="TLSv1.2")
    stack = sandbox.app.synth().get_stack_by_name("Stack")
    warnings = {
        m.id.lstrip("/"): str(m.entry.data) for m in stack.messages if "WARN" in str(m.level)
    }
    assert set(warnings) == {"Stack/Maria", "Stack/Proxy"}
    assert (
        "min_tls_version=TLSv1.2 is not applied: ForceSsl cannot set a TLS floor of TLSv1.2 on "
        "RDS for MariaDB (no parameter in its table row does); the database is made SSL-only "
        "without it" in (warnings["Stack/Maria"])
    )
    assert "RDS Proxy has no TLS-floor" in warnings["Stack/Proxy"]
    assert [v.compliance for v in baseline.verdicts] == ["COMPLIANT"] * 4
    t = Template.from_stack(sandbox.stack)
    by_family = {
        g["Properties"]["Family"]: g["Properties"]["Parameters"]
        for g in t.find_resources("AWS::RDS::DBParameterGroup").values()
    }
    assert by_family == {
        "postgres16": {"rds.force_ssl": "1", "ssl_min_protocol_version": "TLSv1.2"},
        "mysql8.0": {"require_secure_transport": "1"},
        "mariadb10.11": {"require_secure_transport": "1"},
    }


def test_an_exempted_oracle_database_has_no_warning(sandbox: Sandbox) -> None:
    oracle = sandbox.instance(
        "Db", engine=ORACLE_SE2_19, license_model=rds.LicenseModel.LICENSE_INCLUDED
    )
    exempt(
        oracle,
        reason="TLS port only in its security group; plaintext port closed; ticket NET-7",
    )
    baseline, messages = synth(sandbox, "audit")
    assert [level for level, _ in messages["Stack/Db"]] == ["info"]
    assert verdict(baseline, "Stack/Db") == "EXEMPT"


def test_autoscaled_readers_reach_the_aurora_clusters_only(sandbox: Sandbox) -> None:
    """A baseline option ForceSsl refuses on an instance or a proxy: it used to make every one
    of them NON_COMPLIANT ("applies to Aurora clusters only; remove it")."""
    sandbox.instance("Db")
    sandbox.cluster("Cluster")
    sandbox.proxy("Proxy", target=sandbox.instance("Target"))
    baseline = SslBaseline.apply(sandbox.app, mode="enforce", autoscaled_readers=True)
    stack = sandbox.app.synth().get_stack_by_name("Stack")
    assert [str(m.entry.data) for m in stack.messages if m.level.name == "ERROR"] == []
    assert {v.path: v.compliance for v in baseline.verdicts} == {
        "Stack/Db": "COMPLIANT",
        "Stack/Cluster": "COMPLIANT",
        "Stack/Target": "COMPLIANT",
        "Stack/Proxy": "COMPLIANT",
    }
    reboots = Template.from_stack(sandbox.stack).find_resources(RESOURCE_TYPE)
    flagged = {
        props["Properties"][PROP_IDENTIFIER]["Ref"]
        for props in reboots.values()
        if props["Properties"].get(PROP_AUTOSCALED_READERS) == "true"
    }
    assert len(reboots) == 3
    (cluster,) = flagged
    assert cluster.startswith("Cluster")


# ---- how it runs: one call from CDK per synth, judged in CDK's order ----------------------
# Without the flag, CDK invokes Aspects once over the tree; with it (cdk.json), until the tree
# stops changing. The baseline must behave the same under both.
STABILIZATION = "@aws-cdk/core:aspectStabilization"


@pytest.fixture(params=[False, True], ids=["aspects-once", "aspects-stabilized"])
def app(request: pytest.FixtureRequest) -> cdk.App:
    return cdk.App(builtin_cloud_formation_validation=False, context={STABILIZATION: request.param})


def test_cdk_calls_the_baseline_once_per_synth(
    app: cdk.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = Sandbox(app)
    for i in range(3):
        sb.instance(f"Db{i}")
    calls: list[str] = []
    visit = SslBaseline.visit

    def counted(self: SslBaseline, node: Any) -> None:
        calls.append(node.node.path)
        visit(self, node)

    monkeypatch.setattr(SslBaseline, "visit", counted)
    baseline = SslBaseline.apply(app, mode="enforce")
    app.synth()
    assert calls == [ANCHOR_ID]
    assert [(v.path, v.compliance) for v in baseline.verdicts] == [
        (f"Stack/Db{i}", "COMPLIANT") for i in range(3)
    ]
    Template.from_stack(sb.stack).resource_count_is(RESOURCE_TYPE, 3)


def test_an_audit_applied_first_still_judges_after_the_enforce_baseline(app: cdk.App) -> None:
    audit = SslBaseline.apply(app, mode="audit")  # before the stack: its anchor comes first
    sb = Sandbox(app)
    sb.instance("Db")
    enforce = SslBaseline.apply(sb.stack, mode="enforce")
    assembly = app.synth()
    assert [(v.path, v.compliance) for v in enforce.verdicts] == [("Stack/Db", "COMPLIANT")]
    assert [(v.path, v.compliance) for v in audit.verdicts] == [("Stack/Db", "COMPLIANT")]
    levels = [str(m.level) for s in assembly.stacks for m in s.messages]
    assert not [level for level in levels if "ERROR" in level.upper()]


@jsii.implements(cdk.IAspect)
class _AddsADatabase:
    """Another team's Aspect that creates a database at synth, when it reaches the stack."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb

    def visit(self, node: Any) -> None:
        if node is self.sb.stack and self.sb.stack.node.try_find_child("Late") is None:
            self.sb.instance("Late")


def test_a_database_another_aspect_adds_after_the_baseline_fails_synth(app: cdk.App) -> None:
    SslBaseline.apply(app, mode="enforce")  # its anchor is visited before the stack
    sb = Sandbox(app)
    sb.instance("Db")
    cdk.Aspects.of(sb.stack).add(_AddsADatabase(sb))
    with pytest.raises(RuntimeError) as info:
        app.synth()
    assert (
        "Stack/Late: the rds-force-ssl enforce baseline never judged it: it was added after the "
        "baseline ran, by another Aspect; protect it with ForceSsl(database=...)"
    ) in str(info.value)
    assert "Stack/Db:" not in str(info.value)


def test_a_database_another_aspect_adds_first_is_judged(app: cdk.App) -> None:
    sb = Sandbox(app)
    cdk.Aspects.of(sb.stack).add(_AddsADatabase(sb))
    baseline = SslBaseline.apply(app, mode="enforce")  # its anchor comes after the stack
    app.synth()
    assert [(v.path, v.compliance) for v in baseline.verdicts] == [("Stack/Late", "COMPLIANT")]


def test_nested_stages_are_left_to_their_own_baseline_as_cdk_aspects_are(app: cdk.App) -> None:
    Sandbox(app, "Top").instance("Db")
    stage = cdk.Stage(app, "Prod")
    Sandbox(stage, "Stack").instance("Db")  # type: ignore[arg-type]
    outer = SslBaseline.apply(app, mode="audit")
    inner = SslBaseline.apply(stage, mode="audit")
    app.synth()
    assert [(v.path, v.compliance) for v in outer.verdicts] == [("Top/Db", "NON_COMPLIANT")]
    assert [(v.path, v.compliance) for v in inner.verdicts] == [("Prod/Stack/Db", "NON_COMPLIANT")]


def test_added_with_aspects_of_it_judges_each_database_once(app: cdk.App) -> None:
    sb = Sandbox(app)
    sb.instance("Db")
    sb.cluster("Cluster")
    baseline = SslBaseline(mode="enforce")
    cdk.Aspects.of(app).add(baseline, priority=baseline.priority)
    app.synth()
    assert sorted(v.path for v in baseline.verdicts) == ["Stack/Cluster", "Stack/Db"]
    Template.from_stack(sb.stack).resource_count_is(RESOURCE_TYPE, 2)
