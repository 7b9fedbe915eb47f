"""`probe` over a loopback fleet of 400 fake endpoints, 64 at a time: every endpoint gets its own
verdict (no mix-ups under concurrency), results come back in the order given, a server that
never answers costs one timeout, and nothing but StartupMessages (and, after a plaintext
refusal, an SSLRequest) is ever sent."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from typing import Any

import pytest

from rds_force_ssl import cli
from rds_force_ssl.cli import pgwire, probe, wire
from rds_force_ssl.cli.probe import Target, probe_all
from rds_force_ssl.cli.wire import Endpoint, Identity, Outcome, Verdict
from tests.cli.fakepg import fake_fleet

EXPECTED = {
    "refuse": Verdict.ENFORCED,
    "password": Verdict.NOT_ENFORCED,
    "silent": Verdict.UNREACHABLE,
    "close": Verdict.UNREACHABLE,
}
# Interleaved, so that every batch of 64 mixes the four kinds.
PARTS = ["refuse"] * 300 + ["password"] * 60 + ["silent"] * 20 + ["close"] * 20
PARTS = [PARTS[i] for i in sorted(range(len(PARTS)), key=lambda i: (i * 37) % len(PARTS))]


def test_four_hundred_endpoints_each_get_their_own_verdict() -> None:
    with fake_fleet(PARTS) as fleet:
        ports = list(fleet.parts)
        targets = [Target(Endpoint("127.0.0.1", port)) for port in ports]
        # 2 s, not less: on a loaded machine the fake's TLS handshakes (Python threads, one
        # GIL, for 300 endpoints) can take longer than the silent endpoints need to time out.
        results = probe_all(targets, who=Identity(), timeout=2.0, concurrency=64)
    assert [r.target for r in results] == targets
    got = {r.target.endpoint.port: r.outcome.verdict for r in results}
    assert got == {port: EXPECTED[part] for port, part in fleet.parts.items()}
    silent = [r for r in results if fleet.parts[r.target.endpoint.port] == "silent"]
    assert {r.outcome.detail for r in silent} == {"connected, but no answer within 2 s"}
    # A plaintext start-up to each endpoint that reads one; the SSL-only ones, refused, got the
    # same start-up again over TLS; nobody sent a byte after the server's answer.
    assert fleet.ssl_requests == 300
    assert len(fleet.startups) == 380 + 300
    assert len(set(fleet.startups)) == 1
    assert all(b"password" not in s for s in fleet.startups)
    assert fleet.after_answer == []


def test_cli_json_over_a_fleet(capsys: pytest.CaptureFixture[str]) -> None:
    with fake_fleet(["refuse"] * 40 + ["password"]) as fleet:
        code = cli.main(
            ["probe", *(f"127.0.0.1:{p}" for p in fleet.parts), "--json", "--concurrency", "8"]
        )
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert report["counts"] == {
        "ENFORCED": 40,
        "NOT_ENFORCED": 1,
        "UNREACHABLE": 0,
        "INCONCLUSIVE": 0,
    }
    assert [e["endpoint"] for e in report["endpoints"]] == [f"127.0.0.1:{p}" for p in fleet.parts]
    assert {tuple(sorted(e)) for e in report["endpoints"]} == {
        ("detail", "endpoint", "engine", "evidence", "resource", "verdict")
    }


def test_the_fake_records_bytes_sent_after_its_answer_even_at_once_before_it_stops() -> None:
    """Positive control for `after_answer == []` above: a client that answers and hangs up just
    before the fleet stops is still caught, in plaintext and over TLS."""
    startup = pgwire.startup_message(Identity())
    with fake_fleet(["password", "refuse"]) as fleet:
        plain_port, tls_port = fleet.parts
        with socket.create_connection(("127.0.0.1", plain_port), timeout=5) as sock:
            sock.sendall(startup)
            assert sock.recv(1)[:1] == b"R"
            sock.sendall(b"p-plaintext")
        with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as sock:
            sock.sendall(pgwire.SSL_REQUEST)
            assert sock.recv(1) == b"S"
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            with context.wrap_socket(sock) as tls:
                tls.sendall(startup)
                assert tls.recv(1) == b"R"
                tls.sendall(b"p-tls")
    assert sorted(fleet.after_answer) == [b"p-plaintext", b"p-tls"]


def test_never_more_endpoints_at_once_than_the_concurrency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each probe holds at most one socket at a time (the TLS follow-up closes the first
    connection before it dials again), so probes in flight bound the sockets open. The first 16
    endpoints never answer, so 16 are in flight together whatever the machine's speed."""
    in_flight, peak = 0, 0
    lock = threading.Lock()
    real = wire.probe_endpoint  # defined in wire; probe.py calls it by the name it imports

    def counted(*args: Any, **kwargs: Any) -> Outcome:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                in_flight -= 1

    monkeypatch.setattr(probe, "probe_endpoint", counted)
    with fake_fleet(["silent"] * 16 + ["refuse"] * 40 + ["password"] * 8) as fleet:
        targets = [Target(Endpoint("127.0.0.1", port)) for port in fleet.parts]
        results = probe_all(targets, who=Identity(), timeout=1.0, concurrency=16)
    assert peak == 16
    assert [r.outcome.verdict for r in results] == [EXPECTED[p] for p in fleet.parts.values()]
