"""A tiny fake of PostgreSQL's start-up, listening on many loopback ports at once, for the probe's
scale tests (a real server per endpoint would cost a second and 30 MB each; the verdict tests
use the real server). One thread serves every port with a selector.

Each port plays one part: ``refuse`` is an SSL-only server (it refuses a plaintext start-up as
pg_hba.conf does, and over TLS asks for SCRAM: each TLS connection gets a thread of its own),
``password`` asks for a cleartext password, ``silent`` never answers, and ``close`` hangs up at
once. Whatever a client sends after the server's answer is recorded in ``after_answer``, including
what is still unread when the fleet stops.
"""

from __future__ import annotations

import selectors
import socket
import ssl
import struct
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import trustme

REFUSAL = (
    b"SFATAL\0C28000\0M"
    b'no pg_hba.conf entry for host "127.0.0.1", user "u", database "d", no encryption\0\0'
)
PARTS = ("refuse", "password", "silent", "close")
SSL_REQUEST_CODE = 80877103


def _message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


ANSWERS = {
    "refuse": _message(b"E", REFUSAL),
    "password": _message(b"R", struct.pack("!i", 3)),
}
SCRAM_REQUEST = _message(b"R", struct.pack("!i", 10) + b"SCRAM-SHA-256\0\0")


@dataclass
class _Client:
    part: str
    inbox: bytearray = field(default_factory=bytearray)
    answered: bool = False


@dataclass
class FakeFleet:
    parts: Mapping[int, str]  # port -> part
    tls: ssl.SSLContext
    startups: list[bytes] = field(default_factory=list)  # every StartupMessage received
    ssl_requests: int = 0
    after_answer: list[bytes] = field(default_factory=list)  # bytes a client sent afterwards
    _stop: threading.Event = field(default_factory=threading.Event)
    _tls_threads: list[threading.Thread] = field(default_factory=list)


def _read_message(sock: ssl.SSLSocket) -> bytes:
    data = b""
    while len(data) < 4 or len(data) < struct.unpack("!i", data[:4])[0]:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed before a whole start-up")
        data += chunk
    return data


def _serve_tls(fleet: FakeFleet, sock: socket.socket) -> None:
    """An SSL-only server's TLS side: the handshake, the start-up, a SCRAM request, then read
    until the client hangs up."""
    sock.setblocking(True)
    sock.settimeout(10)
    try:
        with fleet.tls.wrap_socket(sock, server_side=True) as tls:
            fleet.startups.append(_read_message(tls))
            tls.sendall(SCRAM_REQUEST)
            rest = b""
            while chunk := tls.recv(4096):
                rest += chunk
            if rest:
                fleet.after_answer.append(rest)
    except (OSError, ConnectionError):
        pass


def _serve(fleet: FakeFleet, selector: selectors.BaseSelector) -> None:
    while not fleet._stop.is_set():
        for key, _ in selector.select(timeout=0.05):
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            if isinstance(key.data, str):  # a listening socket: its data is the part
                conn, _ = sock.accept()
                if key.data == "close":
                    conn.close()
                    continue
                conn.setblocking(False)
                selector.register(conn, selectors.EVENT_READ, _Client(key.data))
                continue
            client: _Client = key.data
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                if client.answered and client.inbox:
                    fleet.after_answer.append(bytes(client.inbox))
                selector.unregister(sock)
                sock.close()
                continue
            client.inbox += chunk
            if client.answered or len(client.inbox) < 4:
                continue
            (length,) = struct.unpack("!i", client.inbox[:4])
            if len(client.inbox) < length:
                continue
            message = bytes(client.inbox[:length])
            del client.inbox[:length]
            if client.part == "refuse" and message[4:8] == struct.pack("!i", SSL_REQUEST_CODE):
                fleet.ssl_requests += 1
                selector.unregister(sock)
                sock.sendall(b"S")
                thread = threading.Thread(target=_serve_tls, args=(fleet, sock), daemon=True)
                fleet._tls_threads.append(thread)
                thread.start()
                continue
            fleet.startups.append(message)
            client.answered = True
            if client.part in ANSWERS:
                sock.sendall(ANSWERS[client.part])
    _drain(fleet, selector)


def _drain(fleet: FakeFleet, selector: selectors.BaseSelector) -> None:
    """Record what answered clients sent that the loop had not read yet when it stopped (the
    clients have all hung up by then, so it is all in the sockets' buffers)."""
    for key in list(selector.get_map().values()):
        if not isinstance(key.data, _Client) or not key.data.answered:
            continue
        sock: socket.socket = key.fileobj  # type: ignore[assignment]
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            key.data.inbox += chunk
        if key.data.inbox:
            fleet.after_answer.append(bytes(key.data.inbox))


def _server_context() -> ssl.SSLContext:
    cert = trustme.CA().issue_cert("127.0.0.1")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    return context


@contextmanager
def fake_fleet(parts: list[str]) -> Iterator[FakeFleet]:
    """Listen on one free loopback port per entry of ``parts``."""
    selector = selectors.DefaultSelector()
    listeners = []
    mapping = {}
    for part in parts:
        assert part in PARTS, part
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, part)
        listeners.append(sock)
        mapping[sock.getsockname()[1]] = part
    fleet = FakeFleet(mapping, _server_context())
    thread = threading.Thread(target=_serve, args=(fleet, selector), daemon=True)
    thread.start()
    try:
        yield fleet
    finally:
        fleet._stop.set()
        thread.join()
        for tls_thread in fleet._tls_threads:
            tls_thread.join()
        for key in list(selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        selector.close()
