"""``rds-force-ssl report``: list what a synthesized app protects, from its cloud assembly.

The reading and the lines are in ``rds_force_ssl/report.py`` (no AWS account, no CDK import).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rds_force_ssl.cli.errors import CliError
from rds_force_ssl.cli.output import dump

if TYPE_CHECKING:
    from rds_force_ssl.cli import Parser

NAME = "report"


def add_parser(subparsers: argparse._SubParsersAction[Parser]) -> None:
    r = subparsers.add_parser(
        NAME,
        help="list what a synthesized app protects, from its cloud assembly (no AWS account)",
        description="Read a cloud assembly (cdk.out) and list each database and proxy a "
        "ForceSsl protects, with what its template renders (the group's parameters, overrides "
        "included; the proxy's RequireTLS), in every stack and Stage. Nothing is deployed or "
        "read from AWS.",
        epilog="Exit codes: 0 every protected database enforces in the template; 1 one does "
        "not, or none is protected; 2 no cloud assembly there.",
    )
    r.add_argument(
        "assembly", nargs="?", default="cdk.out", help="the cloud assembly (default cdk.out)"
    )
    r.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace, *, out: IO[str], err: IO[str]) -> int:
    from rds_force_ssl import report

    assembly = Path(args.assembly)
    if not (assembly / "manifest.json").is_file():
        if assembly.is_file():
            raise CliError(
                "no-assembly",
                f"{assembly}: a file, not a folder: report reads the whole cloud assembly",
                fix=f"name the folder that holds it and manifest.json (cdk.out), e.g. "
                f"rds-force-ssl report {assembly.parent}",
            )
        what = "no manifest.json in it" if assembly.is_dir() else "no such folder"
        raise CliError(
            "no-assembly",
            f"{assembly}: {what}, so no cloud assembly to read",
            fix="synthesize the app first (cdk synth writes cdk.out), or name the folder it "
            "wrote (cdk synth --output)",
        )
    rows = report.protected(assembly)
    lines, code = report.render(rows)
    guards = report.guards(assembly)
    lines += report.guard_lines(guards)
    if args.json:
        dump({**render_json(assembly, rows, code), "guards": guards}, out)
    else:
        out.write(render_table(assembly, rows, lines, code))
    return code


def render_json(assembly: Path, rows: list[dict[str, Any]], code: int) -> dict[str, Any]:
    return {"assembly": str(assembly), "protected": rows, "exit_code": code}


def render_table(
    assembly: Path, rows: Sequence[dict[str, Any]], lines: Sequence[str], code: int
) -> str:
    if not rows:
        return f"{assembly}: no database is protected by rds-force-ssl (exit {code})\n"
    return "".join(f"{line}\n" for line in lines)
