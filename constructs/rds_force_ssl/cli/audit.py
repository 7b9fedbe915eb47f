"""``rds-force-ssl audit``: is ``rds.force_ssl`` configured *and* in effect across a region?

Configured is what Prowler checks; in effect is what matters. A newly associated parameter group
stays ``pending-reboot`` until a reboot, and RDS never reboots by itself, so a database can carry
``rds.force_ssl=1`` for months while still accepting plaintext.
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_WorkingWithParamGroups.html

API use: describe calls are read page by page, each parameter group's parameters are read once
however many databases share it, and throttling is left to botocore's retries.

Least privilege: DescribeDBInstances and DescribeDBClusters are required. The others cost only
their column when denied: without DescribeCertificates the CA expiry is unknown; without
DescribeDB(Cluster)Parameters the value of rds.force_ssl is unknown for the databases whose
group could not be read, which are then neither counted enforced nor not enforced. A note says
which.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from botocore.exceptions import ClientError

from rds_force_ssl.cli import aws
from rds_force_ssl.handlers import engines as engine_table

PARAMETER = "rds.force_ssl"
# The engines audited, and their defaults when no group sets the parameter, come from the
# engine table. A Multi-AZ DB cluster runs the "postgres" engine.
AUDITED = (engine_table.POSTGRES, engine_table.AURORA_POSTGRES)
ENGINES = frozenset(name for row in AUDITED for name in row.engines)
PAGE_SIZE = 100

SOURCE_EXPLICIT = "explicit"
SOURCE_REPORTED_DEFAULT = "engine default (reported)"
SOURCE_ASSUMED_DEFAULT = "engine default (assumed)"
SOURCE_GROUP_MISSING = "group not found"
SOURCE_DENIED = "unknown (parameters not readable)"

STATE_EFFECTIVE = "effective"
STATE_PENDING_REBOOT = "pending-reboot"
STATE_NOT_CONFIGURED = "not configured"
STATE_UNKNOWN = "unknown"


class RdsPaginators(Protocol):
    """The slice of the boto3 RDS client the audit uses."""

    def get_paginator(self, operation_name: Any) -> Any: ...


@dataclass(frozen=True)
class Denied:
    """A read the identity may not make: what it would have shown is unknown."""

    action: str


@dataclass(frozen=True)
class Report:
    rows: list[Row]
    notes: list[str]


@dataclass(frozen=True)
class Configured:
    value: str | None
    source: str


@dataclass(frozen=True)
class Row:
    kind: str  # "instance" or "cluster"
    name: str
    engine: str
    version: str
    groups: tuple[str, ...]
    force_ssl: str | None
    source: str
    apply_status: str
    state: str
    enforced: bool | None  # None: cannot tell (its parameters could not be read)
    ca: str | None
    ca_valid_till: datetime | None
    members: Mapping[str, str] = field(default_factory=dict)  # cluster member -> group status


# ---- pure decisions ------------------------------------------------------------------------
def engine_default(engine: str, version: str) -> str:
    row = engine_table.lookup(engine)
    return "1" if row is not None and row.default_enforces(version) else "0"


def configured_value(
    parameters: Iterable[Mapping[str, Any]] | Denied | None, *, engine: str, version: str
) -> Configured:
    """The configured value and where it came from, given a group's parameter listing (None when
    the group does not exist)."""
    if parameters is None:
        return Configured(None, SOURCE_GROUP_MISSING)
    if isinstance(parameters, Denied):
        return Configured(None, SOURCE_DENIED)
    for param in parameters:
        if param.get("ParameterName") == PARAMETER and "ParameterValue" in param:
            source = (
                SOURCE_EXPLICIT
                if param.get("Source", "user") == "user"
                else (SOURCE_REPORTED_DEFAULT)
            )
            return Configured(str(param["ParameterValue"]), source)
    # RDS omits the value when the group leaves it at the engine's default.
    return Configured(engine_default(engine, version), SOURCE_ASSUMED_DEFAULT)


def apply_state(statuses: Iterable[str]) -> str:
    """One status for a database from its group statuses (a cluster: one per member)."""
    distinct = set(statuses)
    if not distinct or distinct == {"in-sync"}:
        return "in-sync"
    if STATE_PENDING_REBOOT in distinct:
        return STATE_PENDING_REBOOT
    return sorted(distinct - {"in-sync"})[0]


def decide(configured: Configured, apply_status: str) -> tuple[str, bool | None]:
    if configured.source == SOURCE_DENIED:
        return STATE_UNKNOWN, None
    if configured.value != "1":
        return STATE_NOT_CONFIGURED, False
    if apply_status == "in-sync":
        return STATE_EFFECTIVE, True
    # Configured but not active: Prowler calls this compliant; a plaintext client still gets in.
    return apply_status, False


# ---- reading the region --------------------------------------------------------------------
def pages(
    client: RdsPaginators, operation: str, key: str, *, page_size: int, **kwargs: Any
) -> Iterator[Mapping[str, Any]]:
    paginator = client.get_paginator(operation)
    for page in paginator.paginate(PaginationConfig={"PageSize": page_size}, **kwargs):
        yield from page.get(key, [])


class GroupCache:
    """Parameter listings, fetched once per distinct group, stopping at the page that has
    ``rds.force_ssl``."""

    def __init__(self, client: RdsPaginators, *, page_size: int) -> None:
        self._client = client
        self._page_size = page_size
        self._seen: dict[tuple[str, str], list[Mapping[str, Any]] | Denied | None] = {}
        self.denied: set[str] = set()  # the IAM actions that were denied

    def parameters(self, *, cluster: bool, group: str) -> list[Mapping[str, Any]] | Denied | None:
        key = ("cluster" if cluster else "db", group)
        if key not in self._seen:
            self._seen[key] = self._fetch(cluster=cluster, group=group)
        return self._seen[key]

    def _fetch(self, *, cluster: bool, group: str) -> list[Mapping[str, Any]] | Denied | None:
        if cluster:
            operation, name_key = "describe_db_cluster_parameters", "DBClusterParameterGroupName"
        else:
            operation, name_key = "describe_db_parameters", "DBParameterGroupName"
        found: list[Mapping[str, Any]] = []
        try:
            for param in pages(
                self._client,
                operation,
                "Parameters",
                page_size=self._page_size,
                **{name_key: group},
            ):
                if param.get("ParameterName") == PARAMETER:
                    found.append(param)
                    break
        except ClientError as err:
            if aws.error_code(err) in ("DBParameterGroupNotFound", "DBParameterGroupNotFoundFault"):
                return None
            if aws.is_denied(err):
                self.denied.add(aws.denied_action(err))
                return Denied(aws.denied_action(err))
            raise
        return found


def ca_expiries(client: RdsPaginators, *, page_size: int) -> dict[str, datetime] | Denied:
    try:
        return {
            c["CertificateIdentifier"]: c["ValidTill"]
            for c in pages(client, "describe_certificates", "Certificates", page_size=page_size)
            if "ValidTill" in c
        }
    except ClientError as err:
        if aws.is_denied(err):
            return Denied(aws.denied_action(err))
        raise


def instance_row(
    inst: Mapping[str, Any], *, groups: GroupCache, cas: Mapping[str, datetime]
) -> Row:
    engine, version = inst["Engine"], inst["EngineVersion"]
    group_list = inst.get("DBParameterGroups", [])
    names = tuple(g["DBParameterGroupName"] for g in group_list)
    configured = (
        configured_value(
            groups.parameters(cluster=False, group=names[0]), engine=engine, version=version
        )
        if names
        else Configured(engine_default(engine, version), SOURCE_ASSUMED_DEFAULT)
    )
    status = apply_state(g.get("ParameterApplyStatus", "in-sync") for g in group_list)
    state, enforced = decide(configured, status)
    ca = inst.get("CACertificateIdentifier")
    return Row(
        kind="instance",
        name=inst["DBInstanceIdentifier"],
        engine=engine,
        version=version,
        groups=names,
        force_ssl=configured.value,
        source=configured.source,
        apply_status=status,
        state=state,
        enforced=enforced,
        ca=ca,
        ca_valid_till=cas.get(ca) if ca else None,
    )


def cluster_row(
    cluster: Mapping[str, Any],
    *,
    members: Mapping[str, Mapping[str, Any]],
    groups: GroupCache,
    cas: Mapping[str, datetime],
) -> Row:
    engine, version = cluster["Engine"], cluster["EngineVersion"]
    group = cluster["DBClusterParameterGroup"]
    configured = configured_value(
        groups.parameters(cluster=True, group=group), engine=engine, version=version
    )
    member_status = {
        m["DBInstanceIdentifier"]: m.get("DBClusterParameterGroupStatus", "in-sync")
        for m in cluster.get("DBClusterMembers", [])
    }
    status = apply_state(member_status.values())
    state, enforced = decide(configured, status)
    member_cas = sorted(
        {
            members[m]["CACertificateIdentifier"]
            for m in member_status
            if m in members and members[m].get("CACertificateIdentifier")
        }
    )
    expiries = [cas[c] for c in member_cas if c in cas]
    return Row(
        kind="cluster",
        name=cluster["DBClusterIdentifier"],
        engine=engine,
        version=version,
        groups=(group,),
        force_ssl=configured.value,
        source=configured.source,
        apply_status=status,
        state=state,
        enforced=enforced,
        ca=",".join(member_cas) or None,
        ca_valid_till=min(expiries) if expiries else None,
        members=member_status,
    )


def audit(
    client: RdsPaginators,
    *,
    page_size: int = PAGE_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Every PostgreSQL instance and PostgreSQL cluster in the client's region, one row each,
    and notes on what a denied optional call left unknown.

    A cluster member is reported through its cluster: ``rds.force_ssl`` lives in the cluster
    parameter group there, and each member carries its own status for that group.
    """
    clusters = [
        c
        for c in pages(client, "describe_db_clusters", "DBClusters", page_size=page_size)
        if c.get("Engine") in ENGINES
    ]
    instances = [
        i
        for i in pages(client, "describe_db_instances", "DBInstances", page_size=page_size)
        if i.get("Engine") in ENGINES
    ]
    notes: list[str] = []
    cas = ca_expiries(client, page_size=page_size)
    if isinstance(cas, Denied):
        notes.append(
            f"CA EXPIRES is unknown: {cas.action} was denied (grant it to see when each CA "
            "expires; nothing else depends on it)"
        )
        cas = {}
    groups = GroupCache(client, page_size=page_size)
    clustered = {c["DBClusterIdentifier"] for c in clusters}
    members = {i["DBInstanceIdentifier"]: i for i in instances if i.get("DBClusterIdentifier")}
    standalone = [i for i in instances if i.get("DBClusterIdentifier") not in clustered]
    total = len(standalone) + len(clusters)
    rows: list[Row] = []
    for inst in standalone:
        rows.append(instance_row(inst, groups=groups, cas=cas))
        if progress:
            progress(len(rows), total)
    for cluster in clusters:
        rows.append(cluster_row(cluster, members=members, groups=groups, cas=cas))
        if progress:
            progress(len(rows), total)
    unknown = sum(r.enforced is None for r in rows)
    if groups.denied:
        notes.append(
            f"FORCE_SSL is unknown for {unknown} of {len(rows)}: "
            f"{' and '.join(sorted(groups.denied))} was denied (grant it to judge them)"
        )
    if not rows:
        notes.append("no PostgreSQL instance or cluster here: check the region and the account")
    return Report(rows, notes)


def exit_code(rows: Iterable[Row]) -> int:
    """0 when every database is effectively enforced; 1 when one is proven not to be; 2 when
    some cannot be judged, or there is nothing to judge."""
    enforced = [r.enforced for r in rows]
    if False in enforced:
        return 1
    if not enforced or None in enforced:
        return 2
    return 0
