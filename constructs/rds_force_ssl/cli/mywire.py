"""The MySQL client/server protocol, as far as ``verify`` needs it before any login: the server's
greeting (a MySQL server speaks first), and the switch to TLS (an SSLRequest) that comes before
the client says who it is. Nothing here sends a user name or a credential of any kind.

Protocol: https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase.html
(Protocol::HandshakeV10, Protocol::SSLRequest, ERR_Packet); MariaDB speaks the same start-up
(https://mariadb.com/kb/en/connection/).

Why MySQL has no credential-free plaintext probe, as PostgreSQL has: both servers check
``require_secure_transport`` only once the client's password has been checked. MySQL 8
(mysql/mysql-server, sql/auth/sql_authentication.cc, ``acl_authenticate``) tests
``opt_require_secure_transport`` after the authentication plugin succeeded and answers
ER_SECURE_TRANSPORT_REQUIRED (3159); MariaDB (MariaDB/server, sql/sql_acl.cc, ``acl_check_ssl``,
"At this point we know that user is allowed to connect ... by given username/password pair")
answers the same "Access denied" (1045) as for a wrong password. A client without the password
is turned away alike whether plaintext is refused or not, so only a logged-in session can tell.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from dataclasses import dataclass

from rds_force_ssl.cli import wire
from rds_force_ssl.cli.output import clip

CONNECT_TIMEOUT_S = 10
# A MySQL or MariaDB server greets a client as soon as it has connected; a PostgreSQL server (or
# most other protocols' servers) waits for the client to speak first. So a connection that has
# said nothing after GREETING_WAIT_S is asked, once, the question a PostgreSQL server answers
# with one byte (SSLRequest); after as long again without any answer, it is not MySQL either.
GREETING_WAIT_S = 1.0
# https://www.postgresql.org/docs/current/protocol-message-formats.html (SSLRequest)
PG_SSL_REQUEST = struct.pack("!ii", 8, 80877103)
# Capability flags (include/mysql_com.h).
CLIENT_LONG_PASSWORD = 0x00000001
CLIENT_PROTOCOL_41 = 0x00000200
CLIENT_SSL = 0x00000800
CLIENT_SECURE_CONNECTION = 0x00008000
CLIENT_PLUGIN_AUTH = 0x00080000
PROTOCOL_V10 = 10
ERR_PACKET = 0xFF
MAX_PACKET = 1 << 24
UTF8MB4_GENERAL_CI = 45
MAX_GREETING = 64 * 1024
# What the certificate's connection may receive in all: a greeting, then a TLS handshake whose
# certificate chain OpenSSL keeps to 100 KB.
MAX_HANDSHAKE_BYTES = MAX_GREETING + 256 * 1024


class MysqlError(ConnectionError):
    """The server answered with an ERR packet (e.g. 1130 host not allowed, 1040 too many
    connections) instead of its greeting."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{message} (MySQL error {code})")
        self.code = code
        self.message = message


class NotMysql(ConnectionError):
    """The bytes are not a MySQL greeting."""


class NoGreeting(ConnectionError):
    """The server said nothing within GREETING_WAIT_S of the connection, where a MySQL server
    greets at once; ``how`` says what it did instead. ``postgres``: it answered a PostgreSQL
    SSLRequest as a PostgreSQL server does."""

    def __init__(self, how: str, *, postgres: bool) -> None:
        super().__init__(f"no MySQL greeting ({how})")
        self.how = how
        self.postgres = postgres


def await_greeting(sock: socket.socket, *, wait: float) -> bool:
    """True once the server has started its greeting (left unread) or closed, within ``wait``
    seconds of the connection; False if a greeting came only later, after the PostgreSQL
    question had spoilt the connection (connect again, and wait longer). NoGreeting when
    nothing came, or a PostgreSQL answer."""
    sock.settimeout(wait)
    try:
        sock.recv(1, socket.MSG_PEEK)
        return True  # some bytes, or a close that read_packet reports
    except TimeoutError:
        pass
    # Silent: a MySQL server would have greeted by now. One PostgreSQL question (8 bytes, no
    # name or credential) tells a PostgreSQL server for sure: it answers S or N and nothing
    # more, where a late MySQL greeting is a whole packet (sent before the server reads).
    silent = f"it sent nothing for {wait:g} s, where a MySQL or MariaDB server greets at once"
    sock.sendall(PG_SSL_REQUEST)
    try:
        answer = sock.recv(64)
    except TimeoutError:
        raise NoGreeting(
            f"{silent}, nor answered a PostgreSQL SSLRequest in {wait:g} s more", postgres=False
        ) from None
    if answer in (b"S", b"N"):
        raise NoGreeting(
            f"{silent}, and answered a PostgreSQL SSLRequest as PostgreSQL does", postgres=True
        )
    if not answer:
        raise NoGreeting(f"{silent}, and hung up on a PostgreSQL SSLRequest", postgres=False)
    return False


@dataclass(frozen=True)
class Greeting:
    version: str
    capabilities: int

    @property
    def offers_tls(self) -> bool:
        return bool(self.capabilities & CLIENT_SSL)


def hex_preview(data: bytes) -> str:
    return " ".join(f"{b:02x}" for b in data[:8])


def read_packet(sock: socket.socket) -> tuple[int, bytes]:
    """One packet: (sequence id, payload)."""
    header = _read_exactly(sock, 4)
    length = header[0] | header[1] << 8 | header[2] << 16
    if length > MAX_GREETING:
        raise NotMysql(f"a packet of {length} bytes (first bytes, hex: {hex_preview(header)})")
    return header[3], _read_exactly(sock, length)


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the server closed the connection before its greeting")
        data += chunk
    return data


def parse_error(payload: bytes) -> MysqlError:
    """An ERR packet: 0xFF, the code (2 bytes), then ``#`` and a SQLSTATE (protocol 4.1) or not
    (an error sent before the greeting), then the message."""
    (code,) = struct.unpack("<H", payload[1:3])
    rest = payload[3:]
    if rest[:1] == b"#":
        rest = rest[6:]
    return MysqlError(code, clip(rest.decode("utf-8", errors="replace")))


def parse_greeting(payload: bytes) -> Greeting:
    """Protocol::HandshakeV10: version string, connection id, scramble part 1, filler, then the
    capability flags in two halves around the character set and the status."""
    if not payload:
        raise NotMysql("an empty packet")
    if payload[0] == ERR_PACKET:
        raise parse_error(payload)
    if payload[0] != PROTOCOL_V10 or b"\0" not in payload[1:]:
        raise NotMysql(f"not a MySQL greeting (first bytes, hex: {hex_preview(payload)})")
    end = payload.index(b"\0", 1)
    version = clip(payload[1:end].decode("utf-8", errors="replace"))
    pos = end + 1 + 4 + 8 + 1  # connection id, scramble part 1, filler
    if len(payload) < pos + 2:
        raise NotMysql("a truncated greeting")
    (low,) = struct.unpack("<H", payload[pos : pos + 2])
    high = 0
    if len(payload) >= pos + 7:
        (high,) = struct.unpack("<H", payload[pos + 5 : pos + 7])
    return Greeting(version, low | high << 16)


def ssl_request() -> bytes:
    """Protocol::SSLRequest, sequence 1: the capabilities, the largest packet and the character
    set, and no user name: the server starts TLS next."""
    flags = (
        CLIENT_LONG_PASSWORD
        | CLIENT_PROTOCOL_41
        | CLIENT_SSL
        | CLIENT_SECURE_CONNECTION
        | CLIENT_PLUGIN_AUTH
    )
    body = struct.pack("<IIB23s", flags, MAX_PACKET - 1, UTF8MB4_GENERAL_CI, b"")
    return struct.pack("<I", len(body))[:3] + b"\x01" + body


def connect(host: str, port: int, *, bounds: wire.Bounds) -> socket.socket:
    """A TCP connection to ``host`` that keeps ``bounds`` (every wait ends by its deadline, and
    it receives no more than its byte cap)."""
    return wire.connect(wire.Endpoint(host, port), deadline=bounds.deadline, make=bounds.socket)


def tls_handshake(
    host: str,
    port: int,
    context: ssl.SSLContext,
    *,
    timeout: float = CONNECT_TIMEOUT_S,
    greeting_wait: float | None = None,
    deadline: float | None = None,
) -> tuple[Greeting, bytes | None]:
    """The greeting, then an SSLRequest and a TLS handshake: the server's greeting and its
    certificate (DER). The connection is closed before any user name is sent. With
    ``greeting_wait``, a server that does not greet within it is found out (``await_greeting``)
    instead of waited for until ``timeout``. All of it ends by ``deadline`` (time.monotonic();
    default ``timeout`` from now), and takes no more than ``MAX_HANDSHAKE_BYTES``."""
    end = time.monotonic() + timeout if deadline is None else deadline
    bounds = wire.Bounds(deadline=end, max_bytes=MAX_HANDSHAKE_BYTES)
    with connect(host, port, bounds=bounds) as sock:
        if greeting_wait is not None and not await_greeting(sock, wait=greeting_wait):
            sock.close()  # a slow MySQL server: start again, by the same deadline
            return tls_handshake(host, port, context, timeout=timeout, deadline=end)
        sock.settimeout(timeout)
        _, payload = read_packet(sock)
        hello = parse_greeting(payload)
        if not hello.offers_tls:
            raise NoTls(hello)
        sock.sendall(ssl_request())
        with bounds.tls_context(context).wrap_socket(sock, server_hostname=host) as tls:
            return hello, tls.getpeercert(binary_form=True)


class NoTls(ConnectionError):
    """The greeting does not offer TLS: every client of this server is plaintext."""

    def __init__(self, hello: Greeting) -> None:
        super().__init__(
            f"the server ({hello.version}) offers no TLS (its greeting lacks CLIENT_SSL)"
        )
        self.greeting = hello
