"""Misuse, as a new user meets it: each mistake ends in the library's own error, naming the
construct path and the fix, and leaves the app as it was."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from rds_force_ssl import ForceSsl, ForceSslError, SslBaseline, exempt
from rds_force_ssl.baseline import ANCHOR_ID, COMPLIANCE
from rds_force_ssl.facts.contract import RESOURCE_TYPE
from tests.conftest import AURORA16, PG16, Sandbox, isolated_vpc

ROOT = Path(__file__).resolve().parent.parent


def tree(stack: cdk.Stack) -> set[str]:
    return {c.node.path for c in stack.node.find_all()}


def refused(sandbox: Sandbox, **kwargs: Any) -> str:
    """The ForceSsl error for ``kwargs``, after checking that nothing joined the tree."""
    before = tree(sandbox.stack)
    with pytest.raises(ForceSslError) as info:
        ForceSsl(sandbox.stack, "Ssl", **kwargs)
    assert tree(sandbox.stack) == before
    return str(info.value)


# ---- the database argument ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("database", "why"),
    [
        (None, "database=None (None) is not a database construct"),
        ("orders-db", "database='orders-db' is a string; ForceSsl changes the database's"),
        (42, "database=42 (int) is not a database construct"),
    ],
)
def test_a_database_that_is_not_a_construct(sandbox: Sandbox, database: Any, why: str) -> None:
    msg = refused(sandbox, database=database)
    assert f"Stack/Ssl: {why}" in msg
    assert "pass the rds.DatabaseInstance, rds.DatabaseCluster" in msg


def test_a_construct_that_is_not_a_database(sandbox: Sandbox) -> None:
    bucket = s3.Bucket(sandbox.stack, "Bucket")
    msg = refused(sandbox, database=bucket)
    assert "Stack/Ssl: database is the Bucket at Stack/Bucket, not an RDS database" in msg


@pytest.mark.parametrize(
    ("database", "where"),
    [(None, "exempt(None): NoneType"), ("orders-db", "exempt('orders-db'): str")],
)
def test_exempt_of_something_that_is_not_a_database(
    sandbox: Sandbox, database: Any, where: str
) -> None:
    with pytest.raises(ValueError, match="is not a database the baseline judges") as info:
        exempt(database, reason="legacy client")
    assert str(info.value).startswith(where)
    assert "pass the rds.DatabaseInstance, rds.DatabaseCluster" in str(info.value)


def test_exempt_of_a_construct_that_is_not_a_database_names_it(sandbox: Sandbox) -> None:
    bucket = s3.Bucket(sandbox.stack, "Bucket")
    with pytest.raises(ValueError, match=r"^exempt\(Stack/Bucket\): Bucket is not a database"):
        exempt(bucket, reason="legacy client")


# ---- option types and values -------------------------------------------------------------
def test_wrong_option_types_are_all_reported_with_the_fix(sandbox: Sandbox) -> None:
    msg = refused(
        sandbox,
        database=sandbox.instance(),
        query_interval=10,
        total_timeout="50m",
        ca_certificate="rds-ca-rsa2048-g1",
        force_failover="yes",
        min_tls_version=1.2,
    )
    for fragment in (
        "Stack/Ssl: query_interval=10 (int) is not cdk.Duration; pass cdk.Duration.seconds(10)",
        "Stack/Ssl: total_timeout='50m' (str) is not cdk.Duration; pass a cdk.Duration, e.g.",
        "Stack/Ssl: ca_certificate='rds-ca-rsa2048-g1' (str) is not rds.CaCertificate or None; "
        "pass rds.CaCertificate.of('rds-ca-rsa2048-g1') or a constant",
        "Stack/Ssl: force_failover='yes' (str) is not bool; pass True or False",
        "Stack/Ssl: min_tls_version=1.2 (float) is not str or None",
    ):
        assert fragment in msg


def test_every_force_ssl_option_flows_through_the_baseline_and_is_documented() -> None:
    """The baseline takes ForceSsl's options from its signature, not from a list of its own."""
    options_table = (ROOT / "docs" / "usage.md").read_text()
    signature = inspect.signature(ForceSsl.__init__).parameters
    names = [n for n, p in signature.items() if p.kind is p.KEYWORD_ONLY and n != "database"]
    assert names
    for name in names:
        SslBaseline(mode="enforce", **{name: signature[name].default})
        assert f"| `{name}` |" in options_table, name


# ---- SslBaseline.apply fails where the mistake is ------------------------------------------
def test_a_misspelt_baseline_option_fails_in_apply(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="SslBaseline cannot be applied") as info:
        SslBaseline.apply(sandbox.app, mode="enforce", min_tls_verison="TLSv1.2")
    msg = str(info.value)
    assert "SslBaseline.apply(app): 'min_tls_verison' is not a ForceSsl option" in msg
    assert "did you mean 'min_tls_version'?" in msg
    assert cdk.Aspects.of(sandbox.app).all == []
    assert sandbox.app.node.try_find_child(ANCHOR_ID) is None


def test_invalid_baseline_values_fail_in_apply_not_once_per_database(sandbox: Sandbox) -> None:
    sandbox.instance("Db1")
    sandbox.instance("Db2")
    with pytest.raises(ValueError, match="SslBaseline cannot be applied") as info:
        SslBaseline.apply(
            sandbox.stack,
            mode="enforce",
            min_tls_version="TLSv1.1",
            query_interval=cdk.Duration.seconds(7),
        )
    msg = str(info.value)
    assert "SslBaseline.apply(Stack): min_tls_version='TLSv1.1' is not one RDS accepts" in msg
    assert "SslBaseline.apply(Stack): total_timeout (3000s) is not a multiple" in msg
    assert "SslBaseline.apply(Stack): query_interval=10" not in msg
    assert cdk.Aspects.of(sandbox.stack).all == []
    assert sandbox.stack.node.try_find_child(ANCHOR_ID) is None


def test_audit_takes_no_options_and_says_where_they_belong(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match=r"audit mode changes nothing.*enforce baseline"):
        SslBaseline.apply(sandbox.app, mode="audit", min_tls_version="TLSv1.2")


def test_a_construct_of_the_users_with_the_baselines_id_is_named_with_the_fix(
    sandbox: Sandbox,
) -> None:
    cdk.CfnOutput(sandbox.stack, ANCHOR_ID, value="mine")
    with pytest.raises(ValueError, match="is not the baseline's") as info:
        SslBaseline.apply(sandbox.stack, mode="enforce")
    assert (
        f"SslBaseline.apply(Stack): Stack/{ANCHOR_ID} is not the baseline's; the baseline needs "
        f"the child ID {ANCHOR_ID} of Stack, rename that construct"
    ) in str(info.value)
    assert cdk.Aspects.of(sandbox.stack.node.find_child(ANCHOR_ID)).all == []


# ---- SslBaseline.apply called twice --------------------------------------------------------
def compliance_entries(app: cdk.App, stack: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for entry in app.synth().get_stack_by_name(stack).find_metadata_by_type(COMPLIANCE):
        found.setdefault(entry.path, []).append(str(entry.data))
    return found


def test_the_same_baseline_twice_is_one_baseline(sandbox: Sandbox) -> None:
    sandbox.instance("Db")
    first = SslBaseline.apply(sandbox.app, mode="enforce", query_interval=cdk.Duration.seconds(10))
    again = SslBaseline.apply(sandbox.app, mode="enforce", query_interval=cdk.Duration.seconds(10))
    assert again is first
    assert len(cdk.Aspects.of(sandbox.app.node.find_child(ANCHOR_ID)).all) == 1
    assert compliance_entries(sandbox.app, "Stack") == {"/Stack/Db": ["COMPLIANT"]}
    Template.from_stack(sandbox.stack).resource_count_is(RESOURCE_TYPE, 1)


def test_the_same_mode_with_other_options_is_an_error(sandbox: Sandbox) -> None:
    SslBaseline.apply(sandbox.app, mode="enforce", min_tls_version="TLSv1.2")
    with pytest.raises(ValueError, match="an enforce baseline with other options already") as info:
        SslBaseline.apply(sandbox.stack, mode="enforce", min_tls_version="TLSv1.3")
    assert "min_tls_version='TLSv1.2' here, min_tls_version='TLSv1.3' now" in str(info.value)


def test_enforce_and_audit_leave_one_verdict_per_database(sandbox: Sandbox) -> None:
    sandbox.instance("Db")
    sandbox.cluster("Cluster")
    enforce = SslBaseline.apply(sandbox.app, mode="enforce")
    audit = SslBaseline.apply(sandbox.app, mode="audit")
    assert compliance_entries(sandbox.app, "Stack") == {
        "/Stack/Db": ["COMPLIANT"],
        "/Stack/Cluster": ["COMPLIANT"],
    }
    assert len(enforce.verdicts) == len(audit.verdicts) == 2


def test_a_stack_baseline_inside_an_app_baseline_judges_nothing_twice(sandbox: Sandbox) -> None:
    sandbox.instance("Db")
    inner = SslBaseline.apply(sandbox.stack, mode="enforce")
    outer = SslBaseline.apply(sandbox.app, mode="enforce")
    assert outer is not inner
    assert compliance_entries(sandbox.app, "Stack") == {"/Stack/Db": ["COMPLIANT"]}
    assert [v.path for v in outer.verdicts] == ["Stack/Db"]
    assert inner.verdicts == []
    Template.from_stack(sandbox.stack).resource_count_is(RESOURCE_TYPE, 1)


def test_nested_baselines_with_other_options_fail_synth(sandbox: Sandbox) -> None:
    sandbox.instance("Db")
    SslBaseline.apply(sandbox.stack, mode="enforce", min_tls_version="TLSv1.3")
    SslBaseline.apply(sandbox.app, mode="enforce", min_tls_version="TLSv1.2")
    stack = sandbox.app.synth().get_stack_by_name("Stack")
    messages = [str(m.entry.data) for m in stack.messages if "ERROR" in str(m.level).upper()]
    assert any(
        re.search(r"Stack/Db: two enforce baselines with different options reach it", m)
        for m in messages
    ), messages


# ---- Aurora Serverless v1 ----------------------------------------------------------------
V1_MESSAGE = "Aurora Serverless v1 (engine mode serverless) reached end of life on 2025-03-31"


def _v1(sandbox: Sandbox) -> rds.ServerlessCluster:
    return rds.ServerlessCluster(
        sandbox.stack,
        "Legacy",
        engine=rds.DatabaseClusterEngine.aurora_postgres(
            version=rds.AuroraPostgresEngineVersion.VER_13_9
        ),
        vpc=sandbox.vpc,
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
    )


def test_force_ssl_refuses_serverless_v1_with_the_reason_and_the_fix(sandbox: Sandbox) -> None:
    msg = refused(sandbox, database=_v1(sandbox))
    assert f"Stack/Legacy: {V1_MESSAGE}" in msg
    assert "rds.ClusterInstance.serverless_v2('Writer')" in msg


def test_an_l1_serverless_v1_cluster_is_refused_the_same_way(sandbox: Sandbox) -> None:
    cluster = rds.CfnDBCluster(
        sandbox.stack,
        "L1Legacy",
        engine="aurora-postgresql",
        engine_version="13.9",
        engine_mode="serverless",
    )
    assert V1_MESSAGE in refused(sandbox, database=cluster)


@pytest.mark.parametrize("mode", ["enforce", "audit"])
def test_the_baseline_agrees_and_adds_no_reboot_to_a_cluster_without_instances(
    sandbox: Sandbox, mode: str
) -> None:
    _v1(sandbox)
    baseline = SslBaseline.apply(sandbox.app, mode=mode)  # type: ignore[arg-type]
    stack = sandbox.app.synth().get_stack_by_name("Stack")
    errors = [str(m.entry.data) for m in stack.messages if "ERROR" in str(m.level).upper()]
    assert [e for e in errors if V1_MESSAGE in e and e.startswith("Stack/Legacy:")], errors
    assert [v.compliance for v in baseline.verdicts] == ["NON_COMPLIANT"]
    Template.from_stack(sandbox.stack).resource_count_is(RESOURCE_TYPE, 0)


# ---- read replicas -----------------------------------------------------------------------
def _replica(stack: cdk.Stack, source: rds.IDatabaseInstance, **kwargs: Any) -> Any:
    found = stack.node.try_find_child("Vpc")
    vpc = found if isinstance(found, ec2.Vpc) else isolated_vpc(stack)
    return rds.DatabaseInstanceReadReplica(
        stack,
        "Replica",
        source_database_instance=source,
        instance_type=ec2.InstanceType("t4g.micro"),
        vpc=vpc,
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        **kwargs,
    )


def test_a_replica_of_a_source_in_another_stack_is_protected(sandbox: Sandbox) -> None:
    source = sandbox.instance("Source")
    other = cdk.Stack(sandbox.app, "Replicas", env=cdk.Environment(region="us-east-1"))
    replica = _replica(other, source)
    ForceSsl(other, "Ssl", database=replica)
    t = Template.from_stack(other)
    t.has_resource_properties(
        "AWS::RDS::DBParameterGroup", {"Family": "postgres16", "Parameters": {"rds.force_ssl": "1"}}
    )
    t.resource_count_is(RESOURCE_TYPE, 1)


def test_a_replica_of_a_source_outside_the_app_gets_the_real_fix(sandbox: Sandbox) -> None:
    outside = rds.DatabaseInstance.from_database_instance_attributes(
        sandbox.stack,
        "Outside",
        instance_identifier="orders",
        instance_endpoint_address="h",
        port=5432,
        security_groups=[],
    )
    msg = refused(sandbox, database=_replica(sandbox.stack, outside))
    assert "Stack/Replica: a read replica whose source is not declared in this app" in msg
    assert "parameter_group=rds.ParameterGroup(self, 'ReplicaParams', engine=" in msg
    assert "name the engine" not in msg


def test_the_fix_works_the_engine_comes_from_the_replicas_group(sandbox: Sandbox) -> None:
    outside = rds.DatabaseInstance.from_database_instance_attributes(
        sandbox.stack,
        "Outside",
        instance_identifier="orders",
        instance_endpoint_address="h",
        port=5432,
        security_groups=[],
    )
    params = rds.ParameterGroup(sandbox.stack, "ReplicaParams", engine=PG16)
    ForceSsl(
        sandbox.stack, "Ssl", database=_replica(sandbox.stack, outside, parameter_group=params)
    )
    Template.from_stack(sandbox.stack).has_resource_properties(
        "AWS::RDS::DBParameterGroup", {"Family": "postgres16", "Parameters": {"rds.force_ssl": "1"}}
    )


def test_a_cluster_restored_from_a_snapshot_is_a_database_too(sandbox: Sandbox) -> None:
    cluster = rds.DatabaseClusterFromSnapshot(
        sandbox.stack,
        "Restored",
        snapshot_identifier="snap-1",
        engine=AURORA16,
        writer=rds.ClusterInstance.provisioned("Writer"),
        vpc=sandbox.vpc,
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
    )
    ForceSsl(sandbox.stack, "Ssl", database=cluster)
    Template.from_stack(sandbox.stack).has_resource_properties(
        "AWS::RDS::DBClusterParameterGroup", {"Parameters": {"rds.force_ssl": "1"}}
    )
