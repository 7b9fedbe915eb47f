"""The connection-log reader on its own: the message forms PostgreSQL versions write, the block
reader's edges (a line cut by a block, a line longer than a block), the group cap, and terminal
safety of what a client named itself."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rds_force_ssl import cli
from rds_force_ssl.cli import clients, connlog

SINCE = datetime(2026, 1, 1, tzinfo=UTC)
PREFIX = "2026-01-02 03:04:05 UTC:10.0.0.5(43210):app@appdb:[1234]:LOG:  "
TLS = " SSL enabled (protocol=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384, bits=256)"


SPOOF = "x SSL enabled (protocol=TLSv1.3, cipher=A, bits=256)"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("user=app database=appdb", ("app", "appdb", "", None, None, False)),
        (
            "user=app database=appdb application_name=cron job" + TLS,
            ("app", "appdb", "cron job", "TLSv1.3", "TLS_AES_256_GCM_SHA384", False),
        ),
        (  # PostgreSQL 12 still said compression
            "user=app database=appdb SSL enabled (protocol=TLSv1.2, cipher=ECDHE-RSA-AES256-GCM"
            "-SHA384, bits=256, compression=off)",
            ("app", "appdb", "", "TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384", False),
        ),
        (  # GSSAPI encryption is not TLS: refused by SSL-only rules
            "user=app database=appdb GSS (authenticated=yes, encrypted=yes, principal=a@B)",
            ("app", "appdb", "", None, None, False),
        ),
        (
            "user=repl application_name=walreceiver",
            ("repl", None, "walreceiver", None, None, False),
        ),
        # A client's name that says "SSL enabled (": never TLS, whatever follows.
        (  # plaintext, posing as TLS with a cipher OpenSSL does not have
            "user=app database=appdb application_name=" + SPOOF,
            ("app", "appdb", "x", None, None, True),
        ),
        (  # TLS whose name says it too: two marks
            "user=app database=appdb application_name=" + SPOOF + TLS,
            ("app", "appdb", SPOOF, None, None, True),
        ),
        (  # plaintext, a name with the mark and nothing that reads as a TLS part
            "user=app database=appdb application_name=SSL enabled (",
            ("app", "appdb", "SSL enabled (", None, None, True),
        ),
        (  # a TLS 1.2 suite's name under TLS 1.3, and an unknown protocol
            "user=app database=appdb application_name=x SSL enabled (protocol=TLSv1.3, "
            "cipher=ECDHE-RSA-AES256-GCM-SHA384, bits=256)",
            ("app", "appdb", "x", None, None, True),
        ),
        (
            "user=app database=appdb application_name=x SSL enabled (protocol=TLSv9, "
            "cipher=TLS_AES_256_GCM_SHA384, bits=256)",
            ("app", "appdb", "x", None, None, True),
        ),
    ],
)
def test_message_forms(message: str, expected: tuple[object, ...]) -> None:
    assert connlog.parse_message(message) == expected


def scan(text: bytes, *, block: int = connlog.BLOCK) -> connlog.Scan:
    return connlog.scan_file(io.BytesIO(text), since=SINCE, block=block)


def test_lines_cut_by_block_boundaries_are_read_whole() -> None:
    plain = f"{PREFIX}connection authorized: user=app database=appdb\n".encode()
    tls = f"{PREFIX}connection authorized: user=app database=appdb{TLS}\n".encode()
    text = (plain + tls) * 50
    found = scan(text, block=333)  # no block boundary falls on a line end
    assert found.lines == 100
    assert {(x.protocol, x.count) for x in found.logins} == {(None, 50), ("TLSv1.3", 50)}
    assert found.bytes_read == len(text)


def test_a_line_longer_than_a_block_is_skipped_and_counted() -> None:
    plain = f"{PREFIX}connection authorized: user=app database=appdb\n".encode()
    text = plain + b"x" * 5000 + b"\n" + plain
    found = scan(text, block=1024)
    assert found.skipped_long == 1
    assert [x.count for x in found.logins] == [2]


def test_the_group_cap_stops_the_scan_and_says_so() -> None:
    lines = "".join(f"{PREFIX}connection authorized: user=u{n} database=appdb\n" for n in range(50))
    found = connlog.scan_file(io.BytesIO(lines.encode()), since=SINCE, max_groups=10)
    assert found.truncated is not None
    assert found.truncated.startswith("more than 10 distinct")


def test_a_clients_name_cannot_drive_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """PostgreSQL keeps printable ASCII in application_name, but a log can come from anywhere:
    what a line says is escaped before it reaches the terminal."""
    today = f"{datetime.now(UTC):%Y-%m-%d}"
    line = (
        f"{today} 03:04:05 UTC:10.0.0.5(1):app@appdb:[1]:LOG:  connection authorized: "
        "user=app database=appdb application_name=evil\x1b]0;owned\x07\n"
    )
    log = tmp_path / "evil.log"
    log.write_bytes(line.encode())
    assert cli.main(["clients", "--log-file", str(log)]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "evil\\x1b]0;owned\\x07" in out


def test_window_start_counts_today_as_day_one() -> None:
    now = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)
    assert connlog.window_start(1, now=now) == datetime(2026, 3, 10, tzinfo=UTC)
    assert connlog.window_start(7, now=now) == datetime(2026, 3, 4, tzinfo=UTC)


def test_one_source_exactly(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["clients"]) == 2
    assert "clients reads one source: none was given" in capsys.readouterr().err
    assert cli.main(["clients", "--log-file", "x", "--instance", "db"]) == 2
    assert "--log-file, --instance" in capsys.readouterr().err


def test_mysql_without_verify_full_needs_the_explicit_allowance(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["clients", "--engine", "mysql", "--host", "db.example", "--user", "app"]
    assert cli.main([*argv, "--sslmode", "require"]) == 2
    assert "MySQL has no channel binding" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--log-file", "x", "--user", "app"], "--user does not apply to --log-file"),
        (["--log-file", "x", "--region", "eu-west-1"], "--region does not apply to --log-file"),
        (["--host", "db.example", "--days", "3"], "--days does not apply to --host"),
        (["--instance", "db", "--sslrootcert", "ca.pem"], "--sslrootcert does not apply to"),
    ],
)
def test_an_option_of_another_source_is_a_usage_error(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["clients", *argv]) == 2
    assert said in capsys.readouterr().err


class EndlessLog:
    """A log group that always has another page (a stub of FilterLogEvents)."""

    def __init__(self) -> None:
        self.calls = 0

    def filter_log_events(self, **kwargs: object) -> dict[str, object]:
        self.calls += 1
        line = f"{PREFIX}connection authorized: user=app database=appdb"
        return {"events": [{"message": line}] * 10, "nextToken": f"t{self.calls}"}


def test_cloudwatch_reading_stops_at_the_event_cap_and_says_so() -> None:
    import time

    from rds_force_ssl.cli import clients

    log = EndlessLog()
    found = connlog.scan_cloudwatch(
        log,
        "/aws/rds/instance/db/postgresql",
        since=SINCE,
        until=SINCE,
        deadline=time.monotonic() + 60,
        max_events=95,
    )
    assert log.calls == 10
    assert found.lines == 95
    assert found.truncated == "stopped at 95 events of /aws/rds/instance/db/postgresql"
    report = clients.log_report(found, source="log", days=7)
    assert not report.complete
    assert clients.exit_code(report) == 1  # what was read still shows plaintext logins


def test_cloudwatch_reading_stops_at_the_deadline() -> None:
    import time

    log = EndlessLog()
    found = connlog.scan_cloudwatch(
        log,
        "/aws/rds/instance/db/postgresql",
        since=SINCE,
        until=SINCE,
        deadline=time.monotonic() - 1,
    )
    assert log.calls == 0
    assert found.truncated == "--timeout reached after 0 events of /aws/rds/instance/db/postgresql"


ROOT = Path(__file__).resolve().parents[2]


def test_a_log_without_connection_lines_names_the_reboot_a_new_group_needs() -> None:
    """log_connections is dynamic only in a group the database already uses: the usual reason
    for no line at all, after a first deploy on a default group, is the reboot still owed."""
    report = clients.log_report(connlog.Scan(), source="log", days=7)
    assert report.complete is False
    (note,) = report.notes
    assert "no restart" not in note
    assert (
        "a group newly associated with it (a database on a default group gets one) takes "
        "effect only after a reboot (`rds-force-ssl audit` shows pending-reboot until then)"
    ) in note


def test_the_rollout_recipe_owns_the_reboot_of_a_new_group() -> None:
    """README, "Before you enforce", step 1, and the clients page: a database on a default
    group gets a new group from `parameters=`, which waits for a reboot."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Before you enforce", 1)[1].split("\n## ", 1)[0]
    step1 = " ".join(section.split("\n1. ", 1)[1].split("\n2. ", 1)[0].split())
    assert "no restart" not in step1
    for said in (
        "a newly associated group takes effect only after one reboot",
        "`rds-force-ssl audit` says so",
        "[reboot policy](docs/reboot.md)",
    ):
        assert said in step1, step1
    page = " ".join((ROOT / "docs" / "cli" / "clients.md").read_text().split())
    assert "in the parameter group and it applies without a restart" not in page
    assert "a new group (CDK: `parameters=`) takes effect only after one reboot" in page


def test_clients_instance_without_credentials_says_how_to_set_them_and_what_to_grant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.cli.moto_fleets import AWS_VARIABLES

    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert cli.main(["clients", "--instance", "mydb", "--region", "eu-west-1"]) == 2
    group = "/aws/rds/instance/mydb/postgresql"
    assert capsys.readouterr().err == (
        f"rds-force-ssl: no usable AWS credentials to read {group} in eu-west-1: Unable to "
        "locate credentials\n"
        "  fix: set AWS_PROFILE (after `aws sso login` or `aws configure`), or AWS_ACCESS_KEY_ID "
        f"and AWS_SECRET_ACCESS_KEY; the identity needs logs:FilterLogEvents on the log group "
        f"{group} (docs/cli/iam.md)\n"
    )
