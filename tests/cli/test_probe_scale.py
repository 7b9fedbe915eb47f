"""`probe` over a loopback fleet of 400 fake endpoints, 64 at a time: every endpoint gets its own
verdict (no mix-ups under concurrency), results come back in the order given, a server that
never answers costs one timeout, and nothing but a StartupMessage is ever sent."""

from __future__ import annotations

import json

import pytest

from rds_force_ssl import cli
from rds_force_ssl.cli.probe import Target, probe_all
from rds_force_ssl.cli.wire import Endpoint, Identity, Verdict
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
        results = probe_all(targets, who=Identity(), timeout=0.5, concurrency=64)
    assert [r.target for r in results] == targets
    got = {r.target.endpoint.port: r.outcome.verdict for r in results}
    assert got == {port: EXPECTED[part] for port, part in fleet.parts.items()}
    silent = [r for r in results if fleet.parts[r.target.endpoint.port] == "silent"]
    assert {r.outcome.detail for r in silent} == {"connected, but no answer within 0.5 s"}
    # Every endpoint that read a start-up got exactly one, and nobody sent a byte after it.
    assert len(fleet.startups) == 380
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
