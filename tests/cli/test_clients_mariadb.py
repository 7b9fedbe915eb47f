"""`rds-force-ssl clients --engine mysql` against a real MariaDB server with performance_schema
on (tests/cli/mariadbserver.py), require_secure_transport off so that plaintext clients get in:
plaintext and TLS sessions from PyMySQL under several users and program names; a login without
SELECT on performance_schema; and a server with performance_schema off, which can say who is
connected but not how.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rds_force_ssl import cli
from tests.cli.conftest import REQUIRE_MARIADB, Run
from tests.cli.mariadbserver import (
    APP_USER,
    MariaDbServer,
    find_binaries,
    native_hash,
    start_server,
)
from tests.cli.pgserver import ADDRESS, HOST

pytestmark = pytest.mark.mariadb

AUDITOR = "auditor"  # SELECT on performance_schema, and PROCESS (the client ports)
WATCHER = "watcher"  # SELECT on performance_schema only
LOWLY = "lowly"  # neither


def _start(*, performance_schema: bool) -> MariaDbServer:
    if find_binaries() is None:
        if REQUIRE_MARIADB:
            pytest.fail("MariaDB server binaries not found", pytrace=False)
        pytest.skip("MariaDB server binaries not found")
    server = start_server(
        app_password="real-" + secrets.token_hex(12), performance_schema=performance_schema
    )
    with server.admin() as conn, conn.cursor() as cur:
        for user in (AUDITOR, WATCHER, LOWLY):
            cur.execute(
                f"CREATE USER {user}@'%' IDENTIFIED BY PASSWORD "
                f"'{native_hash(server.app_password)}'"
            )
        cur.execute(f"GRANT SELECT ON performance_schema.* TO {AUDITOR}@'%'")
        cur.execute(f"GRANT PROCESS ON *.* TO {AUDITOR}@'%'")
        cur.execute(f"GRANT SELECT ON performance_schema.* TO {WATCHER}@'%'")
        cur.execute("SET GLOBAL require_secure_transport = OFF")
    return server


@pytest.fixture(scope="module")
def server() -> Iterator[MariaDbServer]:
    maria = _start(performance_schema=True)
    yield maria
    maria.stop()
    maria.remove()


@contextlib.contextmanager
def sessions(maria: MariaDbServer, *specs: tuple[str, str, bool]) -> Iterator[None]:
    """One session per (user, program_name, tls), open while the block runs; closed after, and
    the block ends once the server no longer lists them."""
    import pymysql

    context = ssl.create_default_context(cafile=str(maria.ca_file))
    opened: list[Any] = []
    try:
        for user, program, tls in specs:
            options: dict[str, Any] = {"ssl": context} if tls else {"ssl_disabled": True}
            opened.append(
                pymysql.connect(
                    host=HOST if tls else ADDRESS,
                    port=maria.port,
                    user=user,
                    password=maria.app_password,
                    program_name=program,
                    **options,
                )
            )
        yield
    finally:
        for conn in opened:
            conn.close()
        settle(maria)


def settle(maria: MariaDbServer) -> None:
    deadline = time.monotonic() + 20
    with maria.admin() as conn, conn.cursor() as cur:
        while True:
            cur.execute(
                "SELECT count(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
                "AND COMMAND NOT IN ('Daemon') AND USER <> 'system user'"
            )
            row = cur.fetchone()
            if row is not None and row[0] == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError("sessions still open after 20 s")
            time.sleep(0.01)


def run_clients(
    maria: MariaDbServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *extra: str,
    user: str = AUDITOR,
) -> Run:
    monkeypatch.setenv("MYSQL_PWD", maria.app_password)
    argv = ["clients", "--engine", "mysql", "--host", HOST, "--port", str(maria.port)]
    code = cli.main([*argv, "--user", user, "--sslrootcert", str(maria.ca_file), *extra])
    captured = capsys.readouterr()
    assert maria.app_password not in captured.out + captured.err
    return Run(code, captured.out, captured.err)


@pytest.fixture
def clients(
    server: MariaDbServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Run]:
    def run(*extra: str, user: str = AUDITOR) -> Run:
        return run_clients(server, monkeypatch, capsys, *extra, user=user)

    return run


def groups(run: Run) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(g["user"], g["application"], g["client"]): g for g in json.loads(run.out)["groups"]}


def test_plaintext_and_tls_sessions_by_connection_type(
    server: MariaDbServer, clients: Callable[..., Run]
) -> None:
    specs = (
        (APP_USER, "cron job", False),
        (APP_USER, "cron job", False),
        (APP_USER, "web", True),
        (LOWLY, "report", False),
    )
    with sessions(server, *specs):
        run = clients("--json")
    assert run.code == 1, run.out
    found = groups(run)
    assert set(found) == {
        (APP_USER, "cron job", ADDRESS),
        (APP_USER, "web", ADDRESS),
        (LOWLY, "report", ADDRESS),
    }, found  # our own session is left out
    cron = found[(APP_USER, "cron job", ADDRESS)]
    assert (cron["plaintext"], cron["tls"], cron["hidden"]) == (2, 0, 0)
    web = found[(APP_USER, "web", ADDRESS)]
    assert (web["plaintext"], web["tls"]) == (0, 1)
    assert web["tls_protocols"] == ["TLSv1.3"]  # status_by_thread's Ssl_version
    assert found[(LOWLY, "report", ADDRESS)]["plaintext"] == 1
    assert json.loads(run.out)["complete"] is True


def test_select_on_performance_schema_alone_sees_every_session(
    server: MariaDbServer, clients: Callable[..., Run]
) -> None:
    """The threads table shows every user's sessions and transport to a login that may read
    it; PROCESS adds only the client ports (PROCESSLIST)."""
    with sessions(server, (APP_USER, "cron job", False), (LOWLY, "web", True)):
        run = clients("--json", user=WATCHER)
    assert run.code == 1, run.out
    found = groups(run)
    assert found[(APP_USER, "cron job", ADDRESS)]["plaintext"] == 1
    assert found[(LOWLY, "web", ADDRESS)]["tls"] == 1
    assert json.loads(run.out)["complete"] is True


def test_only_tls_sessions_exit_0(server: MariaDbServer, clients: Callable[..., Run]) -> None:
    with sessions(server, (APP_USER, "web", True), (LOWLY, "api", True)):
        run = clients()
    assert run.code == 0, run.out
    assert run.out.splitlines()[-1] == (
        "verdict: NO PLAINTEXT CLIENT: 2 session(s) seen, none without TLS (exit 0)"
    )


def test_a_login_without_select_on_performance_schema_is_told_the_grant(
    server: MariaDbServer, clients: Callable[..., Run]
) -> None:
    run = clients(user=LOWLY)
    assert run.code == 2
    assert "rds-force-ssl: lowly may not read performance_schema" in run.err
    assert "fix: GRANT SELECT ON performance_schema.* TO 'lowly'@'%'" in run.err


def test_without_performance_schema_who_but_not_how(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    maria = _start(performance_schema=False)
    try:
        with sessions(maria, (APP_USER, "cron job", False), (APP_USER, "web", True)):
            run = run_clients(maria, monkeypatch, capsys, "--json")
    finally:
        maria.stop()
        maria.remove()
    assert run.code == 2, run.out
    found = groups(run)
    # PROCESSLIST has no program name and no transport: both sessions are one hidden group.
    assert found[(APP_USER, "", ADDRESS)]["hidden"] == 2
    report = json.loads(run.out)
    assert report["totals"]["plaintext"] == report["totals"]["tls"] == 0
    assert report["notes"][0].startswith("performance_schema is off on this server")
