"""Rolling reboots of cluster members, on the RDS simulator.

Every scenario asserts the reboot order, that at most one member was down at any time, that no
in-sync member was rebooted, and that a run that says in-sync left every member running with
what ForceSsl owns.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import pytest

from rds_force_ssl.facts import contract, engines
from rds_force_ssl.facts.policy import OUTCOME_IN_SYNC, OUTCOME_STOPPED
from simulator import Fault, Iam, RdsSimulator, Statement, run_provider
from simulator.dynamodb import TABLE, table_arn
from simulator.rds import arn
from tests.handlers.events import ENFORCED, INTERVAL, event

if TYPE_CHECKING:
    from mypy_boto3_rds.type_defs import DBClusterMessageTypeDef, RebootDBInstanceResultTypeDef

GROUP = "apg16-force-ssl"
DECLARED = ["w", "r1", "r2"]


def cluster_event(**kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("members", DECLARED)
    kwargs.setdefault("group", GROUP)
    return event(kind="cluster", ident="c1", **kwargs)


def aurora(
    *, version: str = "16.9", status: str = "pending-reboot", **sim_kwargs: Any
) -> RdsSimulator:
    sim = RdsSimulator(reboot_seconds=90, **sim_kwargs)
    sim.add_group(GROUP, ENFORCED, cluster=True)
    sim.add_cluster(
        "c1", group=GROUP, writer="w", readers=("r1", "r2"), status=status, engine_version=version
    )
    return sim


def effective(sim: RdsSimulator) -> bool:
    return all(sim.effective(m, ENFORCED) for m in sim.clusters["c1"].members)


def test_all_pending_readers_first_then_writer_one_at_a_time() -> None:
    sim = aurora()
    run = run_provider(sim, cluster_event(), query_interval=INTERVAL)
    assert run.status == "SUCCESS", run.reason
    assert sim.reboots() == ["r1", "r2", "w"]
    assert sim.max_concurrent_down() == 1
    assert run.data["Outcome"] == OUTCOME_IN_SYNC
    assert (run.data["Rebooted"], run.data["RebootedMembers"]) == ("true", "r1,r2,w")
    assert effective(sim)
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
    sim.instances["r1"].running.update(ENFORCED)
    run = run_provider(sim, cluster_event())
    assert run.status == "SUCCESS"
    assert sim.reboots() == ["r2", "w"]


def test_nothing_changed_and_all_in_sync_is_one_look() -> None:
    sim = aurora(status="in-sync")
    run = run_provider(sim, cluster_event(request="Update"))
    assert (run.status, sim.reboots(), run.polls) == ("SUCCESS", [], 1)


def test_pending_reboot_lingering_after_each_restart_earns_no_second_reboot() -> None:
    sim = aurora(apply_lag_seconds=150)
    run = run_provider(sim, cluster_event(), query_interval=INTERVAL)
    assert run.status == "SUCCESS", run.reason
    assert sim.reboots() == ["r1", "r2", "w"]
    assert sim.call_names().count("RebootDBInstance") == 3
    assert sim.max_concurrent_down() == 1
    assert effective(sim)


@pytest.mark.parametrize("view_lag", [0.0, 30.0])
def test_restart_events_later_than_a_reboot_earn_no_second_one_and_keep_one_down(
    view_lag: float,
) -> None:
    """RDS logs each restart 120 s late (longer than the 90 s reboot), says pending-reboot for
    60 s after it and, in the second case, keeps saying available for 30 s after accepting the
    reboot. Each member is rebooted once, and the next waits until the memory's claim or the
    events say the last one is back."""
    sim = aurora(apply_lag_seconds=60, event_lag_seconds=120, reboot_view_lag_seconds=view_lag)
    run = run_provider(sim, cluster_event(), query_interval=INTERVAL)
    assert run.status == "SUCCESS", run.reason
    assert sim.reboots() == ["r1", "r2", "w"]
    assert sim.call_names().count("RebootDBInstance") == 3
    assert sim.max_concurrent_down() == 1
    assert effective(sim)


def test_a_modifying_member_holds_the_rollout() -> None:
    sim = aurora()
    sim.busy("r2", 300)
    run = run_provider(sim, cluster_event(), query_interval=INTERVAL)
    assert run.status == "SUCCESS"
    assert sim.reboots() == ["r1", "r2", "w"]
    assert sim.max_concurrent_down() == 1
    assert sim.downtimes[0].start >= 300


def test_invalid_state_on_a_member_reboot_means_look_again() -> None:
    sim = aurora()
    real = sim.reboot_db_instance
    raced: list[bool] = []

    def racing(**kwargs: Any) -> RebootDBInstanceResultTypeDef:
        if not raced:
            raced.append(True)
            sim.busy(kwargs["DBInstanceIdentifier"], 60)
        return real(**kwargs)

    sim.reboot_db_instance = racing  # type: ignore[method-assign]
    run = run_provider(sim, cluster_event(), query_interval=INTERVAL)
    assert run.status == "SUCCESS"
    assert sim.call_names().count("RebootDBInstance") == 4  # one refused
    assert sim.reboots() == ["r1", "r2", "w"]


def test_a_member_deleted_mid_rollout_is_skipped() -> None:
    sim = aurora()
    real = sim.describe_db_clusters

    def deleting(**kwargs: Any) -> DBClusterMessageTypeDef:
        if sim.reboots() == ["r1"] and "r2" in sim.instances:
            sim.delete_instance("r2")
        return real(**kwargs)

    sim.describe_db_clusters = deleting  # type: ignore[method-assign]
    run = run_provider(sim, cluster_event(), query_interval=INTERVAL)
    assert run.status == "SUCCESS", run.reason
    assert sim.reboots() == ["r1", "w"]


def test_old_aurora_reboots_the_writer_once_and_the_readers_follow() -> None:
    """Before 14.7 / 13.10 / 12.14 a writer reboot restarts every reader too (RDS does that,
    not us): separate reader reboots would double the outage."""
    sim = aurora(version="14.6")
    run = run_provider(sim, cluster_event())
    assert run.status == "SUCCESS"
    assert [kw["DBInstanceIdentifier"] for n, kw in sim.calls if n == "RebootDBInstance"] == ["w"]
    assert sorted(sim.reboots()) == ["r1", "r2", "w"]  # what RDS restarted
    assert effective(sim)


@pytest.mark.parametrize(
    ("engine", "version", "together"),
    [
        ("aurora-postgresql", "11.9", True),
        ("aurora-postgresql", "12.13", True),
        ("aurora-postgresql", "13.9", True),
        ("aurora-postgresql", "14.6", True),
        ("aurora-postgresql", "12.14", False),
        ("aurora-postgresql", "13.10", False),
        ("aurora-postgresql", "14.7", False),
        ("aurora-postgresql", "16.9", False),
        ("aurora-postgresql", "15.2", False),
        ("aurora-postgresql", "17.4", False),
        ("aurora-mysql", "5.7.mysql_aurora.2.09.2", True),
        ("aurora-mysql", "5.7.mysql_aurora.2.10.0", False),
        ("aurora-mysql", "5.7.mysql_aurora.2.11.2", False),
        # Aurora's own version counts, not MySQL's 8.0: version 3 has read availability.
        ("aurora-mysql", "8.0.mysql_aurora.3.05.2", False),
        ("aurora-mysql", "8.0.mysql_aurora.3.08.0", False),
        ("aurora", "5.6.mysql_aurora.1.22.2", True),
        ("aurora", "5.6.10a", True),
        # A version the table cannot read: the writer alone first (never two restarts).
        ("aurora-mysql", "5.7.12", True),
        ("aurora-postgresql", "latest", True),
        ("postgres", "16.9", False),
        ("mysql", "8.0.39", False),
    ],
)
def test_writer_restarts_readers_by_engine_and_version(
    engine: str, version: str, together: bool
) -> None:
    """The engine table's read_availability, with its AWS sources (Aurora user guide)."""
    row = engines.lookup(engine)
    assert row is not None
    assert row.writer_reboot_restarts_readers(version) is together
    if row.read_availability is not None:
        assert row.read_availability.source.startswith("https://docs.aws.amazon.com/")


def test_stopped_cluster_is_done_and_says_so() -> None:
    sim = aurora()
    sim.clusters["c1"].status = "stopped"
    run = run_provider(sim, cluster_event())
    assert (run.status, run.data["Outcome"], sim.reboots()) == (
        "SUCCESS",
        OUTCOME_STOPPED,
        [],
    )


def test_failed_to_apply_on_a_member_and_nothing_changed_fails_with_its_name() -> None:
    sim = aurora()
    sim.instances["r2"].cluster_group_status = "failed-to-apply"
    run = run_provider(sim, cluster_event(request="Update"))
    assert run.status == "FAILED"
    assert "failed-to-apply on r2" in run.reason
    assert sim.reboots() == []


def test_multi_az_db_cluster_reboots_as_a_whole() -> None:
    sim = RdsSimulator(reboot_seconds=90, apply_lag_seconds=60)
    sim.add_group(GROUP, ENFORCED, cluster=True)
    sim.add_cluster("c1", group=GROUP, writer="w", readers=("r1", "r2"), engine="postgres")
    run = run_provider(sim, event(kind="cluster", ident="c1", group=GROUP))
    assert run.status == "SUCCESS", run.reason
    assert sim.call_names().count("RebootDBCluster") == 1
    assert "RebootDBInstance" not in sim.call_names()
    # RDS names the members of a Multi-AZ DB cluster; the handler never describes them.
    assert "DescribeDBInstances" not in sim.call_names()
    assert effective(sim)


def test_an_aurora_cluster_optimizing_storage_has_its_members_rebooted() -> None:
    """A cluster in storage-optimization works (it can last hours): waiting for it would wait
    out the whole budget and fail; its members are rebooted as usual."""
    sim = aurora()
    sim.clusters["c1"].status = "storage-optimization"
    run = run_provider(sim, cluster_event(), query_interval=INTERVAL)
    assert (run.status, run.data["Outcome"]) == ("SUCCESS", OUTCOME_IN_SYNC), run.reason
    assert sim.reboots() == ["r1", "r2", "w"]
    assert effective(sim)


def test_a_multi_az_cluster_optimizing_storage_is_tried_and_a_refusal_ends_with_its_state() -> None:
    """Whether RDS takes RebootDBCluster during storage-optimization is not documented; the
    simulator refuses it (InvalidDBClusterStateFault). The reconciler asks once per 4 minutes,
    never reports a success, and fails before the provider's timeout with what it saw."""
    sim = RdsSimulator(reboot_seconds=90)
    sim.add_group(GROUP, ENFORCED, cluster=True)
    sim.add_cluster("c1", group=GROUP, writer="w", readers=("r1", "r2"), engine="postgres")
    sim.clusters["c1"].status = "storage-optimization"
    ev = event(kind="cluster", ident="c1", group=GROUP)
    ev["ResourceProperties"][contract.PROP_GIVE_UP_AFTER] = "2980"
    run = run_provider(sim, ev, query_interval=INTERVAL, total_timeout=3000)
    assert run.status == "FAILED"
    assert run.reason.startswith("gave up after 2980s: still storage-optimization")
    assert sim.reboots() == []
    # once per RETRY_REFUSED_S (4 minutes)
    assert 12 <= sim.call_names().count("RebootDBCluster") <= 13


def test_multi_az_db_cluster_with_late_events_reboots_once() -> None:
    sim = RdsSimulator(reboot_seconds=90, apply_lag_seconds=60, event_lag_seconds=150)
    sim.add_group(GROUP, ENFORCED, cluster=True)
    sim.add_cluster("c1", group=GROUP, writer="w", readers=("r1", "r2"), engine="postgres")
    run = run_provider(sim, event(kind="cluster", ident="c1", group=GROUP))
    assert run.status == "SUCCESS", run.reason
    assert sim.call_names().count("RebootDBCluster") == 1
    assert sorted(sim.reboots()) == ["r1", "r2", "w"]
    assert effective(sim)


def test_multi_az_db_cluster_reboot_needs_reboot_db_instance_on_its_members() -> None:
    """The Service Authorization Reference lists rds:RebootDBInstance as a dependent action of
    rds:RebootDBCluster: the simulator asks IAM for it on every member, as RDS does."""
    sim = RdsSimulator(reboot_seconds=90)
    sim.add_group(GROUP, ENFORCED, cluster=True)
    sim.add_cluster(
        "c1", group=GROUP, writer="c1-instance-1", readers=("c1-instance-2",), engine="postgres"
    )
    cluster_only = Statement({"rds:RebootDBCluster"}, [arn("cluster", "c1")])
    sim.iam = Iam([cluster_only, MEMORY])
    with pytest.raises(Exception, match=r"rds:RebootDBInstance on resource: .*:db:c1-instance-1"):
        sim.reboot_db_cluster(DBClusterIdentifier="c1")
    sim.iam = Iam([cluster_only, MEMORY, Statement({"rds:RebootDBInstance"}, [arn("db", "c1-*")])])
    sim.reboot_db_cluster(DBClusterIdentifier="c1")
    assert sorted(sim.reboots()) == ["c1-instance-1", "c1-instance-2"]


def test_a_stopped_cluster_whose_group_was_swapped_fails_rather_than_promise_the_start() -> None:
    sim = aurora()
    sim.add_group("hand-made", {"rds.force_ssl": "0"}, cluster=True)
    sim.clusters["c1"].group = "hand-made"
    sim.clusters["c1"].status = "stopped"
    run = run_provider(sim, cluster_event())
    assert run.status == "FAILED"
    assert "['hand-made'], not apg16-force-ssl" in run.reason


def test_cluster_group_swapped_by_hand_fails() -> None:
    sim = aurora()
    sim.add_group("hand-made", ENFORCED, cluster=True)
    sim.clusters["c1"].group = "hand-made"
    run = run_provider(sim, cluster_event())
    assert run.status == "FAILED"
    assert "['hand-made'], not apg16-force-ssl" in run.reason


def test_a_broken_member_fails_at_once_instead_of_waiting_out_the_timeout() -> None:
    sim = aurora()
    sim.instances["r2"].status = "storage-full"
    run = run_provider(sim, cluster_event())
    assert run.status == "FAILED"
    assert "r2 is storage-full" in run.reason
    assert run.elapsed == 0
    assert sim.reboots() == []


def test_group_names_compare_without_case() -> None:
    sim = aurora()
    run = run_provider(sim, cluster_event(group=GROUP.upper()))
    assert run.status == "SUCCESS", run.reason


# ---- members the app does not declare ---------------------------------------------------------
# The stack's memory table, as the construct grants it to the poller.
MEMORY = Statement({"dynamodb:BatchGetItem", "dynamodb:PutItem"}, [table_arn(TABLE)])


def _policy(*, autoscaled: bool) -> Iam:
    """What ForceSsl grants for c1 (see tests/test_force_ssl.py for the template side)."""
    statements = [
        Statement({"rds:DescribeDBClusters"}, [arn("cluster", "c1")]),
        Statement({"rds:DescribeDBClusterParameters"}, [arn("cluster-pg", GROUP)]),
        Statement(
            {"rds:DescribeDBInstances", "rds:RebootDBInstance"}, [arn("db", m) for m in DECLARED]
        ),
        Statement({"rds:DescribeEvents"}, ["*"]),
        MEMORY,
    ]
    if autoscaled:
        statements.append(
            Statement(
                {"rds:DescribeDBInstances", "rds:RebootDBInstance"},
                [arn("db", "application-autoscaling-*")],
                {"application-autoscaling:resourceId": "cluster:c1"},
            )
        )
    return Iam(statements)


def test_an_undeclared_reader_in_sync_is_never_described() -> None:
    """An Aurora Auto Scaling reader created after the group change is in sync: the deploy
    does not need it, and does not fail on it (it did, with AccessDenied, before)."""
    sim = aurora()
    sim.add_autoscaled_reader("c1", "61aabbcc", status="in-sync")
    sim.iam = _policy(autoscaled=False)
    run = run_provider(sim, cluster_event(), query_interval=INTERVAL)
    assert run.status == "SUCCESS", run.reason
    assert sim.reboots() == ["r1", "r2", "w"]
    described = {kw["DBInstanceIdentifier"] for n, kw in sim.calls if n == "DescribeDBInstances"}
    assert described == set(DECLARED)


def test_an_undeclared_reader_that_needs_a_reboot_fails_with_its_name_and_the_fix() -> None:
    sim = aurora()
    reader = sim.add_autoscaled_reader("c1", "61aabbcc", status="pending-reboot")
    sim.iam = _policy(autoscaled=False)
    run = run_provider(sim, cluster_event(), query_interval=INTERVAL)
    assert run.status == "FAILED"
    assert f"member(s) {reader.identifier} need a reboot" in run.reason
    assert "autoscaled_readers=True" in run.reason
    assert "aws rds reboot-db-instance" in run.reason
    assert sim.reboots() == []  # nothing half-done before the failure
    described = {kw["DBInstanceIdentifier"] for n, kw in sim.calls if n == "DescribeDBInstances"}
    assert reader.identifier not in described


def test_opted_in_autoscaled_readers_are_rebooted_through_their_tag() -> None:
    sim = aurora()
    reader = sim.add_autoscaled_reader("c1", "61aabbcc", status="pending-reboot")
    sim.iam = _policy(autoscaled=True)
    run = run_provider(sim, cluster_event(autoscaled_readers=True), query_interval=INTERVAL)
    assert run.status == "SUCCESS", run.reason
    assert sorted(sim.reboots()) == sorted([*DECLARED, reader.identifier])
    assert sim.max_concurrent_down() == 1
    assert effective(sim)


def test_opting_in_does_not_reach_a_reader_added_by_hand() -> None:
    sim = aurora()
    sim.add_member("c1", "hand-added", status="pending-reboot")
    sim.iam = _policy(autoscaled=True)
    run = run_provider(sim, cluster_event(autoscaled_readers=True), query_interval=INTERVAL)
    assert run.status == "FAILED"
    assert "member(s) hand-added need a reboot" in run.reason


def test_a_throttled_member_describe_is_looked_at_again() -> None:
    sim = aurora()
    sim.faults.append(Fault("DescribeDBInstances", "throttle", times=2))
    run = run_provider(sim, cluster_event(), query_interval=INTERVAL)
    assert run.status == "SUCCESS"
    assert sim.reboots() == ["r1", "r2", "w"]


def test_aurora_mysql_members_are_rebooted_for_a_value_spelled_on() -> None:
    """Aurora MySQL: require_secure_transport=ON in the cluster group (the engine table accepts
    ON for 1); the rolling reboot is the same."""
    sim = RdsSimulator(reboot_seconds=90)
    sim.add_group(GROUP, {"require_secure_transport": "ON"}, cluster=True)
    sim.add_cluster(
        "c1",
        group=GROUP,
        writer="w",
        readers=("r1", "r2"),
        engine="aurora-mysql",
        engine_version="8.0.mysql_aurora.3.08.0",
    )
    run = run_provider(
        sim, cluster_event(enforced={"require_secure_transport": "ON"}), query_interval=INTERVAL
    )
    assert run.status == "SUCCESS", run.reason
    assert sim.reboots() == ["r1", "r2", "w"]
    assert all(sim.effective(m, {"require_secure_transport": "ON"}) for m in DECLARED)
