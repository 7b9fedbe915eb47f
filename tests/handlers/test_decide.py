"""The reconciler's decisions as pure functions: RDS's statuses, and what a reboot is owed for."""

from __future__ import annotations

import pytest

from rds_force_ssl.handlers import decide
from rds_force_ssl.handlers.decide import Disposition, Node, Param, Request, Restarts, Seen, Verb

# Every status in the RDS user guide's "Viewing Amazon RDS DB instance status" table.
DOCUMENTED_INSTANCE_STATUSES = {
    "available", "backing-up", "backtracking", "configuring-activity-stream",
    "configuring-enhanced-monitoring", "configuring-iam-database-auth", "configuring-log-exports",
    "converting-to-vpc", "creating", "delete-precheck", "deleting", "failed",
    "inaccessible-encryption-credentials", "inaccessible-encryption-credentials-recoverable",
    "incompatible-network", "incompatible-option-group", "incompatible-parameters",
    "incompatible-restore", "insufficient-capacity", "maintenance", "modifying", "moving-to-vpc",
    "rebooting", "resetting-master-credentials", "renaming", "restore-error", "starting",
    "stopped", "stopping", "storage-config-upgrade", "storage-full", "storage-initialization",
    "storage-optimization", "upgrading",
}  # fmt: skip


def test_every_documented_instance_status_is_classified_with_a_reason() -> None:
    assert set(decide.INSTANCE_STATUSES) == DOCUMENTED_INSTANCE_STATUSES
    assert all(reason for _, reason in decide.INSTANCE_STATUSES.values())
    allows_reboot = {
        s
        for s, (d, _) in decide.INSTANCE_STATUSES.items()
        if d in (Disposition.REBOOT_ALLOWED, Disposition.REPAIR)
    }
    assert allows_reboot == {"available", "storage-optimization", "incompatible-parameters"}


def test_a_status_rds_adds_later_is_waited_on() -> None:
    assert decide.instance_status("brand-new")[0] is Disposition.WAIT
    assert decide.cluster_status("brand-new")[0] is Disposition.WAIT


def _seen(*nodes: Node, apply_type: str = "static") -> Seen:
    return Seen(
        kind=decide.KIND_AURORA if len(nodes) > 1 else decide.KIND_INSTANCE,
        ident="x",
        status="available",
        groups=("g",),
        engine="aurora-postgresql",
        engine_version="16.9",
        nodes=nodes,
        params={"rds.force_ssl": Param("1", "user", apply_type)},
    )


def _request(*, changed: bool = True, group_changed: bool = True, age: float = 0) -> Request:
    return Request(
        kind="cluster",
        ident="x",
        group="g",
        enforced={"rds.force_ssl": "1"},
        started_at=1000.0 - age,
        changed=frozenset({"rds.force_ssl"}) if changed else frozenset(),
        group_changed=group_changed,
    )


RECENT = Restarts(during_request=True, recent=True)
GOING = Restarts(during_request=True, in_progress=True)


@pytest.mark.parametrize(
    ("node", "field", "request_kwargs"),
    [
        (Node("a", "available", "pending-reboot"), "targets", {}),
        (Node("a", "available", "pending-reboot", restarts=RECENT), "settling", {}),
        (Node("a", "available", "pending-reboot", restarts=GOING), "settling", {}),
        (Node("a", None, "pending-reboot", visible=False), "blocked", {}),
        (Node("a", "available", "applying"), "waiting", {}),
        (Node("a", "available", "failed-to-apply"), "waiting", {}),  # RDS may re-apply
        (Node("a", "available", "failed-to-apply"), "targets", {"age": 400}),
        (Node("a", "available", "failed-to-apply"), "failed", {"group_changed": False}),
        (Node("a", "incompatible-parameters", "in-sync"), "targets", {}),
        (Node("a", "incompatible-parameters", "in-sync", restarts=RECENT), "failed", {}),
        (Node("a", "incompatible-parameters", "in-sync"), "failed", {"group_changed": False}),
        (Node("a", "available", "pending-database-upgrade"), "failed", {}),
    ],
)
def test_what_a_reboot_is_owed_for(
    node: Node, field: str, request_kwargs: dict[str, float]
) -> None:
    owed = decide.reboot_owed(_seen(node), _request(**request_kwargs), now=1000.0)  # type: ignore[arg-type]
    filled = {
        f: getattr(owed, f)
        for f in ("targets", "settling", "waiting", "blocked", "failed")
        if getattr(owed, f)
    }
    assert list(filled) == [field]


@pytest.mark.parametrize(
    ("apply_type", "owed"),
    [("static", ("rds.force_ssl",)), ("dynamic", ()), ("", ("rds.force_ssl",))],
)
def test_apply_type_from_rds_says_which_changes_need_a_restart(
    apply_type: str, owed: tuple[str, ...]
) -> None:
    seen = _seen(Node("a", "available", "in-sync"), apply_type=apply_type)
    assert decide.reboot_owed(seen, _request(), now=1000.0).static_changed == owed


@pytest.mark.parametrize(
    ("age", "changed", "verb"),
    [(0, True, Verb.WAIT), (299, True, Verb.WAIT), (300, True, Verb.DONE), (0, False, Verb.DONE)],
)
def test_in_sync_is_trusted_after_the_settle_window_or_when_nothing_changed(
    age: float, changed: bool, verb: Verb
) -> None:
    seen = _seen(Node("a", "available", "in-sync"))
    assert decide.decide(seen, _request(changed=changed, age=age), now=1000.0).verb is verb


def test_one_member_at_a_time_readers_first() -> None:
    seen = _seen(
        Node("w", "available", "pending-reboot", writer=True),
        Node("r2", "available", "pending-reboot"),
        Node("r1", "available", "pending-reboot", restarts=RECENT),  # just back, RDS catching up
    )
    decision = decide.decide(seen, _request(), now=1000.0)
    assert (decision.verb, decision.reboot, decision.owed.settling) == (Verb.REBOOT, "r2", ("r1",))
    busy = _seen(
        Node("w", "available", "pending-reboot", writer=True),
        Node("r1", "rebooting", "pending-reboot"),
    )
    assert decide.decide(busy, _request(), now=1000.0).verb is Verb.WAIT


@pytest.mark.parametrize(
    ("engine", "have", "want", "problem"),
    [
        ("mysql", "ON", "1", False),  # the engine table: both enforce
        ("mysql", "1", "ON", False),
        ("mysql", "OFF", "1", True),
        ("postgres", "1", "1", False),
        ("postgres", "0", "1", True),
        ("unknown-engine", "ON", "1", True),  # no row: only the same value counts
    ],
)
def test_the_group_is_held_to_what_force_ssl_wrote_with_the_engines_spellings(
    engine: str, have: str, want: str, problem: bool
) -> None:
    from rds_force_ssl.handlers import engines

    row = engines.lookup(engine)
    name = row.parameter if row is not None and row.parameter else "rds.force_ssl"
    seen = Seen(
        kind=decide.KIND_INSTANCE,
        ident="x",
        status="available",
        groups=("g",),
        engine=engine,
        engine_version="8.0.40",
        nodes=(Node("x", "available", "in-sync"),),
        params={name: Param(have, "user", "dynamic")},
    )
    req = Request(
        kind="instance",
        ident="x",
        group="g",
        enforced={name: want},
        started_at=0.0,
        changed=frozenset(),
        group_changed=False,
    )
    assert bool(decide.group_problems(seen, req)) is problem
