"""``rds-force-ssl verify --engine mysql``: prove that one MySQL, MariaDB or Aurora MySQL endpoint
refuses plaintext and serves verified TLS, and say plainly what was and was not checked.

The checks, run concurrently:

1. **plaintext refused**: ``require_secure_transport`` as the running server has it (the very
   flag its plaintext check reads), from the verified session; a greeting without TLS fails
   it at once. MySQL and MariaDB check it only after the password (see ``mywire``), so a
   plaintext attempt without the password could not tell, and one with it would send it: no
   credential goes in plaintext here, ever;
2. **verified TLS**: a PyMySQL login over TLS with an ``ssl.SSLContext`` built from ``sslmode``
   (verify-full: the CA and the host name, as VERIFY_IDENTITY does), which reads the server's
   own view of the session (``Ssl_version``, ``Ssl_cipher``);
3. **certificate**: the certificate the server presents (greeting, SSLRequest, handshake, and
   hang up), and the CAs of ``--sslrootcert`` that issued it;
4. **settings**: ``tls_version`` (a protocol below TLS 1.2 is a failure) and the version;
5. optionally **TLS floor**: a handshake capped below the lowest protocol of ``tls_version``
   must be refused.

Why PyMySQL: pure Python (one small wheel, no C client library to find or build), it takes an
``ssl.SSLContext`` as it is, so verification is Python's own, and with a context it refuses a
server that offers no TLS before sending the user name. mysqlclient needs libmysqlclient and a
compiler; mysql-connector-python is far larger. It is imported only here, on first use.

Background: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/mysql-ssl-connections.html and
https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/mariadb-ssl-connections.html
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rds_force_ssl.cli import errors, mywire
from rds_force_ssl.cli.mywire import Greeting
from rds_force_ssl.cli.output import clip
from rds_force_ssl.cli.verify import (
    DEFAULT_TIMEOUT_S,
    LATE,
    TLS_FLOOR,
    UNVERIFIED,
    Conclusion,
    Finding,
    Job,
    Status,
    Target,
    certificate_check,
    chain_verified,
    classify_floor,
    load_bundle,
    probe_floor,
    server_verified,
    version_below,
)
from rds_force_ssl.cli.wire import Bounds
from rds_force_ssl.facts import engines as engine_table
from rds_force_ssl.facts.engines import TLS_PROTOCOLS

CONNECT_TIMEOUT_S = 10
# What the login's connection may receive in all: a greeting, an authentication exchange and
# two short result sets are a few KB. PyMySQL itself reads any length a packet header states,
# and follows 16 MB continuation packets without end.
MAX_SESSION_BYTES = 1 << 20
# The client's own error for a server without TLS (include/errmsg.h).
CR_SSL_CONNECTION_ERROR = 2026
# The server settings read, from the engine table's row for MySQL (MariaDB's and Aurora MySQL's
# name the same; a test keeps them equal): the SSL-only setting, and the list of TLS protocols.
_ROW = engine_table.MYSQL
assert _ROW.parameter
assert _ROW.tls_protocols_setting
SECURE_TRANSPORT = _ROW.parameter
TLS_SETTING = _ROW.tls_protocols_setting
CLIENT = "Python's ssl"
_VARIABLES = (SECURE_TRANSPORT, TLS_SETTING, "version", "version_comment")


@dataclass(frozen=True)
class MysqlView:
    """What the server says about our own verified session, and its global settings (absent
    when this server has no such variable)."""

    ssl_version: str | None
    cipher: str | None
    variables: Mapping[str, str] = field(default_factory=dict)


# ---- pure decisions ------------------------------------------------------------------------
def enforces(value: str) -> bool:
    return _ROW.enforces(value)


def plaintext_finding(
    hello: Greeting | Exception | None, view: MysqlView | None, *, verified: bool = True
) -> Finding:
    """Check 1, from the greeting (or why it could not be read) and the verified session.
    ``verified``: whether that session verified the server (sslmode=verify-full); if not, what
    the server says about itself is no proof, and the row is a WARN that says so."""
    check = "plaintext refused"
    how = (
        "it refuses every plaintext TCP client, once that client's password has been checked; "
        "this run sent no credential in plaintext"
    )
    if isinstance(hello, mywire.NoTls):
        return Finding(
            check,
            Status.FAIL,
            f"{hello}: every client of this server connects in plaintext",
            {"greeting_offers_tls": False},
            fails_as=Conclusion.NOT_ENFORCED,
        )
    if view is None:
        return Finding(
            check,
            Status.ERROR,
            f"not judged: MySQL and MariaDB refuse a plaintext client only after checking its "
            f"password, so only a logged-in session can read {SECURE_TRANSPORT}, and the verified "
            "session failed (see verified TLS)",
        )
    value = view.variables.get(SECURE_TRANSPORT)
    details: dict[str, Any] = {SECURE_TRANSPORT: value}
    shown = clip(value)
    if value is None:
        return Finding(
            check,
            Status.FAIL,
            f"this server has no {SECURE_TRANSPORT} (MySQL before 5.7, MariaDB before 10.5): "
            "nothing server-wide refuses a plaintext client",
            details,
            fails_as=Conclusion.NOT_ENFORCED,
        )
    if not enforces(value):
        return Finding(
            check,
            Status.FAIL,
            f"{SECURE_TRANSPORT}={shown} in the running server: a plaintext client with a valid "
            "password is let in",
            details,
            fails_as=Conclusion.NOT_ENFORCED,
        )
    if not verified:
        return Finding(
            check,
            Status.WARN,
            f"{SECURE_TRANSPORT}={shown}, as reported over a TLS session whose server was NOT "
            "verified: an impostor could report the same, so this proves nothing",
            {**details, UNVERIFIED: False},
        )
    return Finding(
        check,
        Status.PASS,
        f"{SECURE_TRANSPORT}={shown} in the running server (@@GLOBAL, read over the verified "
        f"session): {how}",
        details,
    )


def protection(target: Target) -> str:
    if target.sslmode == "verify-full":
        return "sslmode=verify-full: CA and host name verified before the password was sent"
    unchecked = "the host name" if target.sslmode == "verify-ca" else "the CA and the host name"
    return (
        f"WEAKER: sslmode={target.sslmode} does not check {unchecked}, and the password was sent "
        "without channel binding, which MySQL does not have (--allow-unverified-password)"
    )


def tls_finding(view: MysqlView, *, target: Target) -> Finding:
    check = "verified TLS"
    details: dict[str, Any] = {
        "sslmode": target.sslmode,
        "ssl": bool(view.ssl_version),
        "version": view.ssl_version,
        "cipher": view.cipher,
    }
    if not view.ssl_version:
        return Finding(
            check,
            Status.FAIL,
            "the server reports this session unencrypted (Ssl_version is empty): TLS ends "
            "before the database",
            details,
            fails_as=Conclusion.NOT_ENFORCED,
        )
    evidence = (
        f"{clip(view.ssl_version)} {clip(view.cipher)} (Ssl_version, Ssl_cipher); "
        f"{protection(target)}"
    )
    status = Status.PASS if target.sslmode == "verify-full" else Status.WARN
    if not server_verified(target):
        details[UNVERIFIED] = False
        evidence += (
            "; the server was NOT verified, so what it says about itself proves nothing: "
            "the run cannot conclude ENFORCED"
        )
    return Finding(check, status, evidence, details)


def classify_error(
    error: BaseException, *, target: Target, bounds: Bounds | None = None
) -> Finding:
    """Check 2 when the verified session could not be opened (a PyMySQL error). ``bounds``:
    the login connection's budget, which says whether TLS was established and whether a
    limit of its ended the login (without it, neither is assumed)."""
    check = "verified TLS"
    args: tuple[Any, ...] = getattr(error, "args", ())
    code = args[0] if args and isinstance(args[0], int) else None
    said = clip(args[1] if len(args) > 1 else error)
    cause = getattr(error, "original_exception", None)
    tls = bounds is not None and bounds.tls
    if bounds is not None and bounds.broken == "deadline":
        return Finding(check, Status.ERROR, f"the login: {LATE}", {"tls_established": tls})
    if bounds is not None and bounds.broken == "bytes":
        return Finding(
            check,
            Status.ERROR,
            f"the login: the server sent more than {bounds.max_bytes} bytes, far more than a "
            "login and two short answers take; the connection was closed",
            {"tls_established": tls},
        )
    if code == CR_SSL_CONNECTION_ERROR and "doesn't support" in said:
        return Finding(
            check,
            Status.FAIL,
            f"the server offers no TLS at all: {said}",
            fails_as=Conclusion.NOT_ENFORCED,
        )
    if isinstance(cause, ssl.SSLCertVerificationError):
        return Finding(
            check,
            Status.FAIL,
            "a client that verifies the server cannot connect "
            f"(sslmode={target.sslmode}): {getattr(cause, 'verify_message', None) or cause}",
            fails_as=Conclusion.NOT_VERIFIED,
        )
    if isinstance(cause, ssl.SSLError):
        return Finding(
            check,
            Status.ERROR,
            f"the TLS handshake failed (sslmode={target.sslmode}): {cause}",
        )
    if code is not None and code < 2000 and tls:
        # A server error over the TLS session (set up before the user name).
        return Finding(
            check,
            Status.ERROR,
            f"could not log in (sslmode={target.sslmode}): {said} (MySQL error {code})",
            {"tls_established": True},
        )
    if code is not None and code < 2000 and bounds is None:
        # Nothing says whether TLS was made: claim neither.
        return Finding(
            check,
            Status.ERROR,
            f"could not log in (sslmode={target.sslmode}): {said} (MySQL error {code})",
        )
    if code is not None and code < 2000:
        # Before TLS: an ERR packet in place of the greeting (1130 host not allowed, 1040 too
        # many connections), in plaintext, where anyone on the path could have written it.
        return Finding(
            check,
            Status.ERROR,
            f"could not log in: the server refused before any TLS (in plaintext, unverified): "
            f"{said} (MySQL error {code})",
            {"tls_established": False},
        )
    return Finding(check, Status.ERROR, f"could not connect (sslmode={target.sslmode}): {said}")


def lowest_protocol(tls_version: str | None) -> str | None:
    """The lowest protocol a ``tls_version`` list allows ("TLSv1.2,TLSv1.3" -> "TLSv1.2")."""
    if not tls_version:
        return None
    allowed = [v.strip() for v in tls_version.split(",") if v.strip() in TLS_PROTOCOLS]
    return min(allowed, key=TLS_PROTOCOLS.index) if allowed else None


def settings_finding(view: MysqlView) -> Finding:
    """Check 4: the protocols the server allows, and which server it is."""
    check = "settings"
    allowed = view.variables.get(TLS_SETTING)
    version = " ".join(
        v for v in (view.variables.get("version"), view.variables.get("version_comment")) if v
    )
    details = {TLS_SETTING: allowed, "version": version or None}
    shown = f"{TLS_SETTING}={clip(allowed)}" if allowed is not None else f"{TLS_SETTING} not shown"
    if version:
        shown += f"; version {clip(version)}"
    lowest = lowest_protocol(allowed)
    if lowest is not None and TLS_PROTOCOLS.index(lowest) < TLS_PROTOCOLS.index(TLS_FLOOR):
        return Finding(
            check,
            Status.FAIL,
            f"{TLS_SETTING} admits {lowest}, deprecated by RFC 8996; allow {TLS_FLOOR} and "
            f"higher only ({shown})",
            details,
            fails_as=Conclusion.NOT_ENFORCED,
        )
    return Finding(check, Status.PASS if allowed else Status.SKIP, shown, details)


# ---- input checks and evidence collection (I/O) --------------------------------------------
def require_drivers(command: str = "verify --engine mysql") -> None:
    """A usage error, before any prompt or connection, if PyMySQL or cryptography is missing;
    ``command`` is the one that needs them, as the message names it."""
    errors.require("pymysql", "cryptography", command=command)


def context(target: Target) -> ssl.SSLContext:
    """The TLS context of the login: sslmode as the mysql client's --ssl-mode means it
    (verify-full = VERIFY_IDENTITY, verify-ca = VERIFY_CA, require = REQUIRED)."""
    made = ssl.create_default_context(cafile=target.sslrootcert)
    made.minimum_version = ssl.TLSVersion.TLSv1_2
    if target.sslmode != "verify-full":
        made.check_hostname = False
    if target.sslmode == "require":
        made.verify_mode = ssl.CERT_NONE
    return made


def login(
    target: Target, *, password: str, bounds: Bounds, program_name: str = "rds-force-ssl verify"
) -> Any:
    """A PyMySQL connection logged in to ``target`` over TLS (``context``: with a context, TLS
    is required before the user name), on a socket that keeps ``bounds``: every wait ends by
    its deadline, and it receives no more than its byte cap, whatever the server's packet
    headers say. ``program_name``: the connection attribute the server shows for it
    (performance_schema.session_connect_attrs). PyMySQL's errors as they are (OSError before
    the TCP connection is made)."""
    import pymysql

    conn = pymysql.connect(
        host=target.host,
        port=target.port,
        user=target.user,
        password=password,
        database=target.dbname or None,
        ssl=bounds.tls_context(context(target)),
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=CONNECT_TIMEOUT_S,
        write_timeout=CONNECT_TIMEOUT_S,
        charset="utf8mb4",
        program_name=program_name,
        defer_connect=True,
    )
    sock = mywire.connect(target.host, target.port, bounds=bounds)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.connect(sock)
    return conn


def read_view(conn: Any) -> MysqlView:
    with conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')")
        status = {str(k): str(v) for k, v in cur.fetchall()}
        names = ", ".join(f"'{n}'" for n in _VARIABLES)
        # SHOW leaves out a variable this server does not have, where SELECT @@x would fail.
        cur.execute(f"SHOW GLOBAL VARIABLES WHERE Variable_name IN ({names})")
        variables = {str(k): str(v) for k, v in cur.fetchall()}
    return MysqlView(status.get("Ssl_version") or None, status.get("Ssl_cipher") or None, variables)


def check_tls(
    target: Target, *, password: str, deadline: float | None = None
) -> tuple[Finding, MysqlView | None]:
    import pymysql

    end = time.monotonic() + DEFAULT_TIMEOUT_S if deadline is None else deadline
    bounds = Bounds(deadline=end, max_bytes=MAX_SESSION_BYTES)
    try:
        conn = login(target, password=password, bounds=bounds)
    except pymysql.MySQLError as err:
        return classify_error(err, target=target, bounds=bounds), None
    except TimeoutError:
        return Finding("verified TLS", Status.ERROR, f"the login: {LATE}"), None
    except OSError as err:
        said = clip(err.strerror or err)
        return Finding("verified TLS", Status.ERROR, f"could not connect: {said}"), None
    except (ValueError, IndexError, KeyError, struct.error) as err:
        # PyMySQL reads the greeting's fields as it finds them: a version that is not a
        # number, a truncated packet. The greeting comes before TLS, unverified.
        return (
            Finding(
                "verified TLS",
                Status.ERROR,
                "could not log in: the server's greeting is not one a MySQL client can read "
                f"({type(err).__name__}: {clip(err)})",
                {"tls_established": bounds.tls},
            ),
            None,
        )
    try:
        view = read_view(conn)
    except pymysql.MySQLError as err:
        return classify_error(err, target=target, bounds=bounds), None
    finally:
        conn.close()
    return tls_finding(view, target=target), view


def fetch_certificate(
    host: str, port: int, *, deadline: float | None = None
) -> tuple[Greeting, bytes]:
    """The certificate the server presents, without verifying it (the point is to show what is
    presented even when verification fails), and its greeting. No user name is sent."""
    from rds_force_ssl.cli.verify import unverified_context

    hello, der = mywire.tls_handshake(
        host, port, unverified_context(), greeting_wait=mywire.GREETING_WAIT_S, deadline=deadline
    )
    if not der:
        raise ConnectionError("the server presented no certificate")
    return hello, der


def not_mysql(err: mywire.NoGreeting, target: Target) -> errors.CliError:
    return errors.CliError(
        "not-mysql",
        "no MySQL greeting: this port does not look like MySQL/MariaDB; is it PostgreSQL? use "
        f"--engine postgresql ({target.host}:{target.port}: {err.how})",
        fix="for a PostgreSQL endpoint, run verify with --engine postgresql (the default) and "
        "its port; for MySQL or MariaDB, check --host and --port",
    )


def _floor_handshake(
    host: str, port: int, context: ssl.SSLContext, deadline: float | None
) -> bytes | None:
    return mywire.tls_handshake(host, port, context, deadline=deadline)[1]


def run_verify(
    target: Target,
    *,
    password: str,
    check_floor: bool,
    now: datetime,
    deadline: float | None = None,
) -> list[Finding]:
    """Every check, concurrently: the login and the certificate's handshake start at once. All
    of it ends by ``deadline`` (time.monotonic(); default ``DEFAULT_TIMEOUT_S`` from now)."""
    end = time.monotonic() + DEFAULT_TIMEOUT_S if deadline is None else deadline
    tls_job = Job(lambda: check_tls(target, password=password, deadline=end))
    cert_job = Job(lambda: fetch_certificate(target.host, target.port, deadline=end))
    try:
        bundle = load_bundle(target.sslrootcert)
    except ImportError as err:
        raise errors.missing("cryptography", command="verify") from err
    hello: Greeting | Exception | None
    try:
        # First: its connection finds out within seconds whether this is MySQL at all.
        hello = cert_job.result(end)[0]
    except mywire.NoGreeting as err:
        # Not MySQL: the login (which waits for a greeting that never comes, and so sends
        # nothing) is left to its daemon thread rather than waited for until its timeout.
        raise not_mysql(err, target) from err
    except (OSError, mywire.MysqlError, mywire.NotMysql) as err:
        hello = err
    try:
        tls, view = tls_job.result(end)
    except TimeoutError:
        tls, view = Finding("verified TLS", Status.ERROR, f"the login: {LATE}"), None
    findings = [plaintext_finding(hello, view, verified=server_verified(target)), tls]
    findings += [
        certificate_check(
            Job(lambda: cert_job.result(end)[1]),
            bundle=bundle,
            verified=chain_verified(tls, sslmode=target.sslmode),
            sslmode=target.sslmode,
            now=now,
            client=CLIENT,
            deadline=end,
        ),
        settings_finding(view)
        if view
        else Finding("settings", Status.SKIP, "not read: the verified session failed"),
    ]
    if check_floor:
        floor = lowest_protocol(view.variables.get(TLS_SETTING)) if view else None
        below = version_below(floor)
        error = (
            probe_floor(
                target.host, target.port, below=below, handshake=_floor_handshake, deadline=end
            )
            if below
            else None
        )
        findings.append(classify_floor(error, floor=floor, below=below, setting=TLS_SETTING))
    return findings
