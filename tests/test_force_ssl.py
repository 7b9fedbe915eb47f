"""ForceSsl at synth: the parameter group, the reboot resource, IAM, and the errors."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_rds as rds
from aws_cdk.assertions import Match, Template

from rds_force_ssl import ForceSsl, protected_by
from rds_force_ssl.facts import contract
from tests.conftest import MYSQL80, PG16, Sandbox

REBOOT = contract.RESOURCE_TYPE


def resources(t: Template, kind: str) -> dict[str, Any]:
    return dict(t.find_resources(kind))


def only(t: Template, kind: str) -> tuple[str, dict[str, Any]]:
    found = resources(t, kind)
    assert len(found) == 1, found
    return next(iter(found.items()))


def test_creates_and_attaches_a_group_when_the_instance_has_none(sandbox: Sandbox) -> None:
    db = sandbox.instance()
    ForceSsl(sandbox.stack, "Ssl", database=db)
    t = Template.from_stack(sandbox.stack)
    group_id, group = only(t, "AWS::RDS::DBParameterGroup")
    assert group["Properties"]["Family"] == "postgres16"
    assert group["Properties"]["Parameters"] == {"rds.force_ssl": "1"}
    t.has_resource_properties("AWS::RDS::DBInstance", {"DBParameterGroupName": {"Ref": group_id}})


def test_merges_into_a_group_made_from_parameters(sandbox: Sandbox) -> None:
    db = sandbox.instance(parameters={"work_mem": "4096", "log_min_duration_statement": "500"})
    ForceSsl(sandbox.stack, "Ssl", database=db, min_tls_version="TLSv1.3")
    t = Template.from_stack(sandbox.stack)
    group_id, group = only(t, "AWS::RDS::DBParameterGroup")
    assert group["Properties"]["Parameters"] == {
        "work_mem": "4096",
        "log_min_duration_statement": "500",
        "rds.force_ssl": "1",
        "ssl_min_protocol_version": "TLSv1.3",
    }
    t.has_resource_properties("AWS::RDS::DBInstance", {"DBParameterGroupName": {"Ref": group_id}})


def test_merges_into_a_parameter_group_passed_in(sandbox: Sandbox) -> None:
    users = rds.ParameterGroup(
        sandbox.stack,
        "Users",
        engine=PG16,
        parameters={"shared_preload_libraries": "pg_stat_statements"},
    )
    db = sandbox.instance(parameter_group=users)
    ForceSsl(sandbox.stack, "Ssl", database=db)
    users.add_parameter(
        "work_mem", "8192"
    )  # added later still reaches the template and the resource
    t = Template.from_stack(sandbox.stack)
    group_id, group = only(t, "AWS::RDS::DBParameterGroup")
    assert group_id.startswith("Users")
    expected = {
        "shared_preload_libraries": "pg_stat_statements",
        "rds.force_ssl": "1",
        "work_mem": "8192",
    }
    assert group["Properties"]["Parameters"] == expected
    t.has_resource_properties(
        REBOOT, {"Parameters": expected, "ParameterGroupName": {"Ref": group_id}}
    )


def test_a_group_that_already_forces_ssl_is_left_as_it_is(sandbox: Sandbox) -> None:
    db = sandbox.instance(parameters={"rds.force_ssl": "1"})
    ForceSsl(sandbox.stack, "Ssl", database=db)
    _, group = only(Template.from_stack(sandbox.stack), "AWS::RDS::DBParameterGroup")
    assert group["Properties"]["Parameters"] == {"rds.force_ssl": "1"}


def test_reboot_resource_properties_and_dependencies(sandbox: Sandbox) -> None:
    db = sandbox.instance()
    ForceSsl(sandbox.stack, "Ssl", database=db, force_failover=True)
    t = Template.from_stack(sandbox.stack)
    db_id, _ = only(t, "AWS::RDS::DBInstance")
    group_id, _ = only(t, "AWS::RDS::DBParameterGroup")
    _, res = only(t, REBOOT)
    assert res["Properties"][contract.PROP_KIND] == contract.KIND_INSTANCE
    assert res["Properties"][contract.PROP_IDENTIFIER] == {"Ref": db_id}
    assert res["Properties"][contract.PROP_PARAMETER_GROUP] == {"Ref": group_id}
    assert res["Properties"][contract.PROP_PARAMETERS] == {"rds.force_ssl": "1"}
    assert res["Properties"][contract.PROP_FORCE_FAILOVER] == "true"
    # 50 min less two 10 s polls: the handler's own, explained, failure comes first.
    assert res["Properties"][contract.PROP_GIVE_UP_AFTER] == "2980"
    # The Refs make CloudFormation finish the instance and its group first.
    assert res["Properties"]["ServiceToken"]["Fn::GetAtt"][0].startswith(
        "RdsForceSslRebootProviderframeworkonEvent"
    )


def test_one_provider_for_three_databases(sandbox: Sandbox) -> None:
    for i in range(3):
        ForceSsl(sandbox.stack, f"Ssl{i}", database=sandbox.instance(f"Db{i}"))
    t = Template.from_stack(sandbox.stack)
    t.resource_count_is("AWS::StepFunctions::StateMachine", 1)
    t.resource_count_is(REBOOT, 3)
    tokens = {str(r["Properties"]["ServiceToken"]) for r in resources(t, REBOOT).values()}
    assert len(tokens) == 1
    # Five Lambdas in all: our two handlers and the framework's three.
    t.resource_count_is("AWS::Lambda::Function", 5)


def _statements(t: Template, prefix: str = "") -> list[dict[str, Any]]:
    """Every IAM statement of the template (policy resources and roles' inline policies),
    optionally only those of resources whose logical ID starts with ``prefix``."""
    out = []
    for logical_id, policy in resources(t, "AWS::IAM::Policy").items():
        if logical_id.startswith(prefix):
            out += policy["Properties"]["PolicyDocument"]["Statement"]
    for logical_id, role in resources(t, "AWS::IAM::Role").items():
        if logical_id.startswith(prefix):
            for inline in role["Properties"].get("Policies", []):
                out += inline["PolicyDocument"]["Statement"]
    return out


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_iam_names_only_the_protected_instances_and_their_group(sandbox: Sandbox) -> None:
    db1, db2 = sandbox.instance("Db1"), sandbox.instance("Db2")
    ForceSsl(sandbox.stack, "Ssl1", database=db1)
    ForceSsl(sandbox.stack, "Ssl2", database=db2)
    sandbox.instance("Unprotected")
    t = Template.from_stack(sandbox.stack)
    db_ids = {k for k in resources(t, "AWS::RDS::DBInstance") if not k.startswith("Unprotected")}
    (group_id,) = resources(t, "AWS::RDS::DBParameterGroup")
    rds_statements = [s for s in _statements(t) if any(a.startswith("rds:") for a in _actions(s))]
    seen: dict[str, set[str]] = {}
    for s in rds_statements:
        targets = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        for action in _actions(s):
            for target in targets:
                if target == "*":
                    seen.setdefault(action, set()).add("*")
                    continue
                join = target["Fn::Join"][1]
                seen.setdefault(action, set()).add(f"{join[-2]}{join[-1]['Ref']}")
    assert seen == {
        "rds:DescribeDBInstances": {f":db:{i}" for i in db_ids},
        "rds:RebootDBInstance": {f":db:{i}" for i in db_ids},
        "rds:DescribeDBParameters": {f":pg:{group_id}"},
        # No resource-level permission exists for it (Service Authorization Reference).
        "rds:DescribeEvents": {"*"},
    }
    # The on-event handler only reads the databases; events and reboots are the poller's.
    on_event = {
        a for s in _statements(t, "RdsForceSslRebootProviderOnEventRole") for a in _actions(s)
    }
    assert on_event & {"rds:RebootDBInstance", "rds:DescribeEvents"} == set()
    assert "rds:DescribeDBInstances" in on_event
    # Nothing writes to the user's databases but the reboot: no tags.
    assert not [a for s in rds_statements for a in _actions(s) if "Tag" in a]


def test_the_reboot_resource_says_what_force_ssl_owns(sandbox: Sandbox) -> None:
    db = sandbox.instance(parameters={"work_mem": "4096"})
    ForceSsl(sandbox.stack, "Ssl", database=db, min_tls_version="TLSv1.2")
    _, res = only(Template.from_stack(sandbox.stack), REBOOT)
    props = res["Properties"]
    assert props[contract.PROP_ENFORCED] == {
        "rds.force_ssl": "1",
        "ssl_min_protocol_version": "TLSv1.2",
    }
    assert props[contract.PROP_PARAMETERS] == {"work_mem": "4096", **props[contract.PROP_ENFORCED]}
    assert contract.PROP_MEMBERS not in props
    assert contract.PROP_AUTOSCALED_READERS not in props


def test_ca_certificate_is_set_on_the_instance(sandbox: Sandbox) -> None:
    db = sandbox.instance()
    ForceSsl(sandbox.stack, "Ssl", database=db, ca_certificate=rds.CaCertificate.RDS_CA_RSA4096_G1)
    Template.from_stack(sandbox.stack).has_resource_properties(
        "AWS::RDS::DBInstance", {"CACertificateIdentifier": "rds-ca-rsa4096-g1"}
    )


def test_defaults_leave_tls_floor_and_ca_alone(sandbox: Sandbox) -> None:
    ForceSsl(sandbox.stack, "Ssl", database=sandbox.instance())
    t = Template.from_stack(sandbox.stack)
    t.has_resource_properties("AWS::RDS::DBInstance", {"CACertificateIdentifier": Match.absent()})
    _, group = only(t, "AWS::RDS::DBParameterGroup")
    assert "ssl_min_protocol_version" not in group["Properties"]["Parameters"]


def test_timing_reaches_the_provider(sandbox: Sandbox) -> None:
    ForceSsl(
        sandbox.stack,
        "Ssl",
        database=sandbox.instance(),
        query_interval=cdk.Duration.seconds(20),
        total_timeout=cdk.Duration.minutes(40),
    )
    t = Template.from_stack(sandbox.stack)
    _, machine = only(t, "AWS::StepFunctions::StateMachine")
    definition = str(machine["Properties"]["DefinitionString"])
    assert '"IntervalSeconds":20' in definition
    assert '"MaxAttempts":120' in definition


def test_the_cluster_gets_a_cluster_group_and_member_scoped_iam(sandbox: Sandbox) -> None:
    cluster = sandbox.cluster()
    ForceSsl(sandbox.stack, "Ssl", database=cluster)
    t = Template.from_stack(sandbox.stack)
    group_id, group = only(t, "AWS::RDS::DBClusterParameterGroup")
    assert group["Properties"]["Family"] == "aurora-postgresql16"
    assert group["Properties"]["Parameters"] == {"rds.force_ssl": "1"}
    t.has_resource_properties(
        "AWS::RDS::DBCluster", {"DBClusterParameterGroupName": {"Ref": group_id}}
    )
    _, res = only(t, REBOOT)
    assert res["Properties"][contract.PROP_KIND] == contract.KIND_CLUSTER
    members = set(resources(t, "AWS::RDS::DBInstance"))
    assert len(members) == 3
    assert members <= set(res["DependsOn"])
    reboot_statements = [s for s in _statements(t) if "rds:RebootDBInstance" in _actions(s)]
    refs = {r["Fn::Join"][1][-1]["Ref"] for s in reboot_statements for r in s["Resource"]}
    assert refs == members
    assert {m["Ref"] for m in res["Properties"][contract.PROP_MEMBERS]} == members
    cluster_pg = [s for s in _statements(t) if "rds:DescribeDBClusterParameters" in _actions(s)]
    assert cluster_pg
    assert all(s["Resource"]["Fn::Join"][1][-2] == ":cluster-pg:" for s in cluster_pg)


def test_autoscaled_readers_are_reached_through_their_aws_tag_only(sandbox: Sandbox) -> None:
    cluster = sandbox.cluster()
    ForceSsl(sandbox.stack, "Ssl", database=cluster, autoscaled_readers=True)
    t = Template.from_stack(sandbox.stack)
    cluster_id, _ = only(t, "AWS::RDS::DBCluster")
    _, res = only(t, REBOOT)
    assert res["Properties"][contract.PROP_AUTOSCALED_READERS] == "true"
    tagged = [s for s in _statements(t) if "Condition" in s]
    assert {a for s in tagged for a in _actions(s)} == {
        "rds:DescribeDBInstances",
        "rds:RebootDBInstance",
    }
    for s in tagged:
        assert s["Resource"]["Fn::Join"][1][-1] == ":db:application-autoscaling-*"
        assert s["Condition"] == {
            "StringEquals": {
                "aws:ResourceTag/application-autoscaling:resourceId": {
                    "Fn::Join": ["", ["cluster:", {"Ref": cluster_id}]]
                }
            }
        }


def test_autoscaled_readers_on_an_instance_is_refused(sandbox: Sandbox) -> None:
    msg = _error(
        lambda: ForceSsl(sandbox.stack, "Ssl", database=sandbox.instance(), autoscaled_readers=True)
    )
    assert "Stack/Ssl: autoscaled_readers applies to Aurora clusters only" in msg


def _warnings(stack: cdk.Stack) -> list[str]:
    from aws_cdk.assertions import Annotations

    return [
        str(w.entry.data)
        for w in Annotations.from_stack(stack).find_warning("*", Match.any_value())
    ]


def test_a_cluster_too_big_to_reboot_in_total_timeout_gets_a_warning(sandbox: Sandbox) -> None:
    readers = [rds.ClusterInstance.provisioned(f"Reader{i}") for i in range(12)]
    ForceSsl(sandbox.stack, "Ssl", database=sandbox.cluster("Big", readers=readers))
    ForceSsl(sandbox.stack, "Small", database=sandbox.cluster("Three"))
    warnings = _warnings(sandbox.stack)
    big = [w for w in warnings if "Stack/Big: its 13 members" in w]
    assert len(big) == 1
    assert "57 min" in big[0]
    assert "total_timeout (50 min)" in big[0]
    assert not [w for w in warnings if "Stack/Three" in w]


# ---- bad input: one error that lists every problem, names the path and the fix ----------
def _error(build: Any) -> str:
    with pytest.raises(ValueError, match="ForceSsl cannot protect") as info:
        build()
    return str(info.value)


def test_force_ssl_zero_is_refused(sandbox: Sandbox) -> None:
    db = sandbox.instance(parameters={"rds.force_ssl": "0"})
    msg = _error(lambda: ForceSsl(sandbox.stack, "Ssl", database=db))
    assert "Stack/Db: parameter group" in msg
    assert "rds.force_ssl=0; remove it or set '1'" in msg


def test_unpinned_version_is_refused(sandbox: Sandbox) -> None:
    db = sandbox.instance(engine=rds.DatabaseInstanceEngine.POSTGRES)
    msg = _error(lambda: ForceSsl(sandbox.stack, "Ssl", database=db))
    assert "Stack/Db: engine version is not pinned" in msg
    assert "PostgresEngineVersion" in msg


def test_imported_group_is_refused(sandbox: Sandbox) -> None:
    imported = rds.ParameterGroup.from_parameter_group_name(sandbox.stack, "Imported", "team-pg16")
    db = sandbox.instance(parameter_group=imported)
    msg = _error(lambda: ForceSsl(sandbox.stack, "Ssl", database=db))
    assert "team-pg16 is imported" in msg
    assert "pass a CDK rds.ParameterGroup" in msg


def test_protecting_twice_is_an_error_that_names_the_first(sandbox: Sandbox) -> None:
    db = sandbox.instance()
    ForceSsl(sandbox.stack, "Ssl", database=db)
    assert protected_by(db) == "Stack/Ssl"
    msg = _error(lambda: ForceSsl(sandbox.stack, "Again", database=db))
    assert "Stack/Db: already protected by Stack/Ssl" in msg


def test_bad_options_are_all_reported_at_once(sandbox: Sandbox) -> None:
    db = sandbox.instance(
        engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_14_15),
        parameters={"rds.force_ssl": "0", "ssl_min_protocol_version": "TLSv1"},
        ca_certificate=rds.CaCertificate.RDS_CA_ECC384_G1,
    )
    msg = _error(
        lambda: ForceSsl(
            sandbox.stack,
            "Ssl",
            database=db,
            min_tls_version="TLSv1.3",
            ca_certificate=rds.CaCertificate.RDS_CA_RSA2048_G1,
            query_interval=cdk.Duration.seconds(7),
            total_timeout=cdk.Duration.minutes(90),
        )
    )
    for fragment in (
        "Stack/Ssl: TLSv1.3 needs RDS for PostgreSQL 16",
        "rds.force_ssl=0",
        "ssl_min_protocol_version=TLSv1",
        "CA certificate is already rds-ca-ecc384-g1",
        "over CloudFormation's one-hour limit",
        "not a multiple of query_interval",
    ):
        assert fragment in msg


def test_unknown_tls_version_is_refused(sandbox: Sandbox) -> None:
    msg = _error(
        lambda: ForceSsl(sandbox.stack, "Ssl", database=sandbox.instance(), min_tls_version="1.2")
    )
    assert "'TLSv1.2', 'TLSv1.3'" in msg


def test_a_refused_database_leaves_nothing_behind(sandbox: Sandbox) -> None:
    db = sandbox.instance(parameters={"rds.force_ssl": "0"})
    before = {c.node.path for c in sandbox.stack.node.find_all()}
    _error(lambda: ForceSsl(sandbox.stack, "Ssl", database=db))
    after = {c.node.path for c in sandbox.stack.node.find_all()}
    assert after == before
    assert protected_by(db) is None
    t = Template.from_stack(sandbox.stack)
    t.resource_count_is(REBOOT, 0)
    t.resource_count_is("AWS::Lambda::Function", 0)
    _, group = only(t, "AWS::RDS::DBParameterGroup")
    assert group["Properties"]["Parameters"] == {"rds.force_ssl": "0"}


def test_stacks_must_agree_on_timing(sandbox: Sandbox) -> None:
    ForceSsl(sandbox.stack, "Ssl1", database=sandbox.instance("Db1"))
    with pytest.raises(
        ValueError, match="Stack/Ssl2: query_interval/total_timeout 20s/3000s differ"
    ):
        ForceSsl(
            sandbox.stack,
            "Ssl2",
            database=sandbox.instance("Db2"),
            query_interval=cdk.Duration.seconds(20),
        )


def test_databases_without_a_group_share_the_stacks_group(sandbox: Sandbox) -> None:
    ForceSsl(sandbox.stack, "Ssl1", database=sandbox.instance("Db1"))
    ForceSsl(sandbox.stack, "Ssl2", database=sandbox.instance("Db2"))
    ForceSsl(sandbox.stack, "Ssl3", database=sandbox.instance("Db3"), min_tls_version="TLSv1.3")
    ForceSsl(sandbox.stack, "Ssl4", database=sandbox.cluster("Cluster"))
    t = Template.from_stack(sandbox.stack)
    groups = resources(t, "AWS::RDS::DBParameterGroup")
    assert all(k.startswith("RdsForceSslGroupPostgres16") for k in groups)
    by_params = {tuple(sorted(g["Properties"]["Parameters"].items())): k for k, g in groups.items()}
    assert set(by_params) == {
        (("rds.force_ssl", "1"),),
        (("rds.force_ssl", "1"), ("ssl_min_protocol_version", "TLSv1.3")),
    }
    attached = sorted(
        (k[:3], r["Properties"]["DBParameterGroupName"]["Ref"])
        for k, r in resources(t, "AWS::RDS::DBInstance").items()
        if k.startswith("Db")
    )
    plain, floor = by_params[(("rds.force_ssl", "1"),)], by_params[max(by_params)]
    assert attached == [("Db1", plain), ("Db2", plain), ("Db3", floor)]
    t.resource_count_is("AWS::RDS::DBClusterParameterGroup", 1)


def l1_instance_in_l1_group(
    sandbox: Sandbox, construct_id: str
) -> tuple[rds.CfnDBParameterGroup, rds.CfnDBInstance]:
    """An L1 PostgreSQL 16.9 instance in an L1 postgres16 group that sets {"a": "1"}."""
    group = rds.CfnDBParameterGroup(
        sandbox.stack, "Group", family="postgres16", description="mine", parameters={"a": "1"}
    )
    db = rds.CfnDBInstance(
        sandbox.stack,
        construct_id,
        engine="postgres",
        engine_version="16.9",
        db_instance_class="db.t4g.micro",
        allocated_storage="20",
        db_parameter_group_name=group.ref,
    )
    return group, db


def test_the_reboot_resource_sees_l1_parameters_set_after_force_ssl(sandbox: Sandbox) -> None:
    group, db = l1_instance_in_l1_group(sandbox, "Db")
    ForceSsl(sandbox.stack, "Ssl", database=db)
    group.parameters = {**group.parameters, "work_mem": "8192"}
    expected = {"a": "1", "rds.force_ssl": "1", "work_mem": "8192"}
    t = Template.from_stack(sandbox.stack)
    t.has_resource_properties("AWS::RDS::DBParameterGroup", {"Parameters": expected})
    t.has_resource_properties(REBOOT, {"Parameters": expected})


def test_a_later_force_ssl_0_fails_synth(sandbox: Sandbox) -> None:
    """ForceSsl checks at construction; the user's code may still change the group after."""
    users = rds.ParameterGroup(sandbox.stack, "Users", engine=PG16, parameters={"a": "1"})
    ForceSsl(sandbox.stack, "Ssl", database=sandbox.instance(parameter_group=users))
    users.add_parameter("rds.force_ssl", "0")
    with pytest.raises(RuntimeError, match=r"Stack/Db: parameter group .*rds.force_ssl=0 after"):
        sandbox.app.synth()


@pytest.mark.parametrize("kind", ["own group", "user's group", "cluster"])
def test_a_later_change_of_the_databases_group_fails_synth(sandbox: Sandbox, kind: str) -> None:
    """The group still enforcing proves nothing once the database uses another one: without
    this check synth passed and the report said "protected" with the default group attached."""
    if kind == "cluster":
        cluster = sandbox.cluster()
        ForceSsl(sandbox.stack, "Ssl", database=cluster)
        cfn = cluster.node.default_child
        assert isinstance(cfn, rds.CfnDBCluster)
        cfn.db_cluster_parameter_group_name = "default.aurora-postgresql16"
        path = "Stack/Cluster"
    else:
        users = rds.ParameterGroup(sandbox.stack, "Users", engine=PG16)
        db = sandbox.instance(parameter_group=users if kind == "user's group" else None)
        ForceSsl(sandbox.stack, "Ssl", database=db)
        cfn = db.node.default_child
        assert isinstance(cfn, rds.CfnDBInstance)
        cfn.db_parameter_group_name = "default.postgres16"
        path = "Stack/Db"
    with pytest.raises(
        RuntimeError,
        match=rf"{path}: uses parameter group default\.\S+ after ForceSsl gave it Stack/\S+; "
        "remove the later change",
    ):
        sandbox.app.synth()


def test_a_group_left_as_force_ssl_attached_it_passes_the_check(sandbox: Sandbox) -> None:
    """The other half: the same databases, unchanged, synthesize."""
    users = rds.ParameterGroup(sandbox.stack, "Users", engine=PG16)
    ForceSsl(sandbox.stack, "Ssl1", database=sandbox.instance("Db1", parameter_group=users))
    ForceSsl(sandbox.stack, "Ssl2", database=sandbox.instance("Db2"))
    ForceSsl(sandbox.stack, "Ssl3", database=sandbox.cluster())
    assert sandbox.app.synth().get_stack_by_name("Stack").template


def test_a_group_of_another_family_is_refused(sandbox: Sandbox) -> None:
    """One CDK ParameterGroup given to a PostgreSQL and a MySQL instance: ForceSsl used to write
    require_secure_transport into the postgres16 group (and a postgres16 group onto PostgreSQL
    14) and synth passed; RDS refuses either at deploy."""

    shared = rds.ParameterGroup(sandbox.stack, "Shared", engine=PG16)
    ForceSsl(sandbox.stack, "PgSsl", database=sandbox.instance("Pg", parameter_group=shared))
    my = sandbox.instance("My", engine=MYSQL80, parameter_group=shared)
    with pytest.raises(ValueError, match="ForceSsl cannot protect") as info:
        ForceSsl(sandbox.stack, "MySsl", database=my)
    assert (
        "Stack/My: parameter group Stack/Shared/Resource is of family postgres16, but mysql "
        "8.0.39 takes mysql8.0; give the database a group of family mysql8.0"
    ) in str(info.value)
    pg14 = rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_14_17)
    old = sandbox.instance("Old", engine=pg14, parameter_group=shared)
    with pytest.raises(ValueError, match=r"Stack/Old: .* family postgres16, but postgres 14\.17"):
        ForceSsl(sandbox.stack, "OldSsl", database=old)
    _, group = only(Template.from_stack(sandbox.stack), "AWS::RDS::DBParameterGroup")
    assert group["Properties"]["Parameters"] == {"rds.force_ssl": "1"}


def test_an_l1_group_of_the_databases_family_is_accepted(sandbox: Sandbox) -> None:
    _, db = l1_instance_in_l1_group(sandbox, "L1")
    ForceSsl(sandbox.stack, "Ssl", database=db)
    Template.from_stack(sandbox.stack).has_resource_properties(
        "AWS::RDS::DBParameterGroup", {"Parameters": {"a": "1", "rds.force_ssl": "1"}}
    )
