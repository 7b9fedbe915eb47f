"""ForceSsl on an RDS for PostgreSQL instance: the one line.

Shown in README.md (the same lines typed out: tests/test_examples.py checks that they match),
docs/index.md and docs/usage.md. Run it as any CDK app, from the repository after `make synth`:
`npx cdk synth --app ".venv/bin/python docs/examples/force_ssl_instance.py"`.
"""

import aws_cdk as cdk
import constructs

# --8<-- [start:imports]
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds

from rds_force_ssl import ForceSsl

# --8<-- [end:imports]


class DatabaseStack(cdk.Stack):
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
        # --8<-- [start:force_ssl]
        db = rds.DatabaseInstance(
            self,
            "Db",
            engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16_9),
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        )
        ForceSsl(self, "DbSsl", database=db)  # the one line
        # --8<-- [end:force_ssl]


app = cdk.App()
DatabaseStack(app, "ForceSslInstance")
app.synth()
