"""SslBaseline in audit mode: changes nothing, and fails `cdk synth` on a database that is not
SSL-only.

Shown in docs/baseline.md. Here every database has its ForceSsl, so the audit finds nothing and
synth succeeds; remove the ForceSsl line and `cdk synth` fails with an RFS1 error on the
database.
"""

import sys

import aws_cdk as cdk
import constructs
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds

from rds_force_ssl import ForceSsl, SslBaseline


class AppStack(cdk.Stack):
    def __init__(self, scope: constructs.Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # Isolated subnets only: the database needs no internet, and no NAT gateway to pay for.
        vpc = ec2.Vpc(
            self,
            "Vpc",
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="db", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
            ],
        )
        db = rds.DatabaseInstance(
            self,
            "Db",
            engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16_9),
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        )
        ForceSsl(self, "DbSsl", database=db)  # without it, the audit fails synth (RFS1)


# --8<-- [start:app]
app = cdk.App()
AppStack(app, "Audited")  # your stacks, each database with its ForceSsl
baseline = SslBaseline.apply(app, mode="audit")  # adds nothing, fails synth on a finding
app.synth()
print(baseline.summary(), file=sys.stderr)  # audit: 1 COMPLIANT, 0 NON_COMPLIANT, ...
# --8<-- [end:app]
