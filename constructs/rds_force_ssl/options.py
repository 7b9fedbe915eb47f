"""ForceSsl's options and what is wrong with them, before anything joins the tree: names it
does not take (with the one probably meant), values that do not match its type hints, values out
of range, and combinations that contradict each other. SslBaseline.apply runs the same checks on
the options it will pass on, so that a mistake fails where it was made.

The construct is in ``force_ssl``; the checks that need the database (its engine, its group)
are in ``force_ssl.check`` and ``rules``.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple, ParamSpec

import aws_cdk as cdk
from aws_cdk import aws_rds as rds
from constructs import Construct

from rds_force_ssl import rules, tree
from rds_force_ssl.facts import engines
from rds_force_ssl.facts.policy import Reboot
from rds_force_ssl.reboot_provider import timing_problems

DatabaseConstruct = (
    rds.DatabaseInstanceBase
    | rds.DatabaseCluster
    | rds.DatabaseClusterFromSnapshot
    | rds.CfnDBInstance
    | rds.CfnDBCluster
    | rds.DatabaseProxy
    | rds.CfnDBProxy
)


# What `database=` may be at run time: the kinds above, and the database constructs that check()
# refuses with a reason of their own (Aurora Serverless v1) or that are clusters too (restored).
_DATABASE_CLASSES = (
    rds.DatabaseInstanceBase,
    rds.DatabaseClusterBase,
    rds.ServerlessCluster,
    rds.ServerlessClusterFromSnapshot,
    rds.CfnDBInstance,
    rds.CfnDBCluster,
    rds.DatabaseProxy,
    rds.CfnDBProxy,
)


P = ParamSpec("P")


class ForceSslError(ValueError):
    """Why a database cannot be protected; ``problems`` keeps each one with its rule."""

    def __init__(self, problems: list[rules.Problem]) -> None:
        self.problems = problems
        super().__init__(
            "ForceSsl cannot protect this database:\n- " + "\n- ".join(map(str, problems))
        )


class ForceSslArgumentError(ForceSslError, TypeError):
    """A keyword ForceSsl does not take: a TypeError, as Python's own would be, but with the
    construct path and the option it was probably meant to be."""


def _known_keywords(init: Callable[P, None]) -> Callable[P, None]:
    """Check keyword names before Python does, so that a misspelt option gets the same
    "did you mean" as SslBaseline gives it, with the construct's path."""
    accepted = inspect.signature(init).parameters

    @functools.wraps(init)
    def checked(*args: P.args, **kwargs: P.kwargs) -> None:
        unknown = {k: v for k, v in kwargs.items() if k not in accepted}
        if unknown:
            scope = args[1] if len(args) > 1 else kwargs.get("scope")
            ident = args[2] if len(args) > 2 else kwargs.get("construct_id")
            where = (
                tree.child_path(scope, ident)  # type: ignore[arg-type]
                if hasattr(scope, "node") and isinstance(ident, str)
                else "ForceSsl"
            )
            raise ForceSslArgumentError(
                [
                    rules.Problem(None, text)
                    for text in type_problems(where, unknown, options_of(init))
                ]
            )
        init(*args, **kwargs)

    return checked


def _policy_problems(path: str, reboot: object, others: object) -> list[str]:
    if reboot is Reboot.NEVER and others is True:
        return [
            f"{path}: reboot_for_other_parameters=True asks for restarts that reboot=Reboot.NEVER "
            "never makes; drop one of the two"
        ]
    return []


def _autoscaled_readers_problem(path: str) -> rules.Problem:
    return rules.Problem(
        None,
        f"{path}: autoscaled_readers applies to Aurora clusters only (Aurora Auto Scaling adds "
        "readers nowhere else); remove it",
    )


class Option(NamedTuple):
    hint: Any
    default: Any


@functools.cache
def options_of(init: Callable[..., None]) -> dict[str, Option]:
    """A construct's options, read from its own ``__init__``: every keyword but ``database``
    (the hints resolve in the construct's module, whose globals ``init`` carries)."""
    hints = typing.get_type_hints(init)
    return {
        name: Option(hints[name], param.default)
        for name, param in inspect.signature(init).parameters.items()
        if param.kind is inspect.Parameter.KEYWORD_ONLY and name != "database"
    }


def database_problems(path: str, database: object) -> list[str]:
    if isinstance(database, _DATABASE_CLASSES):
        return []
    if isinstance(database, str):
        why = (
            f"database={database!r} is a string; ForceSsl changes the database's parameter group, "
            "so it needs the construct, not a name or an identifier"
        )
    elif isinstance(database, Construct):
        why = (
            f"database is the {_describe(database)} at {database.node.path}, not an RDS "
            "database instance or cluster"
        )
    else:
        why = f"database={database!r} ({_describe(database)}) is not a database construct"
    return [
        f"{path}: {why}; pass the rds.DatabaseInstance, rds.DatabaseCluster or "
        "rds.DatabaseProxy (or its L1) declared in this app"
    ]


def option_problems(
    path: str, given: Mapping[str, Any], accepted: Mapping[str, Option]
) -> list[str]:
    """Every problem with ForceSsl options that does not depend on the database: a name ForceSsl
    does not take, a value of the wrong type, a value out of range. ForceSsl runs the same checks
    on its arguments; SslBaseline.apply runs them on the options it will pass on, so that a
    mistake fails where it was made rather than once per database at synth."""
    return type_problems(path, given, accepted) or value_problems(path, given, accepted)


def type_problems(path: str, given: Mapping[str, Any], accepted: Mapping[str, Option]) -> list[str]:
    """Names ForceSsl does not take, and values that do not match its type hints."""
    problems = []
    for name in given:
        if name not in accepted:
            close = difflib.get_close_matches(name, accepted, n=1)
            mean = f"did you mean {close[0]!r}? " if close else ""
            problems.append(
                f"{path}: {name!r} is not a ForceSsl option; {mean}it takes {', '.join(accepted)}"
            )
    for name, value in given.items():
        if name in accepted and not _conforms(value, accepted[name].hint):
            problems.append(
                f"{path}: {name}={value!r} ({_describe(value)}) is not "
                f"{_type_name(accepted[name].hint)}; {_fix(value, accepted[name].hint)}"
            )
    return problems


FLOOR_NOT_AT_SYNTH = (
    "min_tls_version is a deploy-time value (a token); it must be known at synth, where it is "
    "checked against each engine and version: pass 'TLSv1.2' or 'TLSv1.3'"
)


def _is_token(value: object) -> bool:
    return isinstance(value, str) and cdk.Token.is_unresolved(value)


def value_problems(
    path: str, given: Mapping[str, Any], accepted: Mapping[str, Option]
) -> list[str]:
    """Well-typed values out of range, whatever the engine (the defaults fill in what is not
    given). ForceSsl itself meets these in check() and the timing checks."""
    full = {name: option.default for name, option in accepted.items()} | dict(given)
    problems = []
    tls = full["min_tls_version"]
    if _is_token(tls):
        problems.append(f"{path}: {FLOOR_NOT_AT_SYNTH}")
    elif tls is not None and tls not in engines.TLS_VERSIONS:
        problems.append(
            f"{path}: min_tls_version={tls!r} is not one RDS accepts; use one of "
            f"{', '.join(repr(v) for v in engines.TLS_VERSIONS)}"
        )
    problems += _policy_problems(path, full["reboot"], full["reboot_for_other_parameters"])
    return problems + timing_problems(path, full["query_interval"], full["total_timeout"])


def _conforms(value: object, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint in (int, float) and isinstance(value, bool):
        return False
    return isinstance(value, origin or hint)


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(h) for h in typing.get_args(hint))
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(hint))
    if hint is type(None):
        return "None"
    module = {
        "aws_cdk": "cdk.",
        "aws_cdk.aws_rds": "rds.",
        "builtins": "",
        Reboot.__module__: "rds_force_ssl.",
    }.get(hint.__module__, f"{hint.__module__}.")
    return f"{module}{hint.__qualname__}"


def _fix(value: object, hint: Any) -> str:
    kinds = typing.get_args(hint) or (hint,)
    if cdk.Duration in kinds:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return f"pass cdk.Duration.seconds({value})"
        return "pass a cdk.Duration, e.g. cdk.Duration.seconds(10) or cdk.Duration.minutes(50)"
    if rds.CaCertificate in kinds:
        named = f"rds.CaCertificate.of({value!r}) or " if isinstance(value, str) else ""
        return f"pass {named}a constant such as rds.CaCertificate.RDS_CA_RSA2048_G1"
    if Reboot in kinds:
        meant = [
            r.name
            for r in Reboot
            if isinstance(value, str) and value.lower() in (r.value, r.name.lower())
        ]
        if meant:
            return f"pass rds_force_ssl.Reboot.{meant[0]}"
        return "pass one of " + ", ".join(f"rds_force_ssl.Reboot.{r.name}" for r in Reboot)
    if bool in kinds:
        return "pass True or False"
    return f"pass {_type_name(hint)}"


def _describe(value: object) -> str:
    return "None" if value is None else type(value).__name__
