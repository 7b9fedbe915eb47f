"""The ways to make N PostgreSQL instances SSL-only that the benchmarks compare.

(a) ``plain``: CDK alone, ``DatabaseInstance(parameters={"rds.force_ssl": "1"})``. It never
    reboots, so a group associated with a running instance stays ``pending-reboot``.
(b) ``awscr``: the common blog pattern, (a) plus one ``AwsCustomResource`` per instance that calls
    ``RDS.rebootDBInstance`` on create and on update. Its physical ID carries a hash of the
    group's parameters, so editing the group sends an Update (and so a reboot), as the pattern
    is usually written.
(c) ``forcessl``: this library, ``ForceSsl(database=db)`` on an instance with no group.
(d) ``window``: (c) with ``reboot=Reboot.MAINTENANCE_WINDOW``, which adds the stack's schedule
    (footprint only: its synth cost is (c)'s).
(e) ``baseline``: this library's Aspect, ``SslBaseline.apply(app)`` (enforce mode, no options)
    over an app whose instances have no group; it adds the ForceSsl of (c) to each at synth.

Every stack is a VPC with isolated subnets in 2 AZs (no NAT gateway) and N ``t4g.micro``
PostgreSQL 16.9 instances in it. The App gets the feature flags of this project's ``cdk.json``
(what ``cdk init`` gives a new project), so a stack looks as it would under ``cdk synth``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "constructs"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

VARIANTS = ("plain", "awscr", "forcessl", "baseline")
WINDOW = "window"
LABELS = {
    "plain": "(a) plain CDK",
    "awscr": "(b) AwsCustomResource",
    "forcessl": "(c) ForceSsl",
    WINDOW: "(d) ForceSsl, MAINTENANCE_WINDOW",
    "baseline": "(e) SslBaseline",
}
FORCE_SSL = {"rds.force_ssl": "1"}
# CloudFormation's quota is 500 resources a stack. CDK refuses to synthesize more unless this
# context key says otherwise (0 turns its check off), and CDK's built-in CloudFormation
# validation reports it as finding F0007, which an acknowledgment on the stack removes.
RESOURCE_LIMIT_CONTEXT = "@aws-cdk/core:stackResourceLimit"
RESOURCE_LIMIT_FINDING = "CloudFormation-Validate::F0007"


def feature_flags() -> dict[str, Any]:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    return dict(context)


def import_for(variant: str) -> None:
    """Import what ``variant``'s app imports (``build_app`` does too; this is to time it apart)."""
    import aws_cdk  # noqa: F401
    from aws_cdk import aws_ec2, aws_rds  # noqa: F401

    if variant == "awscr":
        from aws_cdk import custom_resources  # noqa: F401
    elif variant in ("forcessl", WINDOW):
        from rds_force_ssl import ForceSsl  # noqa: F401
    elif variant == "baseline":
        from rds_force_ssl import SslBaseline  # noqa: F401


def build_app(
    variant: str, n: int, *, validation: bool, outdir: str, lift_resource_limit: bool = False
) -> Any:
    """An App with one stack: the VPC and ``n`` instances protected the ``variant`` way.

    lift_resource_limit: let the stack pass 500 resources (a stack that could not be deployed,
        to measure synth at large N): CDK's count is turned off and the built-in validation's
        finding for it acknowledged; everything else is validated as usual (default: False).
    """
    # Each variant imports only what it uses, as its own app would: the library's imports
    # (aws_lambda, custom_resources, ...) are part of what it costs.
    import aws_cdk as cdk
    from aws_cdk import aws_ec2 as ec2
    from aws_cdk import aws_rds as rds

    if variant not in (*VARIANTS, WINDOW):
        raise ValueError(f"unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
    context = feature_flags()
    if lift_resource_limit:
        context[RESOURCE_LIMIT_CONTEXT] = 0
    app = cdk.App(outdir=outdir, context=context, builtin_cloud_formation_validation=validation)
    stack = cdk.Stack(app, "Bench", env=cdk.Environment(account="123456789012", region="us-east-1"))
    if lift_resource_limit:
        cdk.Validations.of(stack).acknowledge(
            cdk.Acknowledgment(
                id=RESOURCE_LIMIT_FINDING,
                reason="benchmark: a stack past 500 resources on purpose, to time synth at N=100",
            )
        )
    vpc = ec2.Vpc(
        stack,
        "Vpc",
        max_azs=2,
        nat_gateways=0,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="db", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        ],
    )
    engine = rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16_9)
    for i in range(n):
        db = rds.DatabaseInstance(
            stack,
            f"Db{i}",
            engine=engine,
            instance_type=ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MICRO),
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            allocated_storage=20,
            storage_encrypted=True,
            parameters=FORCE_SSL if variant in ("plain", "awscr") else None,
        )
        if variant == "awscr":
            from aws_cdk import custom_resources as cr

            version = hashlib.sha256(json.dumps(FORCE_SSL, sort_keys=True).encode()).hexdigest()
            call = cr.AwsSdkCall(
                service="RDS",
                action="rebootDBInstance",
                parameters={"DBInstanceIdentifier": db.instance_identifier},
                physical_resource_id=cr.PhysicalResourceId.of(f"reboot-{i}-{version[:12]}"),
            )
            reboot = cr.AwsCustomResource(
                stack,
                f"Db{i}Reboot",
                on_create=call,
                on_update=call,
                policy=cr.AwsCustomResourcePolicy.from_sdk_calls(resources=[db.instance_arn]),
                install_latest_aws_sdk=False,
            )
            reboot.node.add_dependency(db)
        elif variant == "forcessl":
            from rds_force_ssl import ForceSsl

            ForceSsl(stack, f"Db{i}Ssl", database=db)
        elif variant == WINDOW:
            from rds_force_ssl import ForceSsl, Reboot

            ForceSsl(stack, f"Db{i}Ssl", database=db, reboot=Reboot.MAINTENANCE_WINDOW)
    if variant == "baseline":
        from rds_force_ssl import SslBaseline

        SslBaseline.apply(app)
    return app
