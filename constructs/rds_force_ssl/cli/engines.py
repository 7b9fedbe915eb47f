"""The CLI's engines: one row per wire protocol, read by ``probe`` (which conversation to hold,
which port to assume) and by the region discovery (which RDS engines and proxy families speak
it). Adding an engine is adding a row and its conversation module, no branch elsewhere. The
RDS engine names come from the library's engine table (``handlers/engines.py``).

A protocol whose servers decide on plaintext only after the password has no conversation, and
says why: ``probe`` never fakes a verdict it cannot have.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rds_force_ssl.cli import pgwire
from rds_force_ssl.cli.wire import Conversation
from rds_force_ssl.handlers import engines as engine_table


@dataclass(frozen=True)
class Engine:
    name: str
    default_port: int
    rds_engines: frozenset[str]  # DescribeDBInstances / DescribeDBClusters `Engine` values
    proxy_family: str  # DescribeDBProxies `EngineFamily`
    plaintext_probe: Conversation | None  # None: no credential-free probe exists
    no_probe: str | None = None  # why not


ENGINES: Mapping[str, Engine] = {
    "postgresql": Engine(
        name="postgresql",
        # https://www.postgresql.org/docs/current/runtime-config-connection.html (port)
        default_port=5432,
        # The library's engine table (a Multi-AZ DB cluster runs "postgres" too).
        rds_engines=frozenset(engine_table.POSTGRES.engines + engine_table.AURORA_POSTGRES.engines),
        # https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBProxy.html
        proxy_family="POSTGRESQL",
        plaintext_probe=pgwire.plaintext_probe,
    ),
    "mysql": Engine(
        name="mysql",
        default_port=3306,
        rds_engines=frozenset(
            engine_table.MYSQL.engines
            + engine_table.MARIADB.engines
            + engine_table.AURORA_MYSQL.engines
        ),
        proxy_family="MYSQL",
        # mywire.py cites the servers' source: require_secure_transport is checked after the
        # password, so a client without it is refused alike either way.
        plaintext_probe=None,
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
