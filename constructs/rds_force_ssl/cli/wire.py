"""What every engine's plaintext probe shares: the verdicts, the endpoint, and a TCP connection
with one deadline for the whole conversation. The engine-specific conversation is a function
``(Wire, Identity) -> Outcome`` (see ``engines.py``); this module opens the connection, turns
network failures into UNREACHABLE, and closes the socket the moment a verdict is reached.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

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
    elif host.count(":") == 1:
        host, port = host.split(":")
    if not host:
        raise ValueError(f"{text!r}: no host name")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    return Endpoint(host, int(port) if port else default_port)


def terminal_safe(data: bytes | str, *, limit: int | None = 80) -> str:
    """Server-supplied bytes (or text) as text that is safe on a terminal: printable characters
    as they are, anything else (control characters, escape sequences, invalid UTF-8) as
    ``\\xNN``, and no more than ``limit`` characters (None: all of it)."""
    text = data.decode("utf-8", errors="backslashreplace") if isinstance(data, bytes) else data
    shown = "".join(
        c if c.isprintable() else "".join(f"\\x{b:02x}" for b in c.encode("utf-8"))
        for c in text[:limit]
    )
    return shown + ("..." if limit is not None and len(text) > limit else "")


def mysql_greeting_version(data: bytes) -> str | None:
    """The server version of a MySQL or MariaDB greeting (Protocol::HandshakeV10, sequence 0),
    or None if ``data`` does not start like one. A MySQL server speaks first, so this is what
    a client of another protocol reads back from a MySQL port."""
    if len(data) < 6 or data[3] != 0 or data[4] != 10 or not data[5:6].isdigit():
        return None
    version = data[5:].split(b"\0", 1)[0]
    return terminal_safe(version, limit=60)


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
    own words are made terminal-safe."""
    if data.startswith(b"HTTP/"):
        status = data.split(b"\r\n", 1)[0].split(b"\n", 1)[0]
        return f"this is an HTTP server (it answered {terminal_safe(status)})"
    if len(data) >= 3 and data[0] in (0x15, 0x16) and data[1] == 3:
        if data[0] == 0x16:
            return "this is a TLS endpoint that expects TLS from the first byte (a handshake)"
        alert = TLS_ALERTS.get(data[6], f"alert {data[6]}") if len(data) >= 7 else "an alert"
        return f"this is a TLS endpoint that expects TLS from the first byte (a TLS alert: {alert})"
    version = mysql_greeting_version(data)
    if version is not None:
        return f"this is a MySQL or MariaDB server (its greeting, version {version})"
    if len(data) >= 7 and data[3] == 0 and data[4] == 0xFF:
        code, said = data[5] | data[6] << 8, terminal_safe(data[7:])
        return (
            f"this is a MySQL or MariaDB server (an error before its greeting: {said}, "
            f"MySQL error {code})"
        )
    if data.startswith(b"SSH-"):
        banner = data.split(b"\r\n", 1)[0].split(b"\n", 1)[0]
        return f"this is an SSH server (its banner: {terminal_safe(banner)})"
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


def connect(endpoint: Endpoint, *, deadline: float) -> socket.socket:
    """A TCP connection to the first address of the name that takes one, trying them in the
    resolver's order, all before ``deadline``. (socket.create_connection would give each address
    the whole timeout: three silent addresses, three timeouts.) Name resolution itself is not
    bounded: getaddrinfo blocks."""
    found = socket.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
    error: OSError = OSError(f"{endpoint.host} resolves to no address")
    for family, kind, proto, _, address in found:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock = socket.socket(family, kind, proto)
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
        return Outcome(Verdict.UNREACHABLE, f"no TCP connection within {timeout:g} s")
    except OSError as err:
        return Outcome(Verdict.UNREACHABLE, f"could not connect: {err.strerror or err}")
    wire = Wire(sock, deadline=deadline, server_name=endpoint.host)
    try:
        return converse(wire, who)
    except TimeoutError:
        return Outcome(Verdict.UNREACHABLE, f"connected, but no answer within {timeout:g} s")
    except ConnectionResetError:
        return Outcome(Verdict.UNREACHABLE, "the connection was reset before any answer")
    except OSError as err:
        return Outcome(Verdict.UNREACHABLE, f"the connection failed: {err.strerror or err}")
    finally:
        wire.close()
