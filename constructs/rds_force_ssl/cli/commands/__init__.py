"""The commands, one module each, in the order ``--help`` lists them.

A command module has ``NAME``; ``add_parser(subparsers)``, its arguments, help and epilog;
``run(args, *, out, err) -> int``, which imports its logic module (and with it the drivers)
only when it runs, and returns the exit code; and its renderers, ``render_table`` and
``render_json``. The logic stays in the modules of ``cli/`` (probe.py, verify.py, audit.py, ...).
Adding a command is one module here and one entry in ``ALL``.
"""

from __future__ import annotations

import argparse
from typing import IO, TYPE_CHECKING, Protocol

from rds_force_ssl.cli.commands import audit, clients, probe, report, verify

if TYPE_CHECKING:
    from rds_force_ssl.cli import Parser


class Command(Protocol):
    NAME: str

    def add_parser(self, subparsers: argparse._SubParsersAction[Parser]) -> None:
        """Add the command's parser, with its arguments, help and epilog."""

    def run(self, args: argparse.Namespace, *, out: IO[str], err: IO[str]) -> int:
        """Run the command; return its exit code."""


ALL: tuple[Command, ...] = (probe, verify, clients, audit, report)
