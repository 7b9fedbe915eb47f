"""What `main` does with input or failures the commands did not foresee: never a traceback and
never exit 1, which means NOT ENFORCED; a usage error or an UNREACHABLE endpoint instead, and an
"internal error" (exit 2) as the last resort, as JSON under --json."""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
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


# The console script pyproject's [project.scripts] installs, as it runs: main's code, then the
# interpreter's own final flush of stdout, which must not fail again either.
ENTRY_POINT = "import sys; from rds_force_ssl.cli import main; sys.exit(main())"


def _connection_log(tmp_path: Path, clients: int) -> Path:
    """A connection log with ``clients`` plaintext clients: about 320 bytes of JSON each."""
    today = f"{datetime.now(UTC):%Y-%m-%d}"
    log = tmp_path / "postgresql.log"
    log.write_text(
        "".join(
            f"{today} 03:04:05 UTC:10.0.{n // 250}.{n % 250}(1):app{n}@appdb:[1]:LOG:  "
            f"connection authorized: user=app{n} database=appdb\n"
            for n in range(clients)
        )
    )
    return log


@pytest.mark.parametrize("as_json", [True, False])
def test_a_reader_that_closes_the_pipe_early_gets_exit_2_and_no_traceback(
    tmp_path: Path, as_json: bool
) -> None:
    """`rds-force-ssl clients ... | head -1`: far more output than a pipe holds (64 KiB), so the
    command is still writing when the reader goes. Exit 2, as for any output that could not be
    delivered whole: never 1 (NOT ENFORCED, though nothing was concluded) nor a traceback."""
    log = _connection_log(tmp_path, 3000)
    argv = ["clients", "--log-file", str(log), *(["--json"] if as_json else [])]
    child = subprocess.Popen(
        [sys.executable, "-c", ENTRY_POINT, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert child.stdout is not None
    assert child.stderr is not None
    assert child.stdout.readline()  # what `head -1` reads, before it closes the pipe
    child.stdout.close()
    said = child.stderr.read().decode()
    code = child.wait(timeout=60)
    assert said == ""  # the reader chose to stop: nothing to say
    if as_json:
        assert code == 2
    else:
        # The table goes out in one write of the whole text, which CPython's buffered stdout
        # can count as written though the reader left: then no write failed, and the exit code
        # is the verdict's own (1: this log has plaintext clients), never a traceback's.
        assert code in (1, 2)


def test_a_pipe_closed_before_the_first_write_gets_exit_2_and_no_traceback(tmp_path: Path) -> None:
    """Even the little a usage error writes under --json fails on a closed pipe."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-c", ENTRY_POINT, "report", str(tmp_path / "nothing"), "--json"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 2
    assert done.stderr.decode() == ""


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
@pytest.mark.parametrize("clients", [1, 3000])  # output that fits stdout's buffer, and more
@pytest.mark.parametrize("as_json", [True, False])
def test_output_to_a_full_disk_is_said_on_stderr_with_exit_2(
    tmp_path: Path, clients: int, as_json: bool
) -> None:
    log = _connection_log(tmp_path, clients)
    argv = ["clients", "--log-file", str(log), *(["--json"] if as_json else [])]
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-c", ENTRY_POINT, *argv],
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    assert done.stderr.decode() == (
        "rds-force-ssl: could not write the output: No space left on device\n"
        "  fix: write it where there is room (another file or disk), or to a terminal\n"
    )


def test_a_failing_write_is_not_mistaken_for_a_bug(capsys: pytest.CaptureFixture[str]) -> None:
    """In process, as a caller of main sees it: exit 2 and the one message, not an "internal
    error" on top of it."""

    class Full(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    real = sys.stdout
    sys.stdout = Full()
    try:
        assert cli.main(["report", "no-such-folder", "--json"]) == 2
    finally:
        sys.stdout = real
    assert capsys.readouterr().err == (
        "rds-force-ssl: could not write the output: No space left on device\n"
        "  fix: write it where there is room (another file or disk), or to a terminal\n"
    )
