"""The baseline's rules: stable IDs, why each matters, and the checks shared with ForceSsl.

The checks are engine-aware through the engine table (``facts/engines.py``): a message names
the engine's own parameter, never a hard-coded one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aws_cdk as cdk
from constructs import IConstruct

from rds_force_ssl import parameter_group as pg
from rds_force_ssl import tree
from rds_force_ssl.database import Database, Proxy
from rds_force_ssl.facts import engines


@dataclass(frozen=True)
class Rule:
    """One baseline rule. ``finding``, ``audit`` and ``enforce`` are its row of the rule
    catalogue (docs/baseline.md, generated from these): what it finds, and what each mode of
    the baseline does about it."""

    id: str
    title: str
    why: str
    finding: str
    audit: str
    enforce: str


RFS1 = Rule(
    "RFS1",
    "Database does not set its engine's SSL parameter",
    "without it (rds.force_ssl=1 for PostgreSQL and SQL Server, require_secure_transport for "
    "MySQL and MariaDB), clients that do not ask for TLS (libpq's default sslmode=prefer falls "
    "back) send passwords and data in plaintext; the engine default differs by version, so it "
    "is pinned explicitly",
    finding=(
        "the database does not set its engine's SSL parameter (`rds.force_ssl=1`, "
        "`require_secure_transport`; engine default group, or a group without it; the default "
        "differs by version, so it is pinned)"
    ),
    audit="error",
    enforce="fixed",
)
RFS2 = Rule(
    "RFS2",
    "Parameter group turns SSL enforcement off",
    "rds.force_ssl=0 or require_secure_transport=OFF lets any client connect without TLS",
    finding="its group turns it off (`rds.force_ssl=0`, `require_secure_transport=0`/`OFF`)",
    audit="error",
    enforce="error",
)
RFS3 = Rule(
    "RFS3",
    "SSL enforcement cannot be checked at synth",
    "an imported group, an unpinned engine or a deploy-time token hides the value; a check "
    "that cannot see the value must not pass",
    finding=(
        "synth cannot see the value: an imported group, a group by name, a deploy-time token, "
        "an unpinned engine version or an unknown engine"
    ),
    audit="error",
    enforce="error",
)
RFS4 = Rule(
    "RFS4",
    "SSL enforcement is configured but nothing makes it effective",
    "RDS applies a newly associated group (and a changed static parameter) only after a "
    "reboot; CloudFormation never reboots cluster members or for an edited group, and does not "
    "wait for in-sync, so the setting can stay pending-reboot",
    finding=(
        "the parameter is configured but no `ForceSsl` makes sure it is in effect (reboots what"
        " is `pending-reboot`, waits for `in-sync`)"
    ),
    audit="error on a cluster (CloudFormation never reboots members), warning on an instance",
    enforce="fixed",
)
RFS5 = Rule(
    "RFS5",
    "A cluster member's parameter group contradicts the cluster's",
    "a member group that turns the SSL parameter off disagrees with the cluster group that "
    "enforces it; which one a reader sees is not something to leave to chance",
    finding="an Aurora member's own parameter group turns the SSL parameter off",
    audit="error",
    enforce="error",
)
RFS6 = Rule(
    "RFS6",
    "RDS Proxy does not require TLS",
    "a proxy with RequireTLS off accepts plaintext clients even when the database behind it "
    "refuses them: the proxy, not the client, opens the connection to the database",
    finding=(
        "an RDS Proxy does not require TLS: `require_tls=False`, or an L1 `CfnDBProxy` without "
        "`RequireTLS` (CloudFormation's default is false)"
    ),
    audit="error",
    enforce="fixed, unless `require_tls=False` was set explicitly (error)",
)
RFS7 = Rule(
    "RFS7",
    "Engine version is too old for SSL enforcement",
    "the engine's SSL parameter does not exist before its minimum version (MariaDB 10.5, "
    "MySQL 5.7, Aurora MySQL version 2), so no parameter group can make it SSL-only",
    finding=(
        "the engine is older than its SSL parameter (MariaDB < 10.5, MySQL < 5.7, Aurora MySQL "
        "version 1); the fix is an upgrade"
    ),
    audit="error",
    enforce="error",
)
RFS8 = Rule(
    "RFS8",
    "Engine cannot be made SSL-only by a parameter",
    "Oracle and Db2 take TLS on a second port next to the plaintext one; only network rules "
    "close the plaintext port, and synth cannot prove them, so the database is reported "
    "rather than passed",
    finding=(
        "the engine cannot be made SSL-only by a parameter (Oracle, Db2) or is not in the "
        "engine table: verdict `NOT_APPLICABLE`, with the reason and AWS's page; `exempt()` it "
        "once the plaintext port is closed by other means"
    ),
    audit="warning",
    enforce="warning",
)
RULES = (RFS1, RFS2, RFS3, RFS4, RFS5, RFS6, RFS7, RFS8)


@dataclass(frozen=True)
class Problem:
    rule: Rule | None  # None: about how a construct was used, not a baseline rule
    text: str

    def __str__(self) -> str:
        return f"[{self.rule.id}] {self.text}" if self.rule else self.text


def unset_problems(
    db: Database, group: pg.GroupRef, param: str, value: str, *, others: list[Problem]
) -> list[Problem]:
    """RFS1: the database leaves its engine's SSL parameter to the engine default (the default
    group, or a group that does not set it; ``others``: what the group checks already found)."""
    if group.kind == "none":
        return [
            Problem(
                RFS1,
                f"{db.path}: uses the engine's default parameter group, whose {param} depends "
                "on the engine version; add ForceSsl(database=...) or the baseline in enforce "
                "mode",
            )
        ]
    if not others and param not in (group.parameters or {}):
        return [
            Problem(
                RFS1,
                f"{db.path}: parameter group {group.name} does not set {param}; add "
                f"ForceSsl(database=...), or set it to '{value}' in the group",
            )
        ]
    return []


def unenforced_problem(db: Database, param: str) -> Problem:
    """RFS4: the parameter is configured, but nothing puts it in effect."""
    return Problem(
        RFS4,
        f"{db.path}: {param} is configured but no ForceSsl makes sure it is in effect (a new "
        "group applies only after a reboot, and nothing waits for in-sync); add "
        "ForceSsl(database=...)",
    )


def engine_problems(db: Database) -> list[Problem]:
    """Why ``db``'s engine and version cannot be made SSL-only by a parameter (empty: they can).

    Everything engine-specific comes from the engine table (``db.facts``)."""
    facts = db.facts
    if db.serverless_v1:
        # https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-serverless-v1.how-it-works.html
        return [
            Problem(
                None,
                f"{db.path}: Aurora Serverless v1 (engine mode serverless) reached end of life on "
                "2025-03-31: AWS stopped creating v1 clusters on 2025-01-08 and moves the "
                "remaining ones to Serverless v2 or provisioned, where parameters apply like on "
                "any Aurora cluster; declare it as rds.DatabaseCluster(..., "
                "writer=rds.ClusterInstance.serverless_v2('Writer')) and protect that",
            )
        ]
    if db.engine is None and getattr(db.cfn, "source_db_instance_identifier", None) is not None:
        return [
            Problem(
                RFS3,
                f"{db.path}: a read replica whose source is not declared in this app, so its "
                "engine is unknown at synth; give the replica a parameter group for the "
                "source's engine (parameter_group=rds.ParameterGroup(self, 'ReplicaParams', "
                "engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion."
                "VER_16_9))): RDS requires its family to match the source, so ForceSsl reads the "
                "engine from it",
            )
        ]
    if db.engine is None:
        return [
            Problem(
                RFS3,
                f"{db.path}: its engine is unknown at synth (a token, or an L1 without Engine); "
                "set the engine and its version as literals",
            )
        ]
    if facts is None:
        return [
            Problem(
                RFS8,
                f"{db.path}: engine {db.engine} is not in rds-force-ssl's engine table, so "
                "nothing here can make it SSL-only; exempt it with a reason, or protect it by "
                "other means",
            )
        ]
    if facts.not_applicable is not None:
        return [
            Problem(
                RFS8,
                f"{db.path}: {facts.title} cannot be made SSL-only by a parameter: "
                f"{facts.not_applicable} (see {facts.source}); exempt it with a reason once its "
                "plaintext port is closed by other means",
            )
        ]
    if db.is_cluster and not (facts.aurora or facts.multi_az_cluster):
        return [
            Problem(
                None,
                f"{db.path}: engine {db.engine} does not run as a DB cluster; declare it as an "
                "instance",
            )
        ]
    if db.version is None:
        return [
            Problem(
                RFS3,
                f"{db.path}: engine version is not pinned, so the parameter-group family is "
                f"unknown; pass e.g. engine={facts.pin_example}",
            )
        ]
    if facts.too_old(db.version):
        assert facts.minimum_version is not None
        return [
            Problem(
                RFS7,
                f"{db.path}: {facts.title} {db.version} has no {facts.parameter} (it needs "
                f"{facts.title} {engines.show(facts.minimum_version)} or later, see "
                f"{facts.source}); upgrade the engine",
            )
        ]
    return []


def group_problems(
    scope: IConstruct, db: Database, group: pg.GroupRef, wanted: Mapping[str, str]
) -> list[Problem]:
    """What stands between ``group`` and ``wanted``: an unknown group, the SSL parameter turned
    off, tokens, or another value for a parameter ForceSsl was asked to set; and, for a cluster,
    members whose own group contradicts it. A database with no group of its own has only the
    latter. (Call only once ``engine_problems`` found none.)"""
    facts = db.facts
    assert facts is not None
    assert facts.parameter is not None
    if group.kind == "none":
        return member_problems(scope, db)
    if group.kind == "unknown":
        if isinstance(db.construct, cdk.CfnResource):
            fix = (
                "reference a CfnDBParameterGroup / CfnDBClusterParameterGroup declared in this "
                "app (its .ref), or remove the name and let ForceSsl attach its group"
            )
        else:
            fix = (
                "pass a CDK rds.ParameterGroup (or parameters=) instead, or remove it and let "
                "ForceSsl attach its group"
            )
        return [
            Problem(
                RFS3,
                f"{db.path}: parameter group {group.name} is imported or not defined in this "
                f"app, so its {facts.parameter} cannot be checked or set; {fix}",
            )
        ]
    problems = family_problems(db, group)
    for key, value in wanted.items():
        have = (group.parameters or {}).get(key)
        if have is None or str(have) == value:
            continue
        if cdk.Token.is_unresolved(have) or not isinstance(have, (str, int)):
            problems.append(
                Problem(
                    RFS3,
                    f"{db.path}: parameter group {group.name} sets {key} to a value only known "
                    f"at deploy time; set it to '{value}' literally, or remove it",
                )
            )
        elif key == facts.parameter:
            if not facts.enforces(have):
                problems.append(
                    Problem(
                        RFS2,
                        f"{db.path}: parameter group {group.name} sets {key}={have}; "
                        f"remove it or set '{value}'",
                    )
                )
        else:
            problems.append(
                Problem(
                    None,
                    f"{db.path}: parameter group {group.name} sets {key}={have}, but "
                    f"{value} was asked for; make them agree",
                )
            )
    return problems + member_problems(scope, db)


def family_problems(db: Database, group: pg.GroupRef) -> list[Problem]:
    """A group of another family than the database's: RDS refuses the pair at deploy, and a group
    shared by databases of different engines or versions would get parameters that one of
    them does not have (CDK checks neither)."""
    family = getattr(group.l1, "family", None)
    if not isinstance(family, str) or tree.unresolved(family) or db.family is None:
        return []
    if family.lower() == db.family.lower():
        return []
    return [
        Problem(
            None,
            f"{db.path}: parameter group {group.name} is of family {family}, but {db.engine} "
            f"{db.version} takes {db.family}; give the database a group of family {db.family} "
            "(a group is shared only by databases of one engine and major version)",
        )
    ]


def member_problems(scope: IConstruct, db: Database) -> list[Problem]:
    facts = db.facts
    assert facts is not None
    assert facts.parameter is not None
    problems = []
    for member in db.members:
        group = pg.locate(scope, member.db_parameter_group_name)
        have = (group.parameters or {}).get(facts.parameter)
        if have is not None and not facts.enforces(have):
            problems.append(
                Problem(
                    RFS5,
                    f"{db.path}: member {member.node.path} uses parameter group {group.name} "
                    f"with {facts.parameter}={have}; remove it from the member's group (the "
                    "cluster parameter group is where Aurora reads it)",
                )
            )
    return problems


def proxy_problems(proxy: Proxy) -> list[Problem]:
    """Why ``proxy`` does not require TLS, as synth sees it (empty: it does)."""
    have = proxy.cfn.require_tls
    prop = engines.PROXY.property
    if have is True:
        return []
    if have is not None and (cdk.Token.is_unresolved(have) or not isinstance(have, bool)):
        return [
            Problem(
                RFS3,
                f"{proxy.path}: {prop} is only known at deploy time; set require_tls=True "
                "literally",
            )
        ]
    if have is False:
        return [
            Problem(
                RFS6,
                f"{proxy.path}: the proxy sets require_tls=False ({prop}); remove it or set "
                "require_tls=True",
            )
        ]
    return [
        Problem(
            RFS6,
            f"{proxy.path}: the proxy does not set {prop} (CloudFormation's default is "
            f"{str(engines.PROXY.cloudformation_default).lower()}); "
            "set require_tls=True or add ForceSsl(database=proxy)",
        )
    ]
