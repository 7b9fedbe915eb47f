"""ForceSsl on an Aurora PostgreSQL cluster: the same line, every member rebooted in turn.

Shown in docs/usage.md. ForceSsl writes rds.force_ssl=1 into the cluster's parameter group
(aurora-postgresql16), and its reboot resource restarts the members that RDS says need it, one
at a time, readers first.
"""

import aws_cdk as cdk
import constructs
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds

from rds_force_ssl import ForceSsl


class ClusterStack(cdk.Stack):
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
        cluster = rds.DatabaseCluster(
            self,
            "Cluster",
            engine=rds.DatabaseClusterEngine.aurora_postgres(
                version=rds.AuroraPostgresEngineVersion.VER_16_9
            ),
            writer=rds.ClusterInstance.serverless_v2("Writer"),
            readers=[rds.ClusterInstance.serverless_v2("Reader", scale_with_writer=True)],
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        )
        ForceSsl(self, "ClusterSsl", database=cluster)  # rds.force_ssl=1 for every member
        # --8<-- [end:force_ssl]


app = cdk.App()
ClusterStack(app, "ForceSslCluster")
app.synth()
