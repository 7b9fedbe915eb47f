"""Runs benchmarks/ scripts for the smoke tests: all at once, each in its own process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_scripts(
    scripts: Mapping[str, Sequence[str]], *, timeout: float = 120
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Each ``benchmarks/<name>.py`` with its arguments, started together; their results."""
    running = {
        name: subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in scripts.items()
    }
    done = {}
    for name, proc in running.items():
        out, err = proc.communicate(timeout=timeout)
        done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return done
