"""Reboot reconciler behind ``Custom::RdsForceSslReboot`` (CDK Provider framework).

``on_event`` records when the request started and what the database looked like; ``is_complete``
is polled by the provider until it answers done. Each poll (``look``) reads RDS (``observe``)
and the stack's memory (``memory``), writes onto each claim what RDS shows of it (``witness``),
decides (``decide``) and acts at most once: it claims and reboots one node, or waits, or
finishes, or fails with a message a person can act on. It never sleeps.

The rules (docs/reboot.md, "When does a reboot happen?"):
- never done on a lagging ``in-sync``: a request that changed what ForceSsl owns is not done
  before RDS has had ``SETTLE_S`` to show the change (ModifyDBParameterGroup API reference);
- a reboot only where RDS says one is owed (``pending-reboot``, or a repair of
  ``incompatible-parameters`` / ``failed-to-apply`` with a changed group), one node at a time,
  and only after the memory holds this poller's claim on it;
- a claim holds until RDS shows the restart over (a look sees it restarting, then up; or its
  events), never for a fixed time; a memory that cannot be read or written holds reboots back;
- a pending-reboot that outlasts this request's own restart (and ``SETTLE_S`` for RDS to catch
  up) fails the request: no second reboot for one change;
- throttling, 5xx, and AccessDenied while IAM may still be propagating mean "look again".

Lambda code: stdlib and boto3 only, no CDK.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..facts.contract import (
    ATTR_REBOOT_OWED_SINCE,
    KIND_CLUSTER,
    KIND_INSTANCE,
    PROP_AUTOSCALED_READERS,
    PROP_ENFORCED,
    PROP_FORCE_FAILOVER,
    PROP_GIVE_UP_AFTER,
    PROP_IDENTIFIER,
    PROP_KIND,
    PROP_MEMBERS,
    PROP_OTHER_PARAMETERS,
    PROP_PARAMETER_GROUP,
    PROP_PARAMETERS,
    PROP_REBOOT,
)
from ..facts.policy import OUTCOME_IN_SYNC, OUTCOME_REBOOT_SCHEDULED, Reboot
from .decide import (
    KIND_MULTI_AZ_CLUSTER,
    Decision,
    Node,
    Request,
    Seen,
    Verb,
    decide,
    witnessed,
)
from .memory import OBSERVED, Claim, Memory, asked_at, key, proof_key
from .memory import Proof as Proof
from .observe import (
    Denied,
    Gone,
    RdsApi,
    Target,
    Transient,
    error_code,
    is_not_found,
    is_transient,
    needs_restarts,
    observe,
    with_restarts,
)
from .observe import ReconcileError as ReconcileError

if TYPE_CHECKING:
    # Type stubs only (boto3-stubs[rds]): never imported at run time, and not in the Lambda.
    from mypy_boto3_rds.type_defs import RebootDBInstanceMessageTypeDef

# IAM applies a policy change "eventually"; a stack that has just granted the reconciler its
# permissions may see AccessDenied for a while. It is retried for this long after the request
# started, then reported. (IAM user guide, "Changes that I make are not always immediately
# visible"; AWS gives no bound, this one is ours.)
# https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency
IAM_GRACE_S = 300

_INVALID_STATE = {
    "InvalidDBInstanceState",
    "InvalidDBInstanceStateFault",
    "InvalidDBClusterStateFault",
}

LOG = logging.getLogger("rds_force_ssl.reboot")
LOG.setLevel(logging.INFO)


def physical_id(kind: str, identifier: str) -> str:
    return f"rds-force-ssl:{kind}:{identifier}"


def _changes(
    props: Mapping[str, Any], old: Mapping[str, Any] | None
) -> tuple[frozenset[str], bool]:
    """What this request changes: the owned parameters whose value differs from the previous
    request's, and whether anything in the group (or the group, or the database) changed.

    A Create, a new database or a new group changes everything: what the database ran before is
    not known."""
    enforced = dict(props[PROP_ENFORCED])
    if old is None or any(
        str(old.get(key, "")).lower() != str(props.get(key, "")).lower()
        for key in (PROP_KIND, PROP_IDENTIFIER, PROP_PARAMETER_GROUP)
    ):
        return frozenset(enforced), True
    before = old.get(PROP_ENFORCED) or {}
    changed = frozenset(k for k, v in enforced.items() if str(before.get(k)) != str(v))
    return changed, bool(changed) or old.get(PROP_PARAMETERS) != props.get(PROP_PARAMETERS)


def parse(event: Mapping[str, Any], now: float) -> Target:
    """The target and the request, from a CloudFormation event (after on_event, with its Data)."""
    props = event["ResourceProperties"]
    missing = [
        k
        for k in (PROP_KIND, PROP_IDENTIFIER, PROP_PARAMETER_GROUP, PROP_ENFORCED)
        if not props.get(k)
    ]
    if missing:
        raise ReconcileError(f"resource properties lack {', '.join(missing)}")
    kind = str(props[PROP_KIND])
    if kind not in (KIND_INSTANCE, KIND_CLUSTER):
        raise ReconcileError(f"unknown {PROP_KIND} {kind!r}")
    if not isinstance(props[PROP_ENFORCED], Mapping):
        raise ReconcileError(f"{PROP_ENFORCED} must be a map of parameter name to value")
    old = event.get("OldResourceProperties") if event.get("RequestType") == "Update" else None
    changed, group_changed = _changes(props, old)
    policy = _policy(props)
    started = event.get("Data", {}).get("StartedAt")
    request = Request(
        kind=kind,
        ident=str(props[PROP_IDENTIFIER]),
        group=str(props[PROP_PARAMETER_GROUP]),
        enforced={str(k): str(v) for k, v in props[PROP_ENFORCED].items()},
        started_at=now if started is None else float(started),
        changed=changed,
        group_changed=group_changed,
        force_failover=str(props.get(PROP_FORCE_FAILOVER, "false")).lower() == "true",
        reboot=policy,
        others=str(props.get(PROP_OTHER_PARAMETERS, "false")).lower() == "true",
    )
    return Target(
        request=request,
        members=frozenset(str(m) for m in props.get(PROP_MEMBERS) or []),
        autoscaled_readers=str(props.get(PROP_AUTOSCALED_READERS, "false")).lower() == "true",
    )


def _policy(props: Mapping[str, Any]) -> Reboot:
    value = str(props.get(PROP_REBOOT, Reboot.IMMEDIATE.value))
    try:
        return Reboot(value)
    except ValueError:
        raise ReconcileError(
            f"unknown {PROP_REBOOT} {value!r}; one of {', '.join(r.value for r in Reboot)}"
        ) from None


def node_key(seen: Seen, node: Node) -> str:
    """The memory's key for a node: a Multi-AZ DB cluster is rebooted, and remembered, whole."""
    if seen.kind == KIND_MULTI_AZ_CLUSTER:
        return key(seen.ident, cluster=True)
    return key(node.ident, cluster=False)


def _with_claims(seen: Seen, claims: Mapping[str, Claim | None], unread: str) -> Seen:
    return replace(
        seen,
        nodes=tuple(
            replace(n, restarts=replace(n.restarts, claim=claims.get(n.ident), unread=unread))
            for n in seen.nodes
        ),
    )


def recall(memory: Memory, seen: Seen, req: Request) -> tuple[Seen, Request, str]:
    """``seen`` with each node's claim, ``req`` proven if the memory holds a proof that its
    parameters were in effect, and what went wrong reading the memory ("" if nothing: a node
    whose claim could not be read counts as restarting)."""
    keys = {n.ident: node_key(seen, n) for n in seen.nodes}
    proof = proof_key(req.kind, req.ident)
    got = memory.recall([*keys.values(), proof])
    found = got.proofs.get(proof)
    proven = (
        found is not None
        and found.group == req.group.lower()
        and dict(found.enforced) == dict(req.enforced)
    )
    claims = {ident: got.claims.get(k) for ident, k in keys.items()}
    return _with_claims(seen, claims, got.problem), replace(req, proven=proven), got.problem


def witness(memory: Memory, seen: Seen, now: float) -> tuple[Seen, str]:
    """``seen`` with what this look shows of each node's claim (restarting, restarted), written
    to the memory; and what went wrong writing it ("" if nothing: the next look tries again)."""
    claims: dict[str, Claim | None] = {}
    problems = []
    for n in seen.nodes:
        was = n.restarts.claim
        status = seen.status if seen.kind == KIND_MULTI_AZ_CLUSTER else n.status
        if was is None and status == "rebooting" and not n.restarts.unread:
            # A restart nobody here asked for: hold it like a claim until it is seen over.
            ours, problem = memory.claim(node_key(seen, n), now, OBSERVED, restarting=True)
            if ours:
                claims[n.ident] = Claim(asked=asked_at(now), by=OBSERVED, restarting=asked_at(now))
            elif problem:
                problems.append(f"{n.ident}: {problem}")
            continue
        now_claim = was if was is None else witnessed(was, n.restarts, status, now)
        if was is not None and now_claim is not None and now_claim != was:
            problem = memory.record(node_key(seen, n), was, now_claim)
            if problem:
                problems.append(f"{n.ident}: {problem}")
        claims[n.ident] = now_claim
    unread = next((n.restarts.unread for n in seen.nodes), "")
    return _with_claims(seen, claims, unread), "; ".join(problems)


def look(
    rds: RdsApi, memory: Memory, target: Target, req: Request, now: float
) -> tuple[Seen, Request, Decision, str]:
    """One look: read RDS and the memory, note what RDS shows of each claim, and decide. RDS's
    events are read where a decision rests on them: a reboot (or a failure) is in view, or a
    claim is open while the node looks up (its events may be what shows the restart over)."""
    seen = observe(rds, target)
    seen, req, recalled = recall(memory, seen, req)
    seen, noted = witness(memory, seen, now)
    decision = decide(seen, req, now)
    waiting_on = [
        n
        for n in seen.nodes
        if n.restarts.claim is not None and n.restarts.claim.open and n.status != "rebooting"
    ]
    if decision.verb in (Verb.REBOOT, Verb.FAIL) or waiting_on:
        nodes = {n.ident: n for n in [*needs_restarts(seen), *waiting_on]}
        # Back to the oldest open claim: one asked for by an earlier request (which ended
        # before RDS showed the restart) is closed by that restart's events.
        since = min(
            [req.started_at, *(n.restarts.claim.asked for n in waiting_on if n.restarts.claim)]
        )
        seen = with_restarts(rds, seen, nodes.values(), started_at=since, now=now)
        seen, noted = witness(memory, seen, now)
        decision = decide(seen, req, now)
    if decision.verb is Verb.DONE:
        # For Rebooted: every node's restarts during the request.
        seen = with_restarts(rds, seen, seen.nodes, started_at=req.started_at, now=now)
    return seen, req, decision, "; ".join(p for p in (recalled, noted) if p)


def act(
    rds: RdsApi, memory: Memory, seen: Seen, decision: Decision, now: float, *, by: str
) -> tuple[bool, str]:
    """Carry out a reboot decision (at most one reboot call, after claiming it in the memory):
    whether RDS accepted a reboot, and what happened, for the log."""
    if decision.verb is not Verb.REBOOT:
        return False, str(decision.verb.value)
    ident = decision.reboot
    node = next(n for n in seen.nodes if n.ident == ident)
    node_id = node_key(seen, node)
    go, problem = memory.claim(node_id, now, by)
    if not go:
        return False, problem or f"reboot of {ident} held: another reconciler claimed it first"
    mine = Claim(asked=asked_at(now), by=by)
    note = f" ({problem})" if problem else ""
    # The answer's status ("rebooting") is not taken as "seen restarting": DescribeDBInstances
    # may show the node available for a while after it (and a look then would read as "back
    # up"). Only a look sees it restarting.
    try:
        if decision.cluster_reboot:
            rds.reboot_db_cluster(DBClusterIdentifier=ident)
        else:
            request: RebootDBInstanceMessageTypeDef = {"DBInstanceIdentifier": ident}
            if decision.failover:
                request["ForceFailover"] = True
            rds.reboot_db_instance(**request)
    except Exception as err:
        # Refused, or the answer lost. Either way the claim stops holding others back: RDS
        # refuses a reboot while one is under way, and a restart seen after the ask (a look
        # that sees it rebooting, or its events) opens the claim again.
        memory.record(node_id, mine, replace(mine, refused=True))
        code = error_code(err)
        if code in _INVALID_STATE:
            return False, f"reboot of {ident} refused ({code}); a restart or change is under way"
        if is_not_found(err):
            return False, f"reboot of {ident} refused ({code}); it was deleted"
        if is_transient(err):
            return False, f"reboot of {ident}: {code or type(err).__name__}; look again"
        if code in ("AccessDenied", "AccessDeniedException"):
            raise Denied(f"reboot {ident}", err) from err
        raise
    return True, f"rebooted {ident}" + (" with failover" if decision.failover else "") + note


def _log(**fields: Any) -> None:
    LOG.info(json.dumps(fields, sort_keys=True, default=str))


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def handle_on_event(
    event: Mapping[str, Any], rds: RdsApi, *, now: float | None = None
) -> dict[str, Any]:
    request = event["RequestType"]
    if request == "Delete":
        # Nothing to undo: the database keeps its enforcement with or without this resource.
        _log(request=request, physical_id=event.get("PhysicalResourceId"), action="none")
        return {"PhysicalResourceId": event["PhysicalResourceId"]}
    started = _now(now)
    target = parse(event, started)
    req = target.request
    try:
        first = decide(observe(rds, target), req, started).state
    except Gone as err:
        raise ReconcileError(_gone_message(req, err)) from err
    except (Transient, Denied) as err:
        first = f"unknown ({err})"  # is_complete looks again
    _log(request=request, target=physical_id(req.kind, req.ident), state=first, action="start")
    return {
        "PhysicalResourceId": physical_id(req.kind, req.ident),
        "Data": {"StateAtStart": first, "StartedAt": str(started)},
    }


def handle_is_complete(
    event: Mapping[str, Any], rds: RdsApi, *, memory: Memory, now: float | None = None
) -> dict[str, Any]:
    request = event["RequestType"]
    if request == "Delete":
        return {"IsComplete": True}
    at = _now(now)
    target = parse(event, at)
    req = target.request
    age = at - req.started_at
    target_id = physical_id(req.kind, req.ident)
    memo = ""
    try:
        seen, req, decision, memo = look(rds, memory, target, req, at)
        if decision.verb is Verb.DONE and decision.outcome == OUTCOME_IN_SYNC:
            # In effect, seen: a later request with the same group and values may leave a
            # pending-reboot of the group's other parameters to the user (Request.proven).
            proof = Proof(group=req.group, enforced=req.enforced, at=at)
            memo = "; ".join(p for p in (memo, memory.prove(req.kind, req.ident, proof)) if p)
        _, done = act(rds, memory, seen, decision, at, by=str(event.get("RequestId", "")))
    except Gone as err:
        raise ReconcileError(_gone_message(req, err)) from err
    except Transient as err:
        _log(request=request, target=target_id, action="look again", transient=str(err))
        _give_up_if_late(event, f"transient error: {err}", age)
        return {"IsComplete": False}
    except Denied as err:
        if age < IAM_GRACE_S:
            _log(request=request, target=target_id, action="look again", denied=str(err))
            return {"IsComplete": False}
        raise ReconcileError(
            f"IAM denied: {err} ({int(age)}s after the request started, past the {IAM_GRACE_S}s "
            "allowed for IAM to propagate a policy change). The reconciler's role names only the "
            "databases, members and parameter groups this stack declares; check that role, and "
            "any permissions boundary or SCP, then deploy again."
        ) from err
    _log(
        request=request,
        target=target_id,
        policy=req.reboot.value,
        state=decision.state,
        decision=decision.verb.value,
        why=decision.why,
        action=done,
        owed_targets=list(decision.owed.targets),
        **({"memory": memo} if memo else {}),
    )
    if decision.verb is Verb.FAIL:
        raise ReconcileError(decision.why)
    if decision.verb is not Verb.DONE:
        last = "; ".join(p for p in (decision.why or done, memo) if p)
        _give_up_if_late(event, f"{decision.state} ({last})", age)
        return {"IsComplete": False}
    rebooted = sorted(n.ident for n in seen.nodes if n.restarts.since(req.started_at))
    scheduled = decision.outcome == OUTCOME_REBOOT_SCHEDULED
    return {
        "IsComplete": True,
        "Data": {
            "Outcome": decision.outcome,
            "State": decision.state,
            "Rebooted": "true" if rebooted else "false",
            "RebootedMembers": ",".join(i for i in rebooted if i != req.ident),
            ATTR_REBOOT_OWED_SINCE: str(int(at)) if scheduled else "0",
        },
    }


def _gone_message(req: Request, err: Exception) -> str:
    what = "DB instance" if req.kind == KIND_INSTANCE else "DB cluster"
    return (
        f"{what} {req.ident} (or the group it uses) does not exist: {err}. It was deleted or "
        "renamed outside this stack; restore it, or remove the ForceSsl construct for it."
    )


def _give_up_if_late(event: Mapping[str, Any], last: str, waited: float) -> None:
    """Fail with the last state seen shortly before the provider's own timeout would fail with
    a bare "Operation timed out"."""
    give_up = event["ResourceProperties"].get(PROP_GIVE_UP_AFTER)
    if give_up is not None and waited >= float(give_up):
        raise ReconcileError(
            f"gave up after {int(waited)}s: still {last}. Nothing has failed, but the database "
            "did not settle in time; look at its RDS events, then deploy again (or raise "
            "total_timeout)."
        )


_CLIENT: RdsApi | None = None


def rds_client() -> RdsApi:
    """The Lambda's boto3 RDS client, made on first use (stdlib + boto3 only)."""
    global _CLIENT
    if _CLIENT is None:
        import boto3
        from botocore.config import Config

        # Throttling is retried by botocore's standard mode, never by sleeping here. No cast:
        # boto3-stubs types this as mypy_boto3_rds.RDSClient, which mypy checks against RdsApi.
        _CLIENT = boto3.client(
            "rds", config=Config(retries={"mode": "standard", "max_attempts": 8})
        )
    return _CLIENT


def on_event(event: dict[str, Any], _context: object) -> dict[str, Any]:
    return handle_on_event(event, rds_client())
