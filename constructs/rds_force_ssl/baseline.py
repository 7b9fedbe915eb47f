"""``SslBaseline``: a CDK Aspect that holds every RDS database and proxy in an app to SSL-only.

- **enforce** (``AspectPriority.MUTATING``): every database or proxy that no ForceSsl protects
  yet gets one, with the baseline's options. What cannot be fixed (the SSL parameter turned
  off, an imported group, a value synth cannot see, an engine too old) is an error annotation,
  so synth fails.
- **audit** (``AspectPriority.READONLY``): nothing changes; every non-compliant database gets an
  error annotation ``[RFSn] ...`` with the path, why it matters and the fix.

The engine table decides what each engine needs. An engine no parameter can make SSL-only
(Oracle, Db2, or one the table does not know) is NOT_APPLICABLE with a warning that says why
(RFS8), never a silent pass; ``exempt(db, reason=...)`` records a visible exemption. Each
verdict is written to the database's metadata (``rds-force-ssl:compliance``, once: by the
audit baseline where one reaches it, which runs last), and ``summary()`` counts them.

Applying a baseline twice: the same mode with the same options is one baseline (``apply``
returns the first), with other options it is an error; enforce and audit together is the
documented pair (enforce, then audit proves it).

How it runs: an Aspect on the app is called back from jsii for every construct in it (0.6 ms a
call, most of the baseline's synth cost). ``apply`` adds the Aspect instead to one empty child of
the scope (``RdsForceSslBaseline``), so CDK calls it once per synth, when the Aspects run; that
call reads every construct under the scope in one round trip (``find_all``, not entering nested
Stages, which CDK's Aspects do not enter either) and judges the databases in tree order. Every
baseline of the Stage runs then, in the order CDK would give them on each construct: by
priority (enforce before audit), then the outer scope first. A database added later by another
Aspect fails synth with its path (a validation on that child), never passes unjudged.
"""

from __future__ import annotations

import difflib
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Literal, cast

import aws_cdk as cdk
import jsii
from constructs import Construct, IConstruct, IValidation

from rds_force_ssl import parameter_group as pg
from rds_force_ssl import rules, tree
from rds_force_ssl.database import CANDIDATES, Database, Proxy, database_of, known, proxy_of
from rds_force_ssl.facts.policy import Reboot
from rds_force_ssl.force_ssl import ForceSsl, option_problems, protected_by
from rds_force_ssl.force_ssl import options as force_ssl_options
from rds_force_ssl.options import DatabaseConstruct, ForceSslError
from rds_force_ssl.state import STATE

EXEMPT = "rds-force-ssl:exempt"
COMPLIANCE = "rds-force-ssl:compliance"
Mode = Literal["enforce", "audit"]
ANCHOR_ID = "RdsForceSslBaseline"


def exempt(database: IConstruct, *, reason: str) -> None:
    """Exempt one database from the baseline, on the record.

    The reason lands in the synthesized metadata (``rds-force-ssl:exempt``) and as an info
    annotation that ``cdk synth`` prints, so an exemption is never silent.
    """
    if not isinstance(database, CANDIDATES):
        where = database.node.path if isinstance(database, Construct) else repr(database)
        raise ValueError(
            f"exempt({where}): {type(database).__name__} is not a database the baseline judges, "
            "so exempting it would exempt nothing; pass the rds.DatabaseInstance, "
            "rds.DatabaseCluster or rds.DatabaseProxy (or its L1) declared in this app"
        )
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError(
            f"{database.node.path}: an exemption needs a reason, e.g. exempt(db, "
            "reason='legacy client without TLS until Q3; ticket DB-123')"
        )
    tree.node_of(database).add_metadata(EXEMPT, reason.strip())
    STATE.exempt[tree.ref(database)] = reason.strip()


def exemption(database: IConstruct) -> str | None:
    return STATE.exempt.get(tree.ref(database))


@dataclass(frozen=True)
class Verdict:
    path: str
    compliance: str  # COMPLIANT | NON_COMPLIANT | NOT_APPLICABLE | EXEMPT
    detail: str


@jsii.implements(cdk.IAspect)
class SslBaseline:
    """Hold every RDS database and proxy under a scope (usually the app) to SSL-only.

    mode: ``"enforce"`` adds ForceSsl where it is missing; ``"audit"`` only reports
        (default: "enforce").
    force_ssl_options: passed to each ForceSsl that enforce mode adds (``min_tls_version``,
        ``ca_certificate``, ``force_failover``, ``query_interval``, ``total_timeout``). Where
        the engine table says a database (or a proxy) cannot take ``min_tls_version`` or
        ``ca_certificate``, that option is left out for it, with a warning that says why;
        ``autoscaled_readers`` applies to the Aurora clusters only.
    guard: also add an ``SslGuard`` (docs/guard.md) to the first stack with a database in each
        account and region the scope holds, so that SSL-only stays in effect after deploy
        (default: False).

    Use ``SslBaseline.apply(app, mode=...)``, which adds it with the right priority.
    """

    def __init__(
        self, *, mode: Mode = "enforce", guard: bool = False, **force_ssl_options: Any
    ) -> None:
        _check_arguments("SslBaseline", mode, force_ssl_options)
        _check_guard("SslBaseline", guard)
        self.mode = mode
        self.guard = guard
        self.options = force_ssl_options
        self.verdicts: list[Verdict] = []
        STATE.baselines_created[mode] += 1
        # jsii references of the databases and proxies seen, and of the L1s that belong to
        # them (an L2's own resource, a cluster's members), which the Aspect visits next.
        self._seen: set[str] = set()
        # Every database construct the pass looked at, whatever it found (for _Unjudged).
        self._looked_at: set[str] = set()
        self._scope: IConstruct | None = None  # where apply() (or CDK's first call) put it
        self._root = ""  # jsii reference of the Stage that synthesizes the scope
        self._done = False
        self._depth = 0  # how deep the scope is: the outer baseline runs first
        # Paths of the Stages under the scope that hold databases this baseline cannot reach
        # (CDK's Aspects stop at a Stage) and that no baseline of this mode covers.
        self.unreached: list[str] = []
        # guard=True: the paths of the SslGuards covering the reachable databases (made or found).
        self.guards: list[str] = []

    @property
    def priority(self) -> int:
        if self.mode == "enforce":
            return int(cdk.AspectPriority.MUTATING)
        return int(cdk.AspectPriority.READONLY)

    @classmethod
    def apply(
        cls, scope: IConstruct, *, mode: Mode = "enforce", guard: bool = False, **options: Any
    ) -> SslBaseline:
        """Add the baseline to ``scope``; every mistake in ``mode`` and ``options`` fails here.

        If a baseline of the same mode already covers ``scope`` (on it or on a scope above it),
        that one is returned when the options agree, and the disagreement is an error otherwise.
        """
        if not hasattr(scope, "node"):
            raise TypeError(
                f"SslBaseline.apply({scope!r}): the scope must be a construct, such as the App, "
                "a Stage or a Stack; pass the app to cover every stack: "
                "SslBaseline.apply(app)"
            )
        where = f"SslBaseline.apply({scope.node.path or 'app'})"
        _check_arguments(where, mode, options)
        _check_guard(where, guard)
        for existing in _baselines(scope, mode):
            if existing.same_options(options):
                existing.guard = existing.guard or guard  # adding the guard twice is one guard
                return existing
            raise ValueError(
                f"{where}: an {mode} baseline with other options already covers it "
                f"({_show(existing.options)} here, {_show(options)} now); apply one {mode} "
                "baseline, with the options you want"
            )
        anchor = tree.node_of(scope).try_find_child(ANCHOR_ID)
        if anchor is None:
            anchor = _Anchor(scope, ANCHOR_ID)
        elif not isinstance(anchor, _Anchor):
            raise ValueError(
                f"{where}: {tree.path_of(anchor)} is not the baseline's; the baseline needs the "
                f"child ID {ANCHOR_ID} of {scope.node.path or 'the app'}, rename that construct"
            )
        baseline = cls(mode=mode, guard=guard, **options)
        baseline._register(scope)
        cdk.Aspects.of(anchor).add(baseline, priority=baseline.priority)
        return baseline

    def _register(self, scope: IConstruct) -> None:
        self._scope = scope
        root = scope if isinstance(scope, cdk.Stage) else cdk.Stage.of(scope)
        self._root = tree.ref(root) if root is not None else ""
        path = tree.path_of(scope)
        self._depth = path.count("/") + 1 if path else 0
        STATE.applied.setdefault(tree.ref(scope), []).append(self)

    def same_options(self, options: dict[str, Any]) -> bool:
        return _comparable(self.options) == _comparable(options)

    def visit(self, node: IConstruct) -> None:
        # Added by apply(), CDK calls this once, on the anchor. Added to a scope with
        # Aspects.of(scope).add(), it is called first on that scope, then on every construct
        # under it, which the pass has already judged.
        if self._scope is None:
            self._register(node)
        if not self._done:
            _run_pending(self._root)

    def _run(self) -> None:
        """Judge every database and proxy under the scope, in tree order (one pass)."""
        assert self._scope is not None
        self._done = True
        for node in _reachable(self._scope):
            if isinstance(node, CANDIDATES):
                self._looked_at.add(tree.ref(node))
                self._judge(node)
        self._say_unreached_stages()
        if self.guard:
            self._add_guards()

    def _add_guards(self) -> None:
        """guard=True: one SslGuard per account and region, in the first stack (in tree order)
        that holds a database there. It watches the whole account and region, so a second one
        there would only double the work (docs/guard.md, "One per account and region").
        Env-agnostic stacks all share one guard, the first's, which covers the others only where
        they are deployed to its account and region: each other one with a database is warned."""
        from rds_force_ssl.guard import UNGUARDED_WARNING, SslGuard

        assert self._scope is not None
        reachable = _reachable(self._scope)
        # A guard the app adds itself (with its own options) already covers its env.
        placed: dict[tuple[str, str], SslGuard] = {}
        for node in reachable:
            if isinstance(node, SslGuard):
                stack = tree.stack_of(node)
                placed.setdefault((stack.account, stack.region), node)
        warned: set[str] = set()
        for node in reachable:
            if not isinstance(node, CANDIDATES):
                continue
            stack = tree.stack_of(node)
            env = (stack.account, stack.region)
            guard = placed.get(env)
            if guard is None:
                placed[env] = SslGuard.of(stack)
                continue
            agnostic = any(cdk.Token.is_unresolved(v) for v in env)
            if not agnostic or tree.stack_of(guard) is stack or tree.ref(stack) in warned:
                continue
            warned.add(tree.ref(stack))
            cdk.Annotations.of(stack).add_warning_v2(
                UNGUARDED_WARNING,
                f"{tree.path_of(stack)}: env-agnostic, like {tree.path_of(tree.stack_of(guard))}, "
                f"so guard=True gave it no SslGuard of its own: the guard in "
                f"{tree.path_of(guard)} covers its databases only if both are deployed to the "
                "same account and region. Deployed elsewhere, add one with SslGuard.of(stack), "
                "or give the stacks an env (cdk.Environment(account=..., region=...)).",
            )
        self.guards = sorted(tree.path_of(g) for g in placed.values())

    def _say_unreached_stages(self) -> None:
        """A Stage under the scope is out of this baseline's reach, as of every CDK Aspect (and
        CDK has synthesized it before any Aspect of the app runs, so no annotation can reach its
        stacks now). Where one holds databases and no baseline of this mode is applied inside
        it, summary() names it: an app whose stacks are all in Stages would otherwise pass with
        nothing judged and nothing said."""
        assert self._scope is not None
        covered = {b._root for bs in STATE.applied.values() for b in bs if b.mode == self.mode}
        for stage in _nested_stages(self._scope):
            if tree.ref(stage) in covered:
                continue
            if any(isinstance(c, CANDIDATES) for c in tree.node_of(stage).find_all()):
                self.unreached.append(tree.path_of(stage))

    def unjudged(self) -> list[str]:
        """What a validation reports: databases under the scope that the pass never saw."""
        assert self._scope is not None
        return [
            f"{tree.path_of(node)}: the rds-force-ssl {self.mode} baseline never judged it: it "
            "was added after the baseline ran, by another Aspect; protect it with "
            "ForceSsl(database=...) where that Aspect creates it"
            for node in _reachable(self._scope)
            if isinstance(node, CANDIDATES) and tree.ref(node) not in self._looked_at
        ]

    def _judge(self, node: IConstruct) -> None:
        if tree.ref(node) in self._seen:
            return
        db = database_of(node)
        proxy = proxy_of(node) if db is None else None
        if db is not None:
            self._seen.update(tree.ref(c) for c in (db.construct, db.cfn, *db.members))
        elif proxy is not None:
            self._seen.update(tree.ref(c) for c in (proxy.construct, proxy.cfn))
        else:
            return
        # Several baselines of this mode may reach one database (one on the app, one on a stack
        # applied first): the outermost judges it, once, and different options are an error.
        judges = _baselines(node, self.mode) if STATE.baselines_created[self.mode] > 1 else [self]
        if judges and judges[0] is not self:
            return
        others = [b for b in judges if not b.same_options(self.options)]
        if others:
            cdk.Annotations.of(node).add_error(
                f"{tree.path_of(node)}: two {self.mode} baselines with different options reach "
                f"it ({_show(self.options)} and {_show(others[0].options)}); apply one"
            )
        reason = exemption(node)
        if reason is not None:
            cdk.Annotations.of(node).add_info(f"[rds-force-ssl] EXEMPT from the baseline: {reason}")
            self._record(node, "EXEMPT", reason)
        elif proxy is not None and self.mode == "enforce":
            self._enforce(node, None)
        elif proxy is not None:
            self._audit_proxy(node, proxy)
        elif (
            db is not None
            and db.engine is not None
            and (db.facts is None or db.facts.not_applicable is not None)
        ):
            # Oracle, Db2, an engine the table does not know: said out loud, never passed.
            problems = rules.engine_problems(db)
            for problem in problems:
                cdk.Annotations.of(node).add_warning(_message(problem))
            self._record(node, "NOT_APPLICABLE", "; ".join(map(str, problems)))
        elif db is not None and self.mode == "enforce":
            self._enforce(node, db)
        elif db is not None:
            self._audit(node, db)

    def summary(self) -> str:
        counts = Counter(v.compliance for v in self.verdicts)
        order = ("COMPLIANT", "NON_COMPLIANT", "NOT_APPLICABLE", "EXEMPT")
        said = f"rds-force-ssl {self.mode}: " + ", ".join(f"{counts[k]} {k}" for k in order)
        if self.unreached:
            said += (
                f"; not reached (a Stage of its own, with no {self.mode} baseline): "
                + ", ".join(self.unreached)
                + " (apply a baseline to each Stage too: CDK's Aspects stop at a Stage)"
            )
            if self.guard and not self.guards:
                said += (
                    "; guard=True added no SslGuard: the databases are in those Stages (apply "
                    "the baseline with guard=True to each Stage, or SslGuard.of(stack))"
                )
        return said

    def _enforce(self, node: IConstruct, db: Database | None) -> None:
        if protected_by(node) is not None:
            # Protected by the user's own ForceSsl: still check what it says now.
            self._audit(node, db)
            return
        tree_node = tree.node_of(node)
        scope = tree_node.scope
        assert isinstance(scope, Construct)
        node_id = tree_node.id
        tree.child_path(scope, node_id, node)  # the database's path, for messages and verdicts
        guard_id = f"{node_id}ForceSsl"
        taken = 1
        scope_node = tree.node_of(scope)
        while scope_node.try_find_child(guard_id) is not None:
            taken += 1
            guard_id = f"{node_id}ForceSsl{taken}"
        options, skipped = self._options_for(db)
        try:
            with known(db) if db is not None else nullcontext():
                ForceSsl(scope, guard_id, database=cast(DatabaseConstruct, node), **options)
        except ForceSslError as err:
            for problem in err.problems:
                cdk.Annotations.of(node).add_error(_message(problem))
            self._record(node, "NON_COMPLIANT", "; ".join(map(str, err.problems)))
            return
        for text in skipped:
            cdk.Annotations.of(node).add_warning(f"[rds-force-ssl] {tree.path_of(node)}: {text}")
        self._record(node, "COMPLIANT", f"protected by {tree.child_path(scope, guard_id)}")

    def _options_for(self, db: Database | None) -> tuple[dict[str, Any], list[str]]:
        """The baseline's options that this database (None: a proxy) can take, and why the
        others were left out. The engine table decides; an error here is an option the engine
        could take but not as asked (e.g. TLS 1.3 on PostgreSQL 15), which stays an error."""
        options = dict(self.options)
        skipped = []
        floor = options.get("min_tls_version")
        facts = db.facts if db is not None else None
        # One rule for every engine: where this database cannot take the floor (no setting, or
        # its version is too old), the baseline leaves it out and says why, on the database.
        # (ForceSsl asked directly for a floor it cannot meet is an error instead.)
        why: str | None = None
        if floor is not None and db is None:
            why = "an RDS Proxy has no TLS-floor setting; set the floor on the database behind it"
        elif floor is not None and facts is not None and db is not None:
            short = facts.tls_floor_shortfall(floor, db.version)
            why = None if short is None else f"{short[0]}; the database is made SSL-only without it"
        if floor is not None and why is not None:
            options.pop("min_tls_version")
            skipped.append(f"min_tls_version={floor} is not applied: {why}")
        if db is None and options.pop("ca_certificate", None) is not None:
            skipped.append("ca_certificate is not applied: an RDS Proxy serves its own certificate")
        if options.get("log_connections") and not (facts is not None and facts.connection_log):
            options.pop("log_connections")
            skipped.append(
                "log_connections is not applied: it is a PostgreSQL parameter, and "
                f"{facts.title if facts is not None else 'an RDS Proxy'} has none"
            )
        if db is None or not (db.is_cluster and db.is_aurora):
            # An allowance for Aurora's autoscaled readers, which nothing else has: like
            # force_failover where there is no failover, it does not apply (ForceSsl itself
            # refuses it there, which would fail every instance and proxy of the app).
            options.pop("autoscaled_readers", None)
        return options, skipped

    def _audit_proxy(self, node: IConstruct, proxy: Proxy) -> None:
        errors = rules.proxy_problems(proxy)
        for problem in errors:
            cdk.Annotations.of(node).add_error(_message(problem))
        if errors:
            self._record(node, "NON_COMPLIANT", "; ".join(map(str, errors)))
        else:
            self._record(node, "COMPLIANT", "require_tls=True")

    def _audit(self, node: IConstruct, db: Database | None) -> None:
        if db is None:
            proxy = proxy_of(node)
            assert proxy is not None
            self._audit_proxy(node, proxy)
            return
        errors, warnings = audit(node, db)
        for problem in errors:
            cdk.Annotations.of(node).add_error(_message(problem))
        for problem in warnings:
            cdk.Annotations.of(node).add_warning(_message(problem))
        facts = db.facts
        if errors:
            self._record(node, "NON_COMPLIANT", "; ".join(map(str, errors)))
        else:
            assert facts is not None
            self._record(
                node,
                "COMPLIANT",
                "; ".join(map(str, warnings)) or f"{facts.parameter}={facts.value}",
            )

    def _record(self, node: IConstruct, compliance: str, detail: str) -> None:
        # One verdict per database in the assembly: with enforce and audit both applied, the
        # audit runs last and sees the result, so only it writes.
        if self.mode == "audit" or not (
            STATE.baselines_created["audit"] and _baselines(node, "audit")
        ):
            tree.node_of(node).add_metadata(COMPLIANCE, compliance)
        self.verdicts.append(Verdict(tree.path_of(node), compliance, detail))


def audit(node: IConstruct, db: Database) -> tuple[list[rules.Problem], list[rules.Problem]]:
    """(errors, warnings) for one database whose engine the table covers, changing nothing."""
    problems = rules.engine_problems(db)
    facts = db.facts
    if problems or facts is None or facts.parameter is None or facts.value is None:
        return problems, []
    param, value = facts.parameter, facts.value
    group = pg.locate(node, db.group_name)
    problems += rules.group_problems(node, db, group, {param: value})
    problems += rules.unset_problems(db, group, param, value, others=problems)
    if problems or protected_by(node) is not None:
        return problems, []
    unenforced = rules.unenforced_problem(db, param)
    # CloudFormation reboots an instance when its group association changes, but never a
    # cluster member, so on a cluster this is an error and on an instance a warning.
    return ([unenforced], []) if db.is_cluster else ([], [unenforced])


def _check_arguments(where: str, mode: object, options: dict[str, Any]) -> None:
    problems = []
    if mode not in ("enforce", "audit"):
        problems.append(f"{where}: mode={mode!r}; use 'enforce' or 'audit'")
    elif mode == "audit" and options:
        problems.append(
            f"{where}: audit mode changes nothing, so it takes no options (got "
            f"{', '.join(options)}); pass them to the enforce baseline"
        )
    else:
        problems += _misspelt(where, options)
        known_options = {k: v for k, v in options.items() if k in _force_ssl_options()}
        problems += option_problems(where, known_options)
    if problems:
        raise ValueError("SslBaseline cannot be applied:\n- " + "\n- ".join(problems))


def _force_ssl_options() -> list[str]:
    return list(force_ssl_options())


def _misspelt(where: str, options: dict[str, Any]) -> list[str]:
    """Names neither the baseline nor ForceSsl takes, with a "did you mean" that knows both."""
    accepted = _force_ssl_options()
    own = ["mode", "guard"]
    problems = []
    for name in options:
        if name not in accepted:
            close = difflib.get_close_matches(name, own + accepted, n=1)
            mean = f"did you mean {close[0]!r}? " if close else ""
            problems.append(
                f"{where}: {name!r} is not a ForceSsl option, nor the baseline's; {mean}"
                f"SslBaseline takes {', '.join(own)}, and passes on to ForceSsl "
                f"{', '.join(accepted)}"
            )
    return problems


def _check_guard(where: str, guard: object) -> None:
    if not isinstance(guard, bool):
        raise ValueError(
            f"SslBaseline cannot be applied:\n- {where}: guard={guard!r}; use True or False"
        )


def _baselines(node: IConstruct, mode: str) -> list[SslBaseline]:
    """The baselines of ``mode`` on ``node`` and the scopes above it up to its Stage (which
    CDK's Aspects do not cross), outermost first."""
    scopes = tree.node_of(node).scopes
    stages = [i for i, scope in enumerate(scopes) if isinstance(scope, cdk.Stage)]
    return [
        baseline
        for scope in scopes[stages[-1] if stages else 0 :]
        for baseline in STATE.applied.get(tree.ref(scope), [])
        if baseline.mode == mode
    ]


def _run_pending(root: str) -> None:
    """Run every baseline of the Stage ``root`` that has not run, in the order CDK invokes
    Aspects on one construct: by priority, then the outer scope first."""
    pending = [
        b
        for baselines in STATE.applied.values()
        for b in baselines
        if b._root == root and not b._done
    ]
    pending.sort(key=lambda b: (b.priority, b._depth))
    for baseline in pending:
        baseline._run()


def _nested_stages(scope: IConstruct) -> list[cdk.Stage]:
    """The Stages under ``scope`` that are not inside another Stage under it."""
    everything = tree.node_of(scope).find_all()
    top = tree.ref(scope)
    stages = [c for c in everything if isinstance(c, cdk.Stage) and tree.ref(c) != top]
    inner: set[str] = set()
    for stage in stages:
        inner.update(
            tree.ref(c)
            for c in tree.node_of(stage).find_all()
            if isinstance(c, cdk.Stage) and c is not stage and tree.ref(c) != tree.ref(stage)
        )
    return [s for s in stages if tree.ref(s) not in inner]


def _reachable(scope: IConstruct) -> list[IConstruct]:
    """``scope`` and everything under it, in tree order, but for nested Stages: one round trip."""
    everything = tree.node_of(scope).find_all()
    top = tree.ref(scope)
    stages = [c for c in everything if isinstance(c, cdk.Stage) and tree.ref(c) != top]
    if not stages:
        return everything
    hidden: set[str] = set()
    for stage in stages:  # outer Stages come first: one inside another is already hidden
        if tree.ref(stage) not in hidden:
            hidden.update(tree.ref(c) for c in tree.node_of(stage).find_all())
    return [c for c in everything if tree.ref(c) not in hidden]


class _Anchor(Construct):
    """The empty child of a baseline's scope that carries its Aspect, so that CDK calls the
    Aspect once per synth; its validation fails synth on a database the baseline never saw."""

    def __init__(self, scope: IConstruct, construct_id: str) -> None:
        super().__init__(scope, construct_id)  # type: ignore[arg-type]
        self.node.add_validation(_Unjudged(tree.ref(scope)))


@jsii.implements(IValidation)
class _Unjudged:
    def __init__(self, scope_ref: str) -> None:
        self._scope_ref = scope_ref

    def validate(self) -> list[str]:
        return [
            problem
            for baseline in STATE.applied.get(self._scope_ref, [])
            if baseline._done
            for problem in baseline.unjudged()
        ]


def _comparable(options: dict[str, Any]) -> dict[str, Any]:
    # jsii values compare by identity: two Duration.seconds(10) are not ==.
    def key(value: Any) -> Any:
        if isinstance(value, Reboot):
            return ("Reboot", f"Reboot.{value.name}")
        if isinstance(value, cdk.Duration):
            return ("Duration", value.to_milliseconds())
        if hasattr(value, "to_string") and not isinstance(value, str):
            return (type(value).__name__, value.to_string())
        return value

    return {name: key(value) for name, value in options.items()}


def _show(options: dict[str, Any]) -> str:
    shown = {k: v[1] if isinstance(v, tuple) else v for k, v in _comparable(options).items()}
    return ", ".join(f"{k}={v!r}" for k, v in shown.items()) or "no options"


def _message(problem: rules.Problem) -> str:
    if problem.rule is None:
        return str(problem)
    return f"{problem} (why: {problem.rule.why})"
