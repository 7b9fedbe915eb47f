#!/usr/bin/env python3
"""Deploy behaviour, simulated: what each way of enforcing SSL does to the database on a deploy.

Every scenario runs on the project's RDS simulator (``simulator/``, the one the handler tests
use) on a simulated clock, so a run takes seconds while it covers hours of RDS time. t=0 is the
start of the deploy. Three variants:

(a) **CloudFormation alone** (plain CDK with ``parameters={"rds.force_ssl": "1"}``). The model of
    CloudFormation, per the project's FACTS:
    - DBInstance create: waits until the instance is available (it starts with the group);
    - DBInstance with a changed ``DBParameterGroupName`` and ApplyImmediately (the default):
      ModifyDBInstance, wait until available, then RebootDBInstance if the group is
      ``pending-reboot`` and wait for available + in-sync; with ApplyImmediately off,
      ModifyDBInstance only;
    - DBParameterGroup edit: ModifyDBParameterGroup only, never a reboot;
    - DBCluster with a new cluster parameter group: ModifyDBCluster, never a member reboot.
    It checks progress every ``CFN_POLL_S`` (an assumption: the real interval is not documented).
(b) **AwsCustomResource rebootDBInstance**, the blog pattern: (a), then one custom resource per
    declared instance or member (CloudFormation runs them at once) that calls RebootDBInstance on
    every create and update, rollbacks included (its physical ID hashes the group's parameters),
    does not wait, and fails the stack when the call fails.
(c) **ForceSsl**: (a), then the real reconciler (``rds_force_ssl.handlers``) driven like the CDK
    Provider framework drives it (``simulator.run_provider``), every ``query_interval``.

What RDS does is the simulator's: group changes that reach the database only after a lag (a
restart in that window loads the old values), ``pending-reboot`` lingering after a restart, lost
answers, throttling, IAM that is not in effect yet, statuses that allow a reboot. Custom-resource
start-up (Lambda, Step Functions) is taken as zero for both custom resources; the mechanism's own
RDS calls are counted, CloudFormation's are not.

Some scenarios deploy under ForceSsl's other reboot policies: ``Reboot.MAINTENANCE_WINDOW``
(the deploy says ``reboot-scheduled``; then the stack's schedule runs every 5 minutes, as its
EventBridge rule would, with the rule's input built from what the deploy returned, and restarts
the database in its window) and ``Reboot.NEVER`` (the deploy says ``pending-reboot``: configured,
not in effect, the restart is the user's).

Reported per scenario and variant: restarts RDS performed (CloudFormation's + the mechanism's,
the schedule's included) and how many changed nothing the engine runs (``unnecessary``); the
stack's result, and for (c) the ``Outcome`` attribute; whether the engine ran with the wanted
values when the stack finished ("effective"); the same after the clock ran on two hours; and a
**false success** when the stack said done and the engine did not run the wanted values when
the stack said it would: at once; after the start, for a stopped database (every variant: a
stopped database takes no connections, and it starts with what its group holds then); after
the window, for ``reboot-scheduled``. A stack that says ``pending-reboot`` (``Reboot.NEVER``)
says it is not in effect, and is not one. Then completion time and how long after RDS was
ready; downtime; API calls.

    .venv/bin/python benchmarks/deploy_sim.py [--reboot-seconds 117] [--query-interval 10]
        [--scenario NAME ...]
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError, ClientError

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "constructs"))

from rds_force_ssl.facts import contract
from rds_force_ssl.facts.policy import OUTCOME_PENDING_REBOOT, OUTCOME_REBOOT_SCHEDULED, Reboot
from rds_force_ssl.handlers import maintenance, reboot
from simulator import Fault, RdsSimulator, memory, rollback_of, run_concurrent

if TYPE_CHECKING:
    from mypy_boto3_rds.type_defs import DBInstanceTypeDef

# ---- durations (seconds of simulated time) ---------------------------------------------------
# Odd values on purpose: RDS events that fall exactly on a poll would hide the polling delay.
CREATE_S = 607.0  # a new db.t4g instance: 5-15 min
MODIFY_S = 63.0  # ModifyDBInstance that associates a parameter group: about a minute
CLUSTER_MODIFY_S = 33.0  # ModifyDBCluster that associates a cluster parameter group
GROUP_EDIT_S = 4.0  # ModifyDBParameterGroup (CloudFormation's update of the group resource)
REBOOT_S = 117.0  # a reboot: 60-180 s
FAILOVER_S = 43.0  # a Multi-AZ reboot with failover: 30-60 s
BUSY_S = 300.0  # an instance busy modifying for 5 min (an earlier storage change still running)
GROUP_LAG_S = 127.0  # how long RDS reports in-sync after a group change (undocumented; < 5 min)
RESTART_LAG_S = 97.0  # how long pending-reboot lingers after a restart (undocumented)
EVENT_LAG_S = 151.0  # how late RDS logs a restart ("best effort"; longer than a reboot here)
EVENT_LAG_DEFAULT_S = 37.0  # and in the other scenarios (undocumented)
RESTORED_LAG_S = 153.0  # how late RDS shows a rollback's restored group (longer than a reboot)
# The maintenance window of the MAINTENANCE_WINDOW scenarios: it opens an hour after t=0 (the
# simulator's t=0 is Monday 09:00 UTC), after the deploy.
WINDOW = "mon:10:00-mon:10:30"
START_S = 300.0  # starting a stopped instance, to show what happens later
CFN_POLL_S = 15.0  # CloudFormation's stabilization checks (assumed)
QUERY_INTERVAL_S = 10.0  # ForceSsl's default query_interval
TOTAL_TIMEOUT_S = 3000.0  # ForceSsl's default total_timeout (50 min)
SETTLE_S = 7200.0  # how long to keep the clock running after the stack, to see where RDS ends

GROUP = "bench-db0parametergroup-a1b2c3d4"
OLD_GROUP = "default.postgres16"
CLUSTER_GROUP = "bench-clusterparametergroup-a1b2c3d4"
WANTED = {"rds.force_ssl": "1"}
TLS12 = {**WANTED, "ssl_min_protocol_version": "TLSv1.2"}
TLS13 = {**WANTED, "ssl_min_protocol_version": "TLSv1.3"}
VARIANTS = ("cfn", "awscr", "forcessl")
LABELS = {
    "cfn": "(a) CloudFormation alone",
    "awscr": "(b) AwsCustomResource",
    "forcessl": "(c) ForceSsl",
}


class WatchedSimulator(RdsSimulator):
    """The project's simulator, with a check after every simulated event: since when has every
    watched member run the wanted values?"""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("event_lag_seconds", EVENT_LAG_DEFAULT_S)
        super().__init__(**kwargs)
        self.watched: list[str] = []
        self.wanted: dict[str, str] = dict(WANTED)
        self.ready_since: float | None = None

    def ready(self) -> bool:
        return bool(self.watched) and all(
            m in self.instances and self.effective(m, self.wanted) for m in self.watched
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
    """Wraps the simulator for the SSL mechanism: counts its calls and judges each restart."""

    sim: WatchedSimulator
    calls: int = 0
    restarts: list[tuple[float, str, bool]] = field(default_factory=list)  # (t, id, needed)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.sim, name)
        if name.startswith(("describe_", "reboot_")):
            self.calls += 1
        if name.startswith("reboot_"):
            return self._judged(attr)
        return attr

    def _judged(self, call: Callable[..., Any]) -> Callable[..., Any]:
        def run(**kwargs: Any) -> Any:
            before = {i: needed(self.sim, i) for i in self.sim.instances}
            seen = len(self.sim.downtimes)
            try:
                return call(**kwargs)
            finally:
                # Counted whether or not the answer reached the caller (a lost answer still
                # reboots).
                for d in self.sim.downtimes[seen:]:
                    self.restarts.append((self.sim.now, d.identifier, before[d.identifier]))

        return run


def needed(sim: RdsSimulator, ident: str) -> bool:
    """Would a restart now change what the engine runs (or bring it back up)?"""
    inst = sim.instances[ident]
    loaded = {**inst.registered, **inst.cluster_registered}
    return inst.status == "incompatible-parameters" or any(
        inst.running.get(k) != v for k, v in loaded.items()
    )


# ---- CloudFormation, as modelled ------------------------------------------------------------
class CloudFormation:
    def __init__(self, sim: WatchedSimulator) -> None:
        self.sim = sim
        self.restarts: list[tuple[float, str, bool]] = []

    def wait(self, done: Callable[[], bool]) -> None:
        while not done():
            self.sim.advance(CFN_POLL_S)

    def instance(self, ident: str) -> DBInstanceTypeDef:
        return self.sim.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]

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
            wanted = needed(self.sim, ident)
            self.sim.reboot_db_instance(DBInstanceIdentifier=ident)
            self.restarts.append((self.sim.now, ident, wanted))
            self.sim.check()

            def in_sync() -> bool:
                view = self.instance(ident)
                return view["DBInstanceStatus"] == "available" and all(
                    g["ParameterApplyStatus"] == "in-sync" for g in view["DBParameterGroups"]
                )

            self.wait(in_sync)

    def edit_group(self, group: str, values: dict[str, str], *, lag: float = 0.0) -> None:
        self.sim.modify_group(group, values, lag=lag)
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
class Step:
    """CloudFormation's own part of one stack operation, then the requests it sends the SSL
    mechanism: ``request`` is Create, Update or Rollback (of the previous Update)."""

    cloudformation: Callable[[CloudFormation], None]
    request: str = "Create"
    enforced: dict[str, str] = field(default_factory=lambda: dict(WANTED))
    parameters: dict[str, str] | None = None  # the group's, when more than ``enforced``
    copies: tuple[float, ...] = (0.0,)  # start delays: two resources or a redeploy at once


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    kind: str  # what the custom resources protect: "instance" or "cluster"
    identifier: str
    members: tuple[str, ...]  # what must end up effective
    before: Callable[[WatchedSimulator], None]  # the state before the deploy
    steps: tuple[Step, ...]
    group: str = GROUP
    declared: tuple[str, ...] = ()  # cluster members declared in the app (default: members)
    wanted: dict[str, str] = field(default_factory=lambda: dict(WANTED))
    force_failover: bool = False
    autoscaled_readers: bool = False
    stopped: bool = False
    rollback: bool = False  # a later resource fails: the last step is the rollback
    sim: dict[str, float] = field(default_factory=dict)  # simulator knobs
    faults: tuple[Fault, ...] = ()  # armed when the mechanism starts
    iam_delay: float = 0.0  # IAM not in effect for the mechanism's first seconds
    # (c) fails, and should: what it cannot do is the user's to fix, and it says so.
    c_fails: bool = False
    policy: str | None = None  # ForceSsl's Reboot (default: IMMEDIATE)


def _existing(sim: WatchedSimulator, **kwargs: Any) -> None:
    sim.add_instance("db0", groups={OLD_GROUP: "in-sync"}, **kwargs)


def _attached(sim: WatchedSimulator, **kwargs: Any) -> None:
    sim.add_instance("db0", groups={GROUP: "in-sync"}, **kwargs)


def _own_group(sim: WatchedSimulator) -> None:
    """An instance with its own group (work_mem only): ForceSsl adds rds.force_ssl to it."""
    sim.groups[GROUP.lower()].params.clear()
    sim.modify_group(GROUP, {"work_mem": "4096"})
    sim.add_instance("db0", groups={GROUP: "in-sync"})
    sim.advance(60)


def _tls_floor(sim: WatchedSimulator) -> None:
    sim.groups[GROUP.lower()].apply_types["ssl_min_protocol_version"] = "static"
    sim.modify_group(GROUP, TLS12)
    sim.add_instance("db0", groups={GROUP: "in-sync"})
    sim.instances["db0"].running = dict(TLS12)


def _busy(sim: WatchedSimulator) -> None:
    _attached(sim)
    sim.busy("db0", BUSY_S, status="modifying")


def _stopped(sim: WatchedSimulator) -> None:
    _attached(sim)
    sim.stop_instance("db0")


def _stopped_hand_swapped(sim: WatchedSimulator) -> None:
    """Stopped, and someone attached a group of their own (rds.force_ssl=0) by hand: the stack's
    group is not the one it will start with."""
    sim.add_group("hand-made", {"rds.force_ssl": "0"})
    sim.add_instance("db0", groups={"hand-made": "in-sync"})
    sim.stop_instance("db0")


def _in_window(sim: WatchedSimulator) -> None:
    _force_ssl_0(sim)
    sim.instances["db0"].window = WINDOW


def _optimizing(sim: WatchedSimulator) -> None:
    _own_group(sim)
    sim.optimize_storage("db0", 6 * 3600)


def _aurora(sim: WatchedSimulator, *, autoscaled: bool = False) -> None:
    sim.add_group("default.aurora-postgresql16", {}, cluster=True)
    sim.add_cluster(
        "cluster0",
        group="default.aurora-postgresql16",
        writer="cluster0-writer",
        readers=("cluster0-reader1", "cluster0-reader2"),
        status="in-sync",
    )
    if autoscaled:
        sim.add_autoscaled_reader("cluster0", "61aabbcc", status="in-sync")


AURORA_MEMBERS = ("cluster0-writer", "cluster0-reader1", "cluster0-reader2")
AUTOSCALED = "application-autoscaling-61aabbcc"


def _static_edit(lag: float = 0.0) -> Callable[[CloudFormation], None]:
    return lambda cfn: cfn.edit_group(GROUP, WANTED, lag=lag)


def _force_ssl_0(sim: WatchedSimulator) -> None:
    _attached(sim)
    sim.modify_group(GROUP, {"rds.force_ssl": "0"})
    sim.advance(30)
    sim.instances["db0"].running = {"rds.force_ssl": "0"}


def _force_ssl_0_busy(sim: WatchedSimulator) -> None:
    _force_ssl_0(sim)
    sim.busy("db0", BUSY_S)


def _force_ssl_0_multi_az(sim: WatchedSimulator) -> None:
    _force_ssl_0(sim)
    sim.instances["db0"].multi_az = True


def _force_ssl_0_stopped(sim: WatchedSimulator) -> None:
    _force_ssl_0(sim)
    sim.stop_instance("db0")


BAD = {**TLS13, "shared_buffers": "99999999"}
GOOD = {**TLS12, "shared_buffers": "16384"}


def _good_buffers(sim: WatchedSimulator) -> None:
    _tls_floor(sim)
    sim.modify_group(GROUP, GOOD)
    sim.instances["db0"].running = dict(GOOD)
    sim.break_group(GROUP, "shared_buffers", "99999999")


SCENARIOS = (
    Scenario(
        "new-db",
        "a new instance created with the group (in-sync from the start)",
        "instance",
        "db0",
        ("db0",),
        lambda sim: None,
        (Step(lambda cfn: cfn.create_instance("db0", group=GROUP)),),
    ),
    Scenario(
        "assoc-cfn-rebooted",
        "existing instance gets the group; CloudFormation reboots it (in-sync when we arrive)",
        "instance",
        "db0",
        ("db0",),
        _existing,
        (Step(lambda cfn: cfn.associate("db0", group=GROUP, apply_immediately=True)),),
    ),
    Scenario(
        "assoc-deferred",
        "existing instance gets the group with ApplyImmediately off (pending-reboot)",
        "instance",
        "db0",
        ("db0",),
        _existing,
        (Step(lambda cfn: cfn.associate("db0", group=GROUP, apply_immediately=False)),),
    ),
    Scenario(
        "static-edit",
        "rds.force_ssl 0 -> 1 in the attached group (static)",
        "instance",
        "db0",
        ("db0",),
        _force_ssl_0,
        (Step(_static_edit(), request="Update"),),
    ),
    Scenario(
        "lagging-in-sync",
        f"ForceSsl added to an instance with its own group; RDS says in-sync for {GROUP_LAG_S:g} s",
        "instance",
        "db0",
        ("db0",),
        _own_group,
        (Step(_static_edit(GROUP_LAG_S), parameters={"work_mem": "4096", **WANTED}),),
    ),
    Scenario(
        "restart-lag",
        f"rds.force_ssl 0 -> 1; pending-reboot lingers {RESTART_LAG_S:g} s after the restart",
        "instance",
        "db0",
        ("db0",),
        _force_ssl_0,
        (Step(_static_edit(), request="Update"),),
        sim={"apply_lag_seconds": RESTART_LAG_S},
    ),
    Scenario(
        "lost-answer",
        "as restart-lag, and the reboot's answer is lost (botocore's retry meets "
        "InvalidDBInstanceState)",
        "instance",
        "db0",
        ("db0",),
        _force_ssl_0,
        (Step(_static_edit(), request="Update"),),
        sim={"apply_lag_seconds": RESTART_LAG_S},
        faults=(Fault("RebootDBInstance", "lost-retried"),),
    ),
    Scenario(
        "two-requests",
        "as restart-lag, with two resources (or a redeploy) on the instance, 30 s apart",
        "instance",
        "db0",
        ("db0",),
        _force_ssl_0,
        (Step(_static_edit(), request="Update", copies=(0.0, 30.0)),),
        sim={"apply_lag_seconds": RESTART_LAG_S},
    ),
    Scenario(
        "busy-modifying",
        "static edit while the instance is modifying for 5 min (an earlier change)",
        "instance",
        "db0",
        ("db0",),
        _force_ssl_0_busy,
        (Step(_static_edit(), request="Update"),),
    ),
    Scenario(
        "storage-optimization",
        "ForceSsl added while RDS optimizes storage for 6 h (the instance works)",
        "instance",
        "db0",
        ("db0",),
        _optimizing,
        (Step(_static_edit(), parameters={"work_mem": "4096", **WANTED}),),
    ),
    Scenario(
        "throttled",
        "static edit; the mechanism's first reboot call is throttled beyond botocore's retries",
        "instance",
        "db0",
        ("db0",),
        _force_ssl_0,
        (Step(_static_edit(), request="Update"),),
        faults=(Fault("RebootDBInstance", "throttle"),),
    ),
    Scenario(
        "iam-propagating",
        "static edit; the mechanism's new IAM policy takes 60 s to be in effect",
        "instance",
        "db0",
        ("db0",),
        _force_ssl_0,
        (Step(_static_edit(), request="Update"),),
        iam_delay=60.0,
    ),
    Scenario(
        "multi-az-failover",
        "static edit on a Multi-AZ instance; ForceSsl(force_failover=True)",
        "instance",
        "db0",
        ("db0",),
        _force_ssl_0_multi_az,
        (Step(_static_edit(), request="Update"),),
        force_failover=True,
    ),
    Scenario(
        "stopped",
        "static edit while the instance is stopped",
        "instance",
        "db0",
        ("db0",),
        _force_ssl_0_stopped,
        (Step(_static_edit(), request="Update"),),
        stopped=True,
    ),
    Scenario(
        "stopped-hand-swapped",
        "static edit while the instance is stopped, its group swapped by hand for one with "
        "rds.force_ssl=0",
        "instance",
        "db0",
        ("db0",),
        _stopped_hand_swapped,
        (Step(_static_edit(), request="Update"),),
        stopped=True,
        c_fails=True,
    ),
    Scenario(
        "event-lag",
        f"as restart-lag, and RDS logs the restart {EVENT_LAG_S:g} s late (longer than a reboot)",
        "instance",
        "db0",
        ("db0",),
        _force_ssl_0,
        (Step(_static_edit(), request="Update"),),
        sim={"apply_lag_seconds": RESTART_LAG_S, "event_lag_seconds": EVENT_LAG_S},
    ),
    Scenario(
        "window",
        "static edit under Reboot.MAINTENANCE_WINDOW; the window opens an hour later",
        "instance",
        "db0",
        ("db0",),
        _in_window,
        (Step(_static_edit(), request="Update"),),
        policy=Reboot.MAINTENANCE_WINDOW.value,
    ),
    Scenario(
        "window-event-lag",
        f"as window, and RDS logs the restart {EVENT_LAG_S:g} s late and says pending-reboot "
        f"for {RESTART_LAG_S:g} s after it",
        "instance",
        "db0",
        ("db0",),
        _in_window,
        (Step(_static_edit(), request="Update"),),
        policy=Reboot.MAINTENANCE_WINDOW.value,
        sim={"apply_lag_seconds": RESTART_LAG_S, "event_lag_seconds": EVENT_LAG_S},
    ),
    Scenario(
        "never",
        "static edit under Reboot.NEVER",
        "instance",
        "db0",
        ("db0",),
        _force_ssl_0,
        (Step(_static_edit(), request="Update"),),
        policy=Reboot.NEVER.value,
    ),
    Scenario(
        "rollback",
        "TLS floor 1.2 -> 1.3 (static), then a later resource fails and the stack rolls back",
        "instance",
        "db0",
        ("db0",),
        _tls_floor,
        (
            Step(lambda cfn: cfn.edit_group(GROUP, TLS13), request="Update", enforced=TLS13),
            Step(lambda cfn: cfn.edit_group(GROUP, TLS12), request="Rollback", enforced=TLS12),
        ),
        wanted=TLS12,
        rollback=True,
    ),
    Scenario(
        "rollback-repair",
        "TLS floor 1.3 with shared_buffers too high (the engine cannot start), rolled back",
        "instance",
        "db0",
        ("db0",),
        _good_buffers,
        (
            Step(
                lambda cfn: cfn.edit_group(GROUP, BAD),
                request="Update",
                enforced=TLS13,
                parameters=BAD,
            ),
            Step(
                lambda cfn: cfn.edit_group(GROUP, GOOD),
                request="Rollback",
                enforced=TLS12,
                parameters=GOOD,
            ),
        ),
        wanted=GOOD,
        rollback=True,
    ),
    Scenario(
        "rollback-repair-lag",
        f"as rollback-repair, and RDS shows the restored group {RESTORED_LAG_S:g} s late",
        "instance",
        "db0",
        ("db0",),
        _good_buffers,
        (
            Step(
                lambda cfn: cfn.edit_group(GROUP, BAD),
                request="Update",
                enforced=TLS13,
                parameters=BAD,
            ),
            Step(
                lambda cfn: cfn.edit_group(GROUP, GOOD, lag=RESTORED_LAG_S),
                request="Rollback",
                enforced=TLS12,
                parameters=GOOD,
            ),
        ),
        wanted=GOOD,
        rollback=True,
    ),
    Scenario(
        "aurora-1w-2r",
        "Aurora PostgreSQL 16.9, 1 writer + 2 readers, gets a new cluster parameter group",
        "cluster",
        "cluster0",
        AURORA_MEMBERS,
        _aurora,
        (Step(lambda cfn: cfn.associate_cluster("cluster0", group=CLUSTER_GROUP)),),
        group=CLUSTER_GROUP,
    ),
    Scenario(
        "aurora-autoscaled",
        "as aurora-1w-2r, plus a reader Aurora Auto Scaling added (not declared in the app)",
        "cluster",
        "cluster0",
        (*AURORA_MEMBERS, AUTOSCALED),
        lambda sim: _aurora(sim, autoscaled=True),
        (Step(lambda cfn: cfn.associate_cluster("cluster0", group=CLUSTER_GROUP)),),
        group=CLUSTER_GROUP,
        declared=AURORA_MEMBERS,
        c_fails=True,
    ),
    Scenario(
        "aurora-autoscaled-optin",
        "as aurora-autoscaled, with ForceSsl(autoscaled_readers=True)",
        "cluster",
        "cluster0",
        (*AURORA_MEMBERS, AUTOSCALED),
        lambda sim: _aurora(sim, autoscaled=True),
        (Step(lambda cfn: cfn.associate_cluster("cluster0", group=CLUSTER_GROUP)),),
        group=CLUSTER_GROUP,
        declared=AURORA_MEMBERS,
        autoscaled_readers=True,
    ),
)


# ---- running one scenario with one variant -----------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    scenario: str
    variant: str
    cfn_restarts: int
    restarts: int
    unnecessary: int
    result: str  # the stack's
    attribute: str  # (c)'s Outcome attribute
    effective: str
    judged: str  # when the stack's word is judged (see simulate)
    false_success: bool
    effective_later: str
    completed_s: float
    lag_s: float | None
    down_s: float
    max_down: int
    api_calls: int
    failure: str


def _props(scenario: Scenario, step: Step) -> dict[str, Any]:
    props: dict[str, Any] = {
        contract.PROP_KIND: scenario.kind,
        contract.PROP_IDENTIFIER: scenario.identifier,
        contract.PROP_PARAMETER_GROUP: scenario.group,
        contract.PROP_PARAMETERS: dict(step.parameters or step.enforced),
        contract.PROP_ENFORCED: dict(step.enforced),
        contract.PROP_FORCE_FAILOVER: "true" if scenario.force_failover else "false",
    }
    if scenario.kind == "cluster":
        props[contract.PROP_MEMBERS] = list(scenario.declared or scenario.members)
    if scenario.autoscaled_readers:
        props[contract.PROP_AUTOSCALED_READERS] = "true"
    if scenario.policy is not None:
        props[contract.PROP_REBOOT] = scenario.policy
    return props


def _event(
    scenario: Scenario, step: Step, previous: dict[str, Any] | None, n: int
) -> dict[str, Any]:
    if step.request == "Rollback":
        assert previous is not None
        return rollback_of(previous, f"bench-{scenario.name}-rollback")
    event: dict[str, Any] = {
        "RequestType": step.request,
        "RequestId": f"bench-{scenario.name}-{n}",
        "ResourceType": contract.RESOURCE_TYPE,
        "ResourceProperties": _props(scenario, step),
    }
    if step.request == "Update":
        # Before this deploy the resource held what the simulated world held.
        old = copy.deepcopy(event["ResourceProperties"])
        old[contract.PROP_ENFORCED] = dict(previous_enforced(scenario))
        old[contract.PROP_PARAMETERS] = dict(previous_enforced(scenario))
        event["OldResourceProperties"] = old
        event["PhysicalResourceId"] = reboot.physical_id(scenario.kind, scenario.identifier)
    return event


def previous_enforced(scenario: Scenario) -> dict[str, str]:
    if scenario.name.startswith("rollback"):
        return dict(GOOD if scenario.name.startswith("rollback-repair") else TLS12)
    return {"rds.force_ssl": "0"}


def _union_seconds(intervals: Sequence[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for lo, hi in sorted(intervals):
        if hi > end:
            total += hi - max(lo, end)
            end = hi
    return total


def _awscr(scenario: Scenario, rds: Recorder) -> str:
    """One AwsCustomResource per declared instance or member: reboot at once, do not wait."""
    failure = ""
    for member in scenario.declared or scenario.members:
        try:
            rds.reboot_db_instance(DBInstanceIdentifier=member)
        except (ClientError, BotoCoreError) as err:
            code = (
                err.response["Error"]["Code"]
                if isinstance(err, ClientError)
                else type(err).__name__
            )
            failure = failure or f"{code} on {member}"
    return failure


def _schedule(scenario: Scenario, rds: Recorder, owed_since: str, *, until: float) -> None:
    """The stack's maintenance-window schedule, every RATE_MINUTES, with the input its template
    would give it (the deploy's RebootOwedSince), until ``until``."""
    sim = rds.sim
    flags = maintenance.FLAG_CLUSTER if scenario.kind == "cluster" else ""
    members = ",".join(scenario.declared or scenario.members) if flags else ""
    event = {
        maintenance.INPUT_KEY: maintenance.INPUT_KIND,
        maintenance.INPUT_DATABASES: [[scenario.identifier, owed_since, members, flags]],
    }
    every = maintenance.RATE_MINUTES * 60.0
    while sim.now < until:
        sim.advance(min(every - sim.now % every or every, until - sim.now))
        maintenance.handle(event, cast(RdsSimulator, rds), memory=memory(sim), now=sim.time())


def simulate(
    scenario: Scenario,
    variant: str,
    *,
    reboot_s: float,
    query_interval: float,
    timing: dict[str, float] | None = None,
) -> Outcome:
    """One scenario with one variant; ``timing``: simulator knobs over the scenario's own
    (benchmarks/reboot_matrix.py)."""
    knobs = {**scenario.sim, **(timing or {})}
    sim = WatchedSimulator(reboot_seconds=reboot_s, failover_seconds=FAILOVER_S, **knobs)
    sim.watched = list(scenario.members)
    sim.wanted = dict(scenario.wanted)
    sim.add_group(GROUP, {})
    sim.add_group(CLUSTER_GROUP, dict(WANTED), cluster=True)
    sim.modify_group(GROUP, dict(WANTED))
    scenario.before(sim)
    sim.advance(1)
    sim.check()
    cfn = CloudFormation(sim)
    rds = Recorder(sim)
    failure, attribute, result = "", "", "SUCCESS"
    owed_since = "0"
    previous: dict[str, Any] | None = None
    mechanism_start = 0.0
    for n, step in enumerate(scenario.steps):
        step.cloudformation(cfn)
        mechanism_start = sim.now
        for fault in scenario.faults:
            sim.faults.append(copy.copy(fault))
        if scenario.iam_delay:
            sim.iam_ready_at = sim.now + scenario.iam_delay
        event = _event(scenario, step, previous, n)
        previous = event
        step_failure = ""
        if variant == "awscr":
            step_failure = _awscr(scenario, rds)
        elif variant == "forcessl":
            runs = run_concurrent(
                cast(RdsSimulator, rds),
                [(delay, copy.deepcopy(event)) for delay in step.copies],
                query_interval=query_interval,
                total_timeout=TOTAL_TIMEOUT_S,
            )
            bad = [r for r in runs if r.status != "SUCCESS"]
            step_failure = bad[0].reason.split(";")[0][:70] if bad else ""
            attribute = runs[0].data.get("Outcome", "") if not bad else ""
            owed_since = runs[0].data.get(contract.ATTR_REBOOT_OWED_SINCE, "0")
        sim.faults.clear()
        if step.request == "Rollback":
            result = "ROLLBACK_FAILED" if step_failure else "ROLLBACK_COMPLETE"
            failure = step_failure or failure
        elif step_failure:
            failure = failure or step_failure
            if not scenario.rollback:
                result = "FAILED"
    completed = sim.now
    effective_now = sim.ready()
    ready_at = sim.ready_since if effective_now else None
    said_done = result in ("SUCCESS", "ROLLBACK_COMPLETE")
    # Keep the clock running after the stack: where does RDS end up, and when? A stopped
    # database is started 10 minutes later; a reboot-scheduled one meets the stack's schedule,
    # every 5 minutes, as its EventBridge rule runs it.
    if scenario.stopped:
        sim.advance(600.0)
        for member in scenario.members:
            if sim.instances[member].status == "stopped":
                sim.start_instance(member, seconds=START_S)
    if variant == "forcessl" and attribute == OUTCOME_REBOOT_SCHEDULED:
        _schedule(scenario, rds, owed_since, until=sim.now + SETTLE_S)
    else:
        sim.advance(SETTLE_S)
    effective_later = sim.ready()
    # When the stack's word is judged: when it finished, unless it said the database was
    # stopped (every variant's stack says done for a stopped database; it starts with what its
    # group holds then) or that the window would restart it. "pending-reboot" says it is not in
    # effect: never a false success.
    later = scenario.stopped or attribute == OUTCOME_REBOOT_SCHEDULED
    honest_no = attribute == OUTCOME_PENDING_REBOOT
    downs = [(d.start, d.end if d.end is not None else sim.now) for d in sim.downtimes]
    lag = None
    if effective_now and ready_at is not None:
        lag = completed - max(ready_at, mechanism_start)
    return Outcome(
        scenario=scenario.name,
        variant=variant,
        cfn_restarts=len(cfn.restarts),
        restarts=len(rds.restarts),
        unnecessary=sum(1 for _, _, was_needed in cfn.restarts + rds.restarts if not was_needed),
        result=result,
        attribute=attribute or "-",
        effective="stopped" if scenario.stopped else "yes" if effective_now else "no",
        judged="says not in effect"
        if honest_no
        else "after the start"
        if scenario.stopped
        else "after the window"
        if later
        else "at finish",
        false_success=said_done
        and not honest_no
        and not (effective_later if later else effective_now),
        effective_later="yes" if effective_later else "no",
        completed_s=completed,
        lag_s=lag,
        down_s=_union_seconds(downs),
        max_down=sim.max_concurrent_down(),
        api_calls=rds.calls,
        failure=failure,
    )


# ---- the report --------------------------------------------------------------------------------
def table(outcomes: Sequence[Outcome]) -> list[str]:
    head = (
        "| scenario | variant | restarts: CFN + mechanism (unnecessary) | stack | Outcome "
        "| effective at finish | judged | false success | effective 2 h later | stack done s "
        "| done after effective s | down s | max down at once | API calls | failure |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for o in outcomes:
        lines.append(
            f"| {o.scenario} | {LABELS[o.variant]} "
            f"| {o.cfn_restarts} + {o.restarts} ({o.unnecessary}) | {o.result} | {o.attribute} "
            f"| {o.effective} | {o.judged} | {'**yes**' if o.false_success else 'no'} "
            f"| {o.effective_later} "
            f"| {o.completed_s:.0f} | {'-' if o.lag_s is None else f'{o.lag_s:.0f}'} "
            f"| {o.down_s:.0f} | {o.max_down} | {o.api_calls} | {o.failure or '-'} |"
        )
    return lines


def targets(
    outcomes: Sequence[Outcome], scenarios: Sequence[Scenario], query_interval: float
) -> list[tuple[str, bool, str]]:
    by_name = {s.name: s for s in scenarios}
    mine = [o for o in outcomes if o.variant == "forcessl"]
    false_successes = [o.scenario for o in mine if o.false_success]
    unnecessary = sum(o.unnecessary for o in mine)
    # Effective when the stack said it would be (at finish, after the start, after the
    # window), except where it must fail, or says it is not (Reboot.NEVER).
    not_effective = [
        o.scenario
        for o in mine
        if not by_name[o.scenario].c_fails
        and o.judged != "says not in effect"
        and (o.effective_later if o.judged != "at finish" else o.effective) != "yes"
    ]
    wrong_result = [
        o.scenario
        for o in mine
        if (o.result in ("FAILED", "ROLLBACK_FAILED")) != by_name[o.scenario].c_fails
    ]
    late = [f"{o.scenario} ({o.lag_s:.0f} s)" for o in mine if (o.lag_s or 0) > query_interval]
    aurora = [o for o in mine if o.scenario.startswith("aurora")]
    most_down = max((o.max_down for o in aurora), default=0)
    return [
        ("0 false successes", not false_successes, ", ".join(false_successes) or "none"),
        ("0 unnecessary restarts", unnecessary == 0, f"{unnecessary}"),
        (
            "effective when it says (at finish; stopped: after the start; window: after it)",
            not not_effective,
            ", ".join(not_effective) or "all",
        ),
        (
            "fails only where it must, with the fix",
            not wrong_result,
            ", ".join(wrong_result) or "as expected",
        ),
        ("<= 1 Aurora member down at once", most_down <= 1, f"{most_down}"),
        (
            f"done within {query_interval:g} s of RDS effective",
            not late,
            ", ".join(late) + " (a change is trusted only 300 s after the request started)"
            if late
            else "all",
        ),
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
        f"{FAILOVER_S:g} s, create {CREATE_S:g} s, group association {MODIFY_S:g} s, in-sync "
        f"lag after a group change {GROUP_LAG_S:g} s where stated, restart events logged "
        f"{EVENT_LAG_DEFAULT_S:g} s late ({EVENT_LAG_S:g} s where stated), CloudFormation "
        f"polls every {CFN_POLL_S:g} s, ForceSsl query_interval {args.query_interval:g} s; t=0 "
        "is the start of the deploy"
    )
    print()
    for s in chosen:
        print(f"- {s.name}: {s.description}")
    print()
    for line in table(outcomes):
        print(line)
    print()
    checks = targets(outcomes, chosen, args.query_interval)
    stopped = sum(s.stopped for s in chosen)
    window = sum(s.policy == Reboot.MAINTENANCE_WINDOW.value for s in chosen)
    never = sum(s.policy == Reboot.NEVER.value for s in chosen)
    counts = ", ".join(
        f"{LABELS[v]} {sum(o.false_success for o in outcomes if o.variant == v)}" for v in VARIANTS
    )
    print(
        "SUMMARY deploy_sim: (c) "
        + "; ".join(f"{name}: {'met' if ok else 'MISSED'} ({got})" for name, ok, got in checks)
        + f". False successes in {len(chosen)} scenarios ({stopped} stopped, judged after the "
        f"start; {window} under MAINTENANCE_WINDOW, judged after the window; {never} under NEVER, "
        f"which says pending-reboot): {counts}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
