"""The RDS part of the simulator (``SimRds``): stateful, on a simulated clock, at least as unkind
as RDS.

moto keeps every parameter group ``in-sync`` and reboots without passing through ``rebooting``
(see the project's FACTS), so it cannot show what the reboot reconciler is for. This simulator
follows RDS's documented state machine, and adds the delays and faults RDS does not promise to
spare anyone:

- a parameter group change reaches its databases only after ``lag`` seconds; until then they
  report ``in-sync``, and a restart in that window loads the *old* values (RDS asks for 5
  minutes before relying on a modified group);
- a static change leaves each database ``pending-reboot``; a dynamic one is ``applying``, then
  ``in-sync`` (or ``failed-to-apply`` for a value RDS rejects); whether a parameter is static or
  dynamic is the group's, reported as ``ApplyType``, never assumed by the caller;
- a newly associated group is ``pending-reboot`` until a restart, whatever its parameters;
- after a restart the status is ``available`` ``apply_lag_seconds`` before the group says
  ``in-sync``, or for the next ``pending_reboot_looks`` describes of it; after a reboot is
  accepted, DescribeDBInstances may keep saying ``available`` for ``reboot_view_lag_seconds``
  (RDS itself refuses a second reboot meanwhile); a restart lasts ``reboot_seconds`` (RDS
  publishes no bound: the matrix runs 5 to 20 minutes);
- a change RDS cannot apply (``stuck_pending``): the database stays ``pending-reboot`` after
  every restart;
- RebootDBInstance fails with InvalidDBInstanceState unless the instance is ``available``,
  ``storage-optimization`` or ``incompatible-parameters``; a restart with a value the engine
  cannot start with ends in ``incompatible-parameters``;
- restarts are logged as RDS events ("DB instance shutdown", "DB instance restarted", and the
  Multi-AZ failover pair), visible ``event_lag_seconds`` after they happen: 120 s unless a
  test says otherwise, longer than a default reboot, because AWS emits events "on a best effort
  basis" and bounds their delay nowhere;
- faults on demand, for a number of calls or for a stretch of simulated time: throttling and
  5xx that outlast botocore's retries, lost responses (the call takes effect, the caller sees a
  timeout, or what botocore's retry of it meets, with ``RetryAttempts`` saying a retry was
  made), and an IAM policy that names only some resources, or is not in effect yet
  (propagation);
- a member that is ``deleting`` for a while, then gone (Aurora Auto Scaling scaling in);
- Aurora: members with their cluster group status, a writer that restarts its readers on old
  versions, readers added by Aurora Auto Scaling (named and tagged as AWS does);
  Multi-AZ DB clusters rebooted as a whole with RebootDBCluster, whose dependent action
  RebootDBInstance IAM must allow on each member too.

Requests and responses are checked against botocore's model (``simulator.shapes``), so code run
here sends what botocore would send and reads what RDS returns. Every call is in ``calls``; the
values each engine really runs with are in ``SimInstance.running``, so "in effect" is judged on
the engine, not on what RDS reports.

What lives where: ``SimRds`` is a ``simulator.world.World``, which holds what the RDS part and
the DynamoDB part share (the clock and ``EPOCH``, ``calls``, ``faults`` and ``Fault``, ``iam``
and ``iam_ready_at``, ``REGION``/``ACCOUNT``, ``client_error``); this module holds RDS's state
machine and API. The stack's DynamoDB table, the reconciler's memory, is ``simulator.dynamodb``;
``simulator.RdsSimulator`` is a ``SimRds`` with that table as ``table``. This module does not
import ``simulator.dynamodb``, nor it this one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError, ReadTimeoutError

from simulator import shapes
from simulator.world import ACCOUNT as ACCOUNT  # re-exported: tests import it from here
from simulator.world import EPOCH, World, client_error
from simulator.world import REGION as REGION  # re-exported: tests import it from here

if TYPE_CHECKING:
    from mypy_boto3_rds.type_defs import (
        DBClusterMessageTypeDef,
        DBClusterParameterGroupDetailsTypeDef,
        DBInstanceMessageTypeDef,
        DBParameterGroupDetailsTypeDef,
        EventsMessageTypeDef,
        RebootDBClusterResultTypeDef,
        RebootDBInstanceResultTypeDef,
    )

# What the simulated engines say about their parameters (ApplyType). Tests choose the other
# answer where it matters: the reconciler must read it, not assume it.
APPLY_TYPES = {
    "rds.force_ssl": "static",
    "ssl_min_protocol_version": "dynamic",
    "require_secure_transport": "dynamic",
    "shared_buffers": "static",
    "work_mem": "dynamic",
}
# Statuses in which RDS accepts RebootDBInstance.
REBOOTABLE = ("available", "storage-optimization", "incompatible-parameters")


def arn(kind: str, name: str) -> str:
    return f"arn:aws:rds:{REGION}:{ACCOUNT}:{kind}:{name}"


@dataclass
class SimParam:
    value: str
    apply_type: str = "static"
    source: str = "user"


@dataclass
class SimGroup:
    name: str
    cluster: bool = False
    params: dict[str, SimParam] = field(default_factory=dict)
    others: int = 0  # unrelated engine-default parameters listed first (a real group has ~400)
    breaks_start: dict[str, str] = field(default_factory=dict)  # name -> value the engine fails on
    rejects: dict[str, str] = field(default_factory=dict)  # name -> value RDS fails to apply
    apply_types: dict[str, str] = field(default_factory=lambda: dict(APPLY_TYPES))
    # Listed without a value (reset or never set: RDS still reports its ApplyType).
    unset: set[str] = field(default_factory=set)
    # Dynamic parameters last modified with ApplyMethod pending-reboot: in effect at a restart.
    deferred: set[str] = field(default_factory=set)

    def values(self) -> dict[str, str]:
        return {k: p.value for k, p in self.params.items() if p.source == "user"}

    def apply_type(self, name: str) -> str:
        return self.apply_types.get(name, "static")


@dataclass
class SimInstance:
    identifier: str
    status: str = "available"
    group: str | None = None  # the DB parameter group
    apply: str = "in-sync"  # its ParameterApplyStatus
    multi_az: bool = False
    engine: str = "postgres"
    engine_version: str = "16.9"
    cluster: str | None = None
    is_writer: bool = False
    cluster_group_status: str = "in-sync"  # DBClusterParameterGroupStatus (cluster members)
    ca: str = "rds-ca-rsa2048-g1"
    tags: dict[str, str] = field(default_factory=dict)
    # What RDS has propagated to the instance (a restart loads it), and what the engine runs.
    registered: dict[str, str] = field(default_factory=dict)
    cluster_registered: dict[str, str] = field(default_factory=dict)
    running: dict[str, str] = field(default_factory=dict)
    pending_on_start: bool = False
    background: str | None = None  # an operational status, e.g. storage-optimization
    shown_status: str | None = None  # what DescribeDBInstances shows while its view lags
    shown_until: float = 0.0
    # Describes left in which the group's apply status still reads pending-reboot after a
    # restart (the instance's own group; an Aurora member's cluster group).
    stale_looks: int = 0
    stale_cluster_looks: int = 0
    # PreferredMaintenanceWindow (UTC); RDS picks one at random when none is given.
    window: str = "sun:05:00-sun:05:30"


@dataclass
class SimCluster:
    identifier: str
    group: str
    engine: str = "aurora-postgresql"
    engine_version: str = "16.9"
    status: str = "available"
    members: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    window: str = "sun:05:00-sun:05:30"


@dataclass
class SimProxy:
    name: str
    engine_family: str = "POSTGRESQL"
    require_tls: bool = True
    status: str = "available"


@dataclass
class SimEvent:
    at: float
    source_type: str
    source: str
    message: str
    categories: list[str]
    visible_at: float


@dataclass
class Downtime:
    identifier: str
    start: float
    end: float | None = None


class SimRds(World):
    """The RDS slice of a boto3 client, stateful, in a world (``simulator.world``) whose clock
    only ``advance`` moves. ``simulator.RdsSimulator`` adds the stack's DynamoDB table to it."""

    # How long a ModifyDB(Cluster)ParameterGroup call takes to reach the databases (their apply
    # status reads in-sync meanwhile); ``modify_group``'s ``lag`` for scripted changes.
    group_lag_seconds: float = 0.0

    def __init__(
        self,
        *,
        reboot_seconds: float = 90.0,
        failover_seconds: float = 60.0,
        apply_lag_seconds: float = 0.0,
        reboot_view_lag_seconds: float = 0.0,
        event_lag_seconds: float = 120.0,
        applying_seconds: float = 20.0,
        pending_reboot_looks: int = 0,
        parameter_filters: str = "honoured",
        strict: bool = True,
    ) -> None:
        """``parameter_filters``: what DescribeDBParameters does with a ``parameter-name`` filter
        (``honoured``, ``ignored`` as older API references say, or ``rejected``)."""
        super().__init__()
        self.reboot_seconds = reboot_seconds
        self.failover_seconds = failover_seconds
        self.apply_lag_seconds = apply_lag_seconds
        self.reboot_view_lag_seconds = reboot_view_lag_seconds
        self.event_lag_seconds = event_lag_seconds
        self.applying_seconds = applying_seconds
        self.pending_reboot_looks = pending_reboot_looks
        # Instances on which RDS never applies the group with a restart (stays pending-reboot).
        self.stuck_pending: set[str] = set()
        self.parameter_filters = parameter_filters
        self.strict = strict
        self.instances: dict[str, SimInstance] = {}
        self.clusters: dict[str, SimCluster] = {}
        self.groups: dict[str, SimGroup] = {}
        self.proxies: dict[str, SimProxy] = {}
        self.events: list[SimEvent] = []
        self.downtimes: list[Downtime] = []
        self.certificates: dict[str, datetime] = {}

    # ---- set-up ----------------------------------------------------------------------------
    def add_group(
        self,
        name: str,
        values: Mapping[str, str],
        *,
        cluster: bool = False,
        apply_types: Mapping[str, str] | None = None,
        others: int = 0,
    ) -> SimGroup:
        types = {**APPLY_TYPES, **(apply_types or {})}
        group = SimGroup(
            name,
            cluster=cluster,
            params={k: SimParam(v, types.get(k, "static")) for k, v in values.items()},
            others=others,
            apply_types=types,
        )
        self.groups[name.lower()] = group
        return group

    def set_parameters(
        self,
        group: str,
        values: dict[str, str],
        *,
        cluster: bool = False,
        source: str = "user",
        others: int = 0,
    ) -> None:
        """A group's listing for the audit: ``others`` unrelated parameters first, then
        ``values`` with the given Source."""
        made = self.add_group(group, values, cluster=cluster, others=others)
        for p in made.params.values():
            p.source = source

    def add_instance(
        self, identifier: str, *, groups: Mapping[str, str] | None = None, **kwargs: Any
    ) -> SimInstance:
        """``groups``: {group name: ParameterApplyStatus}. ``in-sync`` means the engine runs the
        group's values; ``pending-reboot`` means it runs the engine defaults until a restart."""
        inst = SimInstance(identifier, **kwargs)
        if groups:
            ((name, apply),) = groups.items()
            inst.group, inst.apply = name, apply
            values = self._group_values(name)
            inst.registered = dict(values)
            inst.running = dict(values) if apply == "in-sync" else {}
        self.instances[identifier] = inst
        return inst

    def add_cluster(
        self,
        identifier: str,
        *,
        group: str,
        writer: str,
        readers: tuple[str, ...] = (),
        status: str = "pending-reboot",
        engine: str = "aurora-postgresql",
        engine_version: str = "16.9",
    ) -> SimCluster:
        """An available cluster whose members report ``status`` for ``group``."""
        cluster = SimCluster(identifier, group, engine=engine, engine_version=engine_version)
        self.clusters[identifier] = cluster
        for ident in (writer, *readers):
            self.add_member(identifier, ident, writer=ident == writer, status=status)
        return cluster

    def add_member(
        self,
        cluster_id: str,
        ident: str,
        *,
        writer: bool = False,
        status: str = "in-sync",
        tags: Mapping[str, str] | None = None,
    ) -> SimInstance:
        cluster = self.clusters[cluster_id]
        values = self._group_values(cluster.group)
        inst = self.add_instance(
            ident,
            engine=cluster.engine,
            engine_version=cluster.engine_version,
            cluster=cluster_id,
            is_writer=writer,
            cluster_group_status=status,
            groups={f"default.{cluster.engine}{cluster.engine_version.split('.')[0]}": "in-sync"},
            tags=dict(tags or {}),
        )
        inst.cluster_registered = dict(values)
        if status == "in-sync":
            inst.running.update(values)
        cluster.members.append(ident)
        return inst

    def add_proxy(
        self,
        name: str,
        *,
        engine_family: str = "POSTGRESQL",
        require_tls: bool = True,
        status: str = "available",
    ) -> SimProxy:
        """An RDS Proxy; ``status`` as DescribeDBProxies reports it (``modifying`` while a
        RequireTLS change is being applied)."""
        made = SimProxy(name, engine_family, require_tls, status)
        self.proxies[name] = made
        return made

    def add_autoscaled_reader(self, cluster_id: str, suffix: str, *, status: str) -> SimInstance:
        """A reader as Aurora Auto Scaling adds it: its name and tag are AWS's."""
        return self.add_member(
            cluster_id,
            f"application-autoscaling-{suffix}",
            status=status,
            tags={"application-autoscaling:resourceId": f"cluster:{cluster_id}"},
        )

    # ---- scripted changes (what CloudFormation, a person or RDS itself does) -------------------
    def modify_group(self, name: str, values: Mapping[str, str], *, lag: float = 0.0) -> None:
        """ModifyDBParameterGroup / ModifyDBClusterParameterGroup: the group says the new values
        at once; its databases learn of them ``lag`` seconds later."""
        group = self.groups[name.lower()]
        for key, value in values.items():
            kind = group.apply_type(key)
            group.params[key] = SimParam(value, kind)
            group.unset.discard(key)
        self.at(lag, lambda: self._propagate(group))

    def unset_parameter(self, name: str, key: str, *, default: str) -> None:
        """ResetDBParameterGroup of ``key`` as RDS lists it afterwards: no ParameterValue (the
        engine default, which RDS does not report), its ApplyType still listed. The databases
        using the group run ``default`` from now on (a dynamic reset takes effect at once)."""
        group = self.groups[name.lower()]
        group.params.pop(key, None)
        group.unset.add(key)
        group.deferred.discard(key)
        for inst in self.instances.values():
            uses = (
                (self.clusters.get(inst.cluster or "") or SimCluster("", "")).group.lower()
                if group.cluster
                else (inst.group or "").lower()
            )
            if uses == group.name.lower():
                (inst.cluster_registered if group.cluster else inst.registered).pop(key, None)
                inst.running[key] = default

    def reset_group(self, name: str, key: str, default: str, *, lag: float = 0.0) -> None:
        """ResetDBParameterGroup / ResetDBClusterParameterGroup of ``key``: the group reports
        the engine's ``default`` (Source engine-default); its databases learn of it ``lag``
        seconds later."""
        group = self.groups[name.lower()]
        group.params[key] = SimParam(default, group.apply_type(key), source="engine-default")
        self.at(lag, lambda: self._propagate(group))

    def set_proxy_tls(self, name: str, require_tls: bool, *, seconds: float = 0.0) -> None:
        """ModifyDBProxy RequireTLS: ``modifying`` for ``seconds``, then ``available``."""
        made = self.proxies[name]
        made.require_tls = require_tls
        if seconds > 0:
            made.status = "modifying"
            self.at(seconds, lambda: setattr(made, "status", "available"))

    def break_group(self, name: str, key: str, value: str, *, at_start: bool = True) -> None:
        """Make ``value`` of ``key`` one the engine cannot start with (``at_start``), or one RDS
        fails to apply."""
        group = self.groups[name.lower()]
        (group.breaks_start if at_start else group.rejects)[key] = value

    def modify_instance(
        self, identifier: str, *, group: str, seconds: float, apply_status: str = "pending-reboot"
    ) -> None:
        """Associate ``group`` (ModifyDBInstance): ``modifying`` for ``seconds``, then the new
        group waits as ``pending-reboot`` (nothing of it is in effect before a restart)."""
        inst = self.instances[identifier]
        inst.status = "modifying"

        def done() -> None:
            inst.status = self._base_status(inst)
            inst.group = group
            inst.registered = self._group_values(group)
            inst.apply = apply_status

        self.at(seconds, done)

    def modify_cluster(self, identifier: str, *, group: str, seconds: float) -> None:
        """Associate cluster parameter group ``group`` (ModifyDBCluster): ``modifying`` for
        ``seconds``, then every member waits as pending-reboot; RDS never reboots them."""
        cluster = self.clusters[identifier]
        cluster.status = "modifying"

        def done() -> None:
            cluster.status = "available"
            cluster.group = group
            for member in cluster.members:
                if member in self.instances:
                    inst = self.instances[member]
                    inst.cluster_registered = self._group_values(group)
                    inst.cluster_group_status = "pending-reboot"

        self.at(seconds, done)

    def busy(self, identifier: str, seconds: float, status: str = "modifying") -> None:
        inst = self.instances[identifier]
        inst.status = status
        self.at(seconds, lambda: setattr(inst, "status", self._base_status(inst)))

    def optimize_storage(self, identifier: str, seconds: float) -> None:
        """``storage-optimization`` for ``seconds``: the instance works, and can be rebooted."""
        inst = self.instances[identifier]
        inst.background = "storage-optimization"
        if inst.status == "available":
            inst.status = "storage-optimization"

        def done() -> None:
            inst.background = None
            if inst.status == "storage-optimization":
                inst.status = "available"

        self.at(seconds, done)

    def stop_instance(self, identifier: str) -> None:
        inst = self.instances[identifier]
        inst.status = "stopped"
        inst.pending_on_start = True

    def start_instance(self, identifier: str, *, seconds: float = 120.0) -> None:
        """Start a stopped instance; the engine loads what RDS has registered for it."""
        inst = self.instances[identifier]
        inst.status = "starting"
        self.at(seconds, lambda: self._come_up(inst, downtime=None))

    def delete_instance(self, identifier: str, *, seconds: float = 0.0) -> None:
        """Delete an instance: ``deleting`` for ``seconds`` (still listed, as a cluster member
        too), then gone."""

        def gone() -> None:
            inst = self.instances.pop(identifier)
            for down in self.downtimes:  # a restart cut short: it is no longer down, it is gone
                if down.identifier == identifier and down.end is None:
                    down.end = self.now
            if inst.cluster:
                self.clusters[inst.cluster].members.remove(identifier)

        if seconds <= 0:
            gone()
            return
        self.instances[identifier].status = "deleting"
        self.at(seconds, gone)

    def add_noise_events(self, identifier: str, count: int) -> None:
        """Backup events that share the database's event stream (for pagination)."""
        for n in range(count):
            self._event(
                identifier,
                "Backing up DB instance" if n % 2 else "Finished DB Instance backup",
                ["backup"],
            )

    # ---- what tests and benchmarks measure -----------------------------------------------------
    def reboots(self) -> list[str]:
        """Restarts RDS performed, in order (refused reboot requests are not restarts)."""
        return [d.identifier for d in self.downtimes]

    def effective(self, identifier: str, wanted: Mapping[str, str]) -> bool:
        """Does the engine run with ``wanted``, and is it up?"""
        inst = self.instances[identifier]
        return inst.status in ("available", "storage-optimization") and all(
            inst.running.get(k) == v for k, v in wanted.items()
        )

    def max_concurrent_down(self) -> int:
        edges: list[tuple[float, int]] = []
        for d in self.downtimes:
            edges.append((d.start, 1))
            edges.append((d.end if d.end is not None else float("inf"), -1))
        level = peak = 0
        for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
            level += step
            peak = max(peak, level)
        return peak

    def seconds_down(self) -> float:
        return sum((d.end if d.end is not None else self.now) - d.start for d in self.downtimes)

    # ---- the boto3 RDS API -----------------------------------------------------------------
    # Typed as boto3-stubs types the real client (mypy_boto3_rds, imported for type checking
    # only), so that a simulator type-checks where the handlers' RdsApi is expected. The answers
    # are built as plain dicts and cast: in strict mode (the default) ``_api`` checks every one
    # against botocore's output model (simulator.shapes), the model the stubs are made from.
    # Requests stay ``**kwargs: Any`` so that tests can send what botocore would refuse.
    def describe_db_instances(self, **kwargs: Any) -> DBInstanceMessageTypeDef:
        return cast(
            "DBInstanceMessageTypeDef",
            self._api("DescribeDBInstances", kwargs, self._describe_db_instances),
        )

    def describe_db_clusters(self, **kwargs: Any) -> DBClusterMessageTypeDef:
        return cast(
            "DBClusterMessageTypeDef",
            self._api("DescribeDBClusters", kwargs, self._describe_db_clusters),
        )

    def describe_db_parameters(self, **kwargs: Any) -> DBParameterGroupDetailsTypeDef:
        return cast(
            "DBParameterGroupDetailsTypeDef",
            self._api("DescribeDBParameters", kwargs, self._describe_db_parameters),
        )

    def describe_db_cluster_parameters(
        self, **kwargs: Any
    ) -> DBClusterParameterGroupDetailsTypeDef:
        return cast(
            "DBClusterParameterGroupDetailsTypeDef",
            self._api("DescribeDBClusterParameters", kwargs, self._describe_db_cluster_parameters),
        )

    def describe_events(self, **kwargs: Any) -> EventsMessageTypeDef:
        return cast(
            "EventsMessageTypeDef", self._api("DescribeEvents", kwargs, self._describe_events)
        )

    def describe_db_proxies(self, **kwargs: Any) -> dict[str, Any]:
        return self._api("DescribeDBProxies", kwargs, self._describe_db_proxies)

    def describe_certificates(self, **kwargs: Any) -> dict[str, Any]:
        return self._api("DescribeCertificates", kwargs, self._describe_certificates)

    def reboot_db_instance(self, **kwargs: Any) -> RebootDBInstanceResultTypeDef:
        return cast(
            "RebootDBInstanceResultTypeDef",
            self._api("RebootDBInstance", kwargs, self._reboot_db_instance),
        )

    def reboot_db_cluster(self, **kwargs: Any) -> RebootDBClusterResultTypeDef:
        return cast(
            "RebootDBClusterResultTypeDef",
            self._api("RebootDBCluster", kwargs, self._reboot_db_cluster),
        )

    def modify_db_parameter_group(self, **kwargs: Any) -> dict[str, Any]:
        """ModifyDBParameterGroup (what the guard's remediation sends): the group says the new
        values at once, and its databases learn of them as with ``modify_group``."""
        return self._api("ModifyDBParameterGroup", kwargs, self._modify_db_parameter_group)

    def modify_db_cluster_parameter_group(self, **kwargs: Any) -> dict[str, Any]:
        return self._api(
            "ModifyDBClusterParameterGroup", kwargs, self._modify_db_cluster_parameter_group
        )

    def get_paginator(self, operation_name: str) -> SimPaginator:
        return SimPaginator(getattr(self, operation_name))

    # ---- internals: the API ------------------------------------------------------------------
    def _api(
        self, op: str, kwargs: dict[str, Any], impl: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any]:
        self.calls.append((op, kwargs))
        if self.strict:
            shapes.check_request(op, kwargs)
        fault = self.fault(op)
        if fault is not None:
            if fault.kind == "throttle":
                raise client_error(op, "Throttling", "Rate exceeded", retries=7)
            if fault.kind == "5xx":
                raise client_error(
                    op, "InternalFailure", "An internal error occurred.", 500, retries=7
                )
            impl(kwargs)  # it happens; the answer is lost
            if fault.kind == "lost":
                raise ReadTimeoutError(endpoint_url=f"https://rds.{REGION}.amazonaws.com/")
            # botocore retries the same call: whatever it meets is the answer
            try:
                impl(kwargs)
            except ClientError as err:
                err.response["ResponseMetadata"]["RetryAttempts"] = 1
                raise
            raise AssertionError(f"{op}: the retry of a lost call succeeded; use kind='lost'")
        response = impl(kwargs)
        if self.strict:
            shapes.check_response(op, response)
        return response

    def _authorize(self, op: str, resource: str, tags: Mapping[str, str] | None = None) -> None:
        if not self.allowed(f"rds:{op}", resource, tags or {}):
            raise client_error(
                op,
                "AccessDenied",
                f"User is not authorized to perform: rds:{op} on resource: {resource}",
                403,
            )

    def _instance(self, op: str, ident: str) -> SimInstance:
        inst = self.instances.get(ident)
        self._authorize(op, arn("db", ident), inst.tags if inst else None)
        if inst is None:
            raise client_error(op, "DBInstanceNotFound", f"DBInstance {ident} not found.", 404)
        return inst

    def _describe_db_instances(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        ident = kwargs.get("DBInstanceIdentifier")
        if ident is not None:
            return {
                "DBInstances": [self._instance_view(self._instance("DescribeDBInstances", ident))]
            }
        self._authorize("DescribeDBInstances", arn("db", "*"))
        return _page(
            "DBInstances", [self._instance_view(i) for i in self.instances.values()], kwargs
        )

    def _describe_db_clusters(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        ident = kwargs.get("DBClusterIdentifier")
        if ident is not None:
            cluster = self.clusters.get(ident)
            self._authorize("DescribeDBClusters", arn("cluster", ident))
            if cluster is None:
                raise client_error(
                    "DescribeDBClusters",
                    "DBClusterNotFoundFault",
                    f"DBCluster {ident} not found.",
                    404,
                )
            return {"DBClusters": [self._cluster_view(cluster)]}
        self._authorize("DescribeDBClusters", arn("cluster", "*"))
        return _page("DBClusters", [self._cluster_view(c) for c in self.clusters.values()], kwargs)

    def _describe_db_parameters(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return self._listing("DescribeDBParameters", "pg", kwargs["DBParameterGroupName"], kwargs)

    def _describe_db_cluster_parameters(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return self._listing(
            "DescribeDBClusterParameters",
            "cluster-pg",
            kwargs["DBClusterParameterGroupName"],
            kwargs,
        )

    def _listing(self, op: str, kind: str, name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        self._authorize(op, arn(kind, name.lower()))
        group = self.groups.get(name.lower())
        if group is None:
            raise client_error(
                op, "DBParameterGroupNotFound", f"Parameter group {name} not found.", 404
            )
        _max_records(op, kwargs)
        listing = [
            {
                "ParameterName": f"other_{n:03d}",
                "ParameterValue": "x",
                "Source": "engine-default",
                "ApplyType": "dynamic",
                "IsModifiable": True,
            }
            for n in range(group.others)
        ]
        listing += [
            {
                "ParameterName": k,
                "ParameterValue": p.value,
                "Source": p.source,
                "ApplyType": p.apply_type,
                "IsModifiable": True,
                "ApplyMethod": "pending-reboot" if p.apply_type == "static" else "immediate",
            }
            for k, p in group.params.items()
        ]
        listing += [
            {
                "ParameterName": k,
                "Source": "engine-default",
                "ApplyType": group.apply_type(k),
                "IsModifiable": True,
            }
            for k in sorted(group.unset)
        ]
        if kwargs.get("Source"):
            listing = [p for p in listing if p["Source"] == kwargs["Source"]]
        filters = kwargs.get("Filters") or []
        if filters and self.parameter_filters == "rejected":
            raise client_error(
                op, "InvalidParameterValue", "Unrecognized filter name: parameter-name"
            )
        if filters and self.parameter_filters == "honoured":
            for f in filters:
                if f["Name"] != "parameter-name":
                    raise client_error(
                        op, "InvalidParameterValue", f"Unrecognized filter {f['Name']}"
                    )
                listing = [p for p in listing if p["ParameterName"] in f["Values"]]
        return _page("Parameters", listing, kwargs)

    def _describe_events(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        # DescribeEvents has no resource-level permission: IAM checks it against "*".
        self._authorize("DescribeEvents", "*")
        if kwargs.get("SourceIdentifier") and not kwargs.get("SourceType"):
            raise client_error(
                "DescribeEvents",
                "InvalidParameterCombination",
                "Cannot specify source identifier without source type",
            )
        _max_records("DescribeEvents", kwargs)
        end = _secs(kwargs["EndTime"]) if kwargs.get("EndTime") else self.time()
        start = (
            _secs(kwargs["StartTime"])
            if kwargs.get("StartTime")
            else end - 60 * int(kwargs.get("Duration") or 60)
        )
        categories = set(kwargs.get("EventCategories") or [])
        chosen = [
            e
            for e in self.events
            if e.visible_at <= self.now
            and start <= EPOCH + e.at <= end
            and (not kwargs.get("SourceType") or e.source_type == kwargs["SourceType"])
            and (not kwargs.get("SourceIdentifier") or e.source == kwargs["SourceIdentifier"])
            and (not categories or categories & set(e.categories))
        ]
        events = [
            {
                "SourceIdentifier": e.source,
                "SourceType": e.source_type,
                "Message": e.message,
                "EventCategories": list(e.categories),
                "Date": datetime.fromtimestamp(EPOCH + e.at, UTC),
                "SourceArn": arn("db" if e.source_type == "db-instance" else "cluster", e.source),
            }
            for e in chosen
        ]
        return _page("Events", events, kwargs)

    def _describe_db_proxies(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        self._authorize("DescribeDBProxies", arn("db-proxy", "*"))
        _max_records("DescribeDBProxies", kwargs)
        proxies = [
            {
                "DBProxyName": p.name,
                "DBProxyArn": arn("db-proxy", p.name),
                "Status": p.status,
                "EngineFamily": p.engine_family,
                "RequireTLS": p.require_tls,
                "Endpoint": f"{p.name}.proxy-x.{REGION}.rds.amazonaws.com",
            }
            for p in self.proxies.values()
        ]
        return _page("DBProxies", proxies, kwargs)

    def _describe_certificates(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        certs = [
            {"CertificateIdentifier": ident, "CertificateType": "CA", "ValidTill": till}
            for ident, till in self.certificates.items()
        ]
        return _page("Certificates", certs, kwargs)

    def _reboot_db_instance(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        ident = kwargs["DBInstanceIdentifier"]
        inst = self._instance("RebootDBInstance", ident)
        if inst.status not in REBOOTABLE:
            raise client_error(
                "RebootDBInstance",
                "InvalidDBInstanceState",
                f"DB instance {ident} is not in available state (it is {inst.status}).",
            )
        failover = bool(kwargs.get("ForceFailover"))
        if failover and not inst.multi_az:
            raise client_error(
                "RebootDBInstance",
                "InvalidParameterCombination",
                "ForceFailover can only be used with Multi-AZ instances.",
            )
        restarted = [inst]
        if inst.cluster and inst.is_writer and _writer_takes_readers(inst):
            cluster = self.clusters[inst.cluster]
            restarted += [
                self.instances[m] for m in cluster.members if m != ident and m in self.instances
            ]
        seconds = self.failover_seconds if failover else self.reboot_seconds
        shown = inst.status
        for member in restarted:
            self._restart(member, seconds, failover=failover)
        if self.reboot_view_lag_seconds:
            inst.shown_status, inst.shown_until = shown, self.now + self.reboot_view_lag_seconds
        return {"DBInstance": self._instance_view(inst, lagging=False)}

    def _reboot_db_cluster(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        ident = kwargs["DBClusterIdentifier"]
        self._authorize("RebootDBCluster", arn("cluster", ident))
        cluster = self.clusters.get(ident)
        if cluster is None:
            raise client_error(
                "RebootDBCluster", "DBClusterNotFoundFault", f"DBCluster {ident} not found.", 404
            )
        if cluster.engine.startswith("aurora"):
            raise client_error(
                "RebootDBCluster",
                "InvalidParameterCombination",
                "RebootDBCluster is only for Multi-AZ DB clusters.",
            )
        members = [self.instances[m] for m in cluster.members]
        # The Service Authorization Reference lists rds:RebootDBInstance as a dependent action
        # of rds:RebootDBCluster: IAM must allow it on the members as well.
        for member in members:
            self._authorize("RebootDBInstance", arn("db", member.identifier), member.tags)
        if cluster.status != "available" or any(m.status != "available" for m in members):
            raise client_error(
                "RebootDBCluster",
                "InvalidDBClusterStateFault",
                f"DB cluster {ident} is not available.",
            )
        for member in members:
            self._restart(member, self.reboot_seconds, failover=False)
        cluster.status = "rebooting"
        self.at(self.reboot_seconds, lambda: setattr(cluster, "status", "available"))
        return {"DBCluster": self._cluster_view(cluster)}

    def _modify_db_parameter_group(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        name = kwargs["DBParameterGroupName"]
        self._modify_params("ModifyDBParameterGroup", "pg", name, kwargs["Parameters"])
        return {"DBParameterGroupName": name}

    def _modify_db_cluster_parameter_group(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        name = kwargs["DBClusterParameterGroupName"]
        self._modify_params(
            "ModifyDBClusterParameterGroup", "cluster-pg", name, kwargs["Parameters"]
        )
        return {"DBClusterParameterGroupName": name}

    def _modify_params(self, op: str, kind: str, name: str, params: list[dict[str, Any]]) -> None:
        self._authorize(op, arn(kind, name.lower()))
        if name.lower() not in self.groups:
            raise client_error(
                op, "DBParameterGroupNotFound", f"Parameter group {name} not found.", 404
            )
        group = self.groups[name.lower()]
        for p in params:
            key, method = str(p["ParameterName"]), p.get("ApplyMethod", "immediate")
            if method == "immediate" and group.apply_type(key) == "static":
                raise client_error(
                    op,
                    "InvalidParameterCombination",
                    f"cannot use immediate apply method for static parameter {key}",
                )
            # A dynamic parameter set with pending-reboot takes effect at the next restart.
            if method == "pending-reboot" and group.apply_type(key) == "dynamic":
                group.deferred.add(key)
            else:
                group.deferred.discard(key)
        self.modify_group(
            name,
            {str(p["ParameterName"]): str(p["ParameterValue"]) for p in params},
            lag=self.group_lag_seconds,
        )

    # ---- internals: the state machine ------------------------------------------------------------
    def _group_values(self, name: str | None) -> dict[str, str]:
        group = self.groups.get((name or "").lower())
        return group.values() if group else {}

    def _base_status(self, inst: SimInstance) -> str:
        return inst.background or "available"

    def _event(
        self, ident: str, message: str, categories: list[str], kind: str = "db-instance"
    ) -> None:
        self.events.append(
            SimEvent(self.now, kind, ident, message, categories, self.now + self.event_lag_seconds)
        )

    def _propagate(self, group: SimGroup) -> None:
        """RDS tells the databases using ``group`` about its new values."""
        for inst in list(self.instances.values()):
            if group.cluster:
                cluster = self.clusters.get(inst.cluster or "")
                if cluster is None or cluster.group.lower() != group.name.lower():
                    continue
                inst.cluster_registered = group.values()
                inst.cluster_group_status = self._apply_after_change(
                    inst, group, cluster_group=True
                )
            elif (inst.group or "").lower() == group.name.lower():
                inst.registered = group.values()
                inst.apply = self._apply_after_change(inst, group, cluster_group=False)

    def _apply_after_change(
        self, inst: SimInstance, group: SimGroup, *, cluster_group: bool
    ) -> str:
        current = inst.cluster_group_status if cluster_group else inst.apply
        if inst.status == "stopped":
            inst.pending_on_start = True
            return current
        registered = inst.cluster_registered if cluster_group else inst.registered
        changed = {k for k, v in registered.items() if inst.running.get(k) != v}
        static = {k for k in changed if group.apply_type(k) == "static" or k in group.deferred}
        dynamic = changed - static
        pending = "pending-reboot" if current == "pending-reboot" or static else "in-sync"
        if not dynamic:
            return pending

        def applied() -> None:
            bad = {k for k in dynamic if group.rejects.get(k) == registered.get(k)}
            for k in dynamic - bad:
                inst.running[k] = registered[k]
            final = "failed-to-apply" if bad else pending
            if cluster_group:
                inst.cluster_group_status = final
            else:
                inst.apply = final

        self.at(self.applying_seconds, applied)
        return "applying"

    def _restart(self, inst: SimInstance, seconds: float, *, failover: bool) -> None:
        inst.status = "rebooting"
        downtime = Downtime(inst.identifier, self.now)
        self.downtimes.append(downtime)
        if failover:
            self._event(inst.identifier, "Multi-AZ instance failover started", ["failover"])
        else:
            self._event(inst.identifier, "DB instance shutdown", ["availability"])
        self.at(seconds, lambda: self._come_up(inst, downtime=downtime, failover=failover))

    def _come_up(
        self, inst: SimInstance, *, downtime: Downtime | None, failover: bool = False
    ) -> None:
        if downtime is not None and downtime.end is None:
            downtime.end = self.now
        if inst.identifier not in self.instances or inst.status == "deleting":
            return
        if inst.identifier in self.stuck_pending:
            # RDS restarted it but could not apply the group: the engine runs what it ran.
            inst.status = self._base_status(inst)
            self._event(inst.identifier, "DB instance restarted", ["availability"])
            return
        loaded = {**inst.registered, **inst.cluster_registered}
        breaking = {
            k
            for g in self._groups_of(inst)
            for k, v in g.breaks_start.items()
            if loaded.get(k) == v
        }
        inst.pending_on_start = False
        if breaking:
            inst.status = "incompatible-parameters"
            inst.running = {}
            return
        inst.running = {k: v for k, v in loaded.items() if not self._rejected(inst, k, v)}
        inst.status = self._base_status(inst)
        self._event(inst.identifier, "DB instance restarted", ["availability"])
        if failover:
            self._event(inst.identifier, "Multi-AZ instance failover completed", ["failover"])

        def after(values: dict[str, str]) -> str:
            # A value RDS could not apply before a restart is not applied by it either.
            bad = any(self._rejected(inst, k, v) for k, v in values.items())
            return "failed-to-apply" if bad else "in-sync"

        def caught_up() -> None:
            if inst.identifier in self.stuck_pending:
                return
            if inst.apply in ("pending-reboot", "failed-to-apply"):
                if inst.apply == "pending-reboot":
                    inst.stale_looks = self.pending_reboot_looks
                inst.apply = after(inst.registered)
            if inst.cluster_group_status in ("pending-reboot", "failed-to-apply"):
                if inst.cluster_group_status == "pending-reboot":
                    inst.stale_cluster_looks = self.pending_reboot_looks
                inst.cluster_group_status = after(inst.cluster_registered)

        if self.apply_lag_seconds:
            self.at(self.apply_lag_seconds, caught_up)
        else:
            caught_up()

    def _groups_of(self, inst: SimInstance) -> list[SimGroup]:
        found = [self.groups.get((inst.group or "").lower())]
        if inst.cluster and inst.cluster in self.clusters:
            found.append(self.groups.get(self.clusters[inst.cluster].group.lower()))
        return [g for g in found if g is not None]

    def _rejected(self, inst: SimInstance, key: str, value: str) -> bool:
        return any(g.rejects.get(key) == value for g in self._groups_of(inst))

    def _instance_view(self, inst: SimInstance, *, lagging: bool = True) -> dict[str, Any]:
        status = inst.status
        if lagging and inst.shown_status is not None and self.now < inst.shown_until:
            status = inst.shown_status
        apply = inst.apply
        if lagging and inst.stale_looks > 0:
            inst.stale_looks -= 1
            apply = "pending-reboot"
        view: dict[str, Any] = {
            "DBInstanceIdentifier": inst.identifier,
            "DBInstanceArn": arn("db", inst.identifier),
            "DBInstanceStatus": status,
            "Engine": inst.engine,
            "EngineVersion": inst.engine_version,
            "MultiAZ": inst.multi_az,
            "DBParameterGroups": (
                [{"DBParameterGroupName": inst.group, "ParameterApplyStatus": apply}]
                if inst.group
                else []
            ),
            "CACertificateIdentifier": inst.ca,
            "PreferredMaintenanceWindow": inst.window,
            "TagList": [{"Key": k, "Value": v} for k, v in inst.tags.items()],
        }
        if inst.cluster:
            view["DBClusterIdentifier"] = inst.cluster
        return view

    def _cluster_group_status(self, member: SimInstance) -> str:
        """A member's cluster group status, as it reads after a restart while RDS lags."""
        if member.stale_cluster_looks > 0:
            return _stale(member)
        return member.cluster_group_status

    def _cluster_view(self, cluster: SimCluster) -> dict[str, Any]:
        members = [self.instances[m] for m in cluster.members if m in self.instances]
        return {
            "DBClusterIdentifier": cluster.identifier,
            "DBClusterArn": arn("cluster", cluster.identifier),
            "Status": cluster.status,
            "Engine": cluster.engine,
            "EngineVersion": cluster.engine_version,
            "DBClusterParameterGroup": cluster.group,
            "PreferredMaintenanceWindow": cluster.window,
            "TagList": [{"Key": k, "Value": v} for k, v in cluster.tags.items()],
            "DBClusterMembers": [
                {
                    "DBInstanceIdentifier": m.identifier,
                    "IsClusterWriter": m.is_writer,
                    "DBClusterParameterGroupStatus": self._cluster_group_status(m),
                    "PromotionTier": 1,
                }
                for m in members
            ],
        }


def _stale(inst: SimInstance) -> str:
    inst.stale_cluster_looks -= 1
    return "pending-reboot"


def _writer_takes_readers(inst: SimInstance) -> bool:
    """RDS's own rule (Aurora user guide, "Rebooting an Aurora cluster without read
    availability"), kept apart from the reconciler's copy so a test can catch either."""
    version = inst.engine_version
    if inst.engine == "aurora-mysql":
        mysql = version.split("mysql_aurora.")[-1].split(".")
        return int(mysql[0]) < 2 or (int(mysql[0]) == 2 and int(mysql[1]) <= 9)
    major, _, rest = version.partition(".")
    minor = int(rest.split(".")[0] or 0) if rest else 0
    floors = {12: 14, 13: 10, 14: 7}
    return int(major) <= 11 or (int(major) in floors and minor < floors[int(major)])


def _secs(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def _max_records(op: str, kwargs: Mapping[str, Any]) -> None:
    size = kwargs.get("MaxRecords")
    if size is not None and not 20 <= int(size) <= 100:
        raise client_error(op, "InvalidParameterValue", "MaxRecords must be between 20 and 100.")


def _page(key: str, items: list[dict[str, Any]], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """One page of ``items`` by MaxRecords and an offset Marker, as the RDS API pages."""
    start = int(kwargs.get("Marker") or 0)
    size = int(kwargs.get("MaxRecords") or 100)
    page: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        page["Marker"] = str(start + size)
    return page


class SimPaginator:
    """botocore's paginator loop: follow Marker, honouring PaginationConfig.PageSize."""

    def __init__(self, call: Callable[..., dict[str, Any]]) -> None:
        self._call = call

    def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        config = kwargs.pop("PaginationConfig", {})
        if "PageSize" in config:
            kwargs["MaxRecords"] = config["PageSize"]
        while True:
            page = self._call(**kwargs)
            yield page
            if not page.get("Marker"):
                return
            kwargs["Marker"] = page["Marker"]
