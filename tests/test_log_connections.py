"""ForceSsl(log_connections=True): log_connections=1 next to rds.force_ssl on PostgreSQL engines,
for `rds-force-ssl clients` to read; a clear error anywhere else. The audit-first recipe (the
logging deployed before any enforcement) is plain CDK: the group ForceSsl later finds agrees."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match, Template

from rds_force_ssl import ForceSsl, SslBaseline
from rds_force_ssl.facts import contract, engines
from rds_force_ssl.options import ForceSslError
from tests.conftest import MYSQL80, Sandbox


def only(t: Template, kind: str) -> tuple[str, dict[str, Any]]:
    found = dict(t.find_resources(kind))
    assert len(found) == 1, found
    name, resource = next(iter(found.items()))
    return name, dict(resource)


def test_the_group_logs_connections_next_to_force_ssl(sandbox: Sandbox) -> None:
    db = sandbox.instance()
    ForceSsl(sandbox.stack, "Ssl", database=db, log_connections=True)
    t = Template.from_stack(sandbox.stack)
    group_id, group = only(t, "AWS::RDS::DBParameterGroup")
    assert group["Properties"]["Parameters"] == {"rds.force_ssl": "1", "log_connections": "1"}
    assert "LogConnections" in group_id  # not the group of the databases without it
    # The reboot resource waits for it too, and a later change to it fails synth.
    t.has_resource_properties(
        contract.RESOURCE_TYPE,
        {contract.PROP_ENFORCED: Match.object_like({"rds.force_ssl": "1", "log_connections": "1"})},
    )


def test_off_by_default(sandbox: Sandbox) -> None:
    ForceSsl(sandbox.stack, "Ssl", database=sandbox.instance())
    _, group = only(Template.from_stack(sandbox.stack), "AWS::RDS::DBParameterGroup")
    assert "log_connections" not in group["Properties"]["Parameters"]


def test_aurora_postgres_gets_it_in_the_cluster_group(sandbox: Sandbox) -> None:
    ForceSsl(sandbox.stack, "Ssl", database=sandbox.cluster(), log_connections=True)
    _, group = only(Template.from_stack(sandbox.stack), "AWS::RDS::DBClusterParameterGroup")
    assert group["Properties"]["Parameters"]["log_connections"] == "1"


def test_audit_first_then_enforce_keeps_the_logging(sandbox: Sandbox) -> None:
    """Step 1 of the recipe is the user's own parameter (no ForceSsl yet); step 4 adds ForceSsl
    with log_connections=True, which finds the same value and merges."""
    db = sandbox.instance(parameters={"log_connections": "1"})
    ForceSsl(sandbox.stack, "Ssl", database=db, log_connections=True)
    _, group = only(Template.from_stack(sandbox.stack), "AWS::RDS::DBParameterGroup")
    assert group["Properties"]["Parameters"] == {"log_connections": "1", "rds.force_ssl": "1"}


def test_a_group_that_turns_it_off_is_refused(sandbox: Sandbox) -> None:
    db = sandbox.instance(parameters={"log_connections": "0"})
    with pytest.raises(ForceSslError, match=r"sets log_connections=0, but 1 was asked for"):
        ForceSsl(sandbox.stack, "Ssl", database=db, log_connections=True)


def test_mysql_is_refused_with_the_path_and_the_fix(sandbox: Sandbox) -> None:
    db = sandbox.instance(engine=MYSQL80)
    with pytest.raises(ForceSslError) as raised:
        ForceSsl(sandbox.stack, "Ssl", database=db, log_connections=True)
    assert str(raised.value).endswith(
        "Stack/Ssl: log_connections=True applies to PostgreSQL engines only (RDS for "
        "PostgreSQL, Aurora PostgreSQL); RDS for MySQL has no such parameter: remove it "
        "(docs/cli/clients.md says what MySQL's and MariaDB's logs can show)"
    )
    assert sandbox.stack.node.try_find_child("Ssl") is None


def test_a_proxy_is_refused(sandbox: Sandbox) -> None:
    proxy = sandbox.proxy(target=sandbox.instance())
    with pytest.raises(ForceSslError, match=r"Stack/Ssl: log_connections=True applies to "):
        ForceSsl(sandbox.stack, "Ssl", database=proxy, log_connections=True)


def test_not_a_bool_is_a_usage_error(sandbox: Sandbox) -> None:
    with pytest.raises(ForceSslError, match=r"log_connections='1' \(str\) is not bool"):
        ForceSsl(sandbox.stack, "Ssl", database=sandbox.instance(), log_connections="1")  # type: ignore[arg-type]


def test_the_baseline_leaves_it_out_where_there_is_none(sandbox: Sandbox) -> None:
    sandbox.instance("Pg")
    sandbox.instance("My", engine=MYSQL80)
    SslBaseline.apply(sandbox.app, log_connections=True)
    sandbox.app.synth()
    t = Template.from_stack(sandbox.stack)
    groups = {
        group["Properties"]["Family"]: group["Properties"]["Parameters"]
        for group in t.find_resources("AWS::RDS::DBParameterGroup").values()
    }
    assert groups["postgres16"] == {"rds.force_ssl": "1", "log_connections": "1"}
    assert groups["mysql8.0"] == {"require_secure_transport": "1"}
    warned = Annotations.from_stack(sandbox.stack).find_warning(
        "/Stack/My",
        Match.string_like_regexp(
            r"log_connections is not applied: it is a PostgreSQL parameter, and RDS for "
            r"MySQL has none"
        ),
    )
    assert len(warned) == 1


def test_the_engine_table_names_it_for_postgresql_only() -> None:
    logging = {row.title for row in engines.ENGINES if row.connection_log}
    assert logging == {"RDS for PostgreSQL", "Aurora PostgreSQL"}
    assert engines.POSTGRES.wanted_parameters(None, log_connections=True) == {
        "rds.force_ssl": "1",
        "log_connections": "1",
    }
    assert engines.MYSQL.wanted_parameters(None, log_connections=True) == {
        "require_secure_transport": "1"
    }

    from rds_force_ssl.cli import connlog

    assert engines.POSTGRES.connection_log == connlog.PARAMETER  # what clients says to set
