"""What a new user sees first: --version, --help, and a usage error said once, with the fix."""

from __future__ import annotations

import io
from importlib.metadata import version

import pytest

from rds_force_ssl import cli


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_version_names_the_installed_distribution(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["--version"], capsys)
    assert (code, out.strip()) == (0, f"rds-force-ssl {version('rds-force-ssl')}")


def test_a_usage_error_names_the_program_once_and_the_subcommand(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = _run(["verify", "--user", "u"], capsys)
    assert code == 2
    first = err.splitlines()[0]
    assert first == "rds-force-ssl: verify: the following arguments are required: --host"
    assert "rds-force-ssl: rds-force-ssl" not in err
    assert "fix: see rds-force-ssl verify --help" in err


def test_a_usage_error_on_the_top_level_names_the_program_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = _run(["nonsense"], capsys)
    assert code == 2
    assert err.startswith("rds-force-ssl: argument command: invalid choice: 'nonsense'")


def test_verify_help_says_sslrootcert_is_needed_for_the_default_mode(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _run(["verify", "--help"], capsys)
    assert code == 0
    flat = " ".join(out.split())
    assert "required with --sslmode verify-full (the default) and verify-ca" in flat


def test_a_usage_error_under_json_is_json(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    code, out, _ = _run(["verify", "--json", "--user", "u"], capsys)
    assert code == 2
    error = json.load(io.StringIO(out))["error"]
    assert error["code"] == "usage"
    assert error["message"] == "verify: the following arguments are required: --host"
