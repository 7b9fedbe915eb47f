"""``rds-force-ssl clients``: list every client that still connects without TLS, from the live
sessions (a login, as ``verify`` makes it) or from PostgreSQL's connection log (a file, or
CloudWatch Logs), grouped by (user, application, client address).

The reading and the deciding are in ``cli/clients.py`` and ``cli/connlog.py``.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from rds_force_ssl.cli.errors import MAX_TIMEOUT_S, CliError, check_timeout
from rds_force_ssl.cli.output import dump, printable, table

if TYPE_CHECKING:
    from rds_force_ssl.cli import Parser
    from rds_force_ssl.cli.clients import Report

NAME = "clients"
SSLMODES = ("verify-full", "verify-ca", "require")
EPILOG = (
    "Exit codes: 0 no plaintext client seen; 1 some were (they would be refused once SSL-only "
    "is enforced); 2 usage, connection or read error, or an incomplete view (sessions hidden "
    "from this login, a server not verified, a log cut short or without connection lines, "
    "log lines whose TLS a client's name makes ambiguous)."
)
DEFAULT_DAYS = 7


def add_parser(subparsers: argparse._SubParsersAction[Parser]) -> None:
    from rds_force_ssl.cli import clients, connlog
    from rds_force_ssl.cli.engines import DEFAULT_ENGINE, ENGINES

    c = subparsers.add_parser(
        NAME,
        help="before enforcing: list the clients that still connect without TLS",
        description="List every client that connects without TLS, grouped by user, "
        "application and client address, from one of: the live sessions (--host: a login "
        "made only over verified TLS, as verify makes it; PostgreSQL reads pg_stat_activity "
        f"and pg_stat_ssl and needs {clients.PG_GRANT} to see other roles' sessions, MySQL "
        "and MariaDB read performance_schema and need SELECT on it); PostgreSQL's connection "
        f"log ({connlog.PARAMETER}=1, dynamic in the database's own parameter group; a newly "
        "associated group waits for a reboot; with RDS's log_line_prefix) as a "
        "file (--log-file) or in CloudWatch Logs (--instance or --cluster).",
        epilog=EPILOG,
    )
    source = c.add_argument_group("source (exactly one)")
    source.add_argument("--host", help="live sessions: the endpoint host name")
    source.add_argument("--log-file", metavar="FILE", help="a PostgreSQL log file")
    source.add_argument(
        "--instance",
        metavar="ID",
        help="CloudWatch Logs: the RDS instance's exported log, "
        + connlog.LOG_GROUP.format(kind="instance", id="ID"),
    )
    source.add_argument(
        "--cluster",
        metavar="ID",
        help="CloudWatch Logs: the Aurora cluster's exported log, "
        + connlog.LOG_GROUP.format(kind="cluster", id="ID"),
    )
    live = c.add_argument_group("live sessions (with --host; as verify)")
    live.add_argument("--engine", choices=tuple(ENGINES), default=DEFAULT_ENGINE)
    live.add_argument("--port", type=int)
    live.add_argument("--dbname")
    live.add_argument("--user")
    live.add_argument(
        "--password-env",
        metavar="VAR",
        help="environment variable holding the password (default: "
        + ", or ".join(f"{e.password_env} with --engine {e.name}" for e in ENGINES.values())
        + "); prompted for when unset and stdin is a terminal",
    )
    live.add_argument("--sslrootcert", metavar="FILE", help="the RDS CA bundle (PEM)")
    live.add_argument("--sslmode", choices=SSLMODES, default="verify-full")
    live.add_argument("--allow-unverified-password", action="store_true")
    logs = c.add_argument_group("connection log")
    logs.add_argument(
        "--days",
        type=int,
        help=f"the last N days, UTC, today included (default {DEFAULT_DAYS})",
    )
    logs.add_argument("--region", help="AWS region (default: the AWS SDK's configuration)")
    c.add_argument(
        "--timeout",
        type=float,
        default=clients.DEFAULT_TIMEOUT_S,
        help="seconds for the whole run once the password is known: resolving the name, the "
        "login, the query and its answer, or reading the log "
        f"(default {clients.DEFAULT_TIMEOUT_S:g}, at most {MAX_TIMEOUT_S:g})",
    )
    c.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace, *, out: IO[str], err: IO[str]) -> int:
    from rds_force_ssl.cli import clients

    sources = [n for n in ("host", "log_file", "instance", "cluster") if getattr(args, n)]
    if len(sources) != 1:
        raise CliError(
            "usage",
            "clients reads one source: "
            + ("none was given" if not sources else "--" + ", --".join(sources).replace("_", "-")),
            fix="pass --host (live sessions), --log-file, --instance or --cluster",
        )
    check_timeout(args.timeout, option="--timeout")
    misplaced = _misplaced(args)
    if misplaced:
        raise CliError(
            "usage",
            f"{misplaced} does not apply to --{sources[0].replace('_', '-')}",
            fix="drop it; see rds-force-ssl clients --help for the options of each source",
        )
    if args.host:
        report = _live(args)
        where = f"{args.user}@{args.host}:{args.port}" + (f"/{args.dbname}" if args.dbname else "")
    else:
        args.days = DEFAULT_DAYS if args.days is None else args.days
        if args.days < 1:
            raise CliError("usage", f"--days {args.days} is below 1", fix="pass 1 or more")
        report, where = _log(args)
    code = clients.exit_code(report)
    if args.json:
        dump(render_json(report, where, code), out)
    else:
        out.write(render_table(report, where, code))
    return code


def _misplaced(args: argparse.Namespace) -> str | None:
    """The first option given that the chosen source does not read, if any."""
    live = ("user", "dbname", "port", "sslrootcert", "password_env")
    if args.host:
        wrong = ["days", "region"]
    else:
        wrong = [*live, *(() if args.instance or args.cluster else ("region",))]
    given = [name for name in wrong if getattr(args, name) is not None]
    if not args.host and args.allow_unverified_password:
        given.append("allow_unverified_password")
    return "--" + given[0].replace("_", "-") if given else None


def _live(args: argparse.Namespace) -> Report:
    from rds_force_ssl.cli import clients, verify
    from rds_force_ssl.cli.engines import ENGINES
    from rds_force_ssl.cli.password import check_login, password_from

    protocol = ENGINES[args.engine]
    if not args.user:
        raise CliError("usage", "--host needs --user", fix="pass --user (and the password env)")
    args.password_env = args.password_env or protocol.password_env
    args.port = args.port or protocol.default_port
    args.dbname = args.dbname if args.dbname is not None else protocol.default_dbname
    check_login(args, protocol)  # verify's rules, one copy
    if protocol.libpq:
        verify.require_drivers(command="clients --host")
    else:
        from rds_force_ssl.cli import verify_mysql

        verify_mysql.require_drivers(command=f"clients --host --engine {args.engine}")
    # One deadline for the whole run, started again after a password prompt: that waits for a
    # person, not a server. Each connection keeps it on its socket (clients.read_postgres,
    # clients.read_mysql).
    deadline = time.monotonic() + args.timeout
    # PyMySQL checks the certificate against the name it dials, so only libpq gets this.
    address = verify.resolve(args.host, args.port, deadline=deadline) if protocol.libpq else None
    prompted = not os.environ.get(args.password_env)
    password = password_from(args)
    if prompted:
        deadline = time.monotonic() + args.timeout
    target = verify.Target(
        host=args.host,
        port=args.port,
        dbname=args.dbname,
        user=args.user,
        sslmode=args.sslmode,
        sslrootcert=args.sslrootcert,
        allow_unverified_password=args.allow_unverified_password,
        engine=args.engine,
        address=address,
    )
    read = clients.read_postgres if protocol.libpq else clients.read_mysql
    report = read(target, password=password, timeout=args.timeout, deadline=deadline)
    # As verify: nothing an unverified server says can end in exit 0.
    return clients.unverified(report, target)


def _log(args: argparse.Namespace) -> tuple[Report, str]:
    from rds_force_ssl.cli import clients, connlog

    now = datetime.now(UTC)
    since = connlog.window_start(args.days, now=now)
    if args.log_file:
        deadline = clients.deadline_in(args.timeout)
        try:
            with open(args.log_file, "rb", buffering=0) as stream:
                scan = connlog.scan_file(stream, since=since, deadline=deadline)
        except OSError as error:
            raise CliError(
                "unreadable-log",
                f"--log-file {args.log_file}: {error.strerror or error}",
                fix="pass a readable PostgreSQL log file",
            ) from error
        where = args.log_file
    else:
        group = connlog.log_group(instance=args.instance, cluster=args.cluster)
        client = connlog.logs_client(args.region)
        # Pages stop at 90% of --timeout and say so; a call that hangs past all of it (its
        # retries included) ends the command there.
        soft = clients.deadline_in(args.timeout * 0.9)
        scan = clients.within(
            args.timeout,
            lambda: connlog.scan_cloudwatch(
                client, group, since=since, until=now, deadline=soft, region=args.region
            ),
            what=f"reading {group}",
        )
        where = f"CloudWatch Logs {group}"
    source = f"connection log, {args.days} day(s) from {since:%Y-%m-%d} (UTC)"
    return clients.log_report(scan, source=source, days=args.days), where


def _cell(value: str) -> str:
    return printable(value) if value else "-"


def render_table(report: Report, where: str, code: int) -> str:
    from rds_force_ssl.cli.clients import Transport

    head = f"rds-force-ssl clients {printable(where)} ({report.source})\n"
    rows = [
        (
            _cell(g.user),
            _cell(g.application),
            _cell(g.client),
            str(g.plaintext),
            str(g.counts.get(Transport.TLS, 0)),
            str(g.counts.get(Transport.LOCAL, 0) + g.counts.get(Transport.HIDDEN, 0)),
            _cell(",".join(sorted(g.databases))),
            _cell(",".join(sorted(g.protocols))),
            _cell(g.last or ""),
        )
        for g in report.groups
    ]
    body = (
        table(
            (
                "USER",
                "APPLICATION",
                "CLIENT",
                "PLAINTEXT",
                "TLS",
                "OTHER",
                "DATABASES",
                "TLS PROTOCOLS",
                "LAST",
            ),
            rows,
        )
        if rows
        else "no client seen\n"
    )
    notes = "".join(f"note: {printable(n, limit=1000)}\n" for n in report.notes)
    return f"{head}{body}{notes}verdict: {verdict(report)} (exit {code})\n"


def verdict(report: Report) -> str:
    from rds_force_ssl.cli.clients import Transport

    plaintext = report.count(Transport.PLAINTEXT)
    clients = sum(1 for g in report.groups if g.plaintext)
    unit = "session(s)" if "sessions" in report.source else "login(s)"
    if plaintext:
        return (
            f"PLAINTEXT CLIENTS: {plaintext} {unit} from {clients} (user, application, client) "
            "would be refused once SSL-only is enforced"
        )
    if not report.complete:
        return f"INCOMPLETE: no plaintext client among the {report.seen} {unit} seen"
    return f"NO PLAINTEXT CLIENT: {report.seen} {unit} seen, none without TLS"


def render_json(report: Report, where: str, code: int) -> dict[str, Any]:
    from rds_force_ssl.cli.clients import Transport

    return {
        "source": report.source,
        "where": where,
        "groups": [
            {
                "user": g.user,
                "application": g.application,
                "client": g.client,
                **{str(t): g.counts.get(t, 0) for t in Transport},
                "databases": sorted(g.databases),
                "tls_protocols": sorted(g.protocols),
                "client_ports": sorted(g.ports),
                "first": g.first,
                "last": g.last,
            }
            for g in report.groups
        ],
        "totals": {str(t): report.count(t) for t in Transport},
        "seen": report.seen,
        "complete": report.complete,
        "notes": report.notes,
        "verdict": verdict(report),
        "exit_code": code,
    }
