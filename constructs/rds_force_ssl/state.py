"""Everything the library remembers while an app is built and synthesized, in one object.

Each entry is keyed by the jsii reference of a CDK object (see ``tree``): the node side names
every object once per process, so two apps built in one process (a test suite) never share an
entry. The only reason to remember at all is speed: each read of a CDK object from Python is a
round trip to the jsii kernel, so what cannot change once written (a path, a stack, whether a
database is protected, the stack's provider) is kept here instead of read back.

``reset()`` forgets everything; the test suite calls it between tests, so that no test sees
another's constructs. An app's own process builds one app and never needs it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aws_cdk as cdk
    from constructs import Node

    from rds_force_ssl.baseline import SslBaseline
    from rds_force_ssl.database import Database
    from rds_force_ssl.force_ssl import StackCheck
    from rds_force_ssl.guard import SslGuard
    from rds_force_ssl.parameter_group import GroupRef
    from rds_force_ssl.reboot_provider import RebootProvider


@dataclass
class State:
    # tree: reads of the construct tree made once.
    nodes: dict[str, Node] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    stacks: dict[str, cdk.Stack] = field(default_factory=dict)
    envs: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    # database: what database_of() found for a construct (see database.known()).
    known: dict[str, Database] = field(default_factory=dict)
    # force_ssl: database -> the path of the ForceSsl protecting it (what PROTECTED_BY says);
    # (stack, construct ID) -> the stack's shared rds-force-ssl group; stack -> its synth-time
    # checks, run by one validation per stack.
    protected: dict[str, str] = field(default_factory=dict)
    groups: dict[tuple[str, str], GroupRef] = field(default_factory=dict)
    checks: dict[str, list[StackCheck]] = field(default_factory=dict)
    # reboot_provider: stack -> its reconciler.
    providers: dict[str, RebootProvider] = field(default_factory=dict)
    # baseline: how many baselines of each mode exist (with one of a mode, the baseline
    # visiting a database is the only one that can reach it); scope -> the baselines apply()
    # added there; database -> why exempt() exempted it.
    baselines_created: Counter[str] = field(default_factory=Counter)
    applied: dict[str, list[SslBaseline]] = field(default_factory=dict)
    exempt: dict[str, str] = field(default_factory=dict)
    # guard: stack -> its one SslGuard; (app root, account, region) -> the paths of the guards
    # in that concrete account and region, in the order they were made.
    guards: dict[str, SslGuard] = field(default_factory=dict)
    guard_envs: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)


STATE = State()


def reset() -> None:
    """Forget every app built so far (between tests). The object stays the same, so every
    module that imported ``STATE`` sees the reset."""
    fresh = State()
    for f in fields(State):
        setattr(STATE, f.name, getattr(fresh, f.name))
