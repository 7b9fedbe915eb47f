"""The IAM that ForceSsl writes is exactly enough for what the reconciler does.

A stack with an instance and an Aurora cluster (with autoscaled readers opted in) is synthesized;
each handler role's policy is loaded into the RDS simulator's IAM, and the reconciler runs every
custom resource of the template against it: each succeeds, rebooting what needs it. A database
the stack does not protect stays out of reach.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from rds_force_ssl import ForceSsl, Reboot
from rds_force_ssl.handlers import maintenance
from rds_force_ssl.handlers import reboot as contract
from simulator import Iam, RdsSimulator, Statement, run_provider
from simulator.rds import ACCOUNT, REGION, arn
from tests.conftest import Sandbox

ENFORCED = {"rds.force_ssl": "1"}


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
    sandbox.instance("Unprotected")
    return dict(Template.from_stack(sandbox.stack).to_json())


def world(template: dict[str, Any]) -> RdsSimulator:
    """The stack's databases as RDS would hold them, each still pending-reboot."""
    sim = RdsSimulator(reboot_seconds=90)
    by_type: dict[str, list[str]] = {}
    for logical_id, res in template["Resources"].items():
        by_type.setdefault(res["Type"], []).append(logical_id)
    (group,) = by_type["AWS::RDS::DBParameterGroup"]
    (cluster_group,) = by_type["AWS::RDS::DBClusterParameterGroup"]
    (cluster,) = by_type["AWS::RDS::DBCluster"]
    sim.add_group(physical(group), ENFORCED)
    sim.add_group(physical(cluster_group), ENFORCED, cluster=True)
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
    assert [r.status for r in runs] == ["SUCCESS", "SUCCESS"], [r.reason for r in runs]
    assert "unprotected" not in " ".join(sim.reboots())
    autoscaled = "application-autoscaling-61aabbcc"
    assert autoscaled in sim.reboots()
    assert all(sim.effective(i, ENFORCED) for i in sim.instances if not i.startswith("unprotected"))


def test_the_on_event_role_reads_and_nothing_more(template: dict[str, Any]) -> None:
    sim = world(template)
    sim.iam = policy(template, "RdsForceSslRebootProviderOnEventRole")
    for ev in requests(template):
        started = contract.handle_on_event(ev, sim, now=sim.time())
        assert "unknown" not in started["Data"]["StateAtStart"], started
    for ident in sim.instances:
        with pytest.raises(Exception, match="AccessDenied"):
            sim.reboot_db_instance(DBInstanceIdentifier=ident)
    with pytest.raises(Exception, match="AccessDenied"):
        sim.describe_events(SourceType="db-instance")


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
        summary = maintenance.handle(schedule, sim, now=sim.time())
        assert summary["errors"] == [], summary
        sim.advance(maintenance.RATE_MINUTES * 60)
    protected = sorted(i for i in sim.instances if not i.startswith("unprotected"))
    assert sorted(sim.reboots()) == protected
    assert len(protected) == 5  # the instance, the writer, two readers, an autoscaled reader
    assert all(sim.effective(i, ENFORCED) for i in protected)
