"""The engine table: each row is complete, cited and self-consistent (stdlib only, no CDK)."""

from __future__ import annotations

import pytest

from rds_force_ssl.facts import engines
from rds_force_ssl.facts.engines import ENGINES, PROXY, TLS12, TLS13


@pytest.mark.parametrize("row", ENGINES, ids=[r.title for r in ENGINES])
def test_every_row_cites_an_aws_page(row: engines.Engine) -> None:
    assert row.source.startswith("https://docs.aws.amazon.com/")
    if row.tls_floor is not None:
        assert row.tls_floor.source.startswith("https://docs.aws.amazon.com/")


@pytest.mark.parametrize("row", ENGINES, ids=[r.title for r in ENGINES])
def test_a_row_either_enforces_by_a_parameter_or_says_why_not(row: engines.Engine) -> None:
    if row.not_applicable is None:
        assert row.parameter
        assert row.value
        assert row.enforces(row.value), "the value ForceSsl writes must read back as enforcing"
        assert row.apply_type in ("static", "dynamic", "disputed", "undocumented")
    else:
        assert row.parameter is None
        assert row.value is None
        assert len(row.not_applicable) > 80  # a reason a person can act on, not a label


def test_an_engine_string_belongs_to_one_row() -> None:
    names = [name for row in ENGINES for name in row.engines]
    assert len(names) == len(set(names))
    assert all(engines.lookup(name) is row for row in ENGINES for name in row.engines)
    assert engines.lookup("MySQL") is engines.MYSQL  # CDK and RDS spell case differently
    assert engines.lookup("custom-sqlserver-ee") is None
    assert engines.lookup(None) is None


@pytest.mark.parametrize(
    ("engine", "version", "family"),
    [
        ("postgres", "16.9", "postgres16"),
        ("postgres", "17.4", "postgres17"),
        ("postgres", "18.1", "postgres18"),
        ("aurora-postgresql", "17.4", "aurora-postgresql17"),
        ("mysql", "8.0.39", "mysql8.0"),
        ("mysql", "8.4.5", "mysql8.4"),
        ("mariadb", "10.5.27", "mariadb10.5"),
        ("mariadb", "10.11.9", "mariadb10.11"),
        ("mariadb", "11.8.3", "mariadb11.8"),
        ("aurora-mysql", "5.7.mysql_aurora.2.11.2", "aurora-mysql5.7"),
        ("aurora-mysql", "8.0.mysql_aurora.3.08.0", "aurora-mysql8.0"),
        ("sqlserver-ex", "16.00.4165.4.v1", "sqlserver-ex-16.0"),
        ("sqlserver-web", "15.00.4420.2.v1", "sqlserver-web-15.0"),
        ("oracle-ee", "19.0.0.0.ru-2024-01.rur-2024-01.r1", "oracle-ee-19"),
        ("db2-se", "11.5.9.0.sb00000000.r1", "db2-se-11.5"),
    ],
)
def test_family_from_engine_and_version(engine: str, version: str, family: str) -> None:
    row = engines.lookup(engine)
    assert row is not None
    assert row.family(engine, version) == family
    assert engines.for_family(family) is row


@pytest.mark.parametrize("row", ENGINES, ids=[r.title for r in ENGINES])
def test_every_documented_family_maps_back_to_its_row(row: engines.Engine) -> None:
    assert row.families
    for family in row.families:
        assert engines.for_family(family) is row, family


def test_the_families_the_issue_names_are_in_the_table() -> None:
    families = {f for row in ENGINES for f in row.families}
    assert {
        "postgres17",
        "postgres18",
        "aurora-postgresql17",
        "mysql8.0",
        "mysql8.4",
        "mariadb10.5",
        "mariadb11.4",
        "aurora-mysql5.7",
        "aurora-mysql8.0",
        "sqlserver-ee-16.0",
        "sqlserver-web-13.0",
        "oracle-ee-19",
        "db2-se-11.5",
    } <= families


def test_parse_version() -> None:
    assert engines.parse_version("16.9") == (16, 9)
    assert engines.parse_version("8.0.mysql_aurora.3.08.0") == (8, 0)
    assert engines.parse_version("16.00.4165.4.v1") == (16, 0, 4165, 4)
    assert engines.parse_version("latest") is None


@pytest.mark.parametrize(
    ("row", "version", "too_old"),
    [
        (engines.MARIADB, "10.4.34", True),
        (engines.MARIADB, "10.5.27", False),
        (engines.MYSQL, "5.6.51", True),
        (engines.MYSQL, "5.7.44", False),
        (engines.AURORA_MYSQL, "5.6.mysql_aurora.1.22.2", True),
        (engines.AURORA_MYSQL, "5.7.mysql_aurora.2.11.2", False),
        (engines.POSTGRES, "11.22", False),
        (engines.SQLSERVER, "13.00.6300.2.v1", False),
    ],
)
def test_minimum_versions(row: engines.Engine, version: str, too_old: bool) -> None:
    assert row.too_old(version) is too_old


@pytest.mark.parametrize(
    ("row", "version", "on"),
    [
        (engines.POSTGRES, "14.15", False),
        (engines.POSTGRES, "15.10", True),
        (engines.AURORA_POSTGRES, "16.9", False),
        (engines.AURORA_POSTGRES, "17.4", True),
        (engines.MYSQL, "8.4.5", False),
        (engines.MARIADB, "11.4.7", False),
        (engines.MARIADB, "11.8.3", True),
        (engines.AURORA_MYSQL, "8.0.mysql_aurora.3.08.0", False),
        (engines.SQLSERVER, "16.00.4165.4.v1", False),
    ],
)
def test_default_by_version(row: engines.Engine, version: str, on: bool) -> None:
    assert row.default_enforces(version) is on


def test_what_counts_as_enforcing() -> None:
    # MySQL-family booleans: 1 and ON (any case) are the same server setting.
    for value in ("1", "ON", "on", 1):
        assert engines.MYSQL.enforces(value)
        assert engines.AURORA_MYSQL.enforces(value)
    for other in ("0", "OFF", "", None, object()):
        assert not engines.MARIADB.enforces(other)
    assert engines.POSTGRES.enforces("1")
    assert not engines.POSTGRES.enforces("ON")
    assert not engines.SQLSERVER.enforces("0")


def test_wanted_parameters_come_from_the_row() -> None:
    assert engines.POSTGRES.wanted_parameters(None) == {"rds.force_ssl": "1"}
    assert engines.POSTGRES.wanted_parameters(TLS13) == {
        "rds.force_ssl": "1",
        "ssl_min_protocol_version": TLS13,
    }
    # MySQL 8.0+ refuses TLS below 1.2 by itself: nothing more to set.
    assert engines.MYSQL.wanted_parameters(TLS12) == {"require_secure_transport": "1"}
    assert engines.AURORA_MYSQL.wanted_parameters(None) == {"require_secure_transport": "ON"}
    assert engines.SQLSERVER.wanted_parameters(None) == {"rds.force_ssl": "1"}
    with pytest.raises(ValueError, match="RDS for Oracle has no SSL parameter: TLS on RDS"):
        engines.ORACLE.wanted_parameters(None)


@pytest.mark.parametrize(
    ("row", "floor", "version", "problem"),
    [
        (engines.POSTGRES, TLS13, "16.9", None),
        (engines.POSTGRES, TLS13, "15.10", "TLSv1.3 needs RDS for PostgreSQL 16 or later"),
        (engines.POSTGRES, TLS12, "11.22", "TLSv1.2 needs RDS for PostgreSQL 12 or later"),
        (engines.MYSQL, TLS12, "8.0.39", None),
        (engines.MYSQL, TLS12, "5.7.44", "TLSv1.2 needs RDS for MySQL 8.0 or later"),
        (engines.MYSQL, TLS13, "8.4.5", "cannot set a TLS floor of TLSv1.3 on RDS for MySQL"),
        (engines.MARIADB, TLS12, "10.11.9", "cannot set a TLS floor of TLSv1.2 on RDS for"),
        (engines.POSTGRES, "1.2", "16.9", "is not one RDS accepts"),
    ],
)
def test_tls_floor(row: engines.Engine, floor: str, version: str, problem: str | None) -> None:
    found = row.tls_floor_problem(floor, version)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def test_security_hub_controls() -> None:
    """The controls that check each engine; none of them covers Aurora."""
    controls = {row.title: row.security_hub for row in ENGINES}
    assert controls == {
        "RDS for PostgreSQL": "RDS.38",
        "Aurora PostgreSQL": None,
        "RDS for MySQL": "RDS.39",
        "RDS for MariaDB": "RDS.44",
        "Aurora MySQL": None,
        "RDS for SQL Server": "RDS.41",
        "RDS for Oracle": None,
        "RDS for Db2": None,
    }
    assert PROXY.security_hub == "RDS.43"
    assert all(row.config_rule for row in ENGINES if row.security_hub)


def test_the_reconciler_is_told_apply_type_is_not_to_be_trusted_for_postgresql() -> None:
    """FACTS: static or dynamic is disputed for rds.force_ssl on PostgreSQL; the column is
    documentation, and the reconciler goes by the apply status RDS reports at run time."""
    assert engines.POSTGRES.apply_type == "disputed"
    assert engines.SQLSERVER.apply_type == "static"
    assert engines.MYSQL.apply_type == engines.MARIADB.apply_type == "dynamic"


def test_the_readme_engine_table_matches_the_code() -> None:
    """The docs' copy of the table, docs/engines.md, names each row's parameter, value and
    control."""
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "engines.md").read_text()
    # The first table of the page (the TLS-floor table that follows has rows by engine too).
    section = page.split("<!-- sample: engine-table -->", 1)[1].split("\n\n", 1)[0]
    rows = {
        cells[0]: cells
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| ---")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    for row in ENGINES:
        cells = rows[row.title]
        assert cells[-1] == (row.security_hub or "none"), row.title
        if row.parameter is None:
            assert cells[1].startswith("none:"), row.title
        else:
            assert cells[1] == f"`{row.parameter}` = `{row.value}`", row.title
            assert cells[3] == row.apply_type, row.title
    assert rows[PROXY.title][-1] == PROXY.security_hub


def test_one_list_of_tls_protocols_and_the_floors_rds_accepts_are_its_newest() -> None:
    assert engines.TLS_PROTOCOLS == ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
    assert engines.TLS_VERSIONS == (TLS12, TLS13) == engines.TLS_PROTOCOLS[-2:]


@pytest.mark.parametrize("row", ENGINES, ids=[r.title for r in ENGINES])
def test_a_running_servers_enforcing_answer_is_declared_where_it_differs(
    row: engines.Engine,
) -> None:
    if row in (engines.POSTGRES, engines.AURORA_POSTGRES):
        # PostgreSQL shows a boolean setting as on/off; a placeholder shows as written (1).
        assert row.server_enforcing == {"1", "on"}
        assert row.value in row.server_enforcing
    else:
        assert row.server_enforcing == frozenset()


def test_the_mysql_family_lists_its_tls_protocols_in_tls_version() -> None:
    for row in ENGINES:
        expected = "tls_version" if row.parameter == "require_secure_transport" else None
        assert row.tls_protocols_setting == expected, row.title
    # Read by the CLI only: ForceSsl never writes it.
    assert "tls_version" not in engines.MYSQL.wanted_parameters(TLS12)
