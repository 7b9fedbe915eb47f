"""Smoke test for benchmarks/: each script runs at N=1 and prints its table and its summary.

Benchmarks are not tests: nothing here looks at a time or a ratio. The scripts run at once (in
separate processes) at their smallest settings, with CDK's built-in validation off.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.benchmark_runs import run_scripts

SCRIPTS = {
    "synth_cost": ["--rounds", "1", "--n", "1", "--validation", "off", "--split-rounds", "0"],
    "footprint": ["--n", "1", "2"],
    "deploy_sim": [],
    "reboot_matrix": ["--scenario", "static-edit"],
    "jsii_calls": ["--n", "1", "2"],
}

pytestmark = pytest.mark.benchmarks_smoke


@pytest.fixture(scope="module")
def outputs() -> dict[str, subprocess.CompletedProcess[str]]:
    return run_scripts(SCRIPTS)


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


def test_lifting_the_resource_limit_lets_a_stack_pass_500_resources_and_only_that(
    tmp_path: Path,
) -> None:
    """synth_cost's N=100 runs depend on it: CDK refuses a stack over 500 resources, unless the
    limit is lifted, which also acknowledges the built-in validation's finding for it."""
    from benchmarks.variants import RESOURCE_LIMIT_FINDING, build_app

    with pytest.raises(RuntimeError, match="greater than allowed maximum of 500"):
        build_app("plain", 82, validation=False, outdir=str(tmp_path / "refused")).synth()
    app = build_app(
        "plain", 82, validation=False, outdir=str(tmp_path / "lifted"), lift_resource_limit=True
    )
    assembly = app.synth()
    assert len(assembly.get_stack_by_name("Bench").template["Resources"]) > 500
    out = Path(assembly.directory)
    bench = json.loads((out / "manifest.json").read_text())["artifacts"]["Bench"]
    metadata = json.loads((out / bench["additionalMetadataFile"]).read_text())
    acknowledged = [
        e["data"] for e in metadata["/Bench"] if e["type"] == "aws:cdk:acknowledged-rules"
    ]
    assert any(RESOURCE_LIMIT_FINDING in data for data in acknowledged), acknowledged


def test_results_md_puts_each_command_next_to_its_output_and_lists_every_verdict(
    tmp_path: Path,
) -> None:
    from benchmarks import results

    runs = [
        results.Ran(
            "footprint.py", "One", "cmd one", "| a |\nSUMMARY one: met", 0.5, "0.1 0.2", "0.4", 0
        ),
        results.Ran("x.py", "Two", "cmd two --x", "SUMMARY two: MISSED", 1.0, "1", "2", 3),
    ]
    out = tmp_path / "RESULTS.md"
    results.write(out, runs, "today")
    text = out.read_text()
    assert "- `cmd one`: SUMMARY one: met" in text
    assert "- `cmd two --x`: SUMMARY two: MISSED" in text
    one, two = text.index("## 1. One"), text.index("## 2. Two")
    assert "`cmd one` took 0.5 min; load average 0.1 0.2 before" in text[one:two]
    assert "| a |\nSUMMARY one: met\n```\n\n" + results.NOTES["footprint.py"] in text[one:two]
    assert "it exited 3" in text[two:]
    # Measurements from other runs come after everything from this one, under their own heading.
    assert text.index("## Earlier runs (not this run)") > two


def test_synth_cost_measures_every_variant_from_cached_bytecode(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An installed wheel's modules are compiled at install, so a user's app does not compile
    the library in every process; with PYTHONDONTWRITEBYTECODE set here, the measured processes
    would, and only the library's variants would pay for it."""
    from benchmarks.synth_cost import bytecode_env

    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    env = bytecode_env(str(tmp_path))
    assert "PYTHONDONTWRITEBYTECODE" not in env
    assert env["PYTHONPYCACHEPREFIX"] == str(tmp_path)
    assert env["PATH"] == os.environ["PATH"]  # everything else as it was
