"""libpq, loaded with ctypes, for the verified session of ``verify``.

Why libpq: it is what psql uses, so ``sslmode``, ``sslrootcert`` and ``channel_binding`` mean
exactly what they mean to psql, checks included. Why not through psycopg: importing psycopg costs
100-170 ms on a 2-core machine, more than the whole TLS login over a 10 ms link, and ``verify``
needs one connection and one query. (https://www.postgresql.org/docs/current/libpq-connect.html,
https://www.postgresql.org/docs/current/libpq-exec.html)

Which libpq: the one psycopg-binary carries (the ``[cli]`` extra installs it; its wheels vendor
libpq next to the package), else the system's, by the name the dynamic loader knows (Debian's
libpq5). Homebrew's libpq is keg-only, off the loader's path, so on macOS it is the extra's. It
must be 13 or later: verify passes channel_binding (13), gssencmode and tcp_user_timeout (12),
which an older libpq rejects as unknown options.
"""

from __future__ import annotations

import array
import ctypes
import glob
import importlib.util
import os
import selectors
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from functools import cache
from typing import Any

MIN_VERSION = 130000  # PQlibVersion of libpq 13.0
CONNECTION_OK = 0
CONNECTION_BAD = 1
PGRES_TUPLES_OK = 2
PGRES_COMMAND_OK = 1
# PostgresPollingStatusType
PGRES_POLLING_FAILED = 0
PGRES_POLLING_READING = 1
PGRES_POLLING_OK = 3
# Without a deadline of the caller's: as long as libpq's own connect_timeout default allows.
DEFAULT_SECONDS = 30.0
# What one connection may receive in all: a login and a one-row answer are a few KB. libpq
# itself accepts a data row up to 1 GB (and an error or notice only up to 30,000 bytes), and
# one PQconsumeInput reads for as long as data keeps coming.
MAX_BYTES = 1 << 20
# How often the watchdog looks at the connection while one libpq call that reads lasts (only
# then; most last microseconds): at loopback speed, a flood gets a few MB past the cap before
# the socket is shut (2-11 MB sent by the server for a 1 MB cap, most of it in kernel buffers).
WATCH_S = 0.005
# struct tcp_info (linux/tcp.h): tcpi_bytes_received, a __u64, since Linux 4.1.
TCPI_BYTES_RECEIVED = 128
# Where psycopg-binary's wheels put libpq: auditwheel/delvewheel (Linux, Windows) and delocate
# (macOS).
VENDORED = (
    ("psycopg_binary.libs", "libpq*"),
    (os.path.join("psycopg_binary", ".dylibs"), "libpq*"),
)
SYSTEM_NAMES = {"linux": ("libpq.so.5",), "darwin": ("libpq.5.dylib",), "win32": ("libpq.dll",)}


class LibpqError(Exception):
    """libpq's own message for a failed connection or query."""


def vendored() -> list[str]:
    """psycopg-binary's libpq, found without importing anything."""
    try:
        spec = importlib.util.find_spec("psycopg_binary")
    except (ImportError, ValueError):
        return []
    if spec is None or spec.origin is None:
        return []
    site = os.path.dirname(os.path.dirname(spec.origin))
    found: list[str] = []
    for folder, pattern in VENDORED:
        found += sorted(glob.glob(os.path.join(site, folder, pattern)))
    return found


def candidates() -> list[str]:
    return vendored() + list(SYSTEM_NAMES.get(sys.platform, ()))


@cache
def load() -> ctypes.CDLL:
    """The first libpq that loads; ImportError (with what was tried) if none does."""
    tried = []
    for path in candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError as err:
            tried.append(f"{path}: {err}")
            continue
        _declare(lib)
        return lib
    raise ImportError(
        "no libpq could be loaded (tried: " + ("; ".join(tried) or "nothing found") + ")",
        name="libpq",
    )


def _declare(lib: ctypes.CDLL) -> None:
    p, s, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    for name, restype, argtypes in (
        ("PQconnectdbParams", p, [ctypes.POINTER(s), ctypes.POINTER(s), i]),
        ("PQconnectStartParams", p, [ctypes.POINTER(s), ctypes.POINTER(s), i]),
        ("PQconnectPoll", i, [p]),
        ("PQsocket", i, [p]),
        ("PQsendQuery", i, [p, s]),
        ("PQconsumeInput", i, [p]),
        ("PQisBusy", i, [p]),
        ("PQgetResult", p, [p]),
        ("PQstatus", i, [p]),
        ("PQerrorMessage", s, [p]),
        ("PQfinish", None, [p]),
        ("PQexec", p, [p, s]),
        ("PQresultStatus", i, [p]),
        ("PQresultErrorMessage", s, [p]),
        ("PQntuples", i, [p]),
        ("PQnfields", i, [p]),
        ("PQgetvalue", s, [p, i, i]),
        ("PQgetisnull", i, [p, i, i]),
        ("PQclear", None, [p]),
        ("PQlibVersion", i, []),
    ):
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes


def version() -> int:
    """libpq's version, e.g. 180006 for 18.6."""
    return int(load().PQlibVersion())


def describe() -> dict[str, str]:
    """Which libpq serves, for the record: the file (or the name the loader resolved), and its
    version."""
    number = version()
    return {"path": str(load()._name), "version": f"{number // 10000}.{number % 10000}"}


Row = tuple[str | None, ...]


class Deadline(LibpqError, TimeoutError):
    """The connection or the query was not done by the deadline."""

    def __init__(self) -> None:
        super().__init__("no answer from the server by the deadline")


class TooMuch(LibpqError):
    """The server sent more than ``MAX_BYTES``."""


class _Socket:
    """libpq's socket, through a descriptor of our own (a dup taken by the thread that drives
    libpq, while libpq cannot close its own). Whatever libpq later does with its descriptor
    (closes it, opens another for the next address or a retry without TLS), this one refers to
    the same socket until it is closed: nothing done through it can reach a socket that another
    connection of the process was since given under the same number. ``identity`` (st_dev,
    st_ino) tells whether libpq's descriptor still refers to it."""

    def __init__(self, fd: int) -> None:
        # Not socket.dup(): it sets the copy blocking, and with it libpq's own socket (one
        # open file), whose reads would then wait for the server.
        if sys.platform == "win32":  # a socket handle is no C descriptor there
            borrowed = socket.socket(fileno=fd)
            try:
                self.sock = socket.fromshare(borrowed.share(os.getpid()))
            finally:
                borrowed.detach()  # libpq's handle stays libpq's
        else:
            self.sock = socket.socket(fileno=os.dup(fd))
        self.identity = _identity(self.sock.fileno())
        # Bytes libpq has taken from the kernel, where TCP_INFO cannot say what arrived.
        self.consumed = 0
        self.tcp_info = self.arrived() is not None

    def arrived(self) -> int | None:
        """What the kernel has received on this socket in all, each byte once, whether libpq
        has read it yet or not (TCP_INFO's tcpi_bytes_received, Linux 4.1+); None where it
        cannot say (another system, a Unix-domain socket)."""
        if not hasattr(socket, "TCP_INFO"):
            return None
        try:
            info = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
        except OSError:
            return None
        if len(info) < TCPI_BYTES_RECEIVED + 8:
            return None
        return int(struct.unpack_from("=Q", info, TCPI_BYTES_RECEIVED)[0])

    def count(self) -> int:
        """What this socket has received, each byte counted once: TCP_INFO where it says;
        elsewhere what libpq took (``consumed``) plus what waits in the kernel (FIONREAD)."""
        arrived = self.arrived() if self.tcp_info else None
        if arrived is None:
            return self.consumed + _pending(self.sock.fileno())
        return arrived

    def shut(self) -> None:
        """Shut the connection down under libpq (which then reads end-of-file and fails),
        without closing its descriptor, which libpq still owns."""
        with suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.sock.close()


def _identity(fd: int) -> tuple[int, int]:
    """The socket ``fd`` refers to, as (st_dev, st_ino); where fstat cannot say (a socket
    handle on Windows), the number alone stands for it."""
    try:
        status = os.fstat(fd)
    except OSError:
        return -1, fd
    return status.st_dev, status.st_ino


class _Watchdog:
    """Why this thread exists: one PQconsumeInput or PQconnectPoll can read for as long as data
    keeps coming (libpq loops on a long message, into a buffer it grows up to 1 GB), and the
    thread that made the call is inside C until it returns: only another thread can end it, by
    shutting the socket down under libpq at the deadline or past the byte cap.

    It is armed only over those calls (``Session._read``), with the ``_Socket`` of the call,
    never with a descriptor number; otherwise it sleeps, and the driving thread bounds its own
    waits (``Session.wait``). Armed, it looks every ``WATCH_S``, starting ``WATCH_S`` after the
    call began (the driving thread has just looked): a call of a few microseconds, as almost
    every call is, costs one wake-up, and an idle connection none. Over PQconnectPoll too: a
    server that says AuthenticationOk and then floods one data row keeps PQconnectPoll reading
    (without the watchdog there, 137 and 672 MB reached the wire in 2 runs of 5 against a
    1 MB cap; tests/cli/test_libpq_bounds.py)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._cond = threading.Condition()
        self._armed: _Socket | None = None
        self._calls = 0  # one more per arming: the thread tells a new call from the same one
        self._stopped = False
        self._thread: threading.Thread | None = None
        self.tripped = threading.Event()  # set once it has shut the socket

    def arm(self, sock: _Socket) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True)
                self._thread.start()
            self._armed = sock
            self._calls += 1
            self._cond.notify()

    def disarm(self) -> None:
        with self._cond:
            self._armed = None

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._armed = None
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        session = self._session
        seen = 0
        with self._cond:
            while not self._stopped:
                sock = self._armed
                if sock is None:
                    self._cond.wait()
                    continue
                left = session.deadline - time.monotonic()
                if left <= 0:
                    self._trip(sock, "deadline")
                elif seen == self._calls and session.count() > session.max_bytes:
                    self._trip(sock, "bytes")
                else:
                    seen = self._calls
                    self._cond.wait(min(left, WATCH_S))

    def _trip(self, sock: _Socket, reason: str) -> None:
        self._session.broken = reason
        sock.shut()
        self._armed = None
        self.tripped.set()


class Session:
    """A connection. Every wait ends by ``deadline`` (time.monotonic()): libpq is driven
    without blocking (PQconnectPoll, PQsendQuery, PQconsumeInput) and Python waits on its
    socket, so that a server which accepts the login and then never answers, or trickles its
    answer, cannot hold the caller; and no more than ``max_bytes`` are read from it, each byte
    the server sends counted once (``count``).

    One thread drives libpq (the caller's); a watchdog thread (``_Watchdog``, which says why
    it exists) is armed over each libpq call that reads."""

    def __init__(
        self,
        lib: ctypes.CDLL,
        conn: Any,
        *,
        deadline: float | None = None,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self._lib = lib
        self._conn = conn
        self.deadline = time.monotonic() + DEFAULT_SECONDS if deadline is None else deadline
        self.max_bytes = max_bytes
        self.broken: str | None = None  # "deadline" or "bytes", once the watchdog shut it
        self._socket: _Socket | None = None  # libpq's current socket, through our own dup
        self._earlier = 0  # what the sockets libpq has since left received
        self._watchdog = _Watchdog(self)

    def count(self) -> int:
        """What the server has sent on this connection so far, each byte once, TLS records
        included: counted as it arrives, before libpq reads it."""
        sock = self._socket
        return self._earlier + (sock.count() if sock is not None else 0)

    def _follow(self) -> _Socket | None:
        """The ``_Socket`` of libpq's current descriptor (None if it has none), taken anew when
        libpq has moved to another socket. Only the driving thread calls this, between libpq
        calls, when libpq's descriptor cannot change under it."""
        fd = self._lib.PQsocket(self._conn)
        if fd < 0:
            return None
        sock = self._socket
        if sock is not None and _identity(fd) == sock.identity:
            return sock
        if sock is not None:
            self._earlier += sock.count()
            sock.close()
        self._socket = sock = _Socket(fd)
        return sock

    def _read(self, call: Any) -> int:
        """One libpq call that reads (PQconnectPoll, PQconsumeInput), with the watchdog armed
        over it; where TCP_INFO cannot count, what it took from the kernel is counted here."""
        sock = self._follow()
        if sock is None:
            return int(call(self._conn))
        fd = sock.sock.fileno()
        before = 0 if sock.tcp_info else _pending(fd)
        self._watchdog.arm(sock)
        try:
            return int(call(self._conn))
        finally:
            self._watchdog.disarm()
            if not sock.tcp_info:
                # What arrived during the call and was read in it is missed here; the
                # deadline bounds that.
                sock.consumed += max(0, before - _pending(fd))

    def close(self) -> None:
        """The watchdog first: it must not touch a finished connection."""
        self._watchdog.stop()
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def failed(self, what: str) -> LibpqError:
        """libpq's error, or the watchdog's reason when it shut the socket."""
        if self.broken == "deadline":
            return Deadline()
        if self.broken == "bytes":
            return TooMuch(f"the server sent more than {self.max_bytes} bytes")
        return LibpqError(_message(self._lib, self._conn, what))

    def wait(self, *, write: bool) -> None:
        """Until libpq's socket is ready to read (or write), or Deadline; TooMuch once the
        server has sent more than ``max_bytes``."""
        left = self.deadline - time.monotonic()
        if self.broken:
            raise self.failed("")
        sock = self._follow()
        if sock is None:
            raise LibpqError(_message(self._lib, self._conn, "the connection has no socket"))
        if left <= 0:
            raise Deadline
        with selectors.DefaultSelector() as selector:
            selector.register(sock.sock, selectors.EVENT_WRITE if write else selectors.EVENT_READ)
            if not selector.select(left):
                raise Deadline
        if not write and self.count() > self.max_bytes:
            raise TooMuch(f"the server sent more than {self.max_bytes} bytes")

    def query(self, sql: str) -> list[Row]:
        """Rows of the last statement (one simple-query message may hold several), every value
        as text (None for NULL). Deadline if the answer is not complete by the deadline."""
        lib, conn = self._lib, self._conn
        if not lib.PQsendQuery(conn, sql.encode()):
            raise self.failed("could not send the query")
        rows: list[Row] = []
        error: str | None = None
        while True:
            while lib.PQisBusy(conn):
                self.wait(write=False)
                if not self._read(lib.PQconsumeInput):
                    raise self.failed("the connection failed")
            result = lib.PQgetResult(conn)
            if not result:
                break
            try:
                status = lib.PQresultStatus(result)
                if status == PGRES_TUPLES_OK:
                    rows = _rows(lib, result)
                elif status != PGRES_COMMAND_OK and error is None:
                    said = lib.PQresultErrorMessage(result) or b"query failed"
                    error = said.decode(errors="replace").strip()
            finally:
                lib.PQclear(result)
        if self.broken:
            raise self.failed("")
        if error is not None:
            raise LibpqError(error)
        return rows


def _rows(lib: ctypes.CDLL, result: Any) -> list[Row]:
    return [
        tuple(
            None
            if lib.PQgetisnull(result, r, c)
            else lib.PQgetvalue(result, r, c).decode(errors="replace")
            for c in range(lib.PQnfields(result))
        )
        for r in range(lib.PQntuples(result))
    ]


def _message(lib: ctypes.CDLL, conn: Any, default: str) -> str:
    said = lib.PQerrorMessage(conn) or default.encode()
    return str(said.decode(errors="replace").strip() or default)


def _pending(fd: int) -> int:
    """Bytes waiting in the kernel for ``fd`` (FIONREAD); 0 where the call does not exist."""
    try:
        import fcntl
        import termios
    except ImportError:  # Windows: the deadline alone bounds what arrives
        return 0
    buffer = array.array("i", [0])
    try:
        fcntl.ioctl(fd, termios.FIONREAD, buffer)
    except OSError:
        return 0
    return int(buffer[0])


@contextmanager
def connect(
    params: Mapping[str, object],
    *,
    deadline: float | None = None,
    max_bytes: int = MAX_BYTES,
) -> Iterator[Session]:
    """A connection with these libpq parameters (PQconnectStartParams), closed on exit. The
    login and every query on it end by ``deadline`` (time.monotonic(); default
    ``DEFAULT_SECONDS`` from now), or raise ``Deadline``; libpq's connect_timeout does not
    apply. The session reads no more than ``max_bytes`` (``TooMuch``)."""
    lib = load()
    keys = [k.encode() for k in params] + [None]
    values = [str(v).encode() for v in params.values()] + [None]
    conn = lib.PQconnectStartParams(
        (ctypes.c_char_p * len(keys))(*keys), (ctypes.c_char_p * len(values))(*values), 0
    )
    if not conn:
        raise LibpqError("libpq could not allocate a connection")
    session = Session(lib, conn, deadline=deadline, max_bytes=max_bytes)
    try:
        if lib.PQstatus(conn) == CONNECTION_BAD:
            raise session.failed("connection failed")
        # libpq's own protocol: wait for writing first, then as each poll says.
        polled = PGRES_POLLING_READING + 1  # PGRES_POLLING_WRITING
        while polled != PGRES_POLLING_OK:
            if polled == PGRES_POLLING_FAILED:
                raise session.failed("connection failed")
            session.wait(write=polled != PGRES_POLLING_READING)
            polled = session._read(lib.PQconnectPoll)
        yield session
    finally:
        session.close()
        lib.PQfinish(conn)
