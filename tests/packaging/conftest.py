"""The CLI tests' PostgreSQL server, for the installed command."""

from tests.cli.conftest import pg, pg_server

__all__ = ["pg", "pg_server"]
