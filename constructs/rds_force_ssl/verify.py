"""``rds-force-ssl verify``: prove that one PostgreSQL endpoint refuses plaintext and serves TLS.

The deciding logic is in pure functions over what the server said (error texts, query rows,
certificates); the functions that talk to the server only collect that evidence. psycopg runs on
libpq, so ``sslmode`` here means exactly what it means to psql.

Background: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/PostgreSQL.Concepts.General.SSL.html
"""

from __future__ import annotations

import re
import secrets
import socket
import ssl
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import psycopg
from cryptography import x509

CONNECT_TIMEOUT_S = 10
CERT_WARN_DAYS = 30
SSLMODES = ("verify-full", "verify-ca", "require")
TLS_VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
APPLICATION_NAME = "rds-force-ssl verify"
# https://www.postgresql.org/docs/current/protocol-message-formats.html (SSLRequest)
SSL_REQUEST = struct.pack("!ii", 8, 80877103)

# The server's SSL rule refusing a plaintext client, with or without an explicit reject line;
# "no encryption" from PostgreSQL 12 on, "SSL off" before (the wording in the RDS docs).
_REFUSED = re.compile(
    r"(no pg_hba\.conf entry|pg_hba\.conf rejects connection) for host .*(no encryption|SSL off)"
)
# Any of these from the server on the plaintext probe means it reached authentication or further.
_REACHED_AUTH = re.compile(
    r"authentication failed|password|does not exist|too many connections for role|"
    r"not permitted to log in",
    re.IGNORECASE,
)
# libpq's own words when the server asked the plaintext client for a password.
_PASSWORD_REQUEST = re.compile(
    r"fe_sendauth: no password supplied|server requested .*password|"
    r"authentication method requirement"
)
# libpq's own wording when the TLS handshake or the certificate check fails.
_TLS_FAILURE = re.compile(
    r"SSL error|certificate|does not match host name|server does not support SSL|"
    r"SSL SYSCALL error",
)


class Status(StrEnum):
    PASS = "PASS"  # noqa: S105 (a check status, not a password)
    WARN = "WARN"
    FAIL = "FAIL"
    ERROR = "ERROR"
    SKIP = "SKIP"


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    evidence: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    dbname: str
    user: str
    sslmode: str
    sslrootcert: str | None

    def params(self, **extra: Any) -> dict[str, Any]:
        """libpq parameters for this target; never reads PG* defaults for what matters here."""
        params: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "dbname": self.dbname,
            "user": self.user,
            "connect_timeout": CONNECT_TIMEOUT_S,
            "application_name": APPLICATION_NAME,
            # A GSSAPI-encrypted session would satisfy libpq but tell nothing about TLS.
            "gssencmode": "disable",
        }
        params.update(extra)
        return params


@dataclass(frozen=True)
class ServerView:
    """What the server says about our own verified session."""

    ssl: bool
    version: str | None
    cipher: str | None
    bits: int | None
    sslinfo_ssl_is_used: bool | None  # None when the sslinfo extension is not installed
    settings: Mapping[str, str | None]


# ---- pure decisions ------------------------------------------------------------------------
def server_error(message: str) -> str:
    """The server's or libpq's own words, without psycopg's "connection failed: ..." preamble."""
    text = re.sub(r"^.*?port \d+ failed: ", "", message, count=1, flags=re.DOTALL)
    text = text.removeprefix("connection failed: ")
    return " ".join(text.replace("FATAL:", "").split())


def classify_plaintext(error: str | None) -> Finding:
    """Decide check 1 from the outcome of an ``sslmode=disable`` attempt (None: it connected)."""
    check = "plaintext refused"
    if error is None:
        return Finding(check, Status.FAIL, "a plaintext session was opened (sslmode=disable)")
    said = server_error(error)
    if _REFUSED.search(said):
        return Finding(check, Status.PASS, f"server refused sslmode=disable: {said}")
    if ("FATAL" in error and _REACHED_AUTH.search(said)) or _PASSWORD_REQUEST.search(said):
        return Finding(
            check,
            Status.FAIL,
            f"plaintext reached authentication (only a dummy password was sent): {said}",
        )
    return Finding(check, Status.ERROR, f"no answer from the server's SSL rule: {said}")


def classify_tls_error(error: str, *, sslmode: str) -> Finding:
    """Check 2 when the verified connection could not be opened."""
    said = server_error(error)
    if "FATAL" not in error and _TLS_FAILURE.search(said):
        return Finding("verified TLS", Status.FAIL, f"sslmode={sslmode} failed: {said}")
    return Finding("verified TLS", Status.ERROR, f"could not connect (sslmode={sslmode}): {said}")


def tls_finding(view: ServerView, *, sslmode: str) -> Finding:
    details: dict[str, Any] = {
        "sslmode": sslmode,
        "ssl": view.ssl,
        "version": view.version,
        "cipher": view.cipher,
        "bits": view.bits,
    }
    source = "pg_stat_ssl"
    if view.sslinfo_ssl_is_used is not None:
        details["sslinfo_ssl_is_used"] = view.sslinfo_ssl_is_used
        source += f", sslinfo ssl_is_used()={'t' if view.sslinfo_ssl_is_used else 'f'}"
    if not view.ssl:
        return Finding("verified TLS", Status.FAIL, f"server reports no SSL ({source})", details)
    evidence = f"{view.version} {view.cipher} {view.bits} bits ({source})"
    if sslmode != "verify-full":
        # Weaker modes are allowed only on request, and never reported as a plain pass.
        verified = "the CA but not the host name" if sslmode == "verify-ca" else "nothing"
        return Finding(
            "verified TLS",
            Status.WARN,
            f"{evidence}; WEAKER: sslmode={sslmode} verifies {verified}",
            details,
        )
    return Finding("verified TLS", Status.PASS, f"{evidence}; sslmode=verify-full", details)


def days_left(not_after: datetime, now: datetime) -> int:
    return (not_after - now).days


def certificate_finding(
    leaf: x509.Certificate, *, bundle: Iterable[x509.Certificate], now: datetime
) -> Finding:
    """Check 3: subject, issuer and time left, for the server certificate and its issuer."""
    leaf_days = days_left(leaf.not_valid_after_utc, now)
    details: dict[str, Any] = {
        "subject": leaf.subject.rfc4514_string(),
        "issuer": leaf.issuer.rfc4514_string(),
        "not_after": leaf.not_valid_after_utc.isoformat(),
        "days_left": leaf_days,
    }
    evidence = (
        f"subject {details['subject']}; issuer {details['issuer']}; "
        f"expires {leaf.not_valid_after_utc:%Y-%m-%d} ({leaf_days} days)"
    )
    issuer = next((c for c in bundle if c.subject == leaf.issuer), None)
    lowest = leaf_days
    if issuer is None:
        evidence += "; issuer not in --sslrootcert"
    else:
        # CA rotations are what bite: an expiring CA breaks every verify-full client at once.
        ca_days = days_left(issuer.not_valid_after_utc, now)
        details["issuer_not_after"] = issuer.not_valid_after_utc.isoformat()
        details["issuer_days_left"] = ca_days
        evidence += f"; CA expires {issuer.not_valid_after_utc:%Y-%m-%d} ({ca_days} days)"
        lowest = min(lowest, ca_days)
    if lowest < 0:
        return Finding("certificate", Status.FAIL, f"EXPIRED: {evidence}", details)
    if lowest < CERT_WARN_DAYS:
        return Finding(
            "certificate",
            Status.WARN,
            f"fewer than {CERT_WARN_DAYS} days left: {evidence}",
            details,
        )
    return Finding("certificate", Status.PASS, evidence, details)


def settings_finding(settings: Mapping[str, str | None]) -> Finding:
    """Check 4: the server's own settings, where it has them (rds.force_ssl is RDS-only)."""
    force_ssl = settings.get("rds.force_ssl")
    floor = settings.get("ssl_min_protocol_version")
    shown = "; ".join(f"{k}={'(not shown)' if v is None else v}" for k, v in settings.items())
    if force_ssl is not None and force_ssl not in ("1", "on"):
        return Finding("settings", Status.FAIL, shown, dict(settings))
    if force_ssl is None and floor is None:
        return Finding("settings", Status.SKIP, shown, dict(settings))
    return Finding("settings", Status.PASS, shown, dict(settings))


def version_below(floor: str | None) -> str | None:
    """The TLS version just under the server's floor, or None if there is nothing below it."""
    if floor not in TLS_VERSIONS or floor == TLS_VERSIONS[0]:
        return None
    return TLS_VERSIONS[TLS_VERSIONS.index(floor) - 1]


def classify_floor(error: str | None, *, floor: str | None) -> Finding:
    """Optional check: a client capped just under ``ssl_min_protocol_version`` is refused."""
    check = "TLS floor"
    below = version_below(floor)
    if below is None:
        return Finding(
            check, Status.SKIP, f"nothing to try below ssl_min_protocol_version={floor or '?'}"
        )
    said = server_error(error) if error is not None else ""
    if error is not None and "no protocols available" in said:
        # The client's own TLS library refused to offer the old version: the server was never
        # asked, so this proves nothing either way.
        return Finding(
            check, Status.SKIP, f"this client's TLS library will not offer {below} at all"
        )
    if error is not None and "FATAL" not in error and _TLS_FAILURE.search(said):
        return Finding(check, Status.PASS, f"a client capped at {below} was refused: {said}")
    if error is None or "FATAL" in error:
        return Finding(
            check,
            Status.FAIL,
            f"a {below} handshake completed although the floor is {floor}: {said or 'connected'}",
        )
    return Finding(check, Status.ERROR, f"could not probe the floor: {said}")


def exit_code(findings: Iterable[Finding]) -> int:
    """1 if any check failed (proof of a problem beats a missing answer), 2 on errors, else 0."""
    statuses = {f.status for f in findings}
    if Status.FAIL in statuses:
        return 1
    if Status.ERROR in statuses:
        return 2
    return 0


# ---- evidence collection (I/O) -------------------------------------------------------------
def dummy_password() -> str:
    return "rds-force-ssl-probe-" + secrets.token_hex(8)


def attempt(params: Mapping[str, Any]) -> str | None:
    """Open and close a session; the error text, or None if it connected."""
    try:
        with psycopg.connect(**params):
            return None
    except psycopg.Error as err:
        return str(err)


def probe_plaintext(target: Target) -> str | None:
    # Never the real password: this session is not encrypted, and a server that lets it reach
    # authentication would receive the password in the clear under `password` auth.
    return attempt(target.params(sslmode="disable", password=dummy_password()))


def probe_floor(target: Target, *, below: str) -> str | None:
    # Only the handshake matters, so identity checks are not needed and a dummy password is sent.
    return attempt(
        target.params(
            sslmode="require",
            password=dummy_password(),
            ssl_min_protocol_version=TLS_VERSIONS[0],
            ssl_max_protocol_version=below,
        )
    )


_SSL_SQL = """
SELECT s.ssl, s.version, s.cipher, s.bits,
       EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'sslinfo')
FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()
"""
# ssl_min_protocol_version through pg_settings, which hides what the role may not read instead
# of raising (PostgreSQL 15 restricts it to pg_read_all_settings); rds.force_ssl through
# current_setting(.., true), which also sees a custom setting and gives NULL where there is none.
_SETTINGS_SQL = """
SELECT current_setting('rds.force_ssl', true),
       (SELECT setting FROM pg_settings WHERE name = 'ssl_min_protocol_version')
"""
SETTINGS = ("rds.force_ssl", "ssl_min_protocol_version")


def read_server_view(conn: psycopg.Connection[Any]) -> ServerView:
    row = conn.execute(_SSL_SQL).fetchone()
    if row is None:
        raise psycopg.DataError("pg_stat_ssl has no row for this session")
    ssl_on, version, cipher, bits, has_sslinfo = row
    used = None
    if has_sslinfo:
        used_row = conn.execute("SELECT ssl_is_used()").fetchone()
        used = bool(used_row[0]) if used_row else None
    values = conn.execute(_SETTINGS_SQL).fetchone() or (None,) * len(SETTINGS)
    return ServerView(
        ssl=bool(ssl_on),
        version=version,
        cipher=cipher,
        bits=bits,
        sslinfo_ssl_is_used=used,
        settings={name: value or None for name, value in zip(SETTINGS, values, strict=True)},
    )


def check_tls(target: Target, *, password: str) -> tuple[Finding, ServerView | None]:
    params = target.params(sslmode=target.sslmode, password=password)
    if target.sslmode != "require":
        params["sslrootcert"] = target.sslrootcert
    try:
        with psycopg.connect(**params) as conn:
            view = read_server_view(conn)
    except psycopg.Error as err:
        return classify_tls_error(str(err), sslmode=target.sslmode), None
    return tls_finding(view, sslmode=target.sslmode), view


def fetch_certificate(host: str, port: int) -> x509.Certificate:
    """The server certificate, by the PostgreSQL SSLRequest handshake, without verifying it: the
    point is to show what is presented even when verification fails."""
    with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S) as sock:
        sock.sendall(SSL_REQUEST)
        answer = sock.recv(1)
        if answer != b"S":
            raise ConnectionError(f"server declined TLS (answered {answer!r} to SSLRequest)")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with context.wrap_socket(sock, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    if der is None:
        raise ConnectionError("server presented no certificate")
    return x509.load_der_x509_certificate(der)


def check_certificate(target: Target, *, now: datetime) -> Finding:
    try:
        leaf = fetch_certificate(target.host, target.port)
    except (OSError, ValueError) as err:
        return Finding("certificate", Status.ERROR, f"could not read the certificate: {err}")
    bundle: list[x509.Certificate] = []
    if target.sslrootcert:
        try:
            bundle = x509.load_pem_x509_certificates(Path(target.sslrootcert).read_bytes())
        except (OSError, ValueError):
            bundle = []
    return certificate_finding(leaf, bundle=bundle, now=now)


def run_verify(target: Target, *, password: str, check_floor: bool, now: datetime) -> list[Finding]:
    findings = [classify_plaintext(probe_plaintext(target))]
    tls, view = check_tls(target, password=password)
    findings += [tls, check_certificate(target, now=now)]
    if view is None:
        findings.append(Finding("settings", Status.SKIP, "needs the TLS session, which failed"))
    else:
        findings.append(settings_finding(view.settings))
    if check_floor:
        floor = view.settings.get("ssl_min_protocol_version") if view else None
        below = version_below(floor)
        error = probe_floor(target, below=below) if below else None
        findings.append(classify_floor(error, floor=floor))
    return findings
