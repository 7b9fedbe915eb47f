"""Smoke test for benchmarks/: each script runs at N=1 and prints its table and its summary.

Benchmarks are not tests: nothing here looks at a time or a ratio. The three scripts run at once
(in separate processes) at their smallest settings, with CDK's built-in validation off.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = {
    "synth_cost": ["--rounds", "1", "--n", "1", "--validation", "off"],
    "footprint": ["--n", "1", "2"],
    "deploy_sim": [],
}

pytestmark = pytest.mark.benchmarks_smoke


@pytest.fixture(scope="module")
def outputs() -> dict[str, subprocess.CompletedProcess[str]]:
    running = {
        name: subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in SCRIPTS.items()
    }
    done = {}
    for name, proc in running.items():
        out, err = proc.communicate(timeout=120)
        done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return done


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_smoke_script_prints_a_table_then_its_summary(
    outputs: dict[str, subprocess.CompletedProcess[str]], name: str
) -> None:
    result = outputs[name]
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    rows = [line for line in lines if line.startswith("|")]
    assert len(rows) >= 3, result.stdout  # a header, a rule and at least one row
    assert lines[-1].startswith(f"SUMMARY {name}:"), lines[-1]


def test_smoke_tables_name_all_three_variants(
    outputs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    for name in ("footprint", "deploy_sim"):
        text = outputs[name].stdout
        for label in ("(a)", "(b)", "(c)"):
            assert f"| {label}" in text, (name, label)
    # footprint also measures ForceSsl under Reboot.MAINTENANCE_WINDOW (its schedule).
    assert "| (d) ForceSsl, MAINTENANCE_WINDOW |" in outputs["footprint"].stdout
