"""What a new user of `probe` tripped over: no sign of life on a terminal until the end, the same
endpoint probed and listed twice, and another protocol's answer shown as hex. Every server here
listens on 127.0.0.1 only, and every run is bounded by the probe's own --timeout."""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from rds_force_ssl import cli
from rds_force_ssl.cli import probe
from rds_force_ssl.cli.commands import probe as probe_command
from rds_force_ssl.cli.discover import Discovery
from rds_force_ssl.cli.engines import DEFAULT_ENGINE, ENGINES
from rds_force_ssl.cli.probe import Result, Target
from rds_force_ssl.cli.wire import (
    Endpoint,
    Identity,
    Outcome,
    Verdict,
    describe_foreign,
    probe_endpoint,
    server_text,
)
from tests.cli.pgserver import ADDRESS, free_port

WAIT_S = 5.0  # the longest any test server waits for anything


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@contextmanager
def silent_port() -> Iterator[int]:
    """A port whose connections are accepted (by the kernel) and never answered."""
    with socket.socket() as sock:
        sock.bind((ADDRESS, 0))
        sock.listen(16)
        yield sock.getsockname()[1]


@contextmanager
def answering(reply: bytes) -> Iterator[int]:
    """A port that reads what the client sends, answers ``reply`` and hangs up, per connection."""
    server = socket.socket()
    server.bind((ADDRESS, 0))
    server.listen(16)
    server.settimeout(0.05)  # how soon the thread notices the end of the test
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(WAIT_S)
                try:
                    conn.recv(4096)
                    conn.sendall(reply)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(WAIT_S)
        server.close()


def run(monkeypatch: pytest.MonkeyPatch, *argv: str, terminal: bool) -> tuple[int, str, str]:
    out, err = io.StringIO(), Terminal() if terminal else io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stderr", err)
    code = cli.main(["probe", *argv])
    return code, out.getvalue(), err.getvalue()


# ---- 1. progress on a terminal, nothing extra on a pipe -------------------------------------
def test_a_terminal_sees_the_count_from_the_start_and_stdout_stays_clean(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with silent_port() as silent:
        closed = free_port()
        code, out, err = run(
            monkeypatch,
            "--timeout",
            "0.5",
            f"{ADDRESS}:{silent}",
            f"{ADDRESS}:{closed}",
            terminal=True,
        )
    assert code == 2
    # The count shows before the first answer (a silent endpoint's is a whole --timeout away),
    # then after each endpoint, on one line that ends when the probe does.
    assert err.startswith("\rprobed 0/2\rprobed 1/2\rprobed 2/2\n"), repr(err)
    assert "probed" not in out
    assert out.startswith("ENDPOINT")


@pytest.mark.parametrize("as_json", [False, True])
def test_a_pipe_gets_no_progress(monkeypatch: pytest.MonkeyPatch, as_json: bool) -> None:
    closed = free_port()
    code, out, err = run(
        monkeypatch,
        "--timeout",
        "0.5",
        f"{ADDRESS}:{closed}",
        *(("--json",) if as_json else ()),
        terminal=False,
    )
    assert code == 2
    assert err == ""
    assert "probed" not in out
    if as_json:
        assert json.loads(out)["counts"]["UNREACHABLE"] == 1


def test_progress_counts_distinct_endpoints() -> None:
    seen: list[tuple[int, int]] = []
    endpoint = Endpoint(ADDRESS, free_port())
    probe.probe_all(
        [Target(endpoint), Target(endpoint)],
        who=Identity(),
        timeout=0.5,
        concurrency=4,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(0, 1), (1, 1)]


# ---- 2. each endpoint once ------------------------------------------------------------------
@pytest.fixture
def probed(monkeypatch: pytest.MonkeyPatch) -> list[Endpoint]:
    """The endpoints actually probed (no network: each is UNREACHABLE at once)."""
    calls: list[Endpoint] = []
    lock = threading.Lock()

    def probe_one(target: Target, **_: Any) -> Result:
        with lock:
            calls.append(target.endpoint)
        return Result(target, Outcome(Verdict.UNREACHABLE, "not tried"))

    monkeypatch.setattr("rds_force_ssl.cli.probe.probe_one", probe_one)
    return calls


def test_an_endpoint_named_twice_is_probed_and_listed_once_in_the_users_order(
    probed: list[Endpoint], capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(
        [
            "probe",
            "--json",
            "db.example",
            "10.0.0.7:6432",
            "db.example:5432",  # the default port, written out
            "DB.Example.",  # DNS names ignore case and the root's dot
            "10.0.0.7:6432",
            "10.0.0.7",  # another port: another endpoint
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 2
    listed = [e["endpoint"] for e in report["endpoints"]]
    assert listed == ["db.example:5432", "10.0.0.7:6432", "10.0.0.7:5432"]
    assert sorted(map(str, probed)) == sorted(listed)
    assert report["counts"]["UNREACHABLE"] == 3


def test_an_endpoint_named_and_found_in_the_region_is_probed_once(
    probed: list[Endpoint], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    found = Discovery()
    engine = ENGINES[DEFAULT_ENGINE]
    for host, resource in (
        ("other.example", "instance other"),
        ("db.example", "instance db"),
        ("DB.EXAMPLE", "cluster db writer"),  # listed again by RDS, in other letters
        ("other.example", "cluster other reader"),
    ):
        found.add(engine, host, 5432, resource)
    monkeypatch.setattr(probe_command, "_discover", lambda region: found.finish())
    code = cli.main(["probe", "--json", "--region", "eu-west-1", "Db.Example:5432"])
    report = json.loads(capsys.readouterr().out)
    assert code == 2
    assert [(e["endpoint"], e["resource"]) for e in report["endpoints"]] == [
        ("Db.Example:5432", None),
        ("other.example:5432", "instance other"),
    ]
    assert len(probed) == 2


def test_the_same_closed_port_twice_is_one_row(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = free_port()
    code, out, _ = run(
        monkeypatch,
        "--timeout",
        "0.5",
        f"{ADDRESS}:{closed}",
        f"{ADDRESS}:{closed}",
        terminal=False,
    )
    assert code == 2
    assert out.count(f"{ADDRESS}:{closed}") == 1
    assert "0 ENFORCED, 0 NOT_ENFORCED, 1 UNREACHABLE, 0 INCONCLUSIVE (exit 2)" in out


# ---- 3. another protocol's answer, named ------------------------------------------------------
HTTP_400 = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def test_an_http_server_is_named_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    with answering(HTTP_400) as port:
        code, out, _ = run(monkeypatch, "--timeout", "3", f"{ADDRESS}:{port}", terminal=False)
        json_code, json_out, _ = run(
            monkeypatch, "--timeout", "3", "--json", f"{ADDRESS}:{port}", terminal=False
        )
    assert code == json_code == 2
    row = next(line for line in out.splitlines() if line.startswith(f"{ADDRESS}:{port}"))
    assert "INCONCLUSIVE" in row  # the verdict an unexpected answer always had
    assert "this is an HTTP server (it answered HTTP/1.1 400 Bad Request)" in row
    assert "hex" not in row
    (endpoint,) = json.loads(json_out)["endpoints"]
    assert endpoint["verdict"] == "INCONCLUSIVE"
    assert endpoint["evidence"]["first_bytes_hex"] == "48 54 54 50 2f 31 2e 31"


def test_an_http_servers_words_reach_the_terminal_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    hostile = b"HTTP/1.1 400 \x1b[2J\x1b]0;owned\x07Bad\xff\r\n\r\n"
    with answering(hostile) as port:
        _, out, _ = run(monkeypatch, "--timeout", "3", f"{ADDRESS}:{port}", terminal=False)
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "(it answered HTTP/1.1 400 \\x1b[2J\\x1b]0;owned\\x07Bad\ufffd)" in out


def test_the_answer_to_the_pg_startup_over_a_real_socket_names_a_mysql_greeting() -> None:
    # MariaDB 10.11's greeting; its length (0x52, "R") would read as a PostgreSQL message type.
    greeting = b"\n5.5.5-10.11.6-MariaDB\x00" + b"\x08\x00\x00\x00" + b"A" * 8 + b"\x00\xfe\xff"
    packet = bytes([0x52, 0, 0, 0]) + greeting
    converse = ENGINES[DEFAULT_ENGINE].plaintext_probe
    assert converse is not None
    with answering(packet) as port:
        outcome = probe_endpoint(Endpoint(ADDRESS, port), converse, who=Identity(), timeout=3)
    assert outcome.verdict == Verdict.INCONCLUSIVE
    assert outcome.detail == (
        "the answer is not PostgreSQL's start-up protocol: this is a MySQL or MariaDB server "
        "(its greeting, version 5.5.5-10.11.6-MariaDB)"
    )


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"HTTP/1.0 200 OK\nServer: x\n\n", "this is an HTTP server (it answered HTTP/1.0 200 OK)"),
        (
            b"\x15\x03\x01\x00\x02\x02\x46",
            "this is a TLS endpoint that expects TLS from the first byte (a TLS alert: "
            "protocol_version)",
        ),
        (
            b"\x16\x03\x03\x00\x7a\x02",
            "this is a TLS endpoint that expects TLS from the first byte (a handshake)",
        ),
        (
            b"\x4a\x00\x00\x00\x0a8.0.36\x00\x01\x02",
            "this is a MySQL or MariaDB server (its greeting, version 8.0.36)",
        ),
        (
            b"\x2f\x00\x00\x00\xff\x6a\x04Host '10.0.0.7' is not allowed to connect",
            "this is a MySQL or MariaDB server (an error before its greeting: Host '10.0.0.7' "
            "is not allowed to connect, MySQL error 1130)",
        ),
        (b"SSH-2.0-OpenSSH_9.6\r\n", "this is an SSH server (its banner: SSH-2.0-OpenSSH_9.6)"),
        (b"E\x7f\xff\xff\xff", None),
        (b"\x00\x01", None),
    ],
)
def test_known_foreign_answers(data: bytes, said: str | None) -> None:
    assert describe_foreign(data) == said


def test_server_text_is_cut_and_left_for_the_table_to_escape() -> None:
    assert server_text(b"a\x1bb\xc3\xa9\xff") == "a\x1bbé\ufffd"
    assert server_text(b"x" * 100, limit=10) == "x" * 10 + "...(+90 characters)"
