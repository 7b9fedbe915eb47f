"""The guard on the RDS simulator, end to end: CloudTrail's delay, the queue and its batching
window, the per-database minute, Security Hub, CloudWatch and SNS (simulator/cloudtrail.py).

Every drift kind is raised as a FAILED finding and resolved (PASSED, or archived once the
database is gone) when it is fixed; what the simulator shows that moto cannot (pending-reboot,
applying, throttling, IAM) is tested here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from rds_force_ssl.handlers import guard
from simulator import Fault, Iam, RdsSimulator, Statement
from simulator.cloudtrail import GuardWorld
from simulator.rds import arn

DELAY = 300.0  # CloudTrail's typical delivery


def fleet() -> RdsSimulator:
    sim = RdsSimulator()
    sim.add_group("pg16", {"rds.force_ssl": "1"})
    sim.add_group("pg16-tuned", {"rds.force_ssl": "0", "work_mem": "64"})
    sim.add_instance("orders", groups={"pg16": "in-sync"})
    sim.add_group("my84", {"require_secure_transport": "1"})
    sim.add_instance("shop", groups={"my84": "in-sync"}, engine="mysql", engine_version="8.4.6")
    sim.add_group("apg16", {"rds.force_ssl": "1"}, cluster=True)
    sim.add_cluster(
        "ledger", group="apg16", writer="ledger-1", readers=("ledger-2",), status="in-sync"
    )
    sim.add_proxy("pool")
    sim.set_parameters("default.postgres14", {"rds.force_ssl": "0"}, source="engine-default")
    return sim


def started(**kwargs: object) -> tuple[RdsSimulator, GuardWorld]:
    """The fleet, swept once: everything PASSED."""
    sim = fleet()
    world = GuardWorld(sim, delay=DELAY, **kwargs)  # type: ignore[arg-type]
    world.put({guard.MESSAGE_KEY: guard.SWEEP})
    sim.advance(30)
    for kind, name in (("instance", "orders"), ("instance", "shop"), ("cluster", "ledger")):
        assert world.status(kind, name) == "PASSED", (kind, name)
    assert world.status("proxy", "pool") == "PASSED"
    return sim, world


def reboot(sim: RdsSimulator, world: GuardWorld, ident: str) -> None:
    sim.reboot_db_instance(DBInstanceIdentifier=ident)
    world.api_call("RebootDBInstance", DBInstanceIdentifier=ident)


@dataclass(frozen=True)
class Drift:
    name: str
    kind: str  # the finding's resource kind
    ident: str
    metric: str
    state: str  # what the failed finding says
    drift: Callable[[RdsSimulator, GuardWorld], None]
    fix: Callable[[RdsSimulator, GuardWorld], None]
    resolved: str = "PASSED"


def _param_off(sim: RdsSimulator, world: GuardWorld) -> None:
    sim.modify_group("pg16", {"rds.force_ssl": "0"})
    world.api_call("ModifyDBParameterGroup", DBParameterGroupName="pg16")


def _param_on_and_restart(sim: RdsSimulator, world: GuardWorld) -> None:
    sim.modify_group("pg16", {"rds.force_ssl": "1"})
    world.api_call("ModifyDBParameterGroup", DBParameterGroupName="pg16")
    sim.advance(DELAY + 120)
    reboot(sim, world, "orders")


def _mysql_off(sim: RdsSimulator, world: GuardWorld) -> None:
    sim.modify_group("my84", {"require_secure_transport": "0"})
    world.api_call("ModifyDBParameterGroup", DBParameterGroupName="my84")


def _mysql_on(sim: RdsSimulator, world: GuardWorld) -> None:
    sim.modify_group("my84", {"require_secure_transport": "1"})  # dynamic: no restart
    world.api_call("ModifyDBParameterGroup", DBParameterGroupName="my84")


def _swap(sim: RdsSimulator, world: GuardWorld) -> None:
    sim.modify_instance("orders", group="pg16-tuned", seconds=30)
    world.api_call("ModifyDBInstance", DBInstanceIdentifier="orders")


def _swap_back(sim: RdsSimulator, world: GuardWorld) -> None:
    sim.modify_instance("orders", group="pg16", seconds=30)
    world.api_call("ModifyDBInstance", DBInstanceIdentifier="orders")
    sim.advance(DELAY + 120)
    reboot(sim, world, "orders")


def _reset(sim: RdsSimulator, world: GuardWorld) -> None:
    sim.reset_group("apg16", "rds.force_ssl", "0")
    world.api_call("ResetDBClusterParameterGroup", DBClusterParameterGroupName="apg16")


def _cluster_on(sim: RdsSimulator, world: GuardWorld) -> None:
    sim.modify_group("apg16", {"rds.force_ssl": "1"})
    world.api_call("ModifyDBClusterParameterGroup", DBClusterParameterGroupName="apg16")


def _create_unprotected(sim: RdsSimulator, world: GuardWorld) -> None:
    sim.add_instance("adhoc", groups={"default.postgres14": "in-sync"}, engine_version="14.12")
    world.api_call("CreateDBInstance", DBInstanceIdentifier="adhoc")


def _delete_adhoc(sim: RdsSimulator, world: GuardWorld) -> None:
    sim.delete_instance("adhoc")
    world.api_call("DeleteDBInstance", DBInstanceIdentifier="adhoc")


def _proxy_off(sim: RdsSimulator, world: GuardWorld) -> None:
    sim.set_proxy_tls("pool", False, seconds=20)
    world.api_call("ModifyDBProxy", DBProxyName="pool")


def _proxy_on(sim: RdsSimulator, world: GuardWorld) -> None:
    sim.set_proxy_tls("pool", True, seconds=20)
    world.api_call("ModifyDBProxy", DBProxyName="pool")


def _create_pending(sim: RdsSimulator, world: GuardWorld) -> None:
    """Created with the right group, never restarted: configured, not in effect."""
    sim.add_instance("fresh", groups={"pg16": "pending-reboot"})
    world.api_call("CreateDBInstance", DBInstanceIdentifier="fresh")


DRIFTS = [
    Drift("parameter turned off", "instance", "orders", guard.NOT_CONFIGURED,
          "not configured", _param_off, _param_on_and_restart),
    Drift("dynamic parameter turned off", "instance", "shop", guard.NOT_CONFIGURED,
          "not configured", _mysql_off, _mysql_on),
    Drift("group swapped", "instance", "orders", guard.NOT_CONFIGURED,
          "not configured", _swap, _swap_back),
    Drift("cluster group reset", "cluster", "ledger", guard.NOT_CONFIGURED,
          "not configured", _reset, _cluster_on),
    Drift("unprotected database created", "instance", "adhoc", guard.NOT_CONFIGURED,
          "not configured", _create_unprotected, _delete_adhoc, resolved="ARCHIVED"),
    Drift("proxy RequireTLS off", "proxy", "pool", guard.PROXY_TLS_OFF,
          "not configured", _proxy_off, _proxy_on),
    Drift("configured but pending-reboot", "instance", "fresh", guard.NOT_IN_EFFECT,
          "pending-reboot", _create_pending, lambda sim, world: reboot(sim, world, "fresh")),
]  # fmt: skip


@pytest.mark.parametrize("drift", DRIFTS, ids=[d.name for d in DRIFTS])
def test_each_drift_is_raised_then_resolved(drift: Drift) -> None:
    sim, world = started()
    drift.drift(sim, world)
    sim.advance(DELAY + 90)
    assert world.status(drift.kind, drift.ident) == "FAILED"
    finding = world.hub.of(drift.kind, drift.ident)
    assert finding is not None
    assert finding["ProductFields"]["State"] == drift.state
    assert finding["Severity"]["Label"] == "MEDIUM"
    assert world.metrics.total(drift.metric) >= 1
    assert world.metrics.total(guard.NOT_ENFORCED) >= 1
    assert any(f"{drift.kind}:{drift.ident}" in m["Message"] for m in world.topic.messages)
    first_id = finding["Id"]

    drift.fix(sim, world)
    sim.advance(DELAY + 300)
    assert world.status(drift.kind, drift.ident) == drift.resolved
    again = world.hub.of(drift.kind, drift.ident)
    assert again is not None
    assert again["Id"] == first_id  # one finding, updated
    # The guard never restarts anything: only the fixes' own reboots happened. Without
    # remediate it changes nothing at all.
    assert all(r in ("orders", "fresh") for r in sim.reboots())
    assert {c for c in sim.call_names() if not c.startswith("Describe")} <= {"RebootDBInstance"}


def test_an_aurora_member_added_by_hand_is_judged_through_its_cluster() -> None:
    sim, world = started()
    sim.add_member("ledger", "ledger-3", status="pending-reboot")
    world.api_call("CreateDBInstance", DBInstanceIdentifier="ledger-3")
    sim.advance(DELAY + 30)
    doc = world.hub.of("cluster", "ledger")
    assert doc is not None
    assert doc["Compliance"]["Status"] == "FAILED"
    assert doc["ProductFields"]["State"] == "pending-reboot"
    assert world.hub.of("instance", "ledger-3") is None  # a member is not a finding of its own
    reboot(sim, world, "ledger-3")
    sim.advance(DELAY + 300)
    assert world.status("cluster", "ledger") == "PASSED"


def test_the_same_event_delivered_again_costs_no_second_check() -> None:
    sim, world = started()
    swept = world.checks_of("instance:orders")
    sim.modify_group("pg16", {"rds.force_ssl": "0"})
    for _ in range(3):  # CloudTrail or EventBridge delivering it again
        world.api_call("ModifyDBParameterGroup", DBParameterGroupName="pg16")
    sim.advance(DELAY + 30)
    assert world.checks_of("instance:orders") == swept + 1
    assert world.status("instance", "orders") == "FAILED"


def test_an_event_arriving_after_the_fix_judges_what_rds_shows_now() -> None:
    """Out of order: the "off" call's event comes after the "on" call's; the check reads RDS."""
    sim, world = started()
    sim.modify_group("my84", {"require_secure_transport": "0"})
    world.api_call("ModifyDBParameterGroup", delay=DELAY + 200, DBParameterGroupName="my84")
    sim.advance(60)
    sim.modify_group("my84", {"require_secure_transport": "1"})
    world.api_call("ModifyDBParameterGroup", delay=DELAY, DBParameterGroupName="my84")
    swept = world.checks_of("instance:shop")
    sim.advance(DELAY + 400)
    assert world.checks_of("instance:shop") >= swept + 2
    assert world.status("instance", "shop") == "PASSED"


def test_a_burst_of_500_events_costs_at_most_one_check_per_database_a_minute() -> None:
    sim, world = started(sweep_every=None)
    for n in range(50):
        sim.add_instance(f"app-{n}", groups={"pg16": "in-sync"})
    sim.modify_group("pg16", {"rds.force_ssl": "0"})
    for n in range(500):  # a mass change: 500 calls over 100 s, delivered with the same delay
        world.api_call("ModifyDBParameterGroup", delay=DELAY + n * 0.2, DBParameterGroupName="pg16")
    start = sim.now
    sim.advance(DELAY + 600)
    checks: dict[str, list[float]] = {}
    for outcome, at in zip(world.outcomes, _times(world), strict=True):
        for key in outcome.checked:
            if at > start:
                checks.setdefault(key, []).append(at)
    assert len(checks) == 51  # orders and the 50 apps
    for key, times in checks.items():
        assert all(b - a >= guard.EVERY_S for a, b in itertools.pairwise(times)), key
        assert len(times) <= 3, key  # 100 s of events: a check, then one deferred recheck
    assert all(world.status("instance", f"app-{n}") == "FAILED" for n in range(50))
    # One listing per invocation, not per event.
    assert sim.call_names().count("DescribeDBInstances") <= world.invocations + 1


def _times(world: GuardWorld) -> list[float]:
    return world.ran_at


def test_throttling_is_not_retried_in_a_loop() -> None:
    """Throttled past botocore's retries: one delayed recheck (throttled too), then nothing
    until the hourly sweep, which finds RDS answering again."""
    sim, world = started()
    sim.faults.append(Fault("DescribeDBInstances", "throttle", until=sim.now + 1800))
    sim.modify_group("pg16", {"rds.force_ssl": "0"})
    world.api_call("ModifyDBInstance", DBInstanceIdentifier="orders")
    listed = sim.call_names().count("DescribeDBInstances")
    sim.advance(1800)
    assert any("failed (Throttling)" in p for o in world.outcomes for p in o.problems)
    assert sim.call_names().count("DescribeDBInstances") == listed + 2  # the event, one recheck
    assert world.status("instance", "orders") == "PASSED"  # not judged yet
    sim.advance(1800)
    assert world.status("instance", "orders") == "FAILED"


def test_a_database_deleted_mid_check_is_archived() -> None:
    sim, world = started()
    sim.delete_instance("orders", seconds=600)  # listed as deleting while the guard looks
    world.api_call("DeleteDBInstance", DBInstanceIdentifier="orders")
    sim.advance(DELAY + 30)
    assert world.status("instance", "orders") == "ARCHIVED"
    sim.advance(600)
    world.put({guard.MESSAGE_KEY: guard.SWEEP})
    sim.advance(30)
    assert world.status("instance", "orders") == "ARCHIVED"


def test_a_group_deleted_mid_check_is_unjudged_not_a_crash() -> None:
    sim, world = started()
    del sim.groups["my84"]
    world.api_call("ModifyDBInstance", DBInstanceIdentifier="shop")
    sim.advance(DELAY + 30)
    doc = world.hub.of("instance", "shop")
    assert doc is not None
    assert doc["Compliance"]["Status"] == "NOT_AVAILABLE"
    assert "group not found" in doc["Description"]


READ_ALL = {
    "rds:DescribeDBInstances": "db",
    "rds:DescribeDBClusters": "cluster",
    "rds:DescribeDBProxies": "db-proxy",
    "rds:DescribeDBParameters": "pg",
    "rds:DescribeDBClusterParameters": "cluster-pg",
}


def policy(*without: str) -> Iam:
    return Iam(
        [Statement({a}, [arn(kind, "*")]) for a, kind in READ_ALL.items() if a not in without]
    )


def test_a_denied_parameter_read_gives_a_finding_that_names_the_fix() -> None:
    sim, world = started()
    sim.iam = policy("rds:DescribeDBParameters")
    world.api_call("ModifyDBInstance", DBInstanceIdentifier="orders")
    sim.advance(DELAY + 30)
    doc = world.hub.of("instance", "orders")
    assert doc is not None
    assert doc["Compliance"]["Status"] == "NOT_AVAILABLE"
    assert world.metrics.total(guard.UNJUDGED) == 1


def test_a_denied_listing_gives_findings_and_a_message_not_a_crash() -> None:
    sim, world = started()
    sim.iam = policy("rds:DescribeDBInstances")
    world.api_call("ModifyDBInstance", DBInstanceIdentifier="orders")
    sim.advance(DELAY + 30)
    doc = world.hub.of("instance", "orders")
    assert doc is not None
    assert doc["Compliance"]["Status"] == "NOT_AVAILABLE"
    assert "rds:DescribeDBInstances was denied" in doc["Description"]
    assert (
        "grant rds:DescribeDBInstances to the guard's role" in world.topic.messages[-1]["Message"]
    )
    world.put({guard.MESSAGE_KEY: guard.SWEEP})
    sim.advance(30)
    assert world.metrics.total(guard.UNJUDGED) >= 2


def test_a_denied_security_hub_import_is_reported_not_raised() -> None:
    sim, world = started()
    world.hub.denied = True
    _param_off(sim, world)
    sim.advance(DELAY + 30)
    assert any(
        "BatchImportFindings AccessDeniedException" in p for p in world.outcomes[-1].problems
    )
    assert world.metrics.total(guard.NOT_CONFIGURED) == 1


def test_remediation_sets_the_value_back_and_never_reboots() -> None:
    sim, world = started(remediate=True)
    _param_off(sim, world)
    sim.advance(DELAY + 30)
    assert sim.groups["pg16"].params["rds.force_ssl"].value == "1"
    doc = world.hub.of("instance", "orders")
    assert doc is not None
    assert "restart, it is owed" in doc["Description"]
    sim.advance(3600)
    assert sim.reboots() == []
    assert world.status("instance", "orders") == "FAILED"  # pending-reboot: not in effect yet
    reboot(sim, world, "orders")
    sim.advance(DELAY + 300)
    assert world.status("instance", "orders") == "PASSED"


def test_remediation_of_a_dynamic_parameter_resolves_without_a_restart() -> None:
    sim, world = started(remediate=True)
    _mysql_off(sim, world)
    sim.advance(DELAY + 200)
    assert world.status("instance", "shop") == "PASSED"
    assert sim.reboots() == []


def test_remediation_never_touches_an_exempted_database_or_its_group() -> None:
    sim, world = started(remediate=True)
    sim.add_instance("legacy", groups={"pg16": "in-sync"}, tags={guard.EXEMPT_TAG: "ticket-1"})
    _param_off(sim, world)
    sim.advance(DELAY + 30)
    assert sim.groups["pg16"].params["rds.force_ssl"].value == "0"
    assert "ModifyDBParameterGroup" not in sim.call_names()
    doc = world.hub.of("instance", "orders")
    assert doc is not None
    assert "used by exempted legacy" in doc["Description"]


def test_remediation_without_the_right_is_a_finding_note() -> None:
    sim, world = started(remediate=True)
    sim.iam = policy()
    _mysql_off(sim, world)
    sim.advance(DELAY + 30)
    doc = world.hub.of("instance", "shop")
    assert doc is not None
    assert doc["Compliance"]["Status"] == "FAILED"
    assert "remediation failed (AccessDenied)" in doc["Description"]


@pytest.mark.parametrize("delay", [60.0, 300.0, 900.0])
def test_detection_within_cloudtrails_delay_plus_a_minute(delay: float) -> None:
    sim, world = started()
    world.delay = delay
    changed_at = sim.now
    _mysql_off(sim, world)
    sim.advance(delay + 120)
    doc = world.hub.of("instance", "shop")
    assert doc is not None
    assert world.status("instance", "shop") == "FAILED"
    seen = world.hub.imported_at[doc["Id"]]
    assert seen - changed_at <= delay + guard.EVERY_S


def test_a_deleted_database_whose_archive_failed_is_archived_by_the_next_sweep() -> None:
    sim, world = started()
    _create_unprotected(sim, world)
    sim.advance(DELAY + 90)
    assert world.status("instance", "adhoc") == "FAILED"
    world.hub.disabled = True  # the archive's import fails
    _delete_adhoc(sim, world)
    sim.advance(DELAY + 90)
    assert world.status("instance", "adhoc") == "FAILED"
    world.hub.disabled = False
    sim.advance(3600)  # the hourly sweep
    assert world.status("instance", "adhoc") == "ARCHIVED"


def test_a_finding_security_hub_refused_is_sent_again_by_the_next_check() -> None:
    sim, world = started()
    world.hub.refuse = {"shop"}
    _mysql_off(sim, world)
    sim.advance(DELAY + 90)
    assert world.status("instance", "shop") == "PASSED"  # the FAILED import was refused
    world.hub.refuse = set()
    sim.advance(3600)
    assert world.status("instance", "shop") == "FAILED"


def test_security_hub_not_enabled_is_one_message_not_one_a_run() -> None:
    sim, world = started()
    world.hub.disabled = True
    sim.advance(4 * 3600)  # four sweeps
    about = [m for m in world.topic.messages if "InvalidAccessException" in m["Message"]]
    assert len(about) == 1
    assert sum("InvalidAccessException" in p for o in world.outcomes for p in o.problems) >= 4


def _not_applicable_fleet() -> tuple[RdsSimulator, GuardWorld]:
    sim = fleet()
    sim.add_group("ora19", {})
    sim.add_instance("erp", groups={"ora19": "in-sync"}, engine="oracle-ee",
                     engine_version="19.0.0.0.ru-2025-01.rur-2025-01.r1")  # fmt: skip
    sim.add_group("pg17-plain", {})  # rds.force_ssl left at the engine default (1 from 15)
    sim.add_instance("reports", groups={"pg17-plain": "in-sync"}, engine_version="17.4")
    world = GuardWorld(sim, delay=DELAY)
    world.put({guard.MESSAGE_KEY: guard.SWEEP})
    sim.advance(30)
    return sim, world


def test_an_oracle_database_or_an_unreported_default_does_not_keep_the_alarm_on() -> None:
    _, world = _not_applicable_fleet()
    assert world.status("instance", "erp") == "NOT_AVAILABLE"
    assert world.status("instance", "reports") == "NOT_AVAILABLE"
    assert world.metrics.total(guard.NOT_APPLICABLE) == 2
    assert world.metrics.total(guard.NOT_ENFORCED) == 0
    assert world.metrics.total(guard.UNJUDGED) == 0


@pytest.mark.parametrize(
    ("call", "field", "typed", "kind", "name"),
    [
        ("ModifyDBInstance", "DBInstanceIdentifier", "Orders", "instance", "orders"),
        ("ModifyDBCluster", "DBClusterIdentifier", "LEDGER", "cluster", "ledger"),
        ("ModifyDBProxy", "DBProxyName", "Pool", "proxy", "pool"),
    ],
)
def test_a_call_naming_a_database_in_mixed_case_is_checked(
    call: str, field: str, typed: str, kind: str, name: str
) -> None:
    """RDS lists identifiers in lowercase; CloudTrail keeps what the caller typed."""
    sim, world = started()
    if kind == "instance":
        sim.modify_instance("orders", group="pg16-tuned", seconds=30)
    elif kind == "cluster":
        sim.reset_group("apg16", "rds.force_ssl", "0")
    else:
        sim.set_proxy_tls("pool", False)
    request: dict[str, Any] = {field: typed}
    world.api_call(call, **request)
    sim.advance(DELAY + 90)  # long before the next sweep
    assert world.status(kind, name) == "FAILED"
    assert world.hub.of(kind, typed) is None  # one finding, under the listed name


def test_no_cloudtrail_trail_is_one_problem_metric_and_message_then_resolved() -> None:
    sim, world = started()
    world.trails.logging = False
    sim.advance(2 * 3600)  # two sweeps
    about = [m for m in world.topic.messages if "no CloudTrail trail" in m["Message"]]
    assert len(about) == 1
    assert "seen by the sweep only" in about[0]["Message"]
    assert world.metrics.total(guard.NO_TRAIL) == 2
    assert world.metrics.total(guard.NOT_ENFORCED) == 0
    world.trails.logging = True
    sim.advance(3600)
    assert any("resolved: no CloudTrail trail" in m["Message"] for m in world.topic.messages)
    sim.advance(3600)
    assert world.metrics.total(guard.NO_TRAIL) == 2


@pytest.mark.parametrize(
    ("trail", "problem"),
    [
        ({"exists": False}, "no CloudTrail trail"),
        ({"multi_region": False, "home": "eu-west-3"}, "no CloudTrail trail"),
        ({"denied": True}, "cloudtrail:DescribeTrails AccessDeniedException"),
        ({}, ""),
    ],
)
def test_which_trails_cover_the_region(trail: dict[str, object], problem: str) -> None:
    from simulator.cloudtrail import SimTrails
    from simulator.world import REGION

    found = guard.trail_problem(SimTrails(**trail), REGION)  # type: ignore[arg-type]
    assert (problem in found) if problem else found == ""


def test_remediating_an_unset_dynamic_parameter_applies_it_immediately() -> None:
    """A reset parameter is listed without a value, its ApplyType still reported: dynamic, so
    ApplyMethod immediate, in effect without a restart."""
    sim, world = started(remediate=True)
    sim.unset_parameter("my84", "require_secure_transport", default="0")
    world.api_call("ResetDBParameterGroup", DBParameterGroupName="my84")
    sim.advance(DELAY + 200)
    modify = [kw for name, kw in sim.calls if name == "ModifyDBParameterGroup"]
    assert [p["ApplyMethod"] for kw in modify for p in kw["Parameters"]] == ["immediate"]
    assert world.status("instance", "shop") == "PASSED"
    assert sim.reboots() == []


def test_an_unset_parameter_keeps_the_apply_type_rds_reports() -> None:
    from rds_force_ssl.facts import engines
    from rds_force_ssl.handlers.judge import SOURCE_ASSUMED_DEFAULT, configured_value

    row = engines.lookup("postgres")
    assert row is not None
    listed = [
        {"ParameterName": "rds.force_ssl", "Source": "engine-default", "ApplyType": "dynamic"}
    ]
    got = configured_value(listed, row=row, version="14.12")
    assert (got.value, got.source, got.apply_type) == ("0", SOURCE_ASSUMED_DEFAULT, "dynamic")
    assert configured_value([], row=row, version="14.12").apply_type is None  # not listed


def test_the_apply_method_falls_back_to_the_engine_table() -> None:
    from rds_force_ssl.facts import engines

    mysql, sqlserver = engines.lookup("mysql"), engines.lookup("sqlserver-ee")
    assert mysql is not None
    assert sqlserver is not None
    assert guard.apply_method(None, mysql) == "immediate"  # moto lists no ApplyType
    assert guard.apply_method(None, sqlserver) == "pending-reboot"
    assert guard.apply_method("static", mysql) == "pending-reboot"  # the group's word first


def test_a_static_remediation_is_not_passed_while_rds_lags_before_a_restart() -> None:
    """RDS still shows in-sync a minute after the remediation (its status lags the change): the
    finding stays FAILED, a restart owed, until a restart is seen."""
    sim, world = started(remediate=True)
    sim.group_lag_seconds = 300.0
    sim.modify_group("pg16", {"rds.force_ssl": "0"})
    sim.advance(10)
    sim.reboot_db_instance(DBInstanceIdentifier="orders")  # now running with SSL-only off
    sim.advance(200)
    world.api_call("ModifyDBParameterGroup", DBParameterGroupName="pg16")
    sim.advance(DELAY + 30)
    assert sim.groups["pg16"].params["rds.force_ssl"].value == "1"  # remediated
    sim.advance(guard.EVERY_S + 30)  # the recheck, inside RDS's lag: it reads in-sync
    assert sim.describe_db_instances()["DBInstances"][0]["DBParameterGroups"][0][
        "ParameterApplyStatus"
    ] == "in-sync"  # fmt: skip
    doc = world.hub.of("instance", "orders")
    assert doc is not None
    assert doc["Compliance"]["Status"] == "FAILED"
    assert doc["ProductFields"]["State"] == guard.STATE_RESTART_OWED
    sim.advance(3600)
    assert world.status("instance", "orders") == "FAILED"  # no restart yet, whatever the time
    reboot(sim, world, "orders")
    sim.advance(DELAY + 300)
    assert world.status("instance", "orders") == "PASSED"


def test_a_restart_seen_while_the_database_waits_for_its_minute_still_counts() -> None:
    """The reboot's event arrives while the database was checked less than a minute ago: it is
    deferred to a recheck (which carries no event), and the restart is kept all the same."""
    sim, world = started(remediate=True)
    sim.group_lag_seconds = 36000.0  # RDS never shows pending-reboot within this test
    sim.modify_group("pg16", {"rds.force_ssl": "0"})
    sim.advance(10)
    sim.reboot_db_instance(DBInstanceIdentifier="orders")
    sim.advance(200)
    world.api_call("ModifyDBParameterGroup", DBParameterGroupName="pg16")
    sim.advance(DELAY + 30 + guard.EVERY_S + 30)
    assert world.hub.of("instance", "orders") is not None
    assert world.status("instance", "orders") == "FAILED"  # restart owed
    sim.reboot_db_instance(DBInstanceIdentifier="orders")
    world.api_call("ModifyDBInstance", delay=DELAY - 30, DBInstanceIdentifier="orders")
    world.api_call("RebootDBInstance", DBInstanceIdentifier="orders")
    sim.advance(DELAY + world.window + 5)
    assert "instance:orders" in world.outcomes[-1].deferred  # the reboot's run: deferred
    sim.advance(guard.EVERY_S + 30)
    assert world.status("instance", "orders") == "PASSED"
