"""Integration test in the CDK convention: a PostgreSQL instance with ForceSsl, and RDS asked
afterwards whether the setting is in effect.

integ-runner runs this app (see the Makefile's integ targets). Without an account, as in CI, it
only compares the synthesized templates with the committed snapshot; with one, it deploys both
stacks, runs the assertions and destroys them.
"""

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from aws_cdk import integ_tests_alpha as integ

from rds_force_ssl import ForceSsl

app = cdk.App()
stack = cdk.Stack(app, "RdsForceSslInteg")
vpc = ec2.Vpc(
    stack,
    "Vpc",
    max_azs=2,
    nat_gateways=0,
    subnet_configuration=[
        ec2.SubnetConfiguration(name="db", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
    ],
)
# The cheapest PostgreSQL that RDS runs, and nothing left behind when the test destroys it.
db = rds.DatabaseInstance(
    stack,
    "Db",
    engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16_9),
    instance_type=ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MICRO),
    vpc=vpc,
    vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
    allocated_storage=20,
    storage_encrypted=True,
    backup_retention=cdk.Duration.days(0),
    delete_automated_backups=True,
    removal_policy=cdk.RemovalPolicy.DESTROY,
)
guard = ForceSsl(stack, "DbSsl", database=db, min_tls_version="TLSv1.2")
assert guard.parameter_group is not None

test = integ.IntegTest(app, "ForceSsl", test_cases=[stack])
# No waiting: the stack may only finish once the setting is in effect, so a first look that is
# not in-sync is the false success this test exists to catch.
instance = test.assertions.aws_api_call(
    "RDS", "describeDBInstances", {"DBInstanceIdentifier": db.instance_identifier}
)
instance.assert_at_path(
    "DBInstances.0.DBParameterGroups.0.ParameterApplyStatus",
    integ.ExpectedResult.string_like_regexp("^in-sync$"),
)
parameters = test.assertions.aws_api_call(
    "RDS",
    "describeDBParameters",
    {"DBParameterGroupName": guard.parameter_group.ref, "Source": "user"},
)
parameters.expect(
    integ.ExpectedResult.object_like(
        {
            "Parameters": integ.Match.array_with(
                [
                    {"ParameterName": "rds.force_ssl", "ParameterValue": "1", "Source": "user"},
                    {
                        "ParameterName": "ssl_min_protocol_version",
                        "ParameterValue": "TLSv1.2",
                        "Source": "user",
                    },
                ]
            )
        }
    )
)
app.synth()
