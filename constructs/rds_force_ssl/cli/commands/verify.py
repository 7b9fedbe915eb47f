"""``rds-force-ssl verify``: prove that one endpoint refuses plaintext and serves verified TLS,
with a real login.

The checks and the conclusion are in ``cli/verify.py``; each protocol's verifier (the engine
row's ``verifier``: ``cli/verify.py`` for PostgreSQL, ``cli/verify_mysql.py`` for MySQL and
MariaDB) is imported only when it runs.
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from rds_force_ssl.cli.errors import CliError
from rds_force_ssl.cli.output import EPILOG, dump, table

if TYPE_CHECKING:
    from rds_force_ssl.cli import Parser
    from rds_force_ssl.cli.engines import Engine as Protocol
    from rds_force_ssl.cli.verify import Conclusion, Finding, Target

NAME = "verify"
SSLMODES = ("verify-full", "verify-ca", "require")  # libpq's that verify offers


def add_parser(subparsers: argparse._SubParsersAction[Parser]) -> None:
    # The per-protocol defaults and the setting names in the help come from the two tables.
    from rds_force_ssl.cli.engines import DEFAULT_ENGINE, ENGINES
    from rds_force_ssl.facts import engines as engine_table

    default = ENGINES[DEFAULT_ENGINE]
    others = [e for e in ENGINES.values() if e is not default]
    secure_transport = engine_table.MYSQL.parameter
    pg_floor = engine_table.POSTGRES.tls_floor
    assert pg_floor is not None
    v = subparsers.add_parser(
        NAME,
        help="check one live endpoint, with a real login",
        description="Prove that one endpoint refuses plaintext and serves verified TLS, with a "
        "real login that is only ever made over TLS. PostgreSQL: a credential-free plaintext "
        "start-up must be refused by the SSL rule. MySQL and MariaDB check "
        f"{secure_transport} only after the password, so no credential-free attempt can "
        f"tell: the running server's {secure_transport} is read over the verified "
        "session instead, and no credential is ever sent in plaintext.",
        epilog=EPILOG,
    )
    v.add_argument(
        "--engine",
        choices=tuple(ENGINES),
        default=DEFAULT_ENGINE,
        help="the endpoint's protocol: postgresql (RDS for PostgreSQL, Aurora PostgreSQL) or "
        "mysql (RDS for MySQL and MariaDB, Aurora MySQL); default postgresql",
    )
    v.add_argument("--host", required=True, help="endpoint host name (as in its certificate)")
    v.add_argument(
        "--port",
        type=int,
        help="default " + " or ".join(f"{e.default_port} ({e.name})" for e in ENGINES.values()),
    )
    v.add_argument(
        "--dbname",
        help="default "
        + ", ".join(f"{e.default_dbname or 'none'} ({e.name})" for e in ENGINES.values()),
    )
    v.add_argument("--user", required=True)
    v.add_argument(
        "--password-env",
        metavar="VAR",
        help=f"environment variable holding the password (default: {default.password_env}"
        + "".join(f", or {e.password_env} with --engine {e.name}" for e in others)
        + "); prompted for when unset and stdin is a terminal",
    )
    v.add_argument(
        "--sslrootcert",
        metavar="FILE",
        help="the RDS CA bundle (PEM); required with --sslmode verify-full (the default) and "
        "verify-ca",
    )
    v.add_argument(
        "--sslmode",
        choices=SSLMODES,
        default="verify-full",
        help="default verify-full; with the weaker modes the login is SCRAM with channel binding "
        "only (postgresql: the password is not sent, but an impostor could attack its SCRAM "
        "proof offline; only verify-full prevents that), or none at all without "
        "--allow-unverified-password (mysql, which has no channel binding)",
    )
    v.add_argument(
        "--allow-unverified-password",
        action="store_true",
        help="with --sslmode verify-ca or require: send the password without channel binding "
        "to a server whose identity is not verified",
    )
    v.add_argument(
        "--check-tls-floor",
        action="store_true",
        help=f"also check that a client capped below {pg_floor.parameter} (mysql: the lowest "
        f"protocol of {engine_table.MYSQL.tls_protocols_setting}) is refused",
    )
    v.add_argument("--json", action="store_true", help="machine-readable output")


def _password(args: argparse.Namespace) -> str:
    # Never a command-line argument: those end up in shell history and `ps`.
    password = os.environ.get(args.password_env)
    if password:
        return password
    if sys.stdin.isatty():
        return getpass.getpass(f"Password for {args.user}: ")
    raise CliError(
        "no-password",
        f"no password: {args.password_env} is not set and stdin is not a terminal",
        fix=f"set {args.password_env} (or name another variable with --password-env), or run "
        "in a terminal to be prompted",
    )


def run(args: argparse.Namespace, *, out: IO[str], err: IO[str]) -> int:
    from rds_force_ssl.cli import verify
    from rds_force_ssl.cli.engines import ENGINES

    protocol = ENGINES[args.engine]
    port, dbname = protocol.default_port, protocol.default_dbname
    args.password_env = args.password_env or protocol.password_env
    if args.sslmode != "require" and not args.sslrootcert:
        raise CliError(
            "usage",
            f"--sslrootcert is required with --sslmode {args.sslmode}",
            fix="pass the RDS CA bundle (global-bundle.pem)",
        )
    if (
        not protocol.channel_binding
        and args.sslmode != "verify-full"
        and not args.allow_unverified_password
    ):
        raise CliError(
            "usage",
            f"MySQL has no channel binding: with --sslmode {args.sslmode} the password would go "
            "to a server whose identity is not fully verified",
            fix="pass --sslmode verify-full with --sslrootcert, or --allow-unverified-password "
            "to send it anyway",
        )
    if (
        protocol.libpq
        and args.sslmode == "require"
        and (args.sslrootcert or verify.default_root_cert())
    ):
        # libpq checks the CA under `require` whenever it finds a CA file: that is verify-ca.
        raise CliError(
            "usage",
            "--sslmode require with a CA file ("
            + (args.sslrootcert or verify.default_root_cert() or "")
            + ") is what libpq calls verify-ca",
            fix="pass --sslmode verify-full (or verify-ca) with --sslrootcert",
        )
    if args.allow_unverified_password and args.sslmode == "verify-full":
        raise CliError(
            "usage",
            "--allow-unverified-password only applies to --sslmode verify-ca or require",
            fix="drop it: verify-full verifies the server before the password is sent",
        )
    verify.check_host(args.host)
    if args.port is not None and not 0 < args.port < 65536:
        raise CliError("usage", f"--port {args.port} is not a TCP port", fix="pass 1 to 65535")
    if args.sslrootcert:
        verify.check_sslrootcert(args.sslrootcert)
    verifier = importlib.import_module(protocol.verifier)
    verifier.require_drivers()
    run_verify: Callable[..., list[Finding]] = verifier.run_verify
    # PyMySQL checks the certificate against the name it dials, so only libpq gets this.
    address = verify.resolve(args.host, args.port or port) if protocol.libpq else None
    password = _password(args)
    target = verify.Target(
        host=args.host,
        port=args.port or port,
        dbname=args.dbname if args.dbname is not None else dbname,
        user=args.user,
        sslmode=args.sslmode,
        sslrootcert=args.sslrootcert,
        allow_unverified_password=args.allow_unverified_password,
        engine=args.engine,
        address=address,
    )
    findings = run_verify(
        target, password=password, check_floor=args.check_tls_floor, now=datetime.now(UTC)
    )
    verdict = verify.conclusion(findings)
    code = verify.EXIT_CODES[verdict]
    if args.json:
        dump(render_json(target, findings, verdict, code), out)
    else:
        out.write(render_table(target, findings, verdict, code))
    return code


def render_json(
    target: Target, findings: list[Finding], verdict: Conclusion, code: int
) -> dict[str, Any]:
    return {
        "target": {
            "engine": target.engine,
            "host": target.host,
            "port": target.port,
            "dbname": target.dbname,
            "user": target.user,
            "sslmode": target.sslmode,
            "address": target.address,
        },
        "findings": [
            {
                "check": f.check,
                "status": str(f.status),
                "evidence": f.evidence,
                "details": dict(f.details),
            }
            for f in findings
        ],
        "verdict": str(verdict),
        "exit_code": code,
        **({"libpq": _libpq()} if _protocol(target.engine).libpq else {}),
    }


def _protocol(name: str) -> Protocol:
    from rds_force_ssl.cli.engines import ENGINES

    return ENGINES[name]


def _libpq() -> dict[str, str]:
    from rds_force_ssl.cli import libpq

    return libpq.describe()


def render_table(target: Target, findings: list[Finding], verdict: Conclusion, code: int) -> str:
    from rds_force_ssl.cli.engines import DEFAULT_ENGINE

    where = f"{target.user}@{target.host}:{target.port}" + (
        f"/{target.dbname}" if target.dbname else ""
    )
    mode = f"sslmode={target.sslmode}"
    if target.engine != DEFAULT_ENGINE:
        mode = f"{target.engine}, {mode}"
    head = f"rds-force-ssl verify {where} ({mode})\n"
    body = table(
        ("CHECK", "STATUS", "EVIDENCE"), [(f.check, str(f.status), f.evidence) for f in findings]
    )
    return f"{head}{body}verdict: {verdict} (exit {code})\n"
