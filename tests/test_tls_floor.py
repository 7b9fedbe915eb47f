"""min_tls_version: one rule for every engine, where ForceSsl is asked directly and where the
baseline asks for it (docs/usage.md, "The TLS floor").

- ForceSsl asked for a floor it cannot meet on a database fails synth, naming the ForceSsl and
  the fix; where the engine meets the floor by itself, it says so (an info annotation).
- SslBaseline applies its floor where the engine and version can take it, and leaves it out,
  with a warning on the database, where they cannot: the database is still made SSL-only.
- The floor must be known at synth.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_rds as rds
from aws_cdk.assertions import Template

from rds_force_ssl import ForceSsl, ForceSslError, SslBaseline
from tests.conftest import AURORA16, MARIADB1011, MYSQL80, PG16, Sandbox

PG14 = rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_14_15)
MYSQL57 = rds.DatabaseInstanceEngine.mysql(version=rds.MysqlEngineVersion.VER_5_7_44)


def _messages(app: cdk.App, level: str) -> dict[str, str]:
    stack = app.synth().get_stack_by_name("Stack")
    return {m.id.lstrip("/"): str(m.entry.data) for m in stack.messages if level in str(m.level)}


def test_the_baseline_applies_a_tls13_floor_where_it_can_and_says_where_it_cannot(
    sandbox: Sandbox,
) -> None:
    """The case that used to warn on MariaDB but fail synth on MySQL 8.0 and PostgreSQL 14,
    naming a ForceSsl the baseline made and the user could not edit."""
    sandbox.instance("Pg16", engine=PG16)
    sandbox.instance("Pg14", engine=PG14)
    sandbox.instance("Mysql", engine=MYSQL80)
    sandbox.instance("Maria", engine=MARIADB1011)
    baseline = SslBaseline.apply(sandbox.app, min_tls_version="TLSv1.3")
    warnings = _messages(sandbox.app, "WARN")
    assert set(warnings) == {"Stack/Pg14", "Stack/Mysql", "Stack/Maria"}
    assert "TLSv1.3 needs RDS for PostgreSQL 16 or later" in warnings["Stack/Pg14"]
    assert "cannot set a TLS floor of TLSv1.3 on RDS for MySQL" in warnings["Stack/Mysql"]
    assert "cannot set a TLS floor of TLSv1.3 on RDS for MariaDB" in warnings["Stack/Maria"]
    assert all(w.startswith("[rds-force-ssl] Stack/") for w in warnings.values())
    assert "min_tls_version=TLSv1.3 is not applied" in warnings["Stack/Pg14"]
    assert [v.compliance for v in baseline.verdicts] == ["COMPLIANT"] * 4
    floors = [
        g["Properties"]["Parameters"].get("ssl_min_protocol_version")
        for g in Template.from_stack(sandbox.stack)
        .find_resources("AWS::RDS::DBParameterGroup")
        .values()
    ]
    assert floors.count("TLSv1.3") == 1  # PostgreSQL 16's group only


@pytest.mark.parametrize(
    ("engine", "cluster", "outcome"),
    [
        (PG16, False, "parameter"),
        (AURORA16, True, "parameter"),
        (MYSQL80, False, "explained"),
        (MARIADB1011, False, "refused"),
        (MYSQL57, False, "refused"),
    ],
)
def test_every_engine_either_sets_the_floor_or_says_why_not(
    sandbox: Sandbox, engine: Any, cluster: bool, outcome: str
) -> None:
    db: Any = sandbox.cluster(engine=engine) if cluster else sandbox.instance(engine=engine)
    if outcome == "refused":
        with pytest.raises(ForceSslError, match=r"Stack/Ssl: .*(drop min_tls_version|TLS floor)"):
            ForceSsl(sandbox.stack, "Ssl", database=db, min_tls_version="TLSv1.2")
        return
    ForceSsl(sandbox.stack, "Ssl", database=db, min_tls_version="TLSv1.2")
    kind = "AWS::RDS::DBClusterParameterGroup" if cluster else "AWS::RDS::DBParameterGroup"
    groups = Template.from_stack(sandbox.stack).find_resources(kind)
    params = [g["Properties"]["Parameters"] for g in groups.values()]
    infos = _messages(sandbox.app, "INFO")
    if outcome == "parameter":
        assert {"ssl_min_protocol_version": "TLSv1.2"}.items() <= params[0].items()
    else:
        assert "ssl_min_protocol_version" not in params[0]
        assert "refuses older protocols by itself" in infos["Stack/Ssl"]


def test_mysql_57_is_not_told_to_use_a_lower_floor_that_does_not_exist(sandbox: Sandbox) -> None:
    db = sandbox.instance(engine=MYSQL57)
    with pytest.raises(ForceSslError) as caught:
        ForceSsl(sandbox.stack, "Ssl", database=db, min_tls_version="TLSv1.2")
    text = str(caught.value)
    assert "TLSv1.2 needs RDS for MySQL 8.0 or later" in text
    assert "drop min_tls_version, or upgrade the engine" in text
    assert "lower floor" not in text


def test_a_deploy_time_floor_is_refused_as_such(sandbox: Sandbox) -> None:
    floor = cdk.CfnParameter(sandbox.stack, "Floor", default="TLSv1.2").value_as_string
    db = sandbox.instance()
    with pytest.raises(ForceSslError, match="deploy-time value") as caught:
        ForceSsl(sandbox.stack, "Ssl", database=db, min_tls_version=floor)
    assert "is not one RDS accepts" not in str(caught.value)
    with pytest.raises(ValueError, match="deploy-time value"):
        SslBaseline.apply(sandbox.app, min_tls_version=floor)
