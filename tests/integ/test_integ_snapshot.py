"""The integration test's snapshot, checked by integ-runner as CI does it: no account, no deploy.

A template change that is meant fails here until the snapshot is rewritten (``make
integ-update``) and its diff is reviewed and committed with the change, as in aws-cdk itself.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integ_snapshot


def test_the_integ_snapshot_is_unchanged() -> None:
    if not (ROOT / "node_modules" / ".bin" / "integ-runner").exists():
        pytest.fail("@aws-cdk/integ-runner is not installed: run `npm ci` (make setup does)")
    done = subprocess.run(
        ["make", "--no-print-directory", "integ"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, (
        f"{output[-4000:]}\nIf the template change is intended: `make integ-update`, review "
        "the diff under tests/integ/integ_force_ssl.py.snapshot/ and commit it."
    )
    # integ-runner exits 0 when it finds no test at all: make sure it compared this one.
    assert "UNCHANGED  integ_force_ssl" in output, output[-2000:]
