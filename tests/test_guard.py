"""``SslGuard``'s template: every rule pattern, the queue and its Lambda source, least-privilege
IAM (describe only; remediation rights only when asked; Security Hub scoped to the account's own
product), the alarm, one guard a stack and one per account and region from the baseline, and
cdk-nag with every finding acknowledged for a reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Annotations, Match, Template
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from rds_force_ssl import SslBaseline, SslGuard
from rds_force_ssl.guard import TWICE_WARNING, UNGUARDED_WARNING
from rds_force_ssl.handlers import guard as contract
from tests.conftest import PG16, Sandbox, fast_app, isolated_vpc

# The calls the issue names, each of which the CloudTrail rule must match.
NAMED_CALLS = {
    "ModifyDBParameterGroup",
    "ModifyDBClusterParameterGroup",
    "ResetDBParameterGroup",
    "ResetDBClusterParameterGroup",
    "ModifyDBInstance",
    "ModifyDBCluster",
    "CreateDBInstance",
    "CreateDBCluster",
    "CreateDBInstanceReadReplica",
    "RestoreDBInstanceFromDBSnapshot",
    "RestoreDBClusterFromSnapshot",
    "RestoreDBInstanceToPointInTime",
    "RestoreDBClusterToPointInTime",
    "CreateDBProxy",
    "ModifyDBProxy",
    "RebootDBInstance",
}


def template(**options: Any) -> Template:
    stack = cdk.Stack(
        fast_app(), "G", env=cdk.Environment(account="111122223333", region="eu-west-1")
    )
    SslGuard.of(stack, **options)
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def plain() -> Template:
    return template()


@pytest.fixture(scope="module")
def remediating() -> Template:
    return template(remediate=True)


def rules(t: Template) -> dict[str, dict[str, Any]]:
    found = t.find_resources("AWS::Events::Rule").values()
    return {r["Properties"].get("Description", ""): r["Properties"] for r in found}


def statements(t: Template) -> list[dict[str, Any]]:
    (role,) = t.find_resources("AWS::IAM::Role").values()
    (policy,) = role["Properties"]["Policies"]
    found: list[dict[str, Any]] = policy["PolicyDocument"]["Statement"]
    return found


def actions(t: Template) -> set[str]:
    found: set[str] = set()
    for s in statements(t):
        found.update([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    return found


def test_cloudtrail_rule_matches_every_call_that_turns_ssl_off(plain: Template) -> None:
    (props,) = [p for d, p in rules(plain).items() if "API calls" in d]
    pattern = props["EventPattern"]
    assert pattern["source"] == ["aws.rds"]
    assert pattern["detail-type"] == ["AWS API Call via CloudTrail"]
    assert pattern["detail"]["eventSource"] == ["rds.amazonaws.com"]
    assert set(pattern["detail"]["eventName"]) == set(contract.API_CALLS)
    assert set(pattern["detail"]["eventName"]) >= NAMED_CALLS


def test_rds_events_rule(plain: Template) -> None:
    (props,) = [p for d, p in rules(plain).items() if "own" in d]
    assert props["EventPattern"] == {
        "source": ["aws.rds"],
        "detail-type": list(contract.RDS_EVENT_TYPES),
        "detail": {"EventCategories": list(contract.RDS_EVENT_CATEGORIES)},
    }


def test_hourly_sweep_sends_the_sweep_message(plain: Template) -> None:
    (props,) = [p for d, p in rules(plain).items() if "whatever" in d]
    assert props["ScheduleExpression"] == "rate(1 hour)"
    (target,) = props["Targets"]
    assert json.loads(target["Input"]) == {contract.MESSAGE_KEY: contract.SWEEP}


def test_every_rule_feeds_the_queue(plain: Template) -> None:
    (queue_id,) = [
        k
        for k, r in plain.find_resources("AWS::SQS::Queue").items()
        if "RedrivePolicy" in r["Properties"]
    ]
    for props in rules(plain).values():
        assert props["Targets"][0]["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]}


def test_the_queue_is_read_in_batches_by_at_most_two(plain: Template) -> None:
    plain.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "BatchSize": 100,
            "MaximumBatchingWindowInSeconds": 10,
            "ScalingConfig": {"MaximumConcurrency": 2},
        },
    )
    plain.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "rds_force_ssl.handlers.guard.handler",
            "Environment": {
                "Variables": Match.object_like(
                    {contract.ENV_REMEDIATE: "false", contract.ENV_ACCOUNT: "111122223333"}
                )
            },
        },
    )


def test_reads_only_unless_remediation_is_on(plain: Template, remediating: Template) -> None:
    rds_actions = {a for a in actions(plain) if a.startswith("rds:")}
    assert rds_actions == {
        "rds:DescribeDBInstances",
        "rds:DescribeDBClusters",
        "rds:DescribeDBProxies",
        "rds:DescribeDBParameters",
        "rds:DescribeDBClusterParameters",
    }
    added = actions(remediating) - actions(plain)
    assert added == {"rds:ModifyDBParameterGroup", "rds:ModifyDBClusterParameterGroup"}
    assert not any("Reboot" in a or a.endswith(":*") for a in actions(remediating))


def test_rds_reads_are_scoped_to_the_account_and_region(plain: Template) -> None:
    for s in statements(plain):
        if str(s["Action"]).startswith("rds:"):
            resource = json.dumps(s["Resource"])
            assert ":rds:eu-west-1:111122223333:" in resource, s


def test_security_hub_and_cloudwatch_are_scoped(plain: Template) -> None:
    by_action = {json.dumps(s["Action"]): s for s in statements(plain)}
    hub = by_action['"securityhub:BatchImportFindings"']
    assert "securityhub:eu-west-1:111122223333:product/111122223333/default" in json.dumps(
        hub["Resource"]
    )
    metrics = by_action['"cloudwatch:PutMetricData"']
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": contract.NAMESPACE}}


def test_the_alarm_watches_not_enforced_and_tells_the_topic(plain: Template) -> None:
    (topic,) = plain.find_resources("AWS::SNS::Topic")
    plain.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": contract.NAMESPACE,
            "MetricName": contract.NOT_ENFORCED,
            "Statistic": "Sum",
            "Period": 3600,
            "Threshold": 1,
            # The sweep fires at an offset from the periods: two periods, one datapoint, so
            # a period without a sweep does not flap it to OK.
            "EvaluationPeriods": 2,
            "DatapointsToAlarm": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": topic}],
        },
    )


def test_a_topic_passed_in_is_used_and_none_is_made() -> None:
    stack = cdk.Stack(fast_app(), "G")
    topic = sns.Topic.from_topic_arn(stack, "Mine", "arn:aws:sns:eu-west-1:111122223333:sec")
    SslGuard.of(stack, topic=topic)
    t = Template.from_stack(stack)
    t.resource_count_is("AWS::SNS::Topic", 0)
    assert any(
        s["Action"] == "sns:Publish" and s["Resource"] == "arn:aws:sns:eu-west-1:111122223333:sec"
        for s in statements(t)
    )


def test_one_guard_a_stack() -> None:
    stack = cdk.Stack(fast_app(), "G")
    first = SslGuard.of(stack)
    assert SslGuard.of(stack) is first
    with pytest.raises(ValueError, match="already has other options"):
        SslGuard.of(stack, remediate=True)


def test_bad_options_are_all_reported_at_once() -> None:
    stack = cdk.Stack(fast_app(), "G")
    with pytest.raises(ValueError, match="SslGuard cannot be added") as err:
        SslGuard(stack, "Guard", remediate="yes", sweep=cdk.Duration.minutes(1))  # type: ignore[arg-type]
    assert "remediate='yes'; use True or False" in str(err.value)
    assert "sweep is 60s; use whole minutes between Duration.minutes(5)" in str(err.value)
    with pytest.raises(ValueError, match="sweep is 301s"):
        SslGuard(stack, "Other", sweep=cdk.Duration.seconds(301))


def guards(app: cdk.App) -> list[str]:
    return sorted(c.node.path for c in app.node.find_all() if isinstance(c, SslGuard))


def test_baseline_guard_adds_one_per_account_and_region() -> None:
    """Two stacks in us-east-1 share one guard (the first's); eu-west-1 gets its own; a stack
    without a database gets none."""
    app = fast_app()
    cdk.Stack(app, "Empty", env=cdk.Environment(region="us-east-1"))
    for name, region in (("A", "us-east-1"), ("B", "us-east-1"), ("C", "eu-west-1")):
        stack = cdk.Stack(app, name, env=cdk.Environment(region=region))
        rds.DatabaseInstance(
            stack,
            "Db",
            engine=PG16,
            vpc=isolated_vpc(stack),
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        )
    SslBaseline.apply(app, guard=True)
    app.synth()
    assert guards(app) == ["A/RdsForceSslGuard", "C/RdsForceSslGuard"]


def test_baseline_guard_keeps_a_guard_the_app_added_with_its_own_options() -> None:
    sandbox = Sandbox()
    sandbox.instance()
    other = cdk.Stack(sandbox.app, "Security", env=cdk.Environment(region="us-east-1"))
    mine = SslGuard.of(other, remediate=True)
    SslBaseline.apply(sandbox.app, guard=True)
    sandbox.app.synth()
    assert guards(sandbox.app) == ["Security/RdsForceSslGuard"]
    assert mine.remediate


def test_baseline_without_guard_adds_none() -> None:
    sandbox = Sandbox()
    sandbox.instance()
    SslBaseline.apply(sandbox.app)
    sandbox.app.synth()
    assert guards(sandbox.app) == []


def test_baseline_guard_must_be_a_bool() -> None:
    with pytest.raises(ValueError, match="guard='yes'; use True or False"):
        SslBaseline.apply(fast_app(), guard="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("remediate", [False, True])
def test_cdk_nag_finds_nothing_unacknowledged(tmp_path: Path, remediate: bool) -> None:
    app = cdk.App(
        outdir=str(tmp_path), context={"@aws-cdk/core:failSynthOnValidationErrors": False}
    )
    SslGuard.of(cdk.Stack(app, "G"), remediate=remediate)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    open_findings = [
        (v["ruleName"], c["constructPath"])
        for pr in report["pluginReports"]
        for v in pr["violations"]
        if v.get("severity") == "error" or pr["pluginName"] == "AwsSolutions"
        for c in v["violatingConstructs"]
    ]
    assert open_findings == []
    acknowledged = [v for pr in report["pluginReports"] for v in pr.get("suppressedViolations", [])]
    assert {v["ruleName"] for v in acknowledged} >= {"AwsSolutions-DDB3"}
    assert all(len(v["reason"]) > 40 for v in acknowledged)


def test_the_trail_check_is_read_only_and_scoped_to_trails(plain: Template) -> None:
    by_action = {json.dumps(s["Action"]): s for s in statements(plain)}
    assert by_action['"cloudtrail:DescribeTrails"']["Resource"] == "*"
    status = json.dumps(by_action['"cloudtrail:GetTrailStatus"']["Resource"])
    assert ":cloudtrail:*:*:trail/*" in status
    assert {a for a in actions(plain) if a.startswith("cloudtrail:")} == {
        "cloudtrail:DescribeTrails",
        "cloudtrail:GetTrailStatus",
    }


BLUE_GREEN = cdk.Environment(account="111111111111", region="eu-west-1")


def db_stack(scope: Construct, name: str, env: cdk.Environment | None = None) -> cdk.Stack:
    stack = cdk.Stack(scope, name, env=env)
    rds.DatabaseInstance(
        stack,
        "Db",
        engine=PG16,
        vpc=isolated_vpc(stack),
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
    )
    return stack


def warnings_of(stack: cdk.Stack) -> list[str]:
    found = Annotations.from_stack(stack).find_warning("*", Match.any_value())
    return [f"{m.id}: {m.entry.data}" for m in found]


def test_two_stages_of_one_env_keep_both_guards_and_warn_on_the_second() -> None:
    """Blue/green: each Stage may be deployed alone, so each keeps its guard; the second says
    which guard already watches that account and region."""
    app = fast_app()
    stacks = []
    for name in ("Blue", "Green"):
        stage = cdk.Stage(app, name, env=BLUE_GREEN)
        stacks.append(db_stack(stage, "Data"))
        SslBaseline.apply(stage, mode="enforce", guard=True)
    app.synth()
    assert guards(app) == ["Blue/Data/RdsForceSslGuard", "Green/Data/RdsForceSslGuard"]
    assert not [w for w in warnings_of(stacks[0]) if "also an SslGuard" in w]
    [warning] = [w for w in warnings_of(stacks[1]) if "also an SslGuard" in w]
    assert warning.startswith(
        "/Green/Data/RdsForceSslGuard: Green/Data/RdsForceSslGuard: Blue/Data/RdsForceSslGuard "
        "is also an SslGuard of account 111111111111 region eu-west-1"
    )
    assert f"[ack: {TWICE_WARNING}]" in warning
    acked = fast_app()  # as docs/guard.md says: acknowledged on the Stage, before synth
    for name in ("Blue", "Green"):
        stage = cdk.Stage(acked, name, env=BLUE_GREEN)
        stacks.append(db_stack(stage, "Data"))
        SslBaseline.apply(stage, mode="enforce", guard=True)
        cdk.Annotations.of(stage).acknowledge_warning(TWICE_WARNING, "blue/green: one is live")
    acked.synth()
    assert guards(acked) == ["Blue/Data/RdsForceSslGuard", "Green/Data/RdsForceSslGuard"]
    assert not [w for w in warnings_of(stacks[-1]) if "also an SslGuard" in w]


def test_guards_of_two_stacks_in_one_env_warn_and_the_warning_can_be_acknowledged() -> None:
    app = fast_app()
    a, b = cdk.Stack(app, "A", env=BLUE_GREEN), cdk.Stack(app, "B", env=BLUE_GREEN)
    elsewhere = cdk.Stack(app, "C", env=cdk.Environment(account="111111111111", region="us-east-1"))
    agnostic = [cdk.Stack(app, "D"), cdk.Stack(app, "E")]
    for stack in (a, b, elsewhere, *agnostic):
        SslGuard.of(stack)
    [warning] = warnings_of(b)
    assert "/B/RdsForceSslGuard: B/RdsForceSslGuard: A/RdsForceSslGuard is also" in warning
    for quiet in (a, elsewhere, *agnostic):
        assert warnings_of(quiet) == []
    other = fast_app()  # another app's guards are not compared with this one's
    other_a = cdk.Stack(other, "A", env=BLUE_GREEN)
    SslGuard.of(other_a)
    assert warnings_of(other_a) == []
    acked = cdk.Stack(other, "Acked", env=BLUE_GREEN)
    cdk.Annotations.of(acked).acknowledge_warning(TWICE_WARNING, "deployed alone")
    SslGuard.of(acked)
    assert warnings_of(acked) == []


def test_of_finds_a_guard_made_under_any_id_and_a_second_one_is_refused() -> None:
    stack = cdk.Stack(fast_app(), "S")
    mine = SslGuard(stack, "G")
    assert SslGuard.of(stack) is mine
    with pytest.raises(ValueError, match="already has an SslGuard") as err:
        SslGuard(stack, "Second")
    assert str(err.value) == (
        "S/Second: S already has an SslGuard, S/G; one guard a stack (it watches the whole "
        "account and region): use that one, or ask for the stack's guard with SslGuard.of(stack)"
    )


def test_baseline_guard_uses_a_guard_made_under_any_id() -> None:
    app = fast_app()
    stack = db_stack(app, "S", BLUE_GREEN)
    SslGuard(stack, "G", remediate=True)
    SslBaseline.apply(app, guard=True)
    app.synth()
    assert guards(app) == ["S/G"]


def test_env_agnostic_stacks_share_the_first_guard_and_the_others_say_so() -> None:
    app = fast_app()
    first, second = db_stack(app, "First"), db_stack(app, "Second")
    cdk.Stack(app, "NoDatabase")
    baseline = SslBaseline.apply(app, guard=True)
    app.synth()
    assert guards(app) == ["First/RdsForceSslGuard"]
    assert baseline.guards == ["First/RdsForceSslGuard"]
    assert [w for w in warnings_of(first) if "env-agnostic" in w] == []
    [warning] = [w for w in warnings_of(second) if "env-agnostic" in w]
    assert warning.startswith(
        "/Second: Second: env-agnostic, like First, so guard=True gave it no SslGuard of its "
        "own: the guard in First/RdsForceSslGuard covers its databases only if both are "
        "deployed to the same account and region. Deployed elsewhere, add one with "
        "SslGuard.of(stack), or give the stacks an env"
    )
    assert f"[ack: {UNGUARDED_WARNING}]" in warning


def test_guard_true_on_an_app_whose_databases_are_all_in_stages_says_so() -> None:
    app = fast_app()
    db_stack(cdk.Stage(app, "Prod"), "Data")
    cdk.Stack(app, "Tools")
    baseline = SslBaseline.apply(app, guard=True)
    app.synth()
    assert guards(app) == []
    assert baseline.summary().endswith(
        "; guard=True added no SslGuard: the databases are in those Stages (apply the baseline "
        "with guard=True to each Stage, or SslGuard.of(stack))"
    )
    without = fast_app()
    db_stack(cdk.Stage(without, "Prod"), "Data")
    plain = SslBaseline.apply(without)
    without.synth()
    assert "guard=True" not in plain.summary()


def test_a_misspelt_guard_keyword_suggests_guard() -> None:
    with pytest.raises(ValueError, match="not a ForceSsl option") as err:
        SslBaseline.apply(fast_app(), mode="enforce", gaurd=True)
    msg = str(err.value)
    assert "SslBaseline.apply(app): 'gaurd' is not a ForceSsl option, nor the baseline's; " in msg
    assert "did you mean 'guard'? SslBaseline takes mode, guard, and passes on to ForceSsl " in msg
    assert "log_connections" in msg


def test_of_outside_a_stack_names_the_fix() -> None:
    app = fast_app()
    with pytest.raises(ValueError, match="not in one") as err:
        SslGuard.of(app)
    assert str(err.value) == (
        "SslGuard.of(app): the guard lives in a Stack, and this scope is not in one; pass a "
        "Stack (or a construct in one): SslGuard.of(stack)"
    )
    with pytest.raises(ValueError, match="Stage/G: not in a Stack"):
        SslGuard(cdk.Stage(app, "Stage"), "G")


def test_of_with_other_options_shows_both_and_the_guard() -> None:
    stack = cdk.Stack(fast_app(), "S")
    topic = sns.Topic(stack, "Alerts")
    SslGuard(stack, "Mine", topic=topic)
    with pytest.raises(ValueError, match="already has other options") as err:
        SslGuard.of(stack, remediate=True, sweep=cdk.Duration.hours(2))
    assert str(err.value) == (
        "S: its SslGuard S/Mine already has other options: remediate=False, sweep=3600s, "
        "topic=S/Alerts, asked now for remediate=True, sweep=7200s, no topic; one guard a stack: "
        "ask for it with the same options (or pass them only where it is first made)"
    )
