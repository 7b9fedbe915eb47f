"""The reboot reconciler's wiring: one Provider per stack, one custom resource per database."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct, IConstruct

from rds_force_ssl import tree
from rds_force_ssl.facts import contract
from rds_force_ssl.facts.policy import Reboot
from rds_force_ssl.handlers import maintenance, memory
from rds_force_ssl.state import STATE

PROVIDER_ID = "RdsForceSslRebootProvider"
# The Lambda asset is the source root (constructs/, or site-packages once installed) with only
# the package's own __init__.py (import-safe without aws-cdk-lib: it loads CDK names lazily),
# handlers/*.py and facts/*.py in it. Lambda runs "rds_force_ssl.handlers.reboot.on_event", and
# the handlers import the facts relatively ("from ..facts import engines"), the same way whether
# Lambda runs them or the library imports them. A folder the patterns leave out is not walked.
SOURCE_ROOT = Path(__file__).parent.parent
ASSET_EXCLUDE = [
    "*",
    "!rds_force_ssl",
    "!rds_force_ssl/__init__.py",
    "!rds_force_ssl/handlers",
    "!rds_force_ssl/handlers/*.py",
    "!rds_force_ssl/facts",
    "!rds_force_ssl/facts/*.py",
]
HANDLER_PACKAGE = "rds_force_ssl.handlers"
DEFAULT_QUERY_INTERVAL = cdk.Duration.seconds(10)
DEFAULT_TOTAL_TIMEOUT = cdk.Duration.minutes(50)
# CloudFormation gives a custom resource one hour at most.
MAX_TOTAL_TIMEOUT_S = 3600
MIN_QUERY_INTERVAL_S = 5
# The maintenance-window schedule: one EventBridge rule per stack, every few minutes.
WINDOW_RULE_ID = "MaintenanceWindow"
WINDOW_SCHEDULE = f"cron(0/{maintenance.RATE_MINUTES} * * * ? *)"
# EventBridge limits a target's Input to 8,192 characters (PutTargets API reference, Target).
WINDOW_INPUT_LIMIT = 8192
RDS_IDENTIFIER_MAX = 63


def shared_timing_problems(
    scope: Construct, path: str, query_interval: cdk.Duration, total_timeout: cdk.Duration
) -> list[str]:
    """Every ForceSsl in a stack shares one provider, so they must agree on its timing."""
    stack = tree.stack_of(scope)
    existing = STATE.providers.get(tree.ref(stack))
    if existing is None:
        return []
    wanted = (tree.seconds(query_interval), tree.seconds(total_timeout))
    if wanted == (existing.query_interval_s, existing.total_timeout_s):
        return []
    return [
        f"{path}: query_interval/total_timeout {wanted[0]}s/{wanted[1]}s differ from "
        f"{existing.query_interval_s}s/{existing.total_timeout_s}s already used in stack "
        f"{stack.node.path}; the stack shares one reboot provider, so give every ForceSsl in "
        "it the same values (and SslBaseline.apply(..., query_interval=..., "
        "total_timeout=...) too, where the baseline adds them)"
    ]


def timing_problems(
    path: str, query_interval: cdk.Duration, total_timeout: cdk.Duration
) -> list[str]:
    interval = tree.seconds(query_interval)
    total = tree.seconds(total_timeout)
    problems = []
    if interval < MIN_QUERY_INTERVAL_S:
        problems.append(
            f"{path}: query_interval is {interval}s; use at least {MIN_QUERY_INTERVAL_S}s"
        )
    if total > MAX_TOTAL_TIMEOUT_S:
        problems.append(
            f"{path}: total_timeout is {total}s, over CloudFormation's one-hour limit for a custom "
            "resource; use at most Duration.minutes(60)"
        )
    if interval > 0 and total % interval:
        problems.append(
            f"{path}: total_timeout ({total}s) is not a multiple of query_interval ({interval}s); "
            "the provider would round it; pick a multiple"
        )
    return problems


class RebootProvider(Construct):
    """The stack's shared reconciler: two small Lambdas behind a CDK Provider.

    Each protected database adds its own ARNs to the Lambdas' roles, so they can describe and
    reboot only what this stack protects.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        query_interval: cdk.Duration,
        total_timeout: cdk.Duration,
    ) -> None:
        super().__init__(scope, construct_id)
        self.query_interval_s = tree.seconds(query_interval)
        self.total_timeout_s = tree.seconds(total_timeout)
        # One log group for all five Lambdas rather than one each: a deploy's decisions read
        # together, and every group is a resource in every stack that uses ForceSsl.
        reconciler_logs = logs.LogGroup(self, "Logs", retention=logs.RetentionDays.ONE_YEAR)
        code = lambda_.Code.from_asset(str(SOURCE_ROOT), exclude=ASSET_EXCLUDE)

        write_logs = iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[reconciler_logs.log_group_arn],
        )

        def role(name: str, policy: iam.PolicyDocument) -> iam.Role:
            # Instead of the AWSLambdaBasicExecutionRole managed policy (logs:* on every log
            # group): write access to this one log group. Every role here carries its whole
            # policy inline, so each protected database adds statements, not resources.
            policy.add_statements(write_logs)
            return iam.Role(
                self,
                name,
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                inline_policies={"RdsForceSsl": policy},
            )

        self._read = iam.PolicyDocument()  # both handlers
        self._reboot = iam.PolicyDocument()  # the poller only
        # The poller reads each database's restarts from its RDS events. DescribeEvents has no
        # resource-level permission (Service Authorization Reference, Amazon RDS: no resource
        # type), so it can only be granted on "*". It reads event messages, nothing else.
        self._reboot.add_statements(
            iam.PolicyStatement(actions=["rds:DescribeEvents"], resources=["*"])
        )
        # One statement per role and set of actions, which each database adds its ARNs to
        # (what minimizePolicies merges them into anyway): a round trip per new ARN, not three
        # per statement.
        self._statements: dict[tuple[bool, tuple[str, ...]], tuple[iam.PolicyStatement, set[str]]]
        self._statements = {}

        def handler(
            name: str, entry: str, description: str, policy: iam.PolicyDocument
        ) -> lambda_.Function:
            return lambda_.Function(
                self,
                name,
                runtime=lambda_.Runtime.PYTHON_3_14,
                architecture=lambda_.Architecture.ARM_64,
                handler=f"{HANDLER_PACKAGE}.{entry}",
                code=code,
                role=role(f"{name}Role", policy),
                timeout=cdk.Duration.seconds(60),
                memory_size=128,
                description=description,
                log_group=reconciler_logs,
            )

        self.on_event_fn = handler(
            "OnEvent", "reboot.on_event", "rds-force-ssl: record the database state", self._read
        )
        # The poller: the Provider's is-complete, and the maintenance-window schedule's target
        # (one function and one role for both: the same databases, the same permissions).
        self.is_complete_fn = handler(
            "IsComplete",
            "maintenance.poller",
            "rds-force-ssl: reboot what is pending-reboot, then wait",
            self._reboot,
        )
        # The poller's memory of the reboots it asked for (handlers/memory.py says why a table
        # and not a tag): one item per node, kept a day. It holds nothing to restore, so it
        # goes with the stack.
        self.memory = dynamodb.CfnTable(
            self,
            "Memory",
            key_schema=[
                dynamodb.CfnTable.KeySchemaProperty(attribute_name=memory.KEY, key_type="HASH")
            ],
            attribute_definitions=[
                dynamodb.CfnTable.AttributeDefinitionProperty(
                    attribute_name=memory.KEY, attribute_type="S"
                )
            ],
            billing_mode="PAY_PER_REQUEST",
            time_to_live_specification=dynamodb.CfnTable.TimeToLiveSpecificationProperty(
                attribute_name=memory.EXPIRES, enabled=True
            ),
        )
        self.memory.apply_removal_policy(cdk.RemovalPolicy.DESTROY)
        self._reboot.add_statements(
            iam.PolicyStatement(
                actions=["dynamodb:BatchGetItem", "dynamodb:PutItem"],
                resources=[self.memory.attr_arn],
            )
        )
        self.is_complete_fn.add_environment(memory.ENV_TABLE, self.memory.ref)
        # Two roles for the framework's three Lambdas: is-complete and on-timeout do the same
        # job. (One role for all three makes a dependency cycle with the state machine.) What the
        # Provider grants them (framework_grants) goes into their inline policies instead of an
        # AWS::IAM::Policy each: two resources fewer in every stack.
        framework_on_event = iam.PolicyDocument()
        framework_complete = iam.PolicyDocument()
        self.provider = cr.Provider(
            self,
            "Provider",
            framework_on_event_role=role(
                "FrameworkOnEventRole", framework_on_event
            ).without_policy_updates(),
            framework_complete_and_timeout_role=role(
                "FrameworkCompleteRole", framework_complete
            ).without_policy_updates(),
            on_event_handler=self.on_event_fn,
            is_complete_handler=self.is_complete_fn,
            query_interval=query_interval,
            total_timeout=total_timeout,
            log_group=reconciler_logs,
        )
        invoke, start = framework_grants(self)
        framework_on_event.add_statements(*invoke, start)
        framework_complete.add_statements(*invoke)
        _acknowledge_framework_findings(self)
        self.service_token: str = self.provider.service_token
        self._window: WindowInput | None = None

    @classmethod
    def of(
        cls, scope: Construct, *, query_interval: cdk.Duration, total_timeout: cdk.Duration
    ) -> RebootProvider:
        """The stack's provider, made on first use (``shared_timing_problems`` first)."""
        stack = tree.stack_of(scope)
        existing = STATE.providers.get(tree.ref(stack))
        if existing is None:
            existing = STATE.providers[tree.ref(stack)] = cls(
                stack, PROVIDER_ID, query_interval=query_interval, total_timeout=total_timeout
            )
        return existing

    def grant(
        self,
        actions: list[str],
        resources: list[str],
        *,
        reboot: bool,
        conditions: Mapping[str, Any] | None = None,
    ) -> None:
        """Allow ``actions`` on ``resources`` for one database: to both handlers' roles
        (``reboot=False``: reads), or to the poller's only."""
        docs = [self._reboot] if reboot else [self._read, self._reboot]
        if conditions is not None:  # particular to one database: a statement of its own
            statement = iam.PolicyStatement(
                actions=actions, resources=resources, conditions=conditions
            )
            for doc in docs:
                doc.add_statements(statement)
            return
        key = (reboot, tuple(actions))
        if key not in self._statements:
            statement = iam.PolicyStatement(actions=actions, resources=resources)
            for doc in docs:
                doc.add_statements(statement)
            self._statements[key] = (statement, set(resources))
            return
        statement, present = self._statements[key]
        new = [r for r in resources if r not in present]
        if new:
            statement.add_resources(*new)
            present.update(new)

    def schedule(
        self,
        *,
        identifier: str,
        owed_since: str,
        members: list[str],
        cluster: bool,
        autoscaled_readers: bool,
        force_failover: bool,
    ) -> None:
        """Add a MAINTENANCE_WINDOW database to the stack's schedule, made on first use: an
        EventBridge rule that runs the poller every few minutes with the databases as its input,
        and the permission for EventBridge to invoke it (``window_problems`` first)."""
        if self._window is None:
            # Imported here: only a stack with a MAINTENANCE_WINDOW database pays for the module
            # (about 10 ms of every synth otherwise).
            from aws_cdk import aws_events as events

            self._window = WindowInput()
            rule = events.CfnRule(
                self,
                WINDOW_RULE_ID,
                description="rds-force-ssl: reboot in each database's maintenance window what "
                "a deploy under Reboot.MAINTENANCE_WINDOW found owed",
                schedule_expression=WINDOW_SCHEDULE,
                state="ENABLED",
                targets=[
                    events.CfnRule.TargetProperty(
                        arn=self.is_complete_fn.function_arn,
                        id="Reconciler",
                        input=cdk.Token.as_string(self._window),
                    )
                ],
            )
            lambda_.CfnPermission(
                self,
                f"{WINDOW_RULE_ID}Invoke",
                action="lambda:InvokeFunction",
                function_name=self.is_complete_fn.function_arn,
                principal="events.amazonaws.com",
                source_arn=rule.attr_arn,
            )
        flags = (
            (maintenance.FLAG_CLUSTER if cluster else "")
            + (maintenance.FLAG_AUTOSCALED_READERS if autoscaled_readers else "")
            + (maintenance.FLAG_FAILOVER if force_failover else "")
        )
        self._window.entries.append((identifier, owed_since, members, flags))


def window_problems(scope: Construct, path: str, *, members: int) -> list[str]:
    """Whether one more MAINTENANCE_WINDOW database (with ``members`` Aurora members) still
    fits its stack's schedule input at its longest (63-character identifiers)."""
    stack = tree.stack_of(scope)
    existing = STATE.providers.get(tree.ref(stack))
    window = existing._window if existing is not None else None
    entries = window.entries if window is not None else []
    need = WindowInput.longest([len(m) for _, _, m, _ in entries] + [members])
    if need <= WINDOW_INPUT_LIMIT:
        return []
    return [
        f"{path}: stack {tree.path_of(stack)} would have {len(entries) + 1} databases under "
        "Reboot.MAINTENANCE_WINDOW; their schedule's input could reach "
        f"{need:,} characters with 63-character identifiers, over EventBridge's "
        f"{WINDOW_INPUT_LIMIT:,} for a rule's target; put some of them in another stack, "
        "or give them another reboot policy"
    ]


def framework_grants(
    provider: RebootProvider,
) -> tuple[list[iam.PolicyStatement], iam.PolicyStatement]:
    """What ``cr.Provider`` grants its framework roles (provider.ts: ``grantInvoke`` of both
    handlers on each framework function; ``grantStartExecution`` of the waiter on on-event),
    for the roles' inline policies: lambda:InvokeFunction and lambda:GetFunction on the two
    handlers, and states:StartExecution on the waiter. A test compares it with a plain Provider.
    """
    invoke = []
    for fn in (provider.on_event_fn, provider.is_complete_fn):
        invoke.append(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[fn.function_arn, f"{fn.function_arn}:*"],
            )
        )
        invoke.append(
            iam.PolicyStatement(actions=["lambda:GetFunction"], resources=[fn.function_arn])
        )
    waiter = provider.provider.node.find_child("waiter-state-machine").node.find_child("Resource")
    assert isinstance(waiter, cdk.CfnResource)
    start = iam.PolicyStatement(actions=["states:StartExecution"], resources=[waiter.ref])
    return invoke, start


@jsii.implements(cdk.IResolvable)
class WindowInput(tree.Resolvable):
    """The schedule's input, as maintenance.entries reads it, written when the template is:
    every MAINTENANCE_WINDOW database of the stack, whichever ForceSsl added it last.

    Each database is [identifier, RebootOwedSince, members, flags]: the identifier and members
    are Refs and RebootOwedSince a GetAtt of the database's reboot resource, so the rule is
    updated after every deploy that changes what that resource found."""

    HEAD = (
        json.dumps({maintenance.INPUT_KEY: maintenance.INPUT_KIND}, separators=(",", ":"))[:-1]
        + f',"{maintenance.INPUT_DATABASES}":['
    )
    TAIL = "]}"

    def __init__(self) -> None:
        self.entries: list[tuple[str, str, list[str], str]] = []

    @classmethod
    def longest(cls, members: list[int]) -> int:
        """The input's length at most, for databases with these numbers of members: each
        identifier at RDS's 63 characters, RebootOwedSince at 10 digits, all three flags."""
        entry = len('["","","",""],') + RDS_IDENTIFIER_MAX + 10 + 3
        return (
            len(cls.HEAD)
            + len(cls.TAIL)
            + sum(entry + n * (RDS_IDENTIFIER_MAX + 1) for n in members)
        )

    def resolve(self, context: cdk.IResolveContext) -> Any:
        parts: list[Any] = [self.HEAD]
        for i, (ident, since, members, flags) in enumerate(self.entries):
            parts += ["," if i else "", '["', ident, '","', since, '","']
            for j, member in enumerate(members):
                parts += ["," if j else "", member]
            parts.append(f'","{flags}"]')
        parts.append(self.TAIL)
        joined: list[Any] = []
        for part in parts:
            value = context.resolve(part) if tree.unresolved(part) else part
            if isinstance(value, str) and joined and isinstance(joined[-1], str):
                joined[-1] += value
            elif value != "":
                joined.append(value)
        return {"Fn::Join": ["", joined]}


def reboot_resource(
    scope: Construct,
    construct_id: str,
    *,
    provider: RebootProvider,
    kind: str,
    identifier: str,
    parameter_group_name: str,
    parameters: object,
    enforced: dict[str, str],
    members: list[str],
    autoscaled_readers: bool,
    force_failover: bool,
    reboot: Reboot,
    reboot_for_other_parameters: bool,
) -> cdk.CustomResource:
    # The properties carry the whole parameter set (as resolved when the template is written),
    # so any change to the group, even one made after ForceSsl, sends an Update; and the part of
    # it ForceSsl owns, which the reconciler holds RDS to before it says done.
    properties: dict[str, object] = {
        contract.PROP_KIND: kind,
        contract.PROP_IDENTIFIER: identifier,
        contract.PROP_PARAMETER_GROUP: parameter_group_name,
        contract.PROP_PARAMETERS: parameters,
        contract.PROP_ENFORCED: dict(enforced),
        contract.PROP_FORCE_FAILOVER: "true" if force_failover else "false",
    }
    if members:
        properties[contract.PROP_MEMBERS] = members
    if autoscaled_readers:
        properties[contract.PROP_AUTOSCALED_READERS] = "true"
    # Written only when not the default, so that a stack from before the policy existed sees
    # no change (and no Update) to resources that keep it.
    if reboot is not Reboot.IMMEDIATE:
        properties[contract.PROP_REBOOT] = reboot.value
    if reboot_for_other_parameters:
        properties[contract.PROP_OTHER_PARAMETERS] = "true"
    return cdk.CustomResource(
        scope,
        construct_id,
        service_token=provider.service_token,
        resource_type=contract.RESOURCE_TYPE,
        properties={
            **properties,
            # Fail with the last state seen two polls before the provider's bare timeout.
            contract.PROP_GIVE_UP_AFTER: str(
                int(
                    max(
                        provider.query_interval_s,
                        provider.total_timeout_s - 2 * provider.query_interval_s,
                    )
                )
            ),
        },
    )


def _acknowledge_framework_findings(provider: RebootProvider) -> None:
    """cdk-nag AwsSolutions findings on the CDK Provider framework's own resources, with why.

    The namespaced form keeps each reason in the synthesized validation report.
    """
    stack = cdk.Stack.of(provider)
    framework = provider.provider
    machine_role = framework.node.find_child("waiter-state-machine").node.find_child("Role")
    invoke = "AwsSolutions::AwsSolutions-IAM5[Resource::<{}.Arn>:*]"
    reason_invoke = (
        "The CDK Provider framework grants lambda:InvokeFunction on one named handler and its "
        "versions (ARN:*); no other function is reachable."
    )
    handlers = [provider.on_event_fn, provider.is_complete_fn]
    for scope in (
        provider.node.find_child("FrameworkOnEventRole"),
        provider.node.find_child("FrameworkCompleteRole"),
    ):
        cdk.Validations.of(scope).acknowledge(
            *[
                cdk.Acknowledgment(id=invoke.format(_logical_id(stack, fn)), reason=reason_invoke)
                for fn in handlers
            ]
        )
    framework_fns = [
        framework.node.find_child(name) for name in ("framework-isComplete", "framework-onTimeout")
    ]
    cdk.Validations.of(machine_role).acknowledge(
        *[
            cdk.Acknowledgment(id=invoke.format(_logical_id(stack, fn)), reason=reason_invoke)
            for fn in framework_fns
        ]
    )
    cdk.Validations.of(provider.node.find_child("IsCompleteRole")).acknowledge(
        cdk.Acknowledgment(
            id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
            reason="rds:DescribeEvents has no resource-level permission (Service Authorization "
            "Reference, Amazon RDS), so it can only be granted on *. It is the only action on *; "
            "it reads RDS event messages, which the reconciler uses to tell a restart it or "
            "another request already made from one still owed.",
        )
    )
    cdk.Validations.of(provider.memory).acknowledge(
        cdk.Acknowledgment(
            id="AwsSolutions::AwsSolutions-DDB3",
            reason="The table only remembers, for a day, when the reconciler last asked RDS to "
            "reboot each database; there is nothing in it to recover to a point in time.",
        )
    )
    cdk.Validations.of(framework.node.find_child("waiter-state-machine")).acknowledge(
        cdk.Acknowledgment(
            id="AwsSolutions::AwsSolutions-SF1",
            reason="The waiter only re-invokes the is-complete handler; every decision is logged "
            "by the handlers, and execution data would carry the CloudFormation ResponseURL.",
        ),
        cdk.Acknowledgment(
            id="AwsSolutions::AwsSolutions-SF2",
            reason="X-Ray traces of a polling loop add cost and no insight; the handler log "
            "records each state seen and each action taken.",
        ),
    )


def _logical_id(stack: cdk.Stack, fn: IConstruct) -> str:
    cfn = fn.node.default_child
    assert isinstance(cfn, cdk.CfnElement)
    return stack.get_logical_id(cfn)
