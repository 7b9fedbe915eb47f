"""A PostgreSQL 16 instance, an Aurora PostgreSQL 16 cluster and a MySQL 8.4 instance in an
isolated VPC, SSL-only."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from constructs import Construct

from rds_force_ssl import ForceSsl

# The RDS CA bundle for every region: https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
CA_BUNDLE = "global-bundle.pem"


class SampleStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # Isolated subnets only: no NAT gateway to pay for; the database needs no internet.
        vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="db", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
                )
            ],
        )
        database = rds.DatabaseInstance(
            self,
            "Database",
            engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16_9),
            instance_type=ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MICRO),
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            allocated_storage=20,
            storage_encrypted=True,
            iam_authentication=True,
            removal_policy=cdk.RemovalPolicy.SNAPSHOT,
        )
        guard = ForceSsl(
            self,
            "ForceSsl",
            database=database,
            min_tls_version="TLSv1.2",
            ca_certificate=rds.CaCertificate.RDS_CA_RSA2048_G1,
        )
        # No ForceSsl here on purpose: the app's SslBaseline (app.py) protects this cluster, and
        # reboots its members one at a time.
        cluster = rds.DatabaseCluster(
            self,
            "Cluster",
            engine=rds.DatabaseClusterEngine.aurora_postgres(
                version=rds.AuroraPostgresEngineVersion.VER_16_9
            ),
            writer=rds.ClusterInstance.serverless_v2("Writer"),
            readers=[rds.ClusterInstance.serverless_v2("Reader", scale_with_writer=True)],
            serverless_v2_min_capacity=0.5,
            serverless_v2_max_capacity=1,
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            storage_encrypted=True,
            iam_authentication=True,
            removal_policy=cdk.RemovalPolicy.SNAPSHOT,
        )
        # No ForceSsl here either: the same baseline finds it, and the engine table gives it
        # require_secure_transport=1 (MySQL) instead of rds.force_ssl=1. Its changes wait for
        # its maintenance window (apply_immediately=False), so the baseline's ForceSsl restarts
        # it there too, if a restart is ever owed (Reboot.MAINTENANCE_WINDOW; synth says so).
        mysql = rds.DatabaseInstance(
            self,
            "MySql",
            engine=rds.DatabaseInstanceEngine.mysql(version=rds.MysqlEngineVersion.VER_8_4_6),
            instance_type=ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.MICRO),
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            allocated_storage=20,
            storage_encrypted=True,
            iam_authentication=True,
            removal_policy=cdk.RemovalPolicy.SNAPSHOT,
            apply_immediately=False,
            preferred_maintenance_window="sun:03:00-sun:03:30",
        )
        _acknowledge_sample_choices(self, vpc, [database, mysql], cluster)
        # What the deploy found, for `cdk deploy`'s output: in-sync once rds.force_ssl is in
        # effect, and whether RDS restarted the database on the way.
        cdk.CfnOutput(self, "ForceSslOutcome", value=guard.outcome)
        cdk.CfnOutput(self, "ForceSslRebooted", value=guard.rebooted)
        cdk.CfnOutput(self, "MySqlEndpoint", value=mysql.db_instance_endpoint_address)
        cdk.CfnOutput(self, "ClusterEndpoint", value=cluster.cluster_endpoint.hostname)
        endpoint = database.db_instance_endpoint_address
        port = database.db_instance_endpoint_port
        cdk.CfnOutput(self, "Endpoint", value=endpoint)
        cdk.CfnOutput(
            self,
            "PsqlCommand",
            description="Connect with certificate and host-name checks (as in the RDS docs)",
            value=cdk.Fn.join(
                "",
                [
                    'psql "host=',
                    endpoint,
                    " port=",
                    port,
                    " dbname=postgres user=postgres ",
                    f'sslmode=verify-full sslrootcert={CA_BUNDLE}"',
                ],
            ),
        )
        cdk.CfnOutput(
            self,
            "VerifyCommand",
            description="Prove it: plaintext refused, verify-full working",
            value=cdk.Fn.join(
                "",
                [
                    "rds-force-ssl verify --host ",
                    endpoint,
                    " --port ",
                    port,
                    f" --dbname postgres --user postgres --sslrootcert {CA_BUNDLE}",
                ],
            ),
        )


def _acknowledge_sample_choices(
    stack: cdk.Stack,
    vpc: ec2.Vpc,
    instances: list[rds.DatabaseInstance],
    cluster: rds.DatabaseCluster,
) -> None:
    """cdk-nag findings that are choices of this sample, not of the library, with why."""

    def ack(rule: str, reason: str) -> cdk.Acknowledgment:
        return cdk.Acknowledgment(id=f"AwsSolutions::AwsSolutions-{rule}", reason=reason)

    cdk.Validations.of(vpc).acknowledge(
        ack(
            "VPC7",
            "Isolated subnets only, no internet path; flow logs would cost more than "
            "the sample itself. Enable them in a real VPC.",
        ),
    )
    for db in (*instances, cluster):
        cdk.Validations.of(db).acknowledge(
            ack(
                "RDS10",
                "The sample must be destroyable with cdk destroy; RemovalPolicy.SNAPSHOT "
                "still keeps a final snapshot.",
            ),
            ack(
                "SMG4",
                "Rotation needs a rotation Lambda reachable from isolated subnets "
                "(VPC endpoints); out of scope for a TLS sample.",
            ),
        )
    for instance in instances:
        cdk.Validations.of(instance).acknowledge(
            ack(
                "RDS3",
                "A single-AZ t4g.micro keeps the sample cheap; ForceSsl handles Multi-AZ "
                "(force_failover=True) the same way.",
            ),
            ack(
                "RDS11",
                "Changing the port is not a control here: the security group admits "
                "nobody, and TLS is what this stack enforces.",
            ),
        )
