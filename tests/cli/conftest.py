"""Fixtures for the CLI tests: one real PostgreSQL cluster per session, and an in-process runner.

With RDS_FORCE_SSL_REQUIRE_POSTGRES=1 (CI), a missing server binary or a server that will not
start fails the tests instead of skipping them, so a green run always includes them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from rds_force_ssl import cli
from tests.cli.pgserver import (
    APP_DB,
    APP_USER,
    HBA_SSL_ONLY,
    HOST,
    PgServer,
    find_bindir,
    start_server,
)

REQUIRE_POSTGRES = os.environ.get("RDS_FORCE_SSL_REQUIRE_POSTGRES") == "1"


def _unavailable(reason: str) -> None:
    if REQUIRE_POSTGRES:
        pytest.fail(f"{reason}; RDS_FORCE_SSL_REQUIRE_POSTGRES=1 forbids skipping", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    bindir = find_bindir()
    if bindir is None:
        _unavailable(
            "PostgreSQL server binaries not found (pg_config --bindir, /usr/lib/postgresql/*/bin)"
        )
        raise AssertionError("unreachable")
    try:
        server = start_server(bindir=bindir, app_password="real-" + secrets.token_hex(12))
    except (OSError, RuntimeError) as err:
        _unavailable(f"could not start PostgreSQL from {bindir}: {err}")
        raise AssertionError("unreachable") from err
    yield server
    server.stop()
    server.remove()


@pytest.fixture
def pg(pg_server: PgServer) -> PgServer:
    """The session server, back on the SSL-only scenario (a no-op when it already is)."""
    pg_server.configure(hba=HBA_SSL_ONLY)
    return pg_server


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def run_verify(
    pg: PgServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Run]:
    """Run ``rds-force-ssl verify`` in-process against the test server; every run also proves
    that the real password appears in neither output stream."""

    def run(
        *extra: str,
        host: str = HOST,
        dbname: str = APP_DB,
        port: int | None = None,
        sslrootcert: str | None = None,
    ) -> Run:
        monkeypatch.setenv("PGPASSWORD", pg.app_password)
        argv = [
            "verify",
            "--host",
            host,
            "--port",
            str(port or pg.port),
            "--dbname",
            dbname,
            "--user",
            APP_USER,
            "--sslrootcert",
            sslrootcert or str(pg.ca_file),
            *extra,
        ]
        code = cli.main(argv)
        captured = capsys.readouterr()
        assert pg.app_password not in captured.out + captured.err
        return Run(code, captured.out, captured.err)

    return run
