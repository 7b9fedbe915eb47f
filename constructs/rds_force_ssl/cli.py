"""``rds-force-ssl``: proof after deploy.

``verify`` proves one endpoint refuses plaintext and serves verified TLS; ``audit`` reports, for
a region's fleet, whether ``rds.force_ssl`` is configured and in effect. This module only parses,
calls and prints; the decisions are in ``verify`` and ``audit``. Neither imports CDK, and each
command imports its own dependencies (psycopg, boto3) only when it runs.

Exit codes: 0 enforced, 1 not enforced, 2 usage or connection error.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rds_force_ssl.audit import Row
    from rds_force_ssl.verify import Finding, Target

EXIT_USAGE = 2
SSLMODES = ("verify-full", "verify-ca", "require")  # verify.SSLMODES, without importing psycopg


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rds-force-ssl",
        description="Prove that RDS for PostgreSQL databases refuse plaintext connections.",
        epilog="Exit codes: 0 enforced, 1 not enforced, 2 usage or connection error.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    v = commands.add_parser("verify", help="check one live endpoint")
    v.add_argument("--host", required=True, help="endpoint host name (as in its certificate)")
    v.add_argument("--port", type=int, default=5432)
    v.add_argument("--dbname", default="postgres")
    v.add_argument("--user", required=True)
    v.add_argument(
        "--password-env",
        default="PGPASSWORD",
        metavar="VAR",
        help="environment variable holding the password (default: PGPASSWORD); "
        "prompted for when unset and stdin is a terminal",
    )
    v.add_argument("--sslrootcert", metavar="FILE", help="the RDS CA bundle (PEM)")
    v.add_argument(
        "--sslmode",
        choices=SSLMODES,
        default="verify-full",
        help="default verify-full; weaker modes are reported as weaker",
    )
    v.add_argument(
        "--check-tls-floor",
        action="store_true",
        help="also check that a client capped below ssl_min_protocol_version is refused",
    )
    v.add_argument("--json", action="store_true", help="machine-readable output")

    a = commands.add_parser("audit", help="report every PostgreSQL database in a region")
    a.add_argument("--region", help="AWS region (default: the AWS SDK's configuration)")
    a.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 for --help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command == "verify":
        return _verify(args, out=sys.stdout, err=sys.stderr)
    return _audit(args, out=sys.stdout, err=sys.stderr)


# ---- verify --------------------------------------------------------------------------------
def _password(args: argparse.Namespace, *, err: IO[str]) -> str | None:
    # Never a command-line argument: those end up in shell history and `ps`.
    password = os.environ.get(args.password_env)
    if password:
        return password
    if sys.stdin.isatty():
        return getpass.getpass(f"Password for {args.user}: ")
    print(f"rds-force-ssl: set {args.password_env} or run in a terminal to be prompted", file=err)
    return None


def _verify(args: argparse.Namespace, *, out: IO[str], err: IO[str]) -> int:
    if args.sslmode != "require" and not args.sslrootcert:
        print(f"rds-force-ssl: --sslrootcert is required with --sslmode {args.sslmode}", file=err)
        return EXIT_USAGE
    password = _password(args, err=err)
    if password is None:
        return EXIT_USAGE

    from rds_force_ssl import verify

    target = verify.Target(
        host=args.host,
        port=args.port,
        dbname=args.dbname,
        user=args.user,
        sslmode=args.sslmode,
        sslrootcert=args.sslrootcert,
    )
    findings = verify.run_verify(
        target, password=password, check_floor=args.check_tls_floor, now=datetime.now(UTC)
    )
    code = verify.exit_code(findings)
    if args.json:
        json.dump(_verify_json(target, findings, code), out, indent=2)
        out.write("\n")
    else:
        out.write(_verify_table(target, findings, code))
    return code


VERDICTS = {0: "ENFORCED", 1: "NOT ENFORCED", 2: "INCONCLUSIVE"}


def _verify_json(target: Target, findings: list[Finding], code: int) -> dict[str, Any]:
    return {
        "target": {
            "host": target.host,
            "port": target.port,
            "dbname": target.dbname,
            "user": target.user,
            "sslmode": target.sslmode,
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
        "verdict": VERDICTS[code],
        "exit_code": code,
    }


def _verify_table(target: Target, findings: list[Finding], code: int) -> str:
    head = (
        f"rds-force-ssl verify {target.user}@{target.host}:{target.port}/{target.dbname} "
        f"(sslmode={target.sslmode})\n"
    )
    body = _table(
        ("CHECK", "STATUS", "EVIDENCE"), [(f.check, str(f.status), f.evidence) for f in findings]
    )
    return f"{head}{body}verdict: {VERDICTS[code]} (exit {code})\n"


# ---- audit ---------------------------------------------------------------------------------
def _audit(args: argparse.Namespace, *, out: IO[str], err: IO[str]) -> int:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    from rds_force_ssl import audit

    # Standard mode retries throttling with backoff; a large fleet can hit the describe limits.
    config = Config(retries={"mode": "standard", "max_attempts": 10})
    try:
        client = boto3.client("rds", region_name=args.region, config=config)
        rows = audit.audit(client, progress=_progress(err) if err.isatty() else None)
    except (BotoCoreError, ClientError) as exc:
        print(f"rds-force-ssl: {exc}", file=err)
        return EXIT_USAGE
    code = audit.exit_code(rows)
    if args.json:
        json.dump(_audit_json(rows, code), out, indent=2, default=str)
        out.write("\n")
    else:
        out.write(_audit_table(rows, code, now=datetime.now(UTC)))
    return code


def _progress(err: IO[str]) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        # A carriage-return counter on the terminal only; stdout stays clean for pipes.
        err.write(f"\raudited {done}/{total}")
        if done == total:
            err.write("\n")
        err.flush()

    return show


def _audit_json(rows: list[Row], code: int) -> dict[str, Any]:
    return {
        "resources": [
            {
                "kind": r.kind,
                "name": r.name,
                "engine": r.engine,
                "version": r.version,
                "parameter_groups": list(r.groups),
                "rds.force_ssl": r.force_ssl,
                "source": r.source,
                "apply_status": r.apply_status,
                "state": r.state,
                "enforced": r.enforced,
                "ca": r.ca,
                "ca_valid_till": r.ca_valid_till.isoformat() if r.ca_valid_till else None,
                "members": dict(r.members),
            }
            for r in rows
        ],
        "enforced": sum(r.enforced for r in rows),
        "total": len(rows),
        "exit_code": code,
    }


def _audit_table(rows: list[Row], code: int, *, now: datetime) -> str:
    def expiry(r: Row) -> str:
        if r.ca_valid_till is None:
            return "unknown"
        days = (r.ca_valid_till - now).days
        mark = " EXPIRED" if days < 0 else f" ({days} days)" if days < 30 else ""
        return f"{r.ca_valid_till:%Y-%m-%d}{mark}"

    body = _table(
        (
            "RESOURCE",
            "ENGINE",
            "PARAMETER GROUP",
            "FORCE_SSL",
            "SOURCE",
            "STATE",
            "CA",
            "CA EXPIRES",
        ),
        [
            (
                f"{r.kind} {r.name}",
                f"{r.engine} {r.version}",
                ",".join(r.groups) or "-",
                r.force_ssl or "?",
                r.source,
                r.state,
                r.ca or "-",
                expiry(r),
            )
            for r in rows
        ],
    )
    enforced = sum(r.enforced for r in rows)
    return f"{body}{enforced} of {len(rows)} effectively enforced (exit {code})\n"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    lines = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in (headers, *rows)
    ]
    return "\n".join(lines) + "\n"
