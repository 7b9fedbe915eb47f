"""The deploy under each reboot policy, driven like the Provider framework drives it, on the RDS
simulator: a table of (world, request -> restarts, reboot calls, Outcome).

What every row also checks: the stack never says ``in-sync`` while the engine does not run what
ForceSsl owns (``RdsSimulator.effective``), and an outcome that leaves the restart to later
(``reboot-scheduled``, ``pending-reboot``) is said only when RDS showed that one is owed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from rds_force_ssl.facts import contract
from rds_force_ssl.facts.policy import (
    OUTCOME_IN_SYNC,
    OUTCOME_OTHERS_PENDING,
    OUTCOME_PENDING_REBOOT,
    OUTCOME_REBOOT_SCHEDULED,
    OUTCOME_STOPPED,
    Reboot,
)
from rds_force_ssl.handlers import maintenance
from simulator import EPOCH, RdsSimulator, memory, run_provider
from tests.handlers.events import (
    ENFORCED,
    GROUP,
    INTERVAL,
    deployed_in_effect,
    event,
    instance_world,
    props,
)

IMMEDIATE, WINDOW, NEVER = (r.value for r in Reboot)
IN_SYNC = OUTCOME_IN_SYNC
SCHEDULED = OUTCOME_REBOOT_SCHEDULED
PENDING = OUTCOME_PENDING_REBOOT
OTHERS = OUTCOME_OTHERS_PENDING
STOPPED = OUTCOME_STOPPED
USERS = {"shared_buffers": "128"}  # a static parameter of the user's, in the same group


@dataclass(frozen=True)
class Case:
    name: str
    world: Callable[[], RdsSimulator]
    event: dict[str, Any]
    restarts: list[str]  # what RDS restarted during the deploy, whoever asked
    reboot_calls: int  # RebootDBInstance calls the reconciler made
    outcome: str
    in_effect: bool  # the engine runs what ForceSsl owns when the stack says done
    min_elapsed: float = 0.0  # the deploy may not finish sooner (lagging in-sync)
    owned: tuple[tuple[str, str], ...] = tuple(ENFORCED.items())


def _added_to_own_group(lag: float) -> Callable[[], RdsSimulator]:
    """ForceSsl added to a database's own group: RDS shows in-sync for ``lag`` s first."""

    def world() -> RdsSimulator:
        sim = RdsSimulator(reboot_seconds=90)
        sim.add_group(GROUP, USERS)
        sim.add_instance("db1", groups={GROUP: "in-sync"})
        sim.modify_group(GROUP, ENFORCED, lag=lag)
        return sim

    return world


def _user_changed_their_static_parameter(lag: float) -> Callable[[], RdsSimulator]:
    """ForceSsl's parameters in effect; the user raises shared_buffers (static) in the same
    group; RDS shows pending-reboot ``lag`` s later."""

    def world() -> RdsSimulator:
        sim = RdsSimulator(reboot_seconds=90)
        sim.add_group(GROUP, {**ENFORCED, **USERS})
        sim.add_instance("db1", groups={GROUP: "in-sync"})
        deployed_in_effect(sim, parameters={**ENFORCED, **USERS})
        sim.modify_group(GROUP, {"shared_buffers": "256"}, lag=lag)
        sim.advance(0)  # lag 0: RDS shows it by the first look
        return sim

    return world


def _still_owed_from_a_window_deploy() -> RdsSimulator:
    """A previous deploy under MAINTENANCE_WINDOW attached the group; the window has not come."""
    sim = instance_world("pending-reboot", reboot_seconds=90)
    sim.instances["db1"].running = {}
    return sim


def _mysql_added() -> RdsSimulator:
    sim = RdsSimulator(reboot_seconds=90)
    sim.add_group(GROUP, {"max_connections": "200"})
    sim.add_instance("db1", groups={GROUP: "in-sync"}, engine="mysql", engine_version="8.4.3")
    sim.modify_group(GROUP, {"require_secure_transport": "1"}, lag=60)
    return sim


def _incompatible_fixed_by_this_deploy() -> RdsSimulator:
    sim = RdsSimulator(reboot_seconds=90)
    sim.add_group(GROUP, {**ENFORCED, "shared_buffers": "4096"})
    sim.add_instance("db1", groups={GROUP: "pending-reboot"})
    sim.instances["db1"].status = "incompatible-parameters"
    sim.instances["db1"].running = {}
    return sim


def _stopped() -> RdsSimulator:
    sim = instance_world("pending-reboot")
    sim.stop_instance("db1")
    return sim


def create(policy: str, **kwargs: Any) -> dict[str, Any]:
    return event(policy=policy, **kwargs)


def _update(policy: str, *, old_policy: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """An Update that changes only the user's shared_buffers (128 -> 256)."""
    old = props(parameters={**ENFORCED, **USERS}, policy=old_policy or policy)
    return event(
        request="Update",
        old=old,
        parameters={**ENFORCED, "shared_buffers": "256"},
        policy=policy,
        **kwargs,
    )


def _fix_shared_buffers(policy: str) -> dict[str, Any]:
    old = props(parameters={**ENFORCED, "shared_buffers": "999999999"}, policy=policy)
    return event(
        request="Update",
        old=old,
        parameters={**ENFORCED, "shared_buffers": "4096"},
        policy=policy,
    )


CASES = [
    # ---- MAINTENANCE_WINDOW: done once RDS shows whether a restart is owed ----------------
    Case(
        "window: new group pending-reboot -> reboot-scheduled, nothing restarted",
        lambda: instance_world("pending-reboot"),
        create(WINDOW),
        [],
        0,
        SCHEDULED,
        in_effect=False,
    ),
    Case(
        "window: RDS shows in-sync for 120 s first -> waits for pending-reboot, never in-sync",
        _added_to_own_group(lag=120),
        create(WINDOW, parameters={**USERS, **ENFORCED}),
        [],
        0,
        SCHEDULED,
        in_effect=False,
        min_elapsed=120,
    ),
    Case(
        "window: MySQL's dynamic parameter applies by itself -> in-sync, nothing scheduled",
        _mysql_added,
        create(
            WINDOW,
            enforced={"require_secure_transport": "1"},
            parameters={"max_connections": "200", "require_secure_transport": "1"},
        ),
        [],
        0,
        IN_SYNC,
        in_effect=True,
        owned=(("require_secure_transport", "1"),),
    ),
    Case(
        "window: incompatible-parameters this deploy fixes -> repaired now (the DB is down)",
        _incompatible_fixed_by_this_deploy,
        _fix_shared_buffers(WINDOW),
        ["db1"],
        1,
        IN_SYNC,
        in_effect=True,
    ),
    Case(
        "window: only the user's static parameter pending -> not ForceSsl's, nothing scheduled",
        _user_changed_their_static_parameter(lag=0),
        _update(WINDOW, old_policy=IMMEDIATE),
        [],
        0,
        OTHERS,
        in_effect=True,
    ),
    Case(
        "window: stopped -> applies at start",
        _stopped,
        create(WINDOW),
        [],
        0,
        STOPPED,
        in_effect=False,
    ),
    # ---- NEVER: never a reboot call ------------------------------------------------------------
    Case(
        "never: pending-reboot -> pending-reboot, no reboot call",
        lambda: instance_world("pending-reboot"),
        create(NEVER),
        [],
        0,
        PENDING,
        in_effect=False,
    ),
    Case(
        "never: RDS shows in-sync for 120 s first -> waits, then pending-reboot",
        _added_to_own_group(lag=120),
        create(NEVER, parameters={**USERS, **ENFORCED}),
        [],
        0,
        PENDING,
        in_effect=False,
        min_elapsed=120,
    ),
    Case(
        "never: incompatible-parameters fixed by a rollback -> pending-reboot, not a failure",
        _incompatible_fixed_by_this_deploy,
        _fix_shared_buffers(NEVER),
        [],
        0,
        PENDING,
        in_effect=False,
    ),
    Case(
        "never: in-sync, and RDS had its 5 minutes -> in-sync",
        lambda: instance_world("in-sync"),
        create(NEVER),
        [],
        0,
        IN_SYNC,
        in_effect=True,
        min_elapsed=300,
    ),
    # ---- IMMEDIATE: only for what ForceSsl changed ---------------------------------------------
    Case(
        "immediate: only the user's static parameter pending -> no reboot, says so",
        _user_changed_their_static_parameter(lag=0),
        _update(IMMEDIATE),
        [],
        0,
        OTHERS,
        in_effect=True,
    ),
    Case(
        "immediate: only the user's, RDS still shows in-sync -> done at once, no reboot",
        _user_changed_their_static_parameter(lag=120),
        _update(IMMEDIATE),
        [],
        0,
        IN_SYNC,
        in_effect=True,
    ),
    Case(
        "immediate + reboot_for_other_parameters: waits for RDS to show it, then one reboot",
        _user_changed_their_static_parameter(lag=120),
        _update(IMMEDIATE, others=True),
        ["db1"],
        1,
        IN_SYNC,
        in_effect=True,
        min_elapsed=120,
    ),
    Case(
        "immediate after a window deploy: ForceSsl's restart may still be owed -> one reboot",
        _still_owed_from_a_window_deploy,
        _update(IMMEDIATE, old_policy=WINDOW),
        ["db1"],
        1,
        IN_SYNC,
        in_effect=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_deploy_under_a_policy(case: Case) -> None:
    sim = case.world()
    run = run_provider(sim, case.event, query_interval=INTERVAL)
    assert run.status == "SUCCESS", run.reason
    calls = [kw for name, kw in sim.calls if name == "RebootDBInstance"]
    assert (sim.reboots(), len(calls), run.data["Outcome"]) == (
        case.restarts,
        case.reboot_calls,
        case.outcome,
    )
    assert sim.effective("db1", dict(case.owned)) is case.in_effect
    assert run.elapsed >= case.min_elapsed
    if run.data["Outcome"] == IN_SYNC:
        assert sim.effective("db1", dict(case.owned))  # never a false success
    if run.data["Outcome"] in (SCHEDULED, PENDING):
        assert sim.instances["db1"].apply == "pending-reboot"  # RDS said a restart is owed
    # RebootOwedSince: the look at which RDS showed the restart owed (here, the last one), not
    # the request's start: a restart between the two may have loaded the old values.
    owed = run.data[contract.ATTR_REBOOT_OWED_SINCE]
    assert owed == (str(int(EPOCH + (run.finished or 0))) if case.outcome == SCHEDULED else "0")


def test_a_deploy_that_changes_only_its_timeout_does_not_reboot_for_the_users_change() -> None:
    """The user raised shared_buffers by hand and means to restart in their own window; the
    stack's next deploy only raises total_timeout. Nothing ForceSsl owns changed, and the last
    deploy saw its parameters in effect (its proof is in the memory): no reboot."""
    sim = _user_changed_their_static_parameter(lag=0)()
    old = props(parameters={**ENFORCED, **USERS})
    old[contract.PROP_GIVE_UP_AFTER] = "2980"
    ev = event(request="Update", old=old, parameters={**ENFORCED, **USERS})
    ev["ResourceProperties"][contract.PROP_GIVE_UP_AFTER] = "3580"
    run = run_provider(sim, ev, query_interval=INTERVAL)
    assert (run.status, run.data["Outcome"], sim.reboots()) == ("SUCCESS", OTHERS, [])
    assert run.polls == 1


@pytest.mark.parametrize("lag", [0.0, 5.0, 60.0, 120.0])
def test_with_reboot_for_other_parameters_a_static_change_of_the_users_is_one_reboot(
    lag: float,
) -> None:
    """The row in docs/reboot.md: with the opt-in, the user's static change costs one reboot
    whether RDS shows it at once or {lag} s late (the 5-minute wait covers the group, not only
    ForceSsl's parameters); without it, none."""
    sim = _user_changed_their_static_parameter(lag=lag)()
    run = run_provider(sim, _update(IMMEDIATE, others=True), query_interval=INTERVAL)
    assert (run.status, run.data["Outcome"], sim.reboots()) == ("SUCCESS", IN_SYNC, ["db1"])
    assert sim.instances["db1"].running.get("shared_buffers") == "256"


def test_never_with_an_undeclared_member_that_needs_a_reboot_is_pending_not_failed() -> None:
    sim = RdsSimulator(reboot_seconds=90)
    sim.add_group("apg", ENFORCED, cluster=True)
    sim.add_cluster("c1", group="apg", writer="w", readers=("r1",))
    sim.add_autoscaled_reader("c1", "abc", status="pending-reboot")
    ev = event(kind="cluster", ident="c1", group="apg", members=["w", "r1"], policy=NEVER)
    run = run_provider(sim, ev)
    assert (run.status, run.data["Outcome"], sim.reboots()) == ("SUCCESS", PENDING, [])


def test_window_on_an_aurora_cluster_schedules_and_restarts_nothing() -> None:
    sim = RdsSimulator(reboot_seconds=90)
    sim.add_group("apg", ENFORCED, cluster=True)
    sim.add_cluster("c1", group="apg", writer="w", readers=("r1", "r2"))
    ev = event(kind="cluster", ident="c1", group="apg", members=["w", "r1", "r2"], policy=WINDOW)
    run = run_provider(sim, ev)
    assert (run.status, run.data["Outcome"], sim.reboots()) == ("SUCCESS", SCHEDULED, [])
    assert "pending-reboot" in run.data["State"]


def test_an_unknown_policy_fails_with_the_values_it_takes() -> None:
    run = run_provider(instance_world("pending-reboot"), create("sometimes"))
    assert run.status == "FAILED"
    assert "unknown Reboot 'sometimes'; one of immediate, maintenance-window, never" in run.reason


def test_a_deploy_during_a_scheduled_reboot_does_not_reboot_again() -> None:
    """The schedule reboots db1 in its window; seconds later a deploy switches it to IMMEDIATE.
    The deploy sees the restart under way and waits for it: one restart in all. (Rebooted is
    read from RDS's events: prompt here, as a late event is not seen by then.)"""
    sim = _still_owed_from_a_window_deploy()
    sim.event_lag_seconds = 0.0
    sim.instances["db1"].window = "mon:09:00-mon:09:30"  # open at the simulator's t=0
    sim.advance(60)
    schedule = {
        maintenance.INPUT_KEY: maintenance.INPUT_KIND,
        maintenance.INPUT_DATABASES: [["db1", str(int(EPOCH)), "", ""]],
    }
    summary = maintenance.handle(schedule, sim, memory=memory(sim), now=sim.time())
    assert summary["rebooted"] == ["db1"]
    sim.advance(5)
    run = run_provider(sim, _update(IMMEDIATE, old_policy=WINDOW), query_interval=INTERVAL)
    assert (run.status, run.data["Outcome"], sim.reboots()) == ("SUCCESS", IN_SYNC, ["db1"])
    assert run.data["Rebooted"] == "true"  # RDS restarted it while the request ran
    assert sim.effective("db1", ENFORCED)
