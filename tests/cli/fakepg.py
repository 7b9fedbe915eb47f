"""A tiny fake of PostgreSQL's start-up, listening on many loopback ports at once, for the probe's
scale tests (a real server per endpoint would cost a second and 30 MB each; the verdict tests
use the real server). One thread serves every port with a selector.

Each port plays one part: ``refuse`` answers the SSL rule's ErrorResponse, ``password`` asks for
a cleartext password and records whatever the client sends next, ``silent`` never answers, and
``close`` hangs up at once.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

REFUSAL = (
    b"SFATAL\0C28000\0M"
    b'no pg_hba.conf entry for host "127.0.0.1", user "u", database "d", no encryption\0\0'
)
PARTS = ("refuse", "password", "silent", "close")


def _message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


ANSWERS = {
    "refuse": _message(b"E", REFUSAL),
    "password": _message(b"R", struct.pack("!i", 3)),
}


@dataclass
class _Client:
    part: str
    inbox: bytearray = field(default_factory=bytearray)
    answered: bool = False


@dataclass
class FakeFleet:
    parts: Mapping[int, str]  # port -> part
    startups: list[bytes] = field(default_factory=list)  # every StartupMessage received
    after_answer: list[bytes] = field(default_factory=list)  # bytes a client sent afterwards
    _stop: threading.Event = field(default_factory=threading.Event)


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
            fleet.startups.append(bytes(client.inbox[:length]))
            del client.inbox[:length]
            client.answered = True
            if client.part in ANSWERS:
                sock.sendall(ANSWERS[client.part])


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
    fleet = FakeFleet(mapping)
    thread = threading.Thread(target=_serve, args=(fleet, selector), daemon=True)
    thread.start()
    try:
        yield fleet
    finally:
        fleet._stop.set()
        thread.join()
        for key in list(selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        selector.close()
