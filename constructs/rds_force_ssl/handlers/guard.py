"""The guard: after deploy, sees SSL-only turned off (or never put in effect) on any database or
RDS Proxy of the account and region within minutes, and reports it where security teams look.

What starts a check (docs/guard.md):
- the RDS API calls CloudTrail records (``API_CALLS``: values, group swaps, new databases,
  restores, proxies, reboots, deletions), through EventBridge;
- RDS's own events (``RDS_EVENT_TYPES``), best effort;
- an hourly sweep of every database, because CloudTrail delivery is best effort too;
- its own delayed rechecks.
All of them reach one SQS queue; Lambda reads it in batches (a batching window coalesces a
burst). Each run maps the events to the databases they affect (a group change: every database
using the group), de-duplicates them, and checks each at most once a minute: a conditional
write of "last checked" in a DynamoDB table (``DynamoMarks.claim``); a database checked less
than a minute ago gets one delayed recheck, never more than one queued (``defer``). So a burst
of 500 events costs one listing per batch and at most one check per database per minute.
Throttling past botocore's retries is not retried here: the affected databases get their one
delayed recheck, and the sweep catches anything left.

The check reads what RDS shows now, never what an event says, so repeated and out-of-order
events judge alike. The judging is ``judge`` (the same as ``rds-force-ssl audit``'s).

What it reports: a Security Hub finding per database (``facts.findings``, the audit's ASFF:
stable Id, FAILED / PASSED / NOT_AVAILABLE, archived when the database is gone; a status is kept
as reported only once Security Hub accepted it, so a failed import is sent again), a CloudWatch
metric per finding kind (``KINDS``) and an SNS message when a database's status changes. An
account-wide condition (Security Hub not accepting, no CloudTrail trail logging the region,
which the sweep checks) is announced once when it starts and once when it ends.

Remediation, off by default: a group whose SSL parameter is off is set back
(ModifyDB(Cluster)ParameterGroup), unless any database using it is exempted (tag
``EXEMPT_TAG``) or it is a default group. It never reboots: the finding says a restart is owed,
which the database's ForceSsl reboot policy (or its owner) performs; after a pending-reboot
remediation the finding stays FAILED until a restart is evidenced (``_owed``).

Lambda code: stdlib and boto3 only.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from ..facts import engines as engine_table
from ..facts import findings as fmt
from .judge import (
    KIND_CLUSTER,
    KIND_INSTANCE,
    KIND_PROXY,
    SOURCE_ASSUMED_DEFAULT,
    SOURCE_EXPLICIT,
    SOURCE_REPORTED_DEFAULT,
    STATE_NOT_APPLICABLE,
    STATE_NOT_CONFIGURED,
    STATE_PENDING_REBOOT,
    STATE_UNSUPPORTED,
    Fleet,
    Groups,
    ReadFailed,
    Verdict,
    cluster_verdict,
    instance_verdict,
    list_fleet,
    proxy_verdict,
    tags_of,
)
from .observe import error_code, is_transient

# Names the construct and the handler share.
NAMESPACE = "RdsForceSsl/Guard"
ENV_TABLE = "RDS_FORCE_SSL_GUARD_TABLE"
ENV_QUEUE = "RDS_FORCE_SSL_GUARD_QUEUE"
ENV_TOPIC = "RDS_FORCE_SSL_GUARD_TOPIC"
ENV_REMEDIATE = "RDS_FORCE_SSL_GUARD_REMEDIATE"
ENV_ACCOUNT = "RDS_FORCE_SSL_GUARD_ACCOUNT"
ENV_PARTITION = "RDS_FORCE_SSL_GUARD_PARTITION"
EXEMPT_TAG = "rds-force-ssl:exempt"
MESSAGE_KEY = "rds-force-ssl-guard"  # the guard's own messages: {"rds-force-ssl-guard": ...}
SWEEP = "sweep"
RECHECK = "recheck"
EVERY_S = 60  # at most one check per database per minute
SQS_MAX_DELAY_S = 900
HUB_CALLS_PER_S = 10.0  # BatchImportFindings: about 10 calls a second per account and region
KEY = "Target"  # the table's partition key: "instance:<id>", "cluster:<id>", "proxy:<name>"

# Targets an event can name; the two group kinds stand for every database using the group.
DB_GROUP = "db-group"
CLUSTER_GROUP = "cluster-group"

# The CloudTrail-recorded RDS calls that can turn SSL-only off or start a database without it,
# and the request fields that name what they touch (CloudTrail writes them lowerCamelCase,
# e.g. dBInstanceIdentifier; compared here without case). FACTS: "The calls that turn SSL off";
# reboots and starts put a pending change in effect; deletions archive the finding.
_INSTANCE = ((KIND_INSTANCE, "dbinstanceidentifier"),)
_CLUSTER = ((KIND_CLUSTER, "dbclusteridentifier"),)
API_CALLS: dict[str, tuple[tuple[str, str], ...]] = {
    "ModifyDBParameterGroup": ((DB_GROUP, "dbparametergroupname"),),
    "ResetDBParameterGroup": ((DB_GROUP, "dbparametergroupname"),),
    "ModifyDBClusterParameterGroup": ((CLUSTER_GROUP, "dbclusterparametergroupname"),),
    "ResetDBClusterParameterGroup": ((CLUSTER_GROUP, "dbclusterparametergroupname"),),
    "ModifyDBInstance": (*_INSTANCE, (KIND_INSTANCE, "newdbinstanceidentifier")),
    "ModifyDBCluster": (*_CLUSTER, (KIND_CLUSTER, "newdbclusteridentifier")),
    "CreateDBInstance": _INSTANCE,
    "CreateDBCluster": _CLUSTER,
    "CreateDBInstanceReadReplica": _INSTANCE,
    "RestoreDBInstanceFromDBSnapshot": _INSTANCE,
    "RestoreDBInstanceFromS3": _INSTANCE,
    "RestoreDBInstanceToPointInTime": ((KIND_INSTANCE, "targetdbinstanceidentifier"),),
    "RestoreDBClusterFromSnapshot": _CLUSTER,
    "RestoreDBClusterFromS3": _CLUSTER,
    "RestoreDBClusterToPointInTime": _CLUSTER,
    "CreateDBProxy": ((KIND_PROXY, "dbproxyname"),),
    "ModifyDBProxy": ((KIND_PROXY, "dbproxyname"), (KIND_PROXY, "newdbproxyname")),
    "RebootDBInstance": _INSTANCE,
    "RebootDBCluster": _CLUSTER,
    "StartDBInstance": _INSTANCE,
    "StartDBCluster": _CLUSTER,
    "DeleteDBInstance": _INSTANCE,
    "DeleteDBCluster": _CLUSTER,
    "DeleteDBProxy": ((KIND_PROXY, "dbproxyname"),),
}
CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"
# RDS's own EventBridge events (best effort), and the categories worth a check.
RDS_EVENT_TYPES = (
    "RDS DB Instance Event",
    "RDS DB Cluster Event",
    "RDS DB Parameter Group Event",
    "RDS DB Proxy Event",
)
RDS_EVENT_CATEGORIES = ("configuration change", "creation", "restoration", "availability")

# Finding kinds, one CloudWatch metric each; NOT_ENFORCED counts those of ENFORCEMENT (the
# alarm's metric). NOT_APPLICABLE is counted apart: an engine that nothing makes SSL-only (Oracle,
# Db2, one missing from the engine table) or a parameter RDS does not report (the engine default)
# is no drift, and would keep the alarm on for good.
NOT_CONFIGURED = "NotConfigured"  # the parameter is off: value off, group swapped or reset
NOT_IN_EFFECT = "NotInEffect"  # configured, but pending-reboot / applying / a restart owed
PROXY_TLS_OFF = "ProxyTlsOff"
UNSUPPORTED = "Unsupported"  # an engine version without the parameter
UNJUDGED = "Unjudged"  # a read was denied or failed: cannot tell
NOT_APPLICABLE = "NotApplicable"  # no setting to judge: not applicable, unknown engine, default
NOT_ENFORCED = "NotEnforced"
ENFORCEMENT = (NOT_CONFIGURED, NOT_IN_EFFECT, PROXY_TLS_OFF, UNSUPPORTED, UNJUDGED)
KINDS = (*ENFORCEMENT, NOT_APPLICABLE)
# The guard's own blind spot, a metric apart: no CloudTrail trail logs the region's API calls, so
# no API call reaches EventBridge and only the sweep sees changes (put by the sweep: 1 or 0).
NO_TRAIL = "CloudTrailOff"
# A remediated static parameter that RDS shows in-sync before any restart was seen (RDS's status
# can lag the change): still FAILED until a restart is evidenced.
STATE_RESTART_OWED = "remediated, restart owed"
# API calls that restart a database: evidence that a pending change is in effect.
RESTARTS = frozenset({"RebootDBInstance", "RebootDBCluster", "StartDBInstance", "StartDBCluster"})

LOG = logging.getLogger("rds_force_ssl.guard")
LOG.setLevel(logging.INFO)


# ---- what an event asks for --------------------------------------------------------------------
Target = tuple[str, str]  # (kind, name): instance, cluster, proxy, db-group or cluster-group


@dataclass
class Asked:
    targets: set[Target] = field(default_factory=set)
    sweep: bool = False
    rechecks: set[Target] = field(default_factory=set)  # asked again by the guard itself
    restarts: dict[Target, float] = field(default_factory=dict)  # restarted, when (epoch s)


def targets_of(event: Mapping[str, Any]) -> Asked:
    """What one EventBridge event (or one of the guard's own messages) asks to check."""
    asked = Asked()
    own = event.get(MESSAGE_KEY)
    if own == SWEEP or event.get("detail-type") == "Scheduled Event":
        asked.sweep = True
        return asked
    if own == RECHECK:
        asked.targets.update((str(k), str(n)) for k, n in event.get("targets", []))
        asked.rechecks |= asked.targets
        return asked
    detail = event.get("detail") or {}
    if event.get("detail-type") == CLOUDTRAIL_DETAIL_TYPE:
        if detail.get("errorCode"):
            return asked  # the call failed: nothing changed
        fields = API_CALLS.get(str(detail.get("eventName", "")), ())
        request = {str(k).lower(): v for k, v in (detail.get("requestParameters") or {}).items()}
        for kind, name_key in fields:
            name = request.get(name_key)
            if isinstance(name, str) and name:
                asked.targets.add((kind, name))
                when = _epoch(detail.get("eventTime"))
                if detail.get("eventName") in RESTARTS and when is not None:
                    asked.restarts[(kind, name)] = when
        return asked
    if event.get("detail-type") in RDS_EVENT_TYPES:
        source = str(detail.get("SourceIdentifier", ""))
        arn = str(detail.get("SourceArn", ""))
        source_kind = {
            "DB_INSTANCE": KIND_INSTANCE,
            "CLUSTER": KIND_CLUSTER,
            "DB_CLUSTER": KIND_CLUSTER,
            "DB_PROXY": KIND_PROXY,
            "DB_PARAMETER_GROUP": CLUSTER_GROUP if ":cluster-pg:" in arn else DB_GROUP,
            "DB_CLUSTER_PARAMETER_GROUP": CLUSTER_GROUP,
        }.get(str(detail.get("SourceType", "")).upper())
        if source_kind and source:
            asked.targets.add((source_kind, source))
    return asked


def _epoch(stamp: object) -> float | None:
    """CloudTrail's eventTime (ISO 8601, UTC) in epoch seconds; None if absent or unreadable."""
    if not isinstance(stamp, str):
        return None
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def requests_of(event: Mapping[str, Any]) -> Asked:
    """An SQS batch (each body an event), or one event given directly."""
    asked = Asked()
    records = event.get("Records")
    bodies: Iterable[Mapping[str, Any]]
    if isinstance(records, list):
        bodies = []
        for record in records:
            try:
                body = json.loads(record.get("body", ""))
            except (TypeError, ValueError):
                LOG.warning("ignored a message that is not JSON: %s", record.get("messageId"))
                continue
            if isinstance(body, dict):
                bodies.append(body)
    else:
        bodies = [event]
    for body in bodies:
        one = targets_of(body)
        asked.targets |= one.targets
        asked.rechecks |= one.rechecks
        for target, when in one.restarts.items():
            asked.restarts[target] = max(when, asked.restarts.get(target, when))
        asked.sweep = asked.sweep or one.sweep
    return asked


# ---- the services it reports to, and its memory ------------------------------------------------
class Marks(Protocol):
    """When each database was last checked and reported (the DynamoDB table)."""

    def claim(self, key: str, now: float) -> bool:
        """True (and "checked now" recorded) unless it was checked less than EVERY_S ago."""
        ...

    def defer(self, key: str, now: float) -> float | None:
        """When the one recheck of ``key`` is due, if this call queued it (None: one is queued
        already)."""
        ...

    def seen(self, key: str, now: float) -> Memory:
        """What is kept of ``key`` (its first sighting stored now if it has none)."""
        ...

    def record(self, key: str, *, reported: str | None, told: str | None) -> None:
        """Store the status Security Hub accepted (``reported``) and the one announced
        (``told``); None leaves that one as it is."""
        ...

    def remediation(
        self, key: str, *, at: float | None, method: str = "", pending_seen: bool = False
    ) -> None:
        """Store a remediation (when, its ApplyMethod, whether pending-reboot was seen since);
        ``at=None`` forgets it (a restart was evidenced)."""
        ...

    def restarted(self, key: str, when: float) -> None:
        """Forget a remediation made at or before ``when``, when ``key`` restarted."""
        ...

    def condition(self, name: str, value: str) -> str | None:
        """Store an account-wide condition ("" when fine); the value stored before."""
        ...

    def known(self) -> dict[str, str]:
        """Every key Security Hub accepted a finding of, with its last accepted status."""
        ...


@dataclass(frozen=True)
class Memory:
    """What the table keeps of one database between runs."""

    reported: str | None = None  # the last status Security Hub accepted
    told: str | None = None  # the last status announced (SNS, Outcome.changed)
    first: float | None = None  # when first seen
    remediated_at: float | None = None  # when the guard last set the parameter back
    method: str = ""  # that remediation's ApplyMethod
    pending_seen: bool = False  # pending-reboot seen since that remediation


def memory_of(item: Mapping[str, Any]) -> Memory:
    """A DynamoDB item (attribute values) as a Memory."""

    def text(name: str) -> str | None:
        value = item.get(name, {}).get("S")
        return str(value) if value is not None else None

    def number(name: str) -> float | None:
        value = item.get(name, {}).get("N")
        return float(value) if value is not None else None

    return Memory(
        reported=text("Status"),
        told=text("Told"),
        first=number("FirstSeen"),
        remediated_at=number("RemediatedAt"),
        method=text("ApplyMethod") or "",
        pending_seen=bool(item.get("PendingSeen", {}).get("BOOL", False)),
    )


@dataclass
class DynamoMarks:
    """Marks in the guard's DynamoDB table, by conditional writes (no read-then-write race)."""

    client: Any
    table: str

    def claim(self, key: str, now: float) -> bool:
        try:
            self.client.update_item(
                TableName=self.table,
                Key={KEY: {"S": key}},
                UpdateExpression="SET CheckedAt = :now",
                ConditionExpression="attribute_not_exists(CheckedAt) OR CheckedAt <= :cutoff",
                ExpressionAttributeValues={
                    ":now": {"N": _n(now)},
                    ":cutoff": {"N": _n(now - EVERY_S)},
                },
            )
        except Exception as err:
            if error_code(err) == "ConditionalCheckFailedException":
                return False
            # The table cannot be written: check anyway (the batch is de-duplicated already),
            # and say so in the log.
            LOG.warning("guard table not written (%s); checking %s anyway", error_code(err), key)
        return True

    def defer(self, key: str, now: float) -> float | None:
        try:
            got = self.client.update_item(
                TableName=self.table,
                Key={KEY: {"S": key}},
                UpdateExpression="SET RecheckAt = CheckedAt + :every",
                ConditionExpression="attribute_exists(CheckedAt) AND "
                "(attribute_not_exists(RecheckAt) OR RecheckAt < :now)",
                ExpressionAttributeValues={":every": {"N": str(EVERY_S)}, ":now": {"N": _n(now)}},
                ReturnValues="UPDATED_NEW",
            )
        except Exception as err:
            if error_code(err) != "ConditionalCheckFailedException":
                LOG.warning("guard table not written (%s); %s waits for the sweep", err, key)
            return None
        return float(got["Attributes"]["RecheckAt"]["N"])

    def seen(self, key: str, now: float) -> Memory:
        try:
            got = self.client.update_item(
                TableName=self.table,
                Key={KEY: {"S": key}},
                UpdateExpression="SET FirstSeen = if_not_exists(FirstSeen, :now)",
                ExpressionAttributeValues={":now": {"N": _n(now)}},
                ReturnValues="ALL_NEW",
            )
        except Exception as err:
            LOG.warning("guard table not written (%s); %s's past not known", error_code(err), key)
            return Memory(first=now)
        return memory_of(got.get("Attributes") or {})

    def record(self, key: str, *, reported: str | None, told: str | None) -> None:
        sets = {"#r": ("Status", reported), "#t": ("Told", told)}
        kept = {k: v for k, v in sets.items() if v[1] is not None}
        if not kept:
            return
        try:
            self.client.update_item(
                TableName=self.table,
                Key={KEY: {"S": key}},
                UpdateExpression="SET " + ", ".join(f"{k} = :{k[1:]}" for k in kept),
                ExpressionAttributeNames={k: name for k, (name, _) in kept.items()},
                ExpressionAttributeValues={
                    f":{k[1:]}": {"S": str(v)} for k, (_, v) in kept.items()
                },
            )
        except Exception as err:
            LOG.warning("guard table not written (%s); %s's status not kept", error_code(err), key)

    def remediation(
        self, key: str, *, at: float | None, method: str = "", pending_seen: bool = False
    ) -> None:
        update: dict[str, Any]
        if at is None:
            update = {"UpdateExpression": "REMOVE RemediatedAt, ApplyMethod, PendingSeen"}
        else:
            update = {
                "UpdateExpression": "SET RemediatedAt = :at, ApplyMethod = :m, PendingSeen = :p",
                "ExpressionAttributeValues": {
                    ":at": {"N": _n(at)},
                    ":m": {"S": method},
                    ":p": {"BOOL": pending_seen},
                },
            }
        try:
            self.client.update_item(TableName=self.table, Key={KEY: {"S": key}}, **update)
        except Exception as err:
            LOG.warning("guard table not written (%s); %s's remediation not kept", err, key)

    def restarted(self, key: str, when: float) -> None:
        try:
            self.client.update_item(
                TableName=self.table,
                Key={KEY: {"S": key}},
                UpdateExpression="REMOVE RemediatedAt, ApplyMethod, PendingSeen",
                ConditionExpression="RemediatedAt <= :when",
                ExpressionAttributeValues={":when": {"N": _n(when)}},
            )
        except Exception as err:
            if error_code(err) != "ConditionalCheckFailedException":
                LOG.warning("guard table not written (%s); %s's restart not kept", err, key)

    def condition(self, name: str, value: str) -> str | None:
        try:
            got = self.client.update_item(
                TableName=self.table,
                Key={KEY: {"S": f"condition:{name}"}},
                UpdateExpression="SET #c = :v",
                ExpressionAttributeNames={"#c": "Condition"},
                ExpressionAttributeValues={":v": {"S": value}},
                ReturnValues="ALL_OLD",
            )
        except Exception as err:
            # Not kept: say nothing new rather than the same message every run.
            LOG.warning("guard table not written (%s); condition %s not kept", err, name)
            return value
        old = (got.get("Attributes") or {}).get("Condition", {}).get("S")
        return str(old) if old is not None else None

    def known(self) -> dict[str, str]:
        found: dict[str, str] = {}
        try:
            for page in self.client.get_paginator("scan").paginate(
                TableName=self.table,
                ProjectionExpression="#k, #s",
                ExpressionAttributeNames={"#k": KEY, "#s": "Status"},
            ):
                for item in page.get("Items", []):
                    if "Status" in item:
                        found[item[KEY]["S"]] = item["Status"]["S"]
        except Exception as err:
            # Only the archiving of deleted databases' findings waits for a sweep that can read.
            LOG.warning("guard table not read (%s); gone databases archived later", error_code(err))
            return {}
        return found


def _n(value: float) -> str:
    return f"{value:.3f}"


class Recheck(Protocol):
    def send(self, targets: list[Target], delay_s: int) -> None: ...


@dataclass
class SqsRecheck:
    client: Any
    url: str

    def send(self, targets: list[Target], delay_s: int) -> None:
        self.client.send_message(
            QueueUrl=self.url,
            MessageBody=json.dumps({MESSAGE_KEY: RECHECK, "targets": [list(t) for t in targets]}),
            DelaySeconds=max(0, min(SQS_MAX_DELAY_S, delay_s)),
        )


@dataclass
class Services:
    """Everything a run talks to; tests pass moto clients or the simulator's."""

    rds: Any  # get_paginator, modify_db_parameter_group, modify_db_cluster_parameter_group
    marks: Marks
    account: str
    region: str
    partition: str = "aws"
    recheck: Recheck | None = None
    hub: Any = None  # batch_import_findings
    metrics: Any = None  # put_metric_data
    topic: Any = None  # (client, arn): publish
    topic_arn: str = ""
    trails: Any = None  # cloudtrail: describe_trails, get_trail_status (checked by the sweep)
    remediate: bool = False
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


@dataclass
class Outcome:
    """What one run did: for the log, the tests and the benchmarks."""

    checked: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    findings: list[fmt.Finding] = field(default_factory=list)
    changed: list[tuple[str, str | None, str]] = field(default_factory=list)  # key, was, now
    remediated: list[str] = field(default_factory=list)
    imported: int = 0
    hub_calls: int = 0
    problems: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    memory: dict[str, Memory] = field(default_factory=dict)  # what the table kept, by key
    no_setting: set[str] = field(default_factory=set)  # keys with nothing to judge
    quiet: set[str] = field(default_factory=set)  # problems already announced (a condition)
    notices: list[str] = field(default_factory=list)  # conditions that changed, announced

    def status(self, key: str) -> str | None:
        return next((f.status for f in self.findings if f"{f.kind}:{f.name}" == key), None)


# ---- one run -----------------------------------------------------------------------------------
def run(event: Mapping[str, Any], svc: Services, *, now: float) -> Outcome:
    asked = requests_of(event)
    out = Outcome()
    if not asked.targets and not asked.sweep:
        return out
    wants_proxies = asked.sweep or any(k == KIND_PROXY for k, _ in asked.targets)
    try:
        fleet = list_fleet(svc.rds, proxies=wants_proxies)
    except ReadFailed as failed:
        _unlisted(failed, asked, svc, out, now)
        report(svc, out, now)
        return out
    keys, gone = _resolve(asked, fleet, svc)
    if asked.sweep:
        _trail(svc, out)
    for key in sorted(keys | gone):
        if asked.sweep or svc.marks.claim(key, now):
            out.checked.append(key)
        else:
            out.deferred.append(key)
    _queue_rechecks(svc, [k for k in out.deferred], now, out)
    checked = set(out.checked)
    groups = Groups(svc.rds)
    # A restart is evidence whether or not its database is checked in this run (one deferred
    # to a recheck keeps it too: the recheck message carries no event).
    for (kind, name), when in sorted(asked.restarts.items()):
        for key in _keys_of(kind, name, fleet):
            svc.marks.restarted(key, when)
    out.memory = {key: svc.marks.seen(key, now) for key in sorted(checked)}
    verdicts = [_verdict(key, fleet, groups) for key in sorted(checked - gone)]
    if svc.remediate:
        verdicts = [_remediated(v, fleet, svc, groups, out, now) for v in verdicts]
    for v in verdicts:
        if v is None:
            continue
        v = _owed(v, svc, out)
        if v.enforced is None and (
            v.state == STATE_NOT_APPLICABLE or v.source == SOURCE_ASSUMED_DEFAULT
        ):
            out.no_setting.add(v.key)
        out.findings.append(_finding(v, svc))
    for key in sorted((checked & gone) | {k for k in checked if _deleting(k, fleet)}):
        kind, name = key.split(":", 1)
        out.findings = [f for f in out.findings if f"{f.kind}:{f.name}" != key]
        out.findings.append(_gone(kind, name, svc))
    report(svc, out, now)
    return out


def _resolve(asked: Asked, fleet: Fleet, svc: Services) -> tuple[set[str], set[str]]:
    """The database keys the targets affect, and the keys of those no longer listed."""
    keys: set[str] = set()
    gone: set[str] = set()
    standalone = {str(i["DBInstanceIdentifier"]): i for i in fleet.standalone}
    proxies = fleet.proxies if isinstance(fleet.proxies, dict) else {}
    if asked.sweep:
        keys |= {f"{KIND_INSTANCE}:{n}" for n in standalone}
        keys |= {f"{KIND_CLUSTER}:{n}" for n in fleet.clusters}
        keys |= {f"{KIND_PROXY}:{n}" for n in proxies}
        for key, status in svc.marks.known().items():
            if key not in keys and status != fmt.GONE:
                kind = key.split(":", 1)[0]
                if kind != KIND_PROXY or isinstance(fleet.proxies, dict):
                    gone.add(key)
    for kind, name in asked.targets:
        if kind in (KIND_INSTANCE, KIND_CLUSTER, KIND_PROXY):
            found = _keys_of(kind, name, fleet)
            if found:
                keys |= found
            elif kind == KIND_PROXY and not isinstance(fleet.proxies, dict):
                keys.add(f"{KIND_PROXY}:{name}")  # not readable: reported as unjudged
            else:
                # RDS stores instance and cluster identifiers in lowercase; the gone key is
                # the one their findings were reported under.
                gone.add(f"{kind}:{name if kind == KIND_PROXY else name.lower()}")
        elif kind == DB_GROUP:
            keys |= {
                f"{KIND_INSTANCE}:{n}"
                for n, i in standalone.items()
                if any(
                    str(g.get("DBParameterGroupName", "")).lower() == name.lower()
                    for g in i.get("DBParameterGroups", [])
                )
            }
        elif kind == CLUSTER_GROUP:
            keys |= {
                f"{KIND_CLUSTER}:{n}"
                for n, c in fleet.clusters.items()
                if str(c.get("DBClusterParameterGroup", "")).lower() == name.lower()
            }
    return keys, gone - keys


def _listed(names: Iterable[str], name: str) -> str | None:
    """The listed spelling of ``name``: CloudTrail keeps what the caller typed (``MyDb``), RDS
    lists instance and cluster identifiers in lowercase, so names compare without case, as group
    names do. Proxy names too (whether RDS lowercases them is not documented): the listed
    spelling is kept."""
    wanted = name.lower()
    return next((n for n in names if n.lower() == wanted), None)


def _keys_of(kind: str, name: str, fleet: Fleet) -> set[str]:
    """The key a listed instance, cluster or proxy is judged under (a cluster member: its
    cluster's); empty when it is not listed."""
    if kind == KIND_INSTANCE:
        listed = _listed(fleet.instances, name)
        if listed is None:
            return set()
        cluster = fleet.instances[listed].get("DBClusterIdentifier")
        if cluster in fleet.clusters:
            return {f"{KIND_CLUSTER}:{cluster}"}  # a member: judged through its cluster
        return {f"{KIND_INSTANCE}:{listed}"}
    if kind == KIND_CLUSTER:
        listed = _listed(fleet.clusters, name)
        return {f"{KIND_CLUSTER}:{listed}"} if listed is not None else set()
    if kind == KIND_PROXY and isinstance(fleet.proxies, dict):
        listed = _listed(fleet.proxies, name)
        return {f"{KIND_PROXY}:{listed}"} if listed is not None else set()
    return set()


def _deleting(key: str, fleet: Fleet) -> bool:
    kind, name = key.split(":", 1)
    if kind == KIND_INSTANCE and name in fleet.instances:
        return fleet.instances[name].get("DBInstanceStatus") == "deleting"
    if kind == KIND_CLUSTER and name in fleet.clusters:
        return fleet.clusters[name].get("Status") == "deleting"
    return False


def _verdict(key: str, fleet: Fleet, groups: Groups) -> Verdict | None:
    kind, name = key.split(":", 1)
    if kind == KIND_INSTANCE:
        return instance_verdict(fleet.instances[name], groups=groups)
    if kind == KIND_CLUSTER:
        return cluster_verdict(fleet.clusters[name], groups=groups)
    if isinstance(fleet.proxies, dict):
        return proxy_verdict(fleet.proxies[name])
    assert isinstance(fleet.proxies, ReadFailed)
    return Verdict(
        kind=KIND_PROXY,
        name=name,
        arn=None,
        engine="",
        version="",
        group=None,
        parameter="RequireTLS",
        value=None,
        source="unknown",
        apply_status="unknown",
        state="unknown",
        enforced=None,
        control=None,
        reason=f"{fleet.proxies}; grant it to the guard's role to judge proxies",
    )


def _queue_rechecks(svc: Services, keys: list[str], now: float, out: Outcome) -> None:
    """One delayed recheck per database, if none is queued yet; one message per due second."""
    due: dict[int, list[Target]] = {}
    for key in keys:
        when = svc.marks.defer(key, now)
        if when is not None:
            kind, name = key.split(":", 1)
            due.setdefault(max(1, int(when - now + 0.999)), []).append((kind, name))
    for delay, targets in sorted(due.items()):
        if svc.recheck is None:
            continue
        for start in range(0, len(targets), 100):
            try:
                svc.recheck.send(targets[start : start + 100], delay)
            except Exception as err:
                out.problems.append(f"recheck not queued ({error_code(err) or err}); sweep")


def _unlisted(failed: ReadFailed, asked: Asked, svc: Services, out: Outcome, now: float) -> None:
    """The region could not be listed: throttled (one delayed recheck for what an event named;
    a recheck that is throttled again is left to the sweep, so throttling never loops), or
    denied (every database the events named gets an unjudged finding that names the fix)."""
    named = sorted(
        f"{kind}:{name}"
        for kind, name in asked.targets
        if kind in (KIND_INSTANCE, KIND_CLUSTER, KIND_PROXY)
    )
    if failed.transient:
        out.problems.append(f"{failed}; each database is looked at again once, then by the sweep")
        again = sorted(f"{kind}:{name}" for kind, name in asked.targets - asked.rechecks)
        for key in again:
            svc.marks.claim(key, now)
        _queue_rechecks(svc, again, now, out)
        return
    fix = f"grant {failed.action} to the guard's role (docs/guard.md, Permissions)"
    out.problems.append(f"{failed}: nothing could be judged; {fix}")
    if not named:  # a sweep: no finding to count it in
        out.kinds[UNJUDGED] += 1
    for key in named:
        kind, name = key.split(":", 1)
        out.findings.append(
            fmt.Finding(
                account=svc.account,
                region=svc.region,
                partition=svc.partition,
                kind=kind,
                name=name,
                status=fmt.UNKNOWN,
                state="unknown",
                detail=f"{failed}; the guard cannot judge it: {fix}",
            )
        )


def _finding(v: Verdict, svc: Services) -> fmt.Finding:
    status = {True: fmt.PASSED, False: fmt.FAILED, None: fmt.UNKNOWN}[v.enforced]
    detail = v.detail
    exempt = v.tags.get(EXEMPT_TAG)
    if exempt is not None and v.enforced is not True:
        detail += f"; exempted ({EXEMPT_TAG}={exempt}): the guard will not remediate it"
    return fmt.Finding(
        account=svc.account,
        region=svc.region,
        partition=svc.partition,
        kind=v.kind,
        name=v.name,
        status=status,
        state=v.state,
        detail=detail,
        engine=v.engine,
        control=v.control,
        # No arn: the Id is built from the name, as for a database that is gone and as
        # ``audit --format asff`` builds it. (A proxy's own ARN carries its resource id,
        # db-proxy:prx-..., which no longer shows once it is deleted.)
    )


def _gone(kind: str, name: str, svc: Services) -> fmt.Finding:
    return fmt.Finding(
        account=svc.account,
        region=svc.region,
        partition=svc.partition,
        kind=kind,
        name=name,
        status=fmt.GONE,
        state="deleted",
        detail=f"{kind} {name} is no longer listed by RDS (deleted or renamed)",
    )


def kind_of(finding: fmt.Finding, *, no_setting: bool = False) -> str | None:
    """The metric a finding counts in (None: enforced, or gone). ``no_setting``: the verdict
    found nothing to judge (a parameter RDS does not report), not a read that failed."""
    if finding.status == fmt.UNKNOWN:
        if no_setting or finding.state == STATE_NOT_APPLICABLE:
            return NOT_APPLICABLE
        return UNJUDGED
    if finding.status != fmt.FAILED:
        return None
    if finding.kind == KIND_PROXY:
        return PROXY_TLS_OFF if finding.state == STATE_NOT_CONFIGURED else NOT_IN_EFFECT
    if finding.state == STATE_NOT_CONFIGURED:
        return NOT_CONFIGURED
    if finding.state == STATE_UNSUPPORTED:
        return UNSUPPORTED
    return NOT_IN_EFFECT


# ---- remediation -------------------------------------------------------------------------------
def _users_of(group: str, *, cluster: bool, fleet: Fleet) -> list[Mapping[str, Any]]:
    if cluster:
        return [
            c
            for c in fleet.clusters.values()
            if str(c.get("DBClusterParameterGroup", "")).lower() == group.lower()
        ]
    return [
        i
        for i in fleet.instances.values()
        if any(
            str(g.get("DBParameterGroupName", "")).lower() == group.lower()
            for g in i.get("DBParameterGroups", [])
        )
    ]


def _remediated(
    v: Verdict | None, fleet: Fleet, svc: Services, groups: Groups, out: Outcome, now: float
) -> Verdict | None:
    """Set the SSL parameter back in the group of a database whose group turns it off; never
    for an exempted database (or a group an exempted one shares), never a default group, never
    a reboot: the verdict says the restart is owed."""
    if v is None or v.kind == KIND_PROXY or v.state != STATE_NOT_CONFIGURED or v.group is None:
        return v
    if v.source not in (SOURCE_EXPLICIT, SOURCE_REPORTED_DEFAULT, SOURCE_ASSUMED_DEFAULT):
        return v
    row = engine_table.lookup(v.engine)
    if row is None or row.parameter is None or row.value is None:
        return v
    cluster = v.kind == KIND_CLUSTER
    exempt = [
        str(u.get("DBClusterIdentifier" if cluster else "DBInstanceIdentifier"))
        for u in _users_of(v.group, cluster=cluster, fleet=fleet)
        if EXEMPT_TAG in tags_of(u)
    ]
    if exempt:
        return _noted(
            v, f"not remediated: group {v.group} is used by exempted {', '.join(sorted(exempt))}"
        )
    if v.group.lower().startswith("default."):
        return _noted(
            v,
            f"not remediated: {v.group} is a default group, which RDS does not let anyone "
            "modify; associate a group with the SSL parameter on",
        )
    method = apply_method(v.apply_type, row)
    parameters = [
        {"ParameterName": row.parameter, "ParameterValue": row.value, "ApplyMethod": method}
    ]
    try:
        if cluster:
            svc.rds.modify_db_cluster_parameter_group(
                DBClusterParameterGroupName=v.group, Parameters=parameters
            )
        else:
            svc.rds.modify_db_parameter_group(DBParameterGroupName=v.group, Parameters=parameters)
    except Exception as err:
        code = error_code(err) or type(err).__name__
        return _noted(v, f"remediation failed ({code}): the guard's role may lack the right")
    out.remediated.append(v.key)
    groups.forget(cluster=cluster, group=v.group)
    if method == "pending-reboot":
        # In effect only after a restart, which RDS's apply status may not show at once: kept,
        # so that a later in-sync without a restart is not taken for enforcement (``_owed``).
        svc.marks.remediation(v.key, at=now, method=method)
        out.memory[v.key] = replace(
            out.memory.get(v.key, Memory()), remediated_at=now, method=method, pending_seen=False
        )
    # Look again in a minute, so that the finding follows RDS as the value takes effect.
    _queue_rechecks(svc, [v.key], now, out)
    return _noted(
        v,
        f"remediated: set {row.parameter}={row.value} in {v.group} ({method}); where the engine "
        "needs a restart, it is owed and left to the database's reboot policy (the guard "
        "never reboots)",
    )


def apply_method(apply_type: str | None, row: engine_table.Engine) -> str:
    """ModifyDBParameterGroup's ApplyMethod: ``immediate`` for a dynamic parameter (as the group
    reports ApplyType, else as the engine table documents it), else ``pending-reboot`` (RDS
    refuses ``immediate`` for a static parameter; ``pending-reboot`` is safe for both)."""
    kind = (apply_type or row.apply_type or "").lower()
    return "immediate" if kind == "dynamic" else "pending-reboot"


def _owed(v: Verdict, svc: Services, out: Outcome) -> Verdict:
    """After a remediation that waits for a restart, RDS may still show ``in-sync`` (its status
    lags the change): the verdict stays FAILED, "remediated, restart owed", until a restart is
    evidenced: a RebootDB*/StartDB* call after the remediation, or pending-reboot seen and then
    cleared. What ends the claim is evidence, never a clock."""
    mem = out.memory.get(v.key)
    if mem is None or mem.remediated_at is None or mem.method != "pending-reboot":
        return v
    if v.kind == KIND_PROXY or v.state == STATE_NOT_CONFIGURED:
        return v  # turned off again (or remediated in this run): judged as it stands
    if mem.pending_seen and v.apply_status == "in-sync":
        svc.marks.remediation(v.key, at=None)
        out.memory[v.key] = replace(mem, remediated_at=None, method="", pending_seen=False)
        return v
    if v.apply_status == STATE_PENDING_REBOOT:
        if not mem.pending_seen:
            svc.marks.remediation(v.key, at=mem.remediated_at, method=mem.method, pending_seen=True)
            out.memory[v.key] = replace(mem, pending_seen=True)
        return v
    if v.enforced is not True:
        return v
    when = datetime.fromtimestamp(mem.remediated_at, UTC).isoformat(timespec="seconds")
    return replace(
        v,
        state=STATE_RESTART_OWED,
        enforced=False,
        note=f"remediated at {when} ({mem.method}); RDS shows {v.apply_status}, but no restart "
        "has been seen since, so the change is not known to be in effect: a restart is owed, "
        "left to the database's reboot policy (the guard never reboots)",
    )


def _noted(v: Verdict, note: str) -> Verdict:
    return replace(v, note=note)


# ---- reporting ---------------------------------------------------------------------------------
def report(svc: Services, out: Outcome, now: float) -> None:
    """Import the findings, then keep the status of each that Security Hub accepted: a refused
    or failed import is sent again by the next check (an archive by the next sweep), never
    taken as done."""
    moment = datetime.fromtimestamp(now, UTC)
    documents = []
    sent: dict[str, tuple[str, str, Memory]] = {}  # document Id -> key, status, memory
    for finding in out.findings:
        key = f"{finding.kind}:{finding.name}"
        mem = out.memory.get(key) or svc.marks.seen(key, now)
        if finding.status == fmt.GONE and mem.reported in (None, fmt.GONE):
            continue  # never in Security Hub (a cluster member, a typo), or archived already
        if mem.told != finding.status:
            out.changed.append((key, mem.told, finding.status))
        kind = kind_of(finding, no_setting=key in out.no_setting)
        if kind:
            out.kinds[kind] += 1
        first = datetime.fromtimestamp(mem.first if mem.first is not None else now, UTC)
        document = fmt.asff(finding, now=moment, first_seen=first)
        documents.append(document)
        sent[str(document["Id"])] = (key, finding.status, mem)
    accepted = _import(svc, documents, out)
    for doc_id, (key, status, mem) in sent.items():
        ok = accepted is None or doc_id in accepted
        reported = status if ok and mem.reported != status else None
        told = status if mem.told != status else None
        svc.marks.record(key, reported=reported, told=told)
    _metrics(svc, out)
    _notify(svc, out)
    LOG.info(
        json.dumps(
            {
                "checked": len(out.checked),
                "deferred": len(out.deferred),
                "changed": out.changed,
                "kinds": dict(out.kinds),
                "remediated": out.remediated,
                "problems": out.problems,
            },
            default=str,
        )
    )


def _import(svc: Services, documents: list[dict[str, Any]], out: Outcome) -> set[str] | None:
    """BatchImportFindings, 100 a call, at most HUB_CALLS_PER_S calls a second. The Ids Security
    Hub accepted (None: no Security Hub to report to). A batch whose answer does not add up
    (SuccessCount against FailedFindings) counts as not accepted: an import is idempotent by Id,
    so sending it again is harmless."""
    if svc.hub is None:
        return None
    accepted: set[str] = set()
    if not documents:
        return accepted
    failures: list[str] = []
    last: float | None = None
    for batch in fmt.batches(documents):
        if last is not None:
            wait = 1.0 / HUB_CALLS_PER_S - (svc.clock() - last)
            if wait > 0:
                svc.sleep(wait)
        last = svc.clock()
        out.hub_calls += 1
        try:
            answer = svc.hub.batch_import_findings(Findings=batch)
        except Exception as err:
            code = error_code(err) or type(err).__name__
            hint = "" if is_transient(err) else "; is Security Hub enabled in this region?"
            failures.append(
                f"securityhub:BatchImportFindings {code}{hint} (findings not accepted are sent "
                "again by the next check)"
            )
            break
        success = int(answer.get("SuccessCount", 0))
        refused = {
            str(f.get("Id")): str(f.get("ErrorCode")) for f in answer.get("FailedFindings", [])
        }
        out.imported += success
        ids = [str(d["Id"]) for d in batch]
        if success == len(ids) - len(refused.keys() & set(ids)):
            accepted |= {i for i in ids if i not in refused}
        for code in sorted(set(refused.values())):
            count = sum(c == code for c in refused.values())
            failures.append(f"Security Hub refused {count} finding(s): {code}")
    _condition(svc, out, "securityhub", "; ".join(failures))
    return accepted


def _condition(svc: Services, out: Outcome, name: str, problem: str) -> None:
    """An account-wide condition (Security Hub not accepting, no CloudTrail trail): a problem on
    every run it lasts (the log), announced once when it starts, changes or ends."""
    before = svc.marks.condition(name, problem)
    if problem:
        out.problems.append(problem)
        if before == problem:
            out.quiet.add(problem)
    elif before:
        out.notices.append(f"resolved: {before}")


def _trail(svc: Services, out: Outcome) -> None:
    """Does a CloudTrail trail with logging on cover this region? Without one, EventBridge gets
    no "AWS API Call via CloudTrail" event, and only the sweep sees changes."""
    if svc.trails is None:
        return
    problem = trail_problem(svc.trails, svc.region)
    out.kinds[NO_TRAIL] += 1 if problem else 0
    _condition(svc, out, "cloudtrail", problem)


def trail_problem(trails: Any, region: str) -> str:
    """ "" when a trail that logs covers ``region``, else what is wrong and what to do."""
    fallback = "changes are seen by the sweep only; see docs/guard.md, Prerequisite"
    try:
        listed = trails.describe_trails(includeShadowTrails=True).get("trailList", [])
    except Exception as err:
        code = error_code(err) or err
        return f"cloudtrail:DescribeTrails {code}: cannot tell whether a trail logs; {fallback}"
    covering = [t for t in listed if t.get("IsMultiRegionTrail") or t.get("HomeRegion") == region]
    unread = []
    for trail in covering:
        name = str(trail.get("TrailARN") or trail.get("Name"))
        try:
            if trails.get_trail_status(Name=name).get("IsLogging") is True:
                return ""
        except Exception as err:
            unread.append(f"{name} ({error_code(err) or err})")
    if unread:
        failed = ", ".join(unread)
        return f"cloudtrail:GetTrailStatus failed for {failed}: cannot tell it logs; {fallback}"
    return (
        f"no CloudTrail trail with logging on covers {region}: RDS API calls do not reach "
        f"EventBridge; {fallback}"
    )


def _metrics(svc: Services, out: Outcome) -> None:
    if svc.metrics is None:
        return
    data = [{"MetricName": k, "Value": float(out.kinds[k]), "Unit": "Count"} for k in KINDS]
    data.append(
        {
            "MetricName": NOT_ENFORCED,
            "Value": float(sum(out.kinds[k] for k in ENFORCEMENT)),
            "Unit": "Count",
        }
    )
    if NO_TRAIL in out.kinds:  # only a sweep that looked
        data.append({"MetricName": NO_TRAIL, "Value": float(out.kinds[NO_TRAIL]), "Unit": "Count"})
    try:
        svc.metrics.put_metric_data(Namespace=NAMESPACE, MetricData=data)
    except Exception as err:
        out.problems.append(f"cloudwatch:PutMetricData {error_code(err) or err}")


def _notify(svc: Services, out: Outcome) -> None:
    """One SNS message a run, when a status changed, something could not be judged, or an
    account-wide condition started, changed or ended (a lasting one is announced once)."""
    loud = [p for p in out.problems if p not in out.quiet]
    if svc.topic is None or not (out.changed or loud or out.notices):
        return
    failing = [k for k, _, now in out.changed if now == fmt.FAILED]
    subject = f"rds-force-ssl guard: {len(failing)} newly not enforced, {len(out.changed)} changed"
    lines = [f"{key}: {was or 'new'} -> {now}" for key, was, now in out.changed]
    lines += [f"problem: {p}" for p in loud]
    lines += out.notices
    details = {f"{f.kind}:{f.name}": f.detail for f in out.findings}
    lines += [f"{key}: {details[key]}" for key in failing if key in details]
    try:
        svc.topic.publish(TopicArn=svc.topic_arn, Subject=subject[:100], Message="\n".join(lines))
    except Exception as err:
        out.problems.append(f"sns:Publish {error_code(err) or err}")


# ---- Lambda ------------------------------------------------------------------------------------
_SERVICES: Services | None = None


def lambda_services() -> Services:
    global _SERVICES
    if _SERVICES is None:
        import boto3
        from botocore.config import Config

        config = Config(retries={"mode": "standard", "max_attempts": 8})
        session = boto3.session.Session()
        topic = os.environ.get(ENV_TOPIC, "")
        _SERVICES = Services(
            rds=session.client("rds", config=config),
            marks=DynamoMarks(session.client("dynamodb", config=config), os.environ[ENV_TABLE]),
            account=os.environ[ENV_ACCOUNT],
            region=os.environ["AWS_REGION"],
            partition=os.environ.get(ENV_PARTITION, "aws"),
            recheck=SqsRecheck(session.client("sqs", config=config), os.environ[ENV_QUEUE]),
            hub=session.client("securityhub", config=config),
            metrics=session.client("cloudwatch", config=config),
            topic=session.client("sns", config=config) if topic else None,
            topic_arn=topic,
            trails=session.client("cloudtrail", config=config),
            remediate=os.environ.get(ENV_REMEDIATE) == "true",
        )
    return _SERVICES


def handler(event: dict[str, Any], _context: object) -> dict[str, Any]:
    out = run(event, lambda_services(), now=time.time())
    return {"checked": len(out.checked), "deferred": len(out.deferred), "problems": out.problems}
