#!/usr/bin/env python3
"""Deploy behaviour, simulated: what each way of enforcing SSL does to the database on a deploy.

Every scenario runs on the project's RDS simulator (``tests/rds_sim.py``, the one the handler
tests use) on a simulated clock, so a run takes a fraction of a second while it covers hours of
RDS time. t=0 is the start of the deploy. Three variants:

(a) **CloudFormation alone** (plain CDK with ``parameters={"rds.force_ssl": "1"}``). The model of
    CloudFormation, per the project's FACTS:
    - DBInstance create: waits until the instance is available (it starts in-sync);
    - DBInstance with a changed ``DBParameterGroupName`` and ApplyImmediately (the default):
      ModifyDBInstance, wait until available, then RebootDBInstance if the group is
      ``pending-reboot`` and wait for available + in-sync;
    - the same with ApplyImmediately off: ModifyDBInstance only; the group stays
      ``pending-reboot``;
    - DBParameterGroup edit: ModifyDBParameterGroup only, never a reboot;
    - DBCluster with a new cluster parameter group: ModifyDBCluster, wait until available,
      never a member reboot.
    It checks progress every ``CFN_POLL_S`` (an assumption: the handler's real interval is not
    documented).
(b) **AwsCustomResource rebootDBInstance**, the blog pattern: (a), then one custom resource per
    instance (per member for a cluster; CloudFormation runs independent resources at once) that
    calls RebootDBInstance on every create and update (its properties carry the group's
    parameters, so every scenario here sends it an event), does not wait, and fails the stack
    when RDS refuses (InvalidDBInstanceState unless available). A failed stack's rollback is
    not simulated.
(c) **ForceSsl**: (a), then the real reconciler (``rds_force_ssl.handlers.reboot``) through
    ``run_provider``, which drives on_event / is_complete like the CDK Provider framework, every
    ``query_interval`` (the library's default, 10 s).

Custom-resource start-up latency (Lambda cold start, Step Functions) is taken as zero for both
custom resources. RDS API calls are those of the SSL mechanism (CloudFormation's own calls are the
same in every variant and are not counted).

Reported per scenario and variant: reboots accepted by RDS and how many were unnecessary (the
instance had nothing pending-reboot); whether ``rds.force_ssl`` was effective (every member
available with the group in-sync) when the stack finished; stack completion time; when RDS itself
reached available + in-sync, and how long the stack took after that (or after the mechanism
started, if later); time any member was unavailable (rebooting), and the most members down at
once; API calls; failures.

    .venv/bin/python benchmarks/deploy_sim.py [--reboot-seconds 120] [--query-interval 10]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from botocore.exceptions import ClientError

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "constructs"))

from rds_force_ssl.handlers import reboot
from tests.rds_sim import RdsSimulator, run_provider

# ---- durations (seconds of simulated time) ---------------------------------------------------
# Odd values on purpose: RDS events that fall exactly on a poll would hide the polling delay.
CREATE_S = 607.0  # a new db.t4g instance: 5-15 min
MODIFY_S = 63.0  # ModifyDBInstance that associates a parameter group: about a minute
CLUSTER_MODIFY_S = 33.0  # ModifyDBCluster that associates a cluster parameter group
GROUP_EDIT_S = 4.0  # ModifyDBParameterGroup (CloudFormation's update of the group resource)
REBOOT_S = 117.0  # a reboot: 60-180 s
FAILOVER_S = 43.0  # a Multi-AZ reboot with failover: 30-60 s
BUSY_S = 300.0  # an instance busy modifying for 5 min (an earlier storage change still running)
START_S = 300.0  # starting a stopped instance, to show what happens later
CFN_POLL_S = 15.0  # CloudFormation's stabilization checks (assumed)
QUERY_INTERVAL_S = 10.0  # ForceSsl's default query_interval
TOTAL_TIMEOUT_S = 3000.0  # ForceSsl's default total_timeout (50 min)
SETTLE_S = 7200.0  # how long to keep the clock running after the stack, to see where RDS ends

GROUP = "bench-db0parametergroup-a1b2c3d4"
OLD_GROUP = "default.postgres16"
CLUSTER_GROUP = "bench-clusterparametergroup-a1b2c3d4"
VARIANTS = ("cfn", "awscr", "forcessl")
LABELS = {
    "cfn": "(a) CloudFormation alone",
    "awscr": "(b) AwsCustomResource",
    "forcessl": "(c) ForceSsl",
}


class WatchedSimulator(RdsSimulator):
    """The project's simulator, with a check after every simulated event: when did every watched
    member last become available with its groups in-sync?"""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.watched: list[str] = []
        self.ready_since: float | None = None

    def ready(self) -> bool:
        members = [self.instances.get(i) for i in self.watched]
        return bool(members) and all(
            m is not None
            and m.status == "available"
            and all(s == "in-sync" for s in m.groups.values())
            and m.cluster_group_status == "in-sync"
            and (m.cluster is None or self.clusters[m.cluster].status == "available")
            for m in members
        )

    def check(self) -> None:
        if self.ready():
            if self.ready_since is None:
                self.ready_since = self.now
        else:
            self.ready_since = None

    def at(self, delay: float, fn: Callable[[], None]) -> None:
        def then_check() -> None:
            fn()
            self.check()

        super().at(delay, then_check)


@dataclass
class Recorder:
    """Wraps the simulator for the SSL mechanism: counts its calls and judges each reboot."""

    sim: WatchedSimulator
    calls: int = 0
    reboots: list[tuple[float, str, bool]] = field(default_factory=list)  # (t, id, needed)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sim, name)

    def describe_db_instances(self, **kwargs: Any) -> Any:
        self.calls += 1
        return self.sim.describe_db_instances(**kwargs)

    def describe_db_clusters(self, **kwargs: Any) -> Any:
        self.calls += 1
        return self.sim.describe_db_clusters(**kwargs)

    def reboot_db_instance(self, **kwargs: Any) -> Any:
        self.calls += 1
        ident = kwargs["DBInstanceIdentifier"]
        inst = self.sim.instances.get(ident)
        needed = inst is not None and (
            "pending-reboot" in inst.groups.values()
            or inst.cluster_group_status == "pending-reboot"
        )
        answer = self.sim.reboot_db_instance(**kwargs)
        self.reboots.append((self.sim.now, ident, needed))
        return answer

    def add_tags_to_resource(self, **kwargs: Any) -> Any:
        self.calls += 1
        return self.sim.add_tags_to_resource(**kwargs)

    def reboot_db_cluster(self, **kwargs: Any) -> Any:
        self.calls += 1
        answer = self.sim.reboot_db_cluster(**kwargs)
        self.reboots.append((self.sim.now, kwargs["DBClusterIdentifier"], True))
        return answer


# ---- CloudFormation, as modelled ------------------------------------------------------------
class CloudFormation:
    def __init__(self, sim: WatchedSimulator) -> None:
        self.sim = sim
        self.reboots: list[tuple[float, str, bool]] = []

    def wait(self, done: Callable[[], bool]) -> None:
        while not done():
            self.sim.advance(CFN_POLL_S)

    def instance(self, ident: str) -> dict[str, Any]:
        view: dict[str, Any] = self.sim.describe_db_instances(DBInstanceIdentifier=ident)[
            "DBInstances"
        ][0]
        return view

    def create_instance(self, ident: str, *, group: str, multi_az: bool = False) -> None:
        self.sim.add_instance(ident, groups={group: "in-sync"}, multi_az=multi_az)
        self.sim.busy(ident, CREATE_S, status="creating")
        self.wait(lambda: self.instance(ident)["DBInstanceStatus"] == "available")

    def associate(self, ident: str, *, group: str, apply_immediately: bool) -> None:
        self.sim.modify_instance(ident, group=group, seconds=MODIFY_S)
        self.sim.check()
        self.wait(lambda: self.instance(ident)["DBInstanceStatus"] == "available")
        statuses = [g["ParameterApplyStatus"] for g in self.instance(ident)["DBParameterGroups"]]
        if apply_immediately and "pending-reboot" in statuses:
            self.sim.reboot_db_instance(DBInstanceIdentifier=ident)
            self.reboots.append((self.sim.now, ident, True))
            self.sim.check()

            def in_sync() -> bool:
                view = self.instance(ident)
                return view["DBInstanceStatus"] == "available" and all(
                    g["ParameterApplyStatus"] == "in-sync" for g in view["DBParameterGroups"]
                )

            self.wait(in_sync)

    def edit_group(self, group: str) -> None:
        self.sim.edit_group(group, static=True)
        self.sim.check()
        self.sim.advance(GROUP_EDIT_S)

    def associate_cluster(self, ident: str, *, group: str) -> None:
        self.sim.modify_cluster(ident, group=group, seconds=CLUSTER_MODIFY_S)
        self.sim.check()
        self.wait(
            lambda: (
                self.sim.describe_db_clusters(DBClusterIdentifier=ident)["DBClusters"][0]["Status"]
                == "available"
            )
        )


# ---- scenarios ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    kind: str  # what the custom resources protect: "instance" or "cluster"
    identifier: str
    members: tuple[str, ...]
    before: Callable[[WatchedSimulator], None]  # the state before the deploy
    cloudformation: Callable[[CloudFormation], None]  # CloudFormation's own part of the deploy
    group: str = GROUP
    force_failover: bool = False
    stopped: bool = False


def _existing(sim: WatchedSimulator, **kwargs: Any) -> None:
    sim.add_instance("db0", groups={OLD_GROUP: "in-sync"}, **kwargs)


def _attached(sim: WatchedSimulator, **kwargs: Any) -> None:
    sim.add_instance("db0", groups={GROUP: "in-sync"}, **kwargs)


def _busy(sim: WatchedSimulator) -> None:
    _attached(sim)
    sim.busy("db0", BUSY_S, status="modifying")


def _stopped(sim: WatchedSimulator) -> None:
    _attached(sim)
    sim.stop_instance("db0")


def _aurora(sim: WatchedSimulator) -> None:
    sim.add_cluster(
        "cluster0",
        group="default.aurora-postgresql16",
        writer="cluster0-writer",
        readers=("cluster0-reader1", "cluster0-reader2"),
        status="in-sync",
    )


SCENARIOS = (
    Scenario(
        "new-db",
        "a new instance created with the group (in-sync from the start)",
        "instance",
        "db0",
        ("db0",),
        lambda sim: None,
        lambda cfn: cfn.create_instance("db0", group=GROUP),
    ),
    Scenario(
        "assoc-cfn-rebooted",
        "existing instance gets the group; CloudFormation reboots it (in-sync when we arrive)",
        "instance",
        "db0",
        ("db0",),
        _existing,
        lambda cfn: cfn.associate("db0", group=GROUP, apply_immediately=True),
    ),
    Scenario(
        "assoc-deferred",
        "existing instance gets the group with ApplyImmediately off (pending-reboot)",
        "instance",
        "db0",
        ("db0",),
        _existing,
        lambda cfn: cfn.associate("db0", group=GROUP, apply_immediately=False),
    ),
    Scenario(
        "static-edit",
        "a static parameter edited in the attached group",
        "instance",
        "db0",
        ("db0",),
        _attached,
        lambda cfn: cfn.edit_group(GROUP),
    ),
    Scenario(
        "busy-modifying",
        "static edit while the instance is modifying for 5 min (an earlier change)",
        "instance",
        "db0",
        ("db0",),
        _busy,
        lambda cfn: cfn.edit_group(GROUP),
    ),
    Scenario(
        "multi-az-failover",
        "static edit on a Multi-AZ instance; ForceSsl(force_failover=True)",
        "instance",
        "db0",
        ("db0",),
        lambda sim: _attached(sim, multi_az=True),
        lambda cfn: cfn.edit_group(GROUP),
        force_failover=True,
    ),
    Scenario(
        "stopped",
        "static edit while the instance is stopped",
        "instance",
        "db0",
        ("db0",),
        _stopped,
        lambda cfn: cfn.edit_group(GROUP),
        stopped=True,
    ),
    Scenario(
        "aurora-1w-2r",
        "Aurora PostgreSQL 16.9, 1 writer + 2 readers, gets a new cluster parameter group",
        "cluster",
        "cluster0",
        ("cluster0-writer", "cluster0-reader1", "cluster0-reader2"),
        _aurora,
        lambda cfn: cfn.associate_cluster("cluster0", group=CLUSTER_GROUP),
        group=CLUSTER_GROUP,
    ),
)


# ---- running one scenario with one variant -----------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    scenario: str
    variant: str
    cfn_reboots: int
    reboots: int
    unnecessary: int
    effective: str
    completed_s: float
    ready_s: float | None
    lag_s: float | None
    down_s: float
    max_down: int
    api_calls: int
    failure: str
    effective_later: str


def _event(scenario: Scenario) -> dict[str, Any]:
    return {
        "RequestType": "Create",
        "RequestId": f"bench-{scenario.name}",
        "ResourceType": reboot.RESOURCE_TYPE,
        "ResourceProperties": {
            reboot.PROP_KIND: scenario.kind,
            reboot.PROP_IDENTIFIER: scenario.identifier,
            reboot.PROP_PARAMETER_GROUP: scenario.group,
            reboot.PROP_PARAMETERS: {"rds.force_ssl": "1"},
            reboot.PROP_FORCE_FAILOVER: "true" if scenario.force_failover else "false",
        },
    }


def _union_seconds(intervals: Sequence[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for lo, hi in sorted(intervals):
        if hi > end:
            total += hi - max(lo, end)
            end = hi
    return total


def simulate(
    scenario: Scenario, variant: str, *, reboot_s: float, query_interval: float
) -> Outcome:
    sim = WatchedSimulator(reboot_seconds=reboot_s, failover_seconds=FAILOVER_S)
    sim.watched = list(scenario.members)
    scenario.before(sim)
    cfn = CloudFormation(sim)
    scenario.cloudformation(cfn)
    rds = Recorder(sim)
    mechanism_start = sim.now
    failure = ""
    if variant == "awscr":
        # CloudFormation starts the per-member custom resources together; each reboots at once.
        for member in scenario.members:
            try:
                rds.reboot_db_instance(DBInstanceIdentifier=member)
            except ClientError as err:
                failure = failure or f"{err.response['Error']['Code']} on {member}"
    elif variant == "forcessl":
        run = run_provider(
            cast(RdsSimulator, rds),
            _event(scenario),
            query_interval=query_interval,
            total_timeout=TOTAL_TIMEOUT_S,
        )
        if run.status != "SUCCESS":
            failure = run.reason.splitlines()[0][:60]
    completed = sim.now
    effective_now = sim.ready()
    ready_at = sim.ready_since if effective_now else None
    # Keep the clock running after the stack: where does RDS end up, and when?
    if scenario.stopped:
        sim.advance(600.0)
        for member in scenario.members:
            if sim.instances[member].status == "stopped":
                sim.start_instance(member, seconds=START_S)
    sim.advance(SETTLE_S)
    if ready_at is None and sim.ready():
        ready_at = sim.ready_since
    downs = [(d.start, d.end if d.end is not None else sim.now) for d in sim.downtimes]
    lag = None
    if effective_now and ready_at is not None:
        lag = completed - max(ready_at, mechanism_start)
    effective = "stopped" if scenario.stopped else "yes" if effective_now else "no"
    return Outcome(
        scenario=scenario.name,
        variant=variant,
        cfn_reboots=len(cfn.reboots),
        reboots=len(rds.reboots),
        unnecessary=sum(1 for _, _, needed in cfn.reboots + rds.reboots if not needed),
        effective=effective,
        completed_s=completed,
        ready_s=ready_at,
        lag_s=lag,
        down_s=_union_seconds(downs),
        max_down=sim.max_concurrent_down(),
        api_calls=rds.calls,
        failure=failure,
        effective_later="yes" if sim.ready() else "no",
    )


# ---- the report --------------------------------------------------------------------------------
def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:.0f}"


def table(outcomes: Sequence[Outcome]) -> list[str]:
    head = (
        "| scenario | variant | reboots: CFN + SSL mechanism (unnecessary) | effective at finish "
        "| effective after settling "
        "| stack done s | RDS ready s | done after ready s | down s | max down at once "
        "| API calls | failure |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for o in outcomes:
        lines.append(
            f"| {o.scenario} | {LABELS[o.variant]} "
            f"| {o.cfn_reboots} + {o.reboots} ({o.unnecessary}) "
            f"| {o.effective} | {o.effective_later} | {o.completed_s:.0f} | {_s(o.ready_s)} "
            f"| {'-' if o.lag_s is None else f'{o.lag_s:.0f}'} | {o.down_s:.0f} | {o.max_down} "
            f"| {o.api_calls} | {o.failure or '-'} |"
        )
    return lines


def targets(outcomes: Sequence[Outcome], query_interval: float) -> list[tuple[str, bool, str]]:
    mine = [o for o in outcomes if o.variant == "forcessl"]
    unnecessary = sum(o.unnecessary for o in mine)
    not_effective = [o.scenario for o in mine if o.effective == "no"]
    late = [f"{o.scenario} ({o.lag_s:.0f} s)" for o in mine if (o.lag_s or 0) > query_interval]
    aurora = [o for o in mine if o.scenario.startswith("aurora")]
    most_down = max((o.max_down for o in aurora), default=0)
    failed = [o.scenario for o in mine if o.failure]
    return [
        ("0 unnecessary reboots", unnecessary == 0, f"{unnecessary}"),
        (
            "effective except stopped",
            not not_effective,
            ", ".join(not_effective) or "all",
        ),
        (
            f"done within {query_interval:g} s of RDS ready",
            not late,
            ", ".join(late) or "all",
        ),
        ("<= 1 Aurora member down at once", most_down <= 1, f"{most_down}"),
        ("no failures", not failed, ", ".join(failed) or "none"),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--reboot-seconds", type=float, default=REBOOT_S, help=f"default: {REBOOT_S:g}"
    )
    parser.add_argument(
        "--query-interval",
        type=float,
        default=QUERY_INTERVAL_S,
        help=f"ForceSsl's query_interval (default: {QUERY_INTERVAL_S:g})",
    )
    parser.add_argument(
        "--scenario",
        nargs="+",
        choices=[s.name for s in SCENARIOS],
        help="run only these scenarios (default: all)",
    )
    args = parser.parse_args(argv)
    chosen = [s for s in SCENARIOS if not args.scenario or s.name in args.scenario]
    outcomes = [
        simulate(s, v, reboot_s=args.reboot_seconds, query_interval=args.query_interval)
        for s in chosen
        for v in VARIANTS
    ]
    print(
        f"Deploy behaviour on the RDS simulator: reboot {args.reboot_seconds:g} s, failover "
        f"{FAILOVER_S:g} s, create {CREATE_S:g} s, group association {MODIFY_S:g} s, busy "
        f"{BUSY_S:g} s, CloudFormation polls every {CFN_POLL_S:g} s, ForceSsl query_interval "
        f"{args.query_interval:g} s; t=0 is the start of the deploy"
    )
    print()
    for s in chosen:
        print(f"- {s.name}: {s.description}")
    print()
    for line in table(outcomes):
        print(line)
    print()
    checks = targets(outcomes, args.query_interval)
    print(
        "SUMMARY deploy_sim: (c) "
        + "; ".join(f"{name}: {'met' if ok else 'MISSED'} ({got})" for name, ok, got in checks)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
