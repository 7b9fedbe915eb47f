"""The reconciler against moto: real botocore requests, responses and error shapes.

moto keeps every group in-sync and logs no restarts (FACTS.md), so these tests prove the wiring,
not the state machine: every call the reconciler makes serializes, its reads find the keys
botocore returns (DescribeDBParameters' listing, DescribeEvents' events), and the error codes it
matches are the ones botocore raises.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import boto3
import pytest
from moto import mock_aws

from rds_force_ssl import reboot_provider
from rds_force_ssl.facts import contract
from rds_force_ssl.facts.policy import OUTCOME_IN_SYNC
from rds_force_ssl.handlers import decide, memory, observe, reboot
from rds_force_ssl.handlers.memory import Claim, Memory, Proof, proof_key
from tests.handlers.events import event, props

REGION = "us-east-1"


@pytest.fixture
def rds(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield boto3.client("rds", region_name=REGION)


@pytest.fixture
def mem(rds: Any) -> Memory:
    """The stack's table as the construct makes it (a string partition key, on demand)."""
    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(
        TableName="memory",
        KeySchema=[{"AttributeName": memory.KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": memory.KEY, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return Memory(client=client, table="memory")


def _instance(rds: Any, ident: str = "db1", group: str = "pg-ssl") -> None:
    rds.create_db_parameter_group(
        DBParameterGroupName=group, DBParameterGroupFamily="postgres16", Description="ssl"
    )
    rds.modify_db_parameter_group(
        DBParameterGroupName=group,
        Parameters=[
            {
                "ParameterName": "rds.force_ssl",
                "ParameterValue": "1",
                "ApplyMethod": "pending-reboot",
            }
        ],
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


def test_a_redeploy_on_an_in_sync_instance_completes_at_once(rds: Any, mem: Memory) -> None:
    _instance(rds)
    ev = event(request="Update", group="pg-ssl")
    started = reboot.handle_on_event(ev, rds, now=1000.0)
    assert started["PhysicalResourceId"] == "rds-force-ssl:instance:db1"
    assert started["Data"]["StateAtStart"] == "available/in-sync"
    done = reboot.handle_is_complete({**ev, **started}, rds, memory=mem, now=1001.0)
    assert done == {
        "IsComplete": True,
        "Data": {
            "Outcome": OUTCOME_IN_SYNC,
            "State": "available/in-sync",
            "Rebooted": "false",
            "RebootedMembers": "",
            contract.ATTR_REBOOT_OWED_SINCE: "0",
        },
    }


def test_the_group_parameters_round_trip_through_botocore(rds: Any) -> None:
    _instance(rds)
    found = observe.read_params(rds, "pg-ssl", ["rds.force_ssl"], cluster=False)
    assert found["rds.force_ssl"].value == "1"
    # moto leaves Source and ApplyType out; real RDS sends them, and the simulator does.
    assert set(found) == {"rds.force_ssl"}


def test_a_missing_group_is_reported_as_gone(rds: Any) -> None:
    with pytest.raises(observe.Gone, match="parameter group nope"):
        observe.read_params(rds, "nope", ["rds.force_ssl"], cluster=False)


def test_events_round_trip_through_botocore(rds: Any) -> None:
    """moto logs a "DB instance created" event (no restarts): the request serializes, Date comes
    back as a datetime, and an event that is not a restart is not taken for one."""
    _instance(rds)
    now = datetime.now(UTC).timestamp()
    found = observe.read_restarts(rds, ["db1"], started_at=now - 600, now=now)
    assert found == {"db1": decide.Restarts()}
    raw = rds.describe_events(SourceType="db-instance", SourceIdentifier="db1")["Events"]
    assert raw
    assert all(isinstance(e["Date"], datetime) for e in raw)


def _seen(ident: str) -> decide.Seen:
    return decide.Seen(
        kind=contract.KIND_INSTANCE,
        ident=ident,
        status="available",
        groups=("pg-ssl",),
        engine="postgres",
        engine_version="16.9",
        nodes=(decide.Node(ident, "available", "pending-reboot"),),
        params={},
    )


def test_reboot_round_trips_through_botocore(rds: Any, mem: Memory) -> None:
    _instance(rds)
    forced = decide.Decision(decide.Verb.REBOOT, "seen", reboot="db1")
    assert reboot.act(rds, mem, _seen("db1"), forced, 1000.0, by="req-1") == (True, "rebooted db1")
    # The claim, as a consistent read returns it: asked, nothing shown of it yet.
    assert mem.recall(["db:db1"]).claims == {"db:db1": Claim(asked=1000.0, by="req-1")}


def test_reboot_of_a_missing_instance_means_look_again(rds: Any, mem: Memory) -> None:
    forced = decide.Decision(decide.Verb.REBOOT, "seen", reboot="gone")
    accepted, done = reboot.act(rds, mem, _seen("gone"), forced, 1000.0, by="req-1")
    assert not accepted
    assert "refused (DBInstanceNotFound" in done
    # RDS refused it: the claim holds nothing back (a restart seen after it would reopen it).
    assert mem.recall(["db:gone"]).claims["db:gone"].refused


def test_a_claim_holds_until_rds_shows_the_restart_whatever_the_clock(mem: Memory) -> None:
    """DynamoDB's own conditional writes (moto evaluates them): a claim on a node is refused
    while another is open, however old; it is granted again once the open one is shown over
    (restarted) or turned down (refused); and the evidence is written only onto the claim it
    was seen for."""
    assert mem.claim("db:db1", 1000.0, "a") == (True, "")
    assert mem.claim("db:db1", 1000.0 + 86400 * 7, "b") == (False, "")  # a week on: still open
    assert mem.claim("db:db2", 1001.0, "a") == (True, "")
    asked = Claim(asked=1000.0, by="a")
    restarting = replace(asked, restarting=1010.0)
    assert mem.record("db:db1", asked, restarting) == ""
    assert mem.claim("db:db1", 1200.0, "b") == (False, "")  # restarting is not restarted
    over = replace(restarting, restarted=2400.0)
    assert mem.record("db:db1", restarting, over) == ""
    recalled = mem.recall(["db:db1", "db:db2", "db:db3"])
    assert recalled.claims == {"db:db1": over, "db:db2": Claim(asked=1001.0, by="a")}
    assert recalled.problem == ""
    assert mem.claim("db:db1", 2500.0, "b") == (True, "")
    # Evidence for the old claim does not overwrite the new one.
    assert mem.record("db:db1", asked, replace(asked, restarted=2600.0)) == ""
    assert mem.recall(["db:db1"]).claims["db:db1"] == Claim(asked=2500.0, by="b")
    assert mem.record("db:db2", Claim(1001.0, "a"), Claim(1001.0, "a", refused=True)) == ""
    assert mem.claim("db:db2", 1100.0, "b") == (True, "")


def test_a_proof_is_read_back_with_the_claims(mem: Memory) -> None:
    proof = Proof(group="pg-ssl", enforced={"rds.force_ssl": "1"}, at=1000.0)
    assert mem.prove("instance", "db1", proof) == ""
    assert mem.recall([proof_key("instance", "db1")]).proofs == {
        proof_key("instance", "db1"): proof
    }


def test_a_memory_that_cannot_be_written_holds_the_reboot_back(rds: Any, mem: Memory) -> None:
    """A missing table (or any failure but a refused claim) never licenses a reboot: the
    reconciler waits and looks again."""
    gone = Memory(client=mem.client, table="no-such-table")
    go, problem = gone.claim("db:db1", 1000.0, "a")
    assert not go
    assert "memory not written (ResourceNotFoundException)" in problem
    recalled = gone.recall(["db:db1"])
    assert recalled.claims == {}
    assert "ResourceNotFoundException" in recalled.problem
    _instance(rds)
    forced = decide.Decision(decide.Verb.REBOOT, "seen", reboot="db1")
    reboots: list[dict[str, Any]] = []

    class Spy:
        def __getattr__(self, name: str) -> Any:
            return getattr(rds, name)

        def reboot_db_instance(self, **kwargs: Any) -> Any:
            reboots.append(kwargs)
            return rds.reboot_db_instance(**kwargs)

    accepted, done = reboot.act(Spy(), gone, _seen("db1"), forced, 1000.0, by="a")
    assert (accepted, reboots) == (False, [])
    assert "not rebooting without a claim" in done


def test_missing_instance_is_reported_as_gone(rds: Any) -> None:
    with pytest.raises(reboot.ReconcileError, match=r"DB instance db1 .* does not exist"):
        reboot.handle_on_event(event(), rds)


def test_group_swapped_by_hand_fails_with_the_names(rds: Any, mem: Memory) -> None:
    _instance(rds, group="hand-made")
    with pytest.raises(reboot.ReconcileError, match=r"\['hand-made'\], not pg-ssl"):
        reboot.handle_is_complete(event(request="Update", group="pg-ssl"), rds, memory=mem)


def test_cluster_reads_members_its_group_and_completes(rds: Any, mem: Memory) -> None:
    rds.create_db_cluster_parameter_group(
        DBClusterParameterGroupName="cpg-ssl",
        DBParameterGroupFamily="aurora-postgresql16",
        Description="ssl",
    )
    rds.modify_db_cluster_parameter_group(
        DBClusterParameterGroupName="cpg-ssl",
        Parameters=[
            {
                "ParameterName": "rds.force_ssl",
                "ParameterValue": "1",
                "ApplyMethod": "pending-reboot",
            }
        ],
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
    members = ["c1-writer", "c1-reader"]
    ev = event(request="Update", kind="cluster", ident="c1", group="cpg-ssl", members=members)
    started = reboot.handle_on_event(ev, rds, now=1000.0)
    assert started["PhysicalResourceId"] == "rds-force-ssl:cluster:c1"
    done = reboot.handle_is_complete({**ev, **started}, rds, memory=mem, now=1001.0)
    assert done["IsComplete"] is True
    assert done["Data"]["Outcome"] == OUTCOME_IN_SYNC
    assert "c1-writer:available/in-sync" in done["Data"]["State"]
    assert "c1-reader:available/in-sync" in done["Data"]["State"]


def test_missing_cluster_is_reported_as_gone(rds: Any) -> None:
    with pytest.raises(reboot.ReconcileError, match=r"DB cluster c9 .* does not exist"):
        reboot.handle_on_event(event(kind="cluster", ident="c9"), rds)


def test_an_update_from_a_template_without_enforced_parameters_counts_as_a_change() -> None:
    """A stack deployed by an earlier version has no EnforcedParameters in its old properties:
    what ran before is unknown, so everything ForceSsl owns counts as changed."""
    old = props()
    del old[contract.PROP_ENFORCED]
    target = reboot.parse(event(request="Update", old=old), now=0.0)
    assert target.request.changed == frozenset({"rds.force_ssl"})


def test_the_lambda_asset_imports_alone_without_cdk(tmp_path: Path) -> None:
    """Lambda runs `rds_force_ssl.handlers.reboot.on_event` and `...maintenance.poller` from the
    asset: the source root with only the package's __init__.py, handlers/*.py and facts/*.py in
    it (reboot_provider.ASSET_EXCLUDE), staged here as CDK stages it. It imports with boto3 and
    no CDK: an aws_cdk, jsii and constructs that raise on import come first on its path."""
    staged = tmp_path / "asset"
    cdk.FileSystem.copy_directory(
        str(reboot_provider.SOURCE_ROOT),
        str(staged),
        cdk.CopyOptions(exclude=reboot_provider.ASSET_EXCLUDE),
    )
    package = Path(reboot_provider.__file__).parent
    shipped = sorted(str(f.relative_to(staged)) for f in staged.rglob("*") if f.is_file())
    assert shipped == sorted(
        [
            "rds_force_ssl/__init__.py",
            *(
                f"rds_force_ssl/{d}/{f.name}"
                for d in ("handlers", "facts")
                for f in package.glob(f"{d}/*.py")
            ),
        ]
    )
    assert "rds_force_ssl/facts/engines.py" in shipped
    poison = tmp_path / "poison"
    for name in ("aws_cdk", "jsii", "constructs"):
        (poison / name).mkdir(parents=True)
        (poison / name / "__init__.py").write_text(f"raise ImportError('{name} in the asset')\n")
    entries = [
        f"{reboot_provider.HANDLER_PACKAGE}.{e}" for e in ("reboot.on_event", "maintenance.poller")
    ]
    probe = (
        "import importlib, sys; "
        f"entries = {entries!r}; "
        "fns = [getattr(importlib.import_module(m), f) "
        "for m, f in (e.rsplit('.', 1) for e in entries)]; "
        "assert all(map(callable, fns)); "
        "import rds_force_ssl.facts.engines as engines, boto3; "
        "assert engines.lookup('mysql') is engines.MYSQL; "
        f"assert engines.__file__.startswith({str(staged)!r}), engines.__file__; "
        "cdk = ('aws_cdk', 'jsii', 'constructs'); "
        "print(sorted(m for m in sys.modules if m.startswith(cdk)))"
    )
    site_packages = Path(boto3.__file__).parent.parent  # boto3, and aws-cdk-lib too
    done = subprocess.run(
        # -S: no site (the editable install's .pth would put the checkout on the path).
        [sys.executable, "-S", "-c", probe],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{staged}:{poison}:{site_packages}"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
