"""One finding shape for everything that judges a database after deploy: ``rds-force-ssl audit
--format asff|ocsf`` and the guard's Security Hub import write the same documents from the same
``Finding``, so a one-off audit and the guard speak one language.

- ASFF, the AWS Security Finding Format that ``securityhub:BatchImportFindings`` takes
  (https://docs.aws.amazon.com/securityhub/latest/userguide/securityhub-findings-format-syntax.html).
  A finding's ``Id`` is stable per resource and check, so a later import of the same resource
  *updates* the finding: ``FAILED`` while SSL-only is not in effect, ``PASSED`` once it is
  (Security Hub then sets the workflow to RESOLVED itself), ``ARCHIVED`` when the resource is gone.
  At most 100 findings a call, 240 KB a finding; the call must come from the account that owns
  the finding (``AwsAccountId``).
- OCSF 1.1, class Compliance Finding (2003), for the engines that read OCSF (Security Lake and
  others): https://schema.ocsf.io/1.1.0/classes/compliance_finding

Stdlib only: the CLI and the guard's Lambda import this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENERATOR = "rds-force-ssl/ssl-only-in-effect"
ASFF_SCHEMA = "2018-10-08"
ASFF_TYPE = "Software and Configuration Checks/AWS Security Best Practices"
ASFF_BATCH = 100  # BatchImportFindings: at most 100 findings a call
OCSF_VERSION = "1.1.0"
PRODUCT = "rds-force-ssl"
REMEDIATION = (
    "Set the engine's SSL-only parameter in the database's parameter group (rds.force_ssl=1 for "
    "PostgreSQL) and reboot when the parameter is static; rds-force-ssl's ForceSsl construct does "
    "both under a reboot policy."
)
REMEDIATION_URL = (
    "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/PostgreSQL.Concepts.General.SSL.html"
)

# What a finding says of its resource.
FAILED = "FAILED"  # SSL-only is not in effect: plaintext may be accepted
PASSED = "PASSED"  # SSL-only is configured and in effect
UNKNOWN = "NOT_AVAILABLE"  # could not be judged (a read was denied, an engine without a setting)
GONE = "GONE"  # the resource no longer exists: the finding is archived

# ASFF resource types; RDS Proxy has none of its own in ASFF, so it is "Other".
_ASFF_RESOURCE = {"instance": "AwsRdsDbInstance", "cluster": "AwsRdsDbCluster", "proxy": "Other"}
_RESOURCE_NOUN = {"instance": "DB instance", "cluster": "DB cluster", "proxy": "DB proxy"}


@dataclass(frozen=True)
class Finding:
    """One resource's judgment, in the words both formats need."""

    account: str
    region: str
    kind: str  # "instance", "cluster" or "proxy"
    name: str  # the identifier (DBInstanceIdentifier, DBClusterIdentifier, DBProxyName)
    status: str  # FAILED, PASSED, NOT_AVAILABLE or GONE
    state: str  # what the judge saw, e.g. "pending-reboot", "not configured", "effective"
    detail: str  # one sentence: the setting, where it came from, what is owed
    engine: str = ""
    control: str | None = None  # the Security Hub control that checks the same, if any
    partition: str = "aws"
    arn: str | None = None  # as RDS gave it; built from the parts otherwise

    @property
    def resource_arn(self) -> str:
        if self.arn:
            return self.arn
        segment = {"instance": "db", "cluster": "cluster", "proxy": "db-proxy"}[self.kind]
        return f"arn:{self.partition}:rds:{self.region}:{self.account}:{segment}:{self.name}"

    @property
    def id(self) -> str:
        """Stable per resource and check: a later import updates this finding."""
        return f"{PRODUCT}/{self.resource_arn}/ssl-only"

    @property
    def title(self) -> str:
        noun = _RESOURCE_NOUN[self.kind]
        return {
            FAILED: f"RDS {noun} {self.name} accepts plaintext connections ({self.state})",
            PASSED: f"RDS {noun} {self.name} refuses plaintext connections",
            UNKNOWN: f"RDS {noun} {self.name}: SSL-only enforcement could not be judged",
            GONE: f"RDS {noun} {self.name} no longer exists",
        }[self.status]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def asff(finding: Finding, *, now: datetime, first_seen: datetime | None = None) -> dict[str, Any]:
    """The finding as BatchImportFindings takes it, imported into the owning account's own
    product ``default`` (the ARN form Security Hub gives custom findings)."""
    severity = "MEDIUM" if finding.status == FAILED else "INFORMATIONAL"
    compliance = PASSED if finding.status == GONE else finding.status
    document: dict[str, Any] = {
        "SchemaVersion": ASFF_SCHEMA,
        "Id": finding.id,
        "ProductArn": (
            f"arn:{finding.partition}:securityhub:{finding.region}:{finding.account}"
            f":product/{finding.account}/default"
        ),
        "GeneratorId": GENERATOR,
        "AwsAccountId": finding.account,
        "Types": [ASFF_TYPE],
        "CreatedAt": _iso(first_seen or now),
        "UpdatedAt": _iso(now),
        "Severity": {"Label": severity},
        "Title": finding.title[:256],
        "Description": finding.detail[:1024] or finding.title[:1024],
        "Resources": [
            {
                "Type": _ASFF_RESOURCE[finding.kind],
                "Id": finding.resource_arn,
                "Partition": finding.partition,
                "Region": finding.region,
                "Details": {"Other": _details(finding)},
            }
        ],
        "Compliance": {"Status": compliance},
        "RecordState": "ARCHIVED" if finding.status == GONE else "ACTIVE",
        "ProductFields": {"ProviderName": PRODUCT, "State": finding.state},
    }
    if finding.status == FAILED:
        document["Remediation"] = {"Recommendation": {"Text": REMEDIATION, "Url": REMEDIATION_URL}}
    if finding.control:
        document["Compliance"]["RelatedRequirements"] = [f"Security Hub {finding.control}"]
    return document


def _details(finding: Finding) -> dict[str, str]:
    # ASFF's Details.Other: string values of at most 1024 characters.
    shown = {"Kind": finding.kind, "Engine": finding.engine, "State": finding.state}
    return {key: value[:1024] for key, value in shown.items() if value}


_OCSF_STATUS = {
    FAILED: ("Fail", 3),
    PASSED: ("Pass", 1),
    UNKNOWN: ("Unknown", 0),
    GONE: ("Pass", 1),
}


def ocsf(finding: Finding, *, now: datetime, version: str = "") -> dict[str, Any]:
    """The finding as an OCSF 1.1 Compliance Finding (class 2003)."""
    millis = int(now.timestamp() * 1000)
    status, status_id = _OCSF_STATUS[finding.status]
    failed = finding.status == FAILED
    closed = finding.status in (PASSED, GONE)
    return {
        "class_uid": 2003,
        "class_name": "Compliance Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 3 if closed else 1,  # 1 Create, 3 Close
        "type_uid": 200303 if closed else 200301,
        "time": millis,
        "severity_id": 3 if failed else 1,  # 3 Medium, 1 Informational
        "severity": "Medium" if failed else "Informational",
        "status_id": 4 if closed else 1,  # 1 New, 4 Resolved
        "status": "Resolved" if closed else "New",
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": PRODUCT, "vendor_name": PRODUCT, "version": version},
        },
        "finding_info": {
            "uid": finding.id,
            "title": finding.title,
            "desc": finding.detail,
            "types": [ASFF_TYPE],
        },
        "compliance": {
            "status": status,
            "status_id": status_id,
            "control": finding.control or "",
            "requirements": [REMEDIATION_URL],
        },
        "cloud": {"provider": "AWS", "region": finding.region, "account": {"uid": finding.account}},
        "resources": [
            {
                "uid": finding.resource_arn,
                "name": finding.name,
                "type": _ASFF_RESOURCE[finding.kind],
                "region": finding.region,
                "data": {"engine": finding.engine, "state": finding.state},
            }
        ],
        "remediation": {"desc": REMEDIATION} if failed else {"desc": ""},
    }


def batches(
    documents: Sequence[dict[str, Any]], *, size: int = ASFF_BATCH
) -> Iterator[list[dict[str, Any]]]:
    """BatchImportFindings' batches: at most ``size`` (100) findings each, in order."""
    for start in range(0, len(documents), size):
        yield list(documents[start : start + size])


def counts(findings: Iterable[Finding]) -> dict[str, int]:
    """How many findings of each status, for a summary line or a metric."""
    tally: dict[str, int] = {}
    for finding in findings:
        tally[finding.status] = tally.get(finding.status, 0) + 1
    return tally
