"""The audit's states that moto cannot show (it keeps every group in-sync), on the stateful RDS
simulator: configured but pending-reboot, applying, a cluster with one member still pending, a
default reported by RDS, a missing group, a listing that spans pages; for MySQL's dynamic
require_secure_transport the applying window of a change, for Aurora MySQL a new cluster group
that waits for a reboot, and a proxy whose RequireTLS change is still being applied."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rds_force_ssl import Reboot
from rds_force_ssl.cli import audit
from rds_force_ssl.facts.policy import OUTCOME_PENDING_REBOOT, OUTCOME_REBOOT_SCHEDULED
from simulator import RdsSimulator, run_provider
from tests.handlers.events import event

GROUP = "pg16-force-ssl"


def sim_with(**instances: str) -> RdsSimulator:
    """One PostgreSQL 16 instance per keyword, on GROUP, with that ParameterApplyStatus."""
    sim = RdsSimulator()
    sim.set_parameters(GROUP, {"rds.force_ssl": "1"})
    for name, status in instances.items():
        sim.add_instance(name, groups={GROUP: status})
    return sim


def by_name(sim: RdsSimulator) -> dict[str, audit.Row]:
    return {r.name: r for r in audit.audit(sim).rows}


def test_configured_but_pending_reboot_is_not_enforced() -> None:
    rows = by_name(sim_with(db1="pending-reboot", db2="in-sync", db3="applying"))
    assert (rows["db1"].value, rows["db1"].state, rows["db1"].enforced) == (
        "1",
        "pending-reboot",
        False,
    )
    assert (rows["db2"].state, rows["db2"].enforced) == ("effective", True)
    assert (rows["db3"].state, rows["db3"].enforced) == ("applying", False)
    assert audit.exit_code(rows.values()) == 1


@pytest.mark.parametrize(
    ("policy", "outcome"),
    [
        (Reboot.NEVER, OUTCOME_PENDING_REBOOT),
        (Reboot.MAINTENANCE_WINDOW, OUTCOME_REBOOT_SCHEDULED),
    ],
)
def test_a_deploy_that_leaves_the_restart_for_later_audits_as_not_in_effect(
    policy: Reboot, outcome: str
) -> None:
    """ForceSsl under Reboot.NEVER (or before the window, MAINTENANCE_WINDOW) finishes with the
    group configured but pending-reboot: the audit says so, and exits 1, until the restart."""
    sim = sim_with(db1="pending-reboot")
    ev = event(ident="db1", group=GROUP, policy=policy.value)
    run = run_provider(sim, ev)
    assert (run.status, run.data["Outcome"], sim.reboots()) == ("SUCCESS", outcome, [])
    row = by_name(sim)["db1"]
    assert (row.value, row.state, row.enforced) == ("1", "pending-reboot", False)
    assert audit.exit_code([row]) == 1
    sim.reboot_db_instance(DBInstanceIdentifier="db1")  # the owner's restart, or the window's
    sim.advance(sim.reboot_seconds)
    assert by_name(sim)["db1"].enforced


def test_a_reboot_makes_it_effective() -> None:
    sim = sim_with(db1="pending-reboot")
    sim.reboot_db_instance(DBInstanceIdentifier="db1")
    sim.advance(sim.reboot_seconds)
    rows = by_name(sim)
    assert (rows["db1"].state, rows["db1"].enforced) == ("effective", True)
    assert audit.exit_code(rows.values()) == 0


def test_cluster_with_one_member_still_pending() -> None:
    sim = RdsSimulator()
    sim.set_parameters("apg-force-ssl", {"rds.force_ssl": "1"}, cluster=True)
    sim.add_cluster("ledger", group="apg-force-ssl", writer="w", readers=("r1",))
    sim.instances["w"].cluster_group_status = "in-sync"
    row = by_name(sim)["ledger"]
    assert row.kind == "cluster"
    assert row.state == "pending-reboot"
    assert not row.enforced
    assert dict(row.members) == {"w": "in-sync", "r1": "pending-reboot"}


def test_value_reported_by_rds_for_a_default_group() -> None:
    sim = RdsSimulator()
    sim.set_parameters("default.postgres16", {"rds.force_ssl": "1"}, source="engine-default")
    sim.add_instance("db1", groups={"default.postgres16": "in-sync"})
    row = by_name(sim)["db1"]
    assert (row.value, row.source, row.enforced) == ("1", "engine default (reported)", True)


def test_engine_default_assumed_per_engine_and_version() -> None:
    sim = RdsSimulator()
    sim.set_parameters("empty", {})
    sim.set_parameters("empty-cluster", {}, cluster=True)
    sim.add_instance("pg14", engine_version="14.12", groups={"empty": "in-sync"})
    sim.add_instance("pg15", engine_version="15.10", groups={"empty": "in-sync"})
    sim.add_cluster(
        "apg16", group="empty-cluster", writer="a16", status="in-sync", engine_version="16.6"
    )
    sim.add_cluster(
        "apg17", group="empty-cluster", writer="a17", status="in-sync", engine_version="17.4"
    )
    rows = by_name(sim)
    assert {n: r.value for n, r in rows.items()} == {
        "pg14": "0",
        "pg15": "1",
        "apg16": "0",
        "apg17": "1",
    }
    assert {r.source for r in rows.values()} == {"engine default (assumed)"}


def test_missing_group_is_reported_not_guessed() -> None:
    """Nothing was read, so nothing is known: not "not configured" (exit 1), but unknown."""
    sim = RdsSimulator()
    sim.add_instance("db1", groups={"deleted-group": "in-sync"})
    report = audit.audit(sim)
    [row] = report.rows
    assert (row.value, row.source, row.state, row.enforced) == (
        None,
        "group not found",
        "unknown",
        None,
    )
    assert audit.exit_code(report.rows) == 2
    assert report.notes == [
        "not counted either way (instance db1): the parameter group was not found (deleted "
        "since the database was listed?); run again to judge them"
    ]


def test_listing_read_until_the_parameter_once_per_group() -> None:
    sim = RdsSimulator()
    # ~400 parameters in a real group: rds.value sits on the third page of 100.
    sim.set_parameters(GROUP, {"rds.force_ssl": "1"}, others=250)
    for n in range(5):
        sim.add_instance(f"db{n}", groups={GROUP: "in-sync"})
    rows = audit.audit(sim).rows
    assert all(r.enforced for r in rows)
    pages = [kw for name, kw in sim.calls if name == "DescribeDBParameters"]
    assert [kw.get("Marker") for kw in pages] == [None, "100", "200"]


def test_ca_expiry_from_describe_certificates() -> None:
    sim = sim_with(db1="in-sync")
    sim.certificates["rds-ca-rsa2048-g1"] = datetime(2061, 5, 25, tzinfo=UTC)
    assert by_name(sim)["db1"].ca_valid_till == datetime(2061, 5, 25, tzinfo=UTC)
    assert sim.call_names().count("DescribeCertificates") == 1


RST = "require_secure_transport"


def test_mysql_dynamic_change_is_applying_then_effective_without_a_reboot() -> None:
    sim = RdsSimulator(applying_seconds=20)
    sim.set_parameters("mysql80-app", {RST: "0"})
    sim.add_instance(
        "shop", engine="mysql", engine_version="8.0.40", groups={"mysql80-app": "in-sync"}
    )
    assert (by_name(sim)["shop"].state, by_name(sim)["shop"].enforced) == ("not configured", False)
    sim.modify_group("mysql80-app", {RST: "1"})
    sim.advance(1)
    row = by_name(sim)["shop"]
    # The group already says 1, but the server is still applying it: not yet in effect.
    assert (row.setting, row.apply_status, row.state, row.enforced) == (
        f"{RST}=1",
        "applying",
        "applying",
        False,
    )
    sim.advance(sim.applying_seconds)
    row = by_name(sim)["shop"]
    assert (row.state, row.enforced, row.control) == ("effective", True, "RDS.39")
    assert sim.effective("shop", {RST: "1"})  # the engine runs it: no false success
    assert sim.reboots() == []


def test_aurora_mysql_new_cluster_group_waits_for_its_members() -> None:
    sim = RdsSimulator()
    sim.set_parameters("amy3-tls", {RST: "ON"}, cluster=True)
    sim.add_cluster(
        "catalog",
        group="amy3-tls",
        writer="w",
        readers=("r1",),
        engine="aurora-mysql",
        engine_version="8.0.mysql_aurora.3.08.0",
    )
    row = by_name(sim)["catalog"]
    assert (row.setting, row.state, row.enforced, row.control) == (
        f"{RST}=ON",
        "pending-reboot",
        False,
        None,  # no Security Hub control checks Aurora
    )


def test_proxy_require_tls_while_modifying_is_not_yet_effective() -> None:
    sim = RdsSimulator()
    sim.add_proxy("pool", require_tls=True, status="modifying")
    sim.add_proxy("steady", engine_family="MYSQL", require_tls=True)
    rows = by_name(sim)
    assert (rows["pool"].state, rows["pool"].enforced) == ("modifying", False)
    assert (rows["steady"].state, rows["steady"].enforced, rows["steady"].control) == (
        "effective",
        True,
        "RDS.43",
    )
    assert sim.call_names().count("DescribeDBProxies") == 1
