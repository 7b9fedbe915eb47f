"""Smoke test for the CLI's benchmarks: each runs once at its smallest against real PostgreSQL
servers and prints its table and summary. Nothing here looks at a time or a ratio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.benchmarks_smoke,
    pytest.mark.postgres,
    pytest.mark.usefixtures("pg_server"),
]


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("probe_fleet", ["--endpoints", "3", "--rounds", "1"]),
        # The RTT link is netem where the kernel has it, else the relay: either must work.
        ("verify_vs_psql", ["--rounds", "1", "--rtt-ms", "2"]),
        ("clients", ["--sessions", "20", "--rounds", "1", "--size-mb", "2"]),
    ],
)
def test_benchmark_runs_and_summarises(script: str, args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / f"{script}.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[-1].startswith(f"SUMMARY {script}:"), lines[-1]
    assert "median" in done.stdout


def test_hostile_benchmark_runs_an_attack_before_and_after() -> None:
    """benchmarks/hostile.py at its smallest: one attack, against a commit's code (HEAD's, which
    even a shallow clone holds: the default earlier commit may not be there) and this tree's,
    as a table row and the summary."""
    script = str(ROOT / "benchmarks" / "hostile.py")
    done = subprocess.run(
        [sys.executable, script, "--quick", "--only", "version", "--before", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    rows = [line for line in lines if line.startswith("| mysql")]
    assert len(rows) == 2, done.stdout  # the version string attacks
    assert lines[-1].startswith("SUMMARY hostile: 2 attacks"), lines[-1]
