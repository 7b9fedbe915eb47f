"""What `main` does with input or failures the commands did not foresee: never a traceback and
never exit 1, which means NOT ENFORCED; a usage error or an UNREACHABLE endpoint instead, and an
"internal error" (exit 2) as the last resort, as JSON under --json."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rds_force_ssl import cli
from tests.cli.pgserver import free_port


def test_a_bug_is_an_internal_error_exit_2_never_not_enforced(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_: Any, **__: Any) -> int:
        raise KeyError("DBInstanceIdentifier")

    monkeypatch.setitem(cli.COMMANDS, "audit", broken)
    assert cli.main(["audit", "--region", "eu-west-1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "rds-force-ssl: internal error, nothing was concluded: KeyError: 'DBInstanceIdentifier'\n"
    )
    assert "Traceback" not in err
    assert cli.main(["audit", "--region", "eu-west-1", "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["error"]["code"] == "internal-error"
    assert report["exit_code"] == 2


def test_an_internal_error_shows_one_line_of_a_long_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_: Any, **__: Any) -> int:
        raise ValueError("first line\n" + "<html>" * 1000)

    monkeypatch.setitem(cli.COMMANDS, "audit", broken)
    assert cli.main(["audit", "--json"]) == 2
    message = json.loads(capsys.readouterr().out)["error"]["message"]
    assert message == "internal error, nothing was concluded: ValueError: first line"


def test_a_name_that_cannot_be_encoded_is_one_unreachable_endpoint_not_the_whole_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    closed = f"127.0.0.1:{free_port()}"
    assert cli.main(["probe", "a..b:5432", closed, "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    verdicts = {e["endpoint"]: (e["verdict"], e["detail"]) for e in report["endpoints"]}
    assert verdicts["a..b:5432"][0] == "UNREACHABLE"
    assert verdicts["a..b:5432"][1].startswith("not a valid host name: ")
    assert verdicts[closed][0] == "UNREACHABLE"


@pytest.mark.parametrize("timeout", ["nan", "inf", "-1", "0"])
def test_a_timeout_that_is_not_a_finite_positive_number_is_a_usage_error(
    timeout: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["probe", "db.example.com", "--timeout", timeout, "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["error"]["code"] == "usage"
    assert report["error"]["message"].startswith("--timeout must be > 0 (and finite)")


def test_an_error_quoting_a_server_cannot_drive_the_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rds_force_ssl.cli.errors import CliError

    def hostile(*_: object, **__: object) -> int:
        raise CliError("refused", "server said \x1b]0;owned\x07\x1b[2J", fix="see \x1b[8m")

    monkeypatch.setitem(cli.COMMANDS, "report", hostile)
    assert cli.main(["report", "cdk.out"]) == 2
    said = capsys.readouterr().err
    assert "\x1b" not in said
    assert "server said \\x1b]0;owned\\x07\\x1b[2J" in said
