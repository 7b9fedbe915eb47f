"""The reconciler against moto: real botocore requests, responses and error shapes.

moto keeps every group in-sync (FACTS.md), so these tests prove the wiring, not the state
machine: the handler's calls serialize, its reads find the keys botocore returns, and the error
codes it matches are the ones botocore raises.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rds_force_ssl.handlers import reboot
from tests.handlers.test_reboot_scenarios import event

REGION = "us-east-1"


@pytest.fixture
def rds(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield boto3.client("rds", region_name=REGION)


def _instance(rds: Any, ident: str = "db1", group: str = "pg-ssl") -> None:
    rds.create_db_parameter_group(
        DBParameterGroupName=group, DBParameterGroupFamily="postgres16", Description="ssl"
    )
    rds.create_db_instance(
        DBInstanceIdentifier=ident,
        DBInstanceClass="db.t4g.micro",
        Engine="postgres",
        EngineVersion="16.9",
        AllocatedStorage=20,
        MasterUsername="postgres",
        MasterUserPassword="not-a-real-password",
        DBParameterGroupName=group,
    )


def test_instance_in_sync_completes_without_reboot(rds: Any) -> None:
    _instance(rds)
    ev = event(group="pg-ssl")
    started = reboot.handle_on_event(ev, rds)
    assert started["PhysicalResourceId"] == "rds-force-ssl:instance:db1"
    assert started["Data"]["StateAtStart"] == "available/in-sync"
    done = reboot.handle_is_complete({**ev, **started}, rds)
    assert done == {
        "IsComplete": True,
        "Data": {
            "Outcome": reboot.OUTCOME_IN_SYNC,
            "State": "available/in-sync",
            "Rebooted": "false",
            "RebootedMembers": "",
        },
    }


def test_reboot_and_its_marker_round_trip_through_botocore(rds: Any) -> None:
    _instance(rds)
    target = reboot.Target.from_properties(event(group="pg-ssl")["ResourceProperties"])
    forced = reboot.Decision(reboot.Action.REBOOT_INSTANCE, "seen", reboot_id="db1")
    first = reboot.observe(rds, target)
    assert reboot.act(rds, reboot.Observation(forced, first.seen), "req-1") == "rebooted db1"
    again = reboot.observe(rds, target)
    assert again.rebooted_for("req-1") == ["db1"]
    assert "rebooted for this request already" in reboot.act(
        rds, reboot.Observation(forced, again.seen), "req-1"
    )
    assert reboot.act(rds, reboot.Observation(forced, again.seen), "req-2") == "rebooted db1"


def test_missing_instance_is_reported_as_gone(rds: Any) -> None:
    with pytest.raises(reboot.Gone, match="DB instance db1 does not exist"):
        reboot.handle_on_event(event(), rds)


def test_reboot_of_a_missing_instance_means_look_again(rds: Any) -> None:
    decision = reboot.Decision(reboot.Action.REBOOT_INSTANCE, "seen", reboot_id="gone")
    seen = reboot.Observation(decision, {"gone": ("arn:aws:rds:us-east-1:1:db:gone", {})})
    assert "refused (DBInstanceNotFound" in reboot.act(rds, seen, "req-1")


def test_group_swapped_by_hand_fails_with_the_names(rds: Any) -> None:
    _instance(rds, group="hand-made")
    with pytest.raises(reboot.ReconcileError, match=r"\['hand-made'\], not pg-ssl"):
        reboot.handle_is_complete(event(group="pg-ssl"), rds)


def test_cluster_reads_members_and_completes(rds: Any) -> None:
    rds.create_db_cluster_parameter_group(
        DBClusterParameterGroupName="cpg-ssl",
        DBParameterGroupFamily="aurora-postgresql16",
        Description="ssl",
    )
    rds.create_db_cluster(
        DBClusterIdentifier="c1",
        Engine="aurora-postgresql",
        EngineVersion="16.9",
        MasterUsername="postgres",
        MasterUserPassword="not-a-real-password",
        DBClusterParameterGroupName="cpg-ssl",
    )
    for ident in ("c1-writer", "c1-reader"):
        rds.create_db_instance(
            DBInstanceIdentifier=ident,
            DBInstanceClass="db.r6g.large",
            Engine="aurora-postgresql",
            DBClusterIdentifier="c1",
        )
    ev = event(kind="cluster", ident="c1", group="cpg-ssl")
    started = reboot.handle_on_event(ev, rds)
    assert started["PhysicalResourceId"] == "rds-force-ssl:cluster:c1"
    done = reboot.handle_is_complete({**ev, **started}, rds)
    assert done["IsComplete"] is True
    assert done["Data"]["Outcome"] == reboot.OUTCOME_IN_SYNC
    assert "c1-writer:available/in-sync" in done["Data"]["State"]
    assert "c1-reader:available/in-sync" in done["Data"]["State"]


def test_missing_cluster_is_reported_as_gone(rds: Any) -> None:
    with pytest.raises(reboot.Gone, match="DB cluster c9 does not exist"):
        reboot.handle_on_event(event(kind="cluster", ident="c9"), rds)


def test_the_lambda_asset_imports_alone_without_cdk() -> None:
    """Lambda runs `reboot.on_event` from the handlers folder alone: no package, no CDK; the
    engine table it shares with the construct imports there too."""
    import subprocess
    import sys
    from pathlib import Path

    handlers = Path(reboot.__file__).parent
    probe = (
        "import sys, reboot, engines; "
        "assert engines.lookup('mysql') is engines.MYSQL; "
        "assert callable(reboot.on_event) and callable(reboot.is_complete); "
        "cdk = ('aws_cdk', 'rds_force_ssl', 'jsii'); "
        "print(sorted(m for m in sys.modules if m.startswith(cdk)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=handlers,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"
    assert sorted(p.name for p in handlers.glob("*.py")) == [
        "__init__.py",
        "engines.py",
        "reboot.py",
    ]
