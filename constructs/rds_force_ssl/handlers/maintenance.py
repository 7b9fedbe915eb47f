"""The scheduled reconciler: restarts, inside each database's own maintenance window, what a
deploy under ``Reboot.MAINTENANCE_WINDOW`` found owed for ForceSsl's parameters.

One EventBridge rule per stack runs it every ``RATE_MINUTES``; its input, written into the
template, lists the stack's MAINTENANCE_WINDOW databases and, for each, the ``RebootOwedSince``
attribute of its reboot resource: when the deploy saw RDS show a restart owed ("0": none
owed). So the list, the poller role's IAM (which names the same databases) and the deploys'
findings agree.

Each run is stateless. For each database that is owed a restart it reads RDS (the window, which
may have changed since the deploy; the statuses; the group), decides with the deploy's own rules
(``decide``), and acts at most once: one reboot, of one node. What keeps a database from being
restarted twice is what RDS keeps and what the stack's memory table holds (``memory``): a node
whose reboot was asked for and not yet shown over by RDS, or that restarted in the last
``SETTLE_S``, is not rebooted again (as in the deploy), and a node that RDS showed restarting
after ``RebootOwedSince`` has loaded ForceSsl's change, so a ``pending-reboot`` it shows now is
someone else's and is left alone; the other members go on. A reboot RDS refused is asked for
again by a later run of the same window. Aurora members go one per run, readers first. Repairs
(``incompatible-parameters``) are the deploy's, never the schedule's. A database whose owed
restart cannot happen (a decision to fail) fails the run, after the others had their turn.

Lambda code: stdlib and boto3 only.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..facts import window
from ..facts.contract import KIND_CLUSTER, KIND_INSTANCE
from ..facts.engines import lookup
from .decide import Request, Verb, decide
from .memory import Memory, lambda_memory
from .observe import Denied, Gone, RdsApi, Target, Transient, call
from .reboot import act, handle_is_complete, look, rds_client

# The rule's constant input: {"RdsForceSsl": "maintenance-window", "Databases": [...]}, each
# database [identifier, RebootOwedSince, members (comma-separated), flags]; flags: "c" a DB
# cluster, "a" its Aurora Auto Scaling readers may be rebooted, "f" reboot with failover.
INPUT_KEY = "RdsForceSsl"
INPUT_KIND = "maintenance-window"
INPUT_DATABASES = "Databases"
FLAG_CLUSTER = "c"
FLAG_AUTOSCALED_READERS = "a"
FLAG_FAILOVER = "f"
# EventBridge runs the rule every 5 minutes (RDS windows are at least 30 minutes long, so a
# window sees at least 5 runs, and an Aurora cluster restarts that many members per window).
RATE_MINUTES = 5
# A restart begins only while this much of the window is left, so that one of typical length
# (one to three minutes; AWS publishes no bound) ends inside it.
MARGIN_S = 300
# Stop taking on databases this long before Lambda's timeout; the next run goes on.
DEADLINE_RESERVE_S = 10

LOG = logging.getLogger("rds_force_ssl.maintenance")
LOG.setLevel(logging.INFO)


@dataclass(frozen=True)
class Entry:
    """One database of the rule's input."""

    ident: str
    owed_since: float  # 0: its last deploy found no restart owed
    members: frozenset[str]  # Aurora members declared in the app
    cluster: bool
    autoscaled_readers: bool
    force_failover: bool

    @property
    def kind(self) -> str:
        return KIND_CLUSTER if self.cluster else KIND_INSTANCE


def is_schedule(event: Mapping[str, Any]) -> bool:
    return event.get(INPUT_KEY) == INPUT_KIND


def entries(event: Mapping[str, Any]) -> list[Entry]:
    """The databases in the rule's input (ValueError for an input this version did not write)."""
    found = []
    for item in event.get(INPUT_DATABASES) or []:
        well_formed = isinstance(item, list) and len(item) == 4
        if not (well_formed and all(isinstance(v, str) for v in item)):
            raise ValueError(f"not a database entry of the schedule's input: {item!r}")
        ident, since, members, flags = item
        found.append(
            Entry(
                ident=ident,
                owed_since=float(since or 0),
                members=frozenset(m for m in members.split(",") if m),
                cluster=FLAG_CLUSTER in flags,
                autoscaled_readers=FLAG_AUTOSCALED_READERS in flags,
                force_failover=FLAG_FAILOVER in flags,
            )
        )
    return found


def _describe(rds: RdsApi, entry: Entry) -> tuple[str, str, str]:
    """(PreferredMaintenanceWindow, the parameter group ForceSsl manages on it, engine)."""
    if entry.cluster:
        cluster = call(
            f"DB cluster {entry.ident}",
            rds.describe_db_clusters,
            DBClusterIdentifier=entry.ident,
        )["DBClusters"][0]
        # An Aurora or Multi-AZ DB cluster is maintained in the cluster's window ("DB updates are
        # performed cluster-wide, and maintenance is deployed during the cluster's maintenance
        # window": AWS Knowledge Center, rds-redshift-maintenance-window).
        return (
            str(cluster.get("PreferredMaintenanceWindow", "")),
            str(cluster.get("DBClusterParameterGroup", "")),
            str(cluster.get("Engine", "")),
        )
    found = call(
        f"DB instance {entry.ident}",
        rds.describe_db_instances,
        DBInstanceIdentifier=entry.ident,
    )["DBInstances"][0]
    groups = [str(g.get("DBParameterGroupName", "")) for g in found.get("DBParameterGroups", [])]
    return (
        str(found.get("PreferredMaintenanceWindow", "")),
        groups[0] if groups else "",
        str(found.get("Engine", "")),
    )


def reconcile(rds: RdsApi, memory: Memory, entry: Entry, now: float) -> tuple[str, str]:
    """One database: (what happened, in a word; why). At most one reboot call."""
    text, group, engine = _describe(rds, entry)
    try:
        open_window = window.parse(text)
    except ValueError as err:
        return "skipped", str(err)
    if not window.may_start(open_window, now, MARGIN_S):
        opens = time.strftime("%a %H:%M UTC", time.gmtime(window.next_start(open_window, now)))
        return "outside", f"window {open_window.text}; next opens {opens}"
    facts = lookup(engine)
    if facts is None or facts.parameter is None or facts.value is None:
        return "skipped", f"engine {engine!r} is not in the engine table"
    enforced = {facts.parameter: facts.value}
    req = Request(
        kind=entry.kind,
        ident=entry.ident,
        group=group,
        enforced=enforced,
        started_at=entry.owed_since,
        changed=frozenset(enforced),
        group_changed=True,
        force_failover=entry.force_failover,
    )
    target = Target(request=req, members=entry.members, autoscaled_readers=entry.autoscaled_readers)
    seen, req, decision, memo = look(rds, memory, target, req, now)
    # A node that RDS showed restarting after RebootOwedSince (when the deploy saw RDS show the
    # restart owed) has loaded ForceSsl's change, so a pending-reboot it shows now is someone
    # else's: leave it alone, and go on with the other members. A reboot only asked for, or
    # refused, is not that evidence.
    loaded = sorted(n.ident for n in seen.nodes if n.restarts.began_after(entry.owed_since))
    rest = tuple(n for n in seen.nodes if n.ident not in loaded)
    if loaded and rest:
        seen = replace(seen, nodes=rest)
        decision = decide(seen, req, now)
    if decision.verb is Verb.REBOOT and rest:
        chosen = next(n for n in seen.nodes if n.ident == decision.reboot)
        if decision.reboot in decision.owed.repairs:
            return "skipped", (
                f"{chosen.ident} is {chosen.status}/{chosen.apply}: a repair, which a deploy "
                "makes, not the schedule; deploy again"
            )
        accepted, done = act(rds, memory, seen, decision, now, by=INPUT_KIND)
        return ("rebooted" if accepted else "wait"), done
    note = f" (memory: {memo})" if memo else ""
    if loaded:
        return "skipped", (
            f"{', '.join(loaded)} restarted since the deploy that found a reboot owed, so "
            "ForceSsl's change is in effect there; the pending-reboot shown now is not "
            "ForceSsl's"
            + (f"; then {decision.verb.value}: {decision.why}" if rest and decision.why else "")
            + note
        )
    return decision.verb.value, f"{decision.state}; {decision.why or decision.outcome}{note}"


def handle(
    event: Mapping[str, Any],
    rds: RdsApi,
    *,
    memory: Memory,
    now: float | None = None,
    out_of_time: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """One run of the schedule: every owed database, each at most once; returns a summary."""
    at = time.time() if now is None else now
    todo = [e for e in entries(event) if e.owed_since]
    # Start at another database each run, so that a run cut short by time leaves a different
    # tail each time.
    if todo:
        turn = int(at // (RATE_MINUTES * 60)) % len(todo)
        todo = todo[turn:] + todo[:turn]
    summary: dict[str, Any] = {
        "run": INPUT_KIND,
        "databases": len(entries(event)),
        "owed": len(todo),
        "outside": 0,
        "rebooted": [],
        "errors": [],
        "failed": [],
        "unchecked": [],
    }
    failures: list[str] = []
    for entry in todo:
        if out_of_time is not None and out_of_time():
            summary["unchecked"] = [e.ident for e in todo[todo.index(entry) :]]
            break
        try:
            what, why = reconcile(rds, memory, entry, at)
        except (Gone, Denied, Transient) as err:
            what, why = "error", str(err)
        except Exception as err:  # one database's surprise must not starve the others
            what, why = "error", f"{type(err).__name__}: {err}"
            failures.append(f"{entry.ident}: {why}")
        if what == "outside":
            summary["outside"] += 1
            continue
        if what == "rebooted":
            summary["rebooted"].append(entry.ident)
        if what == "error":
            summary["errors"].append(entry.ident)
        if what == Verb.FAIL.value:
            # The reboot its deploy promised (reboot-scheduled) cannot happen until someone acts.
            summary["failed"].append(entry.ident)
            failures.append(f"{entry.ident}: {why}")
        _log(run=INPUT_KIND, database=entry.ident, result=what, why=why)
    _log(**summary)
    if failures:
        # Every database had its turn; now let Lambda count the run as failed, so that an alarm
        # on the function's Errors sees it.
        raise RuntimeError("maintenance-window run: " + "; ".join(failures))
    return summary


def _log(**fields: Any) -> None:
    LOG.info(json.dumps(fields, sort_keys=True, default=str))


def poller(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The polling Lambda's entry point: the Provider framework's is-complete polls, and the
    stack's maintenance-window schedule."""
    if is_schedule(event):
        deadline = time.time() + context.get_remaining_time_in_millis() / 1000
        return handle(
            event,
            rds_client(),
            memory=lambda_memory(),
            out_of_time=lambda: time.time() > deadline - DEADLINE_RESERVE_S,
        )
    return handle_is_complete(event, rds_client(), memory=lambda_memory())
