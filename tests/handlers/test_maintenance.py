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

from rds_force_ssl.facts import contract, window
from rds_force_ssl.facts.policy import (
    OUTCOME_IN_SYNC,
    OUTCOME_OTHERS_PENDING,
    OUTCOME_REBOOT_SCHEDULED,
    Reboot,
)
from rds_force_ssl.handlers import maintenance
from simulator import Fault, RdsSimulator, memory, run_provider
from tests.handlers.events import ENFORCED, deployed_in_effect, event, props

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
    # e: the user raised shared_buffers (static); ForceSsl's own parameter is in effect, as
    # the stack's earlier deploy saw.
    deployed_in_effect(sim, ident="e", group="grp-e", parameters={**ENFORCED, **USERS})
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
        rows.append([ident, run.data[contract.ATTR_REBOOT_OWED_SINCE], "", ""])
    ev = event(kind="cluster", ident="c1", group="grp-c1", members=["w", "r1", "r2"], policy=WINDOW)
    run = run_provider(sim, ev)
    assert run.status == "SUCCESS", run.reason
    outcomes["c1"] = run.data["Outcome"]
    rows.append(["c1", run.data[contract.ATTR_REBOOT_OWED_SINCE], "w,r1,r2", "c"])
    assert outcomes == {
        "a": OUTCOME_REBOOT_SCHEDULED,
        "b": OUTCOME_REBOOT_SCHEDULED,
        "d": OUTCOME_IN_SYNC,
        "e": OUTCOME_OTHERS_PENDING,
        "f": OUTCOME_REBOOT_SCHEDULED,
        "c1": OUTCOME_REBOOT_SCHEDULED,
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
        summaries.append(maintenance.handle(schedule, sim, memory=memory(sim), now=sim.time()))
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
    summary = maintenance.handle(schedule, sim, memory=memory(sim), now=sim.time())
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
    first = maintenance.handle(schedule, sim, memory=memory(sim), now=sim.time())
    assert (first["rebooted"], first["errors"]) == (["b"], ["gone"])  # a is backing up: wait
    sim.advance(RUN_EVERY)
    assert (
        maintenance.handle(schedule, sim, memory=memory(sim), now=sim.time())["rebooted"] == []
    )  # a still busy
    sim.advance(RUN_EVERY)
    assert maintenance.handle(schedule, sim, memory=memory(sim), now=sim.time())["rebooted"] == [
        "a"
    ]
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
    assert maintenance.handle(schedule, sim, memory=memory(sim), now=sim.time())["errors"] == ["a"]
    sim.advance(RUN_EVERY)
    assert maintenance.handle(schedule, sim, memory=memory(sim), now=sim.time())["rebooted"] == [
        "a"
    ]


def test_a_run_cut_short_says_which_databases_it_did_not_reach() -> None:
    sim = world()
    schedule = deploy(sim)
    summary = maintenance.handle(
        schedule, sim, memory=memory(sim), now=sim.time(), out_of_time=lambda: True
    )
    assert sorted(summary["unchecked"]) == ["a", "b", "c1", "f"]


def test_an_input_this_version_did_not_write_is_refused() -> None:
    bad = {maintenance.INPUT_KEY: maintenance.INPUT_KIND, maintenance.INPUT_DATABASES: [["a"]]}
    with pytest.raises(ValueError, match="not a database entry"):
        maintenance.handle(bad, RdsSimulator(), memory=memory(RdsSimulator()))


def text_of(t: float) -> str:
    from datetime import UTC, datetime

    from simulator import EPOCH

    return datetime.fromtimestamp(EPOCH + t, UTC).strftime("%a %H:%M")


# ---- what the schedule must not take for ForceSsl's restart --------------------------------
def _schedule(*rows: list[str]) -> dict[str, Any]:
    return {maintenance.INPUT_KEY: maintenance.INPUT_KIND, maintenance.INPUT_DATABASES: list(rows)}


def test_a_restart_before_rds_showed_the_change_is_not_taken_for_forcessls() -> None:
    """RDS shows ForceSsl's group change 120 s late; someone restarts the instance at 20 s (back
    at 110 s): that restart loaded the old values, and RDS then says pending-reboot. The deploy
    says reboot-scheduled, and RebootOwedSince is when RDS showed it owed, not when the request
    started, so the schedule does not mistake the restart at 20 s for one that put ForceSsl's
    change in effect: it restarts the instance in its window."""
    sim = RdsSimulator(reboot_seconds=90)
    sim.add_group("grp-a", USERS)
    sim.add_instance("a", groups={"grp-a": "in-sync"}).window = "mon:09:00-mon:10:00"
    sim.modify_group("grp-a", ENFORCED, lag=120)

    def restart() -> None:
        sim.reboot_db_instance(DBInstanceIdentifier="a")

    sim.at(20, restart)
    run = run_provider(
        sim, event(ident="a", group="grp-a", parameters={**USERS, **ENFORCED}, policy=WINDOW)
    )
    assert (run.status, run.data["Outcome"]) == ("SUCCESS", OUTCOME_REBOOT_SCHEDULED)
    assert not sim.effective("a", ENFORCED)
    schedule = _schedule(["a", run.data[contract.ATTR_REBOOT_OWED_SINCE], "", ""])
    rebooted = []
    for _ in range(4):  # the first run finds the restart at 20 s too recent: RDS catching up
        sim.advance(RUN_EVERY - sim.now % RUN_EVERY)
        summary = maintenance.handle(schedule, sim, memory=memory(sim), now=sim.time())
        rebooted += summary["rebooted"]
    assert rebooted == ["a"]
    sim.advance(600)
    assert sim.reboots() == ["a", "a"]  # the one at 20 s, and the schedule's
    assert sim.effective("a", ENFORCED)


def test_the_next_run_does_not_reboot_again_while_rds_events_lag() -> None:
    """The schedule reboots an instance; RDS logs the restart 400 s late and says pending-reboot
    for 400 s after it, past the next two runs. Nothing RDS shows at those runs tells it was
    restarted; the memory does."""
    sim = RdsSimulator(reboot_seconds=90, apply_lag_seconds=400, event_lag_seconds=400)
    sim.add_group("grp-a", ENFORCED)
    sim.add_instance("a", groups={"grp-a": "pending-reboot"}).window = "mon:09:00-mon:10:00"
    schedule = _schedule(["a", str(int(sim.time()) - 600), "", ""])
    results = []
    for _ in range(6):
        results.append(maintenance.handle(schedule, sim, memory=memory(sim), now=sim.time()))
        sim.advance(RUN_EVERY)
    assert [r["rebooted"] for r in results] == [["a"], [], [], [], [], []]
    assert sim.reboots() == ["a"]
    assert sim.effective("a", ENFORCED)


def test_a_member_restarted_since_the_deploy_does_not_hold_up_the_others() -> None:
    """After the deploy, r1's owner restarts it (it now runs ForceSsl's change) and a change of
    theirs leaves it pending-reboot again. The schedule leaves r1 alone and goes on with r2 and
    the writer, one per run."""
    sim = RdsSimulator(reboot_seconds=90)
    sim.add_group("grp-c1", ENFORCED, cluster=True)
    sim.add_cluster("c1", group="grp-c1", writer="w", readers=("r1", "r2"))
    sim.clusters["c1"].window = "mon:09:00-mon:10:00"
    ev = event(kind="cluster", ident="c1", group="grp-c1", members=["w", "r1", "r2"], policy=WINDOW)
    run = run_provider(sim, ev)
    assert run.data["Outcome"] == OUTCOME_REBOOT_SCHEDULED
    sim.advance(120)
    sim.reboot_db_instance(DBInstanceIdentifier="r1")
    sim.advance(200)
    sim.instances["r1"].cluster_group_status = "pending-reboot"  # someone else's change
    schedule = _schedule(["c1", run.data[contract.ATTR_REBOOT_OWED_SINCE], "w,r1,r2", "c"])
    for _ in range(4):
        maintenance.handle(schedule, sim, memory=memory(sim), now=sim.time())
        sim.advance(RUN_EVERY)
    assert sim.reboots() == ["r1", "r2", "w"]  # r1 by its owner; r2 and w by the schedule
    assert sim.instances["r1"].cluster_group_status == "pending-reboot"


def test_a_database_whose_promised_reboot_cannot_happen_fails_the_run_after_the_others() -> None:
    """b's group was edited by hand to rds.force_ssl=0 after its deploy: the schedule will not
    restart it into that, and the run fails (the function's Errors metric), after a had its
    turn."""
    sim = RdsSimulator(reboot_seconds=90)
    for ident in ("a", "b"):
        sim.add_group(f"grp-{ident}", ENFORCED)
        sim.add_instance(
            ident, groups={f"grp-{ident}": "pending-reboot"}
        ).window = "mon:09:00-mon:10:00"
    sim.modify_group("grp-b", {"rds.force_ssl": "0"})
    owed = str(int(sim.time()) - 600)
    schedule = _schedule(["a", owed, "", ""], ["b", owed, "", ""])
    with pytest.raises(RuntimeError, match=r"b: .*rds.force_ssl=0, not 1"):
        maintenance.handle(schedule, sim, memory=memory(sim), now=sim.time())
    assert sim.reboots() == ["a"]
