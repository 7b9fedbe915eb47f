"""``rds-force-ssl``: proof after deploy.

- ``probe`` asks each endpoint, without any credential, whether it refuses a plaintext client;
- ``verify`` proves one endpoint refuses plaintext and serves verified TLS, with a real login;
- ``audit`` reports, for a region's databases of every engine and its RDS proxies, whether the
  engine's SSL-only setting (or the proxy's RequireTLS) is configured and in effect.

This module only parses, calls and prints; the decisions are in the command modules. Nothing
here imports CDK, and each command loads its own drivers (libpq, cryptography, boto3) only
when it runs. A failure the user can fix is a ``CliError``: a message and the fix, as text on
stderr or, under ``--json``, as JSON on stdout; never a traceback. Any other exception is
reported the same way as an internal error.

Exit codes: 0 enforced, 1 not enforced, 2 usage, connection or internal error (or
inconclusive), 3 (verify) plaintext refused but a verifying client cannot connect.
"""

from __future__ import annotations

import argparse
import getpass
import importlib
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn

from rds_force_ssl.cli.errors import CliError

if TYPE_CHECKING:
    from rds_force_ssl.cli.audit import Report
    from rds_force_ssl.cli.engines import Engine as Protocol
    from rds_force_ssl.cli.probe import Result
    from rds_force_ssl.cli.verify import Conclusion, Finding, Target

EXIT_USAGE = 2
# probe's defaults, stated here only: importing probe to read them would put its engine table in
# front of verify's login on every run.
PROBE_TIMEOUT_S = 5.0
PROBE_CONCURRENCY = 64
MAX_INTERNAL_MESSAGE = 300  # a parser error can carry a whole HTML page
SSLMODES = ("verify-full", "verify-ca", "require")  # libpq's that verify offers
EPILOG = (
    "Exit codes: 0 enforced, 1 not enforced, 2 usage, connection or internal error or "
    "inconclusive; "
    "verify also 3, not verified (plaintext refused, but a verifying client cannot connect)."
)


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors raised as CliError so that --json can report them as JSON."""

    def error(self, message: str) -> NoReturn:
        # _fail prints "rds-force-ssl: " before every message; a subcommand names itself.
        _, _, command = self.prog.partition(" ")
        said = f"{command}: {message}" if command else message
        raise CliError("usage", said, fix=f"see {self.prog} --help")


def _parser() -> argparse.ArgumentParser:
    # The per-protocol defaults and the setting names in the help come from the two tables.
    from rds_force_ssl.cli.engines import DEFAULT_ENGINE, ENGINES
    from rds_force_ssl.facts import engines as engine_table

    default = ENGINES[DEFAULT_ENGINE]
    others = [e for e in ENGINES.values() if e is not default]
    secure_transport = engine_table.MYSQL.parameter
    pg_floor = engine_table.POSTGRES.tls_floor
    assert pg_floor is not None
    ssl_settings = ", ".join(
        dict.fromkeys(row.parameter for row in engine_table.ENGINES if row.parameter)
    )
    parser = Parser(
        prog="rds-force-ssl",
        description="Prove that RDS databases and proxies refuse plaintext connections.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser(
        "probe",
        help="ask endpoints, without credentials, whether they refuse plaintext",
        description="Send each endpoint a plaintext start-up and read the first answer; never "
        "a password. ENFORCED: refused in plaintext, let through to authentication over TLS; "
        "NOT_ENFORCED: asked for a "
        "password or let in; UNREACHABLE: no connection or no answer; INCONCLUSIVE: an answer "
        "that does not tell. PostgreSQL endpoints only: MySQL and MariaDB refuse a plaintext "
        "client only after checking its password, so no credential-free probe can tell; "
        "--region counts them in a note (use verify --engine mysql, or audit).",
        epilog="Exit codes: 0 every endpoint ENFORCED; 1 any NOT_ENFORCED; 2 otherwise.",
    )
    p.add_argument(
        "endpoints",
        nargs="*",
        metavar="ENDPOINT",
        help=f"host[:port] (port {default.default_port})",
    )
    p.add_argument("--region", help="also probe every endpoint found in this AWS region")
    p.add_argument(
        "--user",
        default="rds_force_ssl_probe",
        help="user name in the start-up (pg_hba.conf may match on it; no password is ever "
        "sent); default rds_force_ssl_probe",
    )
    p.add_argument("--dbname", default=default.default_dbname, help="database name in the start-up")
    p.add_argument(
        "--timeout",
        type=float,
        default=PROBE_TIMEOUT_S,
        help=f"seconds per endpoint for its connections and answers, every address of its name "
        f"included; resolving the name is not bounded by it (default {PROBE_TIMEOUT_S:g})",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=PROBE_CONCURRENCY,
        help=f"endpoints probed at once (default {PROBE_CONCURRENCY})",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")

    v = commands.add_parser(
        "verify",
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

    a = commands.add_parser(
        "audit",
        help="report every database and RDS proxy in a region",
        description="For each DB instance, DB cluster and RDS Proxy of the region: the "
        f"engine's SSL-only setting ({ssl_settings}, {engine_table.PROXY.property}), where "
        "its value comes from, whether it is in effect or only pending a reboot, the Security "
        "Hub control that checks it, and the CA. Oracle and Db2, which no parameter makes "
        "SSL-only, are reported not applicable, with the reason.",
        epilog="Exit codes: 0 every resource effectively enforced; 1 one is not; 2 one cannot "
        "be judged (unreadable, not applicable), a listing was denied, or nothing was found.",
    )
    a.add_argument("--region", help="AWS region (default: the AWS SDK's configuration)")
    a.add_argument("--json", action="store_true", help="machine-readable output")

    r = commands.add_parser(
        "report",
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
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rds-force-ssl")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    out, err = sys.stdout, sys.stderr
    try:
        args = _parser().parse_args(argv)
        command: Callable[..., int] = COMMANDS[args.command]
        return command(args, out=out, err=err)
    except CliError as error:
        return _fail(error, as_json="--json" in argv, out=out, err=err)
    except SystemExit as exc:  # --help exits 0
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except Exception as error:  # a bug must not exit 1, which means NOT ENFORCED
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
        print(f"rds-force-ssl: {error.message}\n  fix: {error.fix}", file=err)
    return EXIT_USAGE


def _dump(document: dict[str, Any], out: IO[str]) -> None:
    json.dump(document, out, indent=2, default=str)
    out.write("\n")


def _progress(err: IO[str], verb: str) -> Callable[[int, int], None] | None:
    if not err.isatty():
        return None

    def show(done: int, total: int) -> None:
        # A carriage-return counter on the terminal only; stdout stays clean for pipes.
        err.write(f"\r{verb} {done}/{total}")
        if done == total:
            err.write("\n")
        err.flush()

    return show


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    lines = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in (headers, *rows)
    ]
    return "\n".join(lines) + "\n"


# ---- probe ---------------------------------------------------------------------------------
def _probe(args: argparse.Namespace, *, out: IO[str], err: IO[str]) -> int:
    from rds_force_ssl.cli import probe
    from rds_force_ssl.cli.engines import DEFAULT_ENGINE, ENGINES
    from rds_force_ssl.cli.wire import Identity, parse_endpoint

    if not args.endpoints and args.region is None:
        raise CliError(
            "usage",
            "nothing to probe",
            fix="name endpoints (host[:port] ...) or pass --region to find them",
        )
    if not (math.isfinite(args.timeout) and args.timeout > 0) or args.concurrency < 1:
        raise CliError(
            "usage",
            "--timeout must be > 0 (and finite), and --concurrency >= 1",
            fix="e.g. --timeout 5 --concurrency 64",
        )
    try:
        targets = [
            probe.Target(parse_endpoint(e, default_port=ENGINES[DEFAULT_ENGINE].default_port))
            for e in args.endpoints
        ]
    except ValueError as error:
        raise CliError("usage", f"bad endpoint {error}", fix="write host[:port]") from error
    notes: list[str] = []
    complete = True
    if args.region is not None:
        found = _discover(args.region)
        named = {t.endpoint for t in targets}
        targets += [t for t in found.targets if t.endpoint not in named]
        notes += found.notes
        complete = found.complete
        if not found.targets:
            notes.append(f"no endpoint of a probe-able engine found in {args.region}")
    results = probe.probe_all(
        targets,
        who=Identity(args.user, args.dbname),
        timeout=args.timeout,
        concurrency=args.concurrency,
        progress=_progress(err, "probed"),
    )
    code = probe.exit_code(results, complete=complete)
    if args.json:
        _dump(_probe_json(results, notes, complete, code), out)
    else:
        out.write(_probe_table(results, notes, code))
    return code


def _discover(region: str) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    from rds_force_ssl.cli import aws
    from rds_force_ssl.cli.discover import discover

    command = "probe --region"
    client = aws.rds_client(region, command=command)
    try:
        return discover(client)
    except (BotoCoreError, ClientError) as error:
        raise aws.translate(error, command=command) from error


def _counts(results: Sequence[Result]) -> dict[str, int]:
    from rds_force_ssl.cli.wire import Verdict

    return {str(v): sum(r.outcome.verdict == v for r in results) for v in Verdict}


def _probe_json(
    results: Sequence[Result], notes: Sequence[str], complete: bool, code: int
) -> dict[str, Any]:
    return {
        "endpoints": [
            {
                "endpoint": str(r.target.endpoint),
                "verdict": str(r.outcome.verdict),
                "detail": r.outcome.detail,
                "engine": r.target.engine,
                "resource": r.target.resource,
                "evidence": dict(r.outcome.evidence),
            }
            for r in results
        ],
        "counts": _counts(results),
        "complete": complete,
        "notes": list(notes),
        "exit_code": code,
    }


def _probe_table(results: Sequence[Result], notes: Sequence[str], code: int) -> str:
    from rds_force_ssl.cli.wire import terminal_safe

    with_resource = any(r.target.resource for r in results)
    headers = ("ENDPOINT", "VERDICT", *(("RESOURCE",) if with_resource else ()), "DETAIL")
    body = _table(
        headers,
        [
            (
                str(r.target.endpoint),
                str(r.outcome.verdict),
                *((r.target.resource or "-",) if with_resource else ()),
                # The server's words: no control character or escape sequence reaches the
                # terminal (--json escapes them as JSON does).
                terminal_safe(r.outcome.detail, limit=None),
            )
            for r in results
        ],
    )
    counts = ", ".join(f"{n} {v}" for v, n in _counts(results).items())
    return body + f"{counts} (exit {code})\n" + "".join(f"note: {n}\n" for n in notes)


# ---- verify --------------------------------------------------------------------------------
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


def _verify(args: argparse.Namespace, *, out: IO[str], err: IO[str]) -> int:
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
    run: Callable[..., list[Finding]] = verifier.run_verify
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
    findings = run(
        target, password=password, check_floor=args.check_tls_floor, now=datetime.now(UTC)
    )
    verdict = verify.conclusion(findings)
    code = verify.EXIT_CODES[verdict]
    if args.json:
        _dump(_verify_json(target, findings, verdict, code), out)
    else:
        out.write(_verify_table(target, findings, verdict, code))
    return code


def _verify_json(
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


def _verify_table(target: Target, findings: list[Finding], verdict: Conclusion, code: int) -> str:
    from rds_force_ssl.cli.engines import DEFAULT_ENGINE

    where = f"{target.user}@{target.host}:{target.port}" + (
        f"/{target.dbname}" if target.dbname else ""
    )
    mode = f"sslmode={target.sslmode}"
    if target.engine != DEFAULT_ENGINE:
        mode = f"{target.engine}, {mode}"
    head = f"rds-force-ssl verify {where} ({mode})\n"
    body = _table(
        ("CHECK", "STATUS", "EVIDENCE"), [(f.check, str(f.status), f.evidence) for f in findings]
    )
    return f"{head}{body}verdict: {verdict} (exit {code})\n"


# ---- audit ---------------------------------------------------------------------------------
def _audit(args: argparse.Namespace, *, out: IO[str], err: IO[str]) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from rds_force_ssl.cli import audit, aws

    client = aws.rds_client(args.region, command="audit")
    try:
        report = audit.audit(client, progress=_progress(err, "audited"))
    except (BotoCoreError, ClientError) as error:
        raise aws.translate(error, command="audit") from error
    code = audit.exit_code(report.rows, complete=report.complete)
    if args.json:
        _dump(_audit_json(report, code), out)
    else:
        out.write(_audit_table(report, code, now=datetime.now(UTC)))
    return code


def _audit_json(report: Report, code: int) -> dict[str, Any]:
    return {
        "resources": [
            {
                "kind": r.kind,
                "name": r.name,
                "engine": r.engine,
                "version": r.version,
                "parameter_groups": list(r.groups),
                "parameter": r.parameter,
                "value": r.value,
                "source": r.source,
                "apply_status": r.apply_status,
                "state": r.state,
                "enforced": r.enforced,
                "security_hub": r.control,
                "reason": r.reason,
                "ca": r.ca,
                "ca_valid_till": r.ca_valid_till.isoformat() if r.ca_valid_till else None,
                "members": dict(r.members),
            }
            for r in report.rows
        ],
        "enforced": sum(r.enforced is True for r in report.rows),
        "total": len(report.rows),
        "complete": report.complete,
        "notes": list(report.notes),
        "exit_code": code,
    }


def _audit_table(report: Report, code: int, *, now: datetime) -> str:
    def expiry(ca: str | None, valid_till: datetime | None) -> str:
        if ca is None:
            return "-"
        if valid_till is None:
            return "unknown"
        days = (valid_till - now).days
        mark = " EXPIRED" if days < 0 else f" ({days} days)" if days < 30 else ""
        return f"{valid_till:%Y-%m-%d}{mark}"

    body = _table(
        (
            "RESOURCE",
            "ENGINE",
            "PARAMETER GROUP",
            "SETTING",
            "SOURCE",
            "STATE",
            "CONTROL",
            "CA",
            "CA EXPIRES",
        ),
        [
            (
                f"{r.kind} {r.name}",
                f"{r.engine} {r.version}".strip(),
                ",".join(r.groups) or "-",
                r.setting,
                r.source,
                r.state,
                r.control or "-",
                r.ca or "-",
                expiry(r.ca, r.ca_valid_till),
            )
            for r in report.rows
        ],
    )
    enforced = sum(r.enforced is True for r in report.rows)
    summary = f"{enforced} of {len(report.rows)} effectively enforced (exit {code})\n"
    return body + summary + "".join(f"note: {n}\n" for n in report.notes)


# ---- report ----------------------------------------------------------------------------------
def _report(args: argparse.Namespace, *, out: IO[str], err: IO[str]) -> int:
    from rds_force_ssl import report

    assembly = Path(args.assembly)
    if not (assembly / "manifest.json").is_file():
        what = "no manifest.json in it" if assembly.is_dir() else "no such folder"
        raise CliError(
            "no-assembly",
            f"{assembly}: {what}, so no cloud assembly to read",
            fix="synthesize the app first (cdk synth writes cdk.out), or name the folder it "
            "wrote (cdk synth --output)",
        )
    rows = report.protected(assembly)
    lines, code = report.render(rows)
    if args.json:
        _dump({"assembly": str(assembly), "protected": rows, "exit_code": code}, out)
        return code
    if not rows:
        out.write(f"{assembly}: no database is protected by rds-force-ssl (exit {code})\n")
        return code
    out.write("".join(f"{line}\n" for line in lines))
    return code


COMMANDS: dict[str, Callable[..., int]] = {
    "probe": _probe,
    "verify": _verify,
    "audit": _audit,
    "report": _report,
}
