"""What the reboot reconciler reads from RDS, and how it tells a passing error from a real one.

Reads, per poll:
- DescribeDBInstances / DescribeDBClusters: statuses, the attached group and its apply status on
  every node (an Aurora member's ``DBClusterParameterGroupStatus`` and ``IsClusterWriter`` come
  with the cluster, so a member IAM does not name is never described);
- DescribeDBParameters / DescribeDBClusterParameters: the value and Source of the parameters
  ForceSsl owns, as the group holds them;
- DescribeEvents: the restarts RDS logged for a node (``RebootDBInstance``: "An Amazon RDS event is
  created when the reboot is completed"), dated: with the stack's memory table (``memory``),
  what keeps a database from being rebooted twice for one change, between polls and between
  requests.

Lambda code: stdlib and boto3 only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import HTTPClientError

from ..facts.contract import KIND_INSTANCE
from .decide import (
    CLOCK_SKEW_S,
    KIND_AURORA,
    KIND_MULTI_AZ_CLUSTER,
    SETTLE_S,
    Disposition,
    Node,
    Param,
    Request,
    Restarts,
    Seen,
    cluster_status,
)

if TYPE_CHECKING:
    # Type stubs only (boto3-stubs[rds]): never imported at run time, and not in the Lambda.
    from collections.abc import Sequence
    from typing import TypedDict, Unpack

    from mypy_boto3_rds.type_defs import (
        DBClusterMessageTypeDef,
        DBClusterParameterGroupDetailsTypeDef,
        DBInstanceMessageTypeDef,
        DBInstanceTypeDef,
        DBParameterGroupDetailsTypeDef,
        DescribeDBClusterParametersMessageTypeDef,
        DescribeDBClustersMessageTypeDef,
        DescribeDBInstancesMessageTypeDef,
        DescribeDBParametersMessageTypeDef,
        DescribeEventsMessageTypeDef,
        EventsMessageTypeDef,
        FilterTypeDef,
        RebootDBClusterMessageTypeDef,
        RebootDBClusterResultTypeDef,
        RebootDBInstanceMessageTypeDef,
        RebootDBInstanceResultTypeDef,
    )

    class _Paging(TypedDict, total=False):
        """What DescribeDBParameters and DescribeDBClusterParameters share beyond the group."""

        Filters: Sequence[FilterTypeDef]
        MaxRecords: int
        Marker: str


# Readers Aurora Auto Scaling adds carry this prefix and this tag, set by AWS:
# https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Integrating.AutoScaling.html#Aurora.Integrating.AutoScaling.Concepts.Tagging
AUTOSCALED_PREFIX = "application-autoscaling-"
AUTOSCALED_TAG = "application-autoscaling:resourceId"

PAGE = 100  # MaxRecords: RDS accepts 20-100

_NOT_FOUND = {
    "DBInstanceNotFound",
    "DBInstanceNotFoundFault",
    "DBClusterNotFoundFault",
    "DBClusterNotFound",
    "DBParameterGroupNotFound",
    "DBParameterGroupNotFoundFault",
    "DBClusterParameterGroupNotFound",
    "DBClusterParameterGroupNotFoundFault",
}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
# botocore's standard retry mode treats these as throttling or transient
# (botocore/retries/standard.py); when they outlast its retries, the next poll looks again.
_TRANSIENT = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalFailure",
    "InternalError",
    "ServiceUnavailable",
}
# What RDS answers when a describe is handed a filter it does not take.
_FILTER_REFUSED = {"InvalidParameterValue", "InvalidParameterCombination"}


class RdsApi(Protocol):
    """The slice of the boto3 RDS client the reconciler uses, typed as boto3-stubs types it
    (``mypy_boto3_rds.RDSClient``): the requests it sends and the answers it reads."""

    def describe_db_instances(
        self, **kwargs: Unpack[DescribeDBInstancesMessageTypeDef]
    ) -> DBInstanceMessageTypeDef: ...
    def describe_db_clusters(
        self, **kwargs: Unpack[DescribeDBClustersMessageTypeDef]
    ) -> DBClusterMessageTypeDef: ...
    def describe_db_parameters(
        self, **kwargs: Unpack[DescribeDBParametersMessageTypeDef]
    ) -> DBParameterGroupDetailsTypeDef: ...
    def describe_db_cluster_parameters(
        self, **kwargs: Unpack[DescribeDBClusterParametersMessageTypeDef]
    ) -> DBClusterParameterGroupDetailsTypeDef: ...
    def describe_events(
        self, **kwargs: Unpack[DescribeEventsMessageTypeDef]
    ) -> EventsMessageTypeDef: ...
    def reboot_db_instance(
        self, **kwargs: Unpack[RebootDBInstanceMessageTypeDef]
    ) -> RebootDBInstanceResultTypeDef: ...
    def reboot_db_cluster(
        self, **kwargs: Unpack[RebootDBClusterMessageTypeDef]
    ) -> RebootDBClusterResultTypeDef: ...


class ReconcileError(RuntimeError):
    """A state that polling will not fix; the provider reports it as FAILED."""


class Gone(ReconcileError):
    """The database (or the member asked about) does not exist."""


class Denied(RuntimeError):
    """IAM refused a call. Right after the stack changed the handler's policy this may be IAM
    propagating the change; the caller decides by the request's age."""

    def __init__(self, what: str, err: Exception) -> None:
        super().__init__(f"{what}: {error_code(err)}")
        self.what = what


class Transient(RuntimeError):
    """Throttling, a 5xx or a dropped connection that botocore's retries did not outlast."""


def error_code(err: BaseException) -> str:
    response = getattr(err, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _status_code(err: BaseException) -> int:
    response = getattr(err, "response", None)
    if isinstance(response, dict):
        return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return 0


def is_transient(err: BaseException) -> bool:
    if isinstance(err, (BotoConnectionError, HTTPClientError)):
        return True
    return error_code(err) in _TRANSIENT or _status_code(err) >= 500


def is_not_found(err: BaseException) -> bool:
    return error_code(err) in _NOT_FOUND


_P = ParamSpec("_P")
_R = TypeVar("_R")


def call(what: str, fn: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
    """One RDS call, with its failures sorted into Gone, Denied, Transient or raised as is."""
    try:
        return fn(*args, **kwargs)
    except Exception as err:
        if is_not_found(err):
            raise Gone(f"{what} does not exist ({error_code(err)})") from err
        if error_code(err) in _DENIED:
            raise Denied(what, err) from err
        if is_transient(err):
            raise Transient(f"{what}: {error_code(err) or type(err).__name__}") from err
        raise


# ---- parameters --------------------------------------------------------------------------------
def read_params(
    rds: RdsApi, group: str, names: Iterable[str], *, cluster: bool
) -> dict[str, Param]:
    """The named parameters as the group holds them, paginated.

    The API reference for DescribeDBParameters says the ``parameter-name`` filter is supported;
    older references say ``Filters`` "isn't currently supported". So the filter is sent, the
    answer is filtered again here, pages are followed to the end, and a refused filter is
    dropped rather than trusted.
    """
    wanted = set(names)
    what = f"cluster parameter group {group}" if cluster else f"parameter group {group}"
    filters: list[FilterTypeDef] = [{"Name": "parameter-name", "Values": sorted(wanted)}]
    found: dict[str, Param] = {}
    marker: str | None = None
    while True:
        paging: _Paging = {"MaxRecords": PAGE}
        if filters:
            paging["Filters"] = filters
        if marker:
            paging["Marker"] = marker
        page: DBClusterParameterGroupDetailsTypeDef | DBParameterGroupDetailsTypeDef
        try:
            if cluster:
                page = call(
                    what,
                    rds.describe_db_cluster_parameters,
                    DBClusterParameterGroupName=group,
                    **paging,
                )
            else:
                page = call(what, rds.describe_db_parameters, DBParameterGroupName=group, **paging)
        except Exception as err:
            if filters and error_code(err) in _FILTER_REFUSED:
                filters, marker, found = [], None, {}
                continue
            raise
        for p in page.get("Parameters", []):
            name = str(p.get("ParameterName", ""))
            if name in wanted:
                value = p.get("ParameterValue")
                found[name] = Param(
                    value=None if value is None else str(value),
                    source=str(p.get("Source", "")),
                )
        marker = page.get("Marker")
        if not marker or len(found) == len(wanted):
            return found


# ---- restarts, from the database's own RDS events ----------------------------------------------
# RDS-EVENT-0004 "DB instance shutdown", RDS-EVENT-0006 "DB instance restarted", and the Multi-AZ
# failover pair (RDS-EVENT-0013 / -0015, -0049), as DescribeEvents words them. A message this does
# not recognise is ignored: at worst a second reboot, never a false success.
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Events.Messages.html
_RESTART_BEGAN = re.compile(
    r"^(the )?db instance shut ?down\b|failover (started|has started)", re.I
)
_RESTART_ENDED = re.compile(
    r"^(the )?db instance restarted\b|failover (completed|is complete)", re.I
)
EVENT_CATEGORIES = ["availability", "failover"]


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def read_restarts(
    rds: RdsApi, idents: Iterable[str], *, started_at: float, now: float
) -> dict[str, Restarts]:
    """For each DB instance, the restarts its RDS events date since the request started (or in
    the last SETTLE_S seconds, whichever is earlier), DescribeEvents, paginated."""
    since = min(started_at, now - SETTLE_S) - CLOCK_SKEW_S
    out: dict[str, Restarts] = {}
    for ident in idents:
        began: list[float] = []
        ended: list[float] = []
        marker: str | None = None
        while True:
            request: DescribeEventsMessageTypeDef = {
                "SourceType": "db-instance",
                "SourceIdentifier": ident,
                "StartTime": datetime.fromtimestamp(since, UTC),
                "EventCategories": EVENT_CATEGORIES,
                "MaxRecords": PAGE,
            }
            if marker:
                request["Marker"] = marker
            page = call(f"events of DB instance {ident}", rds.describe_events, **request)
            for event in page.get("Events", []):
                if str(event.get("SourceIdentifier", ident)) != ident:
                    continue
                message = str(event.get("Message", ""))
                when = _epoch(event["Date"])
                if _RESTART_BEGAN.search(message):
                    began.append(when)
                elif _RESTART_ENDED.search(message):
                    ended.append(when)
            marker = page.get("Marker")
            if not marker:
                break
        out[ident] = Restarts(began=tuple(sorted(began)), ended=tuple(sorted(ended)))
    return out


# ---- the database --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """Which database, and what the app declares about it (from the resource's properties)."""

    request: Request
    members: frozenset[str]  # Aurora members declared in the app (IAM names them)
    autoscaled_readers: bool  # IAM names this cluster's Aurora Auto Scaling readers too


def _visible(target: Target, ident: str) -> bool:
    """Whether IAM names the member: declared in the app, or an Aurora Auto Scaling reader of
    this cluster when the app opted in (IAM checks the reader's tag, not this function)."""
    if ident.lower() in {m.lower() for m in target.members}:
        return True
    return target.autoscaled_readers and ident.startswith(AUTOSCALED_PREFIX)


def _apply_status(instance: DBInstanceTypeDef, group: str) -> str:
    for g in instance.get("DBParameterGroups", []):
        if str(g.get("DBParameterGroupName", "")).lower() == group.lower():
            return str(g.get("ParameterApplyStatus", ""))
    return ""


def observe(rds: RdsApi, target: Target) -> Seen:
    """Read the database, its group's owned parameters and, for the nodes a decision depends
    on, their restarts. Raises Gone, Denied or Transient."""
    req = target.request
    if req.kind == KIND_INSTANCE:
        found = call(
            f"DB instance {req.ident}",
            rds.describe_db_instances,
            DBInstanceIdentifier=req.ident,
        )["DBInstances"][0]
        groups = tuple(
            str(g.get("DBParameterGroupName", "")) for g in found.get("DBParameterGroups", [])
        )
        node = Node(
            ident=req.ident,
            status=str(found["DBInstanceStatus"]),
            apply=_apply_status(found, req.group),
            multi_az=bool(found.get("MultiAZ")),
        )
        attached = next((g for g in groups if g.lower() == req.group.lower()), None)
        params = read_params(rds, attached, req.enforced, cluster=False) if attached else {}
        return Seen(
            kind=KIND_INSTANCE,
            ident=req.ident,
            status=node.status or "",
            groups=groups,
            engine=str(found.get("Engine", "")),
            engine_version=str(found.get("EngineVersion", "")),
            nodes=(node,),
            params=params,
        )
    cluster = call(
        f"DB cluster {req.ident}", rds.describe_db_clusters, DBClusterIdentifier=req.ident
    )["DBClusters"][0]
    engine = str(cluster.get("Engine", ""))
    group = str(cluster.get("DBClusterParameterGroup", ""))
    listed = list(cluster.get("DBClusterMembers", []))
    aurora = engine.startswith("aurora")
    status = str(cluster["Status"])
    params = (
        read_params(rds, group, req.enforced, cluster=True)
        if group.lower() == req.group.lower()
        else {}
    )
    if not aurora:
        # A Multi-AZ DB cluster: RDS manages its members and reboots them together
        # (RebootDBCluster); its status covers them, so they are never described.
        applies = {str(m.get("DBClusterParameterGroupStatus", "")) for m in listed}
        apply = next(
            (a for a in ("failed-to-apply", "pending-reboot", "applying") if a in applies),
            "in-sync" if applies <= {"in-sync"} else ",".join(sorted(applies)),
        )
        node = Node(ident=req.ident, status=None, apply=apply)
        return Seen(
            kind=KIND_MULTI_AZ_CLUSTER,
            members=tuple(str(m["DBInstanceIdentifier"]) for m in listed),
            ident=req.ident,
            status=status,
            groups=(group,),
            engine=engine,
            engine_version=str(cluster.get("EngineVersion", "")),
            nodes=(node,),
            params=params,
        )
    nodes = []
    if cluster_status(status)[0] is Disposition.REBOOT_ALLOWED:
        for member in listed:
            ident = str(member["DBInstanceIdentifier"])
            visible = _visible(target, ident)
            member_status: str | None = None
            if visible:
                try:
                    member_status = str(
                        call(
                            f"DB instance {ident}",
                            rds.describe_db_instances,
                            DBInstanceIdentifier=ident,
                        )["DBInstances"][0]["DBInstanceStatus"]
                    )
                except Gone:
                    continue  # deleted since the cluster was read: nothing left to reboot
            nodes.append(
                Node(
                    ident=ident,
                    status=member_status,
                    apply=str(member.get("DBClusterParameterGroupStatus", "")),
                    writer=bool(member.get("IsClusterWriter")),
                    visible=visible,
                )
            )
    return Seen(
        kind=KIND_AURORA,
        ident=req.ident,
        status=status,
        groups=(group,),
        engine=engine,
        engine_version=str(cluster.get("EngineVersion", "")),
        nodes=tuple(nodes),
        params=params,
    )


def needs_restarts(seen: Seen) -> list[Node]:
    """The nodes whose restarts a decision depends on: those RDS says still need one."""
    return [
        n
        for n in seen.nodes
        if n.apply in ("pending-reboot", "failed-to-apply") or n.status == "incompatible-parameters"
    ]


def with_restarts(
    rds: RdsApi, seen: Seen, nodes: Iterable[Node], *, started_at: float, now: float
) -> Seen:
    """``seen`` with the restarts of ``nodes`` read from RDS events (a Multi-AZ DB cluster's
    restarts are its members')."""
    chosen = {n.ident for n in nodes}
    if not chosen:
        return seen
    if seen.kind == KIND_MULTI_AZ_CLUSTER:
        found = read_restarts(rds, seen.members, started_at=started_at, now=now)
        merged = Restarts()
        for restarts in found.values():
            merged = merged.merged(restarts)
        return replace(
            seen,
            nodes=tuple(replace(n, restarts=n.restarts.merged(merged)) for n in seen.nodes),
        )
    found = read_restarts(rds, sorted(chosen), started_at=started_at, now=now)
    return replace(
        seen,
        nodes=tuple(
            replace(n, restarts=n.restarts.merged(found[n.ident])) if n.ident in found else n
            for n in seen.nodes
        ),
    )
