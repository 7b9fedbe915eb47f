"""What each event asks the guard to check: CloudTrail's RDS calls, RDS's own events, the sweep,
the guard's own rechecks, and SQS batches of them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rds_force_ssl.handlers import guard


def trail(name: str, error: str | None = None, **request: str) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "eventSource": "rds.amazonaws.com",
        "eventName": name,
        "requestParameters": request,
    }
    if error:
        detail["errorCode"] = error
    return {"source": "aws.rds", "detail-type": guard.CLOUDTRAIL_DETAIL_TYPE, "detail": detail}


CG = "cluster-group"
# (call, CloudTrail's request fields, what it asks to check)
CALLS = [
    ("ModifyDBParameterGroup", {"dBParameterGroupName": "pg"}, {("db-group", "pg")}),
    ("ResetDBParameterGroup", {"dBParameterGroupName": "pg"}, {("db-group", "pg")}),
    ("ModifyDBClusterParameterGroup", {"dBClusterParameterGroupName": "c"}, {(CG, "c")}),
    ("ResetDBClusterParameterGroup", {"dBClusterParameterGroupName": "c"}, {(CG, "c")}),
    ("ModifyDBInstance", {"dBInstanceIdentifier": "a"}, {("instance", "a")}),
    ("ModifyDBInstance", {"dBInstanceIdentifier": "a", "newDBInstanceIdentifier": "b"},
     {("instance", "a"), ("instance", "b")}),
    ("ModifyDBCluster", {"dBClusterIdentifier": "c"}, {("cluster", "c")}),
    ("CreateDBInstance", {"dBInstanceIdentifier": "a"}, {("instance", "a")}),
    ("CreateDBCluster", {"dBClusterIdentifier": "c"}, {("cluster", "c")}),
    ("CreateDBInstanceReadReplica", {"dBInstanceIdentifier": "r"}, {("instance", "r")}),
    ("RestoreDBInstanceFromDBSnapshot", {"dBInstanceIdentifier": "a"}, {("instance", "a")}),
    ("RestoreDBInstanceToPointInTime", {"targetDBInstanceIdentifier": "t"}, {("instance", "t")}),
    ("RestoreDBClusterFromSnapshot", {"dBClusterIdentifier": "c"}, {("cluster", "c")}),
    ("RestoreDBClusterToPointInTime", {"dBClusterIdentifier": "c"}, {("cluster", "c")}),
    ("CreateDBProxy", {"dBProxyName": "p"}, {("proxy", "p")}),
    ("ModifyDBProxy", {"dBProxyName": "p"}, {("proxy", "p")}),
    ("RebootDBInstance", {"dBInstanceIdentifier": "a"}, {("instance", "a")}),
    ("DeleteDBInstance", {"dBInstanceIdentifier": "a"}, {("instance", "a")}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "request_", "wanted"), CALLS)
def test_each_cloudtrail_call_names_what_it_touches(
    name: str, request_: dict[str, str], wanted: set[guard.Target]
) -> None:
    assert name in guard.API_CALLS
    assert guard.targets_of(trail(name, **request_)).targets == wanted


def test_every_call_the_rule_matches_is_mapped_and_tested() -> None:
    assert {c[0] for c in CALLS} <= set(guard.API_CALLS)
    for fields in guard.API_CALLS.values():
        assert fields
        assert all(kind in ("instance", "cluster", "proxy", "db-group", "cluster-group")
                   for kind, _ in fields)  # fmt: skip


def test_a_failed_call_changed_nothing() -> None:
    event = trail("ModifyDBInstance", "AccessDenied", dBInstanceIdentifier="a")
    assert guard.targets_of(event).targets == set()


def test_an_unknown_call_or_event_asks_nothing() -> None:
    assert guard.targets_of(trail("DescribeDBInstances")).targets == set()
    assert guard.targets_of({"detail-type": "Something Else"}).targets == set()


@pytest.mark.parametrize(
    ("detail_type", "source_type", "arn", "wanted"),
    [
        ("RDS DB Instance Event", "DB_INSTANCE", "arn:aws:rds:r:1:db:a", ("instance", "a")),
        ("RDS DB Cluster Event", "CLUSTER", "arn:aws:rds:r:1:cluster:a", ("cluster", "a")),
        ("RDS DB Parameter Group Event", "DB_PARAMETER_GROUP", "arn:aws:rds:r:1:pg:a",
         ("db-group", "a")),
        ("RDS DB Parameter Group Event", "DB_PARAMETER_GROUP", "arn:aws:rds:r:1:cluster-pg:a",
         ("cluster-group", "a")),
        ("RDS DB Proxy Event", "DB_PROXY", "arn:aws:rds:r:1:db-proxy:prx-1", ("proxy", "a")),
    ],
)  # fmt: skip
def test_rds_own_events(detail_type: str, source_type: str, arn: str, wanted: guard.Target) -> None:
    event = {
        "source": "aws.rds",
        "detail-type": detail_type,
        "detail": {"SourceType": source_type, "SourceIdentifier": "a", "SourceArn": arn},
    }
    assert detail_type in guard.RDS_EVENT_TYPES
    assert guard.targets_of(event).targets == {wanted}


def test_sweeps_and_rechecks() -> None:
    assert guard.targets_of({guard.MESSAGE_KEY: guard.SWEEP}).sweep
    assert guard.targets_of({"detail-type": "Scheduled Event", "source": "aws.events"}).sweep
    asked = guard.targets_of({guard.MESSAGE_KEY: guard.RECHECK, "targets": [["instance", "a"]]})
    assert asked.targets == {("instance", "a")}
    assert asked.rechecks == {("instance", "a")}


def test_an_sqs_batch_is_merged_and_deduplicated_and_a_bad_body_skipped() -> None:
    body = json.dumps(trail("ModifyDBInstance", dBInstanceIdentifier="a"))
    records = [{"messageId": str(n), "body": body} for n in range(5)]
    records.append({"messageId": "x", "body": "not json"})
    records.append({"messageId": "s", "body": json.dumps({guard.MESSAGE_KEY: guard.SWEEP})})
    asked = guard.requests_of({"Records": records})
    assert asked.targets == {("instance", "a")}
    assert asked.sweep


def test_nothing_asked_means_no_call() -> None:
    class Untouchable:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"called {name}")

    svc = guard.Services(rds=Untouchable(), marks=Untouchable(), account="1", region="r")
    out = guard.run({"Records": []}, svc, now=0.0)
    assert out.checked == []


def test_a_restart_call_carries_when_it_happened() -> None:
    """Evidence that a remediation waiting for a restart is in effect: CloudTrail's eventTime
    of a reboot or start; other calls, or a reboot without a readable time, are none."""
    reboot = trail("RebootDBInstance", dBInstanceIdentifier="a")
    reboot["detail"]["eventTime"] = "2026-12-07T03:00:00Z"
    assert guard.targets_of(reboot).restarts == {("instance", "a"): 1796612400.0}
    start = trail("StartDBCluster", dBClusterIdentifier="c")
    start["detail"]["eventTime"] = "2026-12-07T03:00:00+00:00"
    assert guard.targets_of(start).restarts == {("cluster", "c"): 1796612400.0}
    modify = trail("ModifyDBInstance", dBInstanceIdentifier="a")
    modify["detail"]["eventTime"] = "2026-12-07T03:00:00Z"
    assert guard.targets_of(modify).restarts == {}
    reboot["detail"]["eventTime"] = "yesterday"
    assert guard.targets_of(reboot).restarts == {}
    assert guard.targets_of(reboot).targets == {("instance", "a")}  # still checked
