"""``rds-force-ssl verify``: prove that one endpoint refuses plaintext and serves verified TLS,
with a real login.

The checks and the conclusion are in ``cli/verify.py``; each protocol's verifier (the engine
row's ``verifier``: ``cli/verify.py`` for PostgreSQL, ``cli/verify_mysql.py`` for MySQL and
MariaDB) is imported only when it runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from rds_force_ssl.cli.errors import check_timeout
from rds_force_ssl.cli.output import VERIFY_EPILOG, dump, printable, table
from rds_force_ssl.cli.password import check_login, password_from

if TYPE_CHECKING:
    from rds_force_ssl.cli import Parser
    from rds_force_ssl.cli.engines import Engine as Protocol
    from rds_force_ssl.cli.verify import Conclusion, Finding, Target

NAME = "verify"
SSLMODES = ("verify-full", "verify-ca", "require")  # libpq's that verify offers
# verify's default deadline, stated here only (cli/verify.py's DEFAULT_TIMEOUT_S is the same
# figure for callers of its functions; a test keeps them equal): importing it would load the
# verifier before the arguments are even parsed.
VERIFY_TIMEOUT_S = 15.0
# A table cell: the server strings in it are cut where they are quoted; this only bounds what
# our own words and several such strings add up to.
MAX_CELL = 4000


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
        epilog=VERIFY_EPILOG,
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
    v.add_argument(
        "--timeout",
        type=float,
        default=VERIFY_TIMEOUT_S,
        help="seconds for the whole run once the password is known: resolving the name, every "
        "connection, handshake and answer of every check; a check not done by then is an "
        f"ERROR (default {VERIFY_TIMEOUT_S:g}, at most 3600)",
    )
    v.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace, *, out: IO[str], err: IO[str]) -> int:
    from rds_force_ssl.cli import verify
    from rds_force_ssl.cli.engines import ENGINES

    protocol = ENGINES[args.engine]
    port, dbname = protocol.default_port, protocol.default_dbname
    args.password_env = args.password_env or protocol.password_env
    check_login(args, protocol)
    check_timeout(args.timeout)
    verifier = importlib.import_module(protocol.verifier)
    verifier.require_drivers()
    run_verify: Callable[..., list[Finding]] = verifier.run_verify
    # One deadline for the whole run, started again after a password prompt: that waits for a
    # person, not a server.
    deadline = time.monotonic() + args.timeout
    # PyMySQL checks the certificate against the name it dials, so only libpq gets this.
    address = (
        verify.resolve(args.host, args.port or port, deadline=deadline) if protocol.libpq else None
    )
    prompted = not os.environ.get(args.password_env)
    password = password_from(args)
    if prompted:
        deadline = time.monotonic() + args.timeout
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
        target,
        password=password,
        check_floor=args.check_tls_floor,
        now=datetime.now(UTC),
        deadline=deadline,
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
    head = f"rds-force-ssl verify {printable(where)} ({mode})\n"
    # Evidence quotes the server (its errors, version, certificate names): no control
    # character or escape sequence of its reaches the terminal (--json escapes them as JSON does).
    body = table(
        ("CHECK", "STATUS", "EVIDENCE"),
        [(f.check, str(f.status), printable(f.evidence, limit=MAX_CELL)) for f in findings],
    )
    return f"{head}{body}verdict: {verdict} (exit {code})\n"
