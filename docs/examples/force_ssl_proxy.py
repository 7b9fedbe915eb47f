"""ForceSsl on an RDS Proxy (RequireTLS) and on the database behind it.

Shown in docs/usage.md. A proxy has no parameter group and is never rebooted: ForceSsl sets its
RequireTLS. The database behind it needs its own ForceSsl (or the baseline), as clients may
reach it without the proxy.
"""

import aws_cdk as cdk
import constructs
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds

from rds_force_ssl import ForceSsl


class ProxyStack(cdk.Stack):
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
        secret = rds.DatabaseSecret(self, "Secret", username="postgres")
        db = rds.DatabaseInstance(
            self,
            "Db",
            engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16_9),
            credentials=rds.Credentials.from_secret(secret),
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        )
        ForceSsl(self, "DbSsl", database=db)  # the database behind the proxy: rds.force_ssl=1
        # --8<-- [start:force_ssl]
        proxy = rds.DatabaseProxy(
            self,
            "Proxy",
            proxy_target=rds.ProxyTarget.from_instance(db),
            secrets=[secret],  # the database's credentials
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
        )
        ForceSsl(self, "ProxySsl", database=proxy)  # RequireTLS=true on the proxy
        # --8<-- [end:force_ssl]


app = cdk.App()
ProxyStack(app, "ForceSslProxy")
app.synth()
