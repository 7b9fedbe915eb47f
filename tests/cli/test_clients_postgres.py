"""`rds-force-ssl clients` against a real PostgreSQL server: plaintext and TLS sessions opened
by libpq (psycopg) under several users and application names, a role that may see only its own
sessions, 200 concurrent sessions; then the connection log that same server wrote with
log_connections=on and RDS's log_line_prefix, read from a file and from moto's CloudWatch Logs.

The server is this module's own (tests/cli/pgserver.py): room for 300 connections, RDS's
log_line_prefix, and pg_hba.conf lines that take plaintext and TLS alike.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from rds_force_ssl import cli
from rds_force_ssl.cli import connlog
from tests.cli.conftest import REQUIRE_POSTGRES, Run
from tests.cli.pgserver import (
    ADDRESS,
    APP_DB,
    APP_USER,
    HOST,
    PgServer,
    find_bindir,
    start_server,
)

pytestmark = pytest.mark.postgres

REPORTER = "reporter"  # a second login role, with a password
LOWLY = "lowly"  # a role without pg_read_all_stats: it sees only its own sessions' details
BULK = "bulk"  # trust, for the 200 sessions: no SCRAM round per connection
HBA = (
    f"host all {BULK} {ADDRESS}/32 trust",
    f"host all all {ADDRESS}/32 scram-sha-256",
)
SETTINGS = (
    ("max_connections", "300"),
    ("log_line_prefix", f"'{connlog.RDS_LINE_PREFIX}'"),
)


@pytest.fixture(scope="module")
def server() -> Iterator[PgServer]:
    bindir = find_bindir()
    if bindir is None:
        if REQUIRE_POSTGRES:
            pytest.fail("PostgreSQL server binaries not found", pytrace=False)
        pytest.skip("PostgreSQL server binaries not found")
    pg = start_server(
        bindir=bindir, app_password="real-" + secrets.token_hex(12), settings=SETTINGS
    )
    try:
        with pg.admin() as conn:
            for role in (REPORTER, LOWLY):
                conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{pg.app_password}'")
            conn.execute(f"CREATE ROLE {BULK} LOGIN")
        pg.configure(hba=HBA)
        yield pg
    finally:
        pg.stop()
        pg.remove()


@contextlib.contextmanager
def sessions(
    pg: PgServer, *specs: tuple[str, str, bool], count: int = 1
) -> Iterator[list[psycopg.Connection[Any]]]:
    """``count`` sessions per (user, application_name, tls), open while the block runs; on exit
    they are closed, and the block ends once the server no longer lists them."""
    opened: list[psycopg.Connection[Any]] = []
    try:
        for user, application, tls in specs:
            for _ in range(count):
                opened.append(
                    psycopg.connect(
                        host=HOST if tls else ADDRESS,
                        hostaddr=ADDRESS,
                        port=pg.port,
                        user=user,
                        dbname=APP_DB,
                        password=pg.app_password,
                        application_name=application,
                        sslmode="verify-full" if tls else "disable",
                        sslrootcert=str(pg.ca_file),
                    )
                )
        yield opened
    finally:
        for conn in opened:
            conn.close()
        settle(pg)


def settle(pg: PgServer) -> None:
    """Wait until no client session but the admin's is left (a backend outlives its client's
    close by a moment)."""
    deadline = time.monotonic() + 20
    with pg.admin() as conn:
        while True:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                "AND pid <> pg_backend_pid()"
            ).fetchone()
            if row is not None and row[0] == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError("sessions still open after 20 s")
            time.sleep(0.01)


@pytest.fixture
def clients(
    server: PgServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Run]:
    """`rds-force-ssl clients` in-process against the module's server, as ``user``; every run
    also proves that the password appears in neither stream."""

    def run(*extra: str, user: str = APP_USER) -> Run:
        monkeypatch.setenv("PGPASSWORD", server.app_password)
        argv = ["clients", "--host", HOST, "--port", str(server.port), "--dbname", APP_DB]
        code = cli.main([*argv, "--user", user, "--sslrootcert", str(server.ca_file), *extra])
        captured = capsys.readouterr()
        assert server.app_password not in captured.out + captured.err
        return Run(code, captured.out, captured.err)

    return run


def groups(run: Run) -> dict[tuple[str, str, str], dict[str, Any]]:
    report = json.loads(run.out)
    return {(g["user"], g["application"], g["client"]): g for g in report["groups"]}


def counts(group: dict[str, Any]) -> tuple[int, int, int]:
    return group["plaintext"], group["tls"], group["hidden"]


def test_plaintext_and_tls_sessions_grouped_by_user_application_and_address(
    server: PgServer, clients: Callable[..., Run]
) -> None:
    specs = (
        (REPORTER, "nightly report", False),
        (APP_USER, "web", True),
        (APP_USER, "psql", False),
    )
    mark = server.log_mark()
    with sessions(server, *specs, count=2):
        run = clients("--json")
    assert run.code == 1, run.out
    found = groups(run)
    assert set(found) == {
        (REPORTER, "nightly report", ADDRESS),
        (APP_USER, "web", ADDRESS),
        (APP_USER, "psql", ADDRESS),
    }, found  # our own session is not listed
    assert counts(found[(REPORTER, "nightly report", ADDRESS)]) == (2, 0, 0)
    assert counts(found[(APP_USER, "psql", ADDRESS)]) == (2, 0, 0)
    web = found[(APP_USER, "web", ADDRESS)]
    assert counts(web) == (0, 2, 0)
    assert web["tls_protocols"] == ["TLSv1.3"]
    assert web["databases"] == [APP_DB]
    assert len(web["client_ports"]) == 2  # the two sessions' own ports
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", web["last"])
    report = json.loads(run.out)
    assert report["totals"]["plaintext"] == 4
    assert report["complete"] is True
    # The listing's own login: over TLS, and named.
    log = server.log_since(mark)
    assert re.search(
        rf"connection authorized: user={APP_USER} database={APP_DB} "
        r"application_name=rds-force-ssl clients SSL enabled \(protocol=TLSv1\.3",
        log,
    ), log


def test_the_list_is_one_statement_in_one_message(
    server: PgServer, clients: Callable[..., Run]
) -> None:
    """With log_statement=all for the listing's role, the server logs each statement it
    receives: the listing's session sends one message (its timeout and the SELECT)."""
    with server.admin() as conn:
        conn.execute(f"ALTER ROLE {APP_USER} SET log_statement = 'all'")
    try:
        mark = server.log_mark()
        with sessions(server, (REPORTER, "nightly report", False)):
            run = clients()
        log = server.log_since(mark)
    finally:
        with server.admin() as conn:
            conn.execute(f"ALTER ROLE {APP_USER} RESET log_statement")
    assert run.code == 1
    pid = re.findall(
        r"\[(\d+)\]:LOG:  connection authorized: user=app database=appdb "
        r"application_name=rds-force-ssl clients SSL enabled",
        log,
    )
    assert len(pid) == 1, log
    statements = re.findall(rf"\[{pid[0]}\]:LOG:  statement: (.*)", log)
    assert len(statements) == 1, statements
    assert statements[0].startswith("SET statement_timeout = 30000; ")
    assert "FROM pg_stat_activity a LEFT JOIN pg_stat_ssl s" in log


def test_table_names_the_plaintext_clients_first(
    server: PgServer, clients: Callable[..., Run]
) -> None:
    with sessions(server, (APP_USER, "web", True), (REPORTER, "nightly report", False)):
        run = clients()
    assert run.code == 1
    lines = run.out.splitlines()
    assert lines[0] == (
        f"rds-force-ssl clients {APP_USER}@{HOST}:{server.port}/{APP_DB} (postgresql sessions)"
    )
    assert lines[1].split() == [
        "USER",
        "APPLICATION",
        "CLIENT",
        "PLAINTEXT",
        "TLS",
        "OTHER",
        "DATABASES",
        "TLS",
        "PROTOCOLS",
        "LAST",
    ]
    assert lines[2].split()[:7] == [REPORTER, "nightly", "report", ADDRESS, "1", "0", "0"]
    assert lines[3].split()[:6] == [APP_USER, "web", ADDRESS, "0", "1", "0"]
    assert lines[-1] == (
        "verdict: PLAINTEXT CLIENTS: 1 session(s) from 1 (user, application, client) would be "
        "refused once SSL-only is enforced (exit 1)"
    )


def test_only_tls_sessions_exit_0(server: PgServer, clients: Callable[..., Run]) -> None:
    with sessions(server, (APP_USER, "web", True), (REPORTER, "api", True)):
        run = clients()
    assert run.code == 0, run.out
    assert run.out.splitlines()[-1] == (
        "verdict: NO PLAINTEXT CLIENT: 2 session(s) seen, none without TLS (exit 0)"
    )


def test_a_role_without_pg_read_all_stats_sees_others_as_hidden(
    server: PgServer, clients: Callable[..., Run]
) -> None:
    """Other roles' sessions show their user and application only: counted as hidden, never as
    encrypted, and the view is incomplete (exit 2) even though they use TLS."""
    with sessions(server, (APP_USER, "web", True), (REPORTER, "nightly report", False)):
        run = clients("--json", user=LOWLY)
    assert run.code == 2, run.out
    found = groups(run)
    assert counts(found[(APP_USER, "web", "")]) == (0, 0, 1)
    assert counts(found[(REPORTER, "nightly report", "")]) == (0, 0, 1)
    report = json.loads(run.out)
    assert report["totals"]["tls"] == 0
    assert report["complete"] is False
    assert report["notes"][0].startswith(
        f"2 session(s) of other roles are hidden from {LOWLY}: PostgreSQL shows their user and "
        "application but not their address or TLS state"
    )
    assert "GRANT pg_read_all_stats TO lowly" in report["notes"][0]


def test_a_hidden_view_with_a_plaintext_session_of_its_own_still_exits_1(
    server: PgServer, clients: Callable[..., Run]
) -> None:
    with sessions(server, (APP_USER, "web", True), (LOWLY, "legacy", False)):
        run = clients(user=LOWLY)
    assert run.code == 1, run.out
    assert re.search(rf"^{LOWLY}\s+legacy\s+{re.escape(ADDRESS)}\s+1\s+0\s+0", run.out, re.M)
    assert re.search(rf"^{APP_USER}\s+web\s+-\s+0\s+0\s+1", run.out, re.M)
    assert "note: 1 session(s) of other roles are hidden from lowly" in run.out


def test_two_hundred_concurrent_sessions(server: PgServer, clients: Callable[..., Run]) -> None:
    specs = [(BULK, f"worker-{n % 4}", n % 4 != 0) for n in range(200)]
    with sessions(server, *specs):
        run = clients("--json")
    assert run.code == 1
    found = groups(run)
    assert counts(found[(BULK, "worker-0", ADDRESS)]) == (50, 0, 0)
    for n in (1, 2, 3):
        assert counts(found[(BULK, f"worker-{n}", ADDRESS)]) == (0, 50, 0)
    assert json.loads(run.out)["seen"] == 200


def test_the_session_cap_is_said() -> None:
    from rds_force_ssl.cli import clients as logic

    rows = [(APP_USER, APP_DB, "web", ADDRESS, "5000", None, "client backend", "t", "TLSv1.3", "X")]
    report = logic.postgres_report(rows * 3, user=APP_USER, limit=2)
    assert report.seen == 2
    assert not report.complete
    assert report.notes == ["more than 2 sessions: only the first 2 were read"]
    assert logic.exit_code(report) == 2


def test_a_server_that_never_answers_ends_at_the_timeout(
    server: PgServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A port that accepts the connection and then says nothing: the command ends at its
    --timeout with a usage-class error, not at libpq's own limits."""
    import socket

    monkeypatch.setenv("PGPASSWORD", server.app_password)
    with socket.socket() as silent:
        silent.bind((ADDRESS, 0))
        silent.listen()
        port = silent.getsockname()[1]
        argv = ["clients", "--host", HOST, "--port", str(port), "--user", APP_USER]
        code = cli.main([*argv, "--sslrootcert", str(server.ca_file), "--timeout", "1", "--json"])
    assert code == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "timeout"
    assert error["message"].endswith("did not finish within --timeout 1 s")


# ---- the connection log the server wrote ---------------------------------------------------
@pytest.fixture(scope="module")
def written_log(server: PgServer) -> str:
    """What the server logged while one plaintext and one TLS client logged in (and our own
    admin connections over the socket)."""
    settle(server)
    mark = server.log_mark()
    specs = ((REPORTER, "nightly report", False), (APP_USER, "web", True))
    with sessions(server, *specs, count=3):
        pass
    with sessions(server, (APP_USER, "", False)):
        pass
    return server.log_since(mark)


def test_the_server_writes_lines_in_rds_format(written_log: str) -> None:
    assert re.search(
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC:127\.0\.0\.1\(\d+\):reporter@appdb:\[\d+\]:LOG:  "
        r"connection authorized: user=reporter database=appdb application_name=nightly report$",
        written_log,
        re.M,
    ), written_log


def run_log(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> Run:
    code = cli.main(["clients", "--log-file", str(path), *extra])
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def test_log_file_lists_the_plaintext_logins(
    written_log: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "postgresql.log"
    log.write_text(written_log)
    run = run_log(log, capsys, "--json")
    assert run.code == 1, run.out
    found = groups(run)
    assert counts(found[(REPORTER, "nightly report", ADDRESS)]) == (3, 0, 0)
    assert counts(found[(APP_USER, "web", ADDRESS)]) == (0, 3, 0)
    assert counts(found[(APP_USER, "", ADDRESS)]) == (1, 0, 0)
    assert found[(APP_USER, "web", ADDRESS)]["tls_protocols"] == ["TLSv1.3"]
    today = f"{datetime.now(UTC):%Y-%m-%d}"
    assert found[(REPORTER, "nightly report", ADDRESS)]["last"] == today
    # The admin's socket sessions are local, not plaintext network clients.
    local = found[("postgres", "", "[local]")]
    assert local["local"] > 0
    assert local["plaintext"] == 0
    assert json.loads(run.out)["totals"]["plaintext"] == 4


def test_log_file_without_plaintext_exits_0(
    written_log: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tls_only = [
        line
        for line in written_log.splitlines(keepends=True)
        if "connection authorized" not in line or "SSL enabled" in line
    ]
    log = tmp_path / "tls.log"
    log.write_text("".join(tls_only))
    run = run_log(log, capsys)
    assert run.code == 0, run.out
    assert "NO PLAINTEXT CLIENT: 3 login(s) seen" in run.out


def test_log_without_connection_lines_is_incomplete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "quiet.log"
    log.write_text("2026-01-01 00:00:00 UTC::@:[1]:LOG:  database system is ready\n")
    run = run_log(log, capsys)
    assert run.code == 2
    assert "note: no 'connection authorized' line at all: is log_connections on?" in run.out


def test_a_log_in_another_prefix_is_not_counted_but_said(
    server: PgServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The shared test servers' own prefix ('%m [%p] %r %u@%d '): lines the scan cannot
    place are counted and said, never taken for TLS."""
    line = (
        "2026-12-07 02:19:59.599 UTC [14604] 127.0.0.1(42096) app@appdb LOG:  connection "
        "authorized: user=app database=appdb application_name=cron job\n"
    )
    log = tmp_path / "other.log"
    log.write_text(line)
    run = run_log(log, capsys)
    assert run.code == 2
    assert "1 'connection authorized' line(s) not in RDS's format" in run.out


def test_log_days_window(
    written_log: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = re.sub(r"^\d{4}-\d\d-\d\d", "2020-01-01", written_log, flags=re.M)
    log = tmp_path / "old.log"
    log.write_text(old)
    run = run_log(log, capsys)
    assert run.code == 0, run.out
    assert re.search(
        r"note: no connection in the last 7 day\(s\) \(UTC\): the \d+ 'connection authorized' "
        r"line\(s\) are older",
        run.out,
    ), run.out


def test_a_plaintext_client_named_like_tls_is_never_counted_as_tls(
    server: PgServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """PostgreSQL logs the application name as the client sent it, before its own TLS part:
    a plaintext session named like that part writes a line that ends as a TLS login's. Real
    sessions, plaintext and TLS, under such a name: both ambiguous, neither TLS."""
    spoof = "x SSL enabled (protocol=TLSv1.3, cipher=A, bits=256)"
    settle(server)
    mark = server.log_mark()
    with sessions(server, (REPORTER, spoof, False), (APP_USER, spoof, True)):
        pass
    written = server.log_since(mark)
    # The plaintext login's line: the name, as sent, is its end.
    assert re.search(
        rf":reporter@appdb:\[\d+\]:LOG:  connection authorized: user=reporter database=appdb "
        rf"application_name={re.escape(spoof)}$",
        written,
        re.M,
    ), written
    log = tmp_path / "spoof.log"
    log.write_text(written)
    run = run_log(log, capsys, "--json")
    assert run.code == 2, run.out
    report = json.loads(run.out)
    assert (report["totals"]["plaintext"], report["totals"]["tls"]) == (0, 0)
    found = groups(run)
    assert counts(found[(REPORTER, "x", ADDRESS)]) == (0, 0, 1)
    assert counts(found[(APP_USER, spoof, ADDRESS)]) == (0, 0, 1)
    assert report["notes"][0].startswith(
        "2 login(s) whose line has 'SSL enabled (' where PostgreSQL would not write it"
    )


# ---- the same lines in CloudWatch Logs (moto) ----------------------------------------------
@pytest.fixture
def logs_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_endpoint


def feed(lines: list[str], group: str) -> None:
    import boto3

    logs = boto3.client("logs", region_name="us-east-1")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="stream-1")
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName="stream-1",
        logEvents=[{"timestamp": now, "message": line} for line in lines],
    )


def test_cloudwatch_lists_the_plaintext_logins(
    written_log: str, logs_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    feed(written_log.splitlines(), "/aws/rds/instance/payments/postgresql")
    code = cli.main(["clients", "--instance", "payments", "--region", "us-east-1", "--json"])
    run = Run(code, *capsys.readouterr())
    assert run.code == 1, run.out + run.err
    found = groups(run)
    assert counts(found[(REPORTER, "nightly report", ADDRESS)]) == (3, 0, 0)
    assert counts(found[(APP_USER, "web", ADDRESS)]) == (0, 3, 0)
    assert json.loads(run.out)["where"] == "CloudWatch Logs /aws/rds/instance/payments/postgresql"


def test_cloudwatch_pages_are_all_read(
    written_log: str,
    logs_env: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(connlog, "PAGE_EVENTS", 500)  # 12 pages
    plaintext = [line for line in written_log.splitlines() if "nightly report" in line]
    feed(plaintext * 2000, "/aws/rds/cluster/ledger/postgresql")
    code = cli.main(["clients", "--cluster", "ledger", "--region", "us-east-1", "--json"])
    run = Run(code, *capsys.readouterr())
    assert run.code == 1, run.out + run.err
    assert counts(groups(run)[(REPORTER, "nightly report", ADDRESS)]) == (6000, 0, 0)


def test_cloudwatch_missing_log_group_names_the_export(
    logs_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["clients", "--instance", "nolog", "--region", "us-east-1"])
    run = Run(code, *capsys.readouterr())
    assert run.code == 2
    assert "no log group /aws/rds/instance/nolog/postgresql" in run.err
    assert "cloudwatch_logs_exports=['postgresql']" in run.err
