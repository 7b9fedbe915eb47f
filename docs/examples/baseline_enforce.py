"""SslBaseline in enforce mode: one line in app.py makes every database of the app SSL-only.

Shown in docs/baseline.md. The stack declares a PostgreSQL instance and an Aurora MySQL cluster
with no ForceSsl; the baseline adds one to each, with the engine's own parameter
(rds.force_ssl=1, require_secure_transport=ON), and prints what it found.
"""

import sys

import aws_cdk as cdk
import constructs
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds

# --8<-- [start:imports]
from rds_force_ssl import SslBaseline

# --8<-- [end:imports]


class AppStack(cdk.Stack):
    """Your stack, which knows nothing of rds-force-ssl."""

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
        rds.DatabaseInstance(
            self,
            "Users",
            engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16_9),
            vpc=vpc,
            vpc_subnets=isolated,
        )
        rds.DatabaseCluster(
            self,
            "Orders",
            engine=rds.DatabaseClusterEngine.aurora_mysql(
                version=rds.AuroraMysqlEngineVersion.VER_3_08_0
            ),
            writer=rds.ClusterInstance.serverless_v2("Writer"),
            vpc=vpc,
            vpc_subnets=isolated,
        )


# --8<-- [start:app]
app = cdk.App()
AppStack(app, "Baseline")  # your stacks
baseline = SslBaseline.apply(app, mode="enforce", min_tls_version="TLSv1.2")
app.synth()
print(baseline.summary(), file=sys.stderr)  # enforce: 2 COMPLIANT, 0 NON_COMPLIANT, ...
# --8<-- [end:app]
