"""ForceSsl in another stack than its database: what a new user tried first.

Whatever stack the construct sits in, what it deploys (the group, the reboot resource and the
stack's reconciler) is in the database's stack, so neither layout makes a dependency cycle,
one deploy both changes the group and puts it in effect, and the report finds it.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from aws_cdk.assertions import Template

from rds_force_ssl import ForceSsl, ForceSslError, report
from rds_force_ssl.facts.contract import RESOURCE_TYPE
from tests.conftest import PG16, isolated_vpc

ENV = cdk.Environment(region="us-east-1")


def _db(stack: cdk.Stack, vpc: ec2.IVpc) -> rds.DatabaseInstance:
    return rds.DatabaseInstance(
        stack,
        "Db",
        engine=PG16,
        vpc=vpc,
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
    )


@pytest.mark.parametrize("where", ["network", "guard"])
def test_a_force_ssl_in_another_stack_deploys_with_the_database(where: str, tmp_path: Path) -> None:
    """network: the ForceSsl sits in the stack whose VPC the database uses (which used to end
    in a jsii DependencyCycle); guard: in a stack of its own that comes after the database's."""
    app = cdk.App(builtin_cloud_formation_validation=False, outdir=str(tmp_path))
    network = cdk.Stack(app, "Network", env=ENV)
    vpc = isolated_vpc(network)
    data = cdk.Stack(app, "Data", env=ENV)
    db = _db(data, vpc)
    owner = network if where == "network" else cdk.Stack(app, "Guard", env=ENV)
    ForceSsl(owner, "DbSsl", database=db)
    assembly = Path(app.synth().directory)

    Template.from_stack(data).resource_count_is(RESOURCE_TYPE, 1)
    assert Template.from_stack(owner).find_resources(RESOURCE_TYPE) == {}
    assert Template.from_stack(owner).find_resources("AWS::Lambda::Function") == {}
    rows = report.protected(assembly)
    assert [(r["database"], r["protected_by"], r["enforced"]) for r in rows] == [
        ("Data/Db", f"{owner.stack_name}/DbSsl", True)
    ]
    assert report.main([str(assembly)]) == 0


def test_a_force_ssl_in_another_stage_is_refused_with_the_fix() -> None:
    app = cdk.App(builtin_cloud_formation_validation=False)
    prod = cdk.Stage(app, "Prod", env=ENV)
    data = cdk.Stack(prod, "Data")
    db = _db(data, isolated_vpc(data))
    elsewhere = cdk.Stack(app, "Ops", env=ENV)
    with pytest.raises(ForceSslError, match=r"Ops/DbSsl: the database Prod/Data/Db is in another"):
        ForceSsl(elsewhere, "DbSsl", database=db)
    assert elsewhere.node.try_find_child("DbSsl") is None
