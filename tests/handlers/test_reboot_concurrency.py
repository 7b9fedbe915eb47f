"""Requests that overlap, repeat or undo each other, on one database, on the RDS simulator.

What keeps two requests (or one request polled twice, or a rollback) from rebooting a database
twice for one change: RDS's restart events, and, for as long as those may lag behind the
restart, the stack's memory of the reboots it asked for (a DynamoDB table).
"""

from __future__ import annotations

import pytest

from rds_force_ssl.handlers import reboot
from rds_force_ssl.handlers.decide import decide
from rds_force_ssl.handlers.observe import observe
from simulator import Fault, RdsSimulator, memory, rollback_of, run_concurrent, run_provider
from tests.handlers.events import ENFORCED, GROUP, INTERVAL, event, instance_world, props

TLS12 = {**ENFORCED, "ssl_min_protocol_version": "TLSv1.2"}
TLS13 = {**ENFORCED, "ssl_min_protocol_version": "TLSv1.3"}


def test_two_requests_on_one_database_reboot_it_once() -> None:
    """Two resources on one database (or a redeploy right after a failed deploy), 30 s apart,
    while RDS keeps saying pending-reboot for 2 min after the restart. The old reconciler's
    per-request tag let them take turns rebooting it until both gave up."""
    sim = instance_world("pending-reboot", reboot_seconds=90, apply_lag_seconds=120)
    first, second = run_concurrent(
        sim,
        [(0.0, event(request_id="req-a")), (30.0, event(request_id="req-b"))],
        query_interval=INTERVAL,
    )
    assert (first.status, second.status) == ("SUCCESS", "SUCCESS")
    assert sim.reboots() == ["db1"]
    assert (first.data["Rebooted"], second.data["Rebooted"]) == ("true", "true")
    assert sim.effective("db1", ENFORCED)


def test_two_requests_that_look_at_the_same_instant_reboot_once() -> None:
    sim = instance_world("pending-reboot", reboot_seconds=90, apply_lag_seconds=120)
    runs = run_concurrent(
        sim,
        [(0.0, event(request_id="req-a")), (0.0, event(request_id="req-b"))],
        query_interval=INTERVAL,
    )
    assert [r.status for r in runs] == ["SUCCESS", "SUCCESS"]
    assert sim.reboots() == ["db1"]


def test_the_same_request_delivered_twice_reboots_once() -> None:
    sim = instance_world("pending-reboot", reboot_seconds=90, apply_lag_seconds=120)
    same = event()
    runs = run_concurrent(sim, [(0.0, same), (5.0, same)], query_interval=INTERVAL)
    assert [r.status for r in runs] == ["SUCCESS", "SUCCESS"]
    assert sim.reboots() == ["db1"]


def test_a_redeploy_after_a_lost_answer_does_not_reboot_again() -> None:
    """The first request's reboot was accepted but its answer lost; a second request starts
    while RDS still says pending-reboot after the restart."""
    sim = instance_world("pending-reboot", reboot_seconds=90, apply_lag_seconds=200)
    sim.faults.append(Fault("RebootDBInstance", "lost-retried"))
    runs = run_concurrent(
        sim,
        [(0.0, event(request_id="req-a")), (150.0, event(request_id="req-b"))],
        query_interval=INTERVAL,
    )
    assert [r.status for r in runs] == ["SUCCESS", "SUCCESS"]
    assert sim.reboots() == ["db1"]


# ---- restart events later than the restart (AWS: "on a best effort basis") -----------------
@pytest.mark.parametrize("event_lag", [100.0, 240.0])
def test_events_later_than_the_restart_do_not_earn_a_second_reboot(event_lag: float) -> None:
    """RDS logs the restart {event_lag} s late, longer than the 90 s reboot, and says
    pending-reboot for 60 s after it: nothing RDS shows tells the restarted database from one
    that still needs it. The memory does."""
    sim = instance_world(
        "pending-reboot", reboot_seconds=90, apply_lag_seconds=60, event_lag_seconds=event_lag
    )
    run = run_provider(sim, event(), query_interval=INTERVAL)
    assert run.status == "SUCCESS", run.reason
    assert sim.reboots() == ["db1"]
    assert sim.call_names().count("RebootDBInstance") == 1
    assert run.data["Rebooted"] == "true"  # the memory says so before the events do
    assert sim.effective("db1", ENFORCED)


def test_two_requests_30s_apart_with_late_events_reboot_once() -> None:
    sim = instance_world(
        "pending-reboot", reboot_seconds=90, apply_lag_seconds=60, event_lag_seconds=120
    )
    runs = run_concurrent(
        sim,
        [(0.0, event(request_id="req-a")), (30.0, event(request_id="req-b"))],
        query_interval=INTERVAL,
    )
    assert [r.status for r in runs] == ["SUCCESS", "SUCCESS"]
    assert sim.reboots() == ["db1"]


def test_two_requests_deciding_at_once_with_a_lagging_view_reboot_once() -> None:
    """Both look at the same instant, both see available/pending-reboot (DescribeDBInstances
    lags the accepted reboot by 30 s, RDS's events by 120 s): the second reads the first's
    claim from the memory (a consistent read) and waits."""
    sim = instance_world(
        "pending-reboot",
        reboot_seconds=90,
        apply_lag_seconds=60,
        event_lag_seconds=120,
        reboot_view_lag_seconds=30,
    )
    runs = run_concurrent(
        sim,
        [(0.0, event(request_id="req-a")), (0.0, event(request_id="req-b"))],
        query_interval=INTERVAL,
    )
    assert [r.status for r in runs] == ["SUCCESS", "SUCCESS"]
    assert sim.reboots() == ["db1"]
    assert sim.call_names().count("RebootDBInstance") == 1


def test_a_claim_written_between_a_look_and_a_reboot_holds_the_reboot_back() -> None:
    """Two pollers both read the memory before either wrote: the conditional write refuses the
    second claim, and it makes no reboot call."""
    sim = instance_world("pending-reboot", reboot_seconds=90)
    seen = observe(sim, reboot.parse(event(), sim.time()))
    decision = decide(seen, reboot.parse(event(), sim.time()).request, sim.time())
    assert decision.reboot == "db1"
    other = memory(sim)
    assert other.claim("db:db1", sim.time() - 5, "req-b") == (True, "")  # the other's claim
    accepted, done = reboot.act(sim, memory(sim), seen, decision, sim.time(), by="req-a")
    assert (accepted, sim.call_names().count("RebootDBInstance")) == (False, 0)
    assert "held" in done


@pytest.mark.parametrize("fault", ["throttle", "denied", "5xx", "lost"])
def test_a_memory_that_fails_never_fails_the_deploy(fault: str) -> None:
    """The table is throttled, denied, down, or its answer lost when the reboot is claimed, and
    its reads fail three times: the reboot waits until the memory holds its claim (a lost
    answer is read back), then happens once."""
    sim = instance_world(
        "pending-reboot", reboot_seconds=90, apply_lag_seconds=60, event_lag_seconds=0.0
    )
    sim.faults.append(Fault("PutItem", fault, times=1))
    sim.faults.append(Fault("BatchGetItem", fault if fault != "lost" else "5xx", times=3))
    run = run_provider(sim, event(), query_interval=INTERVAL)
    assert run.status == "SUCCESS", run.reason
    assert sim.reboots() == ["db1"]
    assert sim.effective("db1", ENFORCED)


def test_a_reboot_claimed_but_refused_by_rds_waits_for_the_claim_then_reboots() -> None:
    """The claim is written, then RDS answers 500: the claim stops holding (a restart seen
    after it would open it again), and after RETRY_REFUSED_S the next poll claims and reboots."""
    sim = instance_world("pending-reboot", reboot_seconds=90)
    sim.faults.append(Fault("RebootDBInstance", "5xx", times=1))
    run = run_provider(sim, event(), query_interval=INTERVAL)
    assert run.status == "SUCCESS", run.reason
    assert sim.reboots() == ["db1"]
    assert sim.effective("db1", ENFORCED)


def test_concurrent_requests_on_a_cluster_keep_one_member_down_at_a_time() -> None:
    sim = RdsSimulator(reboot_seconds=90, apply_lag_seconds=120)
    sim.add_group("apg", ENFORCED, cluster=True)
    sim.add_cluster("c1", group="apg", writer="w", readers=("r1", "r2"))
    members = ["w", "r1", "r2"]
    runs = run_concurrent(
        sim,
        [
            (0.0, event(kind="cluster", ident="c1", group="apg", members=members, request_id="a")),
            (20.0, event(kind="cluster", ident="c1", group="apg", members=members, request_id="b")),
        ],
        query_interval=INTERVAL,
    )
    assert [r.status for r in runs] == ["SUCCESS", "SUCCESS"]
    assert sorted(sim.reboots()) == ["r1", "r2", "w"]
    assert sim.max_concurrent_down() == 1


# ---- rollbacks: an Update with a new RequestId and the properties swapped ------------------------
def _tls_world() -> RdsSimulator:
    sim = RdsSimulator(reboot_seconds=90, apply_lag_seconds=60)
    sim.add_group(GROUP, TLS12, apply_types={"ssl_min_protocol_version": "static"})
    sim.add_instance("db1", groups={GROUP: "in-sync"})
    return sim


def test_a_rollback_reboots_again_only_because_the_restored_group_needs_it() -> None:
    """The forward deploy raised the TLS floor (static here, as RDS reports it) and rebooted;
    a later resource failed; CloudFormation restored the group and sent the rollback."""
    sim = _tls_world()
    forward = event(request="Update", enforced=TLS13, old=props(enforced=TLS12))
    sim.modify_group(GROUP, TLS13, lag=30)
    assert run_provider(sim, forward, query_interval=INTERVAL).status == "SUCCESS"
    assert sim.reboots() == ["db1"]
    sim.advance(60)
    sim.modify_group(GROUP, TLS12, lag=30)
    back = run_provider(sim, rollback_of(forward, "req-rollback"), query_interval=INTERVAL)
    assert back.status == "SUCCESS", back.reason
    assert sim.reboots() == ["db1", "db1"]
    assert sim.effective("db1", TLS12)


def test_a_rollback_that_restores_nothing_static_does_not_reboot() -> None:
    """The forward deploy only declared another Aurora member: nothing in the group changed, so
    neither it nor its rollback reboots anything."""
    sim = RdsSimulator(reboot_seconds=90)
    sim.add_group("apg", ENFORCED, cluster=True)
    sim.add_cluster("c1", group="apg", writer="w", readers=("r1",), status="in-sync")
    before = props(kind="cluster", ident="c1", group="apg", members=["w"])
    forward = event(
        request="Update", kind="cluster", ident="c1", group="apg", members=["w", "r1"], old=before
    )
    assert run_provider(sim, forward).status == "SUCCESS"
    back = run_provider(sim, rollback_of(forward, "req-rollback"))
    assert (back.status, back.polls, sim.reboots()) == ("SUCCESS", 1, [])


def test_a_rollback_repairs_incompatible_parameters_instead_of_refusing() -> None:
    """The forward deploy raised the TLS floor and, with it, set shared_buffers too high: after
    the reboot RDS cannot start the engine (incompatible-parameters) and the deploy fails. The
    rollback restores both; RDS allows a reboot in incompatible-parameters, so the rollback
    repairs the database rather than end in UPDATE_ROLLBACK_FAILED."""
    sim = _tls_world()
    good = {**TLS12, "shared_buffers": "16384"}
    bad = {**TLS13, "shared_buffers": "99999999"}
    sim.modify_group(GROUP, good)
    sim.advance(1)
    sim.break_group(GROUP, "shared_buffers", "99999999")
    forward = event(
        request="Update", enforced=TLS13, parameters=bad, old=props(enforced=TLS12, parameters=good)
    )
    sim.modify_group(GROUP, bad, lag=30)
    failed = run_provider(sim, forward, query_interval=INTERVAL)
    assert failed.status == "FAILED"
    assert "still incompatible-parameters after a restart" in failed.reason
    assert sim.instances["db1"].status == "incompatible-parameters"
    sim.modify_group(GROUP, good, lag=30)
    back = run_provider(sim, rollback_of(forward, "req-rollback"), query_interval=INTERVAL)
    assert back.status == "SUCCESS", back.reason
    assert sim.reboots() == ["db1", "db1"]
    assert sim.effective("db1", good)


@pytest.mark.parametrize("restored_lag", [30.0, 95.0, 150.0, 290.0])
def test_a_rollback_repair_waits_for_rds_to_show_the_restored_group(restored_lag: float) -> None:
    """As above, but RDS shows the restored group only {restored_lag} s after CloudFormation
    wrote it, longer than a reboot (90 s) in all but the first case. A repair before then would
    load the broken group again and fail the rollback (UPDATE_ROLLBACK_FAILED); the repair waits
    until RDS has had its 5 minutes, and one reboot puts the restored group in effect."""
    sim = _tls_world()
    good = {**TLS12, "shared_buffers": "16384"}
    bad = {**TLS13, "shared_buffers": "99999999"}
    sim.modify_group(GROUP, good)
    sim.advance(1)
    sim.break_group(GROUP, "shared_buffers", "99999999")
    forward = event(
        request="Update", enforced=TLS13, parameters=bad, old=props(enforced=TLS12, parameters=good)
    )
    sim.modify_group(GROUP, bad, lag=30)
    assert run_provider(sim, forward, query_interval=INTERVAL).status == "FAILED"
    assert sim.reboots() == ["db1"]
    sim.modify_group(GROUP, good, lag=restored_lag)
    back = run_provider(sim, rollback_of(forward, "req-rollback"), query_interval=INTERVAL)
    assert back.status == "SUCCESS", back.reason
    assert sim.reboots() == ["db1", "db1"]
    assert sim.effective("db1", good)


def test_a_value_rds_fails_to_apply_fails_forward_and_rolls_back_cleanly() -> None:
    sim = _tls_world()
    good = {**TLS12, "work_mem": "4096"}
    bad = {**TLS13, "work_mem": "-1"}
    sim.modify_group(GROUP, good)
    sim.advance(30)
    sim.break_group(GROUP, "work_mem", "-1", at_start=False)
    forward = event(
        request="Update", enforced=TLS13, parameters=bad, old=props(enforced=TLS12, parameters=good)
    )
    sim.modify_group(GROUP, bad, lag=30)
    failed = run_provider(sim, forward, query_interval=INTERVAL)
    assert failed.status == "FAILED"
    assert "still failed-to-apply on db1 after a restart" in failed.reason
    sim.modify_group(GROUP, good, lag=30)
    back = run_provider(sim, rollback_of(forward, "req-rollback"), query_interval=INTERVAL)
    assert back.status == "SUCCESS", back.reason
    assert sim.reboots() == ["db1", "db1"]
    assert sim.effective("db1", good)
