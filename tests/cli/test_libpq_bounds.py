"""``libpq.connect``'s byte cap and watchdog, on the tests' real TLS PostgreSQL: every byte the
server sends is counted once, so an honest answer under the cap always passes however it is
cut into TLS records and libpq reads, and one over it is TooMuch; the watchdog acts only on the
socket it was armed with, whatever number that socket's descriptor has since been given to.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from rds_force_ssl.cli import libpq
from tests.cli import hostile
from tests.cli.pgserver import ADDRESS, APP_DB, APP_USER, HOST, PgServer

MB = 1 << 20
CAP = 16 * MB
# One value of 4 MB, and the same in 20,000 rows of 210 bytes (a pg_stat_activity of a busy
# server, as `clients` reads it).
ONE_ROW = "SELECT repeat('x', 4 * 1024 * 1024)"
MANY_ROWS = "SELECT repeat('x', 210) FROM generate_series(1, 20000)"


def params(pg: PgServer) -> dict[str, Any]:
    return {
        "host": HOST,
        "hostaddr": ADDRESS,
        "port": pg.port,
        "dbname": APP_DB,
        "user": APP_USER,
        "password": pg.app_password,
        "sslmode": "verify-full",
        "sslrootcert": str(pg.ca_file),
        "gssencmode": "disable",
    }


@pytest.fixture(params=["tcp_info", "fionread"])
def counting(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of counting: TCP_INFO (Linux), and where it cannot say, what libpq took from
    the kernel plus what waits there."""
    if request.param == "fionread":
        monkeypatch.setattr(libpq._Socket, "arrived", lambda self: None)
    return str(request.param)


@pytest.mark.parametrize(("sql", "size"), [(ONE_ROW, 4 * MB), (MANY_ROWS, 20000 * 210)])
def test_an_honest_answer_under_the_cap_always_passes(
    pg: PgServer, counting: str, sql: str, size: int
) -> None:
    for _ in range(5):
        with libpq.connect(params(pg), max_bytes=CAP) as session:
            rows = session.query(sql)
            counted = session.count()
        assert sum(len(value or "") for row in rows for value in row) == size
        # Each byte once: the answer, the login and TLS's own overhead, far from the cap (the
        # count that grew with each read reached several times the answer).
        assert counted < size + size // 4, counted
        if counting == "tcp_info":
            assert counted > size, counted


@pytest.mark.parametrize(
    ("counting", "sql"),
    [
        ("tcp_info", "SELECT repeat('x', 20 * 1024 * 1024)"),
        ("tcp_info", "SELECT repeat('x', 210) FROM generate_series(1, 100000)"),
        # Without TCP_INFO, what arrives while one libpq call reads is not counted: one value
        # of 20 MB, read in a few long calls, is bounded by the deadline alone; many rows are
        # read a few records per call, each counted once.
        ("fionread", "SELECT repeat('x', 210) FROM generate_series(1, 100000)"),
    ],
    indirect=["counting"],
)
def test_an_answer_over_the_cap_is_too_much(pg: PgServer, counting: str, sql: str) -> None:
    with (
        pytest.raises(libpq.TooMuch, match=f"more than {CAP} bytes"),
        libpq.connect(params(pg), max_bytes=CAP) as session,
    ):
        session.query(sql)


def test_the_watchdog_shuts_its_own_socket_never_the_one_now_under_its_number() -> None:
    """libpq closes its descriptor (a retry, the next address) and another connection of the
    process gets the same number: the watchdog, tripped at the deadline, shuts down the socket
    it was armed with, and the other one keeps working."""
    ours, ours_peer = socket.socketpair()
    other, other_peer = socket.socketpair()
    number = ours.fileno()
    watched = libpq._Socket(number)
    ours.detach()
    os.close(number)  # what libpq does with its own
    os.dup2(other.fileno(), number)  # another job's socket, under the same number
    session = libpq.Session(libpq.load(), None, deadline=time.monotonic() - 1)
    try:
        session._watchdog.arm(watched)
        assert session._watchdog.tripped.wait(30)
        assert session.broken == "deadline"
        assert isinstance(session.failed(""), libpq.Deadline)
        assert ours_peer.recv(1) == b""  # shut down
        with socket.socket(fileno=os.dup(number)) as reused:
            reused.sendall(b"still here")
        assert other_peer.recv(100) == b"still here"
    finally:
        session._watchdog.disarm()
        session.close()
        watched.close()
        os.close(number)
        for sock in (ours_peer, other, other_peer):
            sock.close()


def test_an_idle_session_has_no_watchdog_thread(pg: PgServer) -> None:
    """The watchdog thread runs only once a libpq call that reads is made, and the session's
    end stops it; libpq's socket stays non-blocking."""
    session = libpq.Session(libpq.load(), None)
    assert session._watchdog._thread is None
    session.close()
    with libpq.connect(params(pg)) as session:
        assert session.query("SELECT 1") == [("1",)]
        # Watching libpq's socket leaves it as libpq set it: reads that never wait.
        assert not os.get_blocking(session._lib.PQsocket(session._conn))
        thread = session._watchdog._thread
        assert thread is not None
        assert thread.is_alive()
    assert not thread.is_alive()


def test_a_flood_during_the_login_is_cut_at_the_byte_cap(tmp_path: Path) -> None:
    """The watchdog is armed over PQconnectPoll too, not only once the login is done."""
    certs = hostile.certificates(tmp_path)
    with hostile.serve(hostile.flood_at_login(certs.context)) as server:
        login = {
            "host": "localhost",
            "hostaddr": "127.0.0.1",
            "port": server.port,
            "user": APP_USER,
            "dbname": APP_DB,
            "sslmode": "verify-full",
            "sslrootcert": str(certs.ca_file),
            "gssencmode": "disable",
        }
        with (
            pytest.raises(libpq.TooMuch, match=f"more than {libpq.MAX_BYTES} bytes"),
            libpq.connect(login),
        ):
            pass
        assert not server.stop.is_set()  # the client ended by itself
    assert server.sent < 32 * libpq.MAX_BYTES, server.sent
