"""What the reboot reconciler does next, from what RDS shows: pure functions, no AWS calls.

Three questions are kept apart:

1. ``reboot_owed``: is a reboot owed, on which nodes (instances, Aurora members, or a Multi-AZ DB
   cluster), and for which of the parameters ForceSsl owns;
2. whose it is: ForceSsl's, or only the user's other parameters (``Request.proven``), and what the
   reboot policy (``Reboot``) says to do with ForceSsl's: now, in the maintenance window, never;
3. ``decide``: given both, and the statuses RDS reports, reboot one node now, wait, finish (and
   say which way), or fail.

Nothing here hard-codes an engine's parameter names or whether they are static or dynamic: the
request says which parameters ForceSsl owns and their values, RDS says (DescribeDBParameters)
what the group holds, and each node's apply status says whether a restart is owed.

Lambda code: stdlib only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum

from ..facts.contract import KIND_INSTANCE
from ..facts.engines import lookup
from ..facts.policy import (
    OUTCOME_IN_SYNC,
    OUTCOME_OTHERS_PENDING,
    OUTCOME_PENDING_REBOOT,
    OUTCOME_REBOOT_SCHEDULED,
    OUTCOME_STOPPED,
    Reboot,
)
from .memory import Claim

# What a look finds behind a resource's Kind: a DB instance (contract.KIND_INSTANCE), or for
# contract.KIND_CLUSTER an Aurora cluster or a Multi-AZ DB cluster.
KIND_AURORA = "aurora"
KIND_MULTI_AZ_CLUSTER = "multi-az-cluster"

# The ModifyDBParameterGroup API reference asks to wait at least 5 minutes after modifying a group
# before relying on it, "to allow Amazon RDS to fully complete the modify action". It is the only
# bound AWS gives for a group change to reach its databases, so it bounds three waits:
# - an `in-sync` seen less than this long after a request that changed what ForceSsl owns may be
#   RDS not having registered the change yet: it is not trusted before then;
# - a `pending-reboot` seen less than this long after RDS showed a restart over may be RDS not
#   having caught up with it: no reboot before then (the restart itself is waited out on
#   evidence, however long it takes: ``memory.Claim``);
# - a group whose values do not (yet) match what CloudFormation wrote.
# https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBParameterGroup.html
SETTLE_S = 300


class Disposition(Enum):
    """What a DB instance or cluster status allows."""

    REBOOT_ALLOWED = "reboot-allowed"
    REPAIR = "reboot-allowed-to-repair"  # only a reboot (or delete) is possible, and may help
    WAIT = "wait"
    FAIL = "fail"
    STOPPED = "stopped"


# Every DB instance status in the RDS user guide, "Viewing Amazon RDS DB instance status":
# https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/accessing-monitoring.html#Overview.DBInstance.Status
# A status RDS adds later is not here, and is waited on (see ``instance_status``).
INSTANCE_STATUSES: dict[str, tuple[Disposition, str]] = {
    "available": (Disposition.REBOOT_ALLOWED, "healthy and available"),
    # "The DB instance is fully operational. However, ... you can't request any changes to the
    # storage"; it "can sometimes take up to and even beyond 24 hours".
    "storage-optimization": (
        Disposition.REBOOT_ALLOWED,
        "fully operational while RDS optimizes storage; only storage changes are refused",
    ),
    # "Amazon RDS can't start the DB instance because the parameters ... aren't compatible";
    # RDS-EVENT-0035: "the customer action would be to modify the memory parameter and reboot".
    # A reboot (or a delete) is all RDS accepts in this status.
    "incompatible-parameters": (
        Disposition.REPAIR,
        "RDS cannot start the engine with the parameter group; fix the group, then reboot",
    ),
    "backing-up": (Disposition.WAIT, "being backed up"),
    "backtracking": (Disposition.WAIT, "being backtracked (Aurora MySQL)"),
    "configuring-activity-stream": (Disposition.WAIT, "activity stream being configured"),
    "configuring-enhanced-monitoring": (Disposition.WAIT, "Enhanced Monitoring being configured"),
    "configuring-iam-database-auth": (Disposition.WAIT, "IAM authentication being configured"),
    "configuring-log-exports": (Disposition.WAIT, "log exports being configured"),
    "converting-to-vpc": (Disposition.WAIT, "being moved into a VPC"),
    "creating": (Disposition.WAIT, "being created"),
    "maintenance": (Disposition.WAIT, "RDS is applying maintenance"),
    "modifying": (Disposition.WAIT, "being modified"),
    "moving-to-vpc": (Disposition.WAIT, "being moved to another VPC"),
    "rebooting": (Disposition.WAIT, "rebooting"),
    "renaming": (Disposition.WAIT, "being renamed"),
    "resetting-master-credentials": (Disposition.WAIT, "master credentials being reset"),
    "starting": (Disposition.WAIT, "starting"),
    "stopping": (Disposition.WAIT, "stopping"),
    "storage-config-upgrade": (Disposition.WAIT, "storage configuration being upgraded"),
    "storage-initialization": (Disposition.WAIT, "storage being initialized after a restore"),
    "upgrading": (Disposition.WAIT, "engine version being upgraded"),
    "delete-precheck": (Disposition.FAIL, "being deleted"),
    "deleting": (Disposition.FAIL, "being deleted"),
    "failed": (
        Disposition.FAIL,
        "failed and RDS cannot recover it; restore it to a point in time",
    ),
    "inaccessible-encryption-credentials": (
        Disposition.FAIL,
        "its KMS key cannot be used; restore it from a backup with a usable key",
    ),
    "inaccessible-encryption-credentials-recoverable": (
        Disposition.FAIL,
        "its KMS key cannot be used; enable the key (or cancel its deletion), then start it",
    ),
    "incompatible-network": (
        Disposition.FAIL,
        "its VPC prevents recovery (subnet out of addresses?); fix the subnets",
    ),
    "incompatible-option-group": (
        Disposition.FAIL,
        "an option group change could not be applied; see its RDS events",
    ),
    "incompatible-restore": (Disposition.FAIL, "a point-in-time restore failed"),
    "insufficient-capacity": (Disposition.FAIL, "RDS has no capacity for its class in its AZ"),
    "restore-error": (Disposition.FAIL, "a restore failed"),
    "storage-full": (Disposition.FAIL, "its storage is full; scale storage up"),
    "stopped": (Disposition.STOPPED, "stopped; pending changes apply when it starts"),
}

# Every DB cluster status in the Aurora user guide, "DB cluster status", plus what a Multi-AZ DB
# cluster adds (rebooting). A cluster that is not available is waited on: the members are
# rebooted only while RDS says the cluster is available, or optimizing storage.
# https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Status.html
CLUSTER_STATUSES: dict[str, tuple[Disposition, str]] = {
    "available": (Disposition.REBOOT_ALLOWED, "healthy and available"),
    # Documented for instances ("fully operational", may last over 24 hours; see above), not
    # for clusters: no AWS page says whether RebootDBCluster, or a member's RebootDBInstance, is
    # refused meanwhile. Waiting would wait out the whole budget and fail; trying costs nothing
    # (a refusal is InvalidDBClusterStateFault or InvalidDBInstanceState: look again).
    "storage-optimization": (
        Disposition.REBOOT_ALLOWED,
        "storage being optimized; working (unverified for clusters whether RDS takes a reboot)",
    ),
    "backing-up": (Disposition.WAIT, "being backed up"),
    "backtracking": (Disposition.WAIT, "being backtracked"),
    "creating": (Disposition.WAIT, "being created"),
    "failing-over": (Disposition.WAIT, "failing over"),
    "maintenance": (Disposition.WAIT, "RDS is applying maintenance"),
    "migrating": (Disposition.WAIT, "a snapshot is being restored into it"),
    "modifying": (Disposition.WAIT, "being modified"),
    "promoting": (Disposition.WAIT, "a read replica is being promoted"),
    "rebooting": (Disposition.WAIT, "rebooting"),
    "renaming": (Disposition.WAIT, "being renamed"),
    "resetting-master-credentials": (Disposition.WAIT, "master credentials being reset"),
    "starting": (Disposition.WAIT, "starting"),
    "stopping": (Disposition.WAIT, "stopping"),
    "update-iam-db-auth": (Disposition.WAIT, "IAM authentication being updated"),
    "upgrading": (Disposition.WAIT, "engine version being upgraded"),
    "cloning-failed": (Disposition.FAIL, "cloning failed"),
    "deleting": (Disposition.FAIL, "being deleted"),
    "inaccessible-encryption-credentials": (
        Disposition.FAIL,
        "its KMS key cannot be used; restore it from a backup with a usable key",
    ),
    "inaccessible-encryption-credentials-recoverable": (
        Disposition.FAIL,
        "its KMS key cannot be used; enable the key (or cancel its deletion), then start it",
    ),
    "migration-failed": (Disposition.FAIL, "a migration failed"),
    "stopped": (Disposition.STOPPED, "stopped; pending changes apply when it starts"),
}


# An Aurora member being deleted leaves the cluster (Aurora Auto Scaling scales in this way): the
# deploy waits until it is gone, then goes on with the members that remain.
MEMBER_LEAVING = frozenset({"delete-precheck", "deleting"})


def instance_status(status: str) -> tuple[Disposition, str]:
    return INSTANCE_STATUSES.get(
        status, (Disposition.WAIT, f"status {status!r} is not in RDS's documented list")
    )


def cluster_status(status: str) -> tuple[Disposition, str]:
    return CLUSTER_STATUSES.get(
        status, (Disposition.WAIT, f"status {status!r} is not in RDS's documented list")
    )


@dataclass(frozen=True)
class Param:
    """One parameter as DescribeDBParameters / DescribeDBClusterParameters reports it."""

    value: str | None
    source: str = ""  # user | system | engine-default ("" when RDS does not say)


# After RDS turned a reboot down (a modify began, say), the next ask waits this long: it paces
# the asks against a database that keeps refusing, and stays under the maintenance-window
# schedule's 5 minutes so that every run of a window may ask again.
RETRY_REFUSED_S = 240

# Event times come from RDS's clock and "now" from Lambda's: allow for a little skew. Each use
# below leans the way that costs, at worst, a later reboot or a longer wait, never a false
# success.
CLOCK_SKEW_S = 60


@dataclass(frozen=True)
class Restarts:
    """A node's restarts: what its RDS events say (DescribeEvents, dated by RDS's clock), and the
    last reboot a reconciler of the stack asked for, with what RDS has shown of it since (the
    stack's memory, dated by Lambda's clock).

    Events are RDS's own record, but AWS emits them "on a best effort basis" and gives no bound
    on how late they appear (RDS user guide, "Monitoring Amazon RDS events"). The claim is
    written before every reboot call and read back consistently, and it holds until RDS has
    shown the restart (``memory.Claim``), so a reboot asked for is never repeated while its
    events are late, however long the restart takes."""

    began: tuple[float, ...] = ()  # "DB instance shutdown", failover started
    ended: tuple[float, ...] = ()  # "DB instance restarted", failover completed
    claim: Claim | None = None  # the last reboot a reconciler of this stack asked for
    unread: str = ""  # why the memory could not be read ("": it was, or was not needed)

    def asked_since(self, t: float) -> bool:
        """A reconciler asked for a reboot at ``t`` or later that RDS did not turn down."""
        c = self.claim
        return (
            c is not None
            and not c.observed
            and c.asked >= t
            and (not c.refused or c.restarting is not None)
        )

    def since(self, t: float) -> bool:
        """A restart began or ended at ``t`` or later, or was asked for then: for ``Rebooted``,
        which may say true of a restart up to CLOCK_SKEW_S before ``t``."""
        events = any(x >= t - CLOCK_SKEW_S for x in self.began + self.ended)
        return events or self.asked_since(t)

    def began_after(self, t: float) -> bool:
        """RDS has shown a restart that surely began after ``t``: an RDS event at least
        CLOCK_SKEW_S after it, or a reboot asked for at ``t`` or later that a look then saw
        restarting. A reboot only asked for is not enough."""
        events = any(x >= t + CLOCK_SKEW_S for x in self.began + self.ended)
        c = self.claim
        asked = c is not None and not c.observed and c.asked >= t
        return events or (asked and c is not None and c.restarting is not None)

    def in_progress(self, now: float) -> bool:
        """A restart is, or may be, under way: a reboot was asked for and RDS has not shown it
        over yet (however long ago); the memory could not be read; or RDS logged a shutdown
        less than SETTLE_S ago and no restart after it."""
        if self.unread or (self.claim is not None and self.claim.open):
            return True
        last_began = max(self.began, default=None)
        last_ended = max(self.ended, default=None)
        return (
            last_began is not None
            and (last_ended is None or last_ended < last_began)
            and now - last_began < SETTLE_S
        )

    def refused_lately(self, now: float) -> bool:
        """RDS turned the last reboot down less than RETRY_REFUSED_S ago."""
        c = self.claim
        return c is not None and not c.open and c.refused and now - c.asked < RETRY_REFUSED_S

    def recent(self, now: float) -> bool:
        """RDS showed a restart over less than SETTLE_S ago (an event, or a look)."""
        ends = [*self.ended]
        if self.claim is not None and self.claim.restarted is not None:
            ends.append(self.claim.restarted)
        return any(now - e < SETTLE_S for e in ends)

    def merged(self, other: Restarts) -> Restarts:
        """Both nodes' events as one (a Multi-AZ DB cluster's members); the claim is this
        node's."""
        return replace(self, began=self.began + other.began, ended=self.ended + other.ended)


def witnessed(claim: Claim, restarts: Restarts, status: str | None, now: float) -> Claim:
    """What a look at ``now`` adds to a claim: the node seen ``rebooting`` (a restart under way
    after the ask; a claim RDS had shown over, or turned down, opens again), or seen up again
    after that, or RDS events dated after the ask while the node is up (the restart is over).
    ``status`` None: the node was not described; nothing is added."""
    if status is None or status in MEMBER_LEAVING:
        return claim  # not described, or being deleted: no restart is over
    if status == "rebooting":
        if claim.restarting is None or not claim.open:
            return replace(claim, restarting=now, restarted=None)
        return claim
    if claim.restarted is not None:
        return claim
    # A restart logged after an ask RDS accepted may be dated up to CLOCK_SKEW_S before it (the
    # two clocks); after one RDS turned down, only a restart surely later counts.
    after = claim.asked + (CLOCK_SKEW_S if claim.refused else -CLOCK_SKEW_S)
    logged = any(x >= after for x in restarts.began + restarts.ended)
    if claim.restarting is None and not logged:
        return claim
    return replace(claim, restarting=claim.restarting or now, restarted=now)


@dataclass(frozen=True)
class Node:
    """Something the reconciler may reboot: an instance, an Aurora member, or a Multi-AZ DB
    cluster (rebooted as a whole)."""

    ident: str
    status: str | None  # None: not described (a cluster member IAM does not let us see)
    apply: str  # status of the group ForceSsl manages, on this node
    writer: bool = False
    multi_az: bool = False
    visible: bool = True  # IAM lets the stack describe and reboot it
    restarts: Restarts = field(default_factory=Restarts)


@dataclass(frozen=True)
class Seen:
    """Everything one poll read from RDS."""

    kind: str
    ident: str
    status: str  # instance status, or cluster status
    groups: tuple[str, ...]  # the parameter group(s) RDS reports as attached
    engine: str
    engine_version: str
    nodes: tuple[Node, ...]
    # ForceSsl's parameters as the group holds them (name -> Param; absent when RDS lists none)
    params: Mapping[str, Param]
    # A Multi-AZ DB cluster's member instances, whose RDS events tell its restarts
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class Request:
    """What CloudFormation asked for, and what this request changed."""

    kind: str  # KIND_INSTANCE or "cluster" (Seen.kind tells Aurora from Multi-AZ)
    ident: str
    group: str
    enforced: Mapping[str, str]  # the parameters ForceSsl owns, and their values
    started_at: float
    changed: frozenset[str]  # owned parameters whose value this request changes (Create: all)
    group_changed: bool  # anything in the group, or the group itself, changed
    force_failover: bool = False
    reboot: Reboot = Reboot.IMMEDIATE
    # ForceSsl's parameters are known to be in effect already: this request changes none of
    # them, and the previous one, under Reboot.IMMEDIATE, finished only once they were. A
    # pending-reboot is then only the user's other parameters'.
    proven: bool = False
    # The user opted in to reboots for the group's other parameters too.
    others: bool = False

    def ours(self, node: str, owed: Owed) -> bool:
        """Whether the restart ``node`` is owed is ForceSsl's to make: a repair always is."""
        return node in owed.repairs or not self.proven or self.others

    def acts_now(self, node: str, owed: Owed) -> bool:
        """Whether the policy lets that restart happen during the deploy. A repair
        (``incompatible-parameters``, or ``failed-to-apply`` after a group change) is made at
        deploy under MAINTENANCE_WINDOW too: the database is broken, and a rollback waits on it."""
        if self.reboot is Reboot.IMMEDIATE:
            return True
        return self.reboot is Reboot.MAINTENANCE_WINDOW and node in owed.repairs


@dataclass(frozen=True)
class Owed:
    """Is a reboot owed, where, and for what: the question a reboot policy answers on."""

    targets: tuple[str, ...] = ()  # nodes RDS says need a restart now
    repairs: tuple[str, ...] = ()  # of those, the ones a reboot repairs (not only applies)
    settling: tuple[str, ...] = ()  # pending-reboot right after a restart: RDS catching up
    held: tuple[str, ...] = ()  # RDS turned their last reboot down a moment ago
    waiting: tuple[str, ...] = ()  # RDS is still applying (applying, or a fix being re-applied)
    blocked: tuple[str, ...] = ()  # need a restart the stack may not do (IAM does not name them)
    failed: tuple[str, ...] = ()  # what a reboot will not fix (with the reason)


class Verb(Enum):
    DONE = "done"
    WAIT = "wait"
    REBOOT = "reboot"
    FAIL = "fail"


@dataclass(frozen=True)
class Decision:
    verb: Verb
    state: str  # what was seen, in one line
    why: str = ""  # why waiting, or the failure message
    reboot: str = ""  # the node to reboot now
    cluster_reboot: bool = False  # reboot a Multi-AZ DB cluster (RebootDBCluster)
    failover: bool = False
    outcome: str = ""
    owed: Owed = field(default_factory=Owed)


def _age(req: Request, now: float) -> float:
    return now - req.started_at


def reboot_owed(seen: Seen, req: Request, now: float) -> Owed:
    """Which nodes need a restart for the group to be in effect, from what RDS reports.

    A repair (``incompatible-parameters``, or ``failed-to-apply`` after a group change) is held
    until SETTLE_S after the request started: a restart before RDS has the group this request
    wrote would load the broken one again (a rollback's restored group takes RDS as long to
    show as any other change). A repair has failed when the node is still broken after a
    restart that loaded this request's group: one a reconciler asked for during the request
    (it asks only once RDS shows the group, or after SETTLE_S), or any restart after SETTLE_S.
    """
    targets: list[str] = []
    repairs: list[str] = []
    settling: list[str] = []
    held: list[str] = []
    waiting: list[str] = []
    blocked: list[str] = []
    failed: list[str] = []
    young = _age(req, now) < SETTLE_S
    settled = req.started_at + SETTLE_S
    for node in seen.nodes:
        if node.status in MEMBER_LEAVING:
            continue  # being deleted: nothing it shows is owed (decide waits until it is gone)
        r = node.restarts
        catching_up = r.in_progress(now) or r.recent(now)
        ours = r.asked_since(req.started_at)  # a reconciler restarted it during this request
        loaded = r.since(settled) or ours
        if node.status == "incompatible-parameters":
            if not req.group_changed:
                failed.append(
                    f"{node.ident} is incompatible-parameters and this deploy did not change "
                    "its group, so a reboot would not help; fix the values its RDS events name, "
                    "then deploy again"
                )
            elif r.in_progress(now):
                settling.append(node.ident)
            elif loaded:
                failed.append(
                    f"{node.ident} is still incompatible-parameters after a restart with the "
                    "new group; fix the values its RDS events name, then deploy again"
                )
            elif young:
                waiting.append(node.ident)  # RDS may not show this request's group yet
            elif r.refused_lately(now):
                held.append(node.ident)
            else:
                (targets if node.visible else blocked).append(node.ident)
                repairs.append(node.ident)
        elif node.apply == "pending-reboot":
            if catching_up:
                settling.append(node.ident)
            elif ours:
                # RDS showed the restart a reconciler asked for during this request, had
                # SETTLE_S to catch up, and still asks for one: another reboot of the same
                # change would not help. Say so instead (docs/reboot.md, rule 3).
                failed.append(_still_pending(node))
            elif r.refused_lately(now):
                held.append(node.ident)
            else:
                (targets if node.visible else blocked).append(node.ident)
        elif node.apply == "failed-to-apply":
            if not req.group_changed:
                failed.append(
                    f"parameter group is failed-to-apply on {node.ident} and this deploy did not "
                    "change it; fix the values its RDS events name, then deploy again"
                )
            elif catching_up:
                settling.append(node.ident)
            elif loaded:
                failed.append(
                    f"parameter group is still failed-to-apply on {node.ident} after a restart; "
                    "fix the values its RDS events name, then deploy again"
                )
            elif young:
                waiting.append(node.ident)  # RDS may still apply the new values by itself
            elif r.refused_lately(now):
                held.append(node.ident)
            else:
                # A restart reads the whole group afresh: how a rolled-back group is repaired.
                (targets if node.visible else blocked).append(node.ident)
                repairs.append(node.ident)
        elif node.apply == "pending-database-upgrade":
            failed.append(
                f"parameter group on {node.ident} is pending-database-upgrade; apply the "
                "pending engine upgrade, then deploy again"
            )
        elif node.apply != "in-sync":
            waiting.append(node.ident)  # applying, or a status RDS adds later
    return Owed(
        targets=tuple(targets),
        repairs=tuple(repairs),
        settling=tuple(settling),
        held=tuple(held),
        waiting=tuple(waiting),
        blocked=tuple(blocked),
        failed=tuple(failed),
    )


def _still_pending(node: Node) -> str:
    claim = node.restarts.claim
    assert claim is not None
    back = claim.restarted if claim.restarted is not None else claim.asked
    return (
        f"{node.ident} still shows pending-reboot {SETTLE_S}s after the restart this deploy "
        f"asked for at {_utc(claim.asked)} (RDS showed it over at {_utc(back)}), so RDS did not "
        "apply the group with that restart and a second reboot would not either. Look at its "
        "RDS events and at the group for a value RDS cannot apply; fix it, then deploy again "
        "(or reboot it yourself)"
    )


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def group_problems(seen: Seen, req: Request) -> list[str]:
    """How the group RDS holds differs from what ForceSsl wrote into it. The engine's SSL
    parameter may be spelled another way that the engine table says enforces too (MySQL's ON
    for 1)."""
    facts = lookup(seen.engine)
    problems = []
    for name, want in sorted(req.enforced.items()):
        have = seen.params.get(name)
        if have is None:
            problems.append(f"{name} is not in the group")
            continue
        if facts is not None and name == facts.parameter and facts.enforces(want):
            same = facts.enforces(have.value)
        else:
            same = have.value == want
        if have.source in ("engine-default", "system"):
            problems.append(
                f"{name} is the {have.source} value ({have.value}), not set by the group"
            )
        elif not same:
            problems.append(f"{name}={have.value}, not {want}")
    return problems


def render(seen: Seen) -> str:
    """What was seen, in one line, for logs and the resource's ``State`` attribute."""
    if seen.kind == KIND_INSTANCE:
        node = seen.nodes[0]
        return f"{seen.status}/{node.apply or 'group-not-attached'}"
    members = ",".join(
        f"{n.ident}:{n.status or '?'}/{n.apply}" for n in sorted(seen.nodes, key=lambda n: n.ident)
    )
    return f"{seen.status}/{','.join(seen.groups)} [{members}]"


def decide(seen: Seen, req: Request, now: float) -> Decision:
    """Reboot one node now, wait, finish, or fail: one step of the reconciler."""
    state = render(seen)
    owed = reboot_owed(seen, req, now)

    def wait(why: str) -> Decision:
        return Decision(Verb.WAIT, state, why=why, owed=owed)

    def fail(why: str) -> Decision:
        return Decision(Verb.FAIL, state, why=why, owed=owed)

    what = "DB instance" if seen.kind == KIND_INSTANCE else "DB cluster"
    top, meaning = (instance_status if seen.kind == KIND_INSTANCE else cluster_status)(seen.status)
    if top is Disposition.FAIL:
        return fail(f"{what} {seen.ident} is {seen.status}: {meaning}; then deploy again")
    if top is Disposition.WAIT:
        return wait(f"{what} {seen.ident} is {seen.status}: {meaning}")

    # The group checks come before "stopped": a stopped database starts with the group it has
    # and the values that group holds, and RDS answers both reads while it is stopped. Saying
    # "applies at next start" of a group that is not attached, or that does not hold what
    # ForceSsl wrote, would be a false success that shows only when it starts.
    if req.group.lower() not in (g.lower() for g in seen.groups):
        # RDS stores group names in lower case; a template may spell them otherwise.
        return fail(
            f"{what} {seen.ident} uses parameter group {list(seen.groups)}, not {req.group}; "
            "someone changed it outside this stack. Deploy again to re-associate it."
        )
    problems = group_problems(seen, req)
    if problems:
        why = f"parameter group {req.group}: " + "; ".join(problems)
        if _age(req, now) < SETTLE_S:
            return wait(why + " (waiting for RDS to show what CloudFormation wrote)")
        return fail(
            why + ". It is not what this stack wrote; someone changed it outside the stack. "
            "Deploy again to restore it."
        )
    if top is Disposition.STOPPED:
        return Decision(Verb.DONE, state, outcome=OUTCOME_STOPPED, owed=owed)

    for node in seen.nodes:
        if node.status in MEMBER_LEAVING and seen.kind == KIND_AURORA:
            continue  # waited on below: Aurora Auto Scaling scaling in, or a person
        if node.status is not None and instance_status(node.status)[0] is Disposition.FAIL:
            return fail(
                f"{what} {seen.ident}: {node.ident} is {node.status}: "
                f"{instance_status(node.status)[1]}; then deploy again"
            )
    if owed.failed:
        return fail(f"{what} {seen.ident}: " + "; ".join(owed.failed))
    blocked = [n for n in owed.blocked if req.ours(n, owed)]
    if blocked and req.reboot is not Reboot.NEVER:
        return fail(
            f"DB cluster {seen.ident}: member(s) {', '.join(blocked)} need a reboot, but "
            "they are not declared in this app, so IAM does not let this stack reboot them. "
            "Reboot them yourself (aws rds reboot-db-instance --db-instance-identifier ...), "
            "declare them in the cluster, or, for Aurora Auto Scaling readers, set "
            "ForceSsl(autoscaled_readers=True); then deploy again."
        )
    busy = [
        n
        for n in seen.nodes
        if n.status is not None
        and (
            instance_status(n.status)[0] is Disposition.WAIT
            or (n.status in MEMBER_LEAVING and seen.kind == KIND_AURORA)
        )
    ]
    if busy:
        return wait(", ".join(f"{n.ident} is {n.status}" for n in busy))
    if owed.waiting:
        return wait(f"RDS is still applying the group on {', '.join(owed.waiting)}")
    now_ = [n for n in owed.targets if req.ours(n, owed) and req.acts_now(n, owed)]
    if owed.held and req.reboot is Reboot.IMMEDIATE:
        # Held like a restart under way: the rollout keeps its order (readers first).
        return wait(
            f"RDS turned down the last reboot of {', '.join(owed.held)} less than "
            f"{RETRY_REFUSED_S}s ago; asking again then"
        )
    if now_:
        chosen = next_reboot(seen, replace(owed, targets=tuple(now_)), now)
        if chosen is None:
            return wait(f"a restart is in progress; {', '.join(now_)} next")
        node = next(n for n in seen.nodes if n.ident == chosen)
        return Decision(
            Verb.REBOOT,
            state,
            reboot=chosen,
            cluster_reboot=seen.kind == KIND_MULTI_AZ_CLUSTER,
            failover=req.force_failover and node.multi_az and seen.kind == KIND_INSTANCE,
            owed=owed,
        )
    later = [n for n in (*owed.targets, *blocked) if req.ours(n, owed)]
    if later:
        # RDS has shown that a restart is owed for what ForceSsl owns: the evidence the deploy
        # waits for under any policy. The policy leaves the restart to later.
        scheduled = req.reboot is Reboot.MAINTENANCE_WINDOW
        return Decision(
            Verb.DONE,
            state,
            why=f"{', '.join(later)} {'needs' if len(later) == 1 else 'need'} a restart; "
            + ("the maintenance window's" if scheduled else "yours to make (Reboot.NEVER)"),
            outcome=OUTCOME_REBOOT_SCHEDULED if scheduled else OUTCOME_PENDING_REBOOT,
            owed=owed,
        )
    if owed.settling:
        return wait(
            f"{', '.join(owed.settling)}: a restart is under way, or RDS showed one over less "
            f"than {SETTLE_S}s ago, and still reports pending-reboot; not rebooting while RDS "
            "catches up"
        )
    watched = sorted(req.changed) or (["the group"] if req.others and req.group_changed else [])
    if watched and _age(req, now) < SETTLE_S:
        return wait(
            f"in-sync, but this request changed {', '.join(watched)} "
            f"{int(_age(req, now))}s ago; RDS may take up to {SETTLE_S}s to show a group change "
            "(ModifyDBParameterGroup API reference)"
        )
    theirs = [n for n in (*owed.targets, *owed.blocked) if not req.ours(n, owed)]
    if theirs:
        return Decision(
            Verb.DONE,
            state,
            why=f"{', '.join(theirs)} pending-reboot only for parameters that are not "
            "ForceSsl's, which are in effect; the restart is yours (or set "
            "reboot_for_other_parameters=True)",
            outcome=OUTCOME_OTHERS_PENDING,
            owed=owed,
        )
    return Decision(Verb.DONE, state, outcome=OUTCOME_IN_SYNC, owed=owed)


def next_reboot(seen: Seen, owed: Owed, now: float) -> str | None:
    """The one node to reboot now, or None while any restart is still under way.

    Aurora members go one at a time, readers first, without failover; where a writer reboot
    restarts the readers too (the engine table's ``read_availability``), the writer alone.
    """
    if any(n.restarts.in_progress(now) for n in seen.nodes):
        return None
    by_id = {n.ident: n for n in seen.nodes}
    candidates = [by_id[i] for i in owed.targets]
    writers = [n.ident for n in candidates if n.writer]
    readers = sorted(n.ident for n in candidates if not n.writer)
    facts = lookup(seen.engine)
    if writers and facts is not None and facts.writer_reboot_restarts_readers(seen.engine_version):
        return writers[0]
    return (readers or writers)[0]
