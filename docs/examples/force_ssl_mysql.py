"""ForceSsl on an RDS for MySQL instance: the same line, the engine's own parameter.

Shown in docs/usage.md. ForceSsl reads the engine from the instance and writes
require_secure_transport=1 into a mysql8.4 parameter group (rds.force_ssl=1 on PostgreSQL).
"""

import aws_cdk as cdk
import constructs
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds

from rds_force_ssl import ForceSsl


class OrdersStack(cdk.Stack):
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
        mysql = rds.DatabaseInstance(
            self,
            "Orders",
            engine=rds.DatabaseInstanceEngine.mysql(version=rds.MysqlEngineVersion.VER_8_4_6),
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        )
        ForceSsl(self, "OrdersSsl", database=mysql)  # require_secure_transport=1, group mysql8.4
        # --8<-- [end:force_ssl]


app = cdk.App()
OrdersStack(app, "ForceSslMySql")
app.synth()
