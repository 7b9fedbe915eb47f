"""``rds-force-ssl verify``: prove that one PostgreSQL endpoint refuses plaintext and serves
verified TLS, and say plainly what was and was not checked.

The checks, run concurrently (wall time is about the slowest one, not their sum):

1. **plaintext refused**: the credential-free probe of ``probe`` (no password of any kind);
2. **verified TLS**: a libpq session (``libpq.py``) with the user's password and ``sslmode``,
   which reads ``pg_stat_ssl`` and the settings in one query; ``sslmode`` means what it means to
   psql;
3. **certificate**: the certificate the server presents, and the CAs of ``--sslrootcert`` that
   issued it, with their expiry dates;
4. **settings**: ``rds.force_ssl`` and ``ssl_min_protocol_version``;
5. optionally **TLS floor**: a handshake capped below the server's floor must be refused.

The deciding logic is in pure functions over what the server said; the others only collect it.
libpq and cryptography are loaded only here, on first use; cryptography while libpq waits on the
network.

Background: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/PostgreSQL.Concepts.General.SSL.html
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import struct
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from rds_force_ssl.cli import errors, libpq
from rds_force_ssl.cli.engines import DEFAULT_ENGINE
from rds_force_ssl.cli.output import clip
from rds_force_ssl.cli.wire import (
    Endpoint,
    Identity,
    Outcome,
    Verdict,
    probe_endpoint,
    tls_error_text,
)
from rds_force_ssl.facts import engines as engine_table
from rds_force_ssl.facts.engines import TLS12, TLS_PROTOCOLS

if TYPE_CHECKING:
    from cryptography import x509

CONNECT_TIMEOUT_S = 10
# The whole run's deadline by default (--timeout): every connection, answer and handshake of
# every check, the name's resolution included, ends by it.
DEFAULT_TIMEOUT_S = 15.0
LATE = "no answer by the run's deadline (--timeout)"
# Past the deadline, a check's thread gets this long to report its own error before the run
# stops waiting for it (each connection keeps the deadline itself; this is the backstop).
GRACE_S = 0.5
# The verified session's query, cancelled by the server past this (a catalog lock held by
# someone else must not hang the run); libpq gives up on unacknowledged data past the same.
# Both only help against an honest server: the run's deadline holds against any.
QUERY_TIMEOUT_MS = CONNECT_TIMEOUT_S * 1000
CERT_WARN_DAYS = 30
# TLS 1.0 and 1.1 are deprecated (RFC 8996); RDS for PostgreSQL supports 1.2 and 1.3.
TLS_FLOOR = TLS12
# The server settings read, from the engine table's row (Aurora PostgreSQL's names the same; a
# test keeps them equal): the SSL-only setting, the values a running server shows for it when
# it enforces (RDS's boolean shows "on", a postgresql.conf placeholder "1": the table's
# server_enforcing column says why), and the TLS floor.
_ROW = engine_table.POSTGRES
assert _ROW.parameter
assert _ROW.tls_floor
assert _ROW.tls_floor.parameter
FORCE_SSL = _ROW.parameter
FORCE_SSL_ON = _ROW.server_enforcing
FLOOR_SETTING = _ROW.tls_floor.parameter
APPLICATION_NAME = "rds-force-ssl verify"
MAX_CHAIN = 5
# https://www.postgresql.org/docs/current/protocol-message-formats.html (SSLRequest)
SSL_REQUEST = struct.pack("!ii", 8, 80877103)
SSL_ACCEPTED = ord("S")
NETWORK = "network: "
PLAINTEXT_CHECK = "plaintext refused"


class Status(StrEnum):
    PASS = "PASS"  # noqa: S105 (a check status, not a password)
    WARN = "WARN"
    FAIL = "FAIL"
    ERROR = "ERROR"
    SKIP = "SKIP"


class Conclusion(StrEnum):
    """The verdict of a run, worst first; each has its own exit code."""

    NOT_ENFORCED = "NOT ENFORCED"  # the server accepts plaintext, or is set up to
    NOT_VERIFIED = "NOT VERIFIED"  # plaintext is refused, but a verifying client cannot connect
    INCONCLUSIVE = "INCONCLUSIVE"  # a check could not be made (network, login, usage)
    ENFORCED = "ENFORCED"


EXIT_CODES = {
    Conclusion.ENFORCED: 0,
    Conclusion.NOT_ENFORCED: 1,
    Conclusion.INCONCLUSIVE: 2,
    Conclusion.NOT_VERIFIED: 3,
}


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    evidence: str
    details: Mapping[str, Any] = field(default_factory=dict)
    fails_as: Conclusion | None = None  # what a FAIL proves


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    dbname: str
    user: str
    sslmode: str
    sslrootcert: str | None
    # Only with sslmode verify-ca/require: send the password without SCRAM channel binding.
    allow_unverified_password: bool = False
    engine: str = DEFAULT_ENGINE  # a row of cli/engines.py (mysql: MySQL, MariaDB, Aurora MySQL)
    # The address ``host`` resolved to (``resolve``): every connection dials it, none looks the
    # name up again. None where the name itself is dialled (MySQL, and tests).
    address: str | None = None

    @property
    def dial(self) -> str:
        return self.address or self.host

    def params(self, **extra: Any) -> dict[str, Any]:
        """libpq parameters for this target; never reads PG* defaults for what matters here."""
        params: dict[str, Any] = {
            # host is what the certificate must name; hostaddr is where libpq connects, so
            # that PGHOSTADDR, a service file or a second DNS answer cannot send it elsewhere.
            "host": self.host,
            **({"hostaddr": self.address} if self.address else {}),
            "port": self.port,
            "dbname": self.dbname,
            "user": self.user,
            "connect_timeout": CONNECT_TIMEOUT_S,
            "tcp_user_timeout": QUERY_TIMEOUT_MS,
            "application_name": APPLICATION_NAME,
            # A GSSAPI-encrypted session would satisfy libpq but tell nothing about TLS.
            "gssencmode": "disable",
        }
        params.update(extra)
        return params


@dataclass(frozen=True)
class ServerView:
    """What the server says about our own verified session, from one query."""

    ssl: bool
    version: str | None
    cipher: str | None
    bits: int | None
    sslinfo_ssl_is_used: bool | None  # None when the sslinfo extension is not installed
    force_ssl: str | None  # None: no such setting (not RDS)
    floor: str | None  # None: hidden from this role, see floor_readable
    floor_readable: bool = True


# ---- pure decisions ------------------------------------------------------------------------
def server_error(message: str) -> str:
    """The server's or libpq's own words, without libpq's 'connection to server at "h", port N
    failed:' preamble, cut to ``MAX_SERVER_TEXT`` (the table escapes what remains)."""
    text = re.sub(r"^.*?port \d+ failed: ", "", message, count=1, flags=re.DOTALL)
    return clip(" ".join(text.replace("FATAL:", "").split()))


def server_verified(target: Target) -> bool:
    """Is the server's identity proven before its answers are believed? verify-full checks the
    CA and the host name; otherwise, for PostgreSQL, SCRAM with channel binding proves that the
    server holds the role's verifier. A weaker mode with --allow-unverified-password proves
    nothing: an impostor can take the password and report whatever it likes."""
    from rds_force_ssl.cli.engines import ENGINES

    if target.sslmode == "verify-full":
        return True
    return ENGINES[target.engine].channel_binding and not target.allow_unverified_password


UNVERIFIED = "server_verified"  # details key: False on the rows an unverified server told


def plaintext_finding(outcome: Outcome) -> Finding:
    """Check 1 from the credential-free probe's outcome."""
    check = PLAINTEXT_CHECK
    details = {"verdict": str(outcome.verdict), **outcome.evidence}
    if outcome.verdict == Verdict.ENFORCED:
        return Finding(check, Status.PASS, outcome.detail, details)
    if outcome.verdict == Verdict.NOT_ENFORCED:
        return Finding(
            check,
            Status.FAIL,
            f"{outcome.detail} (no password of any kind was sent)",
            details,
            fails_as=Conclusion.NOT_ENFORCED,
        )
    return Finding(
        check, Status.ERROR, f"no answer from the server's SSL rule: {outcome.detail}", details
    )


# libpq refusing the server's certificate: OpenSSL's verification (unknown CA, expired, not yet
# valid) or libpq's own host-name check. Any other TLS failure (an EOF, a reset, a protocol
# alert, a request for a client certificate) says nothing about the server's certificate.
_CERT_FAILURE = re.compile(
    r"certificate verify failed|does not match host name|certificate has expired|"
    r"certificate is not yet valid|could not get server's host name from server certificate"
)
_NO_SSL = "server does not support SSL"
_CHANNEL_BINDING = re.compile(r"channel binding|channel_binding")


def classify_tls_error(error: str, *, target: Target) -> Finding:
    """Check 2 when the verified session could not be opened."""
    check = "verified TLS"
    said = server_error(error)
    if _NO_SSL in said:
        return Finding(
            check,
            Status.FAIL,
            f"the server offers no TLS at all: {said}",
            fails_as=Conclusion.NOT_ENFORCED,
        )
    if "FATAL" not in error and _CHANNEL_BINDING.search(said):
        # libpq refused the server's authentication request, which came over the TLS session.
        return Finding(
            check,
            Status.ERROR,
            f"sslmode={target.sslmode} with channel_binding=require failed: {said}. The server "
            "did not offer this role SCRAM with channel binding (its method is md5 or `password`, "
            "or `trust`, which asks for nothing), so libpq stopped and the password was not "
            "sent. Use --sslmode verify-full with the CA bundle, or pass "
            "--allow-unverified-password to go on without channel binding",
            # The server's authentication request came: the session was past pg_hba.conf.
            {"tls_established": True, "past_pg_hba": True},
        )
    if "FATAL" not in error and _CERT_FAILURE.search(said):
        return Finding(
            check,
            Status.FAIL,
            f"a client that verifies the server cannot connect (sslmode={target.sslmode}): {said}",
            fails_as=Conclusion.NOT_VERIFIED,
        )
    # A FATAL comes from the server, so the TLS handshake (and libpq's checks) came first.
    from rds_force_ssl.cli.pgwire import PAST_HBA

    fatal = "FATAL" in error
    return Finding(
        check,
        Status.ERROR,
        f"could not log in (sslmode={target.sslmode}): {said}",
        {"tls_established": fatal, "past_pg_hba": fatal and bool(PAST_HBA.search(said))},
    )


def protection(target: Target) -> str:
    """What stood between the password and an unverified server, in words."""
    if target.sslmode == "verify-full":
        return "sslmode=verify-full: CA and host name verified before the password was sent"
    unchecked = "the host name" if target.sslmode == "verify-ca" else "the CA and the host name"
    if target.allow_unverified_password:
        return (
            f"WEAKER: sslmode={target.sslmode} does not check {unchecked}, and the password was "
            "sent without channel binding (--allow-unverified-password)"
        )
    return (
        f"WEAKER: sslmode={target.sslmode} does not check {unchecked}; SCRAM with channel "
        "binding (channel_binding=require) kept the password off the wire and would fail a "
        "relayed session, but an impostor in the server's place still gets a SCRAM proof it "
        "can attack offline: only verify-full rules that out"
    )


def tls_finding(view: ServerView, *, target: Target) -> Finding:
    check = "verified TLS"
    details: dict[str, Any] = {
        "sslmode": target.sslmode,
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
        # libpq itself required TLS, so something between client and server ends it.
        return Finding(
            check,
            Status.FAIL,
            f"the server reports this session unencrypted ({source}): TLS ends before the database",
            details,
            fails_as=Conclusion.NOT_ENFORCED,
        )
    evidence = (
        f"{clip(view.version)} {clip(view.cipher)} {view.bits} bits ({source}); "
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


def days_left(not_after: datetime, now: datetime) -> int:
    return (not_after - now).days


def days(count: int) -> str:
    """``1 day``, ``5 days``."""
    return f"{count} day" if abs(count) == 1 else f"{count} days"


def chain_in(leaf: x509.Certificate, bundle: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """The issuers of ``leaf`` found in ``bundle``, by name, up to a self-signed root."""
    chain: list[x509.Certificate] = []
    current = leaf
    for _ in range(MAX_CHAIN):
        issuer = next((c for c in bundle if c.subject == current.issuer), None)
        if issuer is None or issuer in chain:
            break
        chain.append(issuer)
        if issuer.subject == issuer.issuer:
            break
        current = issuer
    return chain


def certificate_finding(
    leaf: x509.Certificate,
    *,
    bundle: Sequence[x509.Certificate] | None,
    verified: bool | None,
    sslmode: str,
    now: datetime,
    client: str = "libpq",
) -> Finding:
    """Check 3. ``bundle`` is --sslrootcert (None without one); ``verified`` is whether the
    ``client`` of the login accepted the chain (None when it did not look: sslmode=require, or
    no TLS session)."""
    check = "certificate"
    certs = [("server certificate", leaf)]
    chain = chain_in(leaf, bundle or [])
    certs += [(f"CA {clip(c.subject.rfc4514_string())}", c) for c in chain]
    dates = [
        f"{label} expires {c.not_valid_after_utc:%Y-%m-%d} "
        f"({days(days_left(c.not_valid_after_utc, now))})"
        for label, c in certs
    ]
    checked: list[str] = []
    unchecked: list[str] = []
    if bundle is None:
        unchecked.append("the issuer and its expiry (no --sslrootcert)")
    elif not chain:
        unchecked.append(
            f"the expiry of the issuer {clip(leaf.issuer.rfc4514_string())}, which is not in "
            "--sslrootcert"
        )
    elif chain[-1].subject != chain[-1].issuer:
        unchecked.append(
            f"the expiry of {clip(chain[-1].issuer.rfc4514_string())}, which is not in "
            "--sslrootcert"
        )
    if verified is None:
        why = "sslmode=require" if sslmode == "require" else "no TLS session was made"
        unchecked.append(f"the chain and the host name ({why})")
    elif not verified:
        checked.append(f"by {client}, which REFUSED it (see verified TLS)")
    else:
        checked.append(
            f"chain and host name by {client}"
            if sslmode == "verify-full"
            else f"chain by {client}, but not the host name (sslmode=verify-ca)"
        )
        if sslmode == "verify-ca":
            unchecked.append("the host name (sslmode=verify-ca)")
    details: dict[str, Any] = {
        "subject": leaf.subject.rfc4514_string(),
        "issuer": leaf.issuer.rfc4514_string(),
        "not_after": leaf.not_valid_after_utc.isoformat(),
        "days_left": days_left(leaf.not_valid_after_utc, now),
        "ca_chain": [
            {
                "subject": c.subject.rfc4514_string(),
                "not_after": c.not_valid_after_utc.isoformat(),
                "days_left": days_left(c.not_valid_after_utc, now),
            }
            for c in chain
        ],
        "checked": checked,
        "not_checked": unchecked,
    }
    evidence = (
        f"subject {clip(details['subject'])}; issuer {clip(details['issuer'])}; " + "; ".join(dates)
    )
    if checked:
        evidence += "; checked: " + ", ".join(checked)
    if unchecked:
        evidence += "; NOT checked: " + ", ".join(unchecked)
    expired = [label for label, c in certs if c.not_valid_after_utc < now]
    early = [label for label, c in certs if c.not_valid_before_utc > now]
    if expired or early:
        what = ", ".join(
            [f"{x} has EXPIRED" for x in expired] + [f"{x} is not valid yet" for x in early]
        )
        return Finding(
            check, Status.FAIL, f"{what}: {evidence}", details, fails_as=Conclusion.NOT_VERIFIED
        )
    soonest = min(days_left(c.not_valid_after_utc, now) for _, c in certs)
    if soonest < CERT_WARN_DAYS:
        return Finding(
            check,
            Status.WARN,
            f"fewer than {CERT_WARN_DAYS} days left: {evidence}",
            details,
        )
    status = Status.WARN if unchecked or verified is False else Status.PASS
    return Finding(check, status, evidence, details)


def settings_finding(view: ServerView) -> Finding:
    """Check 4: the server's own settings, with the reason wherever a value is not shown."""
    check = "settings"
    details = {FORCE_SSL: view.force_ssl, FLOOR_SETTING: view.floor}
    parts: list[str] = []
    failures: list[str] = []
    if view.force_ssl is None:
        parts.append(f"{FORCE_SSL} not set on this server (it exists only on RDS)")
    else:
        parts.append(f"{FORCE_SSL}={clip(view.force_ssl)}")
        if view.force_ssl not in FORCE_SSL_ON:
            failures.append(f"{FORCE_SSL}={view.force_ssl} lets clients connect without TLS")
    if view.floor is None:
        parts.append(
            f"{FLOOR_SETTING} not shown: this role may not read it (it needs "
            "pg_read_all_settings; the RDS master user has it)"
            if not view.floor_readable
            else f"{FLOOR_SETTING} not shown: this server has no such setting"
        )
    else:
        parts.append(f"{FLOOR_SETTING}={clip(view.floor)}")
        if view.floor in TLS_PROTOCOLS and TLS_PROTOCOLS.index(view.floor) < TLS_PROTOCOLS.index(
            TLS_FLOOR
        ):
            failures.append(
                f"{FLOOR_SETTING}={view.floor} admits TLS versions deprecated by "
                f"RFC 8996; set {TLS_FLOOR} or higher"
            )
    shown = "; ".join(parts)
    if failures:
        return Finding(
            check,
            Status.FAIL,
            f"{'; '.join(failures)} ({shown})",
            details,
            fails_as=Conclusion.NOT_ENFORCED,
        )
    if view.force_ssl is None and view.floor is None:
        return Finding(check, Status.SKIP, shown, details)
    return Finding(check, Status.PASS, shown, details)


def version_below(floor: str | None) -> str | None:
    """The TLS version just under the server's floor (under TLSv1.2 when the floor is not
    shown), or None if there is nothing below it."""
    floor = floor if floor in TLS_PROTOCOLS else TLS_FLOOR
    index = TLS_PROTOCOLS.index(floor)
    return TLS_PROTOCOLS[index - 1] if index else None


def classify_floor(
    error: str | None,
    *,
    floor: str | None,
    below: str | None,
    setting: str = FLOOR_SETTING,
) -> Finding:
    """Optional check: a handshake capped at ``below`` must be refused. ``setting`` names the
    server setting that holds the floor."""
    check = "TLS floor"
    shown = floor or f"not shown, {TLS_FLOOR} expected"
    if below is None:
        return Finding(check, Status.SKIP, f"nothing to try below {setting}={shown}")
    if error is None:
        return Finding(
            check,
            Status.FAIL,
            f"a {below} handshake completed ({setting}={shown})",
            fails_as=Conclusion.NOT_ENFORCED,
        )
    if error.startswith(NETWORK):
        return Finding(check, Status.ERROR, f"could not probe the floor: {error}")
    if "NO_PROTOCOLS_AVAILABLE" in error:
        # The client's TLS library would not offer the old version: the server was never asked.
        return Finding(check, Status.SKIP, f"this client's TLS library cannot offer {below} at all")
    return Finding(check, Status.PASS, f"a client capped at {below} was refused: {error}")


def chain_verified(tls: Finding, *, sslmode: str) -> bool | None:
    """Did libpq accept the server's chain? None when it never looked."""
    if sslmode == "require":
        return None
    if tls.status in (Status.PASS, Status.WARN) or tls.details.get("tls_established"):
        return True
    if tls.fails_as == Conclusion.NOT_VERIFIED:
        return False
    return None


def conclusion(findings: Iterable[Finding]) -> Conclusion:
    """Proof of a problem beats a missing answer; not accepting plaintext beats verification.
    NOT VERIFIED and ENFORCED both say that plaintext is refused, so both need that check's
    PASS: a failed verification with plaintext unjudged is INCONCLUSIVE."""
    findings = list(findings)
    failed = {f.fails_as for f in findings if f.status == Status.FAIL}
    if Conclusion.NOT_ENFORCED in failed:
        return Conclusion.NOT_ENFORCED
    refused = any(f.check == PLAINTEXT_CHECK and f.status == Status.PASS for f in findings)
    if not refused:
        return Conclusion.INCONCLUSIVE
    if Conclusion.NOT_VERIFIED in failed:
        return Conclusion.NOT_VERIFIED
    if any(f.status in (Status.ERROR, Status.FAIL) for f in findings):
        return Conclusion.INCONCLUSIVE
    if any(f.details.get(UNVERIFIED) is False for f in findings):
        # Whoever answered was not proven to be the server: an impostor says what it likes.
        return Conclusion.INCONCLUSIVE
    return Conclusion.ENFORCED


# ---- input checks --------------------------------------------------------------------------
def check_sslrootcert(path: str) -> None:
    """A usage error unless ``path`` is a readable PEM file with at least one CA certificate."""
    fix = (
        "pass the RDS CA bundle: https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=path)
    except OSError as err:  # ssl.SSLError is an OSError too
        reason = err.strerror or getattr(err, "reason", None) or str(err)
        raise errors.CliError(
            "bad-sslrootcert", f"--sslrootcert {path}: cannot use it: {reason}", fix=fix
        ) from err
    if not context.get_ca_certs():
        raise errors.CliError(
            "bad-sslrootcert", f"--sslrootcert {path}: holds no CA certificate", fix=fix
        )


def check_host(host: str) -> None:
    """A usage error unless ``host`` is one TCP host name or address. libpq reads anything else
    its own way, and over a Unix-domain socket it ignores sslmode: the password would go in the
    clear (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNECT-HOST)."""
    why = None
    if not host.strip():
        why = "is empty: libpq would connect wherever PGHOST or its default socket says"
    elif host.startswith(("/", "@")):
        why = "names a Unix-domain socket, where libpq does not apply sslmode"
    elif "," in host:
        why = "is a list of hosts, which libpq tries one after another"
    if why:
        raise errors.CliError(
            "usage",
            f"--host {host!r} {why}",
            fix="pass one endpoint host name, as its certificate names it",
        )


def resolve(
    host: str, port: int, *, timeout: float = CONNECT_TIMEOUT_S, deadline: float | None = None
) -> str:
    """The one address every connection of the run dials: the first that ``host`` resolves to,
    or, when it resolves to several (IPv6 and IPv4, round-robin), the first of them, in the
    resolver's order, that accepts a TCP connection. With ``deadline`` (time.monotonic()), a
    usage-level error if that takes past it (getaddrinfo itself cannot be interrupted: it is
    left to a daemon thread)."""
    if deadline is not None:
        try:
            return Job(lambda: resolve(host, port, timeout=timeout)).result(deadline)
        except TimeoutError as err:
            raise errors.CliError(
                "timeout",
                f"--host {host}: not resolved and connected by the run's deadline (--timeout)",
                fix="check the name and the network, or pass a longer --timeout",
            ) from err
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as err:
        raise errors.CliError(
            "usage", f"--host {host!r} is not a valid host name ({err})", fix="check the name"
        ) from err
    except socket.gaierror as err:
        raise errors.CliError(
            "unresolved-host",
            f"--host {host}: the name does not resolve: {err.strerror}",
            fix="check the name, and run where the endpoint's DNS name resolves (inside the VPC)",
        ) from err
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    if len(addresses) == 1:
        return addresses[0]
    for address in addresses:
        try:
            socket.create_connection((address, port), timeout=timeout).close()
        except OSError:
            continue
        return address
    return addresses[0]  # none answers: the checks report it


def default_root_cert() -> str | None:
    """The CA file libpq reads when no sslrootcert is given, if there is one
    (https://www.postgresql.org/docs/current/libpq-ssl.html#LIBQ-SSL-CERTIFICATES)."""
    path = os.environ.get("PGSSLROOTCERT") or os.path.expanduser("~/.postgresql/root.crt")
    return path if os.path.exists(path) else None


# ---- evidence collection (I/O) -------------------------------------------------------------
T = TypeVar("T")


class Job(threading.Thread, Generic[T]):
    """A function running in its own thread; ``result()`` waits and re-raises its error."""

    def __init__(self, run: Callable[[], T]) -> None:
        super().__init__(daemon=True)
        self._run = run
        self._value: T | None = None
        self._error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self._value = self._run()
        except BaseException as err:  # handed to the caller by result()
            self._error = err

    def result(self, deadline: float | None = None) -> T:
        """The value, or the error raised; TimeoutError if the function has not returned by
        ``deadline`` (time.monotonic()) and ``GRACE_S`` more (one grace for every job of the run,
        not one each): it is left to its daemon thread, its connection bounded by the same
        deadline."""
        if deadline is None:
            self.join()
        else:
            self.join(max(0.0, deadline + GRACE_S - time.monotonic()))
            if self.is_alive():
                raise TimeoutError("no answer by the deadline")
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


def probe_plaintext(target: Target, *, follow_up: bool, deadline: float | None = None) -> Outcome:
    """The credential-free plaintext probe, as --user to --dbname. Without ``follow_up``, a
    pg_hba.conf refusal is left for ``settle_plaintext``: the verified session is the same
    start-up over TLS, so a second TLS connection is needed only when that session failed
    before pg_hba.conf (on the certificate, say)."""
    # Imported here, not at the top: it is not needed before the libpq session has started.
    from functools import partial

    from rds_force_ssl.cli import pgwire

    timeout = CONNECT_TIMEOUT_S if deadline is None else deadline - time.monotonic()
    if timeout <= 0:
        return Outcome(Verdict.UNREACHABLE, LATE)
    return probe_endpoint(
        Endpoint(target.dial, target.port),
        partial(pgwire.plaintext_probe, follow_up=follow_up),
        who=Identity(target.user, target.dbname, APPLICATION_NAME),
        timeout=min(timeout, CONNECT_TIMEOUT_S),
    )


def settle_plaintext(
    outcome: Outcome, *, past_pg_hba: bool, verified: bool = True
) -> Outcome | None:
    """A plaintext refusal by pg_hba.conf proves SSL only if TLS gets the same user and database
    past it: the verified session did (``past_pg_hba``), or it says nothing (None: ask the
    probe's own TLS follow-up). ``verified``: whether that session proved the server's
    identity (``server_verified``)."""
    from rds_force_ssl.cli.pgwire import HALF_PROVEN

    if not outcome.evidence.get(HALF_PROVEN):
        return outcome
    if not past_pg_hba:
        return None
    evidence = {k: v for k, v in outcome.evidence.items() if k != HALF_PROVEN}
    session = "the verified session" if verified else "the TLS session (server NOT verified)"
    return Outcome(
        Verdict.ENFORCED,
        f"{outcome.detail}; {session}, the same user and database over TLS, got past it",
        {**evidence, "over_tls": session},
    )


# The setting names come from the engine table, not from any input.
_SESSION_SQL = f"""
SELECT s.ssl, s.version, s.cipher, s.bits,
       EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'sslinfo'),
       current_setting('{FORCE_SSL}', true),
       (SELECT setting FROM pg_settings WHERE name = '{FLOOR_SETTING}'),
       pg_has_role('pg_read_all_settings', 'USAGE')
FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()
"""  # noqa: S608
# pg_settings hides what the role may not read instead of raising (PostgreSQL 15 keeps
# ssl_min_protocol_version to pg_read_all_settings); current_setting(.., true) gives NULL for a
# setting that does not exist, such as rds.force_ssl outside RDS. One query: one round trip.


def read_server_view(session: libpq.Session) -> ServerView:
    # The timeout goes in the same round trip as the query (one simple-query message); the
    # session's own deadline (libpq.connect) holds whether or not the server keeps it.
    rows = session.query(f"SET statement_timeout = {QUERY_TIMEOUT_MS}; {_SESSION_SQL}")
    if not rows:
        raise libpq.LibpqError("pg_stat_ssl has no row for this session")
    ssl_on, version, cipher, bits, has_sslinfo, force_ssl, floor, may_read = rows[0]
    used = None
    if has_sslinfo == "t":
        used = session.query("SELECT ssl_is_used()")[0][0] == "t"
    return ServerView(
        ssl=ssl_on == "t",
        version=version,
        cipher=cipher,
        bits=int(bits) if bits else None,
        sslinfo_ssl_is_used=used,
        force_ssl=force_ssl or None,
        floor=floor or None,
        floor_readable=may_read == "t",
    )


def session_params(target: Target, *, password: str) -> dict[str, Any]:
    params = target.params(sslmode=target.sslmode, password=password, client_encoding="UTF8")
    if target.sslrootcert:
        params["sslrootcert"] = target.sslrootcert
    if target.sslmode != "verify-full" and not target.allow_unverified_password:
        # The server is not (fully) authenticated: only SCRAM bound to this TLS channel, which
        # never sends the password and fails if the session is intercepted.
        params["channel_binding"] = "require"
    return params


def require_drivers(command: str = "verify") -> None:
    """A usage error, before any prompt or connection, if libpq or cryptography is missing;
    ``command`` is the one that needs them, as the message names it."""
    errors.require("cryptography", command=command)
    fix = (
        f"install the CLI's extra: {errors.INSTALL_HINT} (psycopg-binary brings a current "
        "libpq), or the system's libpq 13 or later (e.g. apt install libpq5)"
    )
    try:
        libpq.load()
    except ImportError as err:
        raise errors.CliError(
            "missing-dependency", f"rds-force-ssl {command} needs libpq: {err}", fix=fix
        ) from err
    if libpq.version() < libpq.MIN_VERSION:
        found = libpq.describe()
        raise errors.CliError(
            "missing-dependency",
            f"rds-force-ssl {command} needs libpq 13 or later (channel_binding); the one that "
            f"loads is {found['version']} ({found['path']})",
            fix=fix,
        )


def check_tls(
    target: Target, *, password: str, deadline: float | None = None
) -> tuple[Finding, ServerView | None]:
    logged_in = False
    try:
        # libpq waits outside the GIL: the other checks and imports run meanwhile.
        params = session_params(target, password=password)
        with libpq.connect(params, deadline=deadline) as session:
            logged_in = True
            view = read_server_view(session)
    except (libpq.Deadline, libpq.TooMuch) as err:
        # Once logged in, libpq had verified the server as sslmode says and pg_hba.conf let
        # the session through: only the query's answer is missing.
        what = "the query" if logged_in else "the login"
        said = LATE if isinstance(err, libpq.Deadline) else str(err)
        details = {"tls_established": True, "past_pg_hba": True} if logged_in else {}
        return Finding("verified TLS", Status.ERROR, f"{what}: {said}", details), None
    except libpq.LibpqError as err:
        return classify_tls_error(str(err), target=target), None
    return tls_finding(view, target=target), view


# What a handshake's connection may receive before TLS: one byte; with TLS, a certificate chain.
HANDSHAKE_MAX_BYTES = 256 * 1024


def _ssl_answer(answer: bytes) -> str:
    """Why an answer to the SSLRequest is not "S", in words."""
    if not answer:
        return "the server hung up when asked for TLS"
    if answer == b"N":
        return "the server declined TLS (it answered the SSLRequest with N)"
    if answer == b"E":
        return (
            "the server answered the SSLRequest with an error message instead of S or N (a "
            "server that cannot take this connection now, or one that is not PostgreSQL)"
        )
    return f"the answer to the SSLRequest is not PostgreSQL's (first byte, hex: {answer.hex()})"


def _tls_handshake(
    host: str,
    port: int,
    context: ssl.SSLContext,
    *,
    server_name: str | None = None,
    deadline: float | None = None,
) -> bytes | None:
    """SSLRequest, then a TLS handshake with ``host`` (naming ``server_name`` in it, if given);
    the server's certificate (DER). Nothing else is sent. Every wait ends by ``deadline``
    (time.monotonic(); default ``CONNECT_TIMEOUT_S`` from now), and no more than
    ``HANDSHAKE_MAX_BYTES`` are received."""
    from rds_force_ssl.cli.wire import Bounds, connect

    end = time.monotonic() + CONNECT_TIMEOUT_S if deadline is None else deadline
    bounds = Bounds(deadline=end, max_bytes=HANDSHAKE_MAX_BYTES)
    with connect(Endpoint(host, port), deadline=end, make=bounds.socket) as sock:
        sock.sendall(SSL_REQUEST)
        answer = sock.recv(1)
        if not answer or answer[0] != SSL_ACCEPTED:
            raise ConnectionError(_ssl_answer(answer))
        tls_context = bounds.tls_context(context)
        with tls_context.wrap_socket(sock, server_hostname=server_name or host) as tls:
            return tls.getpeercert(binary_form=True)


def unverified_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def fetch_certificate(
    host: str, port: int, *, server_name: str | None = None, deadline: float | None = None
) -> bytes:
    """The certificate the server presents, without verifying it: the point is to show what is
    presented even when verification fails."""
    der = _tls_handshake(
        host, port, unverified_context(), server_name=server_name, deadline=deadline
    )
    if not der:
        raise ConnectionError("the server presented no certificate")
    return der


Handshake = Callable[[str, int, ssl.SSLContext, float | None], bytes | None]


def _pg_handshake(host: str, port: int, context: ssl.SSLContext, deadline: float | None) -> Any:
    return _tls_handshake(host, port, context, deadline=deadline)


def probe_floor(
    host: str,
    port: int,
    *,
    below: str,
    handshake: Handshake = _pg_handshake,
    deadline: float | None = None,
) -> str | None:
    """A handshake offering nothing newer than ``below``: None if it completed, else the error.
    The security level is lowered so that the client can offer it at all; no login follows.
    ``handshake`` is the engine's way into TLS (PostgreSQL's SSLRequest by default)."""
    context = unverified_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSVersion.TLSv1 and TLSv1_1
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion[below.replace(".", "_")]
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    try:
        handshake(host, port, context, deadline)
    except ssl.SSLError as err:
        return tls_error_text(err)
    except TimeoutError:
        return f"{NETWORK}{LATE}"
    except OSError as err:
        return f"{NETWORK}{err.strerror or err}"
    return None


def load_bundle(path: str | None) -> list[x509.Certificate] | None:
    if path is None:
        return None
    from cryptography import x509

    with open(path, "rb") as pem:
        return list(x509.load_pem_x509_certificates(pem.read()))


def certificate_check(
    job: Job[bytes],
    *,
    bundle: list[x509.Certificate] | None,
    verified: bool | None,
    sslmode: str,
    now: datetime,
    client: str = "libpq",
    deadline: float | None = None,
) -> Finding:
    from cryptography import x509

    try:
        leaf = x509.load_der_x509_certificate(job.result(deadline))
    except TimeoutError:
        return Finding("certificate", Status.ERROR, f"could not read the certificate: {LATE}")
    except ssl.SSLError as err:
        said = tls_error_text(err)
        return Finding("certificate", Status.ERROR, f"could not read the certificate: {said}")
    except (OSError, ValueError) as err:
        said = getattr(err, "strerror", None) or str(err) or type(err).__name__
        return Finding("certificate", Status.ERROR, f"could not read the certificate: {said}")
    return certificate_finding(
        leaf, bundle=bundle, verified=verified, sslmode=sslmode, now=now, client=client
    )


def run_verify(
    target: Target,
    *,
    password: str,
    check_floor: bool,
    now: datetime,
    deadline: float | None = None,
) -> list[Finding]:
    """Every check, concurrently: the three connections start at once, and cryptography is
    imported while they wait on the network. All of it ends by ``deadline`` (time.monotonic();
    default ``DEFAULT_TIMEOUT_S`` from now): a check not done by then is an ERROR."""
    end = time.monotonic() + DEFAULT_TIMEOUT_S if deadline is None else deadline
    tls_job = Job(lambda: check_tls(target, password=password, deadline=end))
    plaintext_job = Job(lambda: probe_plaintext(target, follow_up=False, deadline=end))
    cert_job = Job(
        lambda: fetch_certificate(target.dial, target.port, server_name=target.host, deadline=end)
    )
    try:
        bundle = load_bundle(target.sslrootcert)
    except ImportError as err:
        raise errors.missing("cryptography", command="verify") from err
    try:
        tls, view = tls_job.result(end)
    except TimeoutError:
        tls, view = Finding("verified TLS", Status.ERROR, f"the login: {LATE}"), None
    past_pg_hba = view is not None or bool(tls.details.get("past_pg_hba"))
    try:
        first = plaintext_job.result(end)
    except TimeoutError:
        first = Outcome(Verdict.UNREACHABLE, LATE)
    plaintext = settle_plaintext(first, past_pg_hba=past_pg_hba, verified=server_verified(target))
    if plaintext is None:
        plaintext = probe_plaintext(target, follow_up=True, deadline=end)
    findings = [plaintext_finding(plaintext), tls]
    findings += [
        certificate_check(
            cert_job,
            bundle=bundle,
            verified=chain_verified(tls, sslmode=target.sslmode),
            sslmode=target.sslmode,
            now=now,
            deadline=end,
        ),
        settings_finding(view)
        if view
        else Finding("settings", Status.SKIP, "not read: the verified session failed"),
    ]
    if check_floor:
        floor = view.floor if view else None
        below = version_below(floor)
        error = probe_floor(target.dial, target.port, below=below, deadline=end) if below else None
        findings.append(classify_floor(error, floor=floor, below=below))
    return findings
