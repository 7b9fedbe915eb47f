"""What every engine's plaintext probe shares: the verdicts, the endpoint, and a TCP connection
with one deadline for the whole conversation. The engine-specific conversation is a function
``(Wire, Identity) -> Outcome`` (see ``engines.py``); this module opens the connection, turns
network failures into UNREACHABLE, and closes the socket the moment a verdict is reached.
"""

from __future__ import annotations

import errno
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rds_force_ssl.cli.output import clip

APPLICATION_NAME = "rds-force-ssl probe"
PROBE_USER = "rds_force_ssl_probe"


class Verdict(StrEnum):
    ENFORCED = "ENFORCED"  # refused in plaintext before authentication, admitted over TLS
    NOT_ENFORCED = "NOT_ENFORCED"  # a plaintext client reached authentication or got in
    UNREACHABLE = "UNREACHABLE"  # no TCP connection, or no answer at all
    INCONCLUSIVE = "INCONCLUSIVE"  # an answer that does not say either way


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    detail: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


# The database a PostgreSQL start-up names when the user names none: the one every PostgreSQL
# server (and RDS) creates. The postgresql protocol row (cli/engines.py) reads it from here.
# https://www.postgresql.org/docs/current/manage-ag-templatedbs.html
POSTGRES_DEFAULT_DBNAME = "postgres"


@dataclass(frozen=True)
class Identity:
    """Who the plaintext client says it is. pg_hba.conf rules may depend on user and database
    (rds.force_ssl does not); no password goes with it, ever."""

    user: str = PROBE_USER
    dbname: str = POSTGRES_DEFAULT_DBNAME
    application_name: str = APPLICATION_NAME


@dataclass(frozen=True, order=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def key(self) -> tuple[str, int]:
        """What makes two endpoints the same server: host names are case-insensitive, and
        ``db.example.com.`` is ``db.example.com``."""
        return self.host.casefold().rstrip(".") or self.host, self.port


def parse_endpoint(text: str, *, default_port: int) -> Endpoint:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``; a bare IPv6 address has no port."""
    host, port = text.strip(), ""
    if host.startswith("["):
        host, sep, rest = host[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r}: write an IPv6 endpoint as [address]:port")
        port = rest[1:]
        if rest == ":":
            raise ValueError(f"{text!r}: no port after the colon")
    elif host.count(":") == 1:
        host, port = host.split(":")
        if not port:
            raise ValueError(f"{text!r}: no port after the colon")
    if not host:
        raise ValueError(f"{text!r}: no host name")
    # isdigit() alone would take other scripts' digits ("٥٤٣٢"), which int() reads too.
    if port and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    return Endpoint(host, int(port) if port else default_port)


def server_text(data: bytes, *, limit: int = 80) -> str:
    """Server-supplied bytes as text (invalid UTF-8 as U+FFFD), cut at ``limit`` characters:
    for evidence, which a table shows through ``output.printable`` and JSON escapes."""
    return clip(data.decode("utf-8", errors="replace"), limit=limit)


def mysql_greeting_version(data: bytes) -> str | None:
    """The server version of a MySQL or MariaDB greeting (Protocol::HandshakeV10, sequence 0),
    or None if ``data`` does not start like one. A MySQL server speaks first, so this is what
    a client of another protocol reads back from a MySQL port."""
    if len(data) < 6 or data[3] != 0 or data[4] != 10 or not data[5:6].isdigit():
        return None
    version = data[5:].split(b"\0", 1)[0]
    return server_text(version, limit=60)


# https://www.rfc-editor.org/rfc/rfc8446#appendix-B.2 (AlertDescription), the usual ones
TLS_ALERTS = {
    10: "unexpected_message",
    40: "handshake_failure",
    70: "protocol_version",
    80: "internal_error",
    112: "unrecognized_name",
}


def describe_foreign(data: bytes) -> str | None:
    """What kind of server sent ``data``, when it is not the protocol the client spoke: an HTTP
    server, a TLS endpoint, MySQL or MariaDB, SSH; None when it is none of these. The server's
    own words are cut (``server_text``), for the table to escape."""
    if data.startswith(b"HTTP/"):
        status = data.split(b"\r\n", 1)[0].split(b"\n", 1)[0]
        return f"this is an HTTP server (it answered {server_text(status)})"
    if len(data) >= 3 and data[0] in (0x15, 0x16) and data[1] == 3:
        if data[0] == 0x16:
            return "this is a TLS endpoint that expects TLS from the first byte (a handshake)"
        alert = TLS_ALERTS.get(data[6], f"alert {data[6]}") if len(data) >= 7 else "an alert"
        return f"this is a TLS endpoint that expects TLS from the first byte (a TLS alert: {alert})"
    version = mysql_greeting_version(data)
    if version is not None:
        return f"this is a MySQL or MariaDB server (its greeting, version {version})"
    if len(data) >= 7 and data[3] == 0 and data[4] == 0xFF:
        code, said = data[5] | data[6] << 8, server_text(data[7:])
        return (
            f"this is a MySQL or MariaDB server (an error before its greeting: {said}, "
            f"MySQL error {code})"
        )
    if data.startswith(b"SSH-"):
        banner = data.split(b"\r\n", 1)[0].split(b"\n", 1)[0]
        return f"this is an SSH server (its banner: {server_text(banner)})"
    return None


class Wire:
    """A connection whose every connect, read and write share the probe's one deadline.

    ``reconnect`` opens a new connection to the very address the first one reached (no second
    name look-up: a round-robin name could lead elsewhere); ``start_tls`` turns the connection
    into TLS without verifying the server, which is enough to see how the server treats the same
    client over TLS (nothing secret is ever sent)."""

    def __init__(self, sock: socket.socket, *, deadline: float, server_name: str) -> None:
        self._sock = sock
        self._deadline = deadline
        self._server_name = server_name

    def _arm(self) -> None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self._sock.settimeout(left)

    def send(self, data: bytes) -> None:
        self._arm()
        self._sock.sendall(data)

    def receive(self) -> bytes:
        """Some bytes, or b"" once the server has closed the connection."""
        self._arm()
        return self._sock.recv(4096)

    def reconnect(self) -> None:
        peer = self._sock.getpeername()
        fresh = socket.socket(self._sock.family, socket.SOCK_STREAM)
        self.close()
        self._sock = fresh
        self._arm()
        fresh.connect(peer)

    def start_tls(self) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self._arm()
        self._sock = context.wrap_socket(self._sock, server_hostname=self._server_name)

    def close(self) -> None:
        self._sock.close()


def tls_error_text(err: ssl.SSLError) -> str:
    """OpenSSL's words and reason code, without the "[SSL: ...] ... (_ssl.c:NNN)" wrapping."""
    text = re.sub(r"^\[[^\]]*\]\s*|\s*\(_ssl\.c:\d+\)$", "", str(err.args[-1]))
    reason = getattr(err, "reason", None)
    return f"{text} ({reason})" if reason else text


Conversation = Callable[[Wire, Identity], Outcome]

# This machine, not the endpoint, ran out of something a connection needs: file descriptors
# (the process's, EMFILE, or the system's, ENFILE), buffers or memory.
LOCAL_SHORTAGE = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def local_shortage(err: OSError) -> str:
    what = errno.errorcode.get(err.errno or 0, "")
    fix = (
        "raise the limit (ulimit -n) or lower --concurrency"
        if err.errno in (errno.EMFILE, errno.ENFILE)
        else "free memory or lower --concurrency"
    )
    return (
        f"not tried: this machine could not open a connection ({err.strerror or err}, {what}); "
        f"the endpoint was never reached: {fix}"
    )


# ---- one budget per conversation: a deadline and a byte cap, for drivers too ----------------
class OverBudget(OSError):
    """The server sent more than the conversation's byte cap."""


class Bounds:
    """A conversation's budget: every wait ends by ``deadline`` (time.monotonic()), and no more
    than ``max_bytes`` are received in all. Its sockets (``socket``, and ``tls_context`` for
    the TLS layer a driver puts on top) enforce it on every call, whatever timeout the driver
    sets, so that a driver that reads a server's length fields as they come (PyMySQL) cannot be
    held past the deadline or made to buffer without end. ``broken`` says which limit ended the
    conversation; ``tls`` whether a TLS handshake completed on it."""

    def __init__(self, *, deadline: float, max_bytes: int) -> None:
        self.deadline = deadline
        self.max_bytes = max_bytes
        self.received = 0
        self.broken: str | None = None
        self.tls = False

    def left(self, requested: float | None) -> float:
        """The timeout for the next wait: the driver's own, cut to what is left."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.broken = "deadline"
            raise TimeoutError("the deadline has passed")
        return left if requested is None else min(requested, left)

    def count(self, size: int) -> None:
        self.received += size
        if self.received > self.max_bytes:
            self.broken = "bytes"
            raise OverBudget(f"the server sent more than {self.max_bytes} bytes")

    def allow(self, max_bytes: int) -> None:
        """Receive at most ``max_bytes`` in all from now on, counting what was received
        already: for a conversation whose first part (a login) keeps a tight cap and whose
        next part (an answer of known bounds) needs a larger one."""
        self.max_bytes = max_bytes

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def timed_out(self) -> None:
        """A wait timed out: the deadline's doing if it has passed (else the driver's own)."""
        if self.expired():
            self.broken = "deadline"

    def socket(self, family: int, kind: int, proto: int) -> socket.socket:
        sock = _BoundedSocket(family, kind, proto)
        sock.bounds = self
        return sock

    def tls_context(self, context: ssl.SSLContext) -> ssl.SSLContext:
        """``context``, whose sockets keep to this budget once TLS is on."""
        context.sslsocket_class = type("BoundedSSLSocket", (_BoundedSSLSocket,), {"bounds": self})
        return context


class _Budgeted(socket.socket):
    """What both layers share: each wait gets the time the budget has left (never more than
    the driver asked for), and running out of it is recorded."""

    bounds: Bounds
    _requested: float | None = None

    def settimeout(self, value: float | None) -> None:
        self._requested = value
        super().settimeout(value)

    @contextmanager
    def _armed(self) -> Iterator[None]:
        super().settimeout(self.bounds.left(self._requested))
        try:
            yield
        except TimeoutError:
            self.bounds.timed_out()
            raise


class _BoundedSocket(_Budgeted):
    """The plain TCP layer of a bounded connection: what is received is counted."""

    def recv(self, size: int, flags: int = 0) -> bytes:
        with self._armed():
            data = super().recv(size, flags)
        if not flags & socket.MSG_PEEK:
            self.bounds.count(len(data))
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        with self._armed():
            size = super().recv_into(buffer, nbytes, flags)
        if not flags & socket.MSG_PEEK:
            self.bounds.count(size)
        return size

    def send(self, data: Any, flags: int = 0) -> int:
        with self._armed():
            return super().send(data, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        with self._armed():
            super().sendall(data, flags)

    def connect(self, address: Any) -> None:
        with self._armed():
            super().connect(address)


class _BoundedSSLSocket(_Budgeted, ssl.SSLSocket):
    """The TLS layer of a bounded connection (through ``SSLContext.sslsocket_class``): the
    handshake, every read and every write keep to the budget; what is counted is what TLS
    hands over (OpenSSL keeps its own buffers and certificate list to fixed sizes)."""

    def do_handshake(self, block: bool = False) -> None:
        with self._armed():
            super().do_handshake(block)
        self.bounds.tls = True

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        with self._armed():
            data = super().recv(buflen, flags)
        self.bounds.count(len(data))
        return data

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        with self._armed():
            size = super().recv_into(buffer, nbytes, flags)
        self.bounds.count(size)
        return size

    def send(self, data: Any, flags: int = 0) -> int:
        with self._armed():
            return super().send(data, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        with self._armed():
            super().sendall(data, flags)


def connect(
    endpoint: Endpoint,
    *,
    deadline: float,
    make: Callable[[int, int, int], socket.socket] | None = None,
) -> socket.socket:
    """A TCP connection to the first address of the name that takes one, trying them in the
    resolver's order, all before ``deadline``. (socket.create_connection would give each address
    the whole timeout: three silent addresses, three timeouts.) Name resolution itself is not
    bounded: getaddrinfo blocks. ``make`` makes the socket (``Bounds.socket`` for one whose
    every wait and every byte count against a budget)."""
    found = socket.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
    error: OSError = OSError(f"{endpoint.host} resolves to no address")
    for family, kind, proto, _, address in found:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock = (make or socket.socket)(family, kind, proto)
        try:
            sock.settimeout(left)
            sock.connect(address)
        except OSError as err:
            sock.close()
            error = err
            continue
        return sock
    raise error


def probe_endpoint(
    endpoint: Endpoint, converse: Conversation, *, who: Identity, timeout: float
) -> Outcome:
    """Connect, hold ``converse``'s conversation within ``timeout`` seconds in all, and close."""
    deadline = time.monotonic() + timeout
    try:
        sock = connect(endpoint, deadline=deadline)
    except socket.gaierror as err:
        return Outcome(Verdict.UNREACHABLE, f"the host name does not resolve: {err.strerror}")
    except ValueError as err:  # UnicodeError: the name cannot even be encoded (e.g. "a..b")
        return Outcome(Verdict.UNREACHABLE, f"not a valid host name: {err}")
    except ConnectionRefusedError:
        return Outcome(Verdict.UNREACHABLE, "connection refused: nothing listens on that port")
    except TimeoutError:
        return Outcome(Verdict.UNREACHABLE, f"no TCP connection within {seconds(timeout)} s")
    except OSError as err:
        if err.errno in LOCAL_SHORTAGE:
            return Outcome(Verdict.INCONCLUSIVE, local_shortage(err))
        return Outcome(Verdict.UNREACHABLE, f"could not connect: {err.strerror or err}")
    wire = Wire(sock, deadline=deadline, server_name=endpoint.host)
    try:
        return converse(wire, who)
    except TimeoutError:
        return Outcome(Verdict.UNREACHABLE, f"connected, but no answer within {seconds(timeout)} s")
    except ConnectionResetError:
        return Outcome(Verdict.UNREACHABLE, "the connection was reset before any answer")
    except OSError as err:
        return Outcome(Verdict.UNREACHABLE, f"the connection failed: {err.strerror or err}")
    finally:
        wire.close()


def seconds(value: float) -> str:
    """A duration for a person: tenths at most (what is left of a deadline is 2.99744 s)."""
    return f"{value:.1f}".removesuffix(".0")
