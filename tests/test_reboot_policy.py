"""The reboot policy at synth: the option, its default from ``apply_immediately``, what synth
says, the stack's maintenance-window schedule and its IAM, the attributes ForceSsl exposes, and
the footprint the Provider framework's roles no longer add to."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from aws_cdk import custom_resources as cr
from aws_cdk.assertions import Annotations, Match, Template

from rds_force_ssl import ForceSsl, ForceSslError, Reboot, SslBaseline
from rds_force_ssl import reboot_provider as rp
from rds_force_ssl.facts import contract
from rds_force_ssl.force_ssl import CLOUDFORMATION_WARNING, NEVER_WARNING, WINDOW_WARNING
from rds_force_ssl.handlers import maintenance
from tests.conftest import Sandbox

REBOOT = contract.RESOURCE_TYPE
RULE = "AWS::Events::Rule"
PERMISSION = "AWS::Lambda::Permission"


def template(sandbox: Sandbox) -> dict[str, Any]:
    return dict(Template.from_stack(sandbox.stack).to_json())


def of_type(t: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in t["Resources"].items() if v["Type"] == kind}


def logical_id(t: dict[str, Any], prefix: str, kind: str) -> str:
    (found,) = [k for k in of_type(t, kind) if k.startswith(prefix)]
    return found


def messages(sandbox: Sandbox, level: str) -> list[str]:
    found = getattr(Annotations.from_stack(sandbox.stack), f"find_{level}")("*", Match.any_value())
    return [str(m.entry.data) for m in found]


# ---- the option, and the default ------------------------------------------------------------
def test_immediate_is_the_default_and_adds_no_schedule(sandbox: Sandbox) -> None:
    ForceSsl(sandbox.stack, "Ssl", database=sandbox.instance())
    t = template(sandbox)
    (reboot,) = of_type(t, REBOOT).values()
    assert contract.PROP_REBOOT not in reboot["Properties"]  # a stack from before sees no change
    assert (of_type(t, RULE), of_type(t, PERMISSION)) == ({}, {})
    assert (messages(sandbox, "info"), messages(sandbox, "warning")) == ([], [])


@pytest.mark.parametrize("policy", list(Reboot))
def test_the_policy_reaches_the_reboot_resource(sandbox: Sandbox, policy: Reboot) -> None:
    ForceSsl(sandbox.stack, "Ssl", database=sandbox.instance(), reboot=policy)
    (reboot,) = of_type(template(sandbox), REBOOT).values()
    assert reboot["Properties"].get(contract.PROP_REBOOT, "immediate") == policy.value


def test_apply_immediately_false_on_an_instance_defaults_to_the_window_and_says_so(
    sandbox: Sandbox,
) -> None:
    ForceSsl(sandbox.stack, "Ssl", database=sandbox.instance(apply_immediately=False))
    t = template(sandbox)
    (reboot,) = of_type(t, REBOOT).values()
    assert reboot["Properties"][contract.PROP_REBOOT] == "maintenance-window"
    assert len(of_type(t, RULE)) == 1
    (info,) = messages(sandbox, "info")
    assert info.startswith("Stack/Db sets apply_immediately=False, so ForceSsl restarts it in ")
    assert "Pass reboot=Reboot.IMMEDIATE" in info


def test_apply_immediately_false_on_a_cluster_member_defaults_to_the_window(
    sandbox: Sandbox,
) -> None:
    cluster = sandbox.cluster(
        writer=rds.ClusterInstance.provisioned("Writer", apply_immediately=False), readers=[]
    )
    ForceSsl(sandbox.stack, "Ssl", database=cluster)
    (reboot,) = of_type(template(sandbox), REBOOT).values()
    assert reboot["Properties"][contract.PROP_REBOOT] == "maintenance-window"


def test_an_explicit_policy_wins_over_apply_immediately(sandbox: Sandbox) -> None:
    db = sandbox.instance(apply_immediately=False)
    ForceSsl(sandbox.stack, "Ssl", database=db, reboot=Reboot.IMMEDIATE)
    t = template(sandbox)
    (reboot,) = of_type(t, REBOOT).values()
    assert contract.PROP_REBOOT not in reboot["Properties"]
    assert of_type(t, RULE) == {}
    assert messages(sandbox, "info") == []


def test_apply_immediately_true_changes_nothing(sandbox: Sandbox) -> None:
    ForceSsl(sandbox.stack, "Ssl", database=sandbox.instance(apply_immediately=True))
    (reboot,) = of_type(template(sandbox), REBOOT).values()
    assert contract.PROP_REBOOT not in reboot["Properties"]


def test_never_warns_at_synth_with_an_id_to_acknowledge(sandbox: Sandbox) -> None:
    db = sandbox.instance(parameters={"work_mem": "4096"})  # its own group: nothing attached
    ForceSsl(sandbox.stack, "Ssl", database=db, reboot=Reboot.NEVER)
    (warning,) = messages(sandbox, "warning")
    assert warning.startswith("Stack/Db: reboot=Reboot.NEVER: ForceSsl never restarts it")
    assert "Outcome pending-reboot" in warning
    assert f"[ack: {NEVER_WARNING}]" in warning
    assert of_type(template(sandbox), RULE) == {}


@pytest.mark.parametrize("policy", [Reboot.MAINTENANCE_WINDOW, Reboot.NEVER])
def test_a_group_attached_to_an_instance_warns_that_cloudformation_restarts_it(
    sandbox: Sandbox, policy: Reboot
) -> None:
    """CloudFormation's DBInstance update reboots an instance it leaves pending-reboot unless
    ApplyImmediately is false: the policy cannot stop that, apply_immediately=False can."""
    ForceSsl(sandbox.stack, "Ssl", database=sandbox.instance(), reboot=policy)
    found = [w for w in messages(sandbox, "warning") if CLOUDFORMATION_WARNING in w]
    (warning,) = found
    assert warning.startswith(f"Stack/Db: reboot=Reboot.{policy.name}, but ForceSsl attaches")
    assert "Give it apply_immediately=False" in warning


@pytest.mark.parametrize(
    "case", ["apply_immediately=False", "its own group", "a cluster", "immediate"]
)
def test_no_cloudformation_warning_where_cloudformation_does_not_restart(
    sandbox: Sandbox, case: str
) -> None:
    policy = Reboot.IMMEDIATE if case == "immediate" else Reboot.MAINTENANCE_WINDOW
    make: dict[str, Callable[[], rds.DatabaseInstance | rds.DatabaseCluster]] = {
        "apply_immediately=False": lambda: sandbox.instance(apply_immediately=False),
        "its own group": lambda: sandbox.instance(parameters={"work_mem": "4096"}),
        "a cluster": lambda: sandbox.cluster(),
        "immediate": lambda: sandbox.instance(),
    }
    database = make[case]()
    ForceSsl(sandbox.stack, "Ssl", database=database, reboot=policy)
    assert [w for w in messages(sandbox, "warning") if CLOUDFORMATION_WARNING in w] == []


def test_reboot_for_other_parameters_reaches_the_resource(sandbox: Sandbox) -> None:
    ForceSsl(sandbox.stack, "Ssl", database=sandbox.instance(), reboot_for_other_parameters=True)
    (reboot,) = of_type(template(sandbox), REBOOT).values()
    assert reboot["Properties"][contract.PROP_OTHER_PARAMETERS] == "true"


# ---- the schedule and its IAM -------------------------------------------------------------
@pytest.fixture
def windowed(sandbox: Sandbox) -> dict[str, Any]:
    """An instance and an Aurora cluster under MAINTENANCE_WINDOW, one instance IMMEDIATE."""
    ForceSsl(
        sandbox.stack, "DbSsl", database=sandbox.instance("Db"), reboot=Reboot.MAINTENANCE_WINDOW
    )
    ForceSsl(
        sandbox.stack,
        "ClusterSsl",
        database=sandbox.cluster(),
        reboot=Reboot.MAINTENANCE_WINDOW,
        autoscaled_readers=True,
    )
    ForceSsl(sandbox.stack, "NowSsl", database=sandbox.instance("Now"))
    return template(sandbox)


def test_one_rule_every_five_minutes_targets_the_poller(windowed: dict[str, Any]) -> None:
    ((rule_id, rule),) = of_type(windowed, RULE).items()
    props = rule["Properties"]
    assert props["ScheduleExpression"] == "cron(0/5 * * * ? *)"
    assert props["State"] == "ENABLED"
    (target,) = props["Targets"]
    poller = logical_id(windowed, "RdsForceSslRebootProviderIsComplete", "AWS::Lambda::Function")
    assert target["Arn"] == {"Fn::GetAtt": [poller, "Arn"]}
    fn = windowed["Resources"][poller]["Properties"]
    assert fn["Handler"] == "rds_force_ssl.handlers.maintenance.poller"
    ((_, permission),) = of_type(windowed, PERMISSION).items()
    assert permission["Properties"] == {
        "Action": "lambda:InvokeFunction",
        "FunctionName": {"Fn::GetAtt": [poller, "Arn"]},
        "Principal": "events.amazonaws.com",
        "SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]},
    }


def _rendered_input(t: dict[str, Any]) -> Any:
    """The rule's input with Refs as '<LogicalId>' and GetAtts as '<LogicalId.Attr>'."""
    (rule,) = of_type(t, RULE).values()
    ((_, parts),) = [rule["Properties"]["Targets"][0]["Input"]["Fn::Join"]]

    def text(part: Any) -> str:
        if isinstance(part, str):
            return part
        if "Ref" in part:
            return f"<{part['Ref']}>"
        return "<{}.{}>".format(*part["Fn::GetAtt"])

    return json.loads("".join(text(p) for p in parts))


def test_the_input_lists_exactly_the_window_databases(windowed: dict[str, Any]) -> None:
    payload = _rendered_input(windowed)
    assert payload[maintenance.INPUT_KEY] == maintenance.INPUT_KIND
    db = logical_id(windowed, "Db", "AWS::RDS::DBInstance")
    cluster = logical_id(windowed, "Cluster", "AWS::RDS::DBCluster")
    members = sorted(
        k
        for k, v in of_type(windowed, "AWS::RDS::DBInstance").items()
        if "DBClusterIdentifier" in v["Properties"]
    )
    db_reboot = logical_id(windowed, "DbSslReboot", REBOOT)
    cluster_reboot = logical_id(windowed, "ClusterSslReboot", REBOOT)
    rows = payload[maintenance.INPUT_DATABASES]
    assert rows[0] == [f"<{db}>", f"<{db_reboot}.RebootOwedSince>", "", ""]
    assert rows[1][:2] == [f"<{cluster}>", f"<{cluster_reboot}.RebootOwedSince>"]
    assert sorted(rows[1][2].split(",")) == sorted(f"<{m}>" for m in members)
    assert rows[1][3] == "ca"  # a cluster, whose autoscaled readers IAM reaches
    assert len(rows) == 2  # not the IMMEDIATE one
    deployed = [[ident, "1767603600", members, flags] for ident, _, members, flags in rows]
    parsed = maintenance.entries(
        {maintenance.INPUT_KEY: maintenance.INPUT_KIND, maintenance.INPUT_DATABASES: deployed}
    )
    assert [e.cluster for e in parsed] == [False, True]


def test_the_schedule_adds_no_permission_to_the_poller(
    windowed: dict[str, Any], make_sandbox: Any
) -> None:
    """The poller's role is the deploy's: the same statements with or without the schedule."""
    other = make_sandbox()
    ForceSsl(other.stack, "DbSsl", database=other.instance("Db"))
    ForceSsl(other.stack, "ClusterSsl", database=other.cluster(), autoscaled_readers=True)
    ForceSsl(other.stack, "NowSsl", database=other.instance("Now"))
    immediate = template(other)

    def poller_policy(t: dict[str, Any]) -> Any:
        role = logical_id(t, "RdsForceSslRebootProviderIsCompleteRole", "AWS::IAM::Role")
        return t["Resources"][role]["Properties"]["Policies"]

    assert poller_policy(windowed) == poller_policy(immediate)
    actions = {
        a
        for p in poller_policy(windowed)
        for s in p["PolicyDocument"]["Statement"]
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert not any(a.startswith(("rds:Modify", "rds:AddTags", "rds:*")) for a in actions)


def test_one_schedule_per_stack_whatever_the_number_of_databases(sandbox: Sandbox) -> None:
    for i in range(3):
        ForceSsl(
            sandbox.stack,
            f"Ssl{i}",
            database=sandbox.instance(f"Db{i}"),
            reboot=Reboot.MAINTENANCE_WINDOW,
        )
    t = template(sandbox)
    assert (len(of_type(t, RULE)), len(of_type(t, PERMISSION))) == (1, 1)
    assert len(_rendered_input(t)[maintenance.INPUT_DATABASES]) == 3


def test_a_schedule_that_could_outgrow_eventbridges_input_is_refused(sandbox: Sandbox) -> None:
    """At 63-character identifiers a rule's 8,192-character input holds about 90 instances; a
    cluster with 130 members alone is over. The error names the path and the fix; nothing is
    added to the tree."""
    cluster = rds.CfnDBCluster(
        sandbox.stack, "Huge", engine="aurora-postgresql", engine_version="16.9"
    )
    for i in range(130):
        rds.CfnDBInstance(
            sandbox.stack,
            f"Member{i}",
            db_instance_class="db.r6g.large",
            engine="aurora-postgresql",
            db_cluster_identifier=cluster.ref,
        )
    before = {c.node.path for c in sandbox.stack.node.find_all()}
    with pytest.raises(ForceSslError) as info:
        ForceSsl(sandbox.stack, "Ssl", database=cluster, reboot=Reboot.MAINTENANCE_WINDOW)
    msg = str(info.value)
    assert "Stack/Ssl: stack Stack would have 1 databases under Reboot.MAINTENANCE_WINDOW" in msg
    assert "over EventBridge's 8,192 for a rule's target; put some of them in another" in msg
    assert {c.node.path for c in sandbox.stack.node.find_all()} == before


def test_a_cluster_with_more_members_than_its_window_has_runs_gets_a_warning(
    sandbox: Sandbox,
) -> None:
    readers = [rds.ClusterInstance.provisioned(f"Reader{i}") for i in range(6)]
    big = sandbox.cluster(
        "Big", readers=readers, preferred_maintenance_window="sun:03:00-sun:03:30"
    )
    ForceSsl(sandbox.stack, "Ssl", database=big, reboot=Reboot.MAINTENANCE_WINDOW)
    long = sandbox.cluster(
        "Long", readers=readers, preferred_maintenance_window="sun:03:00-sun:04:00"
    )
    ForceSsl(sandbox.stack, "LongSsl", database=long, reboot=Reboot.MAINTENANCE_WINDOW)
    (warning,) = messages(sandbox, "warning")
    assert warning.startswith("Stack/Big: its 7 members are restarted one per run")
    assert "its 30-minute window holds 6 runs" in warning
    assert f"[ack: {WINDOW_WARNING}]" in warning


# ---- attributes ----------------------------------------------------------------------------
def test_outcome_and_rebooted_are_the_reboot_resources_attributes(sandbox: Sandbox) -> None:
    guard = ForceSsl(sandbox.stack, "Ssl", database=sandbox.instance())
    cdk.CfnOutput(sandbox.stack, "Outcome", value=guard.outcome)
    cdk.CfnOutput(sandbox.stack, "Rebooted", value=guard.rebooted)
    t = template(sandbox)
    reboot = logical_id(t, "SslReboot", REBOOT)
    assert t["Outputs"]["Outcome"]["Value"] == {"Fn::GetAtt": [reboot, "Outcome"]}
    assert t["Outputs"]["Rebooted"]["Value"] == {"Fn::GetAtt": [reboot, "Rebooted"]}


def test_a_proxy_has_neither_and_ignores_the_policy(sandbox: Sandbox) -> None:
    db = sandbox.instance()
    guard = ForceSsl(sandbox.stack, "Ssl", database=sandbox.proxy(target=db), reboot=Reboot.NEVER)
    with pytest.raises(AttributeError, match="Stack/Ssl: protects an RDS Proxy, which has no"):
        _ = guard.outcome
    assert messages(sandbox, "warning") == []


# ---- misuse, in ForceSsl and through the baseline ------------------------------------------
def test_a_string_for_the_policy_names_the_enum_member(sandbox: Sandbox) -> None:
    with pytest.raises(ForceSslError) as info:
        ForceSsl(sandbox.stack, "Ssl", database=sandbox.instance(), reboot="maintenance-window")  # type: ignore[arg-type]
    assert (
        "Stack/Ssl: reboot='maintenance-window' (str) is not rds_force_ssl.Reboot or None; "
        "pass rds_force_ssl.Reboot.MAINTENANCE_WINDOW"
    ) in str(info.value)


def test_never_with_reboot_for_other_parameters_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(ForceSslError) as info:
        ForceSsl(
            sandbox.stack,
            "Ssl",
            database=sandbox.instance(),
            reboot=Reboot.NEVER,
            reboot_for_other_parameters=True,
        )
    assert "Stack/Ssl: reboot_for_other_parameters=True asks for restarts that" in str(info.value)
    assert sandbox.stack.node.try_find_child("Ssl") is None


def test_the_baseline_checks_the_policy_where_it_is_applied(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="SslBaseline cannot be applied") as info:
        SslBaseline.apply(sandbox.app, mode="enforce", reboot="never")
    assert (
        "SslBaseline.apply(app): reboot='never' (str) is not rds_force_ssl.Reboot or None; "
        "pass rds_force_ssl.Reboot.NEVER"
    ) in str(info.value)
    with pytest.raises(ValueError, match="reboot_for_other_parameters=True asks for restarts"):
        SslBaseline.apply(
            sandbox.app, mode="enforce", reboot=Reboot.NEVER, reboot_for_other_parameters=True
        )
    assert cdk.Aspects.of(sandbox.app).all == []


def test_the_baseline_passes_the_policy_to_every_database_it_protects(sandbox: Sandbox) -> None:
    db = sandbox.instance("Db")
    sandbox.cluster()
    sandbox.proxy(target=db)
    SslBaseline.apply(sandbox.app, mode="enforce", reboot=Reboot.MAINTENANCE_WINDOW)
    t = template(sandbox)
    policies = [r["Properties"][contract.PROP_REBOOT] for r in of_type(t, REBOOT).values()]
    assert policies == ["maintenance-window", "maintenance-window"]
    assert len(_rendered_input(t)[maintenance.INPUT_DATABASES]) == 2
    # The proxy takes it silently: nothing reboots.
    assert not [w for w in messages(sandbox, "warning") if "Proxy" in w]


def test_two_baselines_that_differ_only_in_policy_say_so(sandbox: Sandbox) -> None:
    SslBaseline.apply(sandbox.app, mode="enforce", reboot=Reboot.NEVER)
    with pytest.raises(ValueError, match="other options already cover") as info:
        SslBaseline.apply(sandbox.stack, mode="enforce", reboot=Reboot.IMMEDIATE)
    assert "reboot='Reboot.NEVER' here, reboot='Reboot.IMMEDIATE' now" in str(info.value)


# ---- footprint: the framework's roles carry their grants inline --------------------------
def test_the_framework_roles_hold_what_a_plain_provider_grants(sandbox: Sandbox) -> None:
    """ForceSsl's framework roles take no policy updates from the Provider and carry, inline,
    what it would grant them. A plain Provider shows what that is for this aws-cdk-lib; if a
    new version grants more, this fails."""
    ForceSsl(sandbox.stack, "Ssl", database=sandbox.instance())
    ours = template(sandbox)
    assert [k for k in of_type(ours, "AWS::IAM::Policy") if "Framework" in k] == []

    plain_app = cdk.App(builtin_cloud_formation_validation=False)
    plain = cdk.Stack(plain_app, "Plain")

    def fn(name: str) -> lambda_.Function:
        return lambda_.Function(
            plain,
            name,
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="x.y",
            code=lambda_.Code.from_inline("x"),
        )

    def role(name: str) -> iam.Role:
        return iam.Role(plain, name, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))

    cr.Provider(
        plain,
        "Provider",
        on_event_handler=fn("OnEvent"),
        is_complete_handler=fn("IsComplete"),
        framework_on_event_role=role("FrameworkOnEventRole"),
        framework_complete_and_timeout_role=role("FrameworkCompleteRole"),
    )
    granted = dict(Template.from_stack(plain).to_json())

    def shape(statements: list[dict[str, Any]], names: dict[str, str]) -> list[str]:
        """Statements with logical IDs replaced by what they name, order ignored."""
        text = json.dumps(statements)
        for logical, name in names.items():
            text = text.replace(logical, name)
        return sorted(json.dumps(s, sort_keys=True) for s in json.loads(text))

    def names(t: dict[str, Any], functions: str, machine: str) -> dict[str, str]:
        return {
            logical_id(t, f"{functions}OnEvent", "AWS::Lambda::Function"): "OnEvent",
            logical_id(t, f"{functions}IsComplete", "AWS::Lambda::Function"): "IsComplete",
            logical_id(t, machine, "AWS::StepFunctions::StateMachine"): "Waiter",
        }

    for which in ("FrameworkOnEventRole", "FrameworkCompleteRole"):
        plain_policy = [
            s
            for k, v in of_type(granted, "AWS::IAM::Policy").items()
            if k.startswith(f"{which}DefaultPolicy")
            for s in v["Properties"]["PolicyDocument"]["Statement"]
        ]
        role_id = logical_id(ours, f"RdsForceSslRebootProvider{which}", "AWS::IAM::Role")
        inline = [
            s
            for p in ours["Resources"][role_id]["Properties"]["Policies"]
            for s in p["PolicyDocument"]["Statement"]
            if not str(s["Action"]).startswith("['logs:")
        ]
        assert plain_policy, which
        provider = "RdsForceSslRebootProvider"
        assert shape(inline, names(ours, provider, f"{provider}waiter")) == shape(
            plain_policy, names(granted, "", "Providerwaiter")
        ), which


def test_fixed_resources_per_stack(make_sandbox: Any) -> None:
    """What ForceSsl adds to a stack besides one resource per database: 15 with
    Reboot.IMMEDIATE or NEVER (the reconciler's memory table among them), 17 with a
    MAINTENANCE_WINDOW database (the rule and its permission); within issue 12's 17."""

    def fixed(policy: Reboot | None) -> int:
        box = make_sandbox()
        db = box.instance()
        if policy is not None:
            ForceSsl(box.stack, "Ssl", database=db, reboot=policy)
        return len(template(box)["Resources"])

    alone = fixed(None)

    # Less the database's one reboot resource.
    assert {p.value: fixed(p) - alone - 1 for p in Reboot} == {
        "immediate": 15,
        "maintenance-window": 17,
        "never": 15,
    }
    assert rp.WINDOW_INPUT_LIMIT == 8192
