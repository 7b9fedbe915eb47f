"""Every engine fact appears once: in the engine table (``facts/engines.py``, one row per RDS
engine) or in the CLI's protocol table (``cli/engines.py``, one row per wire protocol). The rest
of the CLI reads them from there; this test keeps the known literals from coming back.

The facts are written out here on purpose: a test is an independent check of the tables, not a
second reader of them.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from rds_force_ssl import cli
from rds_force_ssl.cli import verify, verify_mysql
from rds_force_ssl.cli.engines import DEFAULT_ENGINE, ENGINES
from rds_force_ssl.cli.verify import ServerView, Status, settings_finding
from rds_force_ssl.cli.wire import Identity
from rds_force_ssl.facts import engines as engine_table

CLI = Path(cli.__file__).parent

# Text that names an engine fact, wherever it appears in a string constant of code.
NAMED = {
    "rds.force_ssl": "Engine.parameter (POSTGRES)",
    "require_secure_transport": "Engine.parameter (MYSQL, MARIADB, AURORA_MYSQL)",
    "ssl_min_protocol_version": "TlsFloor.parameter (POSTGRES)",
    "tls_version": "Engine.tls_protocols_setting (MYSQL, MARIADB, AURORA_MYSQL)",
    "PGPASSWORD": "the protocol row's password_env (postgresql)",
    "MYSQL_PWD": "the protocol row's password_env (mysql)",
}
NAMED_PATTERN = re.compile("|".join(rf"\b{re.escape(name)}\b" for name in NAMED))
TLS_PATTERN = re.compile(r"\bTLSv1(?:\.[0-3])?\b")  # engine_table.TLS_PROTOCOLS
# A string constant that is, as a whole, a fact.
WHOLE = {
    "on": "Engine.server_enforcing (what a running PostgreSQL shows for rds.force_ssl)",
    "postgres": "the protocol row's default_dbname (postgresql)",
}
PORTS = {5432: "default_port (postgresql)", 3306: "default_port (mysql)"}
# Comparing with a protocol's name is a branch on the protocol: read a column of its row.
PROTOCOLS = {"postgresql", "mysql"}

# The allowed exceptions, each with its reason: (file under cli/, the literal) -> why.
ALLOWED: dict[tuple[str, str], str] = {
    # The protocol table itself: its rows are where these facts are written.
    ("engines.py", "5432"): "the postgresql row's default_port",
    ("engines.py", "3306"): "the mysql row's default_port",
    ("wire.py", "postgres"): "POSTGRES_DEFAULT_DBNAME, next to the start-up Identity that "
    "uses it; the postgresql row's default_dbname reads it",
    ("engines.py", "PGPASSWORD"): "the postgresql row's password_env",
    ("engines.py", "MYSQL_PWD"): "the mysql row's password_env",
}
# Not exceptions, because the guard does not flag them: a protocol's name in a message or a
# help text ("use --engine postgresql"), which names the choice for the user and is no branch;
# ssl.TLSVersion.TLSv1_2 (an attribute, not a string: the client's own minimum).


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of every string constant that is a statement on its own: a docstring (module,
    class, function) or an attribute docstring after an assignment."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }


def offenders(source: str, filename: str = "<test>") -> Iterator[tuple[int, str, str]]:
    """(line, the literal, the table column it belongs in) for each fact written in code."""
    tree = ast.parse(source, filename)
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                items = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
                for item in items:
                    if isinstance(item, ast.Constant) and item.value in PROTOCOLS:
                        yield node.lineno, str(item.value), "a column of the protocol's row"
        if not isinstance(node, ast.Constant) or id(node) in skip:
            continue
        value = node.value
        if isinstance(value, int) and not isinstance(value, bool) and value in PORTS:
            yield node.lineno, str(value), PORTS[value]
        if not isinstance(value, str):
            continue
        for match in NAMED_PATTERN.finditer(value):
            yield node.lineno, match.group(0), NAMED[match.group(0)]
        for match in TLS_PATTERN.finditer(value):
            yield node.lineno, match.group(0), "engine_table.TLS_PROTOCOLS"
        if value in WHOLE:
            yield node.lineno, value, WHOLE[value]


def test_the_cli_writes_no_engine_fact_outside_the_tables() -> None:
    found = [
        f"cli/{path.relative_to(CLI).as_posix()}:{line}: {literal!r} belongs in {column}"
        for path in sorted(CLI.rglob("*.py"))
        for line, literal, column in offenders(path.read_text(), str(path))
        if (path.name, literal) not in ALLOWED
    ]
    assert not found, "\n".join(found)


def test_every_allowed_exception_is_still_needed() -> None:
    used = {
        (path.name, literal)
        for path in CLI.rglob("*.py")
        for _, literal, _ in offenders(path.read_text(), str(path))
    }
    assert set(ALLOWED) <= used, f"stale exceptions: {set(ALLOWED) - used}"


@pytest.mark.parametrize(
    ("snippet", "literal"),
    [
        ('SETTING = "rds.force_ssl"', "rds.force_ssl"),
        ('x = f"{v} require_secure_transport={w}"', "require_secure_transport"),
        (
            "q = \"SELECT setting WHERE name = 'ssl_min_protocol_version'\"",
            "ssl_min_protocol_version",
        ),
        ('names = ("tls_version", "version")', "tls_version"),
        ('os.environ.get("PGPASSWORD")', "PGPASSWORD"),
        ('env = "MYSQL_PWD"', "MYSQL_PWD"),
        ('VERSIONS = ("TLSv1", "TLSv1.1")', "TLSv1"),
        ('FLOOR = "TLSv1.2"', "TLSv1.2"),
        ('ok = value in ("1", "on")', "on"),
        ('dbname: str = "postgres"', "postgres"),
        ("port = 5432", "5432"),
        ("DEFAULTS = {'mysql': (3306, '')}", "3306"),
        ('mysql = args.engine == "mysql"', "mysql"),
        ('if target.engine != "postgresql": pass', "postgresql"),
        ('if engine in ("postgresql", "x"): pass', "postgresql"),
    ],
)
def test_the_guard_sees_each_known_literal(snippet: str, literal: str) -> None:
    assert literal in {found for _, found, _ in offenders(snippet)}


@pytest.mark.parametrize(
    "snippet",
    [
        '"""rds.force_ssl, require_secure_transport and TLSv1.2, in a docstring."""',
        'def f() -> None:\n    """Reads ssl_min_protocol_version on port 5432."""',
        "# rds.force_ssl in a comment",
        'name = "postgresql"  # a protocol named, not compared with',
        'message = "is it PostgreSQL? use --engine postgresql"',
        "context.minimum_version = ssl.TLSVersion.TLSv1_2",
    ],
)
def test_the_guard_leaves_prose_and_names_alone(snippet: str) -> None:
    assert list(offenders(snippet)) == []


# ---- the tables say what the CLI used to write out -----------------------------------------
def test_the_protocol_rows_defaults() -> None:
    assert DEFAULT_ENGINE == "postgresql"
    postgresql, mysql = ENGINES["postgresql"], ENGINES["mysql"]
    assert (postgresql.default_port, postgresql.default_dbname, postgresql.password_env) == (
        5432,
        "postgres",
        "PGPASSWORD",
    )
    assert (mysql.default_port, mysql.default_dbname, mysql.password_env) == (3306, "", "MYSQL_PWD")
    assert (postgresql.channel_binding, postgresql.libpq) == (True, True)
    assert (mysql.channel_binding, mysql.libpq) == (False, False)
    assert Identity().dbname == "postgres"


def test_each_protocol_names_a_verifier_with_the_two_entry_points() -> None:
    import importlib

    for row in ENGINES.values():
        module = importlib.import_module(row.verifier)
        assert callable(module.require_drivers)
        assert callable(module.run_verify)
    assert ENGINES["postgresql"].verifier == verify.__name__
    assert ENGINES["mysql"].verifier == verify_mysql.__name__


def test_the_verifiers_read_the_engine_tables_settings() -> None:
    assert verify.FORCE_SSL == "rds.force_ssl"
    assert verify.FLOOR_SETTING == "ssl_min_protocol_version"
    assert verify.TLS_FLOOR == "TLSv1.2"
    assert verify_mysql.SECURE_TRANSPORT == "require_secure_transport"
    assert verify_mysql.TLS_SETTING == "tls_version"
    for row in (engine_table.POSTGRES, engine_table.AURORA_POSTGRES):
        assert row.parameter == verify.FORCE_SSL
        assert row.tls_floor is not None
        assert row.tls_floor.parameter == verify.FLOOR_SETTING
        assert row.server_enforcing == verify.FORCE_SSL_ON
    for row in (engine_table.MYSQL, engine_table.MARIADB, engine_table.AURORA_MYSQL):
        assert row.tls_protocols_setting == verify_mysql.TLS_SETTING


def _view(force_ssl: str | None) -> ServerView:
    return ServerView(True, "TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, None, force_ssl, "TLSv1.2")


@pytest.mark.parametrize(
    ("shown", "status"),
    [
        ("1", Status.PASS),  # a placeholder setting (postgresql.conf), shown as written
        ("on", Status.PASS),  # RDS's boolean setting, shown as PostgreSQL shows a boolean
        ("0", Status.FAIL),
        ("off", Status.FAIL),
        ("ON", Status.FAIL),  # PostgreSQL never shows this: the check stays exact
    ],
)
def test_what_a_running_postgresql_shows_for_force_ssl(shown: str, status: Status) -> None:
    assert settings_finding(_view(shown)).status == status
