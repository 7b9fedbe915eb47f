"""The guard and ``rds-force-ssl audit`` judge alike: on the audit's own moto fleets (every engine,
explicit and default groups, Aurora, proxies), the guard's judge (handlers/judge.py, in the
Lambda asset) and ``rds_force_ssl.cli.audit.audit`` give every database the same enforced / not
enforced / cannot tell, and the same state; and on the simulator (pending-reboot, applying)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.rds.responses import RDSResponse

from rds_force_ssl.cli.audit import audit
from rds_force_ssl.handlers import judge
from simulator import RdsSimulator
from tests.cli.moto_fleets import (
    ENGINES_REGION,
    FLEET_REGION,
    build_engines_fleet,
    build_fleet,
    describe_certificates,
)


@pytest.fixture(scope="module")
def moto_regions() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setattr(RDSResponse, "describe_certificates", describe_certificates, raising=False)
        with mock_aws():
            build_fleet(None)  # type: ignore[arg-type]  # in process: no endpoint
            build_engines_fleet(None)  # type: ignore[arg-type]
            yield


Judged = dict[tuple[str, str], tuple[bool | None, str]]


def judged_by_both(rds: Any) -> tuple[Judged, Judged]:
    report = audit(rds)
    by_audit = {(r.kind, r.name): (r.enforced, r.state) for r in report.rows}
    verdicts = judge.judge_fleet(rds, judge.list_fleet(rds, proxies=True))
    by_guard = {(v.kind, v.name): (v.enforced, v.state) for v in verdicts}
    return by_audit, by_guard


@pytest.mark.parametrize("region", [FLEET_REGION, ENGINES_REGION])
def test_guard_and_audit_judge_the_moto_fleet_alike(moto_regions: None, region: str) -> None:
    by_audit, by_guard = judged_by_both(boto3.client("rds", region_name=region))
    assert by_guard == by_audit
    # The fleet has each answer, so the comparison proves something.
    assert {enforced for enforced, _ in by_guard.values()} == {True, False, None}


def test_guard_and_audit_judge_the_simulator_alike() -> None:
    """What moto cannot show: pending-reboot members, an applying instance, a proxy modifying."""
    sim = RdsSimulator()
    sim.add_group("pg16", {"rds.force_ssl": "1"})
    sim.add_instance("fresh", groups={"pg16": "pending-reboot"})
    sim.add_instance("steady", groups={"pg16": "in-sync"})
    sim.add_group("my84", {"require_secure_transport": "1"})
    sim.add_instance("shop", groups={"my84": "applying"}, engine="mysql", engine_version="8.4.6")
    sim.add_group("apg16", {"rds.force_ssl": "1"}, cluster=True)
    sim.add_cluster("ledger", group="apg16", writer="l-1", readers=("l-2",))
    sim.add_proxy("pool", status="modifying")
    by_audit, by_guard = judged_by_both(sim)
    assert by_guard == by_audit
    assert by_guard[("cluster", "ledger")] == (False, "pending-reboot")
    assert by_guard[("instance", "shop")] == (False, "applying")
