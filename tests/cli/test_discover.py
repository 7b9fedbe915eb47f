"""`probe --region`: which endpoints a region has, read through boto3.

moto (over HTTP) covers instances, clusters and proxies with botocore's real serialisation and
paginators. What moto lacks (a cluster's CustomEndpoints, DescribeDBProxyEndpoints) and what it
cannot do (deny a call, list in several pages on demand) runs on a small fake client with the
same paginator interface. The end-to-end test probes real sockets behind the discovered names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast

import pytest
from botocore.exceptions import ClientError, NoCredentialsError
from botocore.parsers import ResponseParserError
from moto.core.responses import ActionResult
from moto.rds.responses import RDSResponse

from rds_force_ssl import cli
from rds_force_ssl.cli import aws
from rds_force_ssl.cli.discover import discover
from rds_force_ssl.cli.wire import Endpoint
from tests.cli.conftest import rds_client
from tests.cli.fakepg import fake_fleet

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient

REGION = "sa-east-1"
KEYS = {
    "describe_db_instances": "DBInstances",
    "describe_db_clusters": "DBClusters",
    "describe_db_proxies": "DBProxies",
    "describe_db_proxy_endpoints": "DBProxyEndpoints",
}


class FakeRds:
    """The paginators discovery uses, over canned items, `page_size` to a page; operations in
    `denied` answer AccessDenied as IAM does."""

    def __init__(
        self,
        items: Mapping[str, list[dict[str, Any]]],
        *,
        denied: frozenset[str] = frozenset(),
        page_size: int = 2,
    ) -> None:
        self.items = items
        self.denied = denied
        self.page_size = page_size
        self.calls: list[str] = []

    def get_paginator(self, operation: str) -> Any:
        fake = self

        class Paginator:
            def paginate(self, **_: Any) -> Iterator[dict[str, Any]]:
                name = "".join(p.capitalize() for p in operation.split("_")).replace("Db", "DB")
                fake.calls.append(name)
                if operation in fake.denied:
                    raise ClientError(
                        {"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, name
                    )
                items = fake.items.get(operation, [])
                for start in range(0, max(len(items), 1), fake.page_size):
                    yield {KEYS[operation]: items[start : start + fake.page_size]}

        return Paginator()


def as_client(fake: FakeRds) -> RDSClient:
    # Discovery calls only get_paginator(...).paginate(...), which FakeRds answers as boto3 does.
    return cast("RDSClient", fake)


def instance(name: str, host: str | None, port: int = 5432, **kw: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "DBInstanceIdentifier": name,
        "Engine": "postgres",
        "DBInstanceStatus": "available",
    }
    if host:
        item["Endpoint"] = {"Address": host, "Port": port}
    return {**item, **kw}


FLEET: dict[str, list[dict[str, Any]]] = {
    "describe_db_instances": [
        instance("orders", "orders.x.rds.amazonaws.com"),
        instance("orders-replica", "orders-replica.x.rds.amazonaws.com", 6543),
        instance("stopped-one", "stopped-one.x.rds.amazonaws.com", DBInstanceStatus="stopped"),
        instance("new-one", None, DBInstanceStatus="creating"),
        instance("shop", "shop.x.rds.amazonaws.com", 3306, Engine="mysql"),
        instance("erp", "erp.x.rds.amazonaws.com", 1433, Engine="sqlserver-se"),
        instance("ledger-1", "ledger-1.x.rds.amazonaws.com", Engine="aurora-postgresql"),
    ],
    "describe_db_clusters": [
        {
            "DBClusterIdentifier": "ledger",
            "Engine": "aurora-postgresql",
            "Status": "available",
            "Port": 5432,
            "Endpoint": "ledger.cluster-x.rds.amazonaws.com",
            "ReaderEndpoint": "ledger.cluster-ro-x.rds.amazonaws.com",
            "CustomEndpoints": ["analytics.cluster-custom-x.rds.amazonaws.com"],
        },
        {"DBClusterIdentifier": "shop-cluster", "Engine": "aurora-mysql", "Port": 3306},
    ],
    "describe_db_proxies": [
        {
            "DBProxyName": "pool",
            "EngineFamily": "POSTGRESQL",
            "Endpoint": "pool.proxy-x.rds.amazonaws.com",
            "RequireTLS": True,
            "Status": "available",
        },
        {"DBProxyName": "shop-pool", "EngineFamily": "MYSQL", "Endpoint": "shop.proxy"},
    ],
    "describe_db_proxy_endpoints": [
        {  # the default endpoint again: listed once
            "DBProxyName": "pool",
            "DBProxyEndpointName": "default",
            "Endpoint": "pool.proxy-x.rds.amazonaws.com",
            "IsDefault": True,
            "TargetRole": "READ_WRITE",
            "Status": "available",
        },
        {
            "DBProxyName": "pool",
            "DBProxyEndpointName": "ro",
            "Endpoint": "ro.endpoint.proxy-x.rds.amazonaws.com",
            "IsDefault": False,
            "TargetRole": "READ_ONLY",
            "Status": "available",
        },
        {"DBProxyName": "shop-pool", "DBProxyEndpointName": "x", "Endpoint": "x.shop.proxy"},
    ],
}


def test_every_kind_of_endpoint_once_with_what_it_is() -> None:
    found = discover(as_client(FakeRds(FLEET)))
    assert [(str(t.endpoint), t.resource) for t in found.targets] == [
        ("orders.x.rds.amazonaws.com:5432", "instance orders"),
        ("orders-replica.x.rds.amazonaws.com:6543", "instance orders-replica"),
        ("stopped-one.x.rds.amazonaws.com:5432", "instance stopped-one (stopped)"),
        ("ledger-1.x.rds.amazonaws.com:5432", "instance ledger-1"),
        ("ledger.cluster-x.rds.amazonaws.com:5432", "cluster ledger writer"),
        ("ledger.cluster-ro-x.rds.amazonaws.com:5432", "cluster ledger reader"),
        ("analytics.cluster-custom-x.rds.amazonaws.com:5432", "cluster ledger custom endpoint"),
        ("pool.proxy-x.rds.amazonaws.com:5432", "proxy pool (RequireTLS on; port 5432 assumed)"),
        (
            "ro.endpoint.proxy-x.rds.amazonaws.com:5432",
            "proxy pool endpoint ro (READ_ONLY; port 5432 assumed)",
        ),
    ]
    assert found.complete
    assert found.notes == [
        "instance new-one (creating) has no endpoint yet; not probed",
        # Not a missing feature: no credential-free probe can exist for them, and it says why.
        "not probed (aurora-mysql: 1, mysql: 1, proxy MYSQL: 1): MySQL and MariaDB refuse a "
        "plaintext client only after checking its password, so no credential-free probe can "
        "tell; use `verify --engine mysql` or `audit`",
        "no plaintext probe for these engines yet, not probed (sqlserver-se: 1)",
    ]


def test_every_listing_is_read_page_by_page() -> None:
    rds = FakeRds(FLEET, page_size=1)
    assert len(discover(as_client(rds)).targets) == 9
    assert rds.calls == [
        "DescribeDBInstances",
        "DescribeDBClusters",
        "DescribeDBProxies",
        "DescribeDBProxyEndpoints",
    ]
    # The actions the documented policy (docs/cli/iam.md) grants for `probe --region` are
    # exactly these.
    assert {f"rds:{c}" for c in rds.calls} == set(aws.IAM_ACTIONS["probe --region"])


@pytest.mark.parametrize(
    ("denied", "missing", "note"),
    [
        (
            "describe_db_proxies",
            {"pool.proxy-x.rds.amazonaws.com", "ro.endpoint.proxy-x.rds.amazonaws.com"},
            "rds:DescribeDBProxies was denied, so RDS proxies (and their extra endpoints) were "
            "not probed; grant it to include them",
        ),
        (
            "describe_db_proxy_endpoints",
            {"ro.endpoint.proxy-x.rds.amazonaws.com"},
            "rds:DescribeDBProxyEndpoints was denied, so extra RDS Proxy endpoints were not "
            "probed; grant it to include them",
        ),
        (
            "describe_db_clusters",
            {
                "ledger.cluster-x.rds.amazonaws.com",
                "ledger.cluster-ro-x.rds.amazonaws.com",
                "analytics.cluster-custom-x.rds.amazonaws.com",
            },
            "rds:DescribeDBClusters was denied, so DB cluster endpoints were not probed; grant "
            "it to include them",
        ),
    ],
)
def test_a_denied_listing_costs_only_its_endpoints(
    denied: str, missing: set[str], note: str
) -> None:
    everything = {t.endpoint.host for t in discover(as_client(FakeRds(FLEET))).targets}
    found = discover(as_client(FakeRds(FLEET, denied=frozenset({denied}))))
    assert {t.endpoint.host for t in found.targets} == everything - missing
    assert not found.complete
    assert note in found.notes


class Failing(FakeRds):
    """One listing fails with ``error``; the others answer."""

    def __init__(
        self, items: Mapping[str, list[dict[str, Any]]], *, operation: str, error: Exception
    ) -> None:
        super().__init__(items)
        self.operation, self.error = operation, error

    def get_paginator(self, operation: str) -> Any:
        if operation == self.operation:
            raise self.error
        return super().get_paginator(operation)


@pytest.mark.parametrize(
    ("operation", "error", "note"),
    [
        (
            "describe_db_proxies",
            ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "X"),
            "rds:DescribeDBProxies failed (An error occurred (Throttling) when calling the X "
            "operation: Rate exceeded), so RDS proxies (and their extra endpoints) were not "
            "probed; run again to include them",
        ),
        (
            "describe_db_proxy_endpoints",
            # what botocore raises for an HTML error page; not a BotoCoreError
            ResponseParserError("Unable to parse response, invalid XML received:\nb'<html>'"),
            "rds:DescribeDBProxyEndpoints failed (Unable to parse response, invalid XML "
            "received:), so extra RDS Proxy endpoints were not probed; run again to include them",
        ),
    ],
)
def test_a_failed_listing_costs_only_its_endpoints(
    operation: str, error: Exception, note: str
) -> None:
    found = discover(as_client(Failing(FLEET, operation=operation, error=error)))
    assert {t.endpoint.host for t in found.targets} >= {"orders.x.rds.amazonaws.com"}
    assert not found.complete
    assert note in found.notes


@pytest.mark.parametrize(
    "error",
    [
        NoCredentialsError(),
        ClientError({"Error": {"Code": "ExpiredToken", "Message": "expired"}}, "X"),
    ],
)
def test_a_failure_of_the_whole_session_is_raised_for_its_fix(error: Exception) -> None:
    with pytest.raises(type(error)):
        discover(as_client(Failing(FLEET, operation="describe_db_clusters", error=error)))


# ---- moto, over HTTP -----------------------------------------------------------------------
def _no_extra_proxy_endpoints(self: RDSResponse) -> ActionResult:
    # moto 5.2 has no DescribeDBProxyEndpoints; its other calls are real.
    return ActionResult({"DBProxyEndpoints": []})


@pytest.fixture
def moto_region(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(
        RDSResponse, "describe_db_proxy_endpoints", _no_extra_proxy_endpoints, raising=False
    )
    return moto_fleet(moto_endpoint, REGION)


def moto_fleet(moto_endpoint: str, region: str) -> Any:
    """Instances, a cluster and proxies of both families in ``region`` of the moto server."""
    import boto3

    rds = rds_client(moto_endpoint, region)
    ec2 = boto3.client(
        "ec2",
        region_name=region,
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{n}.0/24")["Subnet"]["SubnetId"]
        for n in (1, 2)
    ]
    common = {"MasterUsername": "admin_user", "MasterUserPassword": "not-a-real-password"}
    for name, engine, port in (
        ("pg-a", "postgres", 5432),
        ("pg-b", "postgres", 6000),
        ("my-a", "mysql", 3306),
    ):
        rds.create_db_instance(
            DBInstanceIdentifier=name,
            Engine=engine,
            DBInstanceClass="db.t4g.micro",
            AllocatedStorage=20,
            Port=port,
            **common,
        )
    rds.create_db_cluster(
        DBClusterIdentifier="apg", Engine="aurora-postgresql", EngineVersion="16.6", **common
    )
    for family, name in (("POSTGRESQL", "pg-pool"), ("MYSQL", "my-pool")):
        rds.create_db_proxy(
            DBProxyName=name,
            EngineFamily=family,
            Auth=[{"AuthScheme": "SECRETS", "SecretArn": "arn:aws:secretsmanager:x"}],
            RoleArn="arn:aws:iam::123456789012:role/proxy",
            VpcSubnetIds=subnets,
            RequireTLS=False,
        )
    return rds


def test_moto_instances_clusters_and_proxies(moto_region: Any) -> None:
    found = discover(moto_region)
    resources = {t.resource: (t.endpoint.port, t.engine) for t in found.targets}
    assert resources == {
        "instance pg-a": (5432, "postgresql"),
        "instance pg-b": (6000, "postgresql"),
        "cluster apg writer": (5432, "postgresql"),
        "cluster apg reader": (5432, "postgresql"),
        "proxy pg-pool (RequireTLS off; port 5432 assumed)": (5432, "postgresql"),
    }
    assert found.complete
    assert found.notes == [
        "not probed (mysql: 1, proxy MYSQL: 1): MySQL and MariaDB refuse a plaintext client "
        "only after checking its password, so no credential-free probe can tell; use "
        "`verify --engine mysql` or `audit`"
    ]


def test_moto_without_proxy_endpoints_costs_only_those(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Stock moto answers DescribeDBProxyEndpoints with an HTTP 500 page, which botocore cannot
    parse (ResponseParserError, not a BotoCoreError): the whole probe used to end in a
    traceback and exit 1. Now it costs the extra proxy endpoints, with a note."""
    # A region no other moto test of this process uses (test_audit_moto.py audits ca-central-1
    # expecting only its own database).
    rds = moto_fleet(moto_endpoint, "ap-northeast-3")
    monkeypatch.setattr(aws, "rds_client", lambda region, command: rds)
    monkeypatch.setattr("rds_force_ssl.cli.probe.probe_all", lambda targets, **_: [])
    code = cli.main(["probe", "--region", REGION, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 2
    assert report["complete"] is False
    [note] = [n for n in report["notes"] if n.startswith("rds:DescribeDBProxyEndpoints")]
    assert note.startswith("rds:DescribeDBProxyEndpoints failed (")
    assert note.endswith("so extra RDS Proxy endpoints were not probed; run again to include them")


# ---- end to end: discovered names, real sockets --------------------------------------------
def test_probe_region_end_to_end(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with fake_fleet(["refuse", "refuse", "password"]) as fleet:
        refuse_a, refuse_b, asks = list(fleet.parts)
        items = {
            "describe_db_instances": [
                instance("orders", "127.0.0.1", refuse_a),
                instance("billing", "127.0.0.1", refuse_b),
            ],
            "describe_db_clusters": [
                {
                    "DBClusterIdentifier": "legacy",
                    "Engine": "aurora-postgresql",
                    "Port": asks,
                    "Endpoint": "127.0.0.1",
                }
            ],
        }
        monkeypatch.setattr(aws, "rds_client", lambda region, command: FakeRds(items))
        code = cli.main(["probe", "--region", REGION])
    out = capsys.readouterr().out
    assert code == 1
    lines = out.splitlines()
    assert lines[0].split() == ["ENDPOINT", "VERDICT", "RESOURCE", "DETAIL"]
    assert f"127.0.0.1:{refuse_a}  ENFORCED      instance orders" in out
    assert f"127.0.0.1:{asks}  NOT_ENFORCED  cluster legacy writer" in out
    assert lines[-1] == "2 ENFORCED, 1 NOT_ENFORCED, 0 UNREACHABLE, 0 INCONCLUSIVE (exit 1)"


def test_all_enforced_but_incomplete_is_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with fake_fleet(["refuse"]) as fleet:
        [port] = fleet.parts
        items = {"describe_db_instances": [instance("orders", "127.0.0.1", port)]}
        fake = FakeRds(items, denied=frozenset({"describe_db_proxies"}))
        monkeypatch.setattr(aws, "rds_client", lambda region, command: fake)
        code = cli.main(["probe", "--region", REGION, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 2
    assert report["complete"] is False
    assert report["counts"]["ENFORCED"] == 1
    assert report["notes"][0].startswith("rds:DescribeDBProxies was denied")


def test_an_empty_region_proves_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(aws, "rds_client", lambda region, command: FakeRds({}))
    assert cli.main(["probe", "--region", REGION]) == 2
    assert "note: no endpoint of a probe-able engine found in sa-east-1" in capsys.readouterr().out


def test_named_endpoints_and_the_region_together_once_each(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with fake_fleet(["refuse"]) as fleet:
        [port] = fleet.parts
        items = {"describe_db_instances": [instance("orders", "127.0.0.1", port)]}
        monkeypatch.setattr(aws, "rds_client", lambda region, command: FakeRds(items))
        code = cli.main(["probe", f"127.0.0.1:{port}", "--region", REGION, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [(e["endpoint"], e["resource"]) for e in report["endpoints"]] == [
        (str(Endpoint("127.0.0.1", port)), None)
    ]
