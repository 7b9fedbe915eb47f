"""`rds-force-ssl audit` over real HTTP against moto in server mode: botocore's own serialisation,
paginators and error shapes, on a fleet of every engine, versions, parameter groups and proxies.

moto keeps every group in-sync, so the pending-reboot and applying cases live in
test_audit_sim.py.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from moto.rds.responses import RDSResponse

from rds_force_ssl import cli
from rds_force_ssl.cli import audit, aws
from rds_force_ssl.facts import engines as engine_table
from tests.cli.moto_fleets import (
    AWS_VARIABLES,
    CERTIFICATES,
    ENGINES_REGION,
    FLEET_REGION,
    RST,
    build_engines_fleet,
    build_fleet,
    client,
    db_group,
    denied,
    describe_certificates,
    instance,
)

# moto warns that AccessDenied and ExpiredToken are not in RDS's own error shapes: IAM and STS
# send them, which is what the tests mimic.
pytestmark = pytest.mark.filterwarnings("ignore:Exception\\(RDSClientError\\):UserWarning")


@pytest.fixture(scope="module")
def endpoint(moto_endpoint: str) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RDSResponse, "describe_certificates", describe_certificates, raising=False)
        yield moto_endpoint


def counted(rds: Any) -> Counter[str]:
    """Count the API operations this client sends over HTTP."""
    calls: Counter[str] = Counter()
    rds.meta.events.register("before-call.rds.*", lambda model, **_: calls.update([model.name]))
    return calls


# The fleets are built in tests/cli/moto_fleets.py, which the docs' audit samples share.
@pytest.fixture(scope="module")
def fleet(endpoint: str) -> str:
    build_fleet(endpoint)
    return endpoint


@pytest.fixture(scope="module")
def engines_fleet(endpoint: str) -> str:
    build_engines_fleet(endpoint)
    return endpoint


def test_every_engine_and_proxy(engines_fleet: str) -> None:
    rows = {r.name: r for r in audit.audit(client(engines_fleet, ENGINES_REGION)).rows}
    got = {
        n: (r.kind, r.setting, r.source, r.state, r.enforced, r.control) for n, r in rows.items()
    }
    assert got == {
        "shop": ("instance", f"{RST}=1", "explicit", "effective", True, "RDS.39"),
        "shop-84": (
            "instance",
            f"{RST}=0",
            "engine default (assumed)",
            "not configured",
            False,
            "RDS.39",
        ),
        # ON (AWS's MariaDB page) and 1 (what the groups store) both count as on; 0 does not.
        "wiki": ("instance", f"{RST}=ON", "explicit", "effective", True, "RDS.44"),
        "blog": ("instance", f"{RST}=0", "explicit", "not configured", False, "RDS.44"),
        # RDS does not report a default: the table's belief never counts as enforced.
        "forum": ("instance", f"{RST}=1", "engine default (assumed)", "unknown", None, "RDS.44"),
        "old-maria": ("instance", "-", "-", "unsupported version", False, "RDS.44"),
        "erp-sql": (
            "instance",
            "rds.force_ssl=0",
            "engine default (assumed)",
            "not configured",
            False,
            "RDS.41",
        ),
        "erp-sql-tls": ("instance", "rds.force_ssl=1", "explicit", "effective", True, "RDS.41"),
        # Never passed silently: not applicable, judged neither way, with the reason.
        "erp-ora": ("instance", "-", "-", "not applicable", None, None),
        "catalog": ("cluster", f"{RST}=ON", "explicit", "effective", True, None),
        "pg-pool": ("proxy", "RequireTLS=true", "proxy setting", "effective", True, "RDS.43"),
        "my-pool": (
            "proxy",
            "RequireTLS=false",
            "proxy setting",
            "not configured",
            False,
            "RDS.43",
        ),
    }
    assert rows["catalog"].members == {"catalog-1": "in-sync"}
    assert rows["pg-pool"].engine == "POSTGRESQL"
    assert "RDS for Oracle" in (rows["erp-ora"].reason or "")
    assert "Appendix.Oracle.Options.SSL.html" in (rows["erp-ora"].reason or "")
    assert "needs RDS for MariaDB 10.5 or later" in (rows["old-maria"].reason or "")


@pytest.mark.usefixtures("engines_fleet")
def test_cli_every_engine_table_and_notes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], endpoint: str
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_RDS", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    code = cli.main(["audit", "--region", ENGINES_REGION])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    ora = next(line for line in lines if line.startswith("instance erp-ora"))
    assert ora.split()[:3] == ["instance", "erp-ora", "oracle-se2"]
    assert "not applicable" in ora
    assert lines[lines.index("5 of 12 effectively enforced (exit 1)") + 1 :] == [
        "note: not counted either way (instance forum): the group leaves the SSL setting at "
        "the engine default, which RDS does not report; the value shown is the engine table's, "
        "not RDS's (set it explicitly, as ForceSsl does, to judge them)",
        "note: unsupported version, so not counted as enforced (instance old-maria): "
        "require_secure_transport needs RDS for MariaDB 10.5 or later; upgrade the engine "
        f"({engine_table.MARIADB.source})",
        "note: not applicable, so not counted as enforced (instance erp-ora): "
        f"{engine_table.ORACLE.not_applicable} ({engine_table.ORACLE.source})",
    ]


def test_not_applicable_alone_is_exit_2_never_0(endpoint: str) -> None:
    rds = client(endpoint, "ca-central-1")
    instance(rds, "only-ora", "19.0.0.0.ru-2024-10.rur-2024-10.r1", engine="oracle-se2")
    report = audit.audit(rds)
    assert [(r.state, r.enforced) for r in report.rows] == [("not applicable", None)]
    assert audit.exit_code(report.rows, complete=report.complete) == 2


def test_fleet_rows(fleet: str) -> None:
    rows = {r.name: r for r in audit.audit(client(fleet, FLEET_REGION)).rows}
    got = {n: (r.kind, r.value, r.source, r.state, r.enforced) for n, r in rows.items()}
    assert got == {
        "orders": ("instance", "1", "explicit", "effective", True),
        "billing": ("instance", "1", "explicit", "effective", True),
        "reports": ("instance", "1", "explicit", "effective", True),
        "legacy-crm": ("instance", "0", "engine default (assumed)", "not configured", False),
        "new-api": ("instance", "1", "engine default (assumed)", "unknown", None),
        "warehouse": ("instance", "0", "explicit", "not configured", False),
        "ledger": ("cluster", "1", "explicit", "effective", True),
        "events": ("cluster", "1", "engine default (assumed)", "unknown", None),
        "search": ("cluster", "0", "engine default (assumed)", "not configured", False),
    }
    assert {r.parameter for r in rows.values()} == {"rds.force_ssl"}
    assert {r.control for r in rows.values() if r.kind == "instance"} == {"RDS.38"}
    assert {r.control for r in rows.values() if r.kind == "cluster"} == {
        None
    }  # nothing checks Aurora
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
    # What the documented policy (docs/cli/iam.md) grants `audit`, and nothing else.
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
        "SETTING",
        "SOURCE",
        "STATE",
        "CONTROL",
        "CA",
        "CA",
        "EXPIRES",
    ]
    legacy = next(line for line in lines if "legacy-crm" in line)
    assert "default.postgres14" in legacy
    assert "engine default (assumed)" in legacy
    assert "not configured" in legacy
    assert "2024-08-22 EXPIRED" in next(line for line in lines if "new-api" in line)
    assert lines[-2:] == [
        "4 of 9 effectively enforced (exit 1)",
        "note: not counted either way (instance new-api, cluster events): the group leaves the "
        "SSL setting at the engine default, which RDS does not report; the value shown is the "
        "engine table's, not RDS's (set it explicitly, as ForceSsl does, to judge them)",
    ]


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
    assert (report["enforced"], report["total"], report["exit_code"]) == (4, 9, 1)
    ledger = next(r for r in report["resources"] if r["name"] == "ledger")
    assert (ledger["parameter"], ledger["value"], ledger["security_hub"]) == (
        "rds.force_ssl",
        "1",
        None,
    )
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
    summary = lines.index("4 of 9 effectively enforced (exit 1)")
    assert lines[summary + 1] == (
        "note: CA EXPIRES is unknown: rds:DescribeCertificates was denied (grant it to see "
        "when each CA expires; nothing else depends on it)"
    )


@pytest.mark.usefixtures("aws_env")
def test_stock_moto_certificates_500_costs_only_the_ca_expiry_column(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """moto does not implement DescribeCertificates: it answers HTTP 500 with a page botocore
    cannot parse (ResponseParserError, not a BotoCoreError), which used to end the audit in a
    traceback and exit 1."""
    monkeypatch.delattr(RDSResponse, "describe_certificates")
    code = cli.main(["audit", "--region", FLEET_REGION])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1  # the same verdict as with the full policy
    rows = [line for line in lines if line.startswith(("instance ", "cluster "))]
    assert len(rows) == 9
    assert all(line.endswith("unknown") for line in rows)
    note = lines[lines.index("4 of 9 effectively enforced (exit 1)") + 1]
    assert note.startswith("note: CA EXPIRES is unknown: rds:DescribeCertificates failed (")
    assert note.endswith("(run again to see them; nothing else depends on it)")


def failing(code: str) -> Any:
    """A moto response method that fails the way no IAM policy can fix."""
    from moto.rds.exceptions import RDSClientError

    def answer(self: object) -> None:
        raise RDSClientError(code, "something went wrong")

    return answer


@pytest.mark.usefixtures("aws_env")
def test_failed_parameters_leave_those_databases_unknown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(RDSResponse, "describe_db_parameters", failing("InvalidParameterValue"))
    code = cli.main(["audit", "--region", FLEET_REGION, "--json"])
    report = json.loads(capsys.readouterr().out)
    states = {r["name"]: (r["state"], r["enforced"]) for r in report["resources"]}
    assert states["orders"] == ("unknown", None)
    assert states["search"] == ("not configured", False)
    assert code == 1
    assert report["notes"] == [
        "SETTING is unknown for 6 of 9: rds:DescribeDBParameters failed (An error occurred "
        "(InvalidParameterValue) when calling the DescribeDBParameters operation: something "
        "went wrong) (run again to judge them)",
        "not counted either way (cluster events): the group leaves the SSL setting at the "
        "engine default, which RDS does not report; the value shown is the engine table's, not "
        "RDS's (set it explicitly, as ForceSsl does, to judge them)",
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
        "SETTING is unknown for 6 of 9: rds:DescribeDBParameters was denied (grant it to "
        "judge them)",
        "not counted either way (cluster events): the group leaves the SSL setting at the "
        "engine default, which RDS does not report; the value shown is the engine table's, not "
        "RDS's (set it explicitly, as ForceSsl does, to judge them)",
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
            "docs page 'IAM policy for the CLI', docs/cli/iam.md, has a ready read-only policy)"
        )
    else:
        assert out == ""
        assert "rds:DescribeDBClusters was denied" in err
        assert "\n  fix: grant rds:DescribeDBClusters" in err


@pytest.fixture
def no_aws_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """A machine with no AWS configuration at all, and no instance metadata to fall back on."""
    for var in AWS_VARIABLES:
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


def test_failed_proxies_leave_the_run_incomplete(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rds = client(endpoint, "ap-southeast-2")
    db_group(rds, "pg16-ssl", "postgres16", "1")
    instance(rds, "fine", "16.9", DBParameterGroupName="pg16-ssl")
    monkeypatch.setattr(RDSResponse, "describe_db_proxies", failing("InvalidParameterValue"))
    report = audit.audit(rds)
    assert [r.enforced for r in report.rows] == [True]
    assert not report.complete
    assert report.notes[0].startswith("RDS proxies were not audited: rds:DescribeDBProxies failed")
    assert audit.exit_code(report.rows, complete=report.complete) == 2


def test_denied_proxies_leave_the_run_incomplete(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rds = client(endpoint, "ap-northeast-2")
    db_group(rds, "pg16-ssl", "postgres16", "1")
    instance(rds, "fine", "16.9", DBParameterGroupName="pg16-ssl")
    monkeypatch.setattr(RDSResponse, "describe_db_proxies", denied("DescribeDBProxies"))
    report = audit.audit(rds)
    assert [r.enforced for r in report.rows] == [True]
    assert not report.complete
    assert report.notes == [
        "RDS proxies were not audited: rds:DescribeDBProxies was denied (grant it to include them)"
    ]
    # Every database it saw is enforced, but a proxy it could not see might not be.
    assert audit.exit_code(report.rows, complete=report.complete) == 2
