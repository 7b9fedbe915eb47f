"""``SslBaseline``: a CDK Aspect that holds every PostgreSQL database in an app to SSL-only.

- **enforce** (``AspectPriority.MUTATING``): every PostgreSQL database that no ForceSsl protects
  yet gets one, with the baseline's options. What cannot be fixed (``rds.force_ssl=0``, an
  imported group, a value synth cannot see) is an error annotation, so synth fails.
- **audit** (``AspectPriority.READONLY``): nothing changes; every non-compliant database gets an
  error annotation ``[RFSn] ...`` with the path, why it matters and the fix.

Non-PostgreSQL engines are NOT_APPLICABLE; ``exempt(db, reason=...)`` records a visible
exemption. Each database's verdict is written to its metadata (``rds-force-ssl:compliance``),
and ``summary()`` counts them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal, cast

import aws_cdk as cdk
import jsii
from constructs import Construct, IConstruct

from rds_force_ssl import parameter_group as pg
from rds_force_ssl import rules
from rds_force_ssl.database import Database, database_of
from rds_force_ssl.force_ssl import DatabaseConstruct, ForceSsl, ForceSslError, protected_by

EXEMPT = "rds-force-ssl:exempt"
COMPLIANCE = "rds-force-ssl:compliance"
Mode = Literal["enforce", "audit"]


def exempt(database: IConstruct, *, reason: str) -> None:
    """Exempt one database from the baseline, on the record.

    The reason lands in the synthesized metadata (``rds-force-ssl:exempt``) and as an info
    annotation that ``cdk synth`` prints, so an exemption is never silent.
    """
    if not reason or not reason.strip():
        raise ValueError(
            f"{database.node.path}: an exemption needs a reason, e.g. exempt(db, "
            "reason='legacy client without TLS until Q3; ticket DB-123')"
        )
    database.node.add_metadata(EXEMPT, reason.strip())


def exemption(database: IConstruct) -> str | None:
    for entry in database.node.metadata:
        if entry.type == EXEMPT:
            return str(entry.data)
    return None


@dataclass(frozen=True)
class Verdict:
    path: str
    compliance: str  # COMPLIANT | NON_COMPLIANT | NOT_APPLICABLE | EXEMPT
    detail: str


@jsii.implements(cdk.IAspect)
class SslBaseline:
    """Hold every PostgreSQL database under a scope (usually the app) to SSL-only.

    mode: ``"enforce"`` adds ForceSsl where it is missing; ``"audit"`` only reports
        (default: "enforce").
    force_ssl_options: passed to each ForceSsl that enforce mode adds (``min_tls_version``,
        ``ca_certificate``, ``force_failover``, ``query_interval``, ``total_timeout``).

    Use ``SslBaseline.apply(app, mode=...)``, which adds it with the right priority.
    """

    def __init__(self, *, mode: Mode = "enforce", **force_ssl_options: Any) -> None:
        if mode not in ("enforce", "audit"):
            raise ValueError(f"SslBaseline: mode={mode!r}; use 'enforce' or 'audit'")
        if mode == "audit" and force_ssl_options:
            raise ValueError("SslBaseline: audit mode changes nothing, so it takes no options")
        self.mode = mode
        self.options = force_ssl_options
        self.verdicts: list[Verdict] = []
        self._seen: set[str] = set()

    @property
    def priority(self) -> int:
        if self.mode == "enforce":
            return int(cdk.AspectPriority.MUTATING)
        return int(cdk.AspectPriority.READONLY)

    @classmethod
    def apply(cls, scope: IConstruct, *, mode: Mode = "enforce", **options: Any) -> SslBaseline:
        baseline = cls(mode=mode, **options)
        cdk.Aspects.of(scope).add(baseline, priority=baseline.priority)
        return baseline

    def visit(self, node: IConstruct) -> None:
        db = database_of(node)
        if db is None or db.path in self._seen:
            return
        self._seen.add(db.path)
        reason = exemption(node)
        if reason is not None:
            cdk.Annotations.of(node).add_info(f"[rds-force-ssl] EXEMPT from the baseline: {reason}")
            self._record(node, "EXEMPT", reason)
        elif db.engine is not None and not db.is_postgres:
            self._record(node, "NOT_APPLICABLE", f"engine {db.engine}")
        elif self.mode == "enforce":
            self._enforce(node, db)
        else:
            self._audit(node, db)

    def summary(self) -> str:
        counts = Counter(v.compliance for v in self.verdicts)
        order = ("COMPLIANT", "NON_COMPLIANT", "NOT_APPLICABLE", "EXEMPT")
        return f"rds-force-ssl {self.mode}: " + ", ".join(f"{counts[k]} {k}" for k in order)

    def _enforce(self, node: IConstruct, db: Database) -> None:
        if protected_by(node) is not None:
            # Protected by the user's own ForceSsl: still check what the group says now.
            self._audit(node, db)
            return
        scope = node.node.scope
        assert isinstance(scope, Construct)
        guard_id = f"{node.node.id}ForceSsl"
        taken = 1
        while scope.node.try_find_child(guard_id) is not None:
            taken += 1
            guard_id = f"{node.node.id}ForceSsl{taken}"
        try:
            guard = ForceSsl(
                scope,
                guard_id,
                database=cast(DatabaseConstruct, node),
                **self.options,
            )
        except ForceSslError as err:
            for problem in err.problems:
                cdk.Annotations.of(node).add_error(_message(problem))
            self._record(node, "NON_COMPLIANT", "; ".join(map(str, err.problems)))
            return
        self._record(node, "COMPLIANT", f"protected by {guard.node.path}")

    def _audit(self, node: IConstruct, db: Database) -> None:
        errors, warnings = audit(node, db)
        for problem in errors:
            cdk.Annotations.of(node).add_error(_message(problem))
        for problem in warnings:
            cdk.Annotations.of(node).add_warning(_message(problem))
        if errors:
            self._record(node, "NON_COMPLIANT", "; ".join(map(str, errors)))
        else:
            self._record(node, "COMPLIANT", "; ".join(map(str, warnings)) or "rds.force_ssl=1")

    def _record(self, node: IConstruct, compliance: str, detail: str) -> None:
        node.node.add_metadata(COMPLIANCE, compliance)
        self.verdicts.append(Verdict(node.node.path, compliance, detail))


def audit(node: IConstruct, db: Database) -> tuple[list[rules.Problem], list[rules.Problem]]:
    """(errors, warnings) for one PostgreSQL database, changing nothing."""
    problems = rules.engine_problems(db)
    group = pg.locate(node, db.group_name)
    problems += rules.group_problems(node, db, group, {pg.FORCE_SSL: "1"})
    if group.kind == "none":
        problems.append(
            rules.Problem(
                rules.RFS1,
                f"{db.path}: uses the engine's default parameter group, whose "
                f"{pg.FORCE_SSL} depends on the engine version; add ForceSsl(database=...) or "
                "the baseline in enforce mode",
            )
        )
    elif not problems and pg.FORCE_SSL not in (group.parameters or {}):
        problems.append(
            rules.Problem(
                rules.RFS1,
                f"{db.path}: parameter group {group.name} does not set {pg.FORCE_SSL}; "
                "add ForceSsl(database=...), or set it to '1' in the group",
            )
        )
    if problems or protected_by(node) is not None:
        return problems, []
    unenforced = rules.Problem(
        rules.RFS4,
        f"{db.path}: {pg.FORCE_SSL}=1 is configured but no ForceSsl reboots the database, so "
        "the setting may stay pending-reboot; add ForceSsl(database=...)",
    )
    # CloudFormation reboots an instance when its group association changes, but never a
    # cluster member, so on a cluster this is an error and on an instance a warning.
    return ([unenforced], []) if db.is_cluster else ([], [unenforced])


def _message(problem: rules.Problem) -> str:
    if problem.rule is None:
        return str(problem)
    return f"{problem} (why: {problem.rule.why})"
