"""`verify --engine mysql` pointed at a port that is not MySQL: a MySQL server greets a client at
once, a PostgreSQL server waits for the client, so silence tells within seconds, long before the
connection timeout. Every server here listens on 127.0.0.1 only."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from rds_force_ssl import cli
from rds_force_ssl.cli import mywire, verify_mysql
from tests.cli.pgserver import ADDRESS, PgServer

PASSWORD = "not-for-" + "postgres-7c1e"
NOT_MYSQL = (
    "no MySQL greeting: this port does not look like MySQL/MariaDB; is it PostgreSQL? use "
    "--engine postgresql"
)
# Far below the timeout the MySQL side would otherwise wait for a greeting.
BOUND_S = min(verify_mysql.CONNECT_TIMEOUT_S, mywire.CONNECT_TIMEOUT_S) / 2


def verify_mysql_at(
    port: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *extra: str,
) -> tuple[int, str, str, float]:
    monkeypatch.setenv("MYSQL_PWD", PASSWORD)
    argv = ["verify", "--engine", "mysql", "--host", ADDRESS, "--port", str(port)]
    argv += ["--user", "app", "--sslmode", "require", "--allow-unverified-password", *extra]
    started = time.monotonic()
    code = cli.main(argv)
    elapsed = time.monotonic() - started
    captured = capsys.readouterr()
    assert PASSWORD not in captured.out + captured.err
    assert not re.search(r"\bb['\"]", captured.out + captured.err)
    return code, captured.out, captured.err, elapsed


@pytest.mark.postgres
def test_a_postgresql_port_is_named_at_once(
    pg: PgServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err, elapsed = verify_mysql_at(pg.port, monkeypatch, capsys)
    assert code == 2
    assert elapsed < BOUND_S
    assert out == ""
    assert err.startswith(f"rds-force-ssl: {NOT_MYSQL} ")
    assert "answered a PostgreSQL SSLRequest as PostgreSQL does" in err
    assert "fix: for a PostgreSQL endpoint, run verify with --engine postgresql" in err

    code, out, err, elapsed = verify_mysql_at(pg.port, monkeypatch, capsys, "--json")
    assert code == 2
    assert elapsed < BOUND_S
    report = json.loads(out)
    assert report["error"]["code"] == "not-mysql"
    assert report["error"]["message"].startswith(NOT_MYSQL)
    assert report["exit_code"] == 2


def test_a_port_that_stays_silent_is_not_mysql(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as silent:  # the kernel accepts; nobody ever answers
        silent.bind((ADDRESS, 0))
        silent.listen(8)
        code, out, err, elapsed = verify_mysql_at(silent.getsockname()[1], monkeypatch, capsys)
    assert code == 2
    assert elapsed < BOUND_S
    assert out == ""
    assert err.startswith(f"rds-force-ssl: {NOT_MYSQL} ")
    assert "nor answered a PostgreSQL SSLRequest" in err


@contextmanager
def greeting_late() -> Iterator[tuple[int, list[bytes]]]:
    """A server that greets only once the client has spoken (as a MySQL server slower than the
    greeting wait would be seen): the PostgreSQL question is what it receives first."""
    server = socket.socket()
    server.bind((ADDRESS, 0))
    server.listen(1)
    server.settimeout(5)
    received: list[bytes] = []

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            received.append(conn.recv(64))
            conn.sendall(b"\x4a\x00\x00\x00\x0a8.0.36\x00" + b"\x00" * 40)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], received
    finally:
        thread.join(5)
        server.close()


def test_a_late_greeting_is_mysql_after_all() -> None:
    with greeting_late() as (port, received), socket.create_connection((ADDRESS, port), 5) as sock:
        assert mywire.await_greeting(sock, wait=0.2) is False  # connect again, and wait
    assert received == [mywire.PG_SSL_REQUEST]


def test_a_greeting_in_time_is_left_unread() -> None:
    with socket.socket() as server:
        server.bind((ADDRESS, 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), 5) as sock:
            conn, _ = server.accept()
            with conn:
                conn.sendall(b"\x0b\x00\x00\x00\x0a8.0.36\x00\x00\x00\x00")
                assert mywire.await_greeting(sock, wait=5) is True
                sock.settimeout(5)
                assert mywire.read_packet(sock) == (0, b"\x0a8.0.36\x00\x00\x00\x00")
