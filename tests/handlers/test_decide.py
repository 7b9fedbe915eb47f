"""The reconciler's decisions as pure functions: RDS's statuses, and what a reboot is owed for."""

from __future__ import annotations

import pytest

from rds_force_ssl.facts import contract
from rds_force_ssl.handlers import decide
from rds_force_ssl.handlers.decide import Disposition, Node, Param, Request, Restarts, Seen, Verb
from rds_force_ssl.handlers.memory import Claim

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


def _seen(*nodes: Node) -> Seen:
    return Seen(
        kind=decide.KIND_AURORA if len(nodes) > 1 else contract.KIND_INSTANCE,
        ident="x",
        status="available",
        groups=("g",),
        engine="aurora-postgresql",
        engine_version="16.9",
        nodes=nodes,
        params={"rds.force_ssl": Param("1", "user")},
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


NOW = 1000.0
RECENT = Restarts(began=(NOW - 200,), ended=(NOW - 100,))  # back up 100 s ago
GOING = Restarts(began=(NOW - 30,))  # shut down 30 s ago, no restart logged yet
ASKED = Restarts(claim=Claim(asked=NOW - 20))  # asked for 20 s ago; nothing shown of it yet
# Asked for 20 minutes ago, and RDS has not shown the restart over: still a restart under way.
ASKED_LONG_AGO = Restarts(claim=Claim(asked=NOW - 1200, restarting=NOW - 1190))
# This request's reboot (the request is 900 s old), which RDS showed over 400 s ago.
OURS_OVER = Restarts(claim=Claim(asked=NOW - 800, restarting=NOW - 790, restarted=NOW - 400))
UNREAD = Restarts(unread="memory not read (AccessDeniedException)")
SETTLED = Restarts(began=(NOW - 250,), ended=(NOW - 150,))  # the repair, after the settle point
EARLY = Restarts(began=(NOW - 850,), ended=(NOW - 800,))  # before it (the request is 900 s old)


@pytest.mark.parametrize(
    ("node", "field", "request_kwargs"),
    [
        (Node("a", "available", "pending-reboot"), "targets", {}),
        (Node("a", "available", "pending-reboot", restarts=RECENT), "settling", {}),
        (Node("a", "available", "pending-reboot", restarts=GOING), "settling", {}),
        (Node("a", "available", "pending-reboot", restarts=ASKED), "settling", {}),
        (Node("a", "available", "pending-reboot", restarts=ASKED_LONG_AGO), "settling", {}),
        (Node("a", "available", "pending-reboot", restarts=UNREAD), "settling", {}),
        # RDS showed this request's restart over, had SETTLE_S, and still asks for one: no
        # second reboot of the same change.
        (Node("a", "available", "pending-reboot", restarts=OURS_OVER), "failed", {"age": 900}),
        # The same restart, asked for before this request started: this request may reboot.
        (Node("a", "available", "pending-reboot", restarts=OURS_OVER), "targets", {"age": 700}),
        (Node("a", None, "pending-reboot", visible=False), "blocked", {}),
        (Node("a", "available", "applying"), "waiting", {}),
        (Node("a", "available", "failed-to-apply"), "waiting", {}),  # RDS may re-apply
        (Node("a", "available", "failed-to-apply"), "targets", {"age": 400}),
        (Node("a", "available", "failed-to-apply"), "failed", {"group_changed": False}),
        # A repair waits until RDS has had 5 minutes to show this request's group ...
        (Node("a", "incompatible-parameters", "in-sync"), "waiting", {}),
        (Node("a", "incompatible-parameters", "in-sync"), "targets", {"age": 400}),
        # ... a restart before that point is not a failed repair ...
        (Node("a", "incompatible-parameters", "in-sync", restarts=EARLY), "targets", {"age": 900}),
        # ... one after it is.
        (Node("a", "incompatible-parameters", "in-sync", restarts=SETTLED), "failed", {"age": 600}),
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
    ("restarts", "in_progress", "recent", "since_start"),
    [
        (Restarts(), False, False, False),
        (GOING, True, False, True),
        (RECENT, False, True, True),
        (ASKED, True, False, True),
        # asked long ago, never shown over: still in progress (no clock ends a claim)
        (ASKED_LONG_AGO, True, False, False),
        (UNREAD, True, False, False),
        # asked, and RDS showed the restart over since: over, and recent
        (
            Restarts(claim=Claim(NOW - 20, restarting=NOW - 15, restarted=NOW - 5)),
            False,
            True,
            True,
        ),
        # refused by RDS: no restart, nothing held
        (Restarts(claim=Claim(NOW - 20, refused=True)), False, False, False),
        # long ago
        (Restarts(began=(NOW - 900,), ended=(NOW - 800,)), False, False, False),
    ],
)
def test_what_restarts_say_from_events_and_from_the_memory(
    restarts: Restarts, in_progress: bool, recent: bool, since_start: bool
) -> None:
    assert restarts.in_progress(NOW) is in_progress
    assert restarts.recent(NOW) is recent
    assert restarts.since(NOW - 300) is since_start


def test_event_times_lean_the_safe_way_on_clock_skew() -> None:
    """An RDS event CLOCK_SKEW_S either side of a threshold: ``since`` (the Rebooted attribute,
    and a failed repair) counts it, ``began_after`` (the schedule's "restarted since the deploy
    found it owed") does not; a reboot the memory dates (Lambda's clock) needs no allowance."""
    t = 5000.0
    early = Restarts(began=(t - decide.CLOCK_SKEW_S + 1,))
    assert early.since(t)
    assert not early.began_after(t)
    assert Restarts(began=(t + decide.CLOCK_SKEW_S,)).began_after(t)
    # A reboot only asked for is not a restart; one a look then saw restarting is.
    assert not Restarts(claim=Claim(asked=t)).began_after(t)
    assert Restarts(claim=Claim(asked=t, restarting=t + 10)).began_after(t)
    assert not Restarts(claim=Claim(asked=t - 1, restarting=t + 10)).began_after(t)


T = 5000.0


def over(restarting: float, restarted: float) -> Claim:
    return Claim(T, restarting=restarting, restarted=restarted)


@pytest.mark.parametrize(
    ("claim", "restarts", "status", "expected"),
    [
        # asked, RDS still shows it available (its view lags): nothing yet
        (Claim(T), Restarts(), "available", Claim(T)),
        # seen rebooting: restarting
        (Claim(T), Restarts(), "rebooting", Claim(T, restarting=T + 60)),
        # seen restarting before, up now: over
        (Claim(T, restarting=T + 10), Restarts(), "available", over(T + 10, T + 60)),
        # still rebooting 20 minutes on: unchanged, still open
        (Claim(T, restarting=T + 10), Restarts(), "rebooting", Claim(T, restarting=T + 10)),
        # never seen rebooting, but RDS logged the restart after the ask: over
        (Claim(T), Restarts(ended=(T + 30,)), "available", over(T + 60, T + 60)),
        # ... but not while RDS says rebooting
        (Claim(T), Restarts(ended=(T + 30,)), "rebooting", Claim(T, restarting=T + 60)),
        # over, then seen rebooting again: open again until it is up
        (over(T + 10, T + 30), Restarts(), "rebooting", Claim(T, restarting=T + 60)),
        # refused, then a restart logged surely after it: it happened after all
        (
            Claim(T, refused=True),
            Restarts(ended=(T + 61,)),
            "available",
            Claim(T, restarting=T + 60, restarted=T + 60, refused=True),
        ),
        # refused, and a restart logged just before it (clock skew): not this one
        (Claim(T, refused=True), Restarts(ended=(T - 5,)), "available", Claim(T, refused=True)),
        # not described: nothing to add
        (Claim(T), Restarts(ended=(T + 30,)), None, Claim(T)),
    ],
)
def test_a_claim_ends_on_what_rds_shows(
    claim: Claim, restarts: Restarts, status: str | None, expected: Claim
) -> None:
    assert decide.witnessed(claim, restarts, status, T + 60) == expected


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
    from rds_force_ssl.facts import engines

    row = engines.lookup(engine)
    name = row.parameter if row is not None and row.parameter else "rds.force_ssl"
    seen = Seen(
        kind=contract.KIND_INSTANCE,
        ident="x",
        status="available",
        groups=("g",),
        engine=engine,
        engine_version="8.0.40",
        nodes=(Node("x", "available", "in-sync"),),
        params={name: Param(have, "user")},
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
