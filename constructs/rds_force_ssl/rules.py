"""The baseline's rules: stable IDs, why each matters, and the check shared with ForceSsl."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aws_cdk as cdk
from constructs import IConstruct

from rds_force_ssl import parameter_group as pg
from rds_force_ssl.database import Database


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    why: str


RFS1 = Rule(
    "RFS1",
    "PostgreSQL database does not set rds.force_ssl=1",
    "without it, clients that do not ask for TLS (libpq's default sslmode=prefer falls back) "
    "send passwords and data in plaintext; the engine default differs by version, so it is "
    "pinned explicitly",
)
RFS2 = Rule(
    "RFS2",
    "Parameter group turns SSL enforcement off",
    "rds.force_ssl=0 lets any client connect without TLS",
)
RFS3 = Rule(
    "RFS3",
    "SSL enforcement cannot be checked at synth",
    "an imported group, an unpinned engine or a deploy-time token hides the value; a check "
    "that cannot see the value must not pass",
)
RFS4 = Rule(
    "RFS4",
    "rds.force_ssl=1 is configured but nothing makes it effective",
    "RDS applies a new or changed group only after a reboot; CloudFormation never reboots "
    "cluster members or for an edited group, so the setting can stay pending-reboot",
)
RFS5 = Rule(
    "RFS5",
    "A cluster member's parameter group contradicts the cluster's",
    "a member group that sets rds.force_ssl=0 disagrees with the cluster group that enforces "
    "it; which one a reader sees is not something to leave to chance",
)
RULES = (RFS1, RFS2, RFS3, RFS4, RFS5)


@dataclass(frozen=True)
class Problem:
    rule: Rule | None  # None: about how a construct was used, not a baseline rule
    text: str

    def __str__(self) -> str:
        return f"[{self.rule.id}] {self.text}" if self.rule else self.text


def engine_problems(db: Database) -> list[Problem]:
    if db.engine is None:
        return [
            Problem(
                RFS3,
                f"{db.path}: its engine is unknown at synth (an imported source, a token, or a "
                "read replica whose source is not in this stack); name the engine and version "
                "explicitly",
            )
        ]
    if db.major is None:
        return [
            Problem(
                RFS3,
                f"{db.path}: engine version is not pinned, so the parameter-group family is "
                "unknown; pass e.g. engine=rds.DatabaseInstanceEngine.postgres("
                "version=rds.PostgresEngineVersion.VER_16_9)",
            )
        ]
    return []


def group_problems(
    scope: IConstruct, db: Database, group: pg.GroupRef, wanted: Mapping[str, str]
) -> list[Problem]:
    """What stands between ``group`` and ``wanted``: an unknown group, force_ssl=0, tokens, or
    another value for a parameter ForceSsl was asked to set; and, for a cluster, members whose
    own group contradicts it. A database with no group of its own has only the latter."""
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
                f"app, so its {pg.FORCE_SSL} cannot be checked or set; {fix}",
            )
        ]
    problems = []
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
        elif key == pg.FORCE_SSL:
            problems.append(
                Problem(
                    RFS2,
                    f"{db.path}: parameter group {group.name} sets {pg.FORCE_SSL}={have}; "
                    "remove it or set '1'",
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


def member_problems(scope: IConstruct, db: Database) -> list[Problem]:
    problems = []
    for member in db.members:
        group = pg.locate(scope, member.db_parameter_group_name)
        have = (group.parameters or {}).get(pg.FORCE_SSL)
        if have is not None and str(have) != "1":
            problems.append(
                Problem(
                    RFS5,
                    f"{db.path}: member {member.node.path} uses parameter group {group.name} "
                    f"with {pg.FORCE_SSL}={have}; remove it from the member's group (the "
                    "cluster parameter group is where Aurora reads it)",
                )
            )
    return problems
