"""``rds-force-ssl clients``: before enforcing, who would break? Every client seen without TLS,
grouped by (user, application, client address): what a person acts on.

Two sources:

- **live sessions**, over a login made as ``verify`` makes it (verified TLS, the password never
  in plaintext; ``verify.Target``, ``verify.session_params``, ``verify_mysql.context``):

  - PostgreSQL: ``pg_stat_activity`` joined with ``pg_stat_ssl`` on ``pid``, in one query (one
    round trip). A role without ``pg_read_all_stats`` (RDS: ``rds_superuser`` has it) sees only
    the user and application of other roles' sessions: their address and TLS state are NULL,
    and ``pg_stat_ssl`` leaves them out. Such a session is counted as hidden, never as
    encrypted, and the view is incomplete.
  - MySQL and MariaDB: ``performance_schema.threads`` (``CONNECTION_TYPE``: ``SSL/TLS``,
    ``TCP/IP``, ``Socket``) with ``status_by_thread`` (``Ssl_version``, ``Ssl_cipher``) and
    ``session_connect_attrs`` (``program_name``), in one query. It needs ``SELECT`` on
    ``performance_schema`` and the schema on (``performance_schema=1``, a static parameter;
    Performance Insights turns it on); a server without it has the tables but no rows, and
    then only ``information_schema.PROCESSLIST`` (who, from where: no transport) is shown.

- **connection history**, without a login, from PostgreSQL's connection log (``connlog.py``).

The decisions are pure functions over rows; only ``read_postgres`` and ``read_mysql`` talk to a
server, each on a connection that keeps one overall deadline and a byte cap on its socket
(libpq driven without blocking, ``libpq.connect``; PyMySQL on a bounded socket,
``verify_mysql.login``), reading at most ``MAX_SESSIONS`` rows (``MYSQL_MAX_SESSIONS`` on
MySQL). The cap holds that many rows of
bounded width (``PG_ROW_BYTES``, ``MYSQL_ROW_BYTES``): a server that sends more is cut off, and
the view is incomplete.
"""

from __future__ import annotations

import re
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from rds_force_ssl.cli.errors import CliError

if TYPE_CHECKING:
    from rds_force_ssl.cli.connlog import Login, Scan
    from rds_force_ssl.cli.verify import Target

APPLICATION_NAME = "rds-force-ssl clients"
MAX_SESSIONS = 100_000  # rows read at most; one more is asked for, to know when it capped
# What a session's answer may take besides its rows: the login (a certificate chain, the
# server's parameters), the SET's completion, the row description, and TLS's framing of all of
# it (about 0.2% of what it carries).
ANSWER_OVERHEAD_BYTES = 256 * 1024
DEFAULT_TIMEOUT_S = 30.0
MAX_PORTS = 20  # client ports kept per group: enough to find the processes on the client host
PG_GRANT = "pg_read_all_stats"


class Transport(StrEnum):
    PLAINTEXT = "plaintext"  # would be refused once SSL-only is enforced
    TLS = "tls"
    LOCAL = "local"  # a Unix-domain socket on the server itself: not a network client
    HIDDEN = "hidden"  # this login may not see how it is connected: unknown, never "tls"


@dataclass(frozen=True)
class Session:
    """One client session (or, from a log, ``count`` logins alike)."""

    user: str
    database: str | None
    application: str
    client: str  # address without the port; "" when hidden
    transport: Transport
    protocol: str | None = None
    cipher: str | None = None
    port: int | None = None
    since: str | None = None  # backend start (live), or the day (log)
    count: int = 1


@dataclass
class Group:
    user: str
    application: str
    client: str
    counts: dict[Transport, int] = field(default_factory=dict)
    databases: set[str] = field(default_factory=set)
    protocols: set[str] = field(default_factory=set)
    ports: set[int] = field(default_factory=set)  # live only; at most MAX_PORTS kept
    first: str | None = None
    last: str | None = None

    @property
    def plaintext(self) -> int:
        return self.counts.get(Transport.PLAINTEXT, 0)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class Report:
    source: str
    groups: list[Group]
    notes: list[str] = field(default_factory=list)  # what the view lacks, each with its fix
    complete: bool = True
    seen: int = 0  # sessions (live) or logins (log) counted

    def count(self, transport: Transport) -> int:
        return sum(g.counts.get(transport, 0) for g in self.groups)


def exit_code(report: Report) -> int:
    """1 when a plaintext client was seen (proof beats a gap), else 2 when the view is
    incomplete, else 0."""
    if report.count(Transport.PLAINTEXT):
        return 1
    return 0 if report.complete else 2


def group(sessions: Iterable[Session]) -> list[Group]:
    """Sessions grouped by (user, application, client address); most plaintext first."""
    groups: dict[tuple[str, str, str], Group] = {}
    for s in sessions:
        key = (s.user, s.application, s.client)
        g = groups.get(key)
        if g is None:
            g = groups[key] = Group(*key)
        g.counts[s.transport] = g.counts.get(s.transport, 0) + s.count
        if s.database:
            g.databases.add(s.database)
        if s.protocol:
            g.protocols.add(s.protocol)
        if s.port is not None and len(g.ports) < MAX_PORTS:
            g.ports.add(s.port)
        if s.since:
            g.first = min(g.first or s.since, s.since)
            g.last = max(g.last or s.since, s.since)
    return sorted(
        groups.values(),
        key=lambda g: (
            -g.plaintext,
            -g.counts.get(Transport.HIDDEN, 0),
            -g.total,
            g.user,
            g.application,
            g.client,
        ),
    )


# ---- PostgreSQL ----------------------------------------------------------------------------
# Client backends and walsenders other than our own, and the hidden rows of other roles
# (backend_type is NULL there). Of those, a process with no user or no database is the server's
# own (the checkpointer, the logical replication launcher) or a physical replica, which on RDS
# is RDS's own: left out. host() drops the netmask;
# client_port is -1 on a Unix-domain socket. One simple-query message: one round trip.
PG_SQL = """
SELECT a.usename, a.datname, a.application_name, host(a.client_addr), a.client_port,
       to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       a.backend_type, s.ssl, s.version, s.cipher
FROM pg_stat_activity a LEFT JOIN pg_stat_ssl s ON s.pid = a.pid
WHERE a.pid <> pg_backend_pid()
  AND (a.backend_type IN ('client backend', 'walsender')
       OR (a.backend_type IS NULL AND a.usesysid IS NOT NULL AND a.datname IS NOT NULL))
LIMIT {limit}
"""


# The most one row of PG_SQL takes on the wire (a DataRow): 7 bytes of framing and 4 of length
# per value (47), six values of type name or cut to NAMEDATALEN - 1 = 63 bytes by the server
# (usename, datname, application_name, backend_type, pg_stat_ssl's version and cipher: 378),
# host() of an IPv6 address (at most 45), the port (6), the time (20) and ssl (1): 497.
PG_ROW_BYTES = 512


def pg_answer_bytes(limit: int) -> int:
    """The byte cap of the listing's PostgreSQL session: ``limit`` + 1 rows of at most
    ``PG_ROW_BYTES`` and the rest of the conversation (about 51 MB for MAX_SESSIONS)."""
    return (limit + 1) * PG_ROW_BYTES + ANSWER_OVERHEAD_BYTES


def pg_session(row: Sequence[str | None]) -> Session:
    """One row of PG_SQL (text values, None for NULL)."""
    user, database, app, addr, port, start, backend_type, ssl, version, cipher = row
    base = Session(user or "", database, app or "", "", Transport.HIDDEN)
    if backend_type is None:
        return base
    number = int(port) if port and re.fullmatch(r"-?[0-9]{1,6}", port) else None
    if number == -1 or addr is None:
        return replace(base, client="[local]", transport=Transport.LOCAL, since=start)
    if ssl is None:  # no pg_stat_ssl row: the server did not say
        return replace(base, client=addr, port=number, since=start)
    if ssl != "t":
        return replace(base, client=addr, port=number, since=start, transport=Transport.PLAINTEXT)
    return replace(
        base,
        client=addr,
        port=number,
        since=start,
        transport=Transport.TLS,
        protocol=version,
        cipher=cipher,
    )


def pg_hidden_note(hidden: int, *, user: str) -> str:
    return (
        f"{hidden} session(s) of other roles are hidden from {user}: PostgreSQL shows their "
        f"user and application but not their address or TLS state (they may include the "
        f"server's own workers); they are counted as hidden, not encrypted. Log in as a "
        f"role with {PG_GRANT} (GRANT {PG_GRANT} TO {user}; on RDS rds_superuser has it)"
    )


def unverified(report: Report, target: Target) -> Report:
    """``report`` marked incomplete when the server's identity was not verified
    (``verify.server_verified``: --sslmode verify-ca or require with
    --allow-unverified-password): an impostor may have taken the password and answered with
    no session at all, so its "none" proves nothing. Plaintext sessions it listed still count
    (exit 1): naming clients to fix is evidence either way."""
    from rds_force_ssl.cli import verify
    from rds_force_ssl.cli.engines import ENGINES

    if verify.server_verified(target):
        return report
    report.complete = False
    report.notes.append(
        f"the server was NOT verified (--sslmode {target.sslmode} with "
        "--allow-unverified-password): any server that answers at this address could have "
        "taken the password and listed what it liked, so a list without plaintext sessions "
        "proves nothing. Pass --sslmode verify-full with --sslrootcert"
        + (
            " (or drop --allow-unverified-password: SCRAM's channel binding then proves it)"
            if ENGINES[target.engine].channel_binding
            else ""
        )
    )
    return report


def capped_note(limit: int) -> str:
    return f"more than {limit} sessions: only the first {limit} were read"


def too_much_report(source: str, *, said: str, limit: int) -> Report:
    """The view when the server sent more than the byte cap (``said``: the connection layer's
    words, which name the cap it kept): nothing of the answer is kept (a server that sends more
    than ``limit`` rows of bounded width is not one to believe)."""
    return Report(
        source,
        [],
        notes=[
            f"{said}, more than {limit} sessions' rows can take: the connection was cut "
            "and nothing of the answer is shown. Check that "
            "--host and --port name the database (`rds-force-ssl verify` with the same "
            "options says more)"
        ],
        complete=False,
    )


PG_COLUMNS = 10  # of PG_SQL
MYSQL_COLUMNS = 9  # of MYSQL_SQL
MYSQL_PROCESSLIST_COLUMNS = 3


def check_shape(rows: Sequence[Sequence[object]] | None, columns: int, *, target: Target) -> None:
    """A CliError unless ``rows`` is a result of ``columns`` values a row: a server that answers
    the listing with something else (no result set, another query's columns) is not one whose
    answer can be read as sessions."""
    if rows is None:
        shape = "no result set"
    else:
        widths = sorted({len(r) for r in rows if len(r) != columns})
        if not widths:
            return
        shape = f"rows of {', '.join(map(str, widths))} value(s)"
    raise CliError(
        "unexpected-answer",
        f"{target.host}:{target.port} answered the session list with {shape}, where "
        f"{columns} values a row were asked for: nothing of it is counted",
        fix="check that --host, --port and --engine name the database; `rds-force-ssl verify` "
        "with the same options says more",
    )


def timeout_error(target: Target, timeout: float) -> CliError:
    return CliError(
        "timeout",
        f"the session list of {target.host}:{target.port} did not finish within --timeout "
        f"{timeout:g} s",
        fix="check the network path to the endpoint, or raise --timeout",
    )


def postgres_report(
    rows: Sequence[Sequence[str | None]], *, user: str, limit: int = MAX_SESSIONS
) -> Report:
    sessions = [pg_session(r) for r in rows[:limit]]
    report = Report("postgresql sessions", group(sessions), seen=len(sessions))
    hidden = report.count(Transport.HIDDEN)
    if hidden:
        report.notes.append(pg_hidden_note(hidden, user=user))
        report.complete = False
    if len(rows) > limit:
        report.notes.append(capped_note(limit))
        report.complete = False
    return report


T = TypeVar("T")


def within(seconds: float, work: Callable[[], T], *, what: str) -> T:
    """``work()``, or a CliError once ``seconds`` have passed (the thread is left behind: a
    blocked driver call cannot be interrupted, and the command ends). Only for what no
    connection layer of ours bounds: boto3's calls to CloudWatch Logs."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = work()
        except BaseException as err:  # handed to the caller
            box["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise CliError(
            "timeout",
            f"{what} did not finish within --timeout {seconds:g} s",
            fix="check the network path to the endpoint, or raise --timeout",
        )
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def read_postgres(
    target: Target,
    *,
    password: str,
    timeout: float,
    deadline: float | None = None,
    limit: int | None = None,
) -> Report:
    """The live sessions, over one libpq connection that ends by ``deadline``
    (time.monotonic(); default ``timeout`` from now) and reads at most
    ``pg_answer_bytes(limit)``. The server's own statement_timeout is ``timeout`` too."""
    from rds_force_ssl.cli import libpq, verify

    limit = MAX_SESSIONS if limit is None else limit
    end = time.monotonic() + timeout if deadline is None else deadline
    cap = pg_answer_bytes(limit)
    params = verify.session_params(target, password=password)
    params["application_name"] = APPLICATION_NAME
    milliseconds = int(timeout * 1000)
    sql = f"SET statement_timeout = {milliseconds}; " + PG_SQL.format(limit=limit + 1)
    try:
        with libpq.connect(params, deadline=end, max_bytes=cap) as session:
            rows = session.query(sql)
    except libpq.Deadline as err:
        raise timeout_error(target, timeout) from err
    except libpq.TooMuch as err:
        return too_much_report("postgresql sessions", said=str(err), limit=limit)
    except libpq.LibpqError as err:
        raise CliError(
            "login-failed",
            f"could not read the sessions (sslmode={target.sslmode}): "
            f"{verify.server_error(str(err))}",
            fix="check --user, the password, --dbname and --sslrootcert; `rds-force-ssl "
            "verify` with the same options says more",
        ) from err
    check_shape(rows, PG_COLUMNS, target=target)
    return postgres_report(rows, user=target.user, limit=limit)


# ---- MySQL and MariaDB ---------------------------------------------------------------------
# Foreground threads other than our own, with the port from PROCESSLIST (which shows only our
# own threads without the PROCESS privilege: the port is then unknown) and the program name
# the client sent (PyMySQL's program_name, mysql's "mysql"; else the driver's _client_name).
# Every text value is cut to a width of its own (see MYSQL_ROW_BYTES); p.HOST keeps its end,
# where the port is.
MYSQL_SQL = """
SELECT LEFT(t.PROCESSLIST_USER, 32), LEFT(t.PROCESSLIST_DB, 64), LEFT(COALESCE(
         (SELECT ATTR_VALUE FROM performance_schema.session_connect_attrs a
          WHERE a.PROCESSLIST_ID = t.PROCESSLIST_ID AND a.ATTR_NAME = 'program_name' LIMIT 1),
         (SELECT ATTR_VALUE FROM performance_schema.session_connect_attrs a
          WHERE a.PROCESSLIST_ID = t.PROCESSLIST_ID AND a.ATTR_NAME = '_client_name' LIMIT 1)),
         64),
       LEFT(t.PROCESSLIST_HOST, 64), RIGHT(p.HOST, 70), LEFT(t.CONNECTION_TYPE, 16),
       LEFT(v.VARIABLE_VALUE, 16), LEFT(c.VARIABLE_VALUE, 64),
       t.PROCESSLIST_ID = CONNECTION_ID()
FROM performance_schema.threads t
LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.PROCESSLIST_ID
LEFT JOIN performance_schema.status_by_thread v
       ON v.THREAD_ID = t.THREAD_ID AND v.VARIABLE_NAME = 'Ssl_version'
LEFT JOIN performance_schema.status_by_thread c
       ON c.THREAD_ID = t.THREAD_ID AND c.VARIABLE_NAME = 'Ssl_cipher'
WHERE t.TYPE = 'FOREGROUND' AND t.PROCESSLIST_USER IS NOT NULL
LIMIT {limit}
"""
# Without performance_schema: who is connected, from where; not how.
MYSQL_PROCESSLIST_SQL = """
SELECT LEFT(USER, 32), LEFT(DB, 64), RIGHT(HOST, 70) FROM information_schema.PROCESSLIST
WHERE ID <> CONNECTION_ID() AND COMMAND NOT IN ('Daemon', 'Killed') AND USER <> 'system user'
LIMIT {limit}
"""
# The most one row of MYSQL_SQL takes on the wire: 4 bytes of packet header, and for each of
# the nine values its length (at most 3 bytes) and its characters: 390 after LEFT and RIGHT (a
# user name: 32, as MySQL allows; a host: 64, and 70 with ":port"), at most 4 bytes each in
# utf8mb4, and the one-digit "is it us": 1,584. PROCESSLIST's row: 4 + 7 + 4 x 166 = 675.
MYSQL_ROW_BYTES = 1600
MYSQL_PROCESSLIST_ROW_BYTES = 680
# Rows read at most on MySQL: what a row takes there in Python (its bytes, then nine str
# objects of up to 4 bytes a character) is several times PostgreSQL's, and the process must stay
# within about 128 MB whatever the server sends (mysql_answer_bytes: about 46 MB).
MYSQL_MAX_SESSIONS = 20_000
MYSQL_GRANT = "GRANT SELECT ON performance_schema.* TO"
_MYSQL_LOCAL = frozenset({"Socket", "Named Pipe", "Shared Memory"})
ER_TABLEACCESS_DENIED = 1142


def mysql_answer_bytes(limit: int) -> int:
    """The byte cap of the listing's MySQL session: ``limit`` + 2 rows of MYSQL_SQL of at most
    ``MYSQL_ROW_BYTES``, then ``limit`` + 1 of the narrower MYSQL_PROCESSLIST_SQL of at most
    ``MYSQL_PROCESSLIST_ROW_BYTES``, and the rest of the conversation (about 46 MB for
    MYSQL_MAX_SESSIONS, at worst: every character 4 bytes wide)."""
    return (
        (limit + 2) * MYSQL_ROW_BYTES
        + (limit + 1) * MYSQL_PROCESSLIST_ROW_BYTES
        + ANSWER_OVERHEAD_BYTES
    )


def split_host(host: str | None) -> tuple[str, int | None]:
    """("10.0.0.5", 43210) from PROCESSLIST's "10.0.0.5:43210"; ("localhost", None) alone."""
    if not host:
        return "", None
    address, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        return address, int(port)
    return host, None


def mysql_session(row: Sequence[Any]) -> Session:
    """One row of MYSQL_SQL (without the "is it us" column)."""
    user, database, app, host, process_host, kind, version, cipher = row[:8]
    address, port = split_host(str(process_host) if process_host else None)
    base = Session(
        user=str(user or ""),
        database=str(database) if database else None,
        application=str(app or ""),
        client=str(host or address or ""),
        port=port,
        transport=Transport.HIDDEN,
    )
    if kind == "SSL/TLS":
        return replace(
            base, transport=Transport.TLS, protocol=version or None, cipher=cipher or None
        )
    if kind == "TCP/IP":
        return replace(base, transport=Transport.PLAINTEXT)
    if kind in _MYSQL_LOCAL:
        return replace(base, transport=Transport.LOCAL)
    return base


def mysql_report(
    rows: Sequence[Sequence[Any]], *, limit: int = MYSQL_MAX_SESSIONS
) -> Report | None:
    """The report from MYSQL_SQL's rows; None when not even our own thread is there: the
    performance schema is off (its tables exist, empty) and PROCESSLIST must do."""
    if not any(bool(r[8]) for r in rows):
        return None
    others = [r for r in rows[: limit + 1] if not r[8]]
    sessions = [mysql_session(r) for r in others[:limit]]
    report = Report("mysql sessions", group(sessions), seen=len(sessions))
    hidden = report.count(Transport.HIDDEN)
    if hidden:
        report.notes.append(f"{hidden} session(s) whose connection type the server did not show")
        report.complete = False
    if len(rows) > limit:
        report.notes.append(capped_note(limit))
        report.complete = False
    return report


def processlist_report(rows: Sequence[Sequence[Any]], *, limit: int = MYSQL_MAX_SESSIONS) -> Report:
    sessions = [
        Session(
            user=str(user or ""),
            database=str(db) if db else None,
            application="",
            client=split_host(str(host) if host else None)[0],
            port=split_host(str(host) if host else None)[1],
            transport=Transport.HIDDEN,
        )
        for user, db, host in rows[:limit]
    ]
    report = Report("mysql sessions", group(sessions), seen=len(sessions), complete=False)
    report.notes.append(
        "performance_schema is off on this server: its tables are empty, so no query can tell "
        f"how each client is connected; the {len(sessions)} session(s) of "
        "information_schema.PROCESSLIST (all of them only with the PROCESS privilege) are shown "
        "as hidden. Turn on performance_schema (a static parameter: a reboot; Performance "
        "Insights turns it on)"
    )
    if len(rows) > limit:
        report.notes.append(capped_note(limit))
    return report


def read_mysql(
    target: Target,
    *,
    password: str,
    timeout: float,
    deadline: float | None = None,
    limit: int | None = None,
) -> Report:
    """The live sessions, over one PyMySQL login (``verify_mysql.login``) whose socket keeps
    ``deadline`` (time.monotonic(); default ``timeout`` from now) and receives at most
    verify's ``MAX_SESSION_BYTES`` until logged in, then ``mysql_answer_bytes(limit)`` in all
    (``limit``: MYSQL_MAX_SESSIONS by default)."""
    import pymysql

    from rds_force_ssl.cli import verify_mysql
    from rds_force_ssl.cli.wire import Bounds

    limit = MYSQL_MAX_SESSIONS if limit is None else limit
    end = time.monotonic() + timeout if deadline is None else deadline
    # The login takes a few KB: it keeps verify's cap, so that a server flooding its greeting
    # (before TLS, unverified) is cut at 1 MB, not at the hundreds of MB the listing may take.
    bounds = Bounds(deadline=end, max_bytes=verify_mysql.MAX_SESSION_BYTES)
    try:
        conn = verify_mysql.login(
            target, password=password, bounds=bounds, program_name=APPLICATION_NAME
        )
        bounds.allow(mysql_answer_bytes(limit))
        try:
            # The login's own 10 s per read suits a login; the listing may take longer, and
            # the deadline bounds every read on this socket.
            conn._read_timeout = conn._write_timeout = None
            with conn.cursor() as cur:
                cur.execute(MYSQL_SQL.format(limit=limit + 2))
                rows = list(cur.fetchall()) if cur.description is not None else None
                check_shape(rows, MYSQL_COLUMNS, target=target)
                report = mysql_report(rows or [], limit=limit)
                if report is None:
                    rows = None  # let the first answer go before the second is read
                    cur.execute(MYSQL_PROCESSLIST_SQL.format(limit=limit + 1))
                    rows = list(cur.fetchall()) if cur.description is not None else None
                    check_shape(rows, MYSQL_PROCESSLIST_COLUMNS, target=target)
                    report = processlist_report(rows or [], limit=limit)
                return report
        finally:
            conn.close()
    except (pymysql.MySQLError, OSError, ValueError, IndexError, KeyError, struct.error) as err:
        if bounds.broken == "deadline" or (isinstance(err, TimeoutError) and bounds.expired()):
            raise timeout_error(target, timeout) from err
        if bounds.broken == "bytes":
            said = f"the server sent more than {bounds.max_bytes} bytes"
            return too_much_report("mysql sessions", said=said, limit=limit)
        raise mysql_error(err, target) from err


def mysql_error(err: BaseException, target: Target) -> CliError:
    """What went wrong with the login or the listing, other than a limit of its connection."""
    args: tuple[Any, ...] = tuple(getattr(err, "args", ()))
    # A MySQL error's number; an OSError's first argument is an errno, not one.
    code = args[0] if args and isinstance(args[0], int) and not isinstance(err, OSError) else None
    # Raw: the CLI escapes every error message once, as it prints it (cli.main's _fail).
    said = str(args[1] if code is not None and len(args) > 1 else err)
    if code == ER_TABLEACCESS_DENIED:
        return CliError(
            "permission",
            f"{target.user} may not read performance_schema: {said}",
            fix=f"{MYSQL_GRANT} '{target.user}'@'%' (and PROCESS for the client ports)",
        )
    if isinstance(err, (ValueError, IndexError, KeyError, struct.error)):
        said = f"an answer no MySQL client can read ({type(err).__name__}: {said})"
    elif code is not None:
        said += f" (MySQL error {code})"
    return CliError(
        "login-failed",
        f"could not read the sessions (sslmode={target.sslmode}): {said}",
        fix="check --user, the password and --sslrootcert; `rds-force-ssl verify --engine "
        "mysql` with the same options says more",
    )


# ---- the connection log --------------------------------------------------------------------
def login_sessions(logins: Iterable[Login]) -> list[Session]:
    return [
        Session(
            user=login.user,
            database=login.database,
            application=login.application,
            client=login.client,
            transport=(
                Transport.LOCAL
                if login.client == "[local]"
                else Transport.HIDDEN
                if login.ambiguous
                else Transport.TLS
                if login.protocol
                else Transport.PLAINTEXT
            ),
            protocol=login.protocol,
            cipher=login.cipher,
            since=login.day,
            count=login.count,
        )
        for login in logins
    ]


def log_report(scan: Scan, *, source: str, days: int) -> Report:
    from rds_force_ssl.cli import connlog

    sessions = login_sessions(scan.logins)
    report = Report(source, group(sessions), seen=sum(s.count for s in sessions))
    if scan.lines == 0:
        report.complete = False
        report.notes.append(
            f"no 'connection authorized' line at all: is {connlog.PARAMETER} on? Set "
            f"{connlog.PARAMETER}=1 in the database's parameter group (ForceSsl: "
            "log_connections=True): dynamic in the group the database uses, but a group newly "
            "associated with it (a database on a default group gets one) takes effect only "
            "after a reboot (`rds-force-ssl audit` shows pending-reboot until then)"
        )
    elif not report.seen and not scan.unparsed:
        report.notes.append(
            f"no connection in the last {days} day(s) (UTC): the {scan.lines} 'connection "
            "authorized' line(s) are older"
        )
    ambiguous = sum(login.count for login in scan.logins if login.ambiguous)
    if ambiguous:
        report.complete = False
        report.notes.append(
            f"{ambiguous} login(s) whose line has '{connlog.SSL_MARK}' where PostgreSQL "
            "would not write it (in the application name the client chose, or with a protocol "
            "or cipher OpenSSL does not report): a plaintext client can pose as TLS that way, "
            "so they are counted as neither TLS nor plaintext (OTHER). The live view "
            "(--host, pg_stat_ssl) tells how they connect"
        )
    if scan.unparsed:
        report.complete = False
        report.notes.append(
            f"{scan.unparsed} 'connection authorized' line(s) not in RDS's format "
            f"(log_line_prefix '{connlog.RDS_LINE_PREFIX}'): not counted"
        )
    if scan.skipped_long:
        report.complete = False
        report.notes.append(
            f"{scan.skipped_long} line(s) longer than {connlog.BLOCK} bytes skipped"
        )
    if scan.truncated:
        report.complete = False
        report.notes.append(f"incomplete: {scan.truncated}")
    return report


def deadline_in(seconds: float) -> float:
    return time.monotonic() + seconds
