"""The reboot reconciler on one DB instance, driven like the Provider framework drives it, on the
RDS simulator: a table of (starting state -> restarts, reboot calls and outcome).

Every scenario also checks the rule the product rests on: a run that says ``in-sync`` finished
only when the engine really runs with what ForceSsl owns (``RdsSimulator.effective``), so a
lagging ``in-sync`` can never pass for enforcement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from rds_force_ssl.facts import contract
from rds_force_ssl.facts.policy import OUTCOME_IN_SYNC, OUTCOME_STOPPED
from rds_force_ssl.handlers import reboot
from rds_force_ssl.handlers.decide import SETTLE_S
from simulator import Fault, RdsSimulator, memory, run_provider
from tests.handlers.events import ENFORCED, GROUP, INTERVAL, event, instance_world


@dataclass(frozen=True)
class Scenario:
    name: str
    world: Callable[[], RdsSimulator]
    status: str  # SUCCESS or FAILED
    restarts: list[str]  # what RDS restarted, whoever asked
    reboot_calls: int  # RebootDBInstance calls the reconciler made
    outcome: str = ""
    reason: str = ""
    event: dict[str, Any] = field(default_factory=event)
    rebooted: str = ""  # the Rebooted attribute, when it matters


def _unchanged_update() -> dict[str, Any]:
    return event(request="Update")


def _added_to_own_group() -> RdsSimulator:
    """ForceSsl added to a database with its own group: CloudFormation writes rds.force_ssl=1
    into it; RDS shows the database in-sync for 120 s before it says pending-reboot."""
    sim = RdsSimulator(reboot_seconds=90)
    sim.add_group(GROUP, {"work_mem": "4096"})
    sim.add_instance("db1", groups={GROUP: "in-sync"})
    sim.modify_group(GROUP, ENFORCED, lag=120)
    return sim


def _create_on_own_group() -> dict[str, Any]:
    return event(parameters={"work_mem": "4096", **ENFORCED})


def _dynamic_where_disputed() -> RdsSimulator:
    """The same, where RDS reports rds.force_ssl as dynamic (sources disagree): applying, then
    in-sync, and no reboot."""
    sim = RdsSimulator(reboot_seconds=90)
    sim.add_group(GROUP, {"work_mem": "4096"}, apply_types={"rds.force_ssl": "dynamic"})
    sim.add_instance("db1", groups={GROUP: "in-sync"})
    sim.modify_group(GROUP, ENFORCED, lag=60)
    return sim


MYSQL = {"require_secure_transport": "1"}


def _mysql_added() -> RdsSimulator:
    """MySQL: require_secure_transport, which RDS reports dynamic: no reboot, but not done
    before RDS has applied it."""
    sim = RdsSimulator(reboot_seconds=90)
    sim.add_group(GROUP, {"max_connections": "200"})
    sim.add_instance("db1", groups={GROUP: "in-sync"}, engine="mysql", engine_version="8.4.3")
    sim.modify_group(GROUP, MYSQL, lag=60)
    return sim


def _modifying_then_pending() -> RdsSimulator:
    sim = RdsSimulator(reboot_seconds=90)
    sim.add_group(GROUP, ENFORCED)
    sim.add_instance("db1", groups={"default.postgres16": "in-sync"})
    sim.modify_instance("db1", group=GROUP, seconds=300)
    return sim


def _cloudformation_rebooting() -> RdsSimulator:
    sim = instance_world("pending-reboot", reboot_seconds=90)
    sim.reboot_db_instance(DBInstanceIdentifier="db1")
    sim.calls.clear()
    return sim


def _stopped() -> RdsSimulator:
    sim = instance_world("pending-reboot")
    sim.stop_instance("db1")
    return sim


def _storage_optimization() -> RdsSimulator:
    sim = instance_world("pending-reboot", reboot_seconds=90)
    sim.optimize_storage("db1", 6 * 3600)
    return sim


def _status(status: str, apply: str = "pending-reboot") -> Callable[[], RdsSimulator]:
    def world() -> RdsSimulator:
        sim = instance_world(apply)
        sim.instances["db1"].status = status
        return sim

    return world


def _incompatible_fixed_by_this_deploy() -> RdsSimulator:
    """A previous deploy left shared_buffers too high: the engine did not start. This one (a
    rollback) puts the old value back; RDS allows a reboot in incompatible-parameters."""
    sim = RdsSimulator(reboot_seconds=90)
    sim.add_group(GROUP, {**ENFORCED, "shared_buffers": "4096"})
    sim.add_instance("db1", groups={GROUP: "pending-reboot"})
    sim.instances["db1"].status = "incompatible-parameters"
    sim.instances["db1"].running = {}
    return sim


def _fix_shared_buffers() -> dict[str, Any]:
    return event(
        request="Update",
        parameters={**ENFORCED, "shared_buffers": "4096"},
        old={**_props_with(shared_buffers="999999999")},
    )


def _props_with(**params: str) -> dict[str, Any]:
    from tests.handlers.events import props

    return props(parameters={**ENFORCED, **params})


def _failed_to_apply(apply_lag: float = 0.0) -> Callable[[], RdsSimulator]:
    def world() -> RdsSimulator:
        sim = instance_world("failed-to-apply", reboot_seconds=90, apply_lag_seconds=apply_lag)
        return sim

    return world


def _gone() -> RdsSimulator:
    sim = RdsSimulator()
    sim.add_group(GROUP, ENFORCED)
    sim.add_instance("other", groups={GROUP: "pending-reboot"})
    return sim


def _swapped_by_hand() -> RdsSimulator:
    sim = RdsSimulator()
    sim.add_group("hand-made", ENFORCED)
    sim.add_instance("db1", groups={"hand-made": "in-sync"})
    return sim


def _value_changed_by_hand() -> RdsSimulator:
    sim = instance_world("in-sync")
    sim.modify_group(GROUP, {"rds.force_ssl": "0"})
    return sim


def _stopped_and(world: Callable[[], RdsSimulator]) -> Callable[[], RdsSimulator]:
    """``world``, with the instance stopped: it would start with that group and those values."""

    def stopped() -> RdsSimulator:
        sim = world()
        sim.stop_instance("db1")
        return sim

    return stopped


def _lower_case_group() -> RdsSimulator:
    sim = RdsSimulator(reboot_seconds=90)
    sim.add_group(GROUP.lower(), ENFORCED)
    sim.add_instance("db1", groups={GROUP.lower(): "pending-reboot"})
    return sim


def _with(fault: Fault, apply: str = "pending-reboot", **kwargs: Any) -> Callable[[], RdsSimulator]:
    def world() -> RdsSimulator:
        sim = instance_world(apply, reboot_seconds=90, **kwargs)
        sim.faults.append(replace(fault))  # a fresh count for every world built
        return sim

    return world


def _iam_propagating(seconds: float) -> Callable[[], RdsSimulator]:
    def world() -> RdsSimulator:
        sim = instance_world("pending-reboot", reboot_seconds=90)
        sim.iam_ready_at = seconds
        return sim

    return world


IN_SYNC, STOPPED = OUTCOME_IN_SYNC, OUTCOME_STOPPED

SCENARIOS = [
    Scenario(
        "redeploy that changes nothing: done at the first look",
        lambda: instance_world("in-sync"),
        "SUCCESS",
        [],
        0,
        IN_SYNC,
        event=_unchanged_update(),
    ),
    Scenario(
        "create on a database already in sync: waits out the settle window, no reboot",
        lambda: instance_world("in-sync"),
        "SUCCESS",
        [],
        0,
        IN_SYNC,
        rebooted="false",
    ),
    Scenario(
        "pending-reboot: one reboot",
        lambda: instance_world("pending-reboot", reboot_seconds=90),
        "SUCCESS",
        ["db1"],
        1,
        IN_SYNC,
        rebooted="true",
    ),
    Scenario(
        "added to its own group, RDS shows in-sync for 120 s first: no false success",
        _added_to_own_group,
        "SUCCESS",
        ["db1"],
        1,
        IN_SYNC,
        event=_create_on_own_group(),
    ),
    Scenario(
        "rds.force_ssl reported dynamic: applying, then in-sync, no reboot",
        _dynamic_where_disputed,
        "SUCCESS",
        [],
        0,
        IN_SYNC,
        event=_create_on_own_group(),
    ),
    Scenario(
        "MySQL require_secure_transport (dynamic): applying, then in-sync, no reboot",
        _mysql_added,
        "SUCCESS",
        [],
        0,
        IN_SYNC,
        event=event(enforced=MYSQL, parameters={"max_connections": "200", **MYSQL}),
    ),
    Scenario(
        "CloudFormation still associating the group: wait, then one reboot",
        _modifying_then_pending,
        "SUCCESS",
        ["db1"],
        1,
        IN_SYNC,
    ),
    Scenario(
        "CloudFormation's own reboot under way: no second one",
        _cloudformation_rebooting,
        "SUCCESS",
        ["db1"],
        0,
        IN_SYNC,
    ),
    Scenario(
        "pending-reboot after the restart for 120 s: no second reboot",
        lambda: instance_world("pending-reboot", reboot_seconds=90, apply_lag_seconds=120),
        "SUCCESS",
        ["db1"],
        1,
        IN_SYNC,
    ),
    Scenario(
        "DescribeDBInstances says available for 30 s after the reboot: RDS refuses a second",
        lambda: instance_world("pending-reboot", reboot_seconds=90, reboot_view_lag_seconds=30),
        "SUCCESS",
        ["db1"],
        1,
        IN_SYNC,
    ),
    Scenario(
        "the reboot's answer is lost (read timeout): no second reboot",
        _with(Fault("RebootDBInstance", "lost"), apply_lag_seconds=120),
        "SUCCESS",
        ["db1"],
        1,
        IN_SYNC,
        rebooted="true",
    ),
    Scenario(
        "the answer is lost and botocore's retry meets InvalidDBInstanceState: no second reboot",
        _with(Fault("RebootDBInstance", "lost-retried"), apply_lag_seconds=120),
        "SUCCESS",
        ["db1"],
        1,
        IN_SYNC,
        rebooted="true",
    ),
    Scenario("stopped: done, applies at start", _stopped, "SUCCESS", [], 0, STOPPED),
    # A stopped database starts with the group it has and the values it holds: "applies at
    # next start" of the wrong group, or of rds.force_ssl=0, would be a false success.
    Scenario(
        "stopped, group swapped by hand: fails, never 'applies at next start'",
        _stopped_and(_swapped_by_hand),
        "FAILED",
        [],
        0,
        reason="hand-made",
    ),
    Scenario(
        "stopped, rds.force_ssl=0 set by hand: fails once RDS had 5 min to show ours",
        _stopped_and(_value_changed_by_hand),
        "FAILED",
        [],
        0,
        reason="rds.force_ssl=0, not 1",
    ),
    Scenario(
        "storage-optimization for 6 h: RDS allows the reboot, so reboot",
        _storage_optimization,
        "SUCCESS",
        ["db1"],
        1,
        IN_SYNC,
    ),
    Scenario(
        "incompatible-parameters that this deploy's group fixes: repaired by one reboot",
        _incompatible_fixed_by_this_deploy,
        "SUCCESS",
        ["db1"],
        1,
        IN_SYNC,
        event=_fix_shared_buffers(),
    ),
    Scenario(
        "incompatible-parameters and nothing changed: fail at once, a reboot would not help",
        _status("incompatible-parameters"),
        "FAILED",
        [],
        0,
        reason="did not change its group",
        event=_unchanged_update(),
    ),
    Scenario(
        "failed-to-apply and nothing changed: fail at once",
        _failed_to_apply(),
        "FAILED",
        [],
        0,
        reason="failed-to-apply on db1 and this deploy did not change it",
        event=_unchanged_update(),
    ),
    Scenario(
        "failed-to-apply that this deploy's group fixes: RDS gets 5 min, then one reboot",
        _failed_to_apply(),
        "SUCCESS",
        ["db1"],
        1,
        IN_SYNC,
        event=_fix_shared_buffers(),
    ),
    Scenario(
        "KMS key unreachable (recoverable): fail with the fix",
        _status("inaccessible-encryption-credentials-recoverable"),
        "FAILED",
        [],
        0,
        reason="enable the key",
    ),
    Scenario(
        "storage-full: fail with the fix",
        _status("storage-full"),
        "FAILED",
        [],
        0,
        reason="scale storage up",
    ),
    Scenario("group swapped by hand", _swapped_by_hand, "FAILED", [], 0, reason="hand-made"),
    Scenario(
        "rds.force_ssl=0 in RDS, set by hand: fail once RDS has had 5 min to show ours",
        _value_changed_by_hand,
        "FAILED",
        [],
        0,
        reason="rds.force_ssl=0, not 1",
    ),
    Scenario(
        "group name spelled in another case",
        _lower_case_group,
        "SUCCESS",
        ["db1"],
        1,
        IN_SYNC,
        event=event(group="Stack-DBParameterGroup-ABC"),
    ),
    Scenario("instance gone", _gone, "FAILED", [], 0, reason="does not exist"),
    Scenario(
        "pending-database-upgrade",
        lambda: instance_world("pending-database-upgrade"),
        "FAILED",
        [],
        0,
        reason="apply the pending engine upgrade",
    ),
    Scenario(
        "throttled beyond botocore's retries for 3 polls: look again",
        _with(Fault("DescribeDBInstances", "throttle", times=3)),
        "SUCCESS",
        ["db1"],
        1,
        IN_SYNC,
    ),
    Scenario(
        "the reboot gets a 500 (nothing happened): look again, reboot",
        _with(Fault("RebootDBInstance", "5xx")),
        "SUCCESS",
        ["db1"],
        2,
        IN_SYNC,
    ),
    Scenario(
        "DescribeEvents throttled once",
        _with(Fault("DescribeEvents", "throttle")),
        "SUCCESS",
        ["db1"],
        1,
        IN_SYNC,
    ),
    Scenario(
        "IAM not in effect for 90 s (the stack just granted it): look again",
        _iam_propagating(90),
        "SUCCESS",
        ["db1"],
        1,
        IN_SYNC,
    ),
    Scenario(
        "IAM denies for good: fail after the propagation grace, with the fix",
        _iam_propagating(10**6),
        "FAILED",
        [],
        0,
        reason="IAM denied",
    ),
]


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_instance_scenario(sc: Scenario) -> None:
    sim = sc.world()
    run = run_provider(sim, sc.event, query_interval=INTERVAL)
    assert run.status == sc.status, run.reason
    assert sc.reason in run.reason
    assert sim.reboots() == sc.restarts
    assert sim.call_names().count("RebootDBInstance") == sc.reboot_calls
    assert sim.max_concurrent_down() <= 1
    if sc.outcome:
        assert run.data["Outcome"] == sc.outcome
        assert run.physical_id == "rds-force-ssl:instance:db1"
    if sc.rebooted:
        assert run.data["Rebooted"] == sc.rebooted
    if run.status == "SUCCESS" and run.data["Outcome"] == IN_SYNC:
        # Never a false success: the engine runs with what ForceSsl owns.
        owned = sc.event["ResourceProperties"][contract.PROP_ENFORCED]
        assert sim.effective("db1", owned), sim.instances["db1"]


def test_a_change_is_not_trusted_before_rds_had_5_minutes_to_show_it() -> None:
    """The false success of the old reconciler: RDS reported in-sync for the first minutes after
    the group changed, and the stack finished with the database still taking plaintext."""
    sim = _added_to_own_group()
    run = run_provider(sim, _create_on_own_group(), query_interval=INTERVAL)
    assert run.status == "SUCCESS"
    assert run.elapsed >= SETTLE_S
    assert sim.call_names().count("RebootDBInstance") == 1
    assert sim.downtimes[0].start >= 120  # only once RDS said pending-reboot


def test_a_redeploy_that_changes_nothing_costs_one_look() -> None:
    sim = instance_world("in-sync")
    run = run_provider(sim, _unchanged_update(), query_interval=INTERVAL)
    assert (run.polls, run.elapsed) == (1, 0.0)


def test_the_parameters_are_read_with_a_filter_and_filtered_again() -> None:
    """Whether RDS honours DescribeDBParameters' parameter-name filter is disputed between its
    API references: the answer is the same whether it honours, ignores or refuses it."""
    outcomes = {}
    for mode in ("honoured", "ignored", "rejected"):
        sim = RdsSimulator(parameter_filters=mode)
        sim.add_group(GROUP, ENFORCED).others = 250  # rds.force_ssl on the third page
        sim.add_instance("db1", groups={GROUP: "in-sync"})
        run = run_provider(sim, _unchanged_update(), query_interval=INTERVAL)
        pages = [kw for name, kw in sim.calls if name == "DescribeDBParameters"]
        outcomes[mode] = (run.status, len(pages))
    assert outcomes == {
        "honoured": ("SUCCESS", 2),  # on_event and the one is_complete, one page each
        "ignored": ("SUCCESS", 6),  # three pages each
        "rejected": ("SUCCESS", 8),  # refused, then three pages without the filter, each
    }


def test_failover_only_on_multi_az() -> None:
    multi = instance_world("pending-reboot")
    multi.instances["db1"].multi_az = True
    assert run_provider(multi, event(failover=True)).status == "SUCCESS"
    single = instance_world("pending-reboot")
    assert run_provider(single, event(failover=True)).status == "SUCCESS"
    assert [kw for n, kw in multi.calls if n == "RebootDBInstance"] == [
        {"DBInstanceIdentifier": "db1", "ForceFailover": True}
    ]
    assert [kw for n, kw in single.calls if n == "RebootDBInstance"] == [
        {"DBInstanceIdentifier": "db1"}
    ]


def test_a_failover_reboot_is_recognised_by_its_events() -> None:
    sim = instance_world("pending-reboot", failover_seconds=60, apply_lag_seconds=120)
    sim.instances["db1"].multi_az = True
    run = run_provider(sim, event(failover=True), query_interval=INTERVAL)
    assert (run.status, sim.reboots(), run.data["Rebooted"]) == ("SUCCESS", ["db1"], "true")


def test_stopped_instance_applies_when_started() -> None:
    sim = _stopped()
    assert run_provider(sim, event()).data["Outcome"] == STOPPED
    sim.start_instance("db1")
    sim.advance(200)
    assert sim.effective("db1", ENFORCED)


def test_delete_makes_no_aws_call_and_keeps_the_physical_id() -> None:
    sim = instance_world("pending-reboot")
    ev = event(request="Delete")
    assert reboot.handle_on_event(ev, sim) == {"PhysicalResourceId": "rds-force-ssl:instance:db1"}
    assert reboot.handle_is_complete(ev, sim, memory=memory(sim)) == {"IsComplete": True}
    assert sim.calls == []


def test_busy_forever_ends_with_the_last_state_before_the_provider_times_out() -> None:
    sim = instance_world("pending-reboot")
    sim.instances["db1"].status = "modifying"
    ev = event()
    ev["ResourceProperties"][contract.PROP_GIVE_UP_AFTER] = "570"
    run = run_provider(sim, ev, query_interval=15, total_timeout=600)
    assert run.status == "FAILED"
    assert run.reason.startswith("gave up after 570s: still modifying/pending-reboot")
    assert sim.reboots() == []


def test_a_status_rds_adds_later_is_waited_on_and_named() -> None:
    sim = instance_world("pending-reboot")
    sim.instances["db1"].status = "some-new-status"
    ev = event()
    ev["ResourceProperties"][contract.PROP_GIVE_UP_AFTER] = "300"
    run = run_provider(sim, ev, query_interval=15, total_timeout=600)
    assert run.status == "FAILED"
    assert "'some-new-status' is not in RDS's documented list" in run.reason


def test_missing_properties_fail_with_the_names() -> None:
    ev = event()
    del ev["ResourceProperties"][contract.PROP_ENFORCED]
    with pytest.raises(reboot.ReconcileError, match=contract.PROP_ENFORCED):
        reboot.handle_on_event(ev, RdsSimulator())


def test_log_lines_carry_decisions_but_never_the_response_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim = instance_world("pending-reboot")
    with caplog.at_level("INFO", logger="rds_force_ssl.reboot"):
        run_provider(sim, event())
    text = caplog.text
    assert "available/pending-reboot" in text
    assert "rebooted db1" in text
    assert "secret-presigned" not in text
    assert "ResponseURL" not in text
