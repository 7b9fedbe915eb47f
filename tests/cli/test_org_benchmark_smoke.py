"""Smoke test for benchmarks/org_audit.py: it runs once at its smallest, with an RDS token bucket
small enough that calls are throttled, and prints its tables and summary. Nothing here looks at
a time or a ratio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.benchmarks_smoke


def test_org_benchmark_runs_and_summarises() -> None:
    args = ["--accounts", "2", "--regions", "2", "--databases", "1", "--sample", "1"]
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "org_audit.py"),
            *args,
            "--burst",
            "2",
            "--rate",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[-1].startswith("SUMMARY org_audit: 4 account-regions in "), lines[-1]
    assert "0 throttles surfaced" in lines[-1]
    throttled = next(line for line in lines if line.startswith("| RDS calls answered Throttling"))
    assert throttled.split("|")[2].strip() != "0", throttled  # the bucket did bite
    assert any(line.startswith("| API calls per account-region | max ") for line in lines)
