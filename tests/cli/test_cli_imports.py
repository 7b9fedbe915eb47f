"""The CLI's import path: no CDK ever, and each driver only when its command needs it.

Each case runs in a fresh interpreter (an in-process check would see what other tests loaded)
and lists which heavy modules the command left in sys.modules.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("aws_cdk", "jsii", "psycopg", "pymysql", "cryptography", "boto3", "botocore")
SCRIPT = f"""
import json, sys
from rds_force_ssl.cli import main
code = main(sys.argv[1:])
print(json.dumps({{"code": code, "loaded": [m for m in {HEAVY!r} if m in sys.modules]}}))
"""


def loaded_by(*argv: str) -> tuple[int, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *argv],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return report["code"], report["loaded"]


@pytest.mark.parametrize(
    ("argv", "code", "loaded"),
    [
        (["--help"], 0, []),
        (["probe", "127.0.0.1:1"], 2, []),  # a credential-free probe needs no driver at all
        (["verify", "--help"], 0, []),
        # A usage error is found before any driver is loaded.
        (["verify", "--host", "h", "--user", "u"], 2, []),
        (["verify", "--engine", "mysql", "--host", "h", "--user", "u"], 2, []),
    ],
)
def test_commands_load_only_what_they_need(argv: list[str], code: int, loaded: list[str]) -> None:
    assert loaded_by(*argv) == (code, loaded)


def test_audit_loads_boto3_but_neither_cdk_nor_the_database_drivers() -> None:
    code, loaded = loaded_by("audit", "--region", "")
    assert code == 2
    assert "boto3" in loaded
    assert not {"aws_cdk", "jsii", "psycopg", "cryptography"} & set(loaded)


def test_a_start_builds_the_parsers_without_any_commands_logic() -> None:
    """Every start builds every command's parser; the logic (the organization run, the judge,
    the verifiers) loads only when its command runs: `clients` is timed against psql whole."""
    logic = ("rds_force_ssl.cli.org", "rds_force_ssl.cli.audit", "rds_force_ssl.handlers.judge")
    script = (
        "import json, sys\nfrom rds_force_ssl.cli import main\nmain(['clients', '--help'])\n"
    )
    probe = f"{script}print(json.dumps([m for m in {logic!r} if m in sys.modules]))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
