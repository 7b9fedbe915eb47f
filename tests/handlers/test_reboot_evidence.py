"""One reboot per change, whatever RDS's timing: the cases where a memory that ended on a clock
rebooted a database again and again, on the simulator made slower and less reliable than RDS.

Each case counts the restarts RDS performed and checks the product's two sentences: the stack
says done only when SSL-only is in effect on the engine (``RdsSimulator.effective``), and a
database is restarted at most once per change.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from rds_force_ssl.facts import contract
from rds_force_ssl.facts.policy import OUTCOME_IN_SYNC, OUTCOME_REBOOT_SCHEDULED, Reboot
from rds_force_ssl.handlers import maintenance
from simulator import Fault, RdsSimulator, memory, rollback_of, run_provider
from tests.handlers.events import ENFORCED, INTERVAL, event, instance_world

if TYPE_CHECKING:
    from mypy_boto3_rds.type_defs import RebootDBInstanceResultTypeDef

MINUTE = 60.0
WINDOW = Reboot.MAINTENANCE_WINDOW.value
IMMEDIATE = Reboot.IMMEDIATE.value


def _once_and_in_effect(sim: RdsSimulator, run: Any, ident: str = "db1") -> None:
    assert run.status == "SUCCESS", run.reason
    assert run.data["Outcome"] == OUTCOME_IN_SYNC
    assert sim.reboots() == [ident]
    assert sim.effective(ident, ENFORCED), sim.instances[ident]


# ---- 1. slow restarts, late events, pending-reboot lingering after the restart ----------------
@pytest.mark.parametrize("restart_s", [5.5 * MINUTE, 6 * MINUTE, 20 * MINUTE])
@pytest.mark.parametrize("event_lag_s", [15.0, 30.0])
@pytest.mark.parametrize("looks", [1, 2])
def test_a_slow_restart_is_waited_out_not_repeated(
    restart_s: float, event_lag_s: float, looks: int
) -> None:
    """Rebooting lasts longer than the 300 s the old memory held a claim; RDS logs the restart
    after the instance is available again, and still says pending-reboot for a look or two."""
    sim = instance_world(
        "pending-reboot",
        reboot_seconds=restart_s,
        event_lag_seconds=event_lag_s,
        pending_reboot_looks=looks,
    )
    run = run_provider(sim, event(), query_interval=INTERVAL)
    _once_and_in_effect(sim, run)
    assert run.elapsed >= restart_s  # done only once the engine is back, with the change


# ---- 2. a change RDS cannot apply --------------------------------------------------------------
def test_a_change_rds_cannot_apply_fails_after_one_reboot_with_the_next_step() -> None:
    sim = instance_world("pending-reboot", reboot_seconds=6 * MINUTE, event_lag_seconds=100)
    sim.stuck_pending.add("db1")
    run = run_provider(sim, event(), query_interval=INTERVAL)
    assert run.status == "FAILED"
    assert sim.reboots() == ["db1"]
    assert "db1 still shows pending-reboot 300s after the restart this deploy asked" in run.reason
    assert "fix it, then deploy again" in run.reason
    assert not sim.effective("db1", ENFORCED)


# ---- 3. the memory unavailable -----------------------------------------------------------------
@pytest.mark.parametrize("kind", ["denied", "throttle", "5xx", "lost"])
def test_a_memory_that_fails_for_minutes_never_licenses_a_second_reboot(kind: str) -> None:
    """The table answers AccessDenied (IAM still propagating), is throttled or down for three
    minutes, or loses its answers, while RDS logs restarts 100 s late and says pending-reboot
    for two looks after the restart. The reboot waits for the memory; it happens once."""
    sim = instance_world(
        "pending-reboot",
        reboot_seconds=90,
        event_lag_seconds=100,
        pending_reboot_looks=2,
    )
    for op in ("PutItem", "BatchGetItem"):
        sim.faults.append(Fault(op, kind if op == "PutItem" else "5xx", until=3 * MINUTE))
    run = run_provider(sim, event(), query_interval=INTERVAL)
    _once_and_in_effect(sim, run)
    first = next(d.start for d in sim.downtimes)
    assert first >= 3 * MINUTE  # not before the memory could hold the claim


def test_a_lost_claim_answer_is_read_back_and_the_reboot_goes_ahead() -> None:
    sim = instance_world("pending-reboot", reboot_seconds=90, event_lag_seconds=100)
    sim.faults.append(Fault("PutItem", "lost", times=1))
    run = run_provider(sim, event(), query_interval=INTERVAL)
    _once_and_in_effect(sim, run)
    assert sim.downtimes[0].start == 0  # the first poll: its own claim, read back


def test_a_memory_denied_for_good_fails_with_the_memory_named_and_no_reboot() -> None:
    sim = instance_world("pending-reboot")
    sim.faults.append(Fault("PutItem", "denied", until=10**9))
    ev = event()
    ev["ResourceProperties"][contract.PROP_GIVE_UP_AFTER] = "600"
    run = run_provider(sim, ev, query_interval=INTERVAL)
    assert run.status == "FAILED"
    assert "memory not written (AccessDeniedException)" in run.reason
    assert sim.reboots() == []


# ---- 4. a rollback that lies -------------------------------------------------------------------
def test_a_rollback_to_the_window_keeps_the_reboot_owed_and_the_window_makes_it() -> None:
    """The stack is under MAINTENANCE_WINDOW with a restart owed. An Update to IMMEDIATE fails
    elsewhere in the stack before this resource's update restarts anything, and CloudFormation
    rolls back to MAINTENANCE_WINDOW. The rollback's OldResourceProperties say IMMEDIATE, but no
    request ever saw ForceSsl's parameters in effect: the restart is still owed and scheduled,
    and the next window makes it."""
    sim = instance_world("pending-reboot", reboot_seconds=90)
    sim.instances["db1"].running = {"rds.force_ssl": "0"}
    sim.instances["db1"].window = "mon:10:00-mon:10:30"  # an hour after t=0 (a Monday, 09:00)
    first = run_provider(sim, event(policy=WINDOW))
    assert first.data["Outcome"] == OUTCOME_REBOOT_SCHEDULED
    update = event(
        request="Update", policy=IMMEDIATE, old=event(policy=WINDOW)["ResourceProperties"]
    )
    back = run_provider(sim, rollback_of(update, "req-rollback"))
    assert back.status == "SUCCESS", back.reason
    assert back.data["Outcome"] == OUTCOME_REBOOT_SCHEDULED
    owed = back.data[contract.ATTR_REBOOT_OWED_SINCE]
    assert owed != "0"
    assert sim.reboots() == []
    schedule = {
        maintenance.INPUT_KEY: maintenance.INPUT_KIND,
        maintenance.INPUT_DATABASES: [["db1", owed, "", ""]],
    }
    while sim.now < 2 * 3600:
        maintenance.handle(schedule, sim, memory=memory(sim), now=sim.time())
        sim.advance(maintenance.RATE_MINUTES * MINUTE)
    assert sim.reboots() == ["db1"]
    assert 3600 <= sim.downtimes[0].start < 3600 + 30 * MINUTE
    assert sim.effective("db1", ENFORCED)


# ---- 5. a refused reboot in the window ----------------------------------------------------------
def _window_world() -> tuple[RdsSimulator, dict[str, Any]]:
    sim = instance_world("pending-reboot", reboot_seconds=6 * MINUTE, event_lag_seconds=150)
    sim.instances["db1"].running = {}
    sim.instances["db1"].window = "mon:09:00-mon:10:00"  # open at t=0
    schedule = {
        maintenance.INPUT_KEY: maintenance.INPUT_KIND,
        maintenance.INPUT_DATABASES: [["db1", "1", "", ""]],
    }
    return sim, schedule


def _window_runs(sim: RdsSimulator, schedule: dict[str, Any], until: float) -> None:
    while sim.now < until:
        maintenance.handle(schedule, sim, memory=memory(sim), now=sim.time())
        sim.advance(maintenance.RATE_MINUTES * MINUTE)


def test_a_reboot_refused_in_the_window_is_made_later_in_the_same_window_once() -> None:
    """A modify starts at the moment of the first run's reboot: RDS refuses it, the database is
    available again minutes later, and a later run of the same window restarts it."""
    sim, schedule = _window_world()
    real = sim.reboot_db_instance

    def racing(**kwargs: Any) -> RebootDBInstanceResultTypeDef:
        if not sim.downtimes and sim.instances["db1"].status == "available" and sim.now == 0:
            sim.busy("db1", 4 * MINUTE)
        return real(**kwargs)

    sim.reboot_db_instance = racing  # type: ignore[method-assign]
    _window_runs(sim, schedule, until=3600)
    assert sim.reboots() == ["db1"]
    assert sim.downtimes[0].start < 30 * MINUTE  # inside the window, not a week later
    assert sim.effective("db1", ENFORCED)


def test_a_lost_claim_answer_in_the_window_still_restarts_once_in_that_window() -> None:
    sim, schedule = _window_world()
    sim.faults.append(Fault("PutItem", "lost", times=1))
    _window_runs(sim, schedule, until=3600)
    assert sim.reboots() == ["db1"]
    assert sim.downtimes[0].start < 30 * MINUTE
    assert sim.effective("db1", ENFORCED)


def test_a_slow_restart_in_the_window_is_not_repeated_by_the_next_runs() -> None:
    sim, schedule = _window_world()
    sim.reboot_seconds = 20 * MINUTE
    sim.pending_reboot_looks = 3
    _window_runs(sim, schedule, until=2 * 3600)
    assert sim.reboots() == ["db1"]
    assert sim.effective("db1", ENFORCED)


# ---- 6. an autoscaled reader scaled in mid-deploy ------------------------------------------------
def test_an_autoscaled_reader_scaled_in_mid_deploy_is_waited_out() -> None:
    sim = RdsSimulator(reboot_seconds=90, event_lag_seconds=120)
    sim.add_group("apg", ENFORCED, cluster=True)
    sim.add_cluster("c1", group="apg", writer="w", readers=("r1",))
    scaled = sim.add_autoscaled_reader("c1", "61aabbcc", status="pending-reboot").identifier
    sim.at(15, lambda: sim.delete_instance(scaled, seconds=8 * MINUTE))
    ev = event(
        kind="cluster", ident="c1", group="apg", members=["w", "r1"], autoscaled_readers=True
    )
    run = run_provider(sim, ev, query_interval=INTERVAL)
    assert run.status == "SUCCESS", run.reason
    assert run.data["Outcome"] == OUTCOME_IN_SYNC
    counts = Counter(sim.reboots())
    assert counts["w"] == counts["r1"] == 1
    assert max(counts.values()) == 1
    assert scaled not in sim.instances
    assert all(sim.effective(m, ENFORCED) for m in ("w", "r1"))


def test_a_scaled_in_reader_is_no_reason_to_fail_even_when_it_was_being_rebooted() -> None:
    sim = RdsSimulator(reboot_seconds=5 * MINUTE, event_lag_seconds=150, pending_reboot_looks=2)
    sim.add_group("apg", ENFORCED, cluster=True)
    sim.add_cluster("c1", group="apg", writer="w", readers=())
    scaled = sim.add_autoscaled_reader("c1", "61aabbcc", status="pending-reboot").identifier
    sim.at(7 * MINUTE, lambda: sim.delete_instance(scaled, seconds=10 * MINUTE))
    ev = event(kind="cluster", ident="c1", group="apg", members=["w"], autoscaled_readers=True)
    run = run_provider(sim, ev, query_interval=INTERVAL)
    assert run.status == "SUCCESS", run.reason
    assert max(Counter(sim.reboots()).values()) == 1
    assert sim.effective("w", ENFORCED)


def test_a_claim_left_open_by_an_earlier_request_is_closed_by_its_restart_events() -> None:
    """A request asked for a reboot, then ended (its Lambda gone) before any look saw the
    restart; RDS logged it. An hour later the next request finds the claim open: the restart's
    events, older than this request, close it, and nothing is rebooted again."""
    sim = instance_world("in-sync", reboot_seconds=90, event_lag_seconds=30)
    memory(sim).claim("db:db1", sim.time(), "req-earlier")
    sim.reboot_db_instance(DBInstanceIdentifier="db1")
    sim.advance(3600)
    sim.calls.clear()
    run = run_provider(sim, event(request="Update"), query_interval=INTERVAL)
    assert run.status == "SUCCESS", run.reason
    assert sim.reboots() == ["db1"]  # the earlier request's restart only
    claim = memory(sim).recall(["db:db1"]).claims["db:db1"]
    assert claim.restarted is not None
