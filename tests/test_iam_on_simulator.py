"""The IAM that ForceSsl writes is exactly enough for what the reconciler does.

A stack with an instance, an Aurora cluster (with autoscaled readers opted in) and a Multi-AZ DB
cluster is synthesized; each handler role's policy is loaded into the RDS simulator's IAM, and
the reconciler runs every custom resource of the template against it: each succeeds, rebooting
what needs it and remembering it in the stack's table. The simulator asks IAM for what RDS does,
including dependent actions (RebootDBCluster needs RebootDBInstance on the members). A database
the stack does not protect stays out of reach.

What the simulator cannot tell: which resource ARN AWS checks a dependent action against (the
Service Authorization Reference does not say), and how RDS names a Multi-AZ DB cluster's members
(``<cluster>-instance-N`` in AWS's examples); both are modelled, not verified.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from rds_force_ssl import ForceSsl, Reboot
from rds_force_ssl.facts import contract
from rds_force_ssl.handlers import maintenance, reboot
from simulator import Iam, RdsSimulator, Statement, memory, run_provider
from simulator.dynamodb import table_arn
from simulator.rds import ACCOUNT, REGION, arn
from tests.conftest import Sandbox

ENFORCED = {"rds.force_ssl": "1"}
TABLE_PREFIX = "RdsForceSslRebootProviderMemory"


def physical(logical_id: str) -> str:
    """What CloudFormation names an RDS resource it names: lower case."""
    return logical_id.lower()


def resolve(value: Any) -> Any:
    if isinstance(value, list):
        return [resolve(v) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        pseudo = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
        return pseudo.get(value["Ref"], physical(value["Ref"]))
    if set(value) == {"Fn::Join"}:
        sep, parts = value["Fn::Join"]
        return sep.join(str(resolve(p)) for p in parts)
    if set(value) == {"Fn::GetAtt"} and value["Fn::GetAtt"][0].startswith(TABLE_PREFIX):
        return table_arn(physical(value["Fn::GetAtt"][0]))
    return {k: resolve(v) for k, v in value.items()}


def policy(template: dict[str, Any], role_prefix: str) -> Iam:
    statements = []
    for logical_id, res in template["Resources"].items():
        if res["Type"] != "AWS::IAM::Role" or not logical_id.startswith(role_prefix):
            continue
        for inline in res["Properties"].get("Policies", []):
            for s in resolve(inline["PolicyDocument"]["Statement"]):
                assert s["Effect"] == "Allow"
                actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
                targets = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
                tags = {
                    key.removeprefix("aws:ResourceTag/"): value
                    for key, value in s.get("Condition", {}).get("StringEquals", {}).items()
                }
                assert set(s.get("Condition", {})) <= {"StringEquals"}
                statements.append(Statement(set(actions), targets, tags))
    assert statements, role_prefix
    return Iam(statements)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    sandbox = Sandbox()
    ForceSsl(sandbox.stack, "DbSsl", database=sandbox.instance("Db"))
    ForceSsl(sandbox.stack, "ClusterSsl", database=sandbox.cluster(), autoscaled_readers=True)
    ForceSsl(sandbox.stack, "MultiAzSsl", database=sandbox.multi_az_cluster())
    sandbox.instance("Unprotected")
    return dict(Template.from_stack(sandbox.stack).to_json())


def world(template: dict[str, Any]) -> RdsSimulator:
    """The stack's databases as RDS would hold them, each still pending-reboot, and the stack's
    table under the name CloudFormation gives it."""
    sim = RdsSimulator(reboot_seconds=90)
    by_type: dict[str, list[str]] = {}
    for logical_id, res in template["Resources"].items():
        by_type.setdefault(res["Type"], []).append(logical_id)
    (table,) = by_type["AWS::DynamoDB::Table"]
    sim.table.name = physical(table)
    (group,) = by_type["AWS::RDS::DBParameterGroup"]
    cluster_groups = by_type["AWS::RDS::DBClusterParameterGroup"]
    (cluster_group,) = [g for g in cluster_groups if "Aurora" in g]
    (multi_az_group,) = [g for g in cluster_groups if "Aurora" not in g]
    (cluster,) = [c for c in by_type["AWS::RDS::DBCluster"] if "MultiAz" not in c]
    (multi_az,) = [c for c in by_type["AWS::RDS::DBCluster"] if "MultiAz" in c]
    sim.add_group(physical(group), ENFORCED)
    sim.add_group(physical(cluster_group), ENFORCED, cluster=True)
    sim.add_group(physical(multi_az_group), ENFORCED, cluster=True)
    sim.add_cluster(
        physical(multi_az),
        group=physical(multi_az_group),
        writer=f"{physical(multi_az)}-instance-1",
        readers=(f"{physical(multi_az)}-instance-2", f"{physical(multi_az)}-instance-3"),
        engine="postgres",
    )
    members = [
        i
        for i in by_type["AWS::RDS::DBInstance"]
        if "DBClusterIdentifier" in template["Resources"][i]["Properties"]
    ]
    for db in set(by_type["AWS::RDS::DBInstance"]) - set(members):
        sim.add_instance(physical(db), groups={physical(group): "pending-reboot"})
    writer = next(m for m in members if "Writer" in m)
    sim.add_cluster(
        physical(cluster),
        group=physical(cluster_group),
        writer=physical(writer),
        readers=tuple(physical(m) for m in members if m != writer),
    )
    sim.add_autoscaled_reader(physical(cluster), "61aabbcc", status="pending-reboot")
    return sim


def requests(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "RequestType": "Create",
            "RequestId": f"req-{logical_id}",
            "ResourceType": contract.RESOURCE_TYPE,
            "ResourceProperties": resolve(res["Properties"]),
        }
        for logical_id, res in template["Resources"].items()
        if res["Type"] == contract.RESOURCE_TYPE
    ]


def test_the_poller_role_is_enough_for_every_reboot(template: dict[str, Any]) -> None:
    sim = world(template)
    sim.iam = policy(template, "RdsForceSslRebootProviderIsCompleteRole")
    runs = [run_provider(sim, ev) for ev in requests(template)]
    assert [r.status for r in runs] == ["SUCCESS"] * 3, [r.reason for r in runs]
    assert "unprotected" not in " ".join(sim.reboots())
    autoscaled = "application-autoscaling-61aabbcc"
    assert autoscaled in sim.reboots()
    assert sim.call_names().count("RebootDBCluster") == 1
    assert all(sim.effective(i, ENFORCED) for i in sim.instances if not i.startswith("unprotected"))
    # Every reboot was claimed in the table first (the claims are the conditional writes that
    # expect no open claim), and none of the table's writes was denied.
    claims = [
        kw
        for name, kw in sim.calls
        if name == "PutItem" and kw.get("ConditionExpression", "").startswith("attribute_not")
    ]
    assert len(claims) == len(set(sim.reboots())) - 2  # the Multi-AZ cluster: one claim for 3
    assert "memory not" not in " ".join(r.reason for r in runs)
    assert set(sim.table.items) >= {
        f"db:{autoscaled}",
        f"cluster:{physical(multi_az_id(template))}",
    }


def multi_az_id(template: dict[str, Any]) -> str:
    resources: dict[str, dict[str, Any]] = template["Resources"]
    (found,) = [
        lid
        for lid, res in resources.items()
        if res["Type"] == "AWS::RDS::DBCluster" and "MultiAz" in lid
    ]
    return found


def test_the_on_event_role_reads_and_nothing_more(template: dict[str, Any]) -> None:
    sim = world(template)
    sim.iam = policy(template, "RdsForceSslRebootProviderOnEventRole")
    for ev in requests(template):
        started = reboot.handle_on_event(ev, sim, now=sim.time())
        assert "unknown" not in started["Data"]["StateAtStart"], started
    for ident in sim.instances:
        with pytest.raises(Exception, match="AccessDenied"):
            sim.reboot_db_instance(DBInstanceIdentifier=ident)
    with pytest.raises(Exception, match="AccessDenied"):
        sim.describe_events(SourceType="db-instance")
    with pytest.raises(Exception, match="AccessDenied"):
        sim.reboot_db_cluster(DBClusterIdentifier=physical(multi_az_id(template)))
    with pytest.raises(Exception, match="AccessDenied"):
        memory(sim).client.put_item(TableName=sim.table.name, Item={"Node": {"S": "db:x"}})


def test_the_policy_does_not_reach_an_unprotected_database(template: dict[str, Any]) -> None:
    sim = world(template)
    sim.add_group("other", ENFORCED)
    sim.add_instance("unprotected", groups={"other": "pending-reboot"})
    sim.iam = policy(template, "RdsForceSslRebootProviderIsCompleteRole")
    for op in (sim.describe_db_instances, sim.reboot_db_instance):
        with pytest.raises(Exception, match="AccessDenied"):
            op(DBInstanceIdentifier="unprotected")
    with pytest.raises(Exception, match="AccessDenied"):
        sim.describe_db_parameters(DBParameterGroupName="other")
    assert sim.iam.allows("rds:DescribeEvents", "*", {})
    assert not sim.iam.allows("rds:RebootDBInstance", arn("db", "application-autoscaling-x"), {})
    # The Multi-AZ DB cluster's dependent RebootDBInstance reaches its members' names only.
    members = f"{physical(multi_az_id(template))}-instance-1"
    assert sim.iam.allows("rds:RebootDBInstance", arn("db", members), {})
    assert not sim.iam.allows("rds:RebootDBInstance", arn("db", "other-instance-1"), {})
    assert not sim.iam.allows("dynamodb:PutItem", table_arn("another-table"), {})


# ---- the maintenance-window schedule, with the same role ---------------------------------
@pytest.fixture(scope="module")
def windowed() -> dict[str, Any]:
    sandbox = Sandbox()
    ForceSsl(
        sandbox.stack, "DbSsl", database=sandbox.instance("Db"), reboot=Reboot.MAINTENANCE_WINDOW
    )
    ForceSsl(
        sandbox.stack,
        "ClusterSsl",
        database=sandbox.cluster(),
        autoscaled_readers=True,
        reboot=Reboot.MAINTENANCE_WINDOW,
    )
    ForceSsl(
        sandbox.stack,
        "MultiAzSsl",
        database=sandbox.multi_az_cluster(),
        reboot=Reboot.MAINTENANCE_WINDOW,
    )
    sandbox.instance("Unprotected")
    return dict(Template.from_stack(sandbox.stack).to_json())


def test_the_schedule_reboots_in_the_window_with_the_poller_role_alone(
    windowed: dict[str, Any],
) -> None:
    """Deploy every reboot resource, then run the rule's input (its GetAtts filled with what the
    deploys returned) through the window, all under the poller's role: every member restarts,
    nothing is denied, and the unprotected instance is never touched."""
    sim = world(windowed)
    sim.iam = policy(windowed, "RdsForceSslRebootProviderIsCompleteRole")
    for inst in sim.instances.values():
        inst.window = "mon:09:00-mon:09:30"  # the simulator's t=0 is Monday 09:00 UTC
    for cluster in sim.clusters.values():
        cluster.window = "mon:09:00-mon:09:30"
    attributes = {}
    for logical_id, res in windowed["Resources"].items():
        if res["Type"] == contract.RESOURCE_TYPE:
            ev = {
                "RequestType": "Create",
                "RequestId": f"req-{logical_id}",
                "ResourceType": contract.RESOURCE_TYPE,
                "ResourceProperties": resolve(res["Properties"]),
            }
            run = run_provider(sim, ev)
            assert (run.status, run.data["Outcome"]) == ("SUCCESS", "reboot-scheduled")
            attributes[logical_id] = run.data[contract.ATTR_REBOOT_OWED_SINCE]
    assert sim.reboots() == []
    (rule,) = [r for r in windowed["Resources"].values() if r["Type"] == "AWS::Events::Rule"]
    _, parts = rule["Properties"]["Targets"][0]["Input"]["Fn::Join"]
    text = "".join(
        p
        if isinstance(p, str)
        else attributes[p["Fn::GetAtt"][0]]
        if "Fn::GetAtt" in p
        else str(resolve(p))
        for p in parts
    )
    schedule = json.loads(text)
    for _ in range(6):
        summary = maintenance.handle(schedule, sim, memory=memory(sim), now=sim.time())
        assert summary["errors"] == [], summary
        sim.advance(maintenance.RATE_MINUTES * 60)
    protected = sorted(i for i in sim.instances if not i.startswith("unprotected"))
    assert sorted(sim.reboots()) == protected
    # the instance, the writer, two readers, an autoscaled reader, three Multi-AZ members
    assert len(protected) == 8
    assert all(sim.effective(i, ENFORCED) for i in protected)
