"""Every reboot scenario again, under a matrix of RDS timings slower and less reliable than the
defaults: restarts of 5.5 and 20 minutes, restart events 15 or 150 s late, ``pending-reboot``
for 1 or 3 looks after a restart, a describe view that says ``available`` for 30 s after a reboot
is accepted, and the memory table denying every call for the first 3 minutes.

What must hold in every cell, whatever the outcome: no database (or member) is restarted more
than once for one change, at most one member of a cluster is down at a time, and a success that
says ``in-sync`` is in effect on the engine. The outcome itself (SUCCESS or FAILED, and why) is
the one the scenario has at the simulator's defaults.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from rds_force_ssl.facts import contract
from rds_force_ssl.facts.policy import OUTCOME_IN_SYNC, OUTCOME_REBOOT_SCHEDULED, Reboot
from rds_force_ssl.handlers import maintenance
from simulator import Fault, RdsSimulator, memory, rollback_of, run_concurrent, run_provider
from tests.handlers.events import ENFORCED, GROUP, INTERVAL, event, instance_world
from tests.handlers.test_reboot_scenarios import SCENARIOS, Scenario

MINUTE = 60.0


@dataclass(frozen=True)
class Timing:
    restart_s: float
    event_lag_s: float
    looks: int  # describes that still say pending-reboot after a restart
    view_lag_s: float  # DescribeDBInstances says available this long after a reboot is accepted
    memory_down_s: float  # the memory table denies every call this long from the start

    @property
    def name(self) -> str:
        return (
            f"restart{self.restart_s:g}s-events{self.event_lag_s:g}s-looks{self.looks}"
            f"-view{self.view_lag_s:g}s-memory{self.memory_down_s:g}s"
        )

    def apply(self, sim: RdsSimulator) -> RdsSimulator:
        sim.reboot_seconds = self.restart_s
        sim.failover_seconds = self.restart_s
        sim.event_lag_seconds = self.event_lag_s
        sim.pending_reboot_looks = self.looks
        sim.reboot_view_lag_seconds = self.view_lag_s
        if self.memory_down_s:
            for op in ("PutItem", "BatchGetItem"):
                sim.faults.append(Fault(op, "denied", until=sim.now + self.memory_down_s))
        return sim


MATRIX = [
    Timing(*cell)
    for cell in itertools.product(
        (5.5 * MINUTE, 20 * MINUTE), (15.0, 150.0), (1, 3), (0.0, 30.0), (0.0, 3 * MINUTE)
    )
]


def _once_each(sim: RdsSimulator, *, together: bool = False) -> None:
    """Each node restarted once at most; one down at a time unless RDS restarts them
    ``together`` (a Multi-AZ DB cluster, or an Aurora writer that takes its readers along)."""
    counts = Counter(sim.reboots())
    assert all(n == 1 for n in counts.values()), counts
    if not together:
        assert sim.max_concurrent_down() <= 1


@pytest.mark.parametrize("timing", MATRIX, ids=[t.name for t in MATRIX])
@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_instance_scenario_under_the_matrix(sc: Scenario, timing: Timing) -> None:
    sim = timing.apply(sc.world())
    run = run_provider(sim, sc.event, query_interval=INTERVAL)
    _once_each(sim)
    assert run.status == sc.status, run.reason
    assert sc.reason in run.reason
    assert sorted(set(sim.reboots())) == sorted(set(sc.restarts))
    if run.status == "SUCCESS" and run.data["Outcome"] == OUTCOME_IN_SYNC:
        assert sim.effective("db1", sc.event["ResourceProperties"][contract.PROP_ENFORCED])


def _aurora() -> RdsSimulator:
    sim = RdsSimulator()
    sim.add_group(GROUP, ENFORCED, cluster=True)
    sim.add_cluster("c1", group=GROUP, writer="w", readers=("r1",))
    return sim


def _aurora_old_writer() -> RdsSimulator:
    """Aurora PostgreSQL 13.9: rebooting the writer restarts the readers too."""
    sim = RdsSimulator()
    sim.add_group(GROUP, ENFORCED, cluster=True)
    sim.add_cluster("c1", group=GROUP, writer="w", readers=("r1",), engine_version="13.9")
    return sim


def _multi_az_cluster() -> RdsSimulator:
    sim = RdsSimulator()
    sim.add_group(GROUP, ENFORCED, cluster=True)
    sim.add_cluster("c1", group=GROUP, writer="w", readers=("r1",), engine="postgres")
    return sim


def _scaled_in() -> RdsSimulator:
    sim = _aurora()
    scaled = sim.add_autoscaled_reader("c1", "61aabbcc", status="pending-reboot").identifier
    sim.at(15, lambda: sim.delete_instance(scaled, seconds=8 * MINUTE))
    return sim


CLUSTERS: dict[str, tuple[Callable[[], RdsSimulator], dict[str, Any]]] = {
    "aurora: writer and reader pending": (_aurora, {}),
    "aurora 13.9: the writer restarts the readers": (_aurora_old_writer, {}),
    "multi-az db cluster: rebooted whole": (_multi_az_cluster, {"members": []}),
    "aurora: an autoscaled reader scaled in mid-deploy": (
        _scaled_in,
        {"autoscaled_readers": True},
    ),
}


@pytest.mark.parametrize("timing", MATRIX, ids=[t.name for t in MATRIX])
@pytest.mark.parametrize("name", list(CLUSTERS))
def test_cluster_under_the_matrix(name: str, timing: Timing) -> None:
    world, extra = CLUSTERS[name]
    sim = timing.apply(world())
    kwargs: dict[str, Any] = {"members": ["w", "r1"], **extra}
    run = run_provider(sim, event(kind="cluster", ident="c1", group=GROUP, **kwargs))
    assert (run.status, run.data.get("Outcome")) == ("SUCCESS", OUTCOME_IN_SYNC), run.reason
    _once_each(sim, together=name.startswith(("multi-az", "aurora 13.9")))
    assert all(sim.effective(m, ENFORCED) for m in sim.clusters["c1"].members)


@pytest.mark.parametrize("timing", MATRIX, ids=[t.name for t in MATRIX])
def test_concurrent_requests_and_a_rollback_under_the_matrix(timing: Timing) -> None:
    """Two resources on one database 30 s apart, the same request delivered twice, and then an
    Update rolled back: one restart in all."""
    sim = timing.apply(instance_world("pending-reboot"))
    same = event(request_id="req-a")
    runs = run_concurrent(
        sim,
        [(0.0, same), (5.0, same), (30.0, event(request_id="req-b"))],
        query_interval=INTERVAL,
    )
    assert [r.status for r in runs] == ["SUCCESS"] * 3, [r.reason for r in runs]
    update = event(request="Update", request_id="req-c", parameters={**ENFORCED, "x": "1"})
    back = run_provider(sim, rollback_of(update, "req-d"), query_interval=INTERVAL)
    assert back.status == "SUCCESS", back.reason
    assert sim.reboots() == ["db1"]
    assert sim.effective("db1", ENFORCED)


@pytest.mark.parametrize("timing", MATRIX, ids=[t.name for t in MATRIX])
def test_the_window_restarts_once_under_the_matrix(timing: Timing) -> None:
    """The scheduled reconciler every 5 minutes through a 60-minute window and an hour past it:
    one restart, inside the window."""
    sim = timing.apply(instance_world("pending-reboot"))
    sim.instances["db1"].running = {}
    sim.instances["db1"].window = "mon:09:00-mon:10:00"  # open at t=0
    _window_runs(sim, "1", until=2 * 3600)
    assert sim.reboots() == ["db1"]
    assert sim.downtimes[0].start < 3600 - maintenance.MARGIN_S
    assert sim.effective("db1", ENFORCED)


@pytest.mark.parametrize("timing", MATRIX, ids=[t.name for t in MATRIX])
def test_a_change_rds_cannot_apply_fails_after_one_restart_under_the_matrix(timing: Timing) -> None:
    sim = timing.apply(instance_world("pending-reboot"))
    sim.stuck_pending.add("db1")
    run = run_provider(sim, event(), query_interval=INTERVAL)
    assert run.status == "FAILED"
    assert "still shows pending-reboot" in run.reason
    assert sim.reboots() == ["db1"]


@pytest.mark.parametrize("timing", MATRIX, ids=[t.name for t in MATRIX])
def test_a_lying_rollback_leaves_the_restart_to_the_window_under_the_matrix(
    timing: Timing,
) -> None:
    """MAINTENANCE_WINDOW with a restart owed; an Update to IMMEDIATE that never restarted
    anything is rolled back: still owed, and the window makes it, once."""
    sim = timing.apply(instance_world("pending-reboot"))
    sim.instances["db1"].running = {}
    sim.instances["db1"].window = "mon:10:00-mon:11:00"
    window = event(policy=Reboot.MAINTENANCE_WINDOW.value)
    assert run_provider(sim, window).data["Outcome"] == OUTCOME_REBOOT_SCHEDULED
    update = event(request="Update", old=window["ResourceProperties"])
    back = run_provider(sim, rollback_of(update, "req-rollback"), query_interval=INTERVAL)
    assert back.data.get("Outcome") == OUTCOME_REBOOT_SCHEDULED, back.reason
    _window_runs(sim, back.data[contract.ATTR_REBOOT_OWED_SINCE], until=3 * 3600)
    assert sim.reboots() == ["db1"]
    assert sim.effective("db1", ENFORCED)


@pytest.mark.parametrize("timing", MATRIX, ids=[t.name for t in MATRIX])
@pytest.mark.parametrize("trouble", ["refused", "claim answer lost"])
def test_trouble_on_the_first_window_run_still_restarts_once_in_that_window(
    timing: Timing, trouble: str
) -> None:
    sim = timing.apply(instance_world("pending-reboot"))
    sim.instances["db1"].running = {}
    sim.instances["db1"].window = "mon:09:00-mon:10:00"  # open at t=0
    if trouble == "refused":
        sim.busy("db1", 4 * MINUTE)  # a modify starts as the first run looks
        sim.instances["db1"].shown_status, sim.instances["db1"].shown_until = "available", 1.0
    else:
        sim.faults.append(Fault("PutItem", "lost", times=1))
    _window_runs(sim, "1", until=2 * 3600)
    assert sim.reboots() == ["db1"]
    assert sim.downtimes[0].start < 3600 - maintenance.MARGIN_S
    assert sim.effective("db1", ENFORCED)


def _window_runs(sim: RdsSimulator, owed_since: str, *, until: float) -> None:
    schedule = {
        maintenance.INPUT_KEY: maintenance.INPUT_KIND,
        maintenance.INPUT_DATABASES: [["db1", owed_since, "", ""]],
    }
    while sim.now < until:
        maintenance.handle(schedule, sim, memory=memory(sim), now=sim.time())
        sim.advance(maintenance.RATE_MINUTES * MINUTE)
