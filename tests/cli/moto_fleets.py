"""The moto fleets `rds-force-ssl audit` is tested on (tests/cli/test_audit_moto.py), and from
which the docs' audit sample outputs are made (tests/docs_samples.py): RDS clients for a moto
server, the helpers that create groups, instances, Aurora clusters and proxies, the CA test data
moto lacks, and the two fleets themselves.

Nothing here depends on pytest: the docs samples run outside it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from moto.core.responses import ActionResult
from moto.rds.responses import RDSResponse

# Test data for the CA list (moto 5.2 does not implement DescribeCertificates).
CERTIFICATES = {
    "rds-ca-2019": datetime(2024, 8, 22, 17, 8, 50, tzinfo=UTC),
    "rds-ca-rsa2048-g1": datetime(2061, 5, 25, 23, 34, 57, tzinfo=UTC),
    "rds-ca-ecc384-g1": datetime(2121, 5, 25, 23, 34, 57, tzinfo=UTC),
}
PASSWORD = "not-a-real-password"  # moto requires one


def describe_certificates(self: RDSResponse) -> ActionResult:
    """DescribeCertificates for moto's RDSResponse (patched in), answering CERTIFICATES."""
    return ActionResult(
        {
            "Certificates": [
                {"CertificateIdentifier": k, "CertificateType": "CA", "ValidTill": v}
                for k, v in CERTIFICATES.items()
            ]
        }
    )


def rds_client(endpoint: str, region: str) -> Any:
    import boto3

    return boto3.client(
        "rds",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def denied(action: str) -> Callable[..., Any]:
    """A moto response method that answers like IAM does for an action the caller lacks."""
    from moto.rds.exceptions import RDSClientError

    def answer(self: object) -> None:
        raise RDSClientError(
            "AccessDenied",
            f"User: arn:aws:iam::123456789012:user/auditor is not authorized to perform: "
            f"rds:{action} because no identity-based policy allows the rds:{action} action",
        )

    return answer


def client(endpoint: str, region: str) -> Any:
    return rds_client(endpoint, region)


def instance(rds: Any, name: str, version: str, *, engine: str = "postgres", **kw: Any) -> None:
    rds.create_db_instance(
        DBInstanceIdentifier=name,
        Engine=engine,
        EngineVersion=version,
        DBInstanceClass="db.t4g.micro",
        MasterUsername="admin_user",
        MasterUserPassword=PASSWORD,
        AllocatedStorage=20,
        **kw,
    )


def db_group(
    rds: Any, name: str, family: str, value: str | None, *, parameter: str = "rds.force_ssl"
) -> None:
    rds.create_db_parameter_group(
        DBParameterGroupName=name, DBParameterGroupFamily=family, Description=name
    )
    if value is not None:
        rds.modify_db_parameter_group(
            DBParameterGroupName=name,
            Parameters=[
                {"ParameterName": parameter, "ParameterValue": value, "ApplyMethod": "immediate"}
            ],
        )


def aurora(
    rds: Any,
    name: str,
    version: str,
    *,
    group: str,
    value: str | None,
    members: int,
    engine: str = "aurora-postgresql",
    family: str | None = None,
    parameter: str = "rds.force_ssl",
) -> None:
    rds.create_db_cluster_parameter_group(
        DBClusterParameterGroupName=group,
        DBParameterGroupFamily=family or f"aurora-postgresql{version.split('.')[0]}",
        Description=group,
    )
    if value is not None:
        rds.modify_db_cluster_parameter_group(
            DBClusterParameterGroupName=group,
            Parameters=[
                {"ParameterName": parameter, "ParameterValue": value, "ApplyMethod": "immediate"}
            ],
        )
    rds.create_db_cluster(
        DBClusterIdentifier=name,
        Engine=engine,
        EngineVersion=version,
        MasterUsername="admin_user",
        MasterUserPassword=PASSWORD,
        DBClusterParameterGroupName=group,
    )
    for n in range(members):
        rds.create_db_instance(
            DBInstanceIdentifier=f"{name}-{n + 1}",
            Engine=engine,
            DBInstanceClass="db.r6g.large",
            DBClusterIdentifier=name,
            CACertificateIdentifier="rds-ca-ecc384-g1",
        )


def proxy(endpoint: str, rds: Any, name: str, family: str, *, require_tls: bool) -> None:
    """An RDS Proxy (moto checks its subnets against its own EC2)."""
    import boto3

    ec2 = boto3.client(
        "ec2",
        region_name=rds.meta.region_name,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.8.{n}.0/24")["Subnet"]["SubnetId"]
        for n in (1, 2)
    ]
    rds.create_db_proxy(
        DBProxyName=name,
        EngineFamily=family,
        Auth=[{"AuthScheme": "SECRETS", "SecretArn": "arn:aws:secretsmanager:x"}],
        RoleArn="arn:aws:iam::123456789012:role/proxy",
        VpcSubnetIds=subnets,
        RequireTLS=require_tls,
    )


# A PostgreSQL fleet: RDS for PostgreSQL and Aurora PostgreSQL, explicit and default groups.
FLEET_REGION = "us-east-1"


def build_fleet(endpoint: str) -> None:
    rds = client(endpoint, FLEET_REGION)
    db_group(rds, "pg16-force-ssl", "postgres16", "1")
    db_group(rds, "pg13-tuned", "postgres13", "0")
    ca = {"CACertificateIdentifier": "rds-ca-rsa2048-g1"}
    for name in ("orders", "billing", "reports"):
        instance(rds, name, "16.9", DBParameterGroupName="pg16-force-ssl", **ca)
    instance(rds, "legacy-crm", "14.12", **ca)  # default group: engine default 0
    instance(rds, "new-api", "15.10", CACertificateIdentifier="rds-ca-2019")  # default 1
    instance(rds, "warehouse", "13.16", DBParameterGroupName="pg13-tuned", **ca)
    aurora(rds, "ledger", "16.6", group="apg16-force-ssl", value="1", members=2)
    aurora(rds, "events", "17.4", group="apg17-tuned", value=None, members=1)
    aurora(rds, "search", "15.8", group="apg15-tuned", value=None, members=1)


# The other engines and the proxies, in a region of their own: each engine's parameter, the
# values that count as on, its default and its Security Hub control come from the engine table.
ENGINES_REGION = "eu-central-1"
RST = "require_secure_transport"


def build_engines_fleet(endpoint: str) -> None:
    rds = client(endpoint, ENGINES_REGION)
    ca = {"CACertificateIdentifier": "rds-ca-rsa2048-g1"}
    db_group(rds, "mysql80-tls", "mysql8.0", "1", parameter=RST)
    db_group(rds, "mariadb1011-tls", "mariadb10.11", "ON", parameter=RST)
    db_group(rds, "mariadb1011-off", "mariadb10.11", "0", parameter=RST)
    db_group(rds, "sqlserver-tls", "sqlserver-se-16.0", "1")
    instance(rds, "shop", "8.0.40", engine="mysql", DBParameterGroupName="mysql80-tls", **ca)
    instance(rds, "shop-84", "8.4.3", engine="mysql", **ca)  # default group: off up to 8.4
    instance(rds, "wiki", "10.11.9", engine="mariadb", DBParameterGroupName="mariadb1011-tls", **ca)
    instance(rds, "blog", "10.11.9", engine="mariadb", DBParameterGroupName="mariadb1011-off", **ca)
    instance(rds, "forum", "11.8.2", engine="mariadb", **ca)  # default group: on from 11.8
    instance(rds, "old-maria", "10.4.34", engine="mariadb", **ca)  # no such parameter
    instance(rds, "erp-sql", "16.00.4165.4.v1", engine="sqlserver-se", **ca)
    instance(
        rds,
        "erp-sql-tls",
        "16.00.4165.4.v1",
        engine="sqlserver-se",
        DBParameterGroupName="sqlserver-tls",
        **ca,
    )
    instance(rds, "erp-ora", "19.0.0.0.ru-2024-10.rur-2024-10.r1", engine="oracle-se2", **ca)
    aurora(
        rds,
        "catalog",
        "8.0.mysql_aurora.3.08.0",
        group="amy3-tls",
        value="ON",
        members=1,
        engine="aurora-mysql",
        family="aurora-mysql8.0",
        parameter=RST,
    )
    proxy(endpoint, rds, "pg-pool", "POSTGRESQL", require_tls=True)
    proxy(endpoint, rds, "my-pool", "MYSQL", require_tls=False)


# What a machine's own AWS configuration is made of: the tests' no_aws_config fixture and the docs'
# samples clear all of it, so that nothing but their own settings reaches boto3.
AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_RDS",
)


# ---- an AWS Organization (tests/cli/test_org_audit.py, benchmarks/org_audit.py) ---------------
# moto keeps a backend per account: a client signed with credentials from STS AssumeRole acts in
# the role's account. moto's state is global to its process, so each organization fleet is an OU
# of its own (audited with --ou), of member accounts of its own.
ORG_ROLE = "RdsForceSslAudit"
ORG_REGIONS = ("eu-west-3", "ap-southeast-2")


def caller(endpoint: str, service: str, region: str = "us-east-1") -> Any:
    import boto3

    make: Any = boto3.client  # any service: the stubs type each one separately
    return make(
        service,
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def member_client(endpoint: str, account: str, service: str, region: str) -> Any:
    """A client acting in ``account``, through the organization role, as the audit does."""
    import boto3

    creds = caller(endpoint, "sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{ORG_ROLE}", RoleSessionName="fleet-builder"
    )["Credentials"]
    make: Any = boto3.client
    return make(
        service,
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def build_org(
    endpoint: str,
    *,
    accounts: int,
    databases: int,
    regions: tuple[str, ...] = ORG_REGIONS,
    not_enforced: frozenset[int] = frozenset(),
    name: str = "fleet",
    management: str | None = None,
) -> tuple[str, list[str]]:
    """A new OU of ``accounts`` member accounts (the organization is made once), each with
    ``databases`` PostgreSQL instances per region, all on one group that sets rds.force_ssl=1,
    except in the accounts whose index is in ``not_enforced``, where it sets 0. The
    organization is the default account's, or ``management``'s (an organization of its own).
    Returns (the OU id, the account ids)."""
    org = (
        member_client(endpoint, management, "organizations", "us-east-1")
        if management
        else caller(endpoint, "organizations")
    )
    import contextlib

    with contextlib.suppress(org.exceptions.AlreadyInOrganizationException):
        org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name=name)["OrganizationalUnit"]["Id"]
    ids = []
    for n in range(accounts):
        status = org.create_account(AccountName=f"{name}-{n}", Email=f"{name}-{n}@example.com")
        account = status["CreateAccountStatus"]["AccountId"]
        org.move_account(AccountId=account, SourceParentId=root, DestinationParentId=ou)
        ids.append(account)
        for region in regions:
            rds = member_client(endpoint, account, "rds", region)
            db_group(rds, "pg16-ssl", "postgres16", "0" if n in not_enforced else "1")
            for d in range(databases):
                instance(
                    rds,
                    f"db-{d}",
                    "16.9",
                    DBParameterGroupName="pg16-ssl",
                    CACertificateIdentifier="rds-ca-rsa2048-g1",
                )
    return ou, ids
