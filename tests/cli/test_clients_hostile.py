"""`rds-force-ssl clients` against hostile servers of the tests' own (tests/cli/hostile.py), on
loopback: a server that logs the listing in and then never answers, or answers without end, or
answers something else, must end the command within its deadline and its byte cap, with exit 2
and a message that says which, and nothing the server wrote reaching the terminal raw.

A server that is still serving when the command returns shows that the client ended by itself
(each server stops on its own only after its lifetime); no test reads a clock.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pymysql
import pytest

from rds_force_ssl import cli
from rds_force_ssl.cli import clients as logic
from rds_force_ssl.cli import wire
from rds_force_ssl.cli.libpq import MAX_BYTES as PG_MAX_BYTES
from rds_force_ssl.cli.verify_mysql import MAX_SESSION_BYTES as MYSQL_LOGIN_BYTES
from rds_force_ssl.cli.wire import Bounds
from tests.cli import hostile
from tests.cli.conftest import Run

PASSWORD = "hostile-test-password"  # what the impostors may receive
FORGED = b"\x1b]0;owned\x07\x1b[2J\r\nverdict: NO PLAINTEXT CLIENT (exit 0)\xe2\x80\xae"


@pytest.fixture
def run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Callable[..., Run]:
    """``rds-force-ssl clients`` in-process, with the password in both engines' variables, no
    CA file of libpq's own, and the output checked for what must never be there."""
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    monkeypatch.setenv("MYSQL_PWD", PASSWORD)
    monkeypatch.delenv("PGSSLROOTCERT", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.postgresql/root.crt

    def go(*argv: str) -> Run:
        code = cli.main(["clients", "--user", "app", "--host", "localhost", *argv])
        captured = capsys.readouterr()
        text = captured.out + captured.err
        assert PASSWORD not in text
        assert "internal error" not in text, text
        # Nothing a server sent may reach the terminal as a control character.
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u202e]", text), text
        return Run(code, captured.out, captured.err)

    return go


@pytest.fixture
def certs(tmp_path: Path) -> hostile.Certificates:
    return hostile.certificates(tmp_path)


def pg(port: int, certs: hostile.Certificates, *extra: str) -> tuple[str, ...]:
    return ("--port", str(port), "--dbname", "appdb", "--sslrootcert", str(certs.ca_file), *extra)


def mysql(port: int, certs: hostile.Certificates, *extra: str) -> tuple[str, ...]:
    return ("--engine", "mysql", "--port", str(port), "--sslrootcert", str(certs.ca_file), *extra)


def error(done: Run) -> dict[str, str]:
    found: dict[str, str] = json.loads(done.out)["error"]
    return found


# ---- PostgreSQL ----------------------------------------------------------------------------
def test_a_postgres_that_never_answers_the_list_ends_at_the_deadline(
    run: Callable[..., Run], certs: hostile.Certificates
) -> None:
    """The login succeeds over verified TLS, the query goes out, and no answer ever comes
    (statement_timeout is the server's to keep): the connection's deadline ends it."""
    silent = hostile.pg_impostor(certs.context, after_login="silent")
    # Its life is shorter than libpq's own 30 s default deadline, far longer than --timeout 2.
    with hostile.serve(silent, lifetime=20) as server:
        done = run(*pg(server.port, certs, "--timeout", "2", "--json"))
        assert not server.stop.is_set()  # the command ended by itself
    assert any(b"FROM pg_stat_activity" in q for q in server.received)  # logged in, asked
    assert done.code == 2, done.out
    said = error(done)
    assert said["code"] == "timeout"
    assert said["message"] == (
        f"the session list of localhost:{server.port} did not finish within --timeout 2 s"
    )


def test_a_postgres_answer_that_never_ends_is_cut_at_the_byte_cap(
    run: Callable[..., Run], certs: hostile.Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One data row that says 1 GB and keeps coming: cut at the cap the session limit sets,
    and the view is incomplete. (A lower session limit keeps the flood short; its cap is still
    above libpq's default, to show it is the one used.)"""
    monkeypatch.setattr(logic, "MAX_SESSIONS", 3000)
    cap = logic.pg_answer_bytes(3000)
    assert cap > PG_MAX_BYTES
    with hostile.serve(hostile.pg_impostor(certs.context, after_login="flood")) as server:
        done = run(*pg(server.port, certs, "--json"))
        assert not server.stop.is_set()
    assert done.code == 2, done.out
    report = json.loads(done.out)
    assert report["complete"] is False
    assert report["groups"] == []
    assert report["notes"][0].startswith(
        f"the server sent more than {cap} bytes, more than 3000 sessions' rows can take: the "
        "connection was cut and nothing of the answer is shown"
    )
    assert report["verdict"] == "INCOMPLETE: no plaintext client among the 0 session(s) seen"
    # What the server got onto the wire: the cap and what the two kernels' buffers hold, where
    # libpq alone would take the row in up to its 1 GB message limit.
    assert server.sent < 32 * cap, server.sent


def test_the_flood_under_the_default_cap_in_the_table(
    run: Callable[..., Run], certs: hostile.Certificates
) -> None:
    cap = logic.pg_answer_bytes(logic.MAX_SESSIONS)
    with hostile.serve(hostile.pg_impostor(certs.context, after_login="flood")) as server:
        done = run(*pg(server.port, certs))
        assert not server.stop.is_set()
    assert done.code == 2, done.out
    assert f"note: the server sent more than {cap} bytes, more than 100000 sessions'" in done.out
    assert done.out.splitlines()[-1] == (
        "verdict: INCOMPLETE: no plaintext client among the 0 session(s) seen (exit 2)"
    )
    assert server.sent < 2 * cap, server.sent


def test_a_postgres_answer_of_another_shape_is_not_counted(
    run: Callable[..., Run], certs: hostile.Certificates
) -> None:
    """The impostor answers with verify's eight columns: not read as sessions."""
    with hostile.serve(hostile.pg_impostor(certs.context, after_login="answer")) as server:
        done = run(*pg(server.port, certs, "--json"))
    assert done.code == 2, done.out
    said = error(done)
    assert said["code"] == "unexpected-answer"
    assert said["message"] == (
        f"localhost:{server.port} answered the session list with rows of 8 value(s), where 10 "
        "values a row were asked for: nothing of it is counted"
    )


def refused_over_tls(context: ssl.SSLContext, message: bytes) -> hostile.Handler:
    """A PostgreSQL server that takes the SSLRequest, and answers the start-up over TLS with an
    ErrorResponse saying ``message`` (as pg_hba.conf's refusal would)."""

    def handle(server: hostile.Server, conn: socket.socket) -> None:
        server.recv_exactly(conn, 8)  # the SSLRequest
        server.send(conn, b"S")
        tls = hostile.start_tls(server, conn, context)
        (size,) = struct.unpack("!i", server.recv_exactly(tls, 4))
        server.recv_exactly(tls, size - 4)  # the start-up
        server.send(tls, hostile.pg_error(message))

    return handle


def test_a_postgres_error_cannot_write_to_the_terminal(
    run: Callable[..., Run], certs: hostile.Certificates
) -> None:
    with hostile.serve(refused_over_tls(certs.context, FORGED)) as server:
        done = run(*pg(server.port, certs))
    assert done.code == 2
    assert done.out == ""
    assert done.err.startswith(
        r"rds-force-ssl: could not read the sessions (sslmode=verify-full): \x1b]0;owned\x07"
        r"\x1b[2J verdict: NO PLAINTEXT CLIENT (exit 0)\u202e"  # (its line break: a space)
    ), done.err


# ---- MySQL and MariaDB ---------------------------------------------------------------------
def test_a_trickled_mysql_greeting_ends_at_the_deadline(
    run: Callable[..., Run], certs: hostile.Certificates
) -> None:
    with hostile.serve(hostile.mysql_trickle()) as server:
        done = run(*mysql(server.port, certs, "--timeout", "1", "--json"))
        assert not server.stop.is_set()
    assert done.code == 2, done.out
    said = error(done)
    assert said["code"] == "timeout"
    assert said["message"].endswith("did not finish within --timeout 1 s")


def test_a_chain_of_16_mb_mysql_packets_before_the_login_is_cut_at_the_logins_cap(
    run: Callable[..., Run], certs: hostile.Certificates
) -> None:
    """Before TLS, unverified: the login keeps verify's cap, far below the listing's."""
    assert logic.mysql_answer_bytes(logic.MYSQL_MAX_SESSIONS) > MYSQL_LOGIN_BYTES
    with hostile.serve(hostile.mysql_flood) as server:
        done = run(*mysql(server.port, certs, "--json"))
        assert not server.stop.is_set()
    assert done.code == 2, done.out
    report = json.loads(done.out)
    assert report["complete"] is False
    assert report["notes"][0].startswith(f"the server sent more than {MYSQL_LOGIN_BYTES} bytes")
    assert server.sent < 32 * MYSQL_LOGIN_BYTES, server.sent


def mysql_flood_after_login(context: ssl.SSLContext) -> hostile.Handler:
    """A MySQL server that lets any login in over TLS, answers OK to what the driver sends
    (SET NAMES), then answers the session list with a chain of 16 MB packets, for as long as the
    client reads. Records each query in ``received``."""

    def read(server: hostile.Server, tls: socket.socket) -> tuple[int, bytes]:
        header = server.recv_exactly(tls, 4)
        return header[3], server.recv_exactly(tls, header[0] | header[1] << 8 | header[2] << 16)

    def handle(server: hostile.Server, conn: socket.socket) -> None:
        server.send(conn, hostile.mysql_greeting(b"8.0.36"))
        read(server, conn)  # the SSLRequest
        tls = hostile.start_tls(server, conn, context)
        seq, _ = read(server, tls)  # the login
        server.send(tls, hostile.mysql_packet(seq + 1, hostile.MYSQL_OK))
        while True:
            _, query = read(server, tls)
            server.received.append(query)
            if b"performance_schema.threads" in query:
                break
            server.send(tls, hostile.mysql_packet(1, hostile.MYSQL_OK))
        chunk = b"A" * (1 << 16)
        size = (1 << 24) - 1
        seq = 1  # the answer's first packet
        while True:
            server.send(tls, struct.pack("<I", size)[:3] + bytes([seq]))
            seq = (seq + 1) % 256
            left = size
            while left:
                server.send(tls, chunk[: min(left, len(chunk))])
                left -= min(left, len(chunk))

    return handle


def test_a_chain_of_16_mb_mysql_packets_for_the_list_is_cut_at_the_lists_cap(
    run: Callable[..., Run], certs: hostile.Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a verified login: the listing's cap. (A lower session limit keeps the flood
    short; its cap is still above the login's, to show it is the one used.)"""
    monkeypatch.setattr(logic, "MYSQL_MAX_SESSIONS", 1000)
    cap = logic.mysql_answer_bytes(1000)
    assert cap > MYSQL_LOGIN_BYTES
    with hostile.serve(mysql_flood_after_login(certs.context)) as server:
        done = run(*mysql(server.port, certs, "--json"))
        assert not server.stop.is_set()
    assert any(b"performance_schema.threads" in q for q in server.received)  # the listing
    assert done.code == 2, done.out
    report = json.loads(done.out)
    assert report["complete"] is False
    assert report["notes"][0].startswith(f"the server sent more than {cap} bytes")
    assert server.sent < 32 * cap, server.sent


class RecordedBounds(Bounds):
    """wire.Bounds that keeps every instance made, to read what a connection received."""

    made: ClassVar[list[Bounds]] = []

    def __init__(self, *, deadline: float, max_bytes: int) -> None:
        super().__init__(deadline=deadline, max_bytes=max_bytes)
        RecordedBounds.made.append(self)


def test_the_default_mysql_flood_after_login_stays_under_the_memory_budget(
    run: Callable[..., Run], certs: hostile.Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the default session limit: the listing's cap is under 64 MB (what the process
    holds of it as Python strings stays within about 128 MB), the flood ends in the
    incomplete view, and what the connection received stays within the cap (and one read)."""
    cap = logic.mysql_answer_bytes(logic.MYSQL_MAX_SESSIONS)
    assert cap < 64 * 1024 * 1024
    RecordedBounds.made.clear()
    monkeypatch.setattr(wire, "Bounds", RecordedBounds)
    with hostile.serve(mysql_flood_after_login(certs.context)) as server:
        done = run(*mysql(server.port, certs, "--json"))
        assert not server.stop.is_set()
    assert done.code == 2, done.out
    report = json.loads(done.out)
    assert report["complete"] is False
    assert report["groups"] == []
    assert report["notes"][0].startswith(
        f"the server sent more than {cap} bytes, more than {logic.MYSQL_MAX_SESSIONS} "
        "sessions' rows can take"
    )
    (bounds,) = RecordedBounds.made
    assert (bounds.broken, bounds.max_bytes) == ("bytes", cap)
    assert cap < bounds.received <= cap + (1 << 20), bounds.received


def test_the_mysql_login_names_the_clients_command(
    run: Callable[..., Run], certs: hostile.Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The program name the server shows for the listing's own session (its connection
    attribute) is the command's, not verify's."""
    names: list[object] = []
    connect = pymysql.connect

    def recording(*args: Any, **kwargs: Any) -> Any:
        names.append(kwargs.get("program_name"))
        return connect(*args, **kwargs)

    monkeypatch.setattr(pymysql, "connect", recording)
    with hostile.serve(hostile.mysql_impostor(certs.context)) as server:
        run(*mysql(server.port, certs, "--json"))
    assert server.received  # it logged in
    assert names == ["rds-force-ssl clients"]


def test_a_mysql_impostor_without_result_sets_is_not_read_as_no_session(
    run: Callable[..., Run], certs: hostile.Certificates
) -> None:
    """It answers every query with OK: no result set is no session list (not "performance
    schema off", not "no client")."""
    with hostile.serve(hostile.mysql_impostor(certs.context)) as server:
        done = run(*mysql(server.port, certs, "--json"))
    assert len(server.received) == 1  # it did log in
    assert done.code == 2, done.out
    said = error(done)
    assert said["code"] == "unexpected-answer"
    assert said["message"].startswith(
        f"localhost:{server.port} answered the session list with no result set"
    )


def test_a_mysql_error_before_the_greeting_cannot_write_to_the_terminal(
    run: Callable[..., Run], certs: hostile.Certificates
) -> None:
    with hostile.serve(hostile.mysql_error(1130, FORGED)) as server:
        done = run(*mysql(server.port, certs))
    assert done.code == 2
    assert done.err.startswith(
        r"rds-force-ssl: could not read the sessions (sslmode=verify-full): \x1b]0;owned\x07"
        r"\x1b[2J\x0d\x0averdict: NO PLAINTEXT CLIENT (exit 0)\u202e (MySQL error 1130)"
    ), done.err


# ---- the per-row bounds behind the caps ------------------------------------------------------
def test_the_widest_postgres_row_fits_its_bound() -> None:
    """A DataRow of PG_SQL with every value at its widest (names at NAMEDATALEN - 1 bytes)."""
    name = b"n" * 63
    values = [name, name, name, b"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"[:45]]
    values += [b"-65535", b"2026-12-07T02:55:25Z", name, b"t", name, name]
    assert len(values) == logic.PG_COLUMNS
    row = (
        b"D"
        + struct.pack("!ih", 0, len(values))
        + b"".join(struct.pack("!i", len(v)) + v for v in values)
    )
    assert len(row) <= logic.PG_ROW_BYTES


def test_the_widest_mysql_row_fits_its_bound() -> None:
    """A text-protocol row of MYSQL_SQL with every value at the width its LEFT or RIGHT leaves,
    each character 4 bytes (utf8mb4); a length of 251 bytes or more takes 3 bytes."""
    widths = re.findall(r"(?:LEFT|RIGHT)\(.*?, (\d+)\)", " ".join(logic.MYSQL_SQL.split()))
    assert len(widths) == logic.MYSQL_COLUMNS - 1  # all but the one-digit "is it us"
    sizes = [4 * int(w) for w in widths] + [1]
    row = 4 + sum((1 if size < 251 else 3) + size for size in sizes)
    assert row <= logic.MYSQL_ROW_BYTES


def test_the_widest_processlist_row_fits_its_bound() -> None:
    widths = re.findall(
        r"(?:LEFT|RIGHT)\(.*?, (\d+)\)", " ".join(logic.MYSQL_PROCESSLIST_SQL.split())
    )
    assert len(widths) == logic.MYSQL_PROCESSLIST_COLUMNS
    row = 4 + sum((1 if 4 * int(w) < 251 else 3) + 4 * int(w) for w in widths)
    assert row <= logic.MYSQL_PROCESSLIST_ROW_BYTES


# ---- input checks, as verify makes them ------------------------------------------------------
@pytest.mark.parametrize("timeout", ["9.3e9", "nan", "inf", "0", "-1"])
def test_a_timeout_out_of_range_is_a_usage_error(
    timeout: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["clients", "--log-file", "postgresql.log", "--timeout", timeout])
    assert code == 2
    assert f"--timeout {float(timeout):g}: must be more than 0 and at most 3600 seconds" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--user", "app\0x", "--user 'app\\x00x' contains a NUL character"),
        ("--dbname", "app\udcff", "--dbname: the value is not valid UTF-8 text"),
    ],
)
def test_text_that_cannot_go_on_the_wire_is_a_usage_error(
    option: str,
    value: str,
    said: str,
    run: Callable[..., Run],
    certs: hostile.Certificates,
) -> None:
    """Found before any password is asked for or any connection made."""
    with hostile.serve(hostile.mysql_trickle()) as server:
        done = run(*pg(server.port, certs), option, value)
        assert server.connections == 0
    assert done.code == 2
    assert said in done.err, done.err


# ---- a server that was not verified never gets exit 0 ---------------------------------------
# The listing's own columns, answered by a server that takes any login: with no session but
# the listing's (an empty list), or with one plaintext session besides.
PG_PLAINTEXT_ROW: tuple[bytes | None, ...] = (
    b"cron",
    b"appdb",
    b"nightly",
    b"10.0.0.9",
    b"40000",
    b"2026-12-07T02:00:00Z",
    b"client backend",
    b"f",
    None,
    None,
)
MYSQL_OWN_ROW: tuple[bytes | None, ...] = (
    b"app",
    None,
    b"rds-force-ssl clients",
    b"localhost",
    b"localhost:50000",
    b"SSL/TLS",
    b"TLSv1.3",
    b"TLS_AES_256_GCM_SHA384",
    b"1",
)
MYSQL_PLAINTEXT_ROW: tuple[bytes | None, ...] = (
    b"cron",
    b"appdb",
    b"nightly",
    b"10.0.0.9",
    b"10.0.0.9:40000",
    b"TCP/IP",
    None,
    None,
    b"0",
)


def pg_row(values: tuple[bytes | None, ...]) -> bytes:
    return hostile.pg_message(
        b"D",
        struct.pack("!h", len(values))
        + b"".join(
            struct.pack("!i", -1) if v is None else struct.pack("!i", len(v)) + v for v in values
        ),
    )


def pg_listing_impostor(
    context: ssl.SSLContext, rows: tuple[tuple[bytes | None, ...], ...]
) -> hostile.Handler:
    """A PostgreSQL server that lets any start-up in over TLS and answers the listing with
    ``rows`` of its ten columns."""
    field_ = struct.pack("!ihihih", 0, 0, 25, -1, -1, 0)
    description = hostile.pg_message(
        b"T",
        struct.pack("!h", logic.PG_COLUMNS)
        + b"".join(b"c%d\0" % i + field_ for i in range(logic.PG_COLUMNS)),
    )

    def handle(server: hostile.Server, conn: socket.socket) -> None:
        server.recv_exactly(conn, 8)  # the SSLRequest
        server.send(conn, b"S")
        tls = hostile.start_tls(server, conn, context)
        (size,) = struct.unpack("!i", server.recv_exactly(tls, 4))
        server.recv_exactly(tls, size - 4)  # the start-up
        server.send(
            tls,
            hostile.pg_message(b"R", struct.pack("!i", 0))
            + hostile.pg_message(b"S", b"server_version\x0016.4\0")
            + hostile.pg_message(b"K", struct.pack("!ii", 1, 2))
            + hostile.READY,
        )
        server.received.append(server.recv(tls, 65536))
        server.send(
            tls,
            hostile.pg_message(b"C", b"SET\0")
            + description
            + b"".join(pg_row(r) for r in rows)
            + hostile.pg_message(b"C", b"SELECT %d\0" % len(rows))
            + hostile.READY,
        )
        server.hold(tls)

    return handle


def mysql_text(value: bytes | None) -> bytes:
    if value is None:
        return b"\xfb"
    assert len(value) < 251
    return bytes([len(value)]) + value


def mysql_listing_impostor(
    context: ssl.SSLContext, rows: tuple[tuple[bytes | None, ...], ...]
) -> hostile.Handler:
    """A MySQL server that lets any login in over TLS, answers OK to what the driver sends
    first, and answers the listing with ``rows`` of its nine columns (EOF-delimited)."""

    def column(kind: int) -> bytes:
        return (
            b"".join(mysql_text(x) for x in (b"def", b"", b"", b"", b"c", b"c"))
            + b"\x0c"
            + struct.pack("<HIBHB", 45, 256, kind, 0, 0)
            + b"\0\0"
        )

    # Eight texts (VAR_STRING) and "is it us", a number (LONGLONG), as MySQL types them.
    columns = [column(0xFD)] * (logic.MYSQL_COLUMNS - 1) + [column(0x08)]
    payloads = [bytes([logic.MYSQL_COLUMNS]), *columns]
    payloads += [hostile.MYSQL_EOF]
    payloads += [b"".join(mysql_text(v) for v in r) for r in rows] + [hostile.MYSQL_EOF]
    answer = b"".join(hostile.mysql_packet(i + 1, p) for i, p in enumerate(payloads))

    def read(server: hostile.Server, tls: socket.socket) -> tuple[int, bytes]:
        header = server.recv_exactly(tls, 4)
        return header[3], server.recv_exactly(tls, header[0] | header[1] << 8 | header[2] << 16)

    def handle(server: hostile.Server, conn: socket.socket) -> None:
        server.send(conn, hostile.mysql_greeting(b"8.0.36"))
        read(server, conn)  # the SSLRequest
        tls = hostile.start_tls(server, conn, context)
        seq, login = read(server, tls)
        server.received.append(login)
        server.send(tls, hostile.mysql_packet(seq + 1, hostile.MYSQL_OK))
        while True:
            try:
                _, query = read(server, tls)
            except ConnectionError:
                return
            if query[:1] != b"\x03":  # COM_QUIT
                return
            if b"performance_schema.threads" in query:
                server.send(tls, answer)
            else:
                server.send(tls, hostile.mysql_packet(1, hostile.MYSQL_OK))

    return handle


UNVERIFIED_NOTE = "the server was NOT verified (--sslmode {mode} with --allow-unverified-password)"


def test_a_postgres_impostor_under_require_never_gets_exit_0(
    run: Callable[..., Run], tmp_path: Path
) -> None:
    """A self-signed server takes the login (as --allow-unverified-password allows) and
    answers with no session: that proves nothing, so the view is incomplete."""
    context = hostile.self_signed(tmp_path, common_name="impostor")
    with hostile.serve(pg_listing_impostor(context, ())) as server:
        done = run(
            "--port", str(server.port), "--dbname", "appdb", "--sslmode", "require",
            "--allow-unverified-password", "--json",
        )  # fmt: skip
    assert any(b"FROM pg_stat_activity" in q for q in server.received)  # it got the listing
    assert done.code == 2, done.out
    report = json.loads(done.out)
    assert report["complete"] is False
    assert report["notes"][0].startswith(UNVERIFIED_NOTE.format(mode="require"))
    assert report["notes"][0].endswith(
        "(or drop --allow-unverified-password: SCRAM's channel binding then proves it)"
    )
    assert report["verdict"] == "INCOMPLETE: no plaintext client among the 0 session(s) seen"


def test_a_postgres_impostors_plaintext_session_is_still_exit_1(
    run: Callable[..., Run], tmp_path: Path
) -> None:
    context = hostile.self_signed(tmp_path, common_name="impostor")
    with hostile.serve(pg_listing_impostor(context, (PG_PLAINTEXT_ROW,))) as server:
        done = run(
            "--port", str(server.port), "--dbname", "appdb", "--sslmode", "require",
            "--allow-unverified-password",
        )  # fmt: skip
    assert done.code == 1, done.out
    assert f"note: {UNVERIFIED_NOTE.format(mode='require')}" in done.out
    assert done.out.splitlines()[-1].startswith("verdict: PLAINTEXT CLIENTS: 1 session(s)")


def test_the_postgres_listing_impostor_gets_exit_0_where_it_is_verified(
    run: Callable[..., Run], certs: hostile.Certificates
) -> None:
    """The control: the same answer from a server verified by its certificate is believed;
    so the exit 2 above is for want of verification."""
    with hostile.serve(pg_listing_impostor(certs.context, ())) as server:
        done = run(*pg(server.port, certs))
    assert done.code == 0, done.out
    assert "note:" not in done.out


@pytest.mark.parametrize("mode", ["require", "verify-ca"])
def test_a_mysql_impostor_not_verified_never_gets_exit_0(
    mode: str, run: Callable[..., Run], tmp_path: Path
) -> None:
    """require: a self-signed certificate; verify-ca: the CA's certificate for another name
    (any RDS instance's is one). Both take the password and list only the listing itself."""
    if mode == "require":
        context = hostile.self_signed(tmp_path, common_name="impostor")
        extra: tuple[str, ...] = ()
    else:
        other = hostile.certificates(tmp_path, names=("impostor.example",))
        context, extra = other.context, ("--sslrootcert", str(other.ca_file))
    with hostile.serve(mysql_listing_impostor(context, (MYSQL_OWN_ROW,))) as server:
        done = run(
            "--engine", "mysql", "--port", str(server.port), "--sslmode", mode, *extra,
            "--allow-unverified-password", "--json",
        )  # fmt: skip
    assert len(server.received) == 1  # it got the login, password and all
    assert done.code == 2, done.out
    report = json.loads(done.out)
    assert report["complete"] is False
    assert report["notes"] == [
        UNVERIFIED_NOTE.format(mode=mode) + ": any server that answers at this address could "
        "have taken the password and listed what it liked, so a list without plaintext "
        "sessions proves nothing. Pass --sslmode verify-full with --sslrootcert"
    ]


def test_a_mysql_impostors_plaintext_session_is_still_exit_1(
    run: Callable[..., Run], tmp_path: Path
) -> None:
    context = hostile.self_signed(tmp_path, common_name="impostor")
    rows = (MYSQL_OWN_ROW, MYSQL_PLAINTEXT_ROW)
    with hostile.serve(mysql_listing_impostor(context, rows)) as server:
        done = run(
            "--engine", "mysql", "--port", str(server.port), "--sslmode", "require",
            "--allow-unverified-password", "--json",
        )  # fmt: skip
    assert done.code == 1, done.out
    report = json.loads(done.out)
    assert report["totals"]["plaintext"] == 1
    assert report["complete"] is False


def test_the_mysql_listing_impostor_gets_exit_0_where_it_is_verified(
    run: Callable[..., Run], certs: hostile.Certificates
) -> None:
    with hostile.serve(mysql_listing_impostor(certs.context, (MYSQL_OWN_ROW,))) as server:
        done = run(*mysql(server.port, certs))
    assert done.code == 0, done.out
    assert "note:" not in done.out
