"""What the repository keeps out of git: build output a new user makes with the README's
commands or `python -m build`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "path",
    ["dist/rds_force_ssl-0.1.0-py3-none-any.whl", "site/index.html", "cdk.out/manifest.json"],
)
def test_build_output_is_ignored(path: str) -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0, f"{path} is not in .gitignore"
