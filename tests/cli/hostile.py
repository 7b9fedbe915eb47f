"""Small hostile servers on loopback, for the tests of the CLI against servers it does not
control, and for ``benchmarks/hostile.py``, which runs the same attacks against the CLI as a
subprocess.

Each server is one listening socket on 127.0.0.1 and a thread per connection; what it does with
a connection is a ``Handler``. Every server is bounded in time of its own: it stops after
``lifetime`` seconds whatever its clients do, and every wait of its handlers ends when it stops,
so that a client that does not keep its own deadline still ends (a test then fails instead of
hanging). ``Server.sent`` counts the bytes the server got onto the wire, for the memory tests.

The attacks, by the defect each shows:

- ``mysql_trickle``: a MySQL greeting, one byte at a time, that never ends;
- ``mysql_flood``: a greeting whose header says 16 MB, then a chain of 16 MB continuation
  packets, as fast as the client reads;
- ``mysql_error``: an ERR packet in place of the greeting (1130, 1045, 1040), in plaintext;
- ``mysql_greeting``: a greeting with any version string (escape sequences, not a number),
  with TLS for the handshakes that ask for it;
- ``mysql_impostor``: a whole MySQL server that accepts any password over TLS and says
  ``require_secure_transport=ON``;
- ``pg_impostor``: a PostgreSQL server that refuses plaintext as pg_hba.conf does, lets any
  login in over TLS (AuthenticationOk), and then answers the query as RDS would (``answer``),
  never answers it (``silent``), or floods (``flood``);
- ``pg_error``: a PostgreSQL server that answers everything (start-up and SSLRequest) with an
  ErrorResponse of the test's choosing.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trustme

LIFETIME_S = 60.0
SSL_REQUEST_CODE = 80877103


class Stopped(Exception):
    """The server is stopping: a handler's wait ended."""


@dataclass
class Server:
    port: int
    stop: threading.Event = field(default_factory=threading.Event)
    sent: int = 0
    connections: int = 0
    received: list[bytes] = field(default_factory=list)  # what handlers chose to record
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, conn: socket.socket, data: bytes) -> None:
        """All of ``data``, in pieces, until it is sent or the server stops."""
        view = memoryview(data)
        while view:
            if self.stop.is_set():
                raise Stopped
            try:
                n = conn.send(view[: 1 << 16])
            except TimeoutError:
                continue
            with self._lock:
                self.sent += n
            view = view[n:]

    def recv(self, conn: socket.socket, size: int) -> bytes:
        """Some bytes (b"" at the client's close), waiting until the server stops."""
        while True:
            if self.stop.is_set():
                raise Stopped
            try:
                return conn.recv(size)
            except TimeoutError:
                continue

    def recv_exactly(self, conn: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.recv(conn, size - len(data))
            if not chunk:
                raise ConnectionError("the client closed")
            data += chunk
        return data

    def hold(self, conn: socket.socket) -> None:
        """Read and discard until the client closes or the server stops."""
        while self.recv(conn, 65536):
            pass

    def pause(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Stopped


Handler = Callable[[Server, socket.socket], None]


@contextmanager
def serve(handler: Handler, *, lifetime: float = LIFETIME_S) -> Iterator[Server]:
    """Listen on a free loopback port and give each connection to ``handler`` in a thread of
    its own; stop after ``lifetime`` seconds or on exit, whichever is first."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    server = Server(listener.getsockname()[1])
    threads: list[threading.Thread] = []

    def run(conn: socket.socket) -> None:
        conn.settimeout(0.05)  # every wait wakes up to look at server.stop
        with conn, suppress(Stopped, OSError, ConnectionError, ssl.SSLError):
            handler(server, conn)

    def accept() -> None:
        end = time.monotonic() + lifetime
        while not server.stop.is_set():
            if time.monotonic() > end:
                server.stop.set()
                break
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            server.connections += 1
            thread = threading.Thread(target=run, args=(conn,), daemon=True)
            threads.append(thread)
            thread.start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield server
    finally:
        server.stop.set()
        acceptor.join()
        for thread in threads:
            thread.join()
        listener.close()


# ---- certificates --------------------------------------------------------------------------
@dataclass(frozen=True)
class Certificates:
    """A CA (written to ``ca_file``, for --sslrootcert) and the server's TLS context."""

    ca_file: Path
    context: ssl.SSLContext


def certificates(folder: Path, *, names: Sequence[str] = ("localhost",)) -> Certificates:
    """A server certificate for ``names``, from a fresh CA of trustme's."""
    ca = trustme.CA()
    ca_file = folder / "hostile-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(*names).configure_cert(context)
    return Certificates(ca_file, context)


def self_signed(folder: Path, *, common_name: str) -> ssl.SSLContext:
    """A server context whose certificate signs itself, with any common name (control
    characters included)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "self-signed.pem", folder / "self-signed.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


def start_tls(server: Server, conn: socket.socket, context: ssl.SSLContext) -> ssl.SSLSocket:
    """The server side of a TLS handshake, bounded by the server's life."""
    conn.settimeout(5)
    tls = context.wrap_socket(conn, server_side=True)
    tls.settimeout(0.05)
    return tls


# ---- MySQL ---------------------------------------------------------------------------------
CLIENT_SSL = 0x800
CAPABILITIES = 0x0001 | 0x0008 | 0x0200 | 0x2000 | 0x8000 | 0x80000  # 4.1, auth, db, plugin
NO_TLS = 0


def mysql_packet(seq: int, payload: bytes) -> bytes:
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload


def mysql_greeting(version: bytes, *, tls: bool = True) -> bytes:
    """Protocol::HandshakeV10, sequence 0, offering mysql_native_password."""
    flags = CAPABILITIES | (CLIENT_SSL if tls else NO_TLS)
    payload = (
        b"\x0a"
        + version
        + b"\0"
        + struct.pack("<I", 7)
        + b"abcdefgh\0"
        + struct.pack("<H", flags & 0xFFFF)
        + bytes([45])
        + struct.pack("<H", 2)
        + struct.pack("<H", flags >> 16)
        + bytes([21])
        + bytes(10)
        + b"ijklmnopqrst\0"
        + b"mysql_native_password\0"
    )
    return mysql_packet(0, payload)


def mysql_error(code: int, message: bytes) -> Handler:
    """An ERR packet in place of the greeting (no SQLSTATE: the server's own before-greeting
    form), then hang up."""

    def handle(server: Server, conn: socket.socket) -> None:
        server.send(conn, mysql_packet(0, b"\xff" + struct.pack("<H", code) + message))

    return handle


def mysql_trickle(interval: float = 0.05) -> Handler:
    """A greeting whose header says 60,000 bytes (under any 64 KB cap), one byte per
    ``interval``, until the client leaves or the server stops."""

    def handle(server: Server, conn: socket.socket) -> None:
        data = mysql_packet(0, b"\x0a8.0.99" + b"x" * 59993)
        for i in range(len(data)):
            server.send(conn, data[i : i + 1])
            server.pause(interval)

    return handle


def mysql_flood(server: Server, conn: socket.socket) -> None:
    """A greeting of 16 MB - 1 (the most one packet can say), then continuation packets of the
    same size, for as long as the client reads."""
    chunk = b"\x0a" + b"A" * ((1 << 16) - 1)
    size = (1 << 24) - 1
    seq = 0
    while True:
        server.send(conn, struct.pack("<I", size)[:3] + bytes([seq]))
        seq = (seq + 1) % 256
        left = size
        while left:
            piece = chunk[: min(left, len(chunk))]
            server.send(conn, piece)
            left -= len(piece)


def _read_mysql(server: Server, conn: socket.socket) -> tuple[int, bytes]:
    header = server.recv_exactly(conn, 4)
    size = header[0] | header[1] << 8 | header[2] << 16
    return header[3], server.recv_exactly(conn, size)


def mysql_greeting_then_tls(version: bytes, context: ssl.SSLContext) -> Handler:
    """A greeting with ``version`` that offers TLS; an SSLRequest gets a TLS handshake, then the
    server holds the connection until the client leaves."""

    def handle(server: Server, conn: socket.socket) -> None:
        server.send(conn, mysql_greeting(version))
        try:
            _read_mysql(server, conn)
        except ConnectionError:
            return
        server.hold(start_tls(server, conn, context))

    return handle


def mysql_greeting_without_tls(version: bytes) -> Handler:
    def handle(server: Server, conn: socket.socket) -> None:
        server.send(conn, mysql_greeting(version, tls=False))
        server.hold(conn)

    return handle


def _lenenc(data: bytes) -> bytes:
    assert len(data) < 251
    return bytes([len(data)]) + data


MYSQL_OK = b"\x00\x00\x00\x02\x00\x00\x00"
MYSQL_EOF = b"\xfe\x00\x00\x02\x00"


def _result_set(rows: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
    """The payloads of a two-column text result set (Variable_name, Value), EOF-delimited."""
    columns = [
        b"".join(_lenenc(x) for x in (b"def", b"", b"", b"", name, name))
        + b"\x0c"
        + struct.pack("<HIBHB", 45, 256, 0xFD, 0, 0)
        + b"\0\0"
        for name in (b"Variable_name", b"Value")
    ]
    rows_out = [_lenenc(k) + _lenenc(v) for k, v in rows]
    return [b"\x02", *columns, MYSQL_EOF, *rows_out, MYSQL_EOF]


def mysql_impostor(context: ssl.SSLContext, *, secure_transport: bytes = b"ON") -> Handler:
    """A MySQL server that takes any password over TLS, then reports an encrypted session and
    ``require_secure_transport`` as told. Records each login's payload in ``received``."""

    def handle(server: Server, conn: socket.socket) -> None:
        server.send(conn, mysql_greeting(b"8.0.36"))
        _read_mysql(server, conn)  # the SSLRequest
        tls = start_tls(server, conn, context)
        seq, login = _read_mysql(server, tls)
        server.received.append(login)
        server.send(tls, mysql_packet(seq + 1, MYSQL_OK))
        while True:
            try:
                _, command = _read_mysql(server, tls)
            except ConnectionError:
                return
            if command[:1] != b"\x03":  # COM_QUIT or anything else: done
                return
            query = command[1:]
            if b"SESSION STATUS" in query:
                payloads = _result_set(
                    [(b"Ssl_cipher", b"TLS_AES_256_GCM_SHA384"), (b"Ssl_version", b"TLSv1.3")]
                )
            elif b"GLOBAL VARIABLES" in query:
                payloads = _result_set(
                    [
                        (b"require_secure_transport", secure_transport),
                        (b"tls_version", b"TLSv1.2,TLSv1.3"),
                        (b"version", b"8.0.36"),
                    ]
                )
            else:
                payloads = [MYSQL_OK]
            server.send(tls, b"".join(mysql_packet(i + 1, p) for i, p in enumerate(payloads)))

    return handle


# ---- PostgreSQL ----------------------------------------------------------------------------
def pg_message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def pg_error(message: bytes, *, code: bytes = b"28000") -> bytes:
    return pg_message(b"E", b"SFATAL\0C" + code + b"\0M" + message + b"\0\0")


HBA_REFUSAL = (
    b'no pg_hba.conf entry for host "127.0.0.1", user "app", database "appdb", no encryption'
)
READY = pg_message(b"Z", b"I")
# What RDS would answer verify's one query: an encrypted session, rds.force_ssl=1, a TLS 1.2
# floor, no sslinfo extension (one row of eight text columns, after the SET's completion).
RDS_ROW = (b"t", b"TLSv1.3", b"TLS_AES_256_GCM_SHA384", b"256", b"f", b"1", b"TLSv1.2", b"t")


def _row_description(count: int) -> bytes:
    field_ = struct.pack("!ihihih", 0, 0, 25, -1, -1, 0)
    return pg_message(
        b"T", struct.pack("!h", count) + b"".join(b"c%d\0" % i + field_ for i in range(count))
    )


def _data_row(values: Sequence[bytes]) -> bytes:
    return pg_message(
        b"D",
        struct.pack("!h", len(values)) + b"".join(struct.pack("!i", len(v)) + v for v in values),
    )


RDS_ANSWER = (
    pg_message(b"C", b"SET\0")
    + _row_description(len(RDS_ROW))
    + _data_row(RDS_ROW)
    + pg_message(b"C", b"SELECT 1\0")
    + READY
)


def _read_startup(server: Server, conn: socket.socket) -> bytes:
    (size,) = struct.unpack("!i", server.recv_exactly(conn, 4))
    return server.recv_exactly(conn, size - 4)


def _is_ssl_request(body: bytes) -> bool:
    return body == struct.pack("!i", SSL_REQUEST_CODE)


def pg_impostor(
    context: ssl.SSLContext, *, after_login: str = "answer", refusal: bytes = HBA_REFUSAL
) -> Handler:
    """Plaintext: refused with ``refusal`` as pg_hba.conf does. Over TLS: any start-up is let
    in (AuthenticationOk), and the query is answered as RDS would (``answer``), never
    (``silent``), or with one data row that never ends (``flood``)."""

    def handle(server: Server, conn: socket.socket) -> None:
        body = _read_startup(server, conn)
        if not _is_ssl_request(body):
            server.send(conn, pg_error(refusal))
            return
        server.send(conn, b"S")
        tls = start_tls(server, conn, context)
        try:
            _read_startup(server, tls)
        except ConnectionError:
            return  # the certificate's handshake: it hangs up here
        server.send(
            tls,
            pg_message(b"R", struct.pack("!i", 0))
            + pg_message(b"S", b"server_version\x0016.4\0")
            + pg_message(b"K", struct.pack("!ii", 1, 2))
            + READY,
        )
        query = server.recv(tls, 65536)
        server.received.append(query)
        if after_login == "answer":
            server.send(tls, RDS_ANSWER)
            server.hold(tls)
        elif after_login == "silent":
            server.hold(tls)
        elif after_login == "flood":
            server.send(tls, pg_message(b"C", b"SET\0") + _row_description(1))
            server.send(tls, b"D" + struct.pack("!ih", (1 << 30) - 8, 1))
            while True:
                server.send(tls, b"A" * (1 << 16))

    return handle


def pg_error_everywhere(message: bytes) -> Handler:
    """Every start-up, SSLRequest included, is answered with an ErrorResponse saying
    ``message``."""

    def handle(server: Server, conn: socket.socket) -> None:
        _read_startup(server, conn)
        server.send(conn, pg_error(message))

    return handle


def flood_at_login(context: ssl.SSLContext) -> Handler:
    """Over TLS, AuthenticationOk, then, before ReadyForQuery, one data row that never ends:
    libpq reads it inside PQconnectPoll, into a buffer it grows for a 1 GB message."""

    def handle(server: Server, conn: socket.socket) -> None:
        _read_startup(server, conn)  # the SSLRequest
        server.send(conn, b"S")
        tls = start_tls(server, conn, context)
        _read_startup(server, tls)
        server.send(tls, pg_message(b"R", struct.pack("!i", 0)))
        server.send(tls, b"D" + struct.pack("!ih", (1 << 30) - 8, 1))
        while True:
            server.send(tls, b"A" * (1 << 16))

    return handle
