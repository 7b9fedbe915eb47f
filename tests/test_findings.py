"""The one finding shape of the audit and the guard: ASFF as BatchImportFindings takes it (checked
by botocore's request validation against the Security Hub model, on moto) and OCSF 1.1."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from rds_force_ssl.facts import findings
from rds_force_ssl.facts.findings import FAILED, GONE, PASSED, UNKNOWN, Finding

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
ACCOUNT = "123456789012"


def finding(status: str = FAILED, *, kind: str = "instance", name: str = "orders") -> Finding:
    return Finding(
        account=ACCOUNT,
        region="eu-west-1",
        kind=kind,
        name=name,
        status=status,
        state="pending-reboot" if status == FAILED else "effective",
        detail="rds.force_ssl=1 (explicit), pending-reboot: a restart is owed",
        engine="postgres",
        control="RDS.38",
    )


@pytest.fixture
def hub() -> Iterator[object]:
    with mock_aws():
        client = boto3.client("securityhub", region_name="eu-west-1")
        client.enable_security_hub()
        yield client


def test_the_id_is_stable_per_resource_so_an_import_updates() -> None:
    assert finding(FAILED).id == finding(PASSED).id
    assert finding(FAILED).id != finding(FAILED, name="billing").id
    assert finding(kind="proxy").resource_arn == (
        f"arn:aws:rds:eu-west-1:{ACCOUNT}:db-proxy:orders"
    )


@pytest.mark.parametrize("kind", ["instance", "cluster", "proxy"])
@pytest.mark.parametrize("status", [FAILED, PASSED, UNKNOWN, GONE])
def test_every_asff_document_is_accepted(hub: object, kind: str, status: str) -> None:
    document = findings.asff(finding(status, kind=kind), now=NOW)
    answer = hub.batch_import_findings(Findings=[document])  # type: ignore[attr-defined]
    assert (answer["SuccessCount"], answer["FailedCount"]) == (1, 0)
    stored = hub.get_findings()["Findings"]  # type: ignore[attr-defined]
    assert [item["Id"] for item in stored] == [document["Id"]]
    assert stored[0]["Compliance"]["Status"] == ("PASSED" if status == GONE else status)
    assert stored[0]["RecordState"] == ("ARCHIVED" if status == GONE else "ACTIVE")


def test_a_failed_finding_says_what_to_do_and_a_passed_one_does_not() -> None:
    failed = findings.asff(finding(FAILED), now=NOW)
    passed = findings.asff(finding(PASSED), now=NOW)
    assert failed["Severity"] == {"Label": "MEDIUM"}
    assert "rds.force_ssl=1" in failed["Remediation"]["Recommendation"]["Text"]
    assert "Remediation" not in passed
    assert passed["Severity"] == {"Label": "INFORMATIONAL"}
    assert failed["Compliance"]["RelatedRequirements"] == ["Security Hub RDS.38"]


def test_batches_hold_at_most_100() -> None:
    documents = [findings.asff(finding(name=f"db{i}"), now=NOW) for i in range(250)]
    sizes = [len(batch) for batch in findings.batches(documents)]
    assert sizes == [100, 100, 50]


@pytest.mark.parametrize(
    ("status", "compliance", "closed"),
    [
        (FAILED, "Fail", False),
        (PASSED, "Pass", True),
        (UNKNOWN, "Unknown", False),
        (GONE, "Pass", True),
    ],
)
def test_ocsf_compliance_finding(status: str, compliance: str, closed: bool) -> None:
    document = findings.ocsf(finding(status), now=NOW, version="1.2.3")
    assert (document["class_uid"], document["category_uid"]) == (2003, 2)
    assert document["type_uid"] == 2003 * 100 + document["activity_id"]
    assert document["compliance"]["status"] == compliance
    assert document["status"] == ("Resolved" if closed else "New")
    assert document["time"] == int(NOW.timestamp() * 1000)
    assert document["finding_info"]["uid"] == finding(status).id
    assert document["cloud"]["account"]["uid"] == ACCOUNT


def test_counts() -> None:
    tally = findings.counts([finding(FAILED), finding(FAILED), finding(PASSED)])
    assert tally == {FAILED: 2, PASSED: 1}
