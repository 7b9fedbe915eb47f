"""The RDS simulator itself: botocore-faithful, and as unkind as it claims to be."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from simulator import EPOCH, Fault, RdsSimulator, shapes


def world(**kwargs: float) -> RdsSimulator:
    sim = RdsSimulator(reboot_seconds=90, **kwargs)  # type: ignore[arg-type]
    sim.add_group("g", {"work_mem": "4096"})
    sim.add_instance("db1", groups={"g": "in-sync"})
    return sim


def test_a_response_key_botocore_does_not_know_is_caught() -> None:
    with pytest.raises(AssertionError, match="Status is not in botocore's DBInstance"):
        shapes.check_response(
            "DescribeDBInstances", {"DBInstances": [{"DBInstanceIdentifier": "a", "Status": "x"}]}
        )
    with pytest.raises(AssertionError, match="expected timestamp"):
        shapes.check_response("DescribeEvents", {"Events": [{"Date": "2026-01-05"}]})


def test_a_request_botocore_would_refuse_is_caught() -> None:
    with pytest.raises(AssertionError, match="DescribeEvents request botocore would refuse"):
        world().describe_events(SourceType="db-instance", MaxRecords="100")


def test_a_restart_before_rds_learns_of_a_group_change_loads_the_old_values() -> None:
    sim = world()
    sim.modify_group("g", {"rds.force_ssl": "1"}, lag=120)
    assert (
        sim.describe_db_parameters(DBParameterGroupName="g", MaxRecords=100)["Parameters"][-1][
            "ParameterValue"
        ]
        == "1"
    )  # the group says it at once
    sim.reboot_db_instance(DBInstanceIdentifier="db1")
    sim.advance(100)
    assert sim.instances["db1"].apply == "in-sync"
    assert not sim.effective("db1", {"rds.force_ssl": "1"})  # the restart was too early
    sim.advance(30)
    assert sim.instances["db1"].apply == "pending-reboot"


def test_apply_type_decides_pending_reboot_or_applying() -> None:
    sim = world()
    sim.modify_group("g", {"work_mem": "8192"})
    sim.advance(0)
    assert sim.instances["db1"].apply == "applying"
    sim.advance(sim.applying_seconds)
    assert (sim.instances["db1"].apply, sim.effective("db1", {"work_mem": "8192"})) == (
        "in-sync",
        True,
    )
    listing = sim.describe_db_parameters(DBParameterGroupName="g")["Parameters"]
    assert {p["ParameterName"]: p["ApplyType"] for p in listing} == {"work_mem": "dynamic"}


def test_restarts_are_logged_as_rds_words_them_and_after_the_event_lag() -> None:
    sim = world(event_lag_seconds=30)
    sim.reboot_db_instance(DBInstanceIdentifier="db1")
    since = datetime.fromtimestamp(EPOCH, UTC)
    assert sim.describe_events(SourceType="db-instance", StartTime=since)["Events"] == []
    sim.advance(130)
    events = sim.describe_events(
        SourceType="db-instance",
        SourceIdentifier="db1",
        StartTime=since,
        EventCategories=["availability"],
    )["Events"]
    assert [e["Message"] for e in events] == ["DB instance shutdown", "DB instance restarted"]
    assert events[1]["Date"] == datetime.fromtimestamp(EPOCH + 90, UTC)


def test_events_page_by_max_records() -> None:
    sim = world()
    sim.event_lag_seconds = 0.0  # the paging, not the lag
    sim.add_noise_events("db1", 45)
    first = sim.describe_events(SourceType="db-instance", MaxRecords=20)
    assert (len(first["Events"]), first["Marker"]) == (20, "20")
    with pytest.raises(ClientError, match="InvalidParameterValue"):
        sim.describe_events(SourceType="db-instance", MaxRecords=10)


def test_a_lost_answer_still_reboots_and_the_retry_meets_invalid_state() -> None:
    sim = world()
    sim.faults.append(Fault("RebootDBInstance", "lost-retried"))
    with pytest.raises(ClientError, match="InvalidDBInstanceState"):
        sim.reboot_db_instance(DBInstanceIdentifier="db1")
    assert sim.reboots() == ["db1"]
    sim2 = world()
    sim2.faults.append(Fault("RebootDBInstance", "lost"))
    with pytest.raises(ReadTimeoutError):
        sim2.reboot_db_instance(DBInstanceIdentifier="db1")
    assert sim2.reboots() == ["db1"]


def test_a_reboot_is_refused_unless_rds_allows_one() -> None:
    sim = world()
    for status, allowed in [
        ("available", True),
        ("storage-optimization", True),
        ("incompatible-parameters", True),
        ("backing-up", False),
        ("modifying", False),
        ("stopped", False),
    ]:
        sim.instances["db1"].status = status
        if allowed:
            sim.reboot_db_instance(DBInstanceIdentifier="db1")
            sim.advance(100)
        else:
            with pytest.raises(ClientError, match="InvalidDBInstanceState"):
                sim.reboot_db_instance(DBInstanceIdentifier="db1")
