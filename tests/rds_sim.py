"""A stateful RDS simulator on a simulated clock, for the reboot reconciler and the benchmarks.

moto keeps every parameter group ``in-sync`` and reboots without passing through ``rebooting``
(see the project's FACTS), so it cannot show what the reconciler is for. This simulator follows
the documented state machine instead:

- instance status: available, modifying, rebooting, stopping, stopped, starting, deleting;
- parameter apply status: applying, pending-reboot, in-sync, failed-to-apply;
- RebootDBInstance fails with InvalidDBInstanceState unless the instance is available, and with
  InvalidParameterCombination for ForceFailover on a Single-AZ instance;
- a reboot takes ``reboot_seconds`` and turns pending-reboot into in-sync, for the instance's own
  groups and for a cluster member's cluster group status;
- an Aurora PostgreSQL writer before 14.7 / 13.10 / 12.14 restarts its readers with it;
- RebootDBCluster (Multi-AZ DB clusters only) restarts every member at once.

Its request and response shapes follow botocore's (same keys, ClientError with the real error
codes), so the handler runs against it unchanged. Every call is recorded in ``calls``.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

REGION = "us-east-1"
ACCOUNT = "123456789012"


def client_error(operation: str, code: str, message: str, status: int = 400) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message, "Type": "Sender"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


@dataclass
class SimInstance:
    identifier: str
    status: str = "available"
    # parameter group name -> ParameterApplyStatus
    groups: dict[str, str] = field(default_factory=dict)
    multi_az: bool = False
    engine: str = "postgres"
    engine_version: str = "16.9"
    cluster: str | None = None
    is_writer: bool = False
    cluster_group_status: str = "in-sync"
    ca: str = "rds-ca-rsa2048-g1"
    pending_on_start: bool = False
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class SimCluster:
    identifier: str
    group: str
    engine: str = "aurora-postgresql"
    engine_version: str = "16.9"
    status: str = "available"
    members: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Downtime:
    identifier: str
    start: float
    end: float | None = None


class RdsSimulator:
    """The RDS slice of a boto3 client, stateful, on a clock that only ``advance`` moves."""

    def __init__(
        self,
        *,
        reboot_seconds: float = 90.0,
        failover_seconds: float = 60.0,
        apply_lag_seconds: float = 0.0,
    ) -> None:
        """``apply_lag_seconds``: how long after a restart the status is back to available
        while the group still reports pending-reboot (0: both change together)."""
        self.now = 0.0
        self.apply_lag_seconds = apply_lag_seconds
        self.reboot_seconds = reboot_seconds
        self.failover_seconds = failover_seconds
        self.instances: dict[str, SimInstance] = {}
        self.clusters: dict[str, SimCluster] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.downtimes: list[Downtime] = []
        # Instances the caller's IAM policy does not name: every call on them is AccessDenied.
        self.denied: set[str] = set()
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        # For the audit: parameter listings per group, and the region's CA certificates.
        self.db_parameters: dict[str, list[dict[str, Any]]] = {}
        self.cluster_parameters: dict[str, list[dict[str, Any]]] = {}
        self.certificates: dict[str, datetime] = {}

    # ---- set-up --------------------------------------------------------------------------
    def add_instance(self, identifier: str, **kwargs: Any) -> SimInstance:
        inst = SimInstance(identifier, **kwargs)
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
        cluster = SimCluster(identifier, group, engine=engine, engine_version=engine_version)
        for ident in (writer, *readers):
            self.add_instance(
                ident,
                engine=engine,
                engine_version=engine_version,
                cluster=identifier,
                is_writer=ident == writer,
                cluster_group_status=status,
                groups={f"default.{engine}16": "in-sync"},
            )
            cluster.members.append(ident)
        self.clusters[identifier] = cluster
        return cluster

    # ---- the clock -----------------------------------------------------------------------
    def at(self, delay: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (self.now + delay, next(self._seq), fn))

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while self._queue and self._queue[0][0] <= end:
            when, _, fn = heapq.heappop(self._queue)
            self.now = when
            fn()
        self.now = end

    def next_event_in(self) -> float | None:
        return self._queue[0][0] - self.now if self._queue else None

    # ---- scripted changes (what CloudFormation or a person would do) -----------------------
    def modify_instance(
        self, identifier: str, *, group: str, seconds: float, apply_status: str = "pending-reboot"
    ) -> None:
        """Associate ``group``: ``modifying`` for ``seconds``, then the new group waits as
        ``apply_status`` (pending-reboot for a new association)."""
        inst = self.instances[identifier]
        inst.status = "modifying"

        def done() -> None:
            inst.status = "available"
            inst.groups = {group: apply_status}

        self.at(seconds, done)

    def edit_group(self, group: str, *, static: bool, applying_seconds: float = 20.0) -> None:
        """Change a parameter in ``group``: a static change leaves every running instance that
        uses it pending-reboot; a dynamic one is ``applying`` and then in-sync."""
        for inst in self.instances.values():
            if group in inst.groups and inst.status != "stopped":
                if static:
                    inst.groups[group] = "pending-reboot"
                else:
                    inst.groups[group] = "applying"
                    self.at(applying_seconds, lambda i=inst: i.groups.__setitem__(group, "in-sync"))
            elif group in inst.groups:
                inst.pending_on_start = True

    def busy(self, identifier: str, seconds: float, status: str = "modifying") -> None:
        inst = self.instances[identifier]
        before = inst.status
        inst.status = status
        self.at(seconds, lambda: setattr(inst, "status", before))

    def stop_instance(self, identifier: str) -> None:
        inst = self.instances[identifier]
        inst.status = "stopped"
        if any(s == "pending-reboot" for s in inst.groups.values()):
            inst.pending_on_start = True

    def start_instance(self, identifier: str, *, seconds: float = 120.0) -> None:
        """Start a stopped instance; changes that waited for a reboot apply on the way up."""
        inst = self.instances[identifier]
        inst.status = "starting"

        def up() -> None:
            inst.status = "available"
            if inst.pending_on_start:
                inst.groups = {g: "in-sync" for g in inst.groups}
                inst.pending_on_start = False

        self.at(seconds, up)

    def delete_instance(self, identifier: str) -> None:
        inst = self.instances.pop(identifier)
        if inst.cluster:
            self.clusters[inst.cluster].members.remove(identifier)

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
                    self.instances[member].cluster_group_status = "pending-reboot"

        self.at(seconds, done)

    # ---- the boto3 RDS API ---------------------------------------------------------------
    def describe_db_instances(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("DescribeDBInstances", kwargs))
        ident = kwargs.get("DBInstanceIdentifier")
        self._check_access("DescribeDBInstances", ident)
        if ident is not None:
            if ident not in self.instances:
                raise client_error(
                    "DescribeDBInstances",
                    "DBInstanceNotFound",
                    f"DBInstance {ident} not found.",
                    404,
                )
            return {"DBInstances": [self._instance_view(self.instances[ident])]}
        return {"DBInstances": [self._instance_view(i) for i in self.instances.values()]}

    def describe_db_clusters(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("DescribeDBClusters", kwargs))
        ident = kwargs.get("DBClusterIdentifier")
        if ident is not None:
            if ident not in self.clusters:
                raise client_error(
                    "DescribeDBClusters",
                    "DBClusterNotFoundFault",
                    f"DBCluster {ident} not found.",
                    404,
                )
            return {"DBClusters": [self._cluster_view(self.clusters[ident])]}
        return {"DBClusters": [self._cluster_view(c) for c in self.clusters.values()]}

    def reboot_db_instance(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("RebootDBInstance", kwargs))
        ident = kwargs["DBInstanceIdentifier"]
        self._check_access("RebootDBInstance", ident)
        inst = self.instances.get(ident)
        if inst is None:
            raise client_error(
                "RebootDBInstance", "DBInstanceNotFound", f"DBInstance {ident} not found.", 404
            )
        if inst.status != "available":
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
        for member in restarted:
            self._reboot(member, seconds)
        return {"DBInstance": self._instance_view(inst)}

    def reboot_db_cluster(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("RebootDBCluster", kwargs))
        ident = kwargs["DBClusterIdentifier"]
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
        if cluster.status != "available" or any(m.status != "available" for m in members):
            raise client_error(
                "RebootDBCluster",
                "InvalidDBClusterStateFault",
                f"DB cluster {ident} is not available.",
            )
        for member in members:
            self._reboot(member, self.reboot_seconds)
        # The cluster itself reports rebooting until its members are back.
        cluster.status = "rebooting"
        self.at(self.reboot_seconds, lambda: setattr(cluster, "status", "available"))
        return {"DBCluster": self._cluster_view(cluster)}

    # ---- the audit's read-only API: listings in pages, as botocore paginators read them ------
    def set_parameters(
        self,
        group: str,
        values: dict[str, str],
        *,
        cluster: bool = False,
        source: str = "user",
        others: int = 0,
    ) -> None:
        """Give ``group`` a listing: ``others`` unrelated parameters first (to make it span
        pages, as a real group of ~400 does), then ``values`` with the given Source."""
        listing = [
            {"ParameterName": f"other_{n:03d}", "ParameterValue": "x", "Source": "engine-default"}
            for n in range(others)
        ]
        listing += [
            {"ParameterName": k, "ParameterValue": v, "Source": source} for k, v in values.items()
        ]
        (self.cluster_parameters if cluster else self.db_parameters)[group] = listing

    def describe_db_parameters(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("DescribeDBParameters", kwargs))
        return self._listing_page(
            "DescribeDBParameters", self.db_parameters, kwargs["DBParameterGroupName"], kwargs
        )

    def describe_db_cluster_parameters(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("DescribeDBClusterParameters", kwargs))
        return self._listing_page(
            "DescribeDBClusterParameters",
            self.cluster_parameters,
            kwargs["DBClusterParameterGroupName"],
            kwargs,
        )

    def describe_certificates(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("DescribeCertificates", kwargs))
        certs = [
            {"CertificateIdentifier": ident, "CertificateType": "CA", "ValidTill": till}
            for ident, till in self.certificates.items()
        ]
        return _page("Certificates", certs, kwargs)

    def get_paginator(self, operation_name: str) -> SimPaginator:
        return SimPaginator(getattr(self, operation_name))

    def _listing_page(
        self, operation: str, groups: dict[str, list[dict[str, Any]]], name: str, kwargs: Any
    ) -> dict[str, Any]:
        if name not in groups:
            raise client_error(
                operation, "DBParameterGroupNotFound", f"Parameter group {name} not found.", 404
            )
        return _page("Parameters", groups[name], kwargs)

    def add_tags_to_resource(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("AddTagsToResource", kwargs))
        kind, _, ident = str(kwargs["ResourceName"]).rpartition(":")
        self._check_access("AddTagsToResource", ident)
        target: SimInstance | SimCluster | None = (
            self.clusters.get(ident) if kind.endswith(":cluster") else self.instances.get(ident)
        )
        if target is None:
            raise client_error(
                "AddTagsToResource",
                "DBInstanceNotFound",
                f"{kwargs['ResourceName']} not found.",
                404,
            )
        target.tags.update({t["Key"]: t["Value"] for t in kwargs["Tags"]})
        return {}

    # ---- what tests measure --------------------------------------------------------------
    def reboots(self) -> list[str]:
        """Reboot requests RDS accepted, in order (refused ones are not reboots)."""
        return [d.identifier for d in self.downtimes]

    def call_names(self) -> list[str]:
        return [name for name, _ in self.calls]

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

    # ---- internals -----------------------------------------------------------------------
    def _check_access(self, operation: str, ident: str | None) -> None:
        if ident in self.denied:
            raise client_error(
                operation,
                "AccessDenied",
                f"User is not authorized to perform: rds:{operation} on resource: db:{ident}",
                403,
            )

    def _reboot(self, inst: SimInstance, seconds: float) -> None:
        inst.status = "rebooting"
        downtime = Downtime(inst.identifier, self.now)
        self.downtimes.append(downtime)

        def applied() -> None:
            inst.groups = {
                g: ("in-sync" if s == "pending-reboot" else s) for g, s in inst.groups.items()
            }
            if inst.cluster_group_status == "pending-reboot":
                inst.cluster_group_status = "in-sync"

        def back() -> None:
            downtime.end = self.now
            if inst.identifier not in self.instances:
                return
            inst.status = "available"
            if self.apply_lag_seconds:
                self.at(self.apply_lag_seconds, applied)
            else:
                applied()

        self.at(seconds, back)

    def _instance_view(self, inst: SimInstance) -> dict[str, Any]:
        view: dict[str, Any] = {
            "DBInstanceIdentifier": inst.identifier,
            "DBInstanceArn": f"arn:aws:rds:{REGION}:{ACCOUNT}:db:{inst.identifier}",
            "DBInstanceStatus": inst.status,
            "Engine": inst.engine,
            "EngineVersion": inst.engine_version,
            "MultiAZ": inst.multi_az,
            "DBParameterGroups": [
                {"DBParameterGroupName": g, "ParameterApplyStatus": s}
                for g, s in inst.groups.items()
            ],
            "CACertificateIdentifier": inst.ca,
            "TagList": [{"Key": k, "Value": v} for k, v in inst.tags.items()],
        }
        if inst.cluster:
            view["DBClusterIdentifier"] = inst.cluster
        return view

    def _cluster_view(self, cluster: SimCluster) -> dict[str, Any]:
        members = [self.instances[m] for m in cluster.members if m in self.instances]
        return {
            "DBClusterIdentifier": cluster.identifier,
            "DBClusterArn": f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:{cluster.identifier}",
            "Status": cluster.status,
            "Engine": cluster.engine,
            "EngineVersion": cluster.engine_version,
            "DBClusterParameterGroup": cluster.group,
            "TagList": [{"Key": k, "Value": v} for k, v in cluster.tags.items()],
            "DBClusterMembers": [
                {
                    "DBInstanceIdentifier": m.identifier,
                    "IsClusterWriter": m.is_writer,
                    "DBClusterParameterGroupStatus": m.cluster_group_status,
                    "PromotionTier": 1,
                }
                for m in members
            ],
        }


def _writer_takes_readers(inst: SimInstance) -> bool:
    major, _, rest = inst.engine_version.partition(".")
    minor = int(rest.split(".")[0] or 0) if rest else 0
    floors = {12: 14, 13: 10, 14: 7}
    return int(major) <= 11 or (int(major) in floors and minor < floors[int(major)])


def _page(key: str, items: list[dict[str, Any]], kwargs: dict[str, Any]) -> dict[str, Any]:
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


# ---- the Provider framework, on the simulated clock ----------------------------------------
@dataclass
class ProviderRun:
    status: str  # SUCCESS or FAILED
    reason: str
    physical_id: str
    data: dict[str, Any]
    polls: int
    elapsed: float


def run_provider(
    sim: RdsSimulator,
    event: dict[str, Any],
    *,
    query_interval: float = 15.0,
    total_timeout: float = 3000.0,
    on_poll: Callable[[int], None] | None = None,
) -> ProviderRun:
    """Drive on_event and is_complete the way the CDK Provider framework's waiter does: the
    first is_complete right after on_event, then one every ``query_interval`` until complete,
    a raised error (FAILED) or ``total_timeout``."""
    from rds_force_ssl.handlers import reboot

    start = sim.now
    try:
        result = reboot.handle_on_event(event, sim, now=sim.now)
    except reboot.ReconcileError as err:
        return ProviderRun("FAILED", str(err), event.get("PhysicalResourceId", ""), {}, 0, 0.0)
    merged = {**event, **result}
    data: dict[str, Any] = dict(result.get("Data", {}))
    polls = 0
    for polls in _count(1):
        if on_poll:
            on_poll(polls)
        try:
            answer = reboot.handle_is_complete(merged, sim, now=sim.now)
        except reboot.ReconcileError as err:
            return ProviderRun(
                "FAILED", str(err), result["PhysicalResourceId"], data, polls, sim.now - start
            )
        if answer["IsComplete"]:
            data.update(answer.get("Data", {}))
            return ProviderRun(
                "SUCCESS", "", result["PhysicalResourceId"], data, polls, sim.now - start
            )
        if sim.now - start + query_interval > total_timeout:
            return ProviderRun(
                "FAILED",
                "Operation timed out",
                result["PhysicalResourceId"],
                data,
                polls,
                sim.now - start,
            )
        sim.advance(query_interval)
    raise AssertionError("unreachable")


def run_duplicates(
    sim: RdsSimulator, event: dict[str, Any], *, copies: int = 2, query_interval: float = 15.0
) -> set[int]:
    """CloudFormation delivering the same event ``copies`` times, each run polling in turn on
    the same clock; returns the runs that completed within 100 rounds."""
    from rds_force_ssl.handlers import reboot

    runs = [{**event, **reboot.handle_on_event(event, sim, now=sim.now)} for _ in range(copies)]
    finished: set[int] = set()
    for _ in range(100):
        for i, merged in enumerate(runs):
            answer = reboot.handle_is_complete(merged, sim, now=sim.now)
            if i not in finished and answer["IsComplete"]:
                finished.add(i)
        if len(finished) == copies:
            break
        sim.advance(query_interval)
    return finished


def _count(start: int) -> Iterator[int]:
    return itertools.count(start)
