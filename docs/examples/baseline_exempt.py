"""exempt(): leave one database out of the baseline, with the reason on the record.

Shown in docs/baseline.md. The enforce baseline makes Users SSL-only and leaves Legacy as it
is; the reason lands in the synthesized metadata (rds-force-ssl:exempt) and as an info line
that `cdk synth` prints, and Legacy's verdict is EXEMPT.
"""

import sys

import aws_cdk as cdk
import constructs
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds

# --8<-- [start:imports]
from rds_force_ssl import SslBaseline, exempt

# --8<-- [end:imports]


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
        isolated = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        postgres16 = rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16_9)
        rds.DatabaseInstance(self, "Users", engine=postgres16, vpc=vpc, vpc_subnets=isolated)
        legacy_db = rds.DatabaseInstance(
            self, "Legacy", engine=postgres16, vpc=vpc, vpc_subnets=isolated
        )
        # --8<-- [start:exempt]
        exempt(legacy_db, reason="vendor appliance without TLS until 2027; ticket DB-9")
        # --8<-- [end:exempt]


app = cdk.App()
AppStack(app, "Exempted")
baseline = SslBaseline.apply(app, mode="enforce")
app.synth()
print(baseline.summary(), file=sys.stderr)  # enforce: 1 COMPLIANT, ..., 1 EXEMPT
