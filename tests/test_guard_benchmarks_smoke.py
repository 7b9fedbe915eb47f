"""Smoke test for the guard's benchmarks: each script runs at its smallest settings and prints a
table, then its summary. Nothing here looks at a latency or a count: the scripts print them."""

from __future__ import annotations

import subprocess

import pytest

from tests.benchmark_runs import run_scripts

SCRIPTS = {
    "guard_latency": ["--delays", "60", "900", "--moments", "1"],
    "guard_coverage": [],
    "guard_cost": ["--databases", "20", "--changes", "5"],
}

pytestmark = pytest.mark.benchmarks_smoke


@pytest.fixture(scope="module")
def outputs() -> dict[str, subprocess.CompletedProcess[str]]:
    return run_scripts(SCRIPTS)


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_script_prints_a_table_then_its_summary(
    outputs: dict[str, subprocess.CompletedProcess[str]], name: str
) -> None:
    result = outputs[name]
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith(f"python benchmarks/{name}.py")
    assert len([line for line in lines if line.startswith("|")]) >= 3, result.stdout
    assert lines[-1].startswith(f"SUMMARY {name}:"), lines[-1]


def test_latency_rows_say_whether_the_target_was_met(
    outputs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    rows = [r for r in outputs["guard_latency"].stdout.splitlines() if r.startswith("| 1.0 min")]
    assert len(rows) == 7  # every change kind at the 1-minute delay
    assert all(r.endswith("| met |") or r.endswith("| MISSED |") for r in rows)


def test_coverage_has_a_row_per_engine_and_detector(
    outputs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    from rds_force_ssl.facts.engines import ENGINES

    text = outputs["guard_coverage"].stdout
    for row in ENGINES:
        for detector in ("guard", "Config rules", "Security Hub", "Prowler"):
            assert f"| {row.title} | {detector} |" in text
