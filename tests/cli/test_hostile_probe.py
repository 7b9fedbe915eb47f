"""`rds-force-ssl probe` against hostile servers and hostile input (tests/cli/hostile.py): what a
server writes reaches the terminal escaped and cut, input that cannot go on the wire is a usage
error that names it, and a shortage on this machine is not reported as the endpoint's."""

from __future__ import annotations

import json
import re
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack

import pytest

from rds_force_ssl import cli
from rds_force_ssl.cli import wire
from rds_force_ssl.cli.wire import parse_endpoint
from tests.cli import hostile
from tests.cli.conftest import Run
from tests.cli.test_hostile_verify import FORGED


@pytest.fixture
def probe(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    def go(*argv: str) -> Run:
        code = cli.main(["probe", *argv])
        captured = capsys.readouterr()
        assert "internal error" not in captured.out + captured.err
        return Run(code, captured.out, captured.err)

    return go


def test_an_error_response_cannot_write_to_the_terminal(probe: Callable[..., Run]) -> None:
    with hostile.serve(hostile.pg_error_everywhere(FORGED)) as server:
        done = probe(f"127.0.0.1:{server.port}")
    assert done.code == 2, done.out
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u202e]", done.out), done.out
    (row,) = [line for line in done.out.splitlines() if line.startswith("127.0.0.1:")]
    assert "INCONCLUSIVE" in row
    assert r"\x1b]0;owned\x07\x1b[2J" in row
    assert "...(+" in row  # the server's 60,000 characters, cut where quoted
    assert len(row) < 2000
    assert done.out.splitlines()[-1].endswith("(exit 2)")


@pytest.mark.parametrize(
    "endpoint", ["db.example:", "[::1]:", "db.example:\u0665\u0664\u0663\u0662", "db.example:+5"]
)
def test_an_endpoint_without_a_plain_port_is_a_usage_error(
    probe: Callable[..., Run], endpoint: str
) -> None:
    done = probe(endpoint)
    assert done.code == 2
    assert "bad endpoint" in done.err
    with pytest.raises(ValueError, match="port"):
        parse_endpoint(endpoint, default_port=5432)


@pytest.mark.parametrize("timeout", ["9.3e9", "1e300", "3601"])
def test_a_timeout_past_an_hour_is_a_usage_error(probe: Callable[..., Run], timeout: str) -> None:
    done = probe("db.example", "--timeout", timeout)
    assert done.code == 2
    assert "at most 3600 seconds" in done.err


@pytest.mark.parametrize("option", ["--user", "--dbname"])
def test_a_name_that_is_not_utf8_is_a_usage_error_before_any_probe(
    probe: Callable[..., Run], option: str
) -> None:
    with hostile.serve(hostile.pg_error_everywhere(b"x")) as server:
        # How Python hands over a command-line byte that is not UTF-8: a lone surrogate.
        done = probe(f"127.0.0.1:{server.port}", option, "app\udcff")
        assert server.connections == 0
    assert done.code == 2
    assert f"{option}: the value is not valid UTF-8 text" in done.err


def test_running_out_of_file_descriptors_is_said_to_be_local() -> None:
    """The probe as its own process, allowed 24 file descriptors, against 40 servers that never
    answer: the endpoints it could not even try are INCONCLUSIVE with this machine named, not
    UNREACHABLE."""
    with ExitStack() as stack:
        servers = [
            stack.enter_context(hostile.serve(lambda s, c: s.hold(c), lifetime=30))
            for _ in range(40)
        ]
        endpoints = [f"127.0.0.1:{s.port}" for s in servers]

        def few_descriptors() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (24, 24))

        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from rds_force_ssl import cli; sys.exit(cli.main())",
                "probe",
                *endpoints,
                "--timeout",
                "1",
                "--concurrency",
                "40",
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=few_descriptors,
            check=False,
        )
    report = json.loads(done.stdout)
    details = [(e["verdict"], e["detail"]) for e in report["endpoints"]]
    local = [d for v, d in details if v == "INCONCLUSIVE"]
    assert local, details
    assert all(d.startswith("not tried: this machine could not open a connection") for d in local)
    assert all("ulimit -n" in d for d in local)
    assert not any("open files" in d for v, d in details if v == "UNREACHABLE"), details
    assert report["exit_code"] == 2


# ---- the budget every bounded connection keeps (wire.Bounds) --------------------------------
def _read_until_closed(sock: socket.socket, size: int) -> None:
    while sock.recv(size):
        pass


def test_a_bounded_connection_stops_at_its_byte_cap() -> None:
    with hostile.serve(hostile.mysql_flood) as server:
        bounds = wire.Bounds(deadline=time.monotonic() + 30, max_bytes=100_000)
        sock = wire.connect(
            wire.Endpoint("127.0.0.1", server.port), deadline=bounds.deadline, make=bounds.socket
        )
        with sock, pytest.raises(wire.OverBudget):
            _read_until_closed(sock, 65536)
    assert bounds.broken == "bytes"
    assert 100_000 < bounds.received <= 100_000 + 65536


def test_a_bounded_connection_stops_at_its_deadline_whatever_timeout_the_driver_sets() -> None:
    with hostile.serve(hostile.mysql_trickle(interval=0.01)) as server:
        bounds = wire.Bounds(deadline=time.monotonic() + 0.5, max_bytes=1 << 20)
        sock = wire.connect(
            wire.Endpoint("127.0.0.1", server.port), deadline=bounds.deadline, make=bounds.socket
        )
        sock.settimeout(None)  # what a driver may ask for: wait for ever
        with sock, pytest.raises(TimeoutError):
            _read_until_closed(sock, 1)
        assert not server.stop.is_set()
    assert bounds.broken == "deadline"
    assert 0 < bounds.received < 60_000
