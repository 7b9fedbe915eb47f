"""The CLI's engines: one row per wire protocol, read by ``probe`` (which conversation to hold,
which port to assume), by the region discovery (which RDS engines and proxy families speak
it) and by ``verify`` (its defaults, its checks' module, and what its login client does).
Adding an engine is adding a row and its conversation and verifier modules, no branch
elsewhere. The RDS engine names, and the server settings the verifiers read, come from the
library's engine table (``facts/engines.py``).

A protocol whose servers decide on plaintext only after the password has no conversation, and
says why: ``probe`` never fakes a verdict it cannot have.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rds_force_ssl.cli import pgwire
from rds_force_ssl.cli.wire import POSTGRES_DEFAULT_DBNAME, Conversation
from rds_force_ssl.facts import engines as engine_table


@dataclass(frozen=True)
class Engine:
    name: str
    default_port: int
    # The database and the password variable this protocol's own clients default to.
    default_dbname: str  # "": none (the login names no database)
    password_env: str
    rds_engines: frozenset[str]  # DescribeDBInstances / DescribeDBClusters `Engine` values
    proxy_family: str  # DescribeDBProxies `EngineFamily`
    plaintext_probe: Conversation | None  # None: no credential-free probe exists
    # verify's checks: a module with require_drivers() and run_verify(), imported on use.
    verifier: str
    # The login can bind the password to the TLS channel (SCRAM channel binding), which keeps
    # it from a server whose identity is not fully verified; without it, sending the password
    # under a weaker sslmode needs --allow-unverified-password.
    channel_binding: bool
    # verify logs in with libpq: its sslmode=require checks the CA whenever it finds a CA file
    # (that is verify-ca), it is handed the resolved address to dial (hostaddr), and --json
    # names the libpq that ran.
    libpq: bool
    no_probe: str | None = None  # why not


ENGINES: Mapping[str, Engine] = {
    "postgresql": Engine(
        name="postgresql",
        # https://www.postgresql.org/docs/current/runtime-config-connection.html (port)
        default_port=5432,
        # https://www.postgresql.org/docs/current/libpq-envars.html (PGDATABASE defaults to the
        # user name; psql and RDS's own documentation connect to "postgres", which always exists)
        default_dbname=POSTGRES_DEFAULT_DBNAME,
        password_env="PGPASSWORD",  # noqa: S106 (a variable's name, not a password)
        # The library's engine table (a Multi-AZ DB cluster runs "postgres" too).
        rds_engines=frozenset(engine_table.POSTGRES.engines + engine_table.AURORA_POSTGRES.engines),
        # https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBProxy.html
        proxy_family="POSTGRESQL",
        plaintext_probe=pgwire.plaintext_probe,
        verifier="rds_force_ssl.cli.verify",
        channel_binding=True,
        libpq=True,
    ),
    "mysql": Engine(
        name="mysql",
        # https://dev.mysql.com/doc/refman/8.0/en/connecting.html (port, database) and
        # https://dev.mysql.com/doc/refman/8.0/en/environment-variables.html (MYSQL_PWD)
        default_port=3306,
        default_dbname="",
        password_env="MYSQL_PWD",  # noqa: S106 (a variable's name, not a password)
        rds_engines=frozenset(
            engine_table.MYSQL.engines
            + engine_table.MARIADB.engines
            + engine_table.AURORA_MYSQL.engines
        ),
        proxy_family="MYSQL",
        # mywire.py cites the servers' source: require_secure_transport is checked after the
        # password, so a client without it is refused alike either way.
        plaintext_probe=None,
        verifier="rds_force_ssl.cli.verify_mysql",
        channel_binding=False,
        libpq=False,
        no_probe=(
            "MySQL and MariaDB refuse a plaintext client only after checking its password, so "
            "no credential-free probe can tell; use `verify --engine mysql` or `audit`"
        ),
    ),
}
DEFAULT_ENGINE = "postgresql"


def for_rds_engine(engine: str) -> Engine | None:
    return next((e for e in ENGINES.values() if engine in e.rds_engines), None)


def for_proxy_family(family: str) -> Engine | None:
    return next((e for e in ENGINES.values() if e.proxy_family == family), None)
