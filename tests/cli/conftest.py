"""Fixtures for the CLI tests: one real PostgreSQL cluster and one real MariaDB server per
session (each started on first use), and in-process runners.

With RDS_FORCE_SSL_REQUIRE_POSTGRES=1 (CI) and RDS_FORCE_SSL_REQUIRE_MARIADB=1 (CI; CI=true also
counts), a missing server binary or a server that will not start fails the tests instead of
skipping them, so a green run always includes them.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from moto.server import ThreadedMotoServer

from rds_force_ssl import cli
from tests.cli.mariadbserver import APP_DB as MARIA_DB
from tests.cli.mariadbserver import APP_USER as MARIA_USER
from tests.cli.mariadbserver import MariaDbServer
from tests.cli.mariadbserver import find_binaries as find_mariadb_binaries
from tests.cli.mariadbserver import start_server as start_mariadb_server
from tests.cli.moto_fleets import rds_client as rds_client  # re-exported for the tests
from tests.cli.pgserver import (
    APP_DB,
    APP_USER,
    HBA_SSL_ONLY,
    HOST,
    MAX_ADDRESSES,
    PgServer,
    find_bindir,
    loopback_addresses,
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
        # Every loopback address it may have: one endpoint each, for the fleet tests.
        server = start_server(
            bindir=bindir,
            app_password="real-" + secrets.token_hex(12),
            addresses=loopback_addresses(MAX_ADDRESSES),
        )
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
    that the real password appears in neither output stream, and that no message shows raw
    bytes."""

    def run(
        *extra: str,
        host: str = HOST,
        dbname: str = APP_DB,
        port: int | None = None,
        sslrootcert: str | None = None,  # "": none at all
        user: str = APP_USER,
        password: str | None = None,
    ) -> Run:
        monkeypatch.setenv("PGPASSWORD", password or pg.app_password)
        argv = [
            "verify",
            "--host",
            host,
            "--port",
            str(port or pg.port),
            "--dbname",
            dbname,
            "--user",
            user,
            *(() if sslrootcert == "" else ("--sslrootcert", sslrootcert or str(pg.ca_file))),
            *extra,
        ]
        code = cli.main(argv)
        captured = capsys.readouterr()
        assert (password or pg.app_password) not in captured.out + captured.err
        # Messages are sentences: no Python reprs of bytes such as b'N'.
        assert not re.search(r"\bb['\"]", captured.out + captured.err), captured.out
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto in server mode, over real HTTP: botocore's own serialisation, paginators and error
    shapes. Tests patch its response classes for what moto lacks (it runs in this process)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


# ---- MariaDB ---------------------------------------------------------------------------------
# CI (CI=true, or RDS_FORCE_SSL_REQUIRE_MARIADB=1 as .ci/run sets) must run the MariaDB tests:
# there a missing server fails them instead of skipping them.
REQUIRE_MARIADB = (
    os.environ.get("RDS_FORCE_SSL_REQUIRE_MARIADB") == "1" or os.environ.get("CI") == "true"
)


def _mariadb_unavailable(reason: str) -> None:
    if REQUIRE_MARIADB:
        pytest.fail(
            f"{reason}; RDS_FORCE_SSL_REQUIRE_MARIADB=1 (or CI=true) forbids skipping",
            pytrace=False,
        )
    pytest.skip(reason)


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDbServer]:
    if find_mariadb_binaries() is None:
        _mariadb_unavailable("MariaDB server binaries not found (apt-get install mariadb-server)")
    try:
        server = start_mariadb_server(app_password="real-" + secrets.token_hex(12))
    except (OSError, RuntimeError) as err:
        _mariadb_unavailable(f"could not start MariaDB: {err}")
        raise AssertionError("unreachable") from err
    yield server
    server.stop()
    server.remove()


@pytest.fixture
def maria(mariadb_server: MariaDbServer) -> MariaDbServer:
    """The session server, back on require_secure_transport=ON."""
    mariadb_server.require_secure_transport(on=True)
    return mariadb_server


@pytest.fixture
def run_verify_mysql(
    maria: MariaDbServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Run]:
    """Run ``rds-force-ssl verify --engine mysql`` in-process against the MariaDB server; every
    run also proves that the real password appears in neither output stream."""

    def run(*extra: str, host: str = HOST, password: str | None = None) -> Run:
        monkeypatch.setenv("MYSQL_PWD", password or maria.app_password)
        argv = [
            "verify",
            "--engine",
            "mysql",
            "--host",
            host,
            "--port",
            str(maria.port),
            "--dbname",
            MARIA_DB,
            "--user",
            MARIA_USER,
            "--sslrootcert",
            str(maria.ca_file),
            *extra,
        ]
        code = cli.main(argv)
        captured = capsys.readouterr()
        assert (password or maria.app_password) not in captured.out + captured.err
        assert not re.search(r"\bb['\"]", captured.out + captured.err), captured.out
        return Run(code, captured.out, captured.err)

    return run
