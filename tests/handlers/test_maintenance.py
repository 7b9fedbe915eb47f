"""The scheduled reconciler through a simulated week, on the RDS simulator.

Every database is deployed under MAINTENANCE_WINDOW first, driven like the Provider framework
drives it, and the schedule's input is built from what those deploys returned (their
``RebootOwedSince``), as the template builds it. Then the schedule runs every 5 minutes for a week
and a day. What must hold:

- each database a deploy found owed a restart is restarted once, inside its own window (the one
  RDS reports at run time, even when it changed after the deploy), and runs what ForceSsl owns
  afterwards;
- Aurora members one at a time, readers first, all inside the cluster's window;
- nothing else is restarted: not a database whose deploy found nothing owed, not one whose
  pending-reboot is only the user's, not one that restarted since its deploy (its pending-reboot
  now is someone else's).
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from rds_force_ssl.handlers import maintenance, reboot, window
from rds_force_ssl.handlers.decide import Reboot
from simulator import Fault, RdsSimulator, run_provider
from tests.handlers.events import ENFORCED, event, props

WINDOW = Reboot.MAINTENANCE_WINDOW.value
DAY = 86400.0
RUN_EVERY = maintenance.RATE_MINUTES * 60
USERS = {"shared_buffers": "128"}
WINDOWS = {
    "a": "sun:23:45-mon:00:15",  # crosses the end of the week
    "b": "tue:23:30-wed:00:30",  # crosses midnight; changed after the deploy (below)
    "c1": "wed:04:00-wed:04:30",  # an Aurora cluster: the cluster's window
    "d": "mon:10:00-mon:10:30",  # in-sync at deploy: nothing owed
    "e": "mon:10:00-mon:10:30",  # pending-reboot only for the user's parameter
    "f": "thu:05:00-thu:05:30",  # restarted by its owner after the deploy
}
B_CHANGED = "thu:03:00-thu:03:30"


def _instance(sim: RdsSimulator, ident: str, apply: str, values: dict[str, str]) -> None:
    sim.add_group(f"grp-{ident}", values)
    inst = sim.add_instance(ident, groups={f"grp-{ident}": apply})
    inst.window = WINDOWS[ident]
    if apply != "in-sync":
        inst.running = {}


def world() -> RdsSimulator:
    sim = RdsSimulator(reboot_seconds=90)
    _instance(sim, "a", "pending-reboot", ENFORCED)
    _instance(sim, "b", "pending-reboot", ENFORCED)
    _instance(sim, "d", "in-sync", ENFORCED)
    _instance(sim, "e", "in-sync", {**ENFORCED, **USERS})
    _instance(sim, "f", "pending-reboot", {**ENFORCED, **USERS})
    sim.add_group("grp-c1", ENFORCED, cluster=True)
    sim.add_cluster("c1", group="grp-c1", writer="w", readers=("r1", "r2"))
    sim.clusters["c1"].window = WINDOWS["c1"]
    # e: the user raised shared_buffers (static); ForceSsl's own parameter is in effect.
    sim.modify_group("grp-e", {"shared_buffers": "256"})
    sim.advance(0)
    return sim


def deploy(sim: RdsSimulator) -> dict[str, Any]:
    """Each database's deploy under MAINTENANCE_WINDOW; the schedule's input from the results."""
    rows = []
    outcomes = {}
    for ident in ("a", "b", "d", "e", "f"):
        if ident == "e":  # an Update that changes only the user's parameter
            old = props(ident="e", group="grp-e", parameters={**ENFORCED, **USERS})
            ev = event(
                request="Update",
                ident="e",
                group="grp-e",
                old=old,
                parameters={**ENFORCED, "shared_buffers": "256"},
                policy=WINDOW,
            )
        else:
            ev = event(ident=ident, group=f"grp-{ident}", policy=WINDOW)
        run = run_provider(sim, ev)
        assert run.status == "SUCCESS", run.reason
        outcomes[ident] = run.data["Outcome"]
        rows.append([ident, run.data[reboot.ATTR_REBOOT_OWED_SINCE], "", ""])
    ev = event(kind="cluster", ident="c1", group="grp-c1", members=["w", "r1", "r2"], policy=WINDOW)
    run = run_provider(sim, ev)
    assert run.status == "SUCCESS", run.reason
    outcomes["c1"] = run.data["Outcome"]
    rows.append(["c1", run.data[reboot.ATTR_REBOOT_OWED_SINCE], "w,r1,r2", "c"])
    assert outcomes == {
        "a": reboot.OUTCOME_REBOOT_SCHEDULED,
        "b": reboot.OUTCOME_REBOOT_SCHEDULED,
        "d": reboot.OUTCOME_IN_SYNC,
        "e": reboot.OUTCOME_OTHERS_PENDING,
        "f": reboot.OUTCOME_REBOOT_SCHEDULED,
        "c1": reboot.OUTCOME_REBOOT_SCHEDULED,
    }
    assert sim.reboots() == []  # the deploys restarted nothing
    return {maintenance.INPUT_KEY: maintenance.INPUT_KIND, maintenance.INPUT_DATABASES: rows}


def window_of(sim: RdsSimulator, ident: str) -> str:
    member = sim.instances.get(ident)
    if member is not None and member.cluster:
        return sim.clusters[member.cluster].window
    return member.window if member else sim.clusters[ident].window


@pytest.fixture(scope="module")
def week() -> tuple[RdsSimulator, list[tuple[float, str, str]], list[dict[str, Any]]]:
    """The deploys, then a week and a day of runs; what restarted, when, in which window."""
    sim = world()
    schedule = deploy(sim)
    # After the deploy: b's window moves; f's owner restarts it (Tuesday 10:00), then changes a
    # static parameter out of band (Wednesday 10:00): pending-reboot again, not ForceSsl's.
    sim.instances["b"].window = B_CHANGED
    restarts: list[tuple[float, str, str]] = []
    summaries = []
    seen = 0
    end = 8 * DAY
    while sim.now < end:
        sim.advance(RUN_EVERY - sim.now % RUN_EVERY)
        if abs(sim.now - (DAY + 1 * 3600)) < 1:  # Tue 10:00
            sim.reboot_db_instance(DBInstanceIdentifier="f")
        if abs(sim.now - (2 * DAY + 1 * 3600)) < 1:  # Wed 10:00
            sim.modify_group("grp-f", {"shared_buffers": "512"})
        summaries.append(maintenance.handle(schedule, sim, now=sim.time()))
        for down in sim.downtimes[seen:]:
            restarts.append((down.start, down.identifier, window_of(sim, down.identifier)))
        seen = len(sim.downtimes)
    return sim, restarts, summaries


def test_each_owed_database_restarts_once_inside_its_window(
    week: tuple[RdsSimulator, list[tuple[float, str, str]], list[dict[str, Any]]],
) -> None:
    sim, restarts, _ = week
    ours = [(t, ident, w) for t, ident, w in restarts if (ident, t) != ("f", DAY + 3600)]
    assert sorted(ident for _, ident, _ in ours) == ["a", "b", "r1", "r2", "w"]
    for t, _, text in ours:
        assert window.may_start(window.parse(text), sim.time() - sim.now + t, maintenance.MARGIN_S)
    when = {ident: t for t, ident, _ in ours}
    assert text_of(when["a"]) == "Sun 23:45"  # the first run inside it
    # b's window moved to Thursday after the deploy: not Tuesday night, Thursday.
    assert text_of(when["b"]) == "Thu 03:00"
    for ident in ("a", "b", "w", "r1", "r2"):
        assert sim.effective(ident, ENFORCED), ident


def test_aurora_members_one_at_a_time_readers_first_in_the_cluster_window(
    week: tuple[RdsSimulator, list[tuple[float, str, str]], list[dict[str, Any]]],
) -> None:
    sim, restarts, _ = week
    members = [(text_of(t), ident) for t, ident, _ in restarts if ident in ("w", "r1", "r2")]
    assert members == [("Wed 04:00", "r1"), ("Wed 04:05", "r2"), ("Wed 04:10", "w")]
    spans = sorted((d.start, d.end) for d in sim.downtimes if d.identifier in ("w", "r1", "r2"))
    assert all(end is not None and end <= nxt for (_, end), (nxt, _) in itertools.pairwise(spans))


def test_nothing_else_is_restarted(
    week: tuple[RdsSimulator, list[tuple[float, str, str]], list[dict[str, Any]]],
) -> None:
    sim, restarts, summaries = week
    assert "d" not in sim.reboots()
    # e: pending-reboot, inside its window every Monday, but only for the user's parameter.
    assert sim.instances["e"].apply == "pending-reboot"
    assert "e" not in sim.reboots()
    # f: its owner's restart only; its pending-reboot since is not ForceSsl's.
    assert [ident for _, ident, _ in restarts].count("f") == 1
    assert sim.instances["f"].apply == "pending-reboot"
    assert sum(len(s["rebooted"]) for s in summaries) == 5
    assert all(not s["errors"] for s in summaries)


def test_a_run_outside_every_window_makes_one_describe_per_owed_database() -> None:
    sim = world()
    schedule = deploy(sim)
    sim.calls.clear()
    sim.advance(DAY * 2 + 6 * 3600 - sim.now)  # Wed 15:00: no window is open
    summary = maintenance.handle(schedule, sim, now=sim.time())
    assert (summary["outside"], summary["rebooted"]) == (4, [])
    # d and e are not owed: no call at all for them.
    assert sorted(name for name, _ in sim.calls) == [
        "DescribeDBClusters",
        "DescribeDBInstances",
        "DescribeDBInstances",
        "DescribeDBInstances",
    ]


def test_a_busy_database_waits_for_the_next_run_and_a_failing_one_stops_no_other() -> None:
    sim = RdsSimulator(reboot_seconds=90)
    for ident in ("a", "b"):
        sim.add_group(f"grp-{ident}", ENFORCED)
        inst = sim.add_instance(ident, groups={f"grp-{ident}": "pending-reboot"})
        inst.window = "mon:09:00-mon:10:00"
    sim.busy("a", 400, status="backing-up")
    schedule = {
        maintenance.INPUT_KEY: maintenance.INPUT_KIND,
        maintenance.INPUT_DATABASES: [
            ["a", "1", "", ""],
            ["gone", "1", "", ""],
            ["b", "1", "", ""],
        ],
    }
    first = maintenance.handle(schedule, sim, now=sim.time())
    assert (first["rebooted"], first["errors"]) == (["b"], ["gone"])  # a is backing up: wait
    sim.advance(RUN_EVERY)
    assert maintenance.handle(schedule, sim, now=sim.time())["rebooted"] == []  # a still busy
    sim.advance(RUN_EVERY)
    assert maintenance.handle(schedule, sim, now=sim.time())["rebooted"] == ["a"]
    assert sorted(sim.reboots()) == ["a", "b"]


def test_throttling_is_looked_at_again_next_run() -> None:
    sim = RdsSimulator(reboot_seconds=90)
    sim.add_group("grp-a", ENFORCED)
    sim.add_instance("a", groups={"grp-a": "pending-reboot"}).window = "mon:09:00-mon:10:00"
    sim.faults.append(Fault("DescribeDBInstances", "throttle", times=1))
    schedule = {
        maintenance.INPUT_KEY: maintenance.INPUT_KIND,
        maintenance.INPUT_DATABASES: [["a", "1", "", ""]],
    }
    assert maintenance.handle(schedule, sim, now=sim.time())["errors"] == ["a"]
    sim.advance(RUN_EVERY)
    assert maintenance.handle(schedule, sim, now=sim.time())["rebooted"] == ["a"]


def test_a_run_cut_short_says_which_databases_it_did_not_reach() -> None:
    sim = world()
    schedule = deploy(sim)
    summary = maintenance.handle(schedule, sim, now=sim.time(), out_of_time=lambda: True)
    assert sorted(summary["unchecked"]) == ["a", "b", "c1", "f"]


def test_an_input_this_version_did_not_write_is_refused() -> None:
    bad = {maintenance.INPUT_KEY: maintenance.INPUT_KIND, maintenance.INPUT_DATABASES: [["a"]]}
    with pytest.raises(ValueError, match="not a database entry"):
        maintenance.handle(bad, RdsSimulator())


def text_of(t: float) -> str:
    from datetime import UTC, datetime

    from simulator import EPOCH

    return datetime.fromtimestamp(EPOCH + t, UTC).strftime("%a %H:%M")
