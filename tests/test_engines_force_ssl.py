"""ForceSsl on every engine of the table, and on RDS Proxy: what it writes, and what it refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_rds as rds
from aws_cdk.assertions import Template

from rds_force_ssl import ForceSsl, protected_by
from rds_force_ssl.facts import contract, engines
from tests.conftest import (
    AURORA_MYSQL3,
    MARIADB104,
    MARIADB1011,
    MYSQL80,
    ORACLE_SE2_19,
    PG16,
    SQLSERVER_SE16,
    Sandbox,
)

REBOOT = contract.RESOURCE_TYPE

# (CDK engine, its engine string) for the family cross-check below.
CDK_ENGINES: list[rds.IInstanceEngine | rds.IClusterEngine] = (
    [
        rds.DatabaseInstanceEngine.postgres(version=v)
        for v in (
            rds.PostgresEngineVersion.VER_11_22,
            rds.PostgresEngineVersion.VER_15_10,
            rds.PostgresEngineVersion.VER_17_4,
            rds.PostgresEngineVersion.VER_18_1,
        )
    ]
    + [
        rds.DatabaseClusterEngine.aurora_postgres(version=v)
        for v in (
            rds.AuroraPostgresEngineVersion.VER_13_16,
            rds.AuroraPostgresEngineVersion.VER_16_9,
            rds.AuroraPostgresEngineVersion.VER_17_4,
        )
    ]
    + [
        rds.DatabaseInstanceEngine.mysql(version=v)
        for v in (
            rds.MysqlEngineVersion.VER_5_7_44,
            rds.MysqlEngineVersion.VER_8_0_39,
            rds.MysqlEngineVersion.VER_8_4_5,
        )
    ]
    + [
        rds.DatabaseInstanceEngine.maria_db(version=v)
        for v in (
            rds.MariaDbEngineVersion.VER_10_5_27,
            rds.MariaDbEngineVersion.VER_10_6_20,
            rds.MariaDbEngineVersion.VER_10_11_9,
            rds.MariaDbEngineVersion.VER_11_4_7,
            rds.MariaDbEngineVersion.VER_11_8_3,
        )
    ]
    + [
        rds.DatabaseClusterEngine.aurora_mysql(version=rds.AuroraMysqlEngineVersion.VER_2_11_2),
        AURORA_MYSQL3,
        rds.DatabaseClusterEngine.aurora(version=rds.AuroraEngineVersion.VER_1_22_2),
        rds.DatabaseInstanceEngine.sql_server_ee(
            version=rds.SqlServerEngineVersion.VER_15_00_4420_2_V1
        ),
        SQLSERVER_SE16,
        rds.DatabaseInstanceEngine.sql_server_ex(
            version=rds.SqlServerEngineVersion.VER_14_00_3485_1_V1
        ),
        rds.DatabaseInstanceEngine.sql_server_web(
            version=rds.SqlServerEngineVersion.VER_13_00_6300_2_V1
        ),
        ORACLE_SE2_19,
        rds.DatabaseInstanceEngine.oracle_ee_cdb(
            version=rds.OracleEngineVersion.VER_21_0_0_0_2024_01_R1
        ),
    ]
)


@pytest.mark.parametrize("engine", CDK_ENGINES, ids=lambda e: e.parameter_group_family)
def test_the_table_derives_the_same_family_as_aws_cdk(engine: Any) -> None:
    """The table's family rule agrees with aws-cdk's own, engine by engine."""
    row = engines.lookup(engine.engine_type)
    assert row is not None
    assert row.family(engine.engine_type, engine.engine_version.full_version) == (
        engine.parameter_group_family
    )


def _only(t: Template, kind: str) -> dict[str, Any]:
    found = t.find_resources(kind)
    assert len(found) == 1, found
    return dict(next(iter(found.values())))


def _error(build: Any) -> str:
    with pytest.raises(ValueError, match="ForceSsl cannot protect") as info:
        build()
    return str(info.value)


@pytest.mark.parametrize(
    ("engine", "family", "parameters"),
    [
        (MYSQL80, "mysql8.0", {"require_secure_transport": "1"}),
        (MARIADB1011, "mariadb10.11", {"require_secure_transport": "1"}),
        (SQLSERVER_SE16, "sqlserver-se-16.0", {"rds.force_ssl": "1"}),
        (PG16, "postgres16", {"rds.force_ssl": "1"}),
    ],
    ids=["mysql", "mariadb", "sqlserver", "postgres"],
)
def test_an_instance_gets_its_engines_parameter(
    sandbox: Sandbox, engine: Any, family: str, parameters: dict[str, str]
) -> None:
    db = sandbox.instance(engine=engine)
    ForceSsl(sandbox.stack, "Ssl", database=db)
    t = Template.from_stack(sandbox.stack)
    group = _only(t, "AWS::RDS::DBParameterGroup")
    assert group["Properties"]["Family"] == family
    assert group["Properties"]["Parameters"] == parameters
    # The same reconciler waits for in-sync, static (SQL Server) or dynamic (MySQL) alike.
    reboot = _only(t, REBOOT)
    assert reboot["Properties"][contract.PROP_PARAMETERS] == parameters
    assert reboot["Properties"][contract.PROP_KIND] == contract.KIND_INSTANCE


def test_aurora_mysql_gets_on_in_its_cluster_group_and_member_reboots(sandbox: Sandbox) -> None:
    cluster = sandbox.cluster(engine=AURORA_MYSQL3)
    ForceSsl(sandbox.stack, "Ssl", database=cluster)
    t = Template.from_stack(sandbox.stack)
    group = _only(t, "AWS::RDS::DBClusterParameterGroup")
    assert group["Properties"]["Family"] == "aurora-mysql8.0"
    assert group["Properties"]["Parameters"] == {"require_secure_transport": "ON"}
    t.resource_count_is("AWS::RDS::DBParameterGroup", 0)  # not an instance-group parameter
    reboot = _only(t, REBOOT)
    assert reboot["Properties"][contract.PROP_KIND] == contract.KIND_CLUSTER
    members = set(t.find_resources("AWS::RDS::DBInstance"))
    assert len(members) == 3
    assert members <= set(reboot["DependsOn"])


def test_a_mysql_tls12_floor_needs_no_parameter_and_13_is_refused(sandbox: Sandbox) -> None:
    ForceSsl(sandbox.stack, "Ssl", database=sandbox.instance("Db1", engine=MYSQL80),
             min_tls_version="TLSv1.2")  # fmt: skip
    group = _only(Template.from_stack(sandbox.stack), "AWS::RDS::DBParameterGroup")
    assert group["Properties"]["Parameters"] == {"require_secure_transport": "1"}
    db2 = sandbox.instance("Db2", engine=MYSQL80)
    msg = _error(lambda: ForceSsl(sandbox.stack, "Ssl2", database=db2, min_tls_version="TLSv1.3"))
    assert "cannot set a TLS floor of TLSv1.3 on RDS for MySQL" in msg


def test_a_group_that_enforces_with_on_keeps_its_spelling(sandbox: Sandbox) -> None:
    db = sandbox.instance(engine=MYSQL80, parameters={"require_secure_transport": "ON"})
    ForceSsl(sandbox.stack, "Ssl", database=db)
    t = Template.from_stack(sandbox.stack)
    group = _only(t, "AWS::RDS::DBParameterGroup")
    assert group["Properties"]["Parameters"] == {"require_secure_transport": "ON"}
    assert _only(t, REBOOT)["Properties"][contract.PROP_PARAMETERS] == {
        "require_secure_transport": "ON"
    }


def test_require_secure_transport_off_is_refused_by_name(sandbox: Sandbox) -> None:
    db = sandbox.instance(engine=MARIADB1011, parameters={"require_secure_transport": "OFF"})
    msg = _error(lambda: ForceSsl(sandbox.stack, "Ssl", database=db))
    assert "[RFS2] Stack/Db: parameter group" in msg
    assert "sets require_secure_transport=OFF; remove it or set '1'" in msg


def test_a_later_require_secure_transport_0_fails_synth(sandbox: Sandbox) -> None:
    group = rds.ParameterGroup(sandbox.stack, "Users", engine=MYSQL80, parameters={"a": "1"})
    ForceSsl(sandbox.stack, "Ssl", database=sandbox.instance(engine=MYSQL80, parameter_group=group))
    group.add_parameter("require_secure_transport", "0")
    with pytest.raises(RuntimeError, match="require_secure_transport=0 after ForceSsl"):
        sandbox.app.synth()


def test_mariadb_before_10_5_is_refused_naming_the_minimum(sandbox: Sandbox) -> None:
    db = sandbox.instance(engine=MARIADB104)
    msg = _error(lambda: ForceSsl(sandbox.stack, "Ssl", database=db))
    assert "[RFS7] Stack/Db: RDS for MariaDB 10.4.34 has no require_secure_transport" in msg
    assert "needs RDS for MariaDB 10.5 or later" in msg
    assert engines.MARIADB.source in msg


def test_aurora_mysql_version_1_is_refused(sandbox: Sandbox) -> None:
    cluster = sandbox.cluster(
        engine=rds.DatabaseClusterEngine.aurora(version=rds.AuroraEngineVersion.VER_1_22_2)
    )
    msg = _error(lambda: ForceSsl(sandbox.stack, "Ssl", database=cluster))
    assert "[RFS7]" in msg
    assert "needs Aurora MySQL 5.7 or later" in msg


def test_oracle_is_refused_with_the_reason_and_a_link(sandbox: Sandbox) -> None:
    db = sandbox.instance(engine=ORACLE_SE2_19, license_model=rds.LicenseModel.LICENSE_INCLUDED)
    msg = _error(lambda: ForceSsl(sandbox.stack, "Ssl", database=db))
    assert "[RFS8] Stack/Db: RDS for Oracle cannot be made SSL-only by a parameter" in msg
    assert "Appendix.Oracle.Options.SSL.html" in msg


def test_db2_is_refused_with_the_reason_and_a_link(sandbox: Sandbox) -> None:
    db = rds.CfnDBInstance(
        sandbox.stack,
        "Db",
        engine="db2-se",
        engine_version="11.5.9.0.sb00000000.r1",
        db_instance_class="db.m6i.large",
        allocated_storage="100",
    )
    msg = _error(lambda: ForceSsl(sandbox.stack, "Ssl", database=db))
    assert "[RFS8] Stack/Db: RDS for Db2 cannot be made SSL-only by a parameter" in msg
    assert "DB2COMM" in msg
    assert "Db2.Concepts.SSL.html" in msg


def test_an_engine_outside_the_table_is_refused(sandbox: Sandbox) -> None:
    db = rds.CfnDBInstance(
        sandbox.stack,
        "Db",
        engine="custom-sqlserver-ee",
        engine_version="15.00.4073.23.cev1",
        db_instance_class="db.m5.xlarge",
    )
    msg = _error(lambda: ForceSsl(sandbox.stack, "Ssl", database=db))
    assert "engine custom-sqlserver-ee is not in rds-force-ssl's engine table" in msg


def test_an_unpinned_mysql_names_a_mysql_example(sandbox: Sandbox) -> None:
    db = sandbox.instance(engine=rds.DatabaseInstanceEngine.MYSQL)
    msg = _error(lambda: ForceSsl(sandbox.stack, "Ssl", database=db))
    assert "engine version is not pinned" in msg
    assert "MysqlEngineVersion" in msg


# ---- RDS Proxy -------------------------------------------------------------------------
def test_a_proxy_gets_require_tls_and_nothing_to_reboot(sandbox: Sandbox) -> None:
    proxy = sandbox.l1_proxy()
    guard = ForceSsl(sandbox.stack, "Ssl", database=proxy)
    t = Template.from_stack(sandbox.stack)
    assert _only(t, "AWS::RDS::DBProxy")["Properties"]["RequireTLS"] is True
    t.resource_count_is(REBOOT, 0)
    t.resource_count_is("AWS::Lambda::Function", 0)
    assert guard.reboot is None
    assert guard.parameter_group is None
    assert protected_by(proxy) == "Stack/Ssl"


def test_a_cdk_proxy_already_requires_tls_and_is_recorded(sandbox: Sandbox) -> None:
    proxy = sandbox.proxy(target=sandbox.instance())
    ForceSsl(sandbox.stack, "Ssl", database=proxy)
    t = Template.from_stack(sandbox.stack)
    assert _only(t, "AWS::RDS::DBProxy")["Properties"]["RequireTLS"] is True
    assert protected_by(proxy) == "Stack/Ssl"


def test_a_proxy_that_turns_tls_off_is_refused_not_flipped(sandbox: Sandbox) -> None:
    proxy = sandbox.proxy(target=sandbox.instance(), require_tls=False)
    msg = _error(
        lambda: ForceSsl(
            sandbox.stack,
            "Ssl",
            database=proxy,
            min_tls_version="TLSv1.2",
            ca_certificate=rds.CaCertificate.RDS_CA_RSA2048_G1,
        )
    )
    assert "[RFS6] Stack/Proxy: the proxy sets require_tls=False" in msg
    assert "RDS Proxy has no TLS-floor setting; drop min_tls_version" in msg
    assert "drop ca_certificate" in msg
    assert (
        _only(Template.from_stack(sandbox.stack), "AWS::RDS::DBProxy")["Properties"]["RequireTLS"]
        is False
    )
    assert protected_by(proxy) is None


def test_a_later_require_tls_false_fails_synth(sandbox: Sandbox) -> None:
    proxy = sandbox.l1_proxy()
    ForceSsl(sandbox.stack, "Ssl", database=proxy)
    proxy.require_tls = False
    with pytest.raises(RuntimeError, match="Stack/Proxy: RequireTLS is False after ForceSsl"):
        sandbox.app.synth()


def test_the_report_reads_each_engines_parameter_and_the_proxy(tmp_path: Path) -> None:
    """report.py judges the rendered template with the engine table: MySQL by
    require_secure_transport (an override to 0 is caught), a proxy by RequireTLS."""
    from rds_force_ssl import report

    app = cdk.App(outdir=str(tmp_path), builtin_cloud_formation_validation=False)
    sb = Sandbox(app)
    ForceSsl(sb.stack, "MySqlSsl", database=sb.instance("MySql", engine=MYSQL80))
    ForceSsl(sb.stack, "ProxySsl", database=sb.l1_proxy("Proxy"))
    maria = sb.instance("Maria", engine=MARIADB1011)
    guard = ForceSsl(sb.stack, "MariaSsl", database=maria)
    assert guard.parameter_group is not None
    guard.parameter_group.add_property_override("Parameters.require_secure_transport", "0")
    app.synth()
    rows = {row["database"]: row for row in report.protected(tmp_path)}
    assert rows["Stack/MySql"]["parameters"] == {"require_secure_transport": "1"}
    assert rows["Stack/MySql"]["enforced"] is True
    assert rows["Stack/Proxy"]["kind"] == "proxy"
    assert rows["Stack/Proxy"]["parameters"] == {"RequireTLS": True}
    assert rows["Stack/Proxy"]["enforced"] is True
    assert rows["Stack/Maria"]["enforced"] is False
    assert report.main([str(tmp_path)]) == 1
