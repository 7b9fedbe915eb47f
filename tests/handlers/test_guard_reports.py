"""How the guard reports: Security Hub batches of at most 100 at about 10 calls a second, a
metric per finding kind, and a finding kind for each judgment."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from rds_force_ssl.facts import findings as fmt
from rds_force_ssl.handlers import guard
from simulator.cloudtrail import SimMarks


class Hub:
    def __init__(self) -> None:
        self.batches: list[int] = []
        self.at: list[float] = []
        self.now = 0.0

    def batch_import_findings(self, **kwargs: Any) -> dict[str, Any]:
        self.batches.append(len(kwargs["Findings"]))
        self.at.append(self.now)
        return {"SuccessCount": len(kwargs["Findings"]), "FailedFindings": []}


def finding(n: int, status: str = fmt.FAILED, state: str = "not configured") -> fmt.Finding:
    return fmt.Finding(
        account="1", region="r", kind="instance", name=f"db-{n}", status=status, state=state,
        detail="d",
    )  # fmt: skip


def test_security_hub_gets_batches_of_100_at_most_10_a_second() -> None:
    hub = Hub()

    def sleep(seconds: float) -> None:
        hub.now += seconds

    svc = guard.Services(
        rds=None, marks=SimMarks(), account="1", region="r", hub=hub, sleep=sleep,
        clock=lambda: hub.now,
    )  # fmt: skip
    out = guard.Outcome(findings=[finding(n) for n in range(250)])
    guard.report(svc, out, now=1000.0)
    assert hub.batches == [100, 100, 50]
    assert out.imported == 250
    gaps = [b - a for a, b in itertools.pairwise(hub.at)]
    assert all(gap >= 1 / guard.HUB_CALLS_PER_S - 1e-9 for gap in gaps)


@pytest.mark.parametrize(
    ("kind", "status", "state", "metric"),
    [
        ("instance", fmt.FAILED, "not configured", guard.NOT_CONFIGURED),
        ("cluster", fmt.FAILED, "pending-reboot", guard.NOT_IN_EFFECT),
        ("instance", fmt.FAILED, "applying", guard.NOT_IN_EFFECT),
        ("instance", fmt.FAILED, "unsupported version", guard.UNSUPPORTED),
        ("proxy", fmt.FAILED, "not configured", guard.PROXY_TLS_OFF),
        ("proxy", fmt.FAILED, "modifying", guard.NOT_IN_EFFECT),
        ("instance", fmt.UNKNOWN, "unknown", guard.UNJUDGED),
        ("instance", fmt.UNKNOWN, "not applicable", guard.NOT_APPLICABLE),
        ("instance", fmt.PASSED, "effective", None),
        ("instance", fmt.GONE, "deleted", None),
    ],
)
def test_each_judgment_counts_in_one_metric(
    kind: str, status: str, state: str, metric: str | None
) -> None:
    made = fmt.Finding(
        account="1", region="r", kind=kind, name="x", status=status, state=state, detail="d"
    )
    assert guard.kind_of(made) == metric


def test_the_metrics_are_put_once_a_run_with_their_sum() -> None:
    class Metrics:
        def __init__(self) -> None:
            self.calls: list[dict[str, Any]] = []

        def put_metric_data(self, **kwargs: Any) -> None:
            self.calls.append(kwargs)

    metrics = Metrics()
    svc = guard.Services(rds=None, marks=SimMarks(), account="1", region="r", metrics=metrics)
    out = guard.Outcome(
        findings=[
            finding(1),
            finding(2),
            finding(3, state="pending-reboot"),
            finding(4, fmt.PASSED),
            finding(5, fmt.UNKNOWN, state="not applicable"),  # an Oracle database
            finding(6, fmt.UNKNOWN, state="unknown"),  # an engine default RDS does not report
        ],
        no_setting={"instance:db-6"},
    )
    guard.report(svc, out, now=1000.0)
    (call,) = metrics.calls
    assert call["Namespace"] == guard.NAMESPACE
    values = {d["MetricName"]: d["Value"] for d in call["MetricData"]}
    assert values == {
        guard.NOT_CONFIGURED: 2.0,
        guard.NOT_IN_EFFECT: 1.0,
        guard.PROXY_TLS_OFF: 0.0,
        guard.UNSUPPORTED: 0.0,
        guard.UNJUDGED: 0.0,
        guard.NOT_APPLICABLE: 2.0,
        guard.NOT_ENFORCED: 3.0,  # nothing to judge is no drift: the alarm does not see it
    }


def test_a_proxy_finding_keeps_its_id_when_the_proxy_is_gone() -> None:
    """RDS's proxy ARN carries a resource id (prx-...) that a deleted proxy no longer shows: the
    Id is built from the name, so the FAILED finding and its archiving are one finding."""
    from rds_force_ssl.handlers.judge import proxy_verdict

    svc = guard.Services(rds=None, marks=SimMarks(), account="1", region="r")
    listed = proxy_verdict(
        {
            "DBProxyName": "pool",
            "DBProxyArn": "arn:aws:rds:r:1:db-proxy:prx-0a1b",
            "RequireTLS": False,
        }
    )
    failed = guard._finding(listed, svc)
    gone = guard._gone("proxy", "pool", svc)
    assert failed.status == fmt.FAILED
    assert failed.id == gone.id == "rds-force-ssl/arn:aws:rds:r:1:db-proxy:pool/ssl-only"


class FlakyHub:
    """BatchImportFindings that raises while ``error`` is set, and refuses the Ids in
    ``refuse``."""

    def __init__(self) -> None:
        self.error: str | None = None
        self.refuse: set[str] = set()
        self.kept: dict[str, dict[str, Any]] = {}

    def batch_import_findings(self, **kwargs: Any) -> dict[str, Any]:
        if self.error:
            from simulator.world import client_error

            raise client_error("BatchImportFindings", self.error, "no", 401)
        failed = [{"Id": d["Id"], "ErrorCode": "InvalidInput"} for d in kwargs["Findings"]
                  if d["Id"] in self.refuse]  # fmt: skip
        for d in kwargs["Findings"]:
            if d["Id"] not in self.refuse:
                self.kept[d["Id"]] = d
        return {"SuccessCount": len(kwargs["Findings"]) - len(failed), "FailedFindings": failed}


def test_an_archive_that_failed_to_import_is_sent_again() -> None:
    """The status is kept only once Security Hub accepted it: a failed archive is not taken
    for done, so the next sweep (which goes by the kept status) archives it."""
    hub, marks = FlakyHub(), SimMarks()
    svc = guard.Services(rds=None, marks=marks, account="1", region="r", hub=hub)
    guard.report(svc, guard.Outcome(findings=[finding(1)]), now=1000.0)
    gone = fmt.Finding(
        account="1", region="r", kind="instance", name="db-1", status=fmt.GONE, state="deleted",
        detail="d",
    )  # fmt: skip
    hub.error = "ThrottlingException"
    guard.report(svc, guard.Outcome(findings=[gone]), now=2000.0)
    assert marks.known() == {"instance:db-1": fmt.FAILED}  # the sweep looks for it again
    hub.error = None
    guard.report(svc, guard.Outcome(findings=[gone]), now=3000.0)
    (doc,) = hub.kept.values()
    assert doc["RecordState"] == "ARCHIVED"
    assert marks.known() == {"instance:db-1": fmt.GONE}


def test_a_refused_finding_is_not_kept_as_reported() -> None:
    hub, marks = FlakyHub(), SimMarks()
    svc = guard.Services(rds=None, marks=marks, account="1", region="r", hub=hub)
    hub.refuse = {finding(2).id}
    out = guard.Outcome(findings=[finding(1), finding(2)])
    guard.report(svc, out, now=1000.0)
    assert marks.known() == {"instance:db-1": fmt.FAILED}
    assert "Security Hub refused 1 finding(s): InvalidInput" in out.problems


def test_security_hub_off_is_announced_once_not_every_run() -> None:
    from simulator.cloudtrail import SimTopic

    hub, topic = FlakyHub(), SimTopic()
    svc = guard.Services(
        rds=None, marks=SimMarks(), account="1", region="r", hub=hub, topic=topic, topic_arn="t"
    )
    hub.error = "InvalidAccessException"
    for n in range(3):
        out = guard.Outcome(findings=[finding(1)])
        guard.report(svc, out, now=1000.0 + n)
        assert any("InvalidAccessException" in p for p in out.problems)  # the log, each run
    assert len(topic.messages) == 1  # the FAILED finding and the condition, in one message
    assert "InvalidAccessException" in topic.messages[0]["Message"]
    hub.error = None
    guard.report(svc, guard.Outcome(findings=[finding(1)]), now=2000.0)
    assert len(topic.messages) == 2
    assert (
        "resolved: securityhub:BatchImportFindings InvalidAccessException"
        in (topic.messages[1]["Message"])
    )
    guard.report(svc, guard.Outcome(findings=[finding(1)]), now=3000.0)
    assert len(topic.messages) == 2
