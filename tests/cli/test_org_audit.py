"""`rds-force-ssl audit` across an AWS Organization, on moto in server mode (Organizations, STS,
RDS, Security Hub): each member account's databases live in moto's backend for that account, and
the audit reaches them only through the role it assumes there.

Faults are injected on moto's side (a refused role, a region that answers AuthFailure, a
throttling storm, credentials refused as expired), so the CLI's own botocore clients, retries and
error shapes are what is tested.
"""

from __future__ import annotations

import io
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from moto.rds.exceptions import RDSClientError
from moto.rds.responses import RDSResponse
from moto.securityhub.responses import SecurityHubResponse
from moto.sts.exceptions import STSClientError
from moto.sts.responses import TokenResponse

from rds_force_ssl import cli
from rds_force_ssl.cli import org
from rds_force_ssl.facts import findings
from tests.cli.moto_fleets import (
    AWS_VARIABLES,
    ORG_REGIONS,
    ORG_ROLE,
    build_org,
    db_group,
    describe_certificates,
    instance,
    member_client,
    rds_client,
)

# moto warns that AccessDenied is not in RDS's or STS's error shapes: IAM sends it, as mimicked.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Exception\\(RDSClientError\\):UserWarning"),
    pytest.mark.filterwarnings("ignore:Exception\\(STSClientError\\):UserWarning"),
    pytest.mark.filterwarnings("ignore:Exception\\(SecurityHubClientError\\):UserWarning"),
]
WEST, SOUTH = ORG_REGIONS
RDS_READS = (
    "describe_db_clusters",
    "describe_db_instances",
    "describe_db_parameters",
    "describe_db_proxies",
)


class Faults:
    """What moto answers instead, per (account, region) or per account, and every RDS read it
    served, per (account, region)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reads: Counter[tuple[str, str]] = Counter()
        self.region: dict[tuple[str, str], str] = {}  # -> error code, on every read
        self.once: dict[tuple[str, str], str] = {}  # -> error code, on the first read only
        self.throttle_every_other: set[tuple[str, str]] = set()
        self.refused_roles: set[str] = set()  # accounts whose role cannot be assumed
        self.sts_code: str | None = None  # what STS answers every AssumeRole
        self.assumes: Counter[str] = Counter()  # AssumeRole calls, per account of the role
        self.hub_denied: set[str] = set()

    def rds(self, name: str) -> Callable[[RDSResponse], Any]:
        original = getattr(RDSResponse, name)

        def answer(response: RDSResponse) -> Any:
            key = (response.current_account, response.region)
            with self.lock:
                self.reads[key] += 1
                code = self.region.get(key) or self.once.pop(key, None)
                if key in self.throttle_every_other and self.reads[key] % 2:
                    code = "Throttling"
            if code:
                raise RDSClientError(code, f"injected {code}")
            return original(response)

        return answer

    def assume_role(self) -> Callable[[TokenResponse], Any]:
        original = TokenResponse.assume_role

        def answer(response: TokenResponse) -> Any:
            arn = response._get_param("RoleArn")
            with self.lock:
                self.assumes[arn.split(":")[4]] += 1
            if self.sts_code:
                raise STSClientError(self.sts_code, "The security token included is invalid")
            if arn.split(":")[4] in self.refused_roles:
                raise STSClientError(
                    "AccessDenied", f"User is not authorized to perform: sts:AssumeRole on {arn}"
                )
            return original(response)

        return answer

    def batch_import(self) -> Callable[[SecurityHubResponse], Any]:
        original = SecurityHubResponse.batch_import_findings

        def answer(response: SecurityHubResponse) -> Any:
            if response.current_account in self.hub_denied:
                from moto.securityhub.exceptions import SecurityHubClientError

                raise SecurityHubClientError("AccessDeniedException", "not authorized")
            return original(response)

        return answer


@pytest.fixture(scope="module")
def endpoint(moto_endpoint: str) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RDSResponse, "describe_certificates", describe_certificates, raising=False)
        yield moto_endpoint


@pytest.fixture
def faults(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Faults:
    f = Faults()
    for name in RDS_READS:
        monkeypatch.setattr(RDSResponse, name, f.rds(name))
    monkeypatch.setattr(TokenResponse, "assume_role", f.assume_role())
    monkeypatch.setattr(SecurityHubResponse, "batch_import_findings", f.batch_import())
    # botocore's retry backoff, which the throttling storm would otherwise wait out.
    monkeypatch.setattr(
        "botocore.retries.standard.ExponentialBackoff.delay_amount", lambda self, ctx: 0
    )
    return f


@pytest.fixture
def aws_env(endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return endpoint


@pytest.fixture(scope="module")
def fleet(endpoint: str) -> tuple[str, list[str]]:
    """Three member accounts under one OU, two databases in each of two regions; the third
    account's group sets rds.force_ssl=0."""
    return build_org(endpoint, accounts=3, databases=2, not_enforced=frozenset({2}))


@pytest.fixture(scope="module")
def good_fleet(endpoint: str) -> tuple[str, list[str]]:
    """Two member accounts, every database enforced."""
    return build_org(endpoint, accounts=2, databases=1, name="good")


def audit_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdout", out)
        patch.setattr("sys.stderr", err)
        code = cli.main(["audit", *argv])
    return code, out.getvalue(), err.getvalue()


def scope_args(ou: str, *extra: str) -> list[str]:
    return [
        "--accounts",
        "org",
        "--ou",
        ou,
        "--role-name",
        ORG_ROLE,
        "--regions",
        ",".join(ORG_REGIONS),
        *extra,
    ]


@pytest.mark.usefixtures("aws_env")
def test_every_account_region_is_judged_through_its_role(
    fleet: tuple[str, list[str]], faults: Faults
) -> None:
    ou, ids = fleet
    code, out, err = audit_cli(*scope_args(ou, "--json"))
    document = json.loads(out)
    assert err == ""  # a pipe gets nothing but the result
    assert code == 1  # the third account's databases are not enforced
    got = {
        (ar["account"], ar["region"]): sorted((r["name"], r["enforced"]) for r in ar["resources"])
        for ar in document["account_regions"]
    }
    assert got == {
        (a, region): [("db-0", n != 2), ("db-1", n != 2)]
        for n, a in enumerate(ids)
        for region in ORG_REGIONS
    }
    assert (document["enforced"], document["total"]) == (8, 12)
    assert document["not_audited"] == []
    # One worker per account-region reads it: pages + one group each, never again.
    assert faults.reads == Counter({(a, r): 4 for a in ids for r in ORG_REGIONS})


@pytest.mark.usefixtures("aws_env")
def test_all_enforced_exits_0_and_the_table_has_a_section_per_account_region(
    good_fleet: tuple[str, list[str]], faults: Faults
) -> None:
    ou, ids = good_fleet
    code, out, _ = audit_cli(*scope_args(ou))
    assert code == 0
    for a in ids:
        for region in ORG_REGIONS:
            assert f"== account {a}, {region} ==\n" in out
    assert "TOTAL: 4 of 4 account-regions audited; 4 of 4 effectively enforced (exit 0)" in out
    assert "not audited" not in out


@pytest.mark.usefixtures("aws_env")
def test_a_refused_role_and_an_opt_in_region_cost_only_their_rows(
    fleet: tuple[str, list[str]], faults: Faults
) -> None:
    ou, ids = fleet
    faults.refused_roles.add(ids[0])
    faults.region[(ids[1], SOUTH)] = "AuthFailure"
    code, out, _ = audit_cli(*scope_args(ou, "--json"))
    document = json.loads(out)
    assert code == 2  # not everything was audited, even though account 3 is not enforced
    reasons = {(n["account"], n["region"]): n["reason"] for n in document["not_audited"]}
    assert set(reasons) == {(ids[0], WEST), (ids[0], SOUTH), (ids[1], SOUTH)}
    assert "could not be assumed: sts:AssumeRole was denied" in reasons[(ids[0], WEST)]
    assert reasons[(ids[0], SOUTH)] == reasons[(ids[0], WEST)]
    assert f"role/{ORG_ROLE}" in reasons[(ids[0], WEST)]
    assert "refused the account's credentials (AuthFailure)" in reasons[(ids[1], SOUTH)]
    assert "opt-in region" in reasons[(ids[1], SOUTH)]
    # The rows judged elsewhere are all there.
    audited = {(ar["account"], ar["region"]) for ar in document["account_regions"]}
    assert audited == {(ids[1], WEST), (ids[2], WEST), (ids[2], SOUTH)}
    assert (document["enforced"], document["total"]) == (2, 6)

    code, text, _ = audit_cli(*scope_args(ou))
    assert code == 2
    assert "TOTAL: 3 of 6 account-regions audited; 2 of 6 effectively enforced (exit 2)" in text
    section = text[text.index("not audited:\n") :]
    assert f"  {ids[1]} {SOUTH}: {SOUTH} refused the account's credentials" in section


@pytest.mark.usefixtures("aws_env")
def test_a_denied_listing_is_not_audited_with_the_action_to_grant(
    good_fleet: tuple[str, list[str]], faults: Faults
) -> None:
    ou, ids = good_fleet
    faults.region[(ids[0], WEST)] = "AccessDenied"
    code, out, _ = audit_cli(*scope_args(ou, "--json"))
    document = json.loads(out)
    assert code == 2
    [missing] = document["not_audited"]
    assert (missing["account"], missing["region"]) == (ids[0], WEST)
    assert missing["reason"].startswith("rds:DescribeDBClusters was denied: grant it to the role")
    assert document["total"] == 3


@pytest.mark.usefixtures("aws_env")
def test_a_throttling_storm_is_absorbed_by_the_retries(
    good_fleet: tuple[str, list[str]], faults: Faults
) -> None:
    ou, ids = good_fleet
    faults.throttle_every_other.update((a, r) for a in ids for r in ORG_REGIONS)
    code, out, _ = audit_cli(*scope_args(ou, "--json", "--parallel", "4"))
    document = json.loads(out)
    assert (code, document["not_audited"], document["total"]) == (0, [], 4)
    # Every read was answered Throttling once before it succeeded.
    assert faults.reads == Counter({(a, r): 8 for a in ids for r in ORG_REGIONS})


def test_credentials_expiring_mid_run_are_renewed_before_use(
    aws_env: str, good_fleet: tuple[str, list[str]], faults: Faults
) -> None:
    _, ids = good_fleet
    caller = botocore.session.Session()
    sts: Any = caller.create_client("sts")
    issued: list[datetime] = []

    def assume(**kwargs: Any) -> Any:
        answer = sts.assume_role(**kwargs)
        if not issued:
            # The first credentials have a minute left: botocore must renew them before use.
            answer["Credentials"]["Expiration"] = datetime.now(UTC) + timedelta(minutes=1)
        issued.append(answer["Credentials"]["Expiration"])
        return answer

    sessions = org.Sessions(caller, role_name=ORG_ROLE, external_id=None, assume=assume)
    results = org.run([(ids[0], WEST), (ids[0], SOUTH)], org.Auditor(sessions), parallel=2)
    assert [r.error for r in results] == [None, None]
    assert [len(r.rows) for r in results] == [1, 1]
    assert sessions.assumed == {ids[0]: 2}  # the near-expiry set was replaced, once


@pytest.mark.usefixtures("aws_env")
def test_credentials_refused_as_expired_are_renewed_and_the_region_read_again(
    good_fleet: tuple[str, list[str]], faults: Faults
) -> None:
    _, ids = good_fleet
    faults.once[(ids[1], WEST)] = "ExpiredToken"
    caller = botocore.session.Session()
    sessions = org.Sessions(caller, role_name=ORG_ROLE, external_id=None)
    [result] = org.run([(ids[1], WEST)], org.Auditor(sessions), parallel=1)
    assert (result.error, len(result.rows)) == (None, 1)
    assert sessions.assumed == {ids[1]: 2}
    # A role, the refused call, a new role, then the five reads (with DescribeCertificates).
    assert result.calls == 1 + 1 + 1 + 5


@pytest.mark.usefixtures("aws_env")
def test_an_interrupted_run_resumes_from_its_checkpoint(
    fleet: tuple[str, list[str]], faults: Faults, tmp_path: Path
) -> None:
    ou, ids = fleet
    checkpoint = tmp_path / "audit.jsonl"
    caller = botocore.session.Session()
    targets = [(a, r) for a in ids for r in ORG_REGIONS]
    seen: list[tuple[str, str]] = []

    def interrupt_after_two(result: org.Result) -> None:
        seen.append((result.account, result.region))
        if len(seen) == 2:
            raise KeyboardInterrupt

    sessions = org.Sessions(caller, role_name=ORG_ROLE, external_id=None)
    with pytest.raises(KeyboardInterrupt):
        org.run(
            targets,
            org.Auditor(sessions),
            parallel=1,
            checkpoint=org.Checkpoint(checkpoint),
            on_result=interrupt_after_two,
        )
    lines = checkpoint.read_text().splitlines()
    assert [(json.loads(x)["account"], json.loads(x)["region"]) for x in lines] == seen
    before = Counter(faults.reads)

    code, out, _ = audit_cli(*scope_args(ou, "--json", "--checkpoint", str(checkpoint)))
    document = json.loads(out)
    assert code == 1
    assert document["total"] == 12  # the resumed rows are in the output
    reread = {key for key in targets if faults.reads[key] > before[key]}
    assert reread == set(targets) - set(seen)
    assert len(checkpoint.read_text().splitlines()) == 6


@pytest.mark.usefixtures("aws_env")
def test_a_not_audited_account_region_is_tried_again_on_resume(
    good_fleet: tuple[str, list[str]], faults: Faults, tmp_path: Path
) -> None:
    ou, ids = good_fleet
    checkpoint = str(tmp_path / "audit.jsonl")
    faults.region[(ids[0], WEST)] = "AuthFailure"
    assert audit_cli(*scope_args(ou, "--checkpoint", checkpoint))[0] == 2
    del faults.region[(ids[0], WEST)]
    before = Counter(faults.reads)
    code, out, _ = audit_cli(*scope_args(ou, "--checkpoint", checkpoint))
    assert code == 0
    assert "TOTAL: 4 of 4 account-regions audited; 4 of 4 effectively enforced (exit 0)" in out
    assert {k for k in faults.reads if faults.reads[k] > before[k]} == {(ids[0], WEST)}


@pytest.mark.usefixtures("aws_env")
def test_asff_is_what_security_hub_accepts_and_ocsf_says_the_same(
    fleet: tuple[str, list[str]], faults: Faults, endpoint: str
) -> None:
    ou, ids = fleet
    code, out, err = audit_cli(*scope_args(ou, "--format", "asff"))
    assert (code, err) == (1, "")
    documents = json.loads(out)
    assert len(documents) == 12
    by_account = Counter((d["AwsAccountId"], d["Compliance"]["Status"]) for d in documents)
    assert by_account == Counter(
        {(ids[0], "PASSED"): 4, (ids[1], "PASSED"): 4, (ids[2], "FAILED"): 4}
    )
    mine = [
        d for d in documents if d["AwsAccountId"] == ids[2] and d["Resources"][0]["Region"] == WEST
    ]
    hub = member_client(endpoint, ids[2], "securityhub", WEST)
    answer = hub.batch_import_findings(Findings=mine)
    assert (answer["SuccessCount"], answer["FailedCount"]) == (2, 0)

    code, out, _ = audit_cli(*scope_args(ou, "--format", "ocsf"))
    ocsf = json.loads(out)
    assert code == 1
    assert Counter(d["compliance"]["status"] for d in ocsf) == Counter({"Pass": 8, "Fail": 4})
    assert {d["finding_info"]["uid"] for d in ocsf} == {d["Id"] for d in documents}


@pytest.mark.usefixtures("aws_env")
def test_security_hub_import_goes_to_each_owning_account(
    good_fleet: tuple[str, list[str]], faults: Faults, endpoint: str
) -> None:
    ou, ids = good_fleet
    code, out, _ = audit_cli(*scope_args(ou, "--json", "--security-hub"))
    assert code == 0
    document = json.loads(out)
    assert [ar["security_hub_imported"] for ar in document["account_regions"]] == [1, 1, 1, 1]
    for a in ids:
        stored = member_client(endpoint, a, "securityhub", WEST).get_findings()["Findings"]
        assert [f["AwsAccountId"] for f in stored] == [a]
        assert stored[0]["Id"] == f"rds-force-ssl/arn:aws:rds:{WEST}:{a}:db:db-0/ssl-only"

    faults.hub_denied.add(ids[1])
    code, out, _ = audit_cli(*scope_args(ou, "--security-hub"))
    assert code == 2
    section = out[out.index("not audited:\n") :]
    assert (
        f"  {ids[1]} {WEST}: Security Hub import: securityhub:BatchImportFindings was denied"
        in section
    )
    assert "4 of 4 effectively enforced" in out  # the judged rows are all still shown


def test_format_works_for_one_region_too(aws_env: str, faults: Faults) -> None:
    code, out, _ = audit_cli("--region", "il-central-1", "--format", "asff")
    # Nothing in that region of the caller's account: an empty list, inconclusive.
    assert (code, json.loads(out)) == (2, [])
    rds = rds_client(aws_env, "il-central-1")
    db_group(rds, "pg16-ssl", "postgres16", "1")
    instance(rds, "solo", "16.9", DBParameterGroupName="pg16-ssl")
    code, out, _ = audit_cli("--region", "il-central-1", "--format", "asff")
    [document] = json.loads(out)
    assert code == 0
    assert (document["AwsAccountId"], document["Compliance"]["Status"]) == (
        "123456789012",
        "PASSED",
    )
    assert document["Resources"][0]["Id"] == "arn:aws:rds:il-central-1:123456789012:db:solo"


@pytest.mark.usefixtures("aws_env")
def test_parallel_bounds_the_calls_in_flight_and_one_account_region_has_one(
    fleet: tuple[str, list[str]], faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --parallel 3, three account-regions are read at once (the first reads wait for one
    another at a barrier, which would break if fewer ran), and never more, nor two calls at once
    against one account-region."""
    ou, _ = fleet
    barrier = threading.Barrier(3, timeout=30)
    lock = threading.Lock()
    in_flight: Counter[tuple[str, str]] = Counter()
    arrivals = [0]
    peak = {"all": 0, "one": 0}
    original = RDSResponse.describe_db_instances

    def answer(response: RDSResponse) -> Any:
        key = (response.current_account, response.region)
        with lock:
            arrivals[0] += 1
            first_wave = arrivals[0] <= 3
            in_flight[key] += 1
            peak["all"] = max(peak["all"], sum(in_flight.values()))
            peak["one"] = max(peak["one"], in_flight[key])
        try:
            if first_wave:
                barrier.wait()  # broken (and the run incomplete) unless three arrive together
            return original(response)
        finally:
            with lock:
                in_flight[key] -= 1

    monkeypatch.setattr(RDSResponse, "describe_db_instances", answer)
    code, out, _ = audit_cli(*scope_args(ou, "--json", "--parallel", "3"))
    assert (code, json.loads(out)["total"]) == (1, 12)
    assert peak["all"] == 3
    assert peak["one"] == 1


@pytest.mark.usefixtures("aws_env")
def test_scope_errors_are_reported_at_once_with_the_fix(faults: Faults) -> None:
    code, _, err = audit_cli(
        "--accounts", "12345,org", "--ou", "ou-x", "--regions", "all,mars-1", "--parallel", "0"
    )
    assert code == 2
    for said in (
        "either 'org' or account ids",
        "not 12-digit account ids: '12345'",
        "--ou needs --accounts org",
        "--accounts needs --role-name",
        "either 'all' or region names",
        "not AWS region names: 'mars-1'",
        "--parallel must be between 1 and 256",
    ):
        assert said in err, said
    fix = err.split("\n  fix: ", 1)[1]
    for said in (  # each problem's own fix, not one example for all
        "pass --accounts org, or only ids",
        "write each account id as its 12 digits",
        "add --accounts org, or drop --ou",
        "add --role-name RdsForceSslAudit",
        "pass --regions all, or only names",
        "pass region codes such as eu-west-1",
        "e.g. --parallel ",
    ):
        assert said in fix, said
    code, _, err = audit_cli("--accounts", "12", "--role-name", "R")
    assert code == 2
    assert err.endswith(
        "not 12-digit account ids: '12'\n"
        "  fix: write each account id as its 12 digits, leading zeros included\n"
    )
    code, _, err = audit_cli("--region", "eu-west-1", "--regions", "eu-west-1")
    assert code == 2
    assert "--region and the scope options exclude each other" in err


@pytest.mark.usefixtures("aws_env")
def test_regions_all_are_the_caller_enabled_regions(faults: Faults) -> None:
    caller = botocore.session.Session()
    ec2: Any = caller.create_client("ec2", region_name="us-east-1")
    expected = sorted(r["RegionName"] for r in ec2.describe_regions()["Regions"])
    targets = org.resolve(org.Scope(regions=(org.ALL,)), caller)
    assert targets == [("123456789012", r) for r in expected]
    assert len(expected) > 10


def test_exclude_and_ou_narrow_the_organization(
    aws_env: str, fleet: tuple[str, list[str]], good_fleet: tuple[str, list[str]]
) -> None:
    caller = botocore.session.Session()
    ou, ids = fleet
    scope = org.Scope(
        accounts=(org.ORG,), ous=(ou,), exclude=(ids[1],), regions=(WEST,), role_name=ORG_ROLE
    )
    assert org.resolve(scope, caller) == [(ids[0], WEST), (ids[2], WEST)]
    everyone = org.resolve(org.Scope(accounts=(org.ORG,), regions=(WEST,), role_name="R"), caller)
    assert {a for a, _ in everyone} >= {*ids, *good_fleet[1], "123456789012"}


def test_progress_on_a_terminal_only() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    from rds_force_ssl.cli.commands import audit as command

    assert command.org_progress(io.StringIO(), 2) is None
    tty = Tty()
    show = command.org_progress(tty, 2)
    assert show is not None
    show(org.Result("111111111111", WEST, rows=[], error="refused"))
    show(org.Result("111111111111", SOUTH))
    assert tty.getvalue().split("\r")[1:] == [
        "audited 1/2 account-regions, 0 databases judged, 1 errors",
        "audited 2/2 account-regions, 0 databases judged, 1 errors\n",
    ]


def test_a_finding_per_row() -> None:
    from rds_force_ssl.cli import audit

    def row(enforced: bool | None) -> audit.Row:
        return audit.Row(
            kind="instance",
            name="orders",
            engine="postgres",
            version="16.9",
            groups=("g",),
            parameter="rds.force_ssl",
            value="1",
            source="explicit",
            apply_status="pending-reboot",
            state="pending-reboot",
            enforced=enforced,
            control="RDS.38",
            ca=None,
            ca_valid_till=None,
        )

    statuses = [
        org.finding(row(e), account="111111111111", region="cn-north-1").status
        for e in (True, False, None)
    ]
    assert statuses == [findings.PASSED, findings.FAILED, findings.UNKNOWN]
    made = org.finding(row(False), account="111111111111", region="cn-north-1")
    assert made.resource_arn == "arn:aws-cn:rds:cn-north-1:111111111111:db:orders"
    assert made.detail == "rds.force_ssl=1 (explicit), pending-reboot"
    assert org.row_from_json(json.loads(json.dumps(org.row_json(row(None))))) == row(None)


@pytest.mark.usefixtures("aws_env")
def test_the_calls_made_are_the_documented_policies(
    good_fleet: tuple[str, list[str]], faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the caller and the member roles call is what docs/cli/iam.md grants them
    (test_readme_policy.py checks the page against aws.CALLER_ACTIONS and MEMBER_ACTIONS)."""
    from moto.core.responses import BaseResponse

    from rds_force_ssl.cli import aws

    ou, ids = good_fleet
    made: set[tuple[str, str]] = set()
    original = BaseResponse.call_action

    def record(response: BaseResponse) -> Any:
        made.add((response.current_account, f"{response.service_name}:{response._get_action()}"))
        return original(response)

    monkeypatch.setattr(BaseResponse, "call_action", record)
    code, _, _ = audit_cli(*scope_args(ou, "--security-hub"))
    assert code == 0
    caller = {action for account, action in made if account not in ids}
    member = {action for account, action in made if account in ids}
    assert caller == {
        "organizations:ListAccountsForParent",
        "organizations:ListOrganizationalUnitsForParent",
        "sts:AssumeRole",
    }
    assert caller <= {a for actions in aws.CALLER_ACTIONS.values() for a in actions}
    documented = {*aws.MEMBER_ACTIONS["audit"], *aws.MEMBER_ACTIONS["audit --security-hub"]}
    # Every one of them but the cluster groups' read: this fleet has no Aurora cluster.
    assert member == documented - {"rds:DescribeDBClusterParameters"}


# ---- probe: the same scope for its discovery ---------------------------------------------------
def test_probe_discovers_every_account_region_of_the_scope(
    aws_env: str, fleet: tuple[str, list[str]], faults: Faults
) -> None:
    ou, ids = fleet
    faults.refused_roles.add(ids[0])
    faults.region[(ids[1], SOUTH)] = "AuthFailure"
    scope = org.Scope(
        accounts=(org.ORG,), ous=(ou,), role_name=ORG_ROLE, regions=ORG_REGIONS, parallel=4
    )
    found = org.discover(scope, botocore.session.Session())
    resources = sorted(t.resource for t in found.targets)
    assert resources == sorted(
        f"{a} {r} instance db-{d}"
        for a, r in ((ids[1], WEST), (ids[2], WEST), (ids[2], SOUTH))
        for d in (0, 1)
    )
    assert found.complete is False
    missing = [n for n in found.notes if "not discovered" in n]
    assert len(missing) == 3
    assert any(n.startswith(f"{ids[1]} {SOUTH} not discovered: {SOUTH} refused") for n in missing)
    assert any(
        n.startswith(f"{ids[0]} {WEST} not discovered: role ") and "was denied" in n
        for n in missing
    )


@pytest.mark.usefixtures("aws_env")
def test_probe_with_a_scope_that_finds_nothing_is_inconclusive(
    fleet: tuple[str, list[str]], faults: Faults
) -> None:
    ou, ids = fleet
    faults.refused_roles.update(ids)
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdout", out)
        patch.setattr("sys.stderr", err)
        code = cli.main(["probe", *scope_args(ou, "--json")])
    document = json.loads(out.getvalue())
    assert code == 2
    assert document["endpoints"] == []
    assert document["complete"] is False
    assert "no endpoint of a probe-able engine found in the scope" in document["notes"]
    assert sum("not discovered: role" in n for n in document["notes"]) == 6


@pytest.mark.usefixtures("aws_env")
def test_probe_refuses_a_bad_scope_before_any_call(faults: Faults) -> None:
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdout", out)
        patch.setattr("sys.stderr", err)
        code = cli.main(["probe", "--accounts", "111111111111", "--region", "eu-west-1"])
    assert code == 2
    assert "--region and the scope options exclude each other" in err.getvalue()
    assert faults.reads == Counter()


@pytest.mark.usefixtures("aws_env")
def test_caller_credentials_sts_rejects_end_the_run_with_the_fix(
    fleet: tuple[str, list[str]], faults: Faults
) -> None:
    """Not one "not audited" per account: the caller's own credentials are the problem."""
    ou, _ = fleet
    faults.sts_code = "InvalidClientTokenId"
    code, out, err = audit_cli(*scope_args(ou))
    assert (code, out) == (2, "")
    assert "AWS rejected the credentials (InvalidClientTokenId)" in err
    assert "fix: check AWS_PROFILE" in err
    assert faults.reads == Counter()


@pytest.mark.usefixtures("aws_env")
def test_a_refused_role_is_asked_once_per_account(
    fleet: tuple[str, list[str]], faults: Faults
) -> None:
    ou, ids = fleet
    faults.refused_roles.add(ids[0])
    code, out, _ = audit_cli(*scope_args(ou, "--json"))
    not_audited = {(n["account"], n["region"]) for n in json.loads(out)["not_audited"]}
    assert code == 2
    assert not_audited == {(ids[0], WEST), (ids[0], SOUTH)}
    # Once per account, refused or not, however many regions it has.
    assert faults.assumes == Counter({a: 1 for a in ids})


class FakeHub:
    """A Security Hub client that records each BatchImportFindings and refuses what it is told."""

    def __init__(self, refuse: int = 0) -> None:
        self.batches: list[int] = []
        self.refuse = refuse

    def batch_import_findings(self, *, Findings: list[dict[str, Any]]) -> dict[str, Any]:
        self.batches.append(len(Findings))
        failed = min(self.refuse, len(Findings))
        return {
            "SuccessCount": len(Findings) - failed,
            "FailedCount": failed,
            "FailedFindings": [{"Id": "x", "ErrorCode": "InvalidInput", "ErrorMessage": "bad"}]
            * failed,
        }


class FakeSessions(org.Sessions):
    def __init__(self, hub: FakeHub) -> None:
        self.hub = hub

    def client(self, credentials: Any, service: str, region: str) -> Any:
        assert service == "securityhub"
        return self.hub


def rows(n: int) -> list[Any]:
    from rds_force_ssl.cli import audit

    return [
        audit.Row(
            kind="instance",
            name=f"db-{i}",
            engine="postgres",
            version="16.9",
            groups=("g",),
            parameter="rds.force_ssl",
            value="1",
            source="explicit",
            apply_status="in-sync",
            state="effective",
            enforced=True,
            control="RDS.38",
            ca=None,
            ca_valid_till=None,
        )
        for i in range(n)
    ]


def test_security_hub_import_is_batched_and_paced() -> None:
    hub, waits = FakeHub(), list[float]()
    auditor = org.Auditor(FakeSessions(hub), security_hub=True, sleep=waits.append)
    result = org.Result("111111111111", WEST, rows=rows(250))
    auditor._import(None, result)
    assert hub.batches == [100, 100, 50]
    assert (result.imported, result.import_error, result.calls) == (250, None, 3)
    # Each call after the first waits out the rest of its 0.1 s: at most 10 a second.
    assert len(waits) == 2
    assert all(0 < w <= org.IMPORT_INTERVAL_S for w in waits)


def test_findings_refused_by_security_hub_are_an_import_error() -> None:
    hub = FakeHub(refuse=1)
    auditor = org.Auditor(FakeSessions(hub), security_hub=True, sleep=lambda _: None)
    result = org.Result("111111111111", WEST, rows=rows(3))
    auditor._import(None, result)
    assert hub.batches == [3]  # no further batch once one is refused
    assert result.import_error == (
        "Security Hub import: 1 of 3 findings refused (InvalidInput: bad); 2 of 3 imported"
    )
    assert org.OrgReport([result]).exit_code() == 2


@pytest.mark.usefixtures("aws_env")
def test_ctrl_c_exits_130_and_the_checkpoint_resumes(
    fleet: tuple[str, list[str]], faults: Faults, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ou, ids = fleet
    checkpoint = tmp_path / "audit.jsonl"
    original = org.Checkpoint.append
    pressed: list[bool] = []

    def interrupted(self: org.Checkpoint, result: org.Result) -> None:
        original(self, result)
        if not pressed:
            pressed.append(True)
            raise KeyboardInterrupt  # Ctrl-C, just after the first account-region is kept

    monkeypatch.setattr(org.Checkpoint, "append", interrupted)
    code, out, err = audit_cli(*scope_args(ou, "--checkpoint", str(checkpoint), "--parallel", "2"))
    assert (code, out) == (130, "")
    assert (
        f"interrupted, nothing was concluded; rerun the same command to resume from {checkpoint}"
        in err
    )
    # The first, and the one still in flight when Ctrl-C came: nothing new was started.
    kept = {
        (e["account"], e["region"]) for e in map(json.loads, checkpoint.read_text().splitlines())
    }
    assert len(kept) == 2
    before = Counter(faults.reads)
    code, out, _ = audit_cli(*scope_args(ou, "--checkpoint", str(checkpoint), "--json"))
    assert (code, json.loads(out)["total"]) == (1, 12)
    reread = {key for key in faults.reads if faults.reads[key] > before[key]}
    assert reread == {(a, r) for a in ids for r in ORG_REGIONS} - kept


@pytest.mark.usefixtures("aws_env")
def test_a_denied_organization_listing_ends_the_run_with_the_policy_to_grant(
    fleet: tuple[str, list[str]], faults: Faults, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.organizations.exceptions import OrganizationsClientError
    from moto.organizations.responses import OrganizationsResponse

    def denied(self: OrganizationsResponse) -> str:
        raise OrganizationsClientError("AccessDeniedException", "not authorized")

    monkeypatch.setattr(OrganizationsResponse, "list_accounts_for_parent", denied)
    ou, _ = fleet
    code, out, err = audit_cli(*scope_args(ou))
    assert (code, out) == (2, "")
    assert "listing the scope failed: ListAccountsForParent was denied" in err
    assert "fix: grant the caller policy in docs/cli/iam.md" in err


@pytest.mark.usefixtures("aws_env")
@pytest.mark.parametrize("argv", [["--accounts", "org", "--role-name", "R"], ["--security-hub"]])
def test_no_credentials_across_accounts_names_the_callers_and_the_roles_actions(
    argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    code, _, err = audit_cli(*argv, "--regions", "eu-west-1")
    assert code == 2
    message, fix = err.split("\n  fix: ")
    assert message.startswith("rds-force-ssl: no usable AWS credentials")
    assert fix.startswith("set AWS_PROFILE (after `aws sso login` or `aws configure`)")
    for action in (
        "organizations:ListAccounts",
        "sts:AssumeRole",
        "the role assumed in each account",
        "rds:DescribeDBParameters",
        "securityhub:BatchImportFindings for --security-hub",
    ):
        assert action in fix, action
