"""A baseline on the app does not reach a Stage (CDK's Aspects stop there): an app whose stacks
are all in Stages used to pass with nothing judged and nothing said."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds

from rds_force_ssl import SslBaseline
from tests.conftest import PG16, isolated_vpc


def _staged_app() -> tuple[cdk.App, cdk.Stage]:
    app = cdk.App(builtin_cloud_formation_validation=False)
    prod = cdk.Stage(app, "Prod", env=cdk.Environment(region="us-east-1"))
    stack = cdk.Stack(prod, "Data")
    rds.DatabaseInstance(
        stack,
        "Db",
        engine=PG16,
        vpc=isolated_vpc(stack),
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
    )
    cdk.Stage(app, "Empty")  # a Stage without databases says nothing
    return app, prod


def test_a_baseline_on_the_app_names_the_stage_it_does_not_reach() -> None:
    app, _ = _staged_app()
    baseline = SslBaseline.apply(app)
    app.synth()
    assert baseline.verdicts == []
    assert baseline.unreached == ["Prod"]
    assert baseline.summary() == (
        "rds-force-ssl enforce: 0 COMPLIANT, 0 NON_COMPLIANT, 0 NOT_APPLICABLE, 0 EXEMPT; not "
        "reached (a Stage of its own, with no enforce baseline): Prod (apply a baseline to "
        "each Stage too: CDK's Aspects stop at a Stage)"
    )


def test_a_stage_with_its_own_baseline_is_not_named() -> None:
    app, prod = _staged_app()
    on_app = SslBaseline.apply(app)
    on_prod = SslBaseline.apply(prod)
    app.synth()
    assert on_app.unreached == []
    assert [v.compliance for v in on_prod.verdicts] == ["COMPLIANT"]
    assert "not reached" not in on_app.summary()
