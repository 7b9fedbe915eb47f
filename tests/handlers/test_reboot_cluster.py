"""Rolling reboots of cluster members, on the RDS simulator.

Every scenario asserts the reboot order, that at most one member was down at any time, and that
no in-sync member was rebooted.
"""

from __future__ import annotations

import itertools
from typing import Any

from rds_force_ssl.handlers import reboot
from tests.handlers.test_reboot_scenarios import INTERVAL, event
from tests.rds_sim import RdsSimulator, run_duplicates, run_provider

GROUP = "apg16-force-ssl"


def cluster_event(**kwargs: Any) -> dict[str, Any]:
    return event(kind="cluster", ident="c1", group=GROUP, **kwargs)


def aurora(*, version: str = "16.9", status: str = "pending-reboot") -> RdsSimulator:
    sim = RdsSimulator(reboot_seconds=90)
    sim.add_cluster(
        "c1", group=GROUP, writer="w", readers=("r1", "r2"), status=status, engine_version=version
    )
    return sim


def test_all_pending_readers_first_then_writer_one_at_a_time() -> None:
    sim = aurora()
    run = run_provider(sim, cluster_event(), query_interval=INTERVAL)
    assert run.status == "SUCCESS", run.reason
    assert sim.reboots() == ["r1", "r2", "w"]
    assert sim.max_concurrent_down() == 1
    assert run.data["Outcome"] == reboot.OUTCOME_IN_SYNC
    assert all(sim.instances[m].cluster_group_status == "in-sync" for m in ("w", "r1", "r2"))
    # No failover on a member reboot: the writer stays the writer.
    assert all("ForceFailover" not in kw for name, kw in sim.calls if name == "RebootDBInstance")


def test_each_member_is_back_before_the_next_starts() -> None:
    sim = aurora()
    run_provider(sim, cluster_event(), query_interval=INTERVAL)
    spans = sorted((d.start, d.end) for d in sim.downtimes)
    for (_, end), (next_start, _) in itertools.pairwise(spans):
        assert end is not None
        assert next_start >= end


def test_an_in_sync_member_is_not_rebooted() -> None:
    sim = aurora()
    sim.instances["r1"].cluster_group_status = "in-sync"
    run = run_provider(sim, cluster_event())
    assert run.status == "SUCCESS"
    assert sim.reboots() == ["r2", "w"]


def test_all_in_sync_means_no_reboot() -> None:
    sim = aurora(status="in-sync")
    run = run_provider(sim, cluster_event())
    assert (run.status, sim.reboots(), run.polls) == ("SUCCESS", [], 1)


def test_a_modifying_member_holds_the_rollout() -> None:
    sim = aurora()
    sim.busy("r2", 300)
    run = run_provider(sim, cluster_event(), query_interval=INTERVAL)
    assert run.status == "SUCCESS"
    assert sim.reboots() == ["r1", "r2", "w"]
    assert sim.max_concurrent_down() == 1
    first = sim.downtimes[0]
    assert first.identifier == "r1"
    assert first.start >= 300


def test_invalid_state_on_a_member_reboot_means_look_again() -> None:
    sim = aurora()
    real = sim.reboot_db_instance
    raced: list[bool] = []

    def racing(**kwargs: Any) -> dict[str, Any]:
        if not raced:
            raced.append(True)
            sim.busy(kwargs["DBInstanceIdentifier"], 60)
        return real(**kwargs)

    sim.reboot_db_instance = racing  # type: ignore[method-assign]
    run = run_provider(sim, cluster_event(), query_interval=INTERVAL)
    assert run.status == "SUCCESS"
    assert sim.call_names().count("RebootDBInstance") == 4  # one refused
    assert sim.reboots() == ["r1", "r2", "w"]
    assert sim.max_concurrent_down() == 1


def test_a_member_deleted_mid_rollout_is_skipped() -> None:
    sim = aurora()

    def delete_r2_after_first_reboot(poll: int) -> None:
        if sim.reboots() == ["r1"] and "r2" in sim.instances:
            sim.delete_instance("r2")

    run = run_provider(
        sim, cluster_event(), query_interval=INTERVAL, on_poll=delete_r2_after_first_reboot
    )
    assert run.status == "SUCCESS", run.reason
    assert sim.reboots() == ["r1", "w"]
    assert sim.max_concurrent_down() == 1


def test_a_duplicate_event_reboots_nothing_twice() -> None:
    sim = aurora()
    first = run_provider(sim, cluster_event())
    second = run_provider(sim, cluster_event())
    assert (first.status, second.status) == ("SUCCESS", "SUCCESS")
    assert sim.reboots() == ["r1", "r2", "w"]


def test_a_duplicate_event_interleaved_keeps_one_member_down_at_a_time() -> None:
    sim = aurora()
    finished = run_duplicates(sim, cluster_event(), query_interval=INTERVAL)
    assert finished == {0, 1}
    assert sim.reboots() == ["r1", "r2", "w"]
    assert sim.max_concurrent_down() == 1


def test_old_aurora_reboots_the_writer_once_and_the_readers_follow() -> None:
    """Before 14.7 / 13.10 / 12.14 a writer reboot restarts every reader too (RDS does that,
    not us): separate reader reboots would double the outage."""
    sim = aurora(version="14.6")
    run = run_provider(sim, cluster_event())
    assert run.status == "SUCCESS"
    assert sim.call_names().count("RebootDBInstance") == 1
    assert [kw["DBInstanceIdentifier"] for n, kw in sim.calls if n == "RebootDBInstance"] == ["w"]
    assert sorted(sim.reboots()) == ["r1", "r2", "w"]  # what RDS restarted


def test_writer_restarts_readers_by_version() -> None:
    restarts = reboot.writer_reboot_restarts_readers
    assert [restarts(v) for v in ("11.9", "12.13", "13.9", "14.6")] == [True] * 4
    assert [restarts(v) for v in ("12.14", "13.10", "14.7", "15.2", "16.9")] == [False] * 5


def test_stopped_cluster_is_done_and_says_so() -> None:
    sim = aurora()
    sim.clusters["c1"].status = "stopped"
    run = run_provider(sim, cluster_event())
    assert (run.status, run.data["Outcome"], sim.reboots()) == (
        "SUCCESS",
        reboot.OUTCOME_STOPPED,
        [],
    )


def test_failed_to_apply_on_a_member_fails_with_its_name() -> None:
    sim = aurora()
    sim.instances["r2"].cluster_group_status = "failed-to-apply"
    run = run_provider(sim, cluster_event())
    assert run.status == "FAILED"
    assert "failed-to-apply on r2" in run.reason
    assert sim.reboots() == []


def test_multi_az_db_cluster_reboots_as_a_whole() -> None:
    sim = RdsSimulator(reboot_seconds=90)
    sim.add_cluster("c1", group=GROUP, writer="w", readers=("r1", "r2"), engine="postgres")
    run = run_provider(sim, cluster_event())
    assert run.status == "SUCCESS", run.reason
    assert sim.call_names().count("RebootDBCluster") == 1
    assert "RebootDBInstance" not in sim.call_names()
    # RDS names the members of a Multi-AZ DB cluster; the handler never describes them.
    assert "DescribeDBInstances" not in sim.call_names()


def test_cluster_group_swapped_by_hand_fails() -> None:
    sim = aurora()
    sim.clusters["c1"].group = "hand-made"
    run = run_provider(sim, cluster_event())
    assert run.status == "FAILED"
    assert "hand-made, not apg16-force-ssl" in run.reason


def test_a_broken_member_fails_at_once_instead_of_waiting_out_the_timeout() -> None:
    sim = aurora()
    sim.instances["r2"].status = "incompatible-parameters"
    run = run_provider(sim, cluster_event())
    assert run.status == "FAILED"
    assert "r2 (incompatible-parameters) cannot be rebooted" in run.reason
    assert run.elapsed == 0
    assert sim.reboots() == []


def test_a_member_iam_does_not_name_fails_with_the_member_and_the_fix() -> None:
    """An Aurora reader added outside the app (autoscaling, by hand) is not in the policy."""
    sim = aurora()
    sim.denied = {"r2"}
    run = run_provider(sim, cluster_event())
    assert run.status == "FAILED"
    assert "not allowed to read or reboot DB instance r2 (AccessDenied)" in run.reason
    assert "Declare it in the cluster" in run.reason


def test_group_names_compare_without_case() -> None:
    """RDS stores group names in lower case; the template may not."""
    sim = aurora()
    sim.clusters["c1"].group = GROUP.lower()
    run = run_provider(sim, event(kind="cluster", ident="c1", group=GROUP.upper()))
    assert run.status == "SUCCESS", run.reason


def test_slow_in_sync_members_are_not_rebooted_twice() -> None:
    sim = RdsSimulator(reboot_seconds=90, apply_lag_seconds=40)
    sim.add_cluster("c1", group=GROUP, writer="w", readers=("r1", "r2"))
    run = run_provider(sim, cluster_event(), query_interval=10)
    assert run.status == "SUCCESS"
    assert sim.reboots() == ["r1", "r2", "w"]
    assert sim.max_concurrent_down() == 1
    assert (run.data["Rebooted"], run.data["RebootedMembers"]) == ("true", "r1,r2,w")
