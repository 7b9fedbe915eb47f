"""Reboot reconciler behind ``Custom::RdsForceSslReboot`` (CDK Provider framework).

``on_event`` checks that the database exists and records what it saw and when; ``is_complete``
is polled by the provider until it answers done. Each poll reads the database, decides from what
it sees and acts at most once; it never sleeps. A reboot is only ever issued for something that
is ``available`` and ``pending-reboot``, and what it reboots is tagged with the CloudFormation
request it was rebooted for (``REBOOT_TAG``): that tag is the only memory between polls, so a
repeated poll or a repeated delivery of the same request never reboots a database twice, even
if RDS were slow to report ``in-sync`` after the restart.

Facts this rests on (AWS docs):
- https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_WorkingWithParamGroups.html
  (a newly associated group is ``pending-reboot`` until a reboot; RDS never reboots by itself)
- https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RebootDBInstance.html
  (``InvalidDBInstanceState`` unless ``available``; ``ForceFailover`` only for Multi-AZ)
- https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_RebootCluster.html
  (older Aurora PostgreSQL restarts the readers with the writer)

Lambda code: stdlib and boto3 only, no CDK.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol, cast

# Names shared with the construct (rds_force_ssl.reboot imports them from here).
RESOURCE_TYPE = "Custom::RdsForceSslReboot"
PROP_KIND = "Kind"
PROP_IDENTIFIER = "Identifier"
PROP_PARAMETER_GROUP = "ParameterGroupName"
PROP_PARAMETERS = "Parameters"
PROP_FORCE_FAILOVER = "ForceFailover"
PROP_GIVE_UP_AFTER = "GiveUpAfterSeconds"
# Set on whatever this resource rebooted, to the CloudFormation RequestId it rebooted for. It is
# the reconciler's only memory: a repeated poll or a repeated delivery of the same request sees
# it and never reboots the same database twice for one request, even if RDS were slow to report
# in-sync after the restart.
REBOOT_TAG = "rds-force-ssl:rebooted-for"
KIND_INSTANCE = "instance"
KIND_CLUSTER = "cluster"

OUTCOME_IN_SYNC = "in-sync"
OUTCOME_STOPPED = "stopped-applies-at-next-start"

# Statuses that waiting will not cure; anything else that is not available is transient.
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/accessing-monitoring.html
FAILED_STATUSES = frozenset(
    {
        "deleting",
        "failed",
        "inaccessible-encryption-credentials",
        "inaccessible-encryption-credentials-recoverable",
        "incompatible-network",
        "incompatible-option-group",
        "incompatible-parameters",
        "incompatible-restore",
        "insufficient-capacity",
        "restore-error",
        "storage-full",
    }
)

LOG = logging.getLogger("rds_force_ssl.reboot")
LOG.setLevel(logging.INFO)


class ReconcileError(RuntimeError):
    """A state that polling will not fix; the provider reports it as FAILED."""


class RdsApi(Protocol):
    """The slice of the boto3 RDS client the reconciler uses."""

    def describe_db_instances(self, **kwargs: Any) -> Any: ...
    def describe_db_clusters(self, **kwargs: Any) -> Any: ...
    def add_tags_to_resource(self, **kwargs: Any) -> Any: ...
    def reboot_db_instance(self, **kwargs: Any) -> Any: ...
    def reboot_db_cluster(self, **kwargs: Any) -> Any: ...


class Action(Enum):
    DONE = "done"
    WAIT = "wait"
    REBOOT_INSTANCE = "reboot-instance"
    REBOOT_CLUSTER = "reboot-cluster"


@dataclass(frozen=True)
class Target:
    kind: str
    identifier: str
    parameter_group: str
    force_failover: bool

    @classmethod
    def from_properties(cls, props: Mapping[str, Any]) -> Target:
        missing = [
            k for k in (PROP_KIND, PROP_IDENTIFIER, PROP_PARAMETER_GROUP) if not props.get(k)
        ]
        if missing:
            raise ReconcileError(f"resource properties lack {', '.join(missing)}")
        kind = str(props[PROP_KIND])
        if kind not in (KIND_INSTANCE, KIND_CLUSTER):
            raise ReconcileError(f"unknown {PROP_KIND} {kind!r}")
        return cls(
            kind=kind,
            identifier=str(props[PROP_IDENTIFIER]),
            parameter_group=str(props[PROP_PARAMETER_GROUP]),
            force_failover=str(props.get(PROP_FORCE_FAILOVER, "false")).lower() == "true",
        )

    @property
    def physical_id(self) -> str:
        return f"rds-force-ssl:{self.kind}:{self.identifier}"


@dataclass(frozen=True)
class Decision:
    action: Action
    state: str
    reboot_id: str = ""
    failover: bool = False
    outcome: str = ""


class Gone(ReconcileError):
    pass


def _error_code(err: Exception) -> str:
    response = getattr(err, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


_INSTANCE_NOT_FOUND = ("DBInstanceNotFound", "DBInstanceNotFoundFault")
_CLUSTER_NOT_FOUND = ("DBClusterNotFoundFault", "DBClusterNotFound")
_ACCESS_DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation")
_INVALID_STATE = (
    "InvalidDBInstanceState",
    "InvalidDBInstanceStateFault",
    "InvalidDBClusterStateFault",
)


def _denied(identifier: str, err: Exception) -> ReconcileError:
    return ReconcileError(
        f"not allowed to read or reboot DB instance {identifier} ({_error_code(err)}): IAM "
        "names only the databases declared in the app, and this one is not (an Aurora reader "
        "added by autoscaling or by hand?). Declare it in the cluster, or remove it, then "
        "deploy again."
    )


def describe_instance(rds: RdsApi, identifier: str) -> dict[str, Any]:
    try:
        found = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
    except Exception as err:
        if _error_code(err) in _ACCESS_DENIED:
            raise _denied(identifier, err) from err
        if _error_code(err) in _INSTANCE_NOT_FOUND:
            raise Gone(
                f"DB instance {identifier} does not exist; it was deleted or renamed outside this "
                "stack. Restore it, or remove the ForceSsl construct for it."
            ) from err
        raise
    return dict(found[0])


def describe_cluster(rds: RdsApi, identifier: str) -> dict[str, Any]:
    try:
        found = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"]
    except Exception as err:
        if _error_code(err) in _CLUSTER_NOT_FOUND:
            raise Gone(
                f"DB cluster {identifier} does not exist; it was deleted or renamed outside this "
                "stack. Restore it, or remove the ForceSsl construct for it."
            ) from err
        raise
    return dict(found[0])


def _apply_status(instance: Mapping[str, Any], group: str) -> str | None:
    for g in instance.get("DBParameterGroups", []):
        # RDS stores group names in lower case; a template may spell them otherwise.
        if str(g.get("DBParameterGroupName", "")).lower() == group.lower():
            return str(g.get("ParameterApplyStatus", ""))
    return None


def decide_instance(instance: Mapping[str, Any], target: Target) -> Decision:
    """What to do next for a DB instance, from one DescribeDBInstances record."""
    ident = target.identifier
    status = str(instance["DBInstanceStatus"])
    apply = _apply_status(instance, target.parameter_group)
    state = f"{status}/{apply or 'group-not-attached'}"
    if status == "stopped":
        return Decision(Action.DONE, state, outcome=OUTCOME_STOPPED)
    if status in FAILED_STATUSES:
        raise ReconcileError(
            f"DB instance {ident} is {status}; fix the instance in the RDS console, then "
            "deploy again."
        )
    if status != "available":
        return Decision(Action.WAIT, state)
    if apply is None:
        attached = [g.get("DBParameterGroupName") for g in instance.get("DBParameterGroups", [])]
        raise ReconcileError(
            f"DB instance {ident} uses parameter group(s) {attached}, not "
            f"{target.parameter_group}; someone changed it outside this stack. Deploy again to "
            "re-associate it."
        )
    if apply == "in-sync":
        return Decision(Action.DONE, state, outcome=OUTCOME_IN_SYNC)
    if apply == "applying":
        return Decision(Action.WAIT, state)
    if apply == "pending-reboot":
        failover = target.force_failover and bool(instance.get("MultiAZ"))
        return Decision(Action.REBOOT_INSTANCE, state, reboot_id=ident, failover=failover)
    if apply == "failed-to-apply":
        raise ReconcileError(
            f"DB instance {ident}: parameter group {target.parameter_group} is failed-to-apply; "
            "check the group's values against the engine (RDS events name the parameter), fix "
            "them and deploy again."
        )
    raise ReconcileError(
        f"DB instance {ident}: parameter group {target.parameter_group} is {apply}; this needs "
        "an action outside this stack (for pending-database-upgrade, apply the pending engine "
        "upgrade), then deploy again."
    )


_VERSION = re.compile(r"^(\d+)(?:\.(\d+))?")


def writer_reboot_restarts_readers(engine_version: str) -> bool:
    """True for Aurora PostgreSQL before 14.7, 13.10 and 12.14 (and all 11.x and older).

    https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-reboot-db-instance.html
    """
    m = _VERSION.match(engine_version)
    if not m:
        return False
    major, minor = int(m.group(1)), int(m.group(2) or 0)
    floors = {12: 14, 13: 10, 14: 7}
    if major <= 11:
        return True
    return major in floors and minor < floors[major]


def decide_cluster(
    cluster: Mapping[str, Any],
    members: Mapping[str, Mapping[str, Any] | None],
    target: Target,
) -> Decision:
    """What to do next for a cluster, from DescribeDBClusters and each member's description.

    ``members`` maps each listed member to its DescribeDBInstances record, or None when the
    member was deleted since the cluster was read. Members are rebooted one at a time, readers
    first, and never while any member is not available.
    """
    ident = target.identifier
    status = str(cluster["Status"])
    group = cluster.get("DBClusterParameterGroup")
    aurora = str(cluster.get("Engine", "")).startswith("aurora")
    listed = {m["DBInstanceIdentifier"]: m for m in cluster.get("DBClusterMembers", [])}
    if aurora:
        present = {i: listed[i] for i, inst in members.items() if inst is not None and i in listed}
    else:
        # A Multi-AZ DB cluster: RDS manages the members; the cluster status covers them.
        present = listed
    member_state = ",".join(
        f"{i}:{_member_status(members, i)}/{m.get('DBClusterParameterGroupStatus')}"
        for i, m in sorted(present.items())
    )
    state = f"{status}/{group} [{member_state}]"
    if status == "stopped":
        return Decision(Action.DONE, state, outcome=OUTCOME_STOPPED)
    if status in FAILED_STATUSES:
        raise ReconcileError(
            f"DB cluster {ident} is {status}; fix the cluster in the RDS console, then deploy "
            "again."
        )
    if status != "available":
        return Decision(Action.WAIT, state)
    if str(group).lower() != target.parameter_group.lower():
        raise ReconcileError(
            f"DB cluster {ident} uses cluster parameter group {group}, not "
            f"{target.parameter_group}; someone changed it outside this stack. Deploy again to "
            "re-associate it."
        )
    broken = sorted(i for i in present if _member_status(members, i) in FAILED_STATUSES)
    if broken:
        raise ReconcileError(
            f"DB cluster {ident}: member(s) "
            + ", ".join(f"{i} ({_member_status(members, i)})" for i in broken)
            + " cannot be rebooted; fix them in the RDS console, then deploy again."
        )
    if any(_member_status(members, i) not in ("available", "-") for i in present):
        return Decision(Action.WAIT, state)
    applies = {i: str(m.get("DBClusterParameterGroupStatus", "")) for i, m in present.items()}
    failed = sorted(i for i, a in applies.items() if a == "failed-to-apply")
    if failed:
        raise ReconcileError(
            f"DB cluster {ident}: cluster parameter group {group} is failed-to-apply on "
            f"{', '.join(failed)}; fix the group's values (RDS events name the parameter) and "
            "deploy again."
        )
    if any(a == "applying" for a in applies.values()):
        return Decision(Action.WAIT, state)
    unknown = sorted(
        f"{i}={a}" for i, a in applies.items() if a not in ("in-sync", "pending-reboot")
    )
    if unknown:
        raise ReconcileError(
            f"DB cluster {ident}: members report {', '.join(unknown)}; this needs an action "
            "outside this stack, then deploy again."
        )
    pending = sorted(i for i, a in applies.items() if a == "pending-reboot")
    if not pending:
        return Decision(Action.DONE, state, outcome=OUTCOME_IN_SYNC)
    if not aurora:
        # A Multi-AZ DB cluster reboots as a whole.
        return Decision(Action.REBOOT_CLUSTER, state, reboot_id=ident)
    writers = [i for i in pending if present[i].get("IsClusterWriter")]
    readers = [i for i in pending if not present[i].get("IsClusterWriter")]
    if writers and writer_reboot_restarts_readers(str(cluster.get("EngineVersion", ""))):
        # One writer reboot restarts every reader too; separate reader reboots would double
        # the downtime.
        return Decision(Action.REBOOT_INSTANCE, state, reboot_id=writers[0])
    return Decision(Action.REBOOT_INSTANCE, state, reboot_id=(readers or writers)[0])


def _member_status(members: Mapping[str, Mapping[str, Any] | None], ident: str) -> str:
    inst = members.get(ident)
    return str(inst["DBInstanceStatus"]) if inst is not None else "-"


@dataclass(frozen=True)
class Observation:
    decision: Decision
    # identifier -> (ARN, tags) of everything read, for the reboot marker
    seen: dict[str, tuple[str, dict[str, str]]]

    def rebooted_for(self, request_id: str) -> list[str]:
        return sorted(i for i, (_, tags) in self.seen.items() if tags.get(REBOOT_TAG) == request_id)


def _arn_and_tags(record: Mapping[str, Any], arn_key: str) -> tuple[str, dict[str, str]]:
    tags = {str(t.get("Key")): str(t.get("Value")) for t in record.get("TagList") or []}
    return str(record.get(arn_key, "")), tags


def observe(rds: RdsApi, target: Target) -> Observation:
    """Read the target and decide, without acting."""
    if target.kind == KIND_INSTANCE:
        instance = describe_instance(rds, target.identifier)
        seen = {target.identifier: _arn_and_tags(instance, "DBInstanceArn")}
        return Observation(decide_instance(instance, target), seen)
    cluster = describe_cluster(rds, target.identifier)
    seen = {target.identifier: _arn_and_tags(cluster, "DBClusterArn")}
    members: dict[str, Mapping[str, Any] | None] = {}
    aurora = str(cluster.get("Engine", "")).startswith("aurora")
    if aurora and cluster.get("Status") == "available":
        for m in cluster.get("DBClusterMembers", []):
            ident = m["DBInstanceIdentifier"]
            try:
                members[ident] = describe_instance(rds, ident)
                seen[ident] = _arn_and_tags(members[ident] or {}, "DBInstanceArn")
            except Gone:
                members[ident] = None  # deleted mid-rollout: nothing left to reboot
    return Observation(decide_cluster(cluster, members, target), seen)


def act(rds: RdsApi, seen: Observation, request_id: str) -> str:
    """Carry out a reboot decision at most once per request; return what happened, for the log."""
    decision = seen.decision
    if decision.action not in (Action.REBOOT_INSTANCE, Action.REBOOT_CLUSTER):
        return str(decision.action.value)
    if decision.reboot_id in seen.rebooted_for(request_id):
        return f"{decision.reboot_id} was rebooted for this request already; waiting for in-sync"
    try:
        if decision.action is Action.REBOOT_CLUSTER:
            rds.reboot_db_cluster(DBClusterIdentifier=decision.reboot_id)
        else:
            kwargs: dict[str, Any] = {"DBInstanceIdentifier": decision.reboot_id}
            if decision.failover:
                kwargs["ForceFailover"] = True
            rds.reboot_db_instance(**kwargs)
        # Only after RDS accepted the reboot: the tag records a reboot that happened.
        arn = seen.seen[decision.reboot_id][0]
        rds.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": REBOOT_TAG, "Value": request_id}])
    except Exception as err:
        code = _error_code(err)
        # Someone else changed the database between our read and the reboot (or a member was
        # deleted): look again next poll rather than fail.
        if code in _INVALID_STATE or code in _INSTANCE_NOT_FOUND:
            return f"reboot of {decision.reboot_id} refused ({code}); will look again"
        if code in _ACCESS_DENIED:
            raise _denied(decision.reboot_id, err) from err
        raise
    return f"rebooted {decision.reboot_id}" + (" with failover" if decision.failover else "")


def _log(**fields: Any) -> None:
    LOG.info(json.dumps(fields, sort_keys=True, default=str))


def handle_on_event(
    event: Mapping[str, Any], rds: RdsApi, *, now: float | None = None
) -> dict[str, Any]:
    request = event["RequestType"]
    if request == "Delete":
        # Nothing to undo: the database keeps its enforcement with or without this resource.
        _log(request=request, physical_id=event.get("PhysicalResourceId"), action="none")
        return {"PhysicalResourceId": event["PhysicalResourceId"]}
    target = Target.from_properties(event["ResourceProperties"])
    decision = observe(rds, target).decision
    _log(request=request, target=target.physical_id, state=decision.state, action="poll")
    started = time.time() if now is None else now
    return {
        "PhysicalResourceId": target.physical_id,
        "Data": {"StateAtStart": decision.state, "StartedAt": str(int(started))},
    }


def handle_is_complete(
    event: Mapping[str, Any], rds: RdsApi, *, now: float | None = None
) -> dict[str, Any]:
    request = event["RequestType"]
    if request == "Delete":
        return {"IsComplete": True}
    target = Target.from_properties(event["ResourceProperties"])
    request_id = str(event.get("RequestId", ""))
    seen = observe(rds, target)
    decision = seen.decision
    done = act(rds, seen, request_id)
    _log(request=request, target=target.physical_id, state=decision.state, action=done)
    if decision.action is not Action.DONE:
        _give_up_if_late(event, decision, time.time() if now is None else now)
        return {"IsComplete": False}
    rebooted = seen.rebooted_for(request_id)
    return {
        "IsComplete": True,
        "Data": {
            "Outcome": decision.outcome,
            "State": decision.state,
            "Rebooted": "true" if rebooted else "false",
            "RebootedMembers": ",".join(i for i in rebooted if i != target.identifier),
        },
    }


def _give_up_if_late(event: Mapping[str, Any], decision: Decision, now: float) -> None:
    """Fail with the last state seen shortly before the provider's own timeout would fail with
    a bare "Operation timed out"."""
    give_up = event["ResourceProperties"].get(PROP_GIVE_UP_AFTER)
    started = event.get("Data", {}).get("StartedAt")
    if give_up is None or started is None:
        return
    waited = now - float(started)
    if waited >= float(give_up):
        raise ReconcileError(
            f"gave up after {int(waited)}s: still {decision.state}. Nothing has failed, but "
            "the database did not settle in time; look at its RDS events, then deploy again "
            "(or raise total_timeout)."
        )


_CLIENT: RdsApi | None = None


def _rds() -> RdsApi:
    global _CLIENT
    if _CLIENT is None:
        import boto3
        from botocore.config import Config

        # Throttling is retried by botocore's standard mode, never by sleeping here.
        _CLIENT = cast(
            RdsApi,
            boto3.client("rds", config=Config(retries={"mode": "standard", "max_attempts": 8})),
        )
    return _CLIENT


def on_event(event: dict[str, Any], _context: object) -> dict[str, Any]:
    return handle_on_event(event, _rds())


def is_complete(event: dict[str, Any], _context: object) -> dict[str, Any]:
    return handle_is_complete(event, _rds())
