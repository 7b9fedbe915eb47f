"""`rds-force-ssl audit` over real HTTP against moto in server mode: botocore's own serialisation,
paginators and error shapes, on a fleet of mixed engines, versions and parameter groups.

moto keeps every group in-sync, so the pending-reboot cases live in test_audit_sim.py.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from moto.core.responses import ActionResult
from moto.rds.responses import RDSResponse

from rds_force_ssl import cli
from rds_force_ssl.cli import audit, aws
from tests.cli.conftest import denied, rds_client

# moto warns that AccessDenied and ExpiredToken are not in RDS's own error shapes: IAM and STS
# send them, which is what the tests mimic.
pytestmark = pytest.mark.filterwarnings("ignore:Exception\\(RDSClientError\\):UserWarning")

# Test data for the CA list (moto 5.2 does not implement DescribeCertificates).
CERTIFICATES = {
    "rds-ca-2019": datetime(2024, 8, 22, 17, 8, 50, tzinfo=UTC),
    "rds-ca-rsa2048-g1": datetime(2061, 5, 25, 23, 34, 57, tzinfo=UTC),
    "rds-ca-ecc384-g1": datetime(2121, 5, 25, 23, 34, 57, tzinfo=UTC),
}
PASSWORD = "not-a-real-password"  # moto requires one


def _describe_certificates(self: RDSResponse) -> ActionResult:
    return ActionResult(
        {
            "Certificates": [
                {"CertificateIdentifier": k, "CertificateType": "CA", "ValidTill": v}
                for k, v in CERTIFICATES.items()
            ]
        }
    )


@pytest.fixture(scope="module")
def endpoint(moto_endpoint: str) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RDSResponse, "describe_certificates", _describe_certificates, raising=False)
        yield moto_endpoint


def client(endpoint: str, region: str) -> Any:
    return rds_client(endpoint, region)


def counted(rds: Any) -> Counter[str]:
    """Count the API operations this client sends over HTTP."""
    calls: Counter[str] = Counter()
    rds.meta.events.register("before-call.rds.*", lambda model, **_: calls.update([model.name]))
    return calls


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


def db_group(rds: Any, name: str, family: str, force_ssl: str | None) -> None:
    rds.create_db_parameter_group(
        DBParameterGroupName=name, DBParameterGroupFamily=family, Description=name
    )
    if force_ssl is not None:
        rds.modify_db_parameter_group(
            DBParameterGroupName=name,
            Parameters=[
                {
                    "ParameterName": "rds.force_ssl",
                    "ParameterValue": force_ssl,
                    "ApplyMethod": "pending-reboot",
                }
            ],
        )


def aurora(
    rds: Any, name: str, version: str, *, group: str, force_ssl: str | None, members: int
) -> None:
    rds.create_db_cluster_parameter_group(
        DBClusterParameterGroupName=group,
        DBParameterGroupFamily=f"aurora-postgresql{version.split('.')[0]}",
        Description=group,
    )
    if force_ssl is not None:
        rds.modify_db_cluster_parameter_group(
            DBClusterParameterGroupName=group,
            Parameters=[
                {
                    "ParameterName": "rds.force_ssl",
                    "ParameterValue": force_ssl,
                    "ApplyMethod": "pending-reboot",
                }
            ],
        )
    rds.create_db_cluster(
        DBClusterIdentifier=name,
        Engine="aurora-postgresql",
        EngineVersion=version,
        MasterUsername="admin_user",
        MasterUserPassword=PASSWORD,
        DBClusterParameterGroupName=group,
    )
    for n in range(members):
        rds.create_db_instance(
            DBInstanceIdentifier=f"{name}-{n + 1}",
            Engine="aurora-postgresql",
            DBInstanceClass="db.r6g.large",
            DBClusterIdentifier=name,
            CACertificateIdentifier="rds-ca-ecc384-g1",
        )


FLEET_REGION = "us-east-1"


@pytest.fixture(scope="module")
def fleet(endpoint: str) -> str:
    rds = client(endpoint, FLEET_REGION)
    db_group(rds, "pg16-force-ssl", "postgres16", "1")
    db_group(rds, "pg13-tuned", "postgres13", "0")
    ca = {"CACertificateIdentifier": "rds-ca-rsa2048-g1"}
    for name in ("orders", "billing", "reports"):
        instance(rds, name, "16.9", DBParameterGroupName="pg16-force-ssl", **ca)
    instance(rds, "legacy-crm", "14.12", **ca)  # default group: engine default 0
    instance(rds, "new-api", "15.10", CACertificateIdentifier="rds-ca-2019")  # default 1
    instance(rds, "warehouse", "13.16", DBParameterGroupName="pg13-tuned", **ca)
    instance(rds, "shop-mysql", "8.0.40", engine="mysql", **ca)  # not PostgreSQL: not audited
    aurora(rds, "ledger", "16.6", group="apg16-force-ssl", force_ssl="1", members=2)
    aurora(rds, "events", "17.4", group="apg17-tuned", force_ssl=None, members=1)
    aurora(rds, "search", "15.8", group="apg15-tuned", force_ssl=None, members=1)
    return endpoint


def test_fleet_rows(fleet: str) -> None:
    rows = {r.name: r for r in audit.audit(client(fleet, FLEET_REGION)).rows}
    got = {n: (r.kind, r.force_ssl, r.source, r.state, r.enforced) for n, r in rows.items()}
    assert got == {
        "orders": ("instance", "1", "explicit", "effective", True),
        "billing": ("instance", "1", "explicit", "effective", True),
        "reports": ("instance", "1", "explicit", "effective", True),
        "legacy-crm": ("instance", "0", "engine default (assumed)", "not configured", False),
        "new-api": ("instance", "1", "engine default (assumed)", "effective", True),
        "warehouse": ("instance", "0", "explicit", "not configured", False),
        "ledger": ("cluster", "1", "explicit", "effective", True),
        "events": ("cluster", "1", "engine default (assumed)", "effective", True),
        "search": ("cluster", "0", "engine default (assumed)", "not configured", False),
    }
    assert rows["legacy-crm"].groups == ("default.postgres14",)
    assert rows["ledger"].groups == ("apg16-force-ssl",)
    assert dict(rows["ledger"].members) == {"ledger-1": "in-sync", "ledger-2": "in-sync"}
    assert rows["orders"].ca_valid_till == CERTIFICATES["rds-ca-rsa2048-g1"]
    assert rows["ledger"].ca == "rds-ca-ecc384-g1"
    assert rows["new-api"].ca_valid_till == CERTIFICATES["rds-ca-2019"]


def test_parameters_are_read_once_per_distinct_group(fleet: str) -> None:
    rds = client(fleet, FLEET_REGION)
    calls = counted(rds)
    audit.audit(rds)
    # 4 distinct DB parameter groups for 6 PostgreSQL instances, 3 cluster groups.
    assert calls["DescribeDBParameters"] == 4
    assert calls["DescribeDBClusterParameters"] == 3
    assert calls["DescribeDBInstances"] == 1
    assert calls["DescribeDBClusters"] == 1
    assert calls["DescribeCertificates"] == 1
    # What the README's policy grants `audit`, and nothing else.
    assert {f"rds:{op}" for op in calls} == set(aws.IAM_ACTIONS["audit"])


def test_describe_calls_are_read_page_by_page(endpoint: str) -> None:
    rds = client(endpoint, "eu-west-1")
    db_group(rds, "shared", "postgres16", "1")
    for n in range(45):
        instance(rds, f"tenant-{n:02d}", "16.9", DBParameterGroupName="shared")
    calls = counted(rds)
    rows = audit.audit(rds, page_size=20).rows
    assert len(rows) == 45
    assert all(r.enforced for r in rows)
    assert calls["DescribeDBInstances"] == 3
    assert calls["DescribeDBParameters"] == 1


@pytest.fixture
def aws_env(fleet: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # AWS_ENDPOINT_URL_RDS is botocore's own setting: the CLI needs no endpoint option.
    monkeypatch.setenv("AWS_ENDPOINT_URL_RDS", fleet)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.mark.usefixtures("aws_env")
def test_cli_table_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["audit", "--region", FLEET_REGION])
    out, err = capsys.readouterr()
    assert code == 1
    assert err == ""  # not a terminal: no progress
    lines = out.splitlines()
    assert lines[0].split() == [
        "RESOURCE",
        "ENGINE",
        "PARAMETER",
        "GROUP",
        "FORCE_SSL",
        "SOURCE",
        "STATE",
        "CA",
        "CA",
        "EXPIRES",
    ]
    legacy = next(line for line in lines if "legacy-crm" in line)
    assert "default.postgres14" in legacy
    assert "engine default (assumed)" in legacy
    assert "not configured" in legacy
    assert "2024-08-22 EXPIRED" in next(line for line in lines if "new-api" in line)
    assert lines[-1] == "6 of 9 effectively enforced (exit 1)"


@pytest.mark.usefixtures("aws_env")
def test_cli_json_with_progress_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    code = cli.main(["audit", "--region", FLEET_REGION, "--json"])
    report = json.loads(capsys.readouterr().out)  # stdout is pure JSON
    assert code == 1
    assert (report["enforced"], report["total"], report["exit_code"]) == (6, 9, 1)
    ledger = next(r for r in report["resources"] if r["name"] == "ledger")
    assert ledger["rds.force_ssl"] == "1"
    assert ledger["members"] == {"ledger-1": "in-sync", "ledger-2": "in-sync"}
    assert "\raudited 9/9\n" in terminal.getvalue()


# ---- least privilege and errors: what a user without the full policy sees -------------------
@pytest.mark.usefixtures("aws_env")
def test_denied_describe_certificates_costs_only_the_ca_expiry_column(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(RDSResponse, "describe_certificates", denied("DescribeCertificates"))
    code = cli.main(["audit", "--region", FLEET_REGION])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1  # the same verdict as with the full policy
    rows = [line for line in lines if line.startswith(("instance ", "cluster "))]
    assert len(rows) == 9
    assert all(line.endswith("unknown") for line in rows)
    assert lines[-2:] == [
        "6 of 9 effectively enforced (exit 1)",
        "note: CA EXPIRES is unknown: rds:DescribeCertificates was denied (grant it to see "
        "when each CA expires; nothing else depends on it)",
    ]


@pytest.mark.usefixtures("aws_env")
def test_denied_parameters_leave_those_databases_unknown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(RDSResponse, "describe_db_parameters", denied("DescribeDBParameters"))
    code = cli.main(["audit", "--region", FLEET_REGION, "--json"])
    report = json.loads(capsys.readouterr().out)
    states = {r["name"]: (r["state"], r["enforced"]) for r in report["resources"]}
    # Instances whose group is read through DescribeDBParameters: unknown, neither way.
    assert states["orders"] == ("unknown", None)
    # An instance with no group of its own needs no read; clusters use the cluster call.
    assert states["ledger"] == ("effective", True)
    assert states["search"] == ("not configured", False)
    assert code == 1  # `search` is proven not enforced
    assert report["notes"] == [
        "FORCE_SSL is unknown for 6 of 9: rds:DescribeDBParameters was denied (grant it to "
        "judge them)"
    ]


def test_unknown_rows_alone_make_exit_2(
    endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rds = client(endpoint, "ap-south-1")
    db_group(rds, "pg16-ssl", "postgres16", "1")
    instance(rds, "only", "16.9", DBParameterGroupName="pg16-ssl")
    monkeypatch.setattr(RDSResponse, "describe_db_parameters", denied("DescribeDBParameters"))
    report = audit.audit(rds)
    assert [r.enforced for r in report.rows] == [None]
    assert audit.exit_code(report.rows) == 2


@pytest.mark.usefixtures("aws_env")
@pytest.mark.parametrize("as_json", [False, True])
def test_a_denied_listing_says_which_actions_to_grant(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    monkeypatch.setattr(RDSResponse, "describe_db_clusters", denied("DescribeDBClusters"))
    code = cli.main(["audit", "--region", FLEET_REGION, *(["--json"] if as_json else [])])
    out, err = capsys.readouterr()
    assert code == 2
    if as_json:
        error = json.loads(out)["error"]
        assert error["code"] == "access-denied"
        assert error["message"].startswith("rds:DescribeDBClusters was denied: ")
        assert error["fix"] == (
            f"grant rds:DescribeDBClusters; the identity needs {aws.actions('audit')} (the "
            "README's 'IAM policy' section has a ready read-only policy)"
        )
    else:
        assert out == ""
        assert "rds:DescribeDBClusters was denied" in err
        assert "\n  fix: grant rds:DescribeDBClusters" in err


@pytest.fixture
def no_aws_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """A machine with no AWS configuration at all, and no instance metadata to fall back on."""
    for var in (
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
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.usefixtures("no_aws_config")
@pytest.mark.parametrize("command", [["audit"], ["probe", "--region", "eu-west-1"]])
def test_no_credentials_says_how_to_get_them(
    endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_RDS", endpoint)
    assert cli.main([*command, "--json"]) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "no-credentials"
    assert "AWS_PROFILE" in error["fix"]
    name = " ".join(command[:2]) if command[0] == "probe" else "audit"
    assert aws.actions(name) in error["fix"]


@pytest.mark.usefixtures("no_aws_config")
@pytest.mark.parametrize("as_json", [False, True])
def test_cli_without_a_region_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    assert cli.main(["audit", *(["--json"] if as_json else [])]) == 2
    out, err = capsys.readouterr()
    if as_json:
        report = json.loads(out)
        assert report["error"]["code"] == "no-region"
        assert "--region" in report["error"]["fix"]
    else:
        assert err.startswith("rds-force-ssl: no AWS region is configured\n  fix: pass --region")


@pytest.mark.usefixtures("aws_env")
def test_an_unreachable_api_says_what_to_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.cli.pgserver import free_port

    monkeypatch.setattr(aws, "MAX_ATTEMPTS", 1)  # no backoff between retries in a test
    monkeypatch.setenv("AWS_ENDPOINT_URL_RDS", f"http://127.0.0.1:{free_port()}")
    assert cli.main(["audit", "--region", FLEET_REGION, "--json"]) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "unreachable"
    assert error["message"].startswith("could not reach the RDS API: ")
    assert "check the region name, the network" in error["fix"]


@pytest.mark.usefixtures("aws_env")
def test_expired_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from moto.rds.exceptions import RDSClientError

    def expired(self: object) -> None:
        raise RDSClientError(
            "ExpiredToken", "The security token included in the request is expired"
        )

    monkeypatch.setattr(RDSResponse, "describe_db_clusters", expired)
    assert cli.main(["audit", "--region", FLEET_REGION]) == 2
    assert "the AWS credentials have expired (ExpiredToken)" in capsys.readouterr().err


@pytest.mark.parametrize("region", ["", "not a region!"])
def test_a_bad_region_name_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], region: str
) -> None:
    assert cli.main(["audit", "--region", region, "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "bad-region"
