"""The reboot reconciler against the stateful RDS simulator: starting state -> calls and outcome.

Every scenario runs the real on_event / is_complete through a Provider-framework driver on the
simulator's clock, so a test takes milliseconds while it covers minutes of RDS time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from rds_force_ssl.handlers import reboot
from tests.rds_sim import RdsSimulator, run_duplicates, run_provider

GROUP = "stack-dbparametergroup-abc"
INTERVAL = 15.0


def event(
    *,
    request: str = "Create",
    kind: str = "instance",
    ident: str = "db1",
    group: str = GROUP,
    failover: bool = False,
    parameters: dict[str, str] | None = None,
    physical_id: str | None = None,
) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "RequestType": request,
        "RequestId": f"req-{request.lower()}-1",
        "ResourceType": reboot.RESOURCE_TYPE,
        "ResponseURL": "https://cloudformation-custom-resource-response.example/secret-presigned",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider",
            reboot.PROP_KIND: kind,
            reboot.PROP_IDENTIFIER: ident,
            reboot.PROP_PARAMETER_GROUP: group,
            reboot.PROP_PARAMETERS: parameters or {"rds.force_ssl": "1"},
            reboot.PROP_FORCE_FAILOVER: "true" if failover else "false",
        },
    }
    if physical_id is not None:
        ev["PhysicalResourceId"] = physical_id
    return ev


@dataclass(frozen=True)
class Scenario:
    name: str
    setup: Callable[[RdsSimulator], None]
    status: str
    reboots: list[str]
    outcome: str = ""
    reason: str = ""
    event: dict[str, Any] | None = None


def pending(sim: RdsSimulator) -> None:
    sim.add_instance("db1", groups={GROUP: "pending-reboot"})


def in_sync(sim: RdsSimulator) -> None:
    sim.add_instance("db1", groups={GROUP: "in-sync"})


def modifying_then_pending(sim: RdsSimulator) -> None:
    sim.add_instance("db1", groups={"default.postgres16": "in-sync"})
    sim.modify_instance("db1", group=GROUP, seconds=300)


def rebooting_by_cloudformation(sim: RdsSimulator) -> None:
    # CloudFormation's own reboot is still under way when the custom resource starts.
    sim.add_instance("db1", groups={GROUP: "pending-reboot"})
    sim.reboot_db_instance(DBInstanceIdentifier="db1")
    sim.calls.clear()


def applying(sim: RdsSimulator) -> None:
    sim.add_instance("db1", groups={GROUP: "in-sync"})
    sim.edit_group(GROUP, static=False, applying_seconds=40)


def static_edit(sim: RdsSimulator) -> None:
    sim.add_instance("db1", groups={GROUP: "in-sync"})
    sim.edit_group(GROUP, static=True)


def stopped(sim: RdsSimulator) -> None:
    sim.add_instance("db1", groups={GROUP: "pending-reboot"})
    sim.stop_instance("db1")


def failed_to_apply(sim: RdsSimulator) -> None:
    sim.add_instance("db1", groups={GROUP: "failed-to-apply"})


def incompatible(sim: RdsSimulator) -> None:
    sim.add_instance("db1", status="incompatible-parameters", groups={GROUP: "pending-reboot"})


def recoverable_kms(sim: RdsSimulator) -> None:
    sim.add_instance(
        "db1",
        status="inaccessible-encryption-credentials-recoverable",
        groups={GROUP: "pending-reboot"},
    )


def mixed_case_group(sim: RdsSimulator) -> None:
    sim.add_instance("db1", groups={GROUP.lower(): "pending-reboot"})


def other_group(sim: RdsSimulator) -> None:
    sim.add_instance("db1", groups={"hand-made": "in-sync"})


def gone(sim: RdsSimulator) -> None:
    sim.add_instance("other", groups={GROUP: "pending-reboot"})


def pending_database_upgrade(sim: RdsSimulator) -> None:
    sim.add_instance("db1", groups={GROUP: "pending-database-upgrade"})


SCENARIOS = [
    Scenario("in-sync: no reboot", in_sync, "SUCCESS", [], reboot.OUTCOME_IN_SYNC),
    Scenario("pending-reboot: one reboot", pending, "SUCCESS", ["db1"], reboot.OUTCOME_IN_SYNC),
    Scenario(
        "modifying, then pending",
        modifying_then_pending,
        "SUCCESS",
        ["db1"],
        reboot.OUTCOME_IN_SYNC,
    ),
    Scenario(
        "CloudFormation already rebooting: wait, no second reboot",
        rebooting_by_cloudformation,
        "SUCCESS",
        ["db1"],
        reboot.OUTCOME_IN_SYNC,
    ),
    Scenario("dynamic change applying: wait", applying, "SUCCESS", [], reboot.OUTCOME_IN_SYNC),
    Scenario("static edit: one reboot", static_edit, "SUCCESS", ["db1"], reboot.OUTCOME_IN_SYNC),
    Scenario("stopped: done, applies at start", stopped, "SUCCESS", [], reboot.OUTCOME_STOPPED),
    Scenario("failed-to-apply", failed_to_apply, "FAILED", [], reason="failed-to-apply"),
    Scenario("incompatible-parameters", incompatible, "FAILED", [], reason="incompatible-param"),
    Scenario("KMS key unreachable", recoverable_kms, "FAILED", [], reason="credentials-recov"),
    Scenario("group changed by hand", other_group, "FAILED", [], reason="hand-made"),
    Scenario(
        "group name in another case",
        mixed_case_group,
        "SUCCESS",
        ["db1"],
        reboot.OUTCOME_IN_SYNC,
        event=event(group="Stack-DBParameterGroup-ABC"),
    ),
    Scenario("instance gone", gone, "FAILED", [], reason="does not exist"),
    Scenario(
        "pending-database-upgrade",
        pending_database_upgrade,
        "FAILED",
        [],
        reason="pending-database-upgrade",
    ),
    Scenario(
        "Update with new parameters on an in-sync instance",
        in_sync,
        "SUCCESS",
        [],
        reboot.OUTCOME_IN_SYNC,
        event=event(
            request="Update",
            parameters={"rds.force_ssl": "1", "work_mem": "4096"},
            physical_id="rds-force-ssl:instance:db1",
        ),
    ),
]


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_instance_scenario(sc: Scenario) -> None:
    sim = RdsSimulator(reboot_seconds=90)
    sc.setup(sim)
    run = run_provider(sim, sc.event or event(), query_interval=INTERVAL)
    assert run.status == sc.status, run.reason
    assert sc.reason in run.reason
    # Every accepted reboot, including any CloudFormation made before we started.
    assert sim.reboots() == sc.reboots
    assert sim.call_names().count("RebootDBInstance") <= len(sc.reboots)
    if sc.outcome:
        assert run.data["Outcome"] == sc.outcome
        assert run.physical_id == "rds-force-ssl:instance:db1"
    if sc.status == "SUCCESS":
        assert run.data["StateAtStart"]
    assert sim.max_concurrent_down() <= 1


def test_pending_reboot_finishes_within_one_interval_of_in_sync() -> None:
    sim = RdsSimulator(reboot_seconds=90)
    pending(sim)
    run = run_provider(sim, event(), query_interval=INTERVAL)
    back = sim.downtimes[0].end
    assert back is not None
    assert run.status == "SUCCESS"
    assert 0 <= run.elapsed - back <= INTERVAL
    assert run.data["State"] == "available/in-sync"


def test_invalid_state_on_reboot_means_look_again() -> None:
    """Someone starts a modification between our describe and our reboot."""
    sim = RdsSimulator(reboot_seconds=90)
    pending(sim)
    real_reboot = sim.reboot_db_instance
    raced = []

    def racing_reboot(**kwargs: Any) -> dict[str, Any]:
        if not raced:
            raced.append(True)
            sim.busy("db1", 120)
        return real_reboot(**kwargs)

    sim.reboot_db_instance = racing_reboot  # type: ignore[method-assign]
    run = run_provider(sim, event(), query_interval=INTERVAL)
    assert run.status == "SUCCESS"
    assert sim.call_names().count("RebootDBInstance") == 2  # one refused, one accepted
    assert sim.reboots() == ["db1"]


def test_failover_only_on_multi_az() -> None:
    multi = RdsSimulator()
    multi.add_instance("db1", groups={GROUP: "pending-reboot"}, multi_az=True)
    assert run_provider(multi, event(failover=True)).status == "SUCCESS"
    single = RdsSimulator()
    single.add_instance("db1", groups={GROUP: "pending-reboot"}, multi_az=False)
    assert run_provider(single, event(failover=True)).status == "SUCCESS"
    reboot_args = [kw for name, kw in multi.calls if name == "RebootDBInstance"]
    assert reboot_args == [{"DBInstanceIdentifier": "db1", "ForceFailover": True}]
    reboot_args = [kw for name, kw in single.calls if name == "RebootDBInstance"]
    assert reboot_args == [{"DBInstanceIdentifier": "db1"}]


def test_stopped_instance_applies_when_started() -> None:
    sim = RdsSimulator()
    stopped(sim)
    assert run_provider(sim, event()).data["Outcome"] == reboot.OUTCOME_STOPPED
    sim.start_instance("db1")
    sim.advance(200)
    assert sim.instances["db1"].groups == {GROUP: "in-sync"}


def test_duplicate_event_after_success_does_not_reboot_again() -> None:
    sim = RdsSimulator()
    pending(sim)
    first = run_provider(sim, event())
    second = run_provider(sim, event())
    assert (first.status, second.status) == ("SUCCESS", "SUCCESS")
    assert sim.reboots() == ["db1"]


def test_duplicate_event_interleaved_with_the_first_reboots_once() -> None:
    """CloudFormation retries the same request while the first run is still polling."""
    sim = RdsSimulator()
    pending(sim)
    finished = run_duplicates(sim, event(), query_interval=INTERVAL)
    assert finished == {0, 1}
    assert sim.reboots() == ["db1"]
    assert sim.call_names().count("RebootDBInstance") == 1


def test_delete_makes_no_aws_call_and_keeps_the_physical_id() -> None:
    sim = RdsSimulator()
    pending(sim)
    ev = event(request="Delete", physical_id="rds-force-ssl:instance:db1")
    assert reboot.handle_on_event(ev, sim) == {"PhysicalResourceId": "rds-force-ssl:instance:db1"}
    assert reboot.handle_is_complete(ev, sim) == {"IsComplete": True}
    assert sim.calls == []


def test_delete_of_a_database_already_gone_succeeds() -> None:
    sim = RdsSimulator()
    ev = event(request="Delete", physical_id="rds-force-ssl:instance:db1")
    assert reboot.handle_on_event(ev, sim)["PhysicalResourceId"] == "rds-force-ssl:instance:db1"


def test_access_denied_on_the_instance_names_it() -> None:
    sim = RdsSimulator()
    pending(sim)
    sim.denied = {"db1"}
    run = run_provider(sim, event())
    assert run.status == "FAILED"
    assert "not allowed to read or reboot DB instance db1" in run.reason


def test_busy_forever_ends_in_the_provider_timeout() -> None:
    sim = RdsSimulator()
    sim.add_instance("db1", status="modifying", groups={GROUP: "pending-reboot"})
    run = run_provider(sim, event(), query_interval=INTERVAL, total_timeout=600)
    assert run.status == "FAILED"
    assert "timed out" in run.reason
    assert sim.reboots() == []


def test_missing_properties_fail_with_the_names() -> None:
    ev = event()
    del ev["ResourceProperties"][reboot.PROP_IDENTIFIER]
    with pytest.raises(reboot.ReconcileError, match=reboot.PROP_IDENTIFIER):
        reboot.handle_on_event(ev, RdsSimulator())


def test_log_lines_carry_decisions_but_never_the_response_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim = RdsSimulator()
    pending(sim)
    with caplog.at_level("INFO", logger="rds_force_ssl.reboot"):
        run_provider(sim, event())
    text = caplog.text
    assert "available/pending-reboot" in text
    assert "rebooted db1" in text
    assert "secret-presigned" not in text
    assert "ResponseURL" not in text


# ---- the reboot marker: at most one reboot per database per request ----------------------
def test_data_says_whether_this_request_rebooted() -> None:
    rebooted = RdsSimulator()
    pending(rebooted)
    run = run_provider(rebooted, event())
    assert (run.data["Rebooted"], run.data["RebootedMembers"]) == ("true", "")
    assert rebooted.instances["db1"].tags == {reboot.REBOOT_TAG: "req-create-1"}
    quiet = RdsSimulator()
    in_sync(quiet)
    assert run_provider(quiet, event()).data["Rebooted"] == "false"
    by_cloudformation = RdsSimulator()
    rebooting_by_cloudformation(by_cloudformation)
    assert run_provider(by_cloudformation, event()).data["Rebooted"] == "false"


def test_a_slow_in_sync_after_the_restart_does_not_cause_a_second_reboot() -> None:
    """If RDS reported available a while before in-sync, a reconciler without memory would
    reboot again; the marker says this request already rebooted it."""
    sim = RdsSimulator(reboot_seconds=90, apply_lag_seconds=40)
    pending(sim)
    run = run_provider(sim, event(), query_interval=10)
    assert run.status == "SUCCESS"
    assert sim.reboots() == ["db1"]
    assert run.data["Rebooted"] == "true"


def test_a_new_request_may_reboot_again() -> None:
    sim = RdsSimulator()
    pending(sim)
    run_provider(sim, event())
    sim.edit_group(GROUP, static=True)
    update = event(request="Update", physical_id="rds-force-ssl:instance:db1")
    assert run_provider(sim, update).status == "SUCCESS"
    assert sim.reboots() == ["db1", "db1"]
    assert sim.instances["db1"].tags == {reboot.REBOOT_TAG: "req-update-1"}


def test_the_handler_gives_up_with_the_last_state_before_the_provider_does() -> None:
    sim = RdsSimulator()
    sim.add_instance("db1", status="modifying", groups={GROUP: "pending-reboot"})
    ev = event()
    ev["ResourceProperties"][reboot.PROP_GIVE_UP_AFTER] = "570"
    run = run_provider(sim, ev, query_interval=INTERVAL, total_timeout=600)
    assert run.status == "FAILED"
    assert run.reason.startswith("gave up after 570s: still modifying/pending-reboot")
