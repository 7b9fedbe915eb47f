"""What the deploy left in effect, as stack outputs that `cdk deploy` prints.

Shown in docs/usage.md. outcome_output=True adds an output with the reboot resource's Outcome
(in-sync, reboot-scheduled, pending-reboot) and what each value means; ForceSsl(...).outcome
and .rebooted are the same attributes, for outputs of your own.
"""

import aws_cdk as cdk
import constructs
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds

from rds_force_ssl import ForceSsl


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
        db = rds.DatabaseInstance(
            self,
            "Db",
            engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16_9),
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        )
        # --8<-- [start:outcome]
        guard = ForceSsl(self, "DbSsl", database=db, outcome_output=True)  # Outcome, explained
        cdk.CfnOutput(self, "DbRebooted", value=guard.rebooted)  # "true" if the deploy restarted it
        # --8<-- [end:outcome]


app = cdk.App()
DatabaseStack(app, "OutcomeOutput")
app.synth()
