"""``rds-force-ssl``: proof after deploy.

- ``probe`` asks each endpoint, without any credential, whether it refuses a plaintext client;
- ``verify`` proves one endpoint refuses plaintext and serves verified TLS, with a real login;
- ``clients`` lists who still connects in plaintext, from the live sessions (with a login) or
  from PostgreSQL's connection log (without one);
- ``audit`` reports, for a region's databases of every engine and its RDS proxies, whether the
  engine's SSL-only setting (or the proxy's RequireTLS) is configured and in effect;
- ``report`` lists what a synthesized app protects, from its cloud assembly.

This module only parses and dispatches: each command's arguments, run and renderers are in
``commands/<name>.py``, what they all write (JSON, tables, progress) in ``output.py``, and the
decisions in the logic modules next to this one. Nothing here imports CDK, and each command
loads its own drivers (libpq, cryptography, boto3) only when it runs. A failure the user can
fix is a ``CliError``: a message and the fix, as text on stderr or, under ``--json``, as JSON
on stdout; never a traceback. Any other exception is reported the same way as an internal error.

Exit codes: 0 enforced (clients: no plaintext client), 1 not enforced (clients: a plaintext
client seen), 2 usage, connection, output or internal error (or inconclusive), 3 (verify)
plaintext refused but a verifying client cannot connect.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import IO, NoReturn, cast

from rds_force_ssl.cli.commands import ALL
from rds_force_ssl.cli.errors import CliError
from rds_force_ssl.cli.output import EPILOG, printable

EXIT_USAGE = 2
MAX_INTERNAL_MESSAGE = 300  # a parser error can carry a whole HTML page
MAX_MESSAGE = 2000  # an error message and its fix, each, on a terminal
# Each command's runner, by name: main dispatches through this table.
COMMANDS: dict[str, Callable[..., int]] = {command.NAME: command.run for command in ALL}


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors raised as CliError so that --json can report them as JSON."""

    def error(self, message: str) -> NoReturn:
        # _fail prints "rds-force-ssl: " before every message; a subcommand names itself.
        _, _, command = self.prog.partition(" ")
        said = f"{command}: {message}" if command else message
        raise CliError("usage", said, fix=f"see {self.prog} --help")


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="rds-force-ssl",
        description="Prove that RDS databases and proxies refuse plaintext connections.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in ALL:
        command.add_parser(subparsers)
    return parser


class _Version(argparse.Action):
    """--version, looked up only when asked: the package metadata costs every other run time."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> NoReturn:
        print(f"{parser.prog} {_version()}", file=sys.stdout)  # where argparse prints it
        parser.exit()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rds-force-ssl")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    stdout, err = sys.stdout, sys.stderr
    out = _Output(stdout)
    try:
        code = _main(argv, out=cast(IO[str], out), err=err)
        out.flush()  # a write that fails fails here, not in the interpreter's final flush
    except OSError as error:  # only a write to stdout gets here (see _main)
        return _unwritable(error, out=stdout, err=err)
    return code


class _Output:
    """stdout as the commands see it (they only write to it), remembering whether a write
    failed: an OSError a command did not catch is then about its output (a pipe its reader
    closed, a full disk), not about what the command was doing."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.failed = False

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except OSError:
            self.failed = True
            raise

    def flush(self) -> None:
        try:
            self.stream.flush()
        except OSError:
            self.failed = True
            raise


def _main(argv: list[str], *, out: IO[str], err: IO[str]) -> int:
    try:
        args = _parser().parse_args(argv)
        command = COMMANDS[args.command]
        return command(args, out=out, err=err)
    except CliError as error:
        return _fail(error, as_json="--json" in argv, out=out, err=err)
    except SystemExit as exc:  # --help exits 0
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except Exception as error:  # a bug must not exit 1, which means NOT ENFORCED
        if isinstance(error, OSError) and getattr(out, "failed", False):
            raise  # stdout was closed or is full: nothing more can be written to it
        said = (str(error).strip().splitlines() or [""])[0][:MAX_INTERNAL_MESSAGE]
        internal = CliError(
            "internal-error",
            f"internal error, nothing was concluded: {type(error).__name__}: {said}",
            fix="this is a bug in rds-force-ssl: please report it with the command that caused it",
        )
        return _fail(internal, as_json="--json" in argv, out=out, err=err)


def _fail(error: CliError, *, as_json: bool, out: IO[str], err: IO[str]) -> int:
    if as_json:
        json.dump({**error.as_json(), "exit_code": EXIT_USAGE}, out, indent=2)
        out.write("\n")
    else:
        # A message can quote a server (an error it sent, a name it gave): escaped here once,
        # whatever the command did, so that nothing a server says can drive the terminal.
        message, fix = (printable(text, limit=MAX_MESSAGE) for text in (error.message, error.fix))
        print(f"rds-force-ssl: {message}\n  fix: {fix}", file=err)
    return EXIT_USAGE


def _unwritable(error: OSError, *, out: IO[str], err: IO[str]) -> int:
    """Stdout cannot take the output: exit 2 (the output is incomplete, so nothing was
    concluded for whoever reads it), never a traceback. A closed pipe (``| head``) is the
    reader's choice and goes unsaid; any other failure is said on stderr, if it can be."""
    # Python's recipe (library/signal.html, "Note on SIGPIPE"): point stdout at devnull, so that
    # the interpreter's final flush of what is still buffered does not fail again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # not a file (a test's StringIO), or already closed
        pass
    if not isinstance(error, BrokenPipeError):
        reason = printable(error.strerror or str(error), limit=MAX_INTERNAL_MESSAGE)
        try:
            print(
                f"rds-force-ssl: could not write the output: {reason}\n"
                "  fix: write it where there is room (another file or disk), or to a terminal",
                file=err,
            )
            err.flush()
        except (OSError, ValueError):  # stderr is gone too: the exit code says it
            pass
    return EXIT_USAGE
