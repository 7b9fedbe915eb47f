"""``SslGuard``: keep every database and proxy of an account and region SSL-only after deploy, and
say so within minutes when one is not (docs/guard.md).

One per stack, watching the whole account and region. Drift is made by hand in the console,
and databases created by hand have no stack, so the guard cannot watch only what its stack
declares; the EventBridge rules and the sweep see the account and region. ``SslGuard.of(stack)``
is idempotent per stack (like the reboot provider), and ``SslBaseline(guard=True)`` adds it to
one stack per account and region it reaches (two guards of one concrete account and region in
an app, e.g. blue/green Stages, get a warning); two apps that each deploy one into the same account
and region double the checks and imports (the findings stay one per database: their Id is
stable), so deploy it once per account and region.

Wiring: three EventBridge rules (CloudTrail's RDS API calls, RDS's own events, an hourly sweep)
send to one SQS queue; a Lambda reads it in batches (10 s window, at most two at a time); a
DynamoDB table holds when each database was last checked and its last status. Reports: Security
Hub findings, a CloudWatch metric per finding kind with an alarm on their sum, and an SNS topic
(made, or passed in) that the alarm and the handler publish to.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

from rds_force_ssl import tree
from rds_force_ssl.handlers import guard as contract
from rds_force_ssl.reboot_provider import ASSET_EXCLUDE, HANDLER_PACKAGE, SOURCE_ROOT
from rds_force_ssl.report import GUARD
from rds_force_ssl.state import STATE

GUARD_ID = "RdsForceSslGuard"
# Warning ids (acknowledgeable with Annotations.of(scope).acknowledge_warning(id, reason)).
TWICE_WARNING = "rds-force-ssl:guard-twice-in-account-region"
UNGUARDED_WARNING = "rds-force-ssl:env-agnostic-guard"
TIMEOUT = cdk.Duration.seconds(120)
BATCH_SIZE = 100
BATCHING_WINDOW = cdk.Duration.seconds(10)
MAX_CONCURRENCY = 2  # SQS event sources: 2 is the least Lambda accepts
MIN_SWEEP_S = 300
MAX_SWEEP_S = 86400
# What the role may describe, by RDS resource type (Service Authorization Reference, Amazon RDS).
READS = {
    "rds:DescribeDBInstances": "db",
    "rds:DescribeDBClusters": "cluster",
    "rds:DescribeDBProxies": "db-proxy",
    "rds:DescribeDBParameters": "pg",
    "rds:DescribeDBClusterParameters": "cluster-pg",
}
REMEDIATION = {
    "rds:ModifyDBParameterGroup": "pg",
    "rds:ModifyDBClusterParameterGroup": "cluster-pg",
}
# The sweep asks whether a trail with logging on covers the region (without one, EventBridge
# gets no "AWS API Call via CloudTrail" event). DescribeTrails has no resource type;
# GetTrailStatus takes a trail, which may live in another region (a multi-region trail) or in
# the organization's management account (an organization trail).
TRAIL_RESOURCE = "trail/*"


def cloudtrail_pattern() -> dict[str, Any]:
    return {
        "source": ["aws.rds"],
        "detail-type": [contract.CLOUDTRAIL_DETAIL_TYPE],
        "detail": {"eventSource": ["rds.amazonaws.com"], "eventName": sorted(contract.API_CALLS)},
    }


def rds_events_pattern() -> dict[str, Any]:
    return {
        "source": ["aws.rds"],
        "detail-type": list(contract.RDS_EVENT_TYPES),
        "detail": {"EventCategories": list(contract.RDS_EVENT_CATEGORIES)},
    }


def _env_text(stack: cdk.Stack) -> str:
    account, region = stack.account, stack.region
    if cdk.Token.is_unresolved(account) or cdk.Token.is_unresolved(region):
        return "the account and region it is deployed to"
    return f"account {account} region {region}"


def _minutes(sweep: cdk.Duration) -> float:
    return tree.seconds(sweep) / 60


class SslGuard(Construct):
    """Watch every RDS database and proxy of the stack's account and region for SSL-only that is
    off or not in effect, and report it (Security Hub, CloudWatch, SNS).

    topic: where changes and the alarm are published (default: a new topic, ``topic``).
    remediate: set the SSL parameter back in a group that turns it off; never reboots, never
        touches a database tagged ``rds-force-ssl:exempt`` or a group one uses (default: False).
    sweep: how often every database is checked, whatever the events (default: 1 hour).

    Use ``SslGuard.of(stack)`` to get the stack's one guard.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topic: sns.ITopic | None = None,
        remediate: bool = False,
        sweep: cdk.Duration | None = None,
    ) -> None:
        sweep = sweep or cdk.Duration.hours(1)
        _check(scope, construct_id, topic=topic, remediate=remediate, sweep=sweep)
        stack = tree.stack_of(scope)
        first = STATE.guards.get(tree.ref(stack))
        if first is not None:
            where = f"{scope.node.path}/{construct_id}" if scope.node.path else construct_id
            raise ValueError(
                f"{where}: {stack.node.path} already has an SslGuard, {tree.path_of(first)}; one "
                "guard a stack (it watches the whole account and region): use that one, or ask "
                "for the stack's guard with SslGuard.of(stack)"
            )
        super().__init__(scope, construct_id)
        STATE.guards[tree.ref(stack)] = self
        self.node.add_metadata(
            GUARD,
            f"every database and proxy of {_env_text(stack)}: EventBridge on CloudTrail, a "
            f"sweep every {_minutes(sweep):g} min"
            + (", remediation on" if remediate else ""),
        )
        self.remediate = remediate
        self.sweep_s = tree.seconds(sweep)
        self.given_topic = topic

        def rds_arn(resource: str) -> str:
            return tree.arn(stack, "rds", resource, "*")

        logs_group = logs.LogGroup(self, "Logs", retention=logs.RetentionDays.ONE_YEAR)
        self.table = dynamodb.CfnTable(
            self,
            "Marks",
            key_schema=[
                dynamodb.CfnTable.KeySchemaProperty(attribute_name=contract.KEY, key_type="HASH")
            ],
            attribute_definitions=[
                dynamodb.CfnTable.AttributeDefinitionProperty(
                    attribute_name=contract.KEY, attribute_type="S"
                )
            ],
            billing_mode="PAY_PER_REQUEST",
        )
        self.table.apply_removal_policy(cdk.RemovalPolicy.DESTROY)
        dead = sqs.Queue(
            self,
            "DeadLetters",
            enforce_ssl=True,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            retention_period=cdk.Duration.days(14),
        )
        # Lambda's advice for an SQS source: a visibility timeout of six times the function's.
        self.queue = sqs.Queue(
            self,
            "Queue",
            enforce_ssl=True,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            visibility_timeout=cdk.Duration.seconds(6 * int(TIMEOUT.to_seconds())),
            dead_letter_queue=sqs.DeadLetterQueue(queue=dead, max_receive_count=3),
        )
        self.topic: sns.ITopic = topic or sns.Topic(
            self, "Topic", display_name="rds-force-ssl guard", enforce_ssl=True
        )

        policy = iam.PolicyDocument()
        for action, resource in READS.items():
            policy.add_statements(
                iam.PolicyStatement(actions=[action], resources=[rds_arn(resource)])
            )
        if remediate:
            for action, resource in REMEDIATION.items():
                policy.add_statements(
                    iam.PolicyStatement(actions=[action], resources=[rds_arn(resource)])
                )
        policy.add_statements(
            iam.PolicyStatement(
                actions=["dynamodb:UpdateItem", "dynamodb:Scan"], resources=[self.table.attr_arn]
            ),
            iam.PolicyStatement(
                actions=[
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes",
                    "sqs:GetQueueUrl",
                    "sqs:SendMessage",
                ],
                resources=[self.queue.queue_arn],
            ),
            # Imports into the account's own product only (ASFF ProductArn ".../default").
            iam.PolicyStatement(
                actions=["securityhub:BatchImportFindings"],
                resources=[
                    f"arn:{stack.partition}:securityhub:{stack.region}:{stack.account}"
                    f":product/{stack.account}/default"
                ],
            ),
            # PutMetricData has no resource type; the namespace condition is its scope.
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": contract.NAMESPACE}},
            ),
            iam.PolicyStatement(actions=["sns:Publish"], resources=[self.topic.topic_arn]),
            iam.PolicyStatement(actions=["cloudtrail:DescribeTrails"], resources=["*"]),
            iam.PolicyStatement(
                actions=["cloudtrail:GetTrailStatus"],
                resources=[f"arn:{stack.partition}:cloudtrail:*:*:{TRAIL_RESOURCE}"],
            ),
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[logs_group.log_group_arn],
            ),
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            inline_policies={"RdsForceSslGuard": policy},
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            handler=f"{HANDLER_PACKAGE}.guard.handler",
            code=lambda_.Code.from_asset(str(SOURCE_ROOT), exclude=ASSET_EXCLUDE),
            role=self.role.without_policy_updates(),
            timeout=TIMEOUT,
            memory_size=256,
            description="rds-force-ssl guard: is SSL-only still in effect on every database?",
            log_group=logs_group,
            environment={
                contract.ENV_TABLE: self.table.ref,
                contract.ENV_QUEUE: self.queue.queue_url,
                contract.ENV_TOPIC: self.topic.topic_arn,
                contract.ENV_REMEDIATE: "true" if remediate else "false",
                contract.ENV_ACCOUNT: stack.account,
                contract.ENV_PARTITION: stack.partition,
            },
        )
        self.function.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=BATCH_SIZE,
                max_batching_window=BATCHING_WINDOW,
                max_concurrency=MAX_CONCURRENCY,
            )
        )
        target = targets.SqsQueue(self.queue)
        events.Rule(
            self,
            "ApiCalls",
            description="rds-force-ssl guard: RDS API calls that can turn SSL-only off",
            event_pattern=_pattern(cloudtrail_pattern()),
            targets=[target],
        )
        events.Rule(
            self,
            "RdsEvents",
            description="rds-force-ssl guard: RDS's own configuration and availability events",
            event_pattern=_pattern(rds_events_pattern()),
            targets=[target],
        )
        events.Rule(
            self,
            "Sweep",
            description="rds-force-ssl guard: check every database, whatever the events",
            schedule=events.Schedule.rate(sweep),
            targets=[
                targets.SqsQueue(
                    self.queue,
                    message=events.RuleTargetInput.from_object(
                        {contract.MESSAGE_KEY: contract.SWEEP}
                    ),
                )
            ],
        )
        # Sum over sweep periods: the sweep reports every database that is still not enforced.
        # It fires at an offset from the alarm's periods, so one period can hold no sweep (or
        # two): two evaluation periods with one datapoint to alarm keep it on while one is not
        # enforced, and it clears two periods after the last.
        self.alarm = cloudwatch.Alarm(
            self,
            "NotEnforced",
            alarm_description="rds-force-ssl guard: a database or proxy is not SSL-only "
            "(see the guard's Security Hub findings)",
            metric=cloudwatch.Metric(
                namespace=contract.NAMESPACE,
                metric_name=contract.NOT_ENFORCED,
                statistic="Sum",
                period=cdk.Duration.seconds(min(int(self.sweep_s), 86400)),
            ),
            threshold=1,
            evaluation_periods=2,
            datapoints_to_alarm=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        self.alarm.add_ok_action(cw_actions.SnsAction(self.topic))
        _acknowledge(self)
        self._warn_if_env_has_a_guard(stack)

    def _warn_if_env_has_a_guard(self, stack: cdk.Stack) -> None:
        """A second guard in one concrete account and region of the app (two Stages of one env,
        blue/green, each deployable alone) is kept, with a warning naming the first."""
        account, region = stack.account, stack.region
        if cdk.Token.is_unresolved(account) or cdk.Token.is_unresolved(region):
            return  # env-agnostic: where it lands is known at deploy only
        key = (tree.ref(tree.node_of(stack).root), account, region)
        others = STATE.guard_envs.setdefault(key, [])
        if others:
            cdk.Annotations.of(self).add_warning_v2(
                TWICE_WARNING,
                f"{tree.path_of(self)}: {others[0]} is also an SslGuard of account {account} "
                f"region {region}; each watches the whole account and region, so deployed "
                "together they double the checks, imports and SNS messages (the findings stay "
                "one per database). Deploy one guard per account and region, or acknowledge "
                "this warning where each is deployed alone (e.g. blue/green Stages).",
            )
        others.append(tree.path_of(self))

    @classmethod
    def of(
        cls,
        scope: IConstruct,
        *,
        topic: sns.ITopic | None = None,
        remediate: bool = False,
        sweep: cdk.Duration | None = None,
    ) -> SslGuard:
        """The guard of ``scope``'s stack (whatever its construct ID), made on first use; asking
        again with other options is an error (one guard a stack)."""
        if not isinstance(scope, Construct) or not any(
            isinstance(s, cdk.Stack) for s in tree.node_of(scope).scopes
        ):
            where = tree.path_of(scope) or "app" if isinstance(scope, Construct) else repr(scope)
            raise ValueError(
                f"SslGuard.of({where}): the guard "
                "lives in a Stack, and this scope is not in one; pass a Stack (or a construct "
                "in one): SslGuard.of(stack)"
            )
        stack = tree.stack_of(scope)
        existing = STATE.guards.get(tree.ref(stack))
        if existing is None:
            taken = stack.node.try_find_child(GUARD_ID)
            if taken is not None:
                raise ValueError(
                    f"{stack.node.path}/{GUARD_ID} is not an SslGuard; rename that construct"
                )
            return cls(stack, GUARD_ID, topic=topic, remediate=remediate, sweep=sweep)
        wanted_s = tree.seconds(sweep) if sweep is not None else 3600
        if (
            existing.remediate != remediate
            or existing.sweep_s != wanted_s
            or (topic is not None and topic is not existing.given_topic)
        ):
            had = _options(
                existing.remediate, existing.sweep_s, existing.given_topic, "its own topic"
            )
            asked = _options(remediate, wanted_s, topic, "no topic")
            raise ValueError(
                f"{stack.node.path}: its SslGuard {tree.path_of(existing)} already has other "
                f"options: {had}, asked now for {asked}; one guard a stack: ask for it with the "
                "same options (or pass them only where it is first made)"
            )
        return existing


def _options(remediate: bool, sweep_s: float, topic: object, none: str) -> str:
    if topic is None:
        shown = none
    elif isinstance(topic, Construct):
        shown = f"topic={tree.path_of(topic)}"
    else:
        shown = f"topic={topic!r}"
    return f"remediate={remediate}, sweep={sweep_s:g}s, {shown}"


def _pattern(raw: dict[str, Any]) -> events.EventPattern:
    return events.EventPattern(
        source=raw["source"], detail_type=raw["detail-type"], detail=raw["detail"]
    )


def _check(
    scope: Construct,
    construct_id: str,
    *,
    topic: object,
    remediate: object,
    sweep: cdk.Duration,
) -> None:
    where = f"{scope.node.path}/{construct_id}" if scope.node.path else construct_id
    problems = []
    if not any(isinstance(s, cdk.Stack) for s in tree.node_of(scope).scopes):
        problems.append(
            f"{where}: not in a Stack (the guard's resources need one); create it in a Stack, "
            "or use SslGuard.of(stack)"
        )
    if not isinstance(remediate, bool):
        problems.append(f"{where}: remediate={remediate!r}; use True or False")
    if topic is not None and not hasattr(topic, "topic_arn"):
        problems.append(f"{where}: topic must be an sns.ITopic (sns.Topic or Topic.from_topic_arn)")
    if not isinstance(sweep, cdk.Duration):
        problems.append(f"{where}: sweep must be a cdk.Duration, e.g. Duration.hours(1)")
    else:
        seconds = tree.seconds(sweep)
        if not MIN_SWEEP_S <= seconds <= MAX_SWEEP_S or seconds % 60:
            # Whole minutes: EventBridge's rate() and the alarm's period both count in them.
            problems.append(
                f"{where}: sweep is {seconds:g}s; use whole minutes between "
                "Duration.minutes(5) and Duration.hours(24)"
            )
    if problems:
        raise ValueError("SslGuard cannot be added:\n- " + "\n- ".join(problems))


def _acknowledge(guard: SslGuard) -> None:
    """cdk-nag AwsSolutions findings that are the guard's design, with why."""

    def ack(rule: str, reason: str) -> cdk.Acknowledgment:
        return cdk.Acknowledgment(id=f"AwsSolutions::AwsSolutions-{rule}", reason=reason)

    wildcard = (
        "The guard watches every database of the account and region, including those created "
        "by hand (which no stack names), so it reads RDS resources of one type by '*' within "
        "this account and region only; describe and read actions, nothing that changes them."
    )
    reasons = [
        ack(
            f"IAM5[Resource::arn:<AWS::Partition>:rds:<AWS::Region>:<AWS::AccountId>:{kind}:*]",
            wildcard
            + (
                " With remediate=True it may also set a group's SSL parameter back "
                "(ModifyDB(Cluster)ParameterGroup); it never reboots."
                if guard.remediate and kind in REMEDIATION.values()
                else ""
            ),
        )
        for kind in sorted(set(READS.values()))
    ]
    reasons.append(
        ack(
            "IAM5[Resource::*]",
            "cloudwatch:PutMetricData has no resource type; the statement is limited to the "
            "guard's namespace by the cloudwatch:namespace condition. cloudtrail:DescribeTrails "
            "has no resource type either; it only lists trails.",
        )
    )
    reasons.append(
        ack(
            f"IAM5[Resource::arn:<AWS::Partition>:cloudtrail:*:*:{TRAIL_RESOURCE}]",
            "cloudtrail:GetTrailStatus (read-only) on the trails that cover the region: a "
            "multi-region trail lives in its home region, an organization trail in the "
            "management account, neither known at synth.",
        )
    )
    cdk.Validations.of(guard.role).acknowledge(*reasons)
    cdk.Validations.of(guard.table).acknowledge(
        ack(
            "DDB3",
            "The table only holds when each database was last checked and its last status; the "
            "next sweep rebuilds it, so there is nothing to recover to a point in time.",
        )
    )
