"""ForceSsl with a reboot policy: restart in the database's own maintenance window.

Shown in docs/reboot.md. With Reboot.MAINTENANCE_WINDOW the deploy does not restart the
database; the stack gets a schedule (an EventBridge rule) that restarts it inside its
PreferredMaintenanceWindow if RDS says a restart is owed.
"""

import aws_cdk as cdk
import constructs
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds

# --8<-- [start:imports]
from rds_force_ssl import ForceSsl, Reboot

# --8<-- [end:imports]


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
        orders = rds.DatabaseInstance(
            self,
            "Orders",
            engine=rds.DatabaseInstanceEngine.mysql(version=rds.MysqlEngineVersion.VER_8_4_6),
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            preferred_maintenance_window="sun:03:00-sun:03:30",
        )
        # --8<-- [start:reboot]
        ForceSsl(self, "OrdersSsl", database=orders, reboot=Reboot.MAINTENANCE_WINDOW)
        # --8<-- [end:reboot]


app = cdk.App()
OrdersStack(app, "RebootPolicy")
app.synth()
