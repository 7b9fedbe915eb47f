"""``rds-force-ssl audit``: is each database's SSL-only setting configured *and* in effect, across
a region, for every engine, and does each RDS Proxy require TLS?

Configured is what Prowler checks; in effect is what matters. A newly associated parameter group
stays ``pending-reboot`` until a reboot, and RDS never reboots by itself, so a database can carry
``rds.force_ssl=1`` for months while still accepting plaintext. A dynamic parameter
(``require_secure_transport``) is ``applying`` for a while before it is ``in-sync``.
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_WorkingWithParamGroups.html

What each engine's parameter is, which values enforce, its default by version, its Security Hub
control, and why Oracle and Db2 have none, all come from the engine table
(``facts/engines.py``): there is no per-engine branch here.

API use: describe calls are read page by page, each parameter group's parameters are read once
however many databases share it, and throttling is left to botocore's retries.

Least privilege: DescribeDBInstances and DescribeDBClusters are required. The others cost only
what they would have shown when denied: without DescribeCertificates the CA expiry is unknown;
without DescribeDB(Cluster)Parameters the setting is unknown for the databases whose group could
not be read, which are then neither counted enforced nor not enforced; without DescribeDBProxies
the proxies are not audited and the run is incomplete. A note says which. The same holds when
one of them fails for another reason (a server error, a throttle past the retries, an answer
botocore cannot parse); only a failure of the whole session (credentials, region, network) ends
the run, with its fix.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from rds_force_ssl.cli import aws

# The judge is shared with the guard's Lambda, which ships handlers/ and facts/ but never cli/:
# one copy of every decision, so audit and the guard judge alike. Imported here under the names
# audit always had (other modules and tests use ``audit.STATE_*``, ``audit.decide`` ...).
from rds_force_ssl.handlers.judge import (
    PROXY_SETTLING,
    SOURCE_ASSUMED_DEFAULT,
    SOURCE_DENIED,
    SOURCE_EXPLICIT,
    SOURCE_GROUP_MISSING,
    SOURCE_NONE,
    SOURCE_PROXY,
    SOURCE_REPORTED_DEFAULT,
    STATE_EFFECTIVE,
    STATE_NOT_APPLICABLE,
    STATE_NOT_CONFIGURED,
    STATE_PENDING_REBOOT,
    STATE_UNKNOWN,
    STATE_UNSUPPORTED,
    Configured,
    Judgment,
    Unread,
    apply_state,
    configured_value,
    decide,
    engine_default,
    group_listing,
    instance_groups,
    judge_cluster,
    judge_instance,
    judge_proxy,
    member_statuses,
    not_enforceable,
    off_value,
    proxy_decision,
)

__all__ = [
    "PROXY_SETTLING",
    "SOURCE_ASSUMED_DEFAULT",
    "SOURCE_DENIED",
    "SOURCE_EXPLICIT",
    "SOURCE_GROUP_MISSING",
    "SOURCE_NONE",
    "SOURCE_PROXY",
    "SOURCE_REPORTED_DEFAULT",
    "STATE_EFFECTIVE",
    "STATE_NOT_APPLICABLE",
    "STATE_NOT_CONFIGURED",
    "STATE_PENDING_REBOOT",
    "STATE_UNKNOWN",
    "STATE_UNSUPPORTED",
    "Configured",
    "GroupCache",
    "RdsPaginators",
    "Report",
    "Row",
    "Unread",
    "apply_state",
    "audit",
    "ca_expiries",
    "cluster_row",
    "configured_value",
    "decide",
    "engine_default",
    "exit_code",
    "instance_row",
    "not_enforceable",
    "off_value",
    "proxies",
    "proxy_decision",
    "proxy_row",
    "reasons",
    "unknown_sources",
    "unread",
]


class RdsPaginators(Protocol):
    """The slice of the boto3 RDS client the audit uses."""

    def get_paginator(self, operation_name: Any) -> Any: ...


def unread(err: BaseException, action: str) -> Unread:
    """An optional call's failure as what it leaves unknown; a session-wide one is raised."""
    if aws.is_fatal(err):
        raise err
    return Unread(action, aws.failed(err))


@dataclass(frozen=True)
class Row:
    kind: str  # "instance", "cluster" or "proxy"
    name: str
    engine: str  # the RDS Engine string; a proxy's EngineFamily
    version: str
    groups: tuple[str, ...]
    parameter: str | None  # what makes it SSL-only (None: nothing does, see reason)
    value: str | None  # its value (None: unknown, or nothing to read)
    source: str
    apply_status: str
    state: str
    enforced: bool | None  # None: cannot tell (unreadable, or not applicable)
    control: str | None  # the Security Hub control that checks it, if any
    ca: str | None
    ca_valid_till: datetime | None
    members: Mapping[str, str] = field(default_factory=dict)  # cluster member -> group status
    reason: str | None = None  # why not applicable or unsupported, with the AWS page

    @property
    def setting(self) -> str:
        if self.parameter is None:
            return "-"
        return f"{self.parameter}={self.value if self.value is not None else '?'}"


@dataclass(frozen=True)
class Report:
    rows: list[Row]
    notes: list[str]
    complete: bool = True  # False: a listing was denied, so some resources were not audited


# ---- reading the region --------------------------------------------------------------------
class GroupCache:
    """Parameter listings, fetched once per distinct group, stopping at the page that has the
    engine's SSL parameter."""

    def __init__(self, client: RdsPaginators, *, page_size: int) -> None:
        self._client = client
        self._page_size = page_size
        self._seen: dict[tuple[str, str], list[Mapping[str, Any]] | Unread | None] = {}
        self.unread: set[Unread] = set()  # the reads that were denied or failed

    def parameters(
        self, *, cluster: bool, group: str, parameter: str
    ) -> list[Mapping[str, Any]] | Unread | None:
        # A group belongs to one family, so to one engine row and one parameter.
        key = ("cluster" if cluster else "db", group)
        if key not in self._seen:
            self._seen[key] = self._fetch(cluster=cluster, group=group, parameter=parameter)
        return self._seen[key]

    def _fetch(
        self, *, cluster: bool, group: str, parameter: str
    ) -> list[Mapping[str, Any]] | Unread | None:
        operation, name_key, action = group_listing(cluster=cluster)
        found: list[Mapping[str, Any]] = []
        try:
            for param in aws.pages(
                self._client,
                operation,
                "Parameters",
                page_size=self._page_size,
                **{name_key: group},
            ):
                if param.get("ParameterName") == parameter:
                    found.append(param)
                    break
        except aws.optional_failures() as err:
            if aws.error_code(err) in ("DBParameterGroupNotFound", "DBParameterGroupNotFoundFault"):
                return None
            failure = unread(err, action)
            self.unread.add(failure)
            return failure
        return found


def ca_expiries(client: RdsPaginators, *, page_size: int) -> dict[str, datetime] | Unread:
    try:
        return {
            c["CertificateIdentifier"]: c["ValidTill"]
            for c in aws.pages(client, "describe_certificates", "Certificates", page_size=page_size)
            if "ValidTill" in c
        }
    except aws.optional_failures() as err:
        return unread(err, "rds:DescribeCertificates")


def _row(judgment: Judgment, **more: Any) -> Row:
    """A report row: what the judge decided, and what audit shows beside it."""
    return Row(**judgment.shared(), **more)


def instance_row(
    inst: Mapping[str, Any], *, groups: GroupCache, cas: Mapping[str, datetime]
) -> Row:
    ca = inst.get("CACertificateIdentifier")
    return _row(
        judge_instance(inst, groups=groups),
        kind="instance",
        name=inst["DBInstanceIdentifier"],
        engine=inst["Engine"],
        version=inst["EngineVersion"],
        groups=tuple(instance_groups(inst)),
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
    member_status = member_statuses(cluster)
    member_cas = sorted(
        {
            members[m]["CACertificateIdentifier"]
            for m in member_status
            if m in members and members[m].get("CACertificateIdentifier")
        }
    )
    expiries = [cas[c] for c in member_cas if c in cas]
    return _row(
        judge_cluster(cluster, groups=groups),
        kind="cluster",
        name=cluster["DBClusterIdentifier"],
        engine=cluster["Engine"],
        version=cluster["EngineVersion"],
        groups=(cluster["DBClusterParameterGroup"],),
        ca=",".join(member_cas) or None,
        ca_valid_till=min(expiries) if expiries else None,
        members=member_status,
    )


def proxy_row(proxy: Mapping[str, Any]) -> Row:
    return _row(
        judge_proxy(proxy),
        kind="proxy",
        name=proxy["DBProxyName"],
        engine=proxy.get("EngineFamily", "?"),
        version="",
        groups=(),
        ca=None,
        ca_valid_till=None,
    )


def proxies(client: RdsPaginators, *, page_size: int) -> list[Row] | Unread:
    try:
        return [
            proxy_row(p)
            for p in aws.pages(client, "describe_db_proxies", "DBProxies", page_size=page_size)
        ]
    except aws.optional_failures() as err:
        return unread(err, "rds:DescribeDBProxies")


def audit(
    client: RdsPaginators,
    *,
    page_size: int = aws.PAGE_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Every DB instance, DB cluster and RDS Proxy in the client's region, one row each, and
    notes on what a denied or failed optional call left unknown and on what no parameter can
    enforce.

    A cluster member is reported through its cluster: the parameter lives in the cluster
    parameter group there, and each member carries its own status for that group.
    """
    clusters = list(aws.pages(client, "describe_db_clusters", "DBClusters", page_size=page_size))
    instances = list(aws.pages(client, "describe_db_instances", "DBInstances", page_size=page_size))
    notes: list[str] = []
    complete = True
    cas = ca_expiries(client, page_size=page_size)
    if isinstance(cas, Unread):
        remedy = "grant it to see when each CA expires" if cas.denied else "run again to see them"
        notes.append(f"CA EXPIRES is unknown: {cas} ({remedy}; nothing else depends on it)")
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
    found = proxies(client, page_size=page_size)
    if isinstance(found, Unread):
        complete = False
        remedy = "grant it to include them" if found.denied else "run again to include them"
        notes.append(f"RDS proxies were not audited: {found} ({remedy})")
    else:
        rows += found
    unknown = sum(r.state == STATE_UNKNOWN and r.source == SOURCE_DENIED for r in rows)
    if groups.unread:
        denied = [u.denied for u in groups.unread]
        if all(denied):
            remedy = "grant it to judge them"
        elif not any(denied):
            remedy = "run again to judge them"
        else:
            remedy = "grant what was denied and run again to judge them"
        notes.append(
            f"SETTING is unknown for {unknown} of {len(rows)}: "
            f"{' and '.join(sorted(map(str, groups.unread)))} ({remedy})"
        )
    notes += unknown_sources(rows)
    notes += reasons(rows)
    if not rows:
        notes.append("no database or proxy here: check the region and the account")
    return Report(rows, notes, complete)


def unknown_sources(rows: Iterable[Row]) -> list[str]:
    """Notes on the databases that are unknown although their group could be read."""
    notes = []
    assumed = [
        f"{r.kind} {r.name}"
        for r in rows
        if r.state == STATE_UNKNOWN and r.source == SOURCE_ASSUMED_DEFAULT
    ]
    if assumed:
        notes.append(
            f"not counted either way ({', '.join(assumed)}): the group leaves the SSL setting "
            "at the engine default, which RDS does not report; the value shown is the engine "
            "table's, not RDS's (set it explicitly, as ForceSsl does, to judge them)"
        )
    missing = [f"{r.kind} {r.name}" for r in rows if r.source == SOURCE_GROUP_MISSING]
    if missing:
        notes.append(
            f"not counted either way ({', '.join(missing)}): the parameter group was not found "
            "(deleted since the database was listed?); run again to judge them"
        )
    return notes


def reasons(rows: Iterable[Row]) -> list[str]:
    """One note per reason a database is not applicable or unsupported, naming them."""
    by_reason: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in rows:
        if r.reason is not None:
            by_reason[(r.state, r.reason)].append(f"{r.kind} {r.name}")
    return [
        f"{state}, so not counted as enforced ({', '.join(names)}): {reason}"
        for (state, reason), names in by_reason.items()
    ]


def exit_code(rows: Iterable[Row], *, complete: bool = True) -> int:
    """0 when every database and proxy is effectively enforced; 1 when one is proven not to be;
    2 when some cannot be judged (unreadable, not applicable), some were not listed, or there is
    nothing to judge."""
    enforced = [r.enforced for r in rows]
    if False in enforced:
        return 1
    if not enforced or None in enforced or not complete:
        return 2
    return 0
