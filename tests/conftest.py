"""Shared fixtures: small CDK apps that synthesize fast."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds

from rds_force_ssl import state

PG16 = rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16_9)
AURORA16 = rds.DatabaseClusterEngine.aurora_postgres(
    version=rds.AuroraPostgresEngineVersion.VER_16_9
)
MYSQL80 = rds.DatabaseInstanceEngine.mysql(version=rds.MysqlEngineVersion.VER_8_0_39)
MARIADB1011 = rds.DatabaseInstanceEngine.maria_db(version=rds.MariaDbEngineVersion.VER_10_11_9)
MARIADB104 = rds.DatabaseInstanceEngine.maria_db(version=rds.MariaDbEngineVersion.VER_10_4_34)
AURORA_MYSQL3 = rds.DatabaseClusterEngine.aurora_mysql(
    version=rds.AuroraMysqlEngineVersion.VER_3_08_0
)
SQLSERVER_SE16 = rds.DatabaseInstanceEngine.sql_server_se(
    version=rds.SqlServerEngineVersion.VER_16_00_4165_4_V1
)
ORACLE_SE2_19 = rds.DatabaseInstanceEngine.oracle_se2(
    version=rds.OracleEngineVersion.VER_19_0_0_0_2021_04_R1
)


def fast_app() -> cdk.App:
    # The built-in CloudFormation validation costs seconds per synth; the sample-app tests keep
    # it on, these unit tests do not need it.
    return cdk.App(builtin_cloud_formation_validation=False)


def isolated_vpc(stack: cdk.Stack) -> ec2.Vpc:
    return ec2.Vpc(
        stack,
        "Vpc",
        max_azs=2,
        nat_gateways=0,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="db", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        ],
    )


class Sandbox:
    """A stack with a VPC, and factories for databases in it."""

    def __init__(self, app: cdk.App | None = None, name: str = "Stack") -> None:
        self.app = app or fast_app()
        self.stack = cdk.Stack(self.app, name, env=cdk.Environment(region="us-east-1"))
        self.vpc = isolated_vpc(self.stack)

    def instance(self, construct_id: str = "Db", **kwargs: Any) -> rds.DatabaseInstance:
        kwargs.setdefault("engine", PG16)
        return rds.DatabaseInstance(
            self.stack,
            construct_id,
            vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            **kwargs,
        )

    def proxy(
        self, construct_id: str = "Proxy", *, target: rds.DatabaseInstance, **kwargs: Any
    ) -> rds.DatabaseProxy:
        assert target.secret is not None
        return rds.DatabaseProxy(
            self.stack,
            construct_id,
            proxy_target=rds.ProxyTarget.from_instance(target),
            secrets=[target.secret],
            vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            **kwargs,
        )

    def l1_proxy(self, construct_id: str = "Proxy", **kwargs: Any) -> rds.CfnDBProxy:
        return rds.CfnDBProxy(
            self.stack,
            construct_id,
            db_proxy_name=construct_id.lower(),
            engine_family="POSTGRESQL",
            role_arn="arn:aws:iam::123456789012:role/proxy",
            vpc_subnet_ids=["subnet-1", "subnet-2"],
            auth=[
                rds.CfnDBProxy.AuthFormatProperty(
                    auth_scheme="SECRETS",
                    secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:db",
                )
            ],
            **kwargs,
        )

    def multi_az_cluster(self, construct_id: str = "MultiAz") -> rds.CfnDBCluster:
        """A Multi-AZ DB cluster (not Aurora): an L1 only, as CDK has no L2 for it."""
        return rds.CfnDBCluster(
            self.stack,
            construct_id,
            engine="postgres",
            engine_version="16.9",
            db_cluster_instance_class="db.m6gd.large",
            allocated_storage=100,
            storage_type="io1",
            iops=1000,
            master_username="postgres",
            manage_master_user_password=True,
        )

    def cluster(self, construct_id: str = "Cluster", **kwargs: Any) -> rds.DatabaseCluster:
        kwargs.setdefault("engine", AURORA16)
        kwargs.setdefault("writer", rds.ClusterInstance.provisioned("Writer"))
        kwargs.setdefault(
            "readers",
            [
                rds.ClusterInstance.provisioned("Reader1"),
                rds.ClusterInstance.provisioned("Reader2"),
            ],
        )
        return rds.DatabaseCluster(
            self.stack,
            construct_id,
            vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            **kwargs,
        )


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox()


@pytest.fixture
def make_sandbox() -> Callable[[], Sandbox]:
    return Sandbox


@pytest.fixture(autouse=True)
def _library_state_per_test() -> Iterator[None]:
    """What the library remembered of one test's apps is forgotten before the next."""
    yield
    state.reset()
