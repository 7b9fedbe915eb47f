"""The guard's judge: is each database's SSL-only setting configured, in sync and restarted since
the change, and does each RDS Proxy require TLS? One verdict per DB instance, DB cluster (its
members' statuses included) and proxy.

It is also ``rds-force-ssl audit``'s judge: the decisions below (constants, ``configured_value``,
``decide``, ``judge_instance`` ...) are the one copy, and ``cli/audit.py`` imports them from here
because the Lambda asset ships ``handlers/`` and ``facts/`` only, never the CLI. What differs is
only how each reads the region and what it does with a ``Judgment`` (a report row, a finding).
tests/test_guard_parity.py runs both on one moto fleet and requires the same enforced / not
enforced / cannot tell for every database.

Effective, not configured: a value of ``1`` in a group counts only once every node using the
group reports it ``in-sync`` (a newly associated group is ``pending-reboot`` until a restart,
and RDS never restarts by itself); a value the group leaves at the engine default is a belief
(RDS does not report it), so it never counts as enforced.
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_WorkingWithParamGroups.html

Lambda code: stdlib and boto3 only. botocore is imported (through ``observe``) only when a read
fails, so the CLI can import this module without loading botocore (tests/cli/test_cli_imports.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from ..facts import engines as engine_table
from ..facts.engines import PROXY, Engine

KIND_INSTANCE = "instance"
KIND_CLUSTER = "cluster"
KIND_PROXY = "proxy"

SOURCE_EXPLICIT = "explicit"
SOURCE_REPORTED_DEFAULT = "engine default (reported)"
SOURCE_ASSUMED_DEFAULT = "engine default (assumed)"
SOURCE_GROUP_MISSING = "group not found"
SOURCE_DENIED = "unknown (parameters not readable)"
SOURCE_NONE = "-"  # nothing read: no parameter applies
SOURCE_PROXY = "proxy setting"

STATE_EFFECTIVE = "effective"
STATE_PENDING_REBOOT = "pending-reboot"
STATE_NOT_CONFIGURED = "not configured"
STATE_UNKNOWN = "unknown"
STATE_NOT_APPLICABLE = "not applicable"
STATE_UNSUPPORTED = "unsupported version"
# A proxy applies RequireTLS without a reboot; while it is being created or modified the new
# setting may not serve every connection yet.
PROXY_SETTLING = frozenset({"creating", "modifying"})
PAGE = 100  # MaxRecords: RDS accepts 20-100
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}


class RdsReads(Protocol):
    """The slice of the boto3 RDS client the judge reads with."""

    def get_paginator(self, operation_name: Any) -> Any: ...


class ReadFailed(RuntimeError):
    """A read that was denied, throttled past botocore's retries, or failed on the server."""

    def __init__(self, action: str, err: BaseException) -> None:
        from .observe import error_code, is_transient  # botocore: only once a read has failed

        self.action = action
        self.code = error_code(err) or type(err).__name__
        self.denied = self.code in _DENIED
        self.transient = is_transient(err)
        what = "was denied" if self.denied else f"failed ({self.code})"
        super().__init__(f"{action} {what}")


@dataclass(frozen=True)
class Verdict:
    """One database's or proxy's judgment."""

    kind: str  # instance, cluster or proxy
    name: str
    arn: str | None
    engine: str
    version: str
    group: str | None  # the (cluster) parameter group that carries the SSL setting
    parameter: str | None
    value: str | None
    source: str
    apply_status: str
    state: str
    enforced: bool | None  # None: cannot tell (unreadable, or nothing makes it SSL-only)
    control: str | None  # the Security Hub control that checks the same, if any
    reason: str | None = None
    apply_type: str | None = None  # as the group reports it (static / dynamic), if read
    tags: Mapping[str, str] = field(default_factory=dict)
    members: Mapping[str, str] = field(default_factory=dict)  # cluster member -> group status
    note: str = ""  # what the guard did about it (remediation), appended to the detail

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def detail(self) -> str:
        """One sentence for a finding: the setting, where it came from, what is owed."""
        return f"{self._said}; {self.note}" if self.note else self._said

    @property
    def _said(self) -> str:
        if self.reason is not None:
            return f"{self.state}: {self.reason}"
        if self.kind == KIND_PROXY:
            return f"RequireTLS={self.value} (proxy {self.apply_status})"
        setting = f"{self.parameter}={self.value if self.value is not None else '?'}"
        where = f"in {'cluster ' if self.kind == KIND_CLUSTER else ''}parameter group {self.group}"
        said = f"{setting} {where} ({self.source}), apply status {self.apply_status}"
        if self.state == STATE_PENDING_REBOOT:
            said += "; configured but not in effect until the database restarts"
        elif self.state == STATE_UNKNOWN and self.source == SOURCE_ASSUMED_DEFAULT:
            said += "; RDS does not report the default, set it explicitly to judge it"
        elif self.state not in (STATE_EFFECTIVE, STATE_NOT_CONFIGURED, STATE_UNKNOWN):
            said += "; configured but not in effect yet"
        return said


@dataclass(frozen=True)
class Unread:
    """An optional read that was denied or failed, as the CLI reports it (``cli/audit.py``
    classifies the failure): what it would have shown is unknown."""

    action: str  # e.g. rds:DescribeCertificates
    failure: str  # "was denied", or "failed (...)"

    @property
    def denied(self) -> bool:
        return self.failure == "was denied"

    def __str__(self) -> str:
        return f"{self.action} {self.failure}"


@dataclass(frozen=True)
class Configured:
    value: str | None
    source: str
    apply_type: str | None = None


@dataclass(frozen=True)
class Judgment:
    """What is decided of one database or proxy: the fields the guard's ``Verdict`` and audit's
    ``Row`` share."""

    parameter: str | None  # what makes it SSL-only (None: nothing does, see reason)
    value: str | None  # its value (None: unknown, or nothing to read)
    source: str
    apply_status: str
    state: str
    enforced: bool | None  # None: cannot tell (unreadable, or not applicable)
    control: str | None  # the Security Hub control that checks it, if any
    reason: str | None = None  # why not applicable or unsupported, with the AWS page
    apply_type: str | None = None  # as the group reports it (static / dynamic), if read

    def shared(self) -> dict[str, Any]:
        """The fields a report row shows, as keywords (``apply_type`` only the guard keeps)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "apply_type"}


Parameters = list[Mapping[str, Any]] | ReadFailed | Unread | None


class GroupReads(Protocol):
    """A parameter group cache: the group's listing of the parameter, a failed read, or None
    when the group does not exist."""

    def parameters(self, *, cluster: bool, group: str, parameter: str) -> Parameters: ...


# ---- pure decisions --------------------------------------------------------------------------
def off_value(row: Engine) -> str:
    """How the engine spells "off" for its parameter (ON/OFF where ForceSsl writes ON)."""
    return "OFF" if row.value == "ON" else "0"


def engine_default(row: Engine, version: str) -> str:
    return (row.value or "1") if row.default_enforces(version) else off_value(row)


def configured_value(
    parameters: Iterable[Mapping[str, Any]] | ReadFailed | Unread | None,
    *,
    row: Engine,
    version: str,
) -> Configured:
    """The configured value and where it came from, given a group's parameter listing (None when
    the group does not exist)."""
    if parameters is None:
        return Configured(None, SOURCE_GROUP_MISSING)
    if isinstance(parameters, ReadFailed | Unread):
        return Configured(None, SOURCE_DENIED)
    for param in parameters:
        if param.get("ParameterName") != row.parameter:
            continue
        # DescribeDBParameters reports ApplyType for every parameter, a value only where one is
        # set: an unset (or reset) parameter still says whether it is static or dynamic.
        kind = str(param["ApplyType"]) if param.get("ApplyType") else None
        if "ParameterValue" not in param:
            return Configured(engine_default(row, version), SOURCE_ASSUMED_DEFAULT, kind)
        source = (
            SOURCE_EXPLICIT if param.get("Source", "user") == "user" else SOURCE_REPORTED_DEFAULT
        )
        return Configured(str(param["ParameterValue"]), source, kind)
    # RDS omits the value when the group leaves it at the engine's default.
    return Configured(engine_default(row, version), SOURCE_ASSUMED_DEFAULT)


def apply_state(statuses: Iterable[str]) -> str:
    """One status for a database from its group statuses (a cluster: one per member)."""
    distinct = set(statuses)
    if not distinct or distinct == {"in-sync"}:
        return "in-sync"
    if STATE_PENDING_REBOOT in distinct:
        return STATE_PENDING_REBOOT
    return sorted(distinct - {"in-sync"})[0]


def decide(configured: Configured, apply_status: str, *, row: Engine) -> tuple[str, bool | None]:
    if configured.source in (SOURCE_DENIED, SOURCE_GROUP_MISSING):
        # Nothing was read: the group is hidden, or gone since the database was listed.
        return STATE_UNKNOWN, None
    if not row.enforces(configured.value):
        return STATE_NOT_CONFIGURED, False
    if apply_status != "in-sync":
        # Configured but not active: Prowler calls this compliant; a plaintext client gets in.
        return apply_status, False
    if configured.source == SOURCE_ASSUMED_DEFAULT:
        # RDS did not report the value; the table's default (partly from secondary sources)
        # is a belief, and a belief never makes a database count as enforced.
        return STATE_UNKNOWN, None
    return STATE_EFFECTIVE, True


def not_enforceable(row: Engine | None, engine: str, version: str) -> tuple[str, str] | None:
    """(state, reason) for a database no parameter can make SSL-only, else None."""
    if row is None:
        return STATE_NOT_APPLICABLE, f"{engine} is not in the engine table"
    if row.not_applicable is not None or row.parameter is None:
        return STATE_NOT_APPLICABLE, f"{row.not_applicable} ({row.source})"
    if row.too_old(version) and row.minimum_version is not None:
        return (
            STATE_UNSUPPORTED,
            f"{row.parameter} needs {row.title} {engine_table.show(row.minimum_version)} or "
            f"later; upgrade the engine ({row.source})",
        )
    return None


def proxy_decision(require_tls: bool, status: str) -> tuple[str, bool]:
    if not require_tls:
        return STATE_NOT_CONFIGURED, False
    if status in PROXY_SETTLING:
        return status, False
    return STATE_EFFECTIVE, True


def tags_of(resource: Mapping[str, Any]) -> dict[str, str]:
    return {str(t.get("Key")): str(t.get("Value", "")) for t in resource.get("TagList", [])}


# ---- reading ---------------------------------------------------------------------------------
def pages(rds: RdsReads, operation: str, key: str, action: str, **kwargs: Any) -> Iterator[Any]:
    """Every item of a paginated describe; a failure is raised as ReadFailed (not-found as is)."""
    try:
        for page in rds.get_paginator(operation).paginate(
            PaginationConfig={"PageSize": PAGE}, **kwargs
        ):
            yield from page.get(key, [])
    except Exception as err:
        from .observe import is_not_found, is_transient  # botocore: only once a read has failed

        if is_not_found(err) or not (hasattr(err, "response") or is_transient(err)):
            raise
        raise ReadFailed(action, err) from err


def group_listing(*, cluster: bool) -> tuple[str, str, str]:
    """(operation, group name keyword, IAM action) that lists a (cluster) parameter group."""
    if cluster:
        return (
            "describe_db_cluster_parameters",
            "DBClusterParameterGroupName",
            "rds:DescribeDBClusterParameters",
        )
    return "describe_db_parameters", "DBParameterGroupName", "rds:DescribeDBParameters"


class Groups:
    """Parameter listings, read once per distinct group, stopping at the page with the SSL
    parameter (a group belongs to one family, so to one engine row and one parameter)."""

    def __init__(self, rds: RdsReads) -> None:
        self._rds = rds
        self._seen: dict[tuple[bool, str], list[Mapping[str, Any]] | ReadFailed | None] = {}
        self.reads = 0

    def parameters(
        self, *, cluster: bool, group: str, parameter: str
    ) -> list[Mapping[str, Any]] | ReadFailed | None:
        key = (cluster, group.lower())
        if key not in self._seen:
            self._seen[key] = self._fetch(cluster=cluster, group=group, parameter=parameter)
        return self._seen[key]

    def forget(self, *, cluster: bool, group: str) -> None:
        self._seen.pop((cluster, group.lower()), None)

    def _fetch(
        self, *, cluster: bool, group: str, parameter: str
    ) -> list[Mapping[str, Any]] | ReadFailed | None:
        self.reads += 1
        operation, name_key, action = group_listing(cluster=cluster)
        try:
            for param in pages(self._rds, operation, "Parameters", action, **{name_key: group}):
                if param.get("ParameterName") == parameter:
                    return [param]
        except ReadFailed as failed:
            return failed
        except Exception as err:
            from .observe import is_not_found

            if is_not_found(err):
                return None
            raise
        return []


# ---- judging ---------------------------------------------------------------------------------
def judged(
    engine: str, version: str, status: str, read: Callable[[Engine, str], Configured]
) -> Judgment:
    """A database's judgment: not applicable or unsupported where no parameter can enforce SSL on
    its engine, else what its group configures (``read(row, parameter)``) and whether it is in
    effect given its apply status."""
    row = engine_table.lookup(engine)
    skip = not_enforceable(row, engine, version)
    if skip is not None:
        state, reason = skip
        return Judgment(
            parameter=None,  # none that would make it SSL-only: see the reason
            value=None,
            source=SOURCE_NONE,
            apply_status=status,
            state=state,
            # Unsupported: the engine has no such parameter, so nothing stops a plaintext client.
            enforced=False if state == STATE_UNSUPPORTED else None,
            control=row.security_hub if row else None,
            reason=reason,
        )
    assert row is not None  # what not_enforceable checked
    assert row.parameter is not None
    value = read(row, row.parameter)
    state, enforced = decide(value, status, row=row)
    return Judgment(
        parameter=row.parameter,
        value=value.value,
        source=value.source,
        apply_status=status,
        state=state,
        enforced=enforced,
        control=row.security_hub,
        apply_type=value.apply_type,
    )


def _read(
    groups: GroupReads, *, cluster: bool, group: str | None, version: str
) -> Callable[[Engine, str], Configured]:
    """How a database's group configures the parameter (no group: the engine default)."""

    def read(row: Engine, parameter: str) -> Configured:
        if group is None:
            return Configured(engine_default(row, version), SOURCE_ASSUMED_DEFAULT)
        found = groups.parameters(cluster=cluster, group=group, parameter=parameter)
        return configured_value(found, row=row, version=version)

    return read


def instance_groups(inst: Mapping[str, Any]) -> list[str]:
    """The instance's DB parameter group names; the first carries the parameter."""
    return [str(g["DBParameterGroupName"]) for g in inst.get("DBParameterGroups", [])]


def member_statuses(cluster: Mapping[str, Any]) -> dict[str, str]:
    """Each cluster member's status for the cluster parameter group."""
    return {
        str(m["DBInstanceIdentifier"]): str(m.get("DBClusterParameterGroupStatus", "in-sync"))
        for m in cluster.get("DBClusterMembers", [])
    }


def judge_instance(inst: Mapping[str, Any], *, groups: GroupReads) -> Judgment:
    """A standalone DB instance, judged by its DB parameter group."""
    engine, version = str(inst["Engine"]), str(inst["EngineVersion"])
    names = instance_groups(inst)
    status = apply_state(
        str(g.get("ParameterApplyStatus", "in-sync")) for g in inst.get("DBParameterGroups", [])
    )
    group = names[0] if names else None
    return judged(
        engine, version, status, _read(groups, cluster=False, group=group, version=version)
    )


def judge_cluster(cluster: Mapping[str, Any], *, groups: GroupReads) -> Judgment:
    """A DB cluster, judged by its cluster parameter group and every member's status for it."""
    engine, version = str(cluster["Engine"]), str(cluster["EngineVersion"])
    group = str(cluster["DBClusterParameterGroup"])
    status = apply_state(member_statuses(cluster).values())
    return judged(
        engine, version, status, _read(groups, cluster=True, group=group, version=version)
    )


def judge_proxy(proxy: Mapping[str, Any]) -> Judgment:
    """An RDS Proxy: TLS is required or not, and in effect unless the proxy is settling."""
    require_tls = proxy.get("RequireTLS") is True
    status = str(proxy.get("Status", "available"))
    state, enforced = proxy_decision(require_tls, status)
    return Judgment(
        parameter=PROXY.property,
        value="true" if require_tls else "false",
        source=SOURCE_PROXY,
        apply_status=status,
        state=state,
        enforced=enforced,
        control=PROXY.security_hub,
    )


def _verdict(judgment: Judgment, **more: Any) -> Verdict:
    return Verdict(**judgment.shared(), apply_type=judgment.apply_type, **more)


def instance_verdict(inst: Mapping[str, Any], *, groups: Groups) -> Verdict:
    names = instance_groups(inst)
    return _verdict(
        judge_instance(inst, groups=groups),
        kind=KIND_INSTANCE,
        name=str(inst["DBInstanceIdentifier"]),
        arn=inst.get("DBInstanceArn"),
        engine=str(inst["Engine"]),
        version=str(inst["EngineVersion"]),
        group=names[0] if names else None,
        tags=tags_of(inst),
    )


def cluster_verdict(cluster: Mapping[str, Any], *, groups: Groups) -> Verdict:
    return _verdict(
        judge_cluster(cluster, groups=groups),
        kind=KIND_CLUSTER,
        name=str(cluster["DBClusterIdentifier"]),
        arn=cluster.get("DBClusterArn"),
        engine=str(cluster["Engine"]),
        version=str(cluster["EngineVersion"]),
        group=str(cluster["DBClusterParameterGroup"]),
        tags=tags_of(cluster),
        members=member_statuses(cluster),
    )


def proxy_verdict(proxy: Mapping[str, Any]) -> Verdict:
    return _verdict(
        judge_proxy(proxy),
        kind=KIND_PROXY,
        name=str(proxy["DBProxyName"]),
        arn=proxy.get("DBProxyArn"),
        engine=str(proxy.get("EngineFamily", "?")),
        version="",
        group=None,
    )


@dataclass
class Fleet:
    """What one listing of the region shows: every instance, cluster and (if read) proxy."""

    instances: dict[str, Mapping[str, Any]]
    clusters: dict[str, Mapping[str, Any]]
    proxies: dict[str, Mapping[str, Any]] | ReadFailed | None  # None: not read

    @property
    def standalone(self) -> list[Mapping[str, Any]]:
        return [
            i for i in self.instances.values() if i.get("DBClusterIdentifier") not in self.clusters
        ]


def list_fleet(rds: RdsReads, *, proxies: bool) -> Fleet:
    """One listing of the region (ReadFailed if instances or clusters cannot be listed; proxies
    that cannot be listed are a ReadFailed in their place)."""
    clusters = {
        str(c["DBClusterIdentifier"]): c
        for c in pages(rds, "describe_db_clusters", "DBClusters", "rds:DescribeDBClusters")
    }
    instances = {
        str(i["DBInstanceIdentifier"]): i
        for i in pages(rds, "describe_db_instances", "DBInstances", "rds:DescribeDBInstances")
    }
    found: dict[str, Mapping[str, Any]] | ReadFailed | None = None
    if proxies:
        try:
            found = {
                str(p["DBProxyName"]): p
                for p in pages(rds, "describe_db_proxies", "DBProxies", "rds:DescribeDBProxies")
            }
        except ReadFailed as failed:
            found = failed
    return Fleet(instances, clusters, found)


def judge_fleet(rds: RdsReads, fleet: Fleet, *, groups: Groups | None = None) -> list[Verdict]:
    """A verdict for every standalone instance, every cluster and every listed proxy (a cluster
    member is judged through its cluster, whose group carries the parameter)."""
    groups = groups or Groups(rds)
    verdicts = [instance_verdict(i, groups=groups) for i in fleet.standalone]
    verdicts += [cluster_verdict(c, groups=groups) for c in fleet.clusters.values()]
    if isinstance(fleet.proxies, dict):
        verdicts += [proxy_verdict(p) for p in fleet.proxies.values()]
    return verdicts
