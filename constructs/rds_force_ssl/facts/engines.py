"""The engine table: what makes each RDS engine SSL-only, one row per engine, each with its source.

Everything that differs between engines is data here, not a branch elsewhere: the construct,
the baseline's rules, the reconciler and the CLI's audit read these rows. (The models are
aws-cdk's ``instance-engine.ts``, one class per engine with the facts as fields, and Prowler's
check metadata files.) Lambda code imports this module, so it is stdlib only.

``apply_type`` is documentation only: sources disagree for PostgreSQL, so the reconciler goes by
what RDS reports at run time (``ParameterApplyStatus``) and never trusts this column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TLS10 = "TLSv1"
TLS11 = "TLSv1.1"
TLS12 = "TLSv1.2"
TLS13 = "TLSv1.3"
# Every TLS protocol, oldest first, as the servers name them (PostgreSQL's
# ssl_min_protocol_version, MySQL's and MariaDB's tls_version). TLS 1.0 and 1.1 are deprecated
# (RFC 8996): the CLI's verify fails a server that still admits them.
TLS_PROTOCOLS = (TLS10, TLS11, TLS12, TLS13)
# The floors RDS accepts for ForceSsl(min_tls_version=...): TLS 1.2 and newer.
TLS_VERSIONS = TLS_PROTOCOLS[TLS_PROTOCOLS.index(TLS12) :]

Version = tuple[int, ...]
_NUMBERS = re.compile(r"^\d+(?:\.\d+)*")


def parse_version(version: str) -> Version | None:
    """The leading dotted numbers of an RDS engine version: "16.9" -> (16, 9),
    "8.0.mysql_aurora.3.08.0" -> (8, 0), "16.00.4165.4.v1" -> (16, 0, 4165, 4)."""
    m = _NUMBERS.match(version.strip())
    if not m:
        return None
    return tuple(int(part) for part in m.group(0).split("."))


def show(version: Version) -> str:
    return ".".join(map(str, version))


@dataclass(frozen=True)
class TlsFloor:
    """How ``ForceSsl(min_tls_version=...)`` is met on an engine.

    parameter: the parameter that sets the floor, whose value is the TLS version itself
        (None: nothing to set, the engine refuses older protocols by itself).
    from_version: the first engine version that can meet each floor.
    """

    parameter: str | None
    from_version: dict[str, Version]
    source: str


@dataclass(frozen=True)
class ReadAvailability:
    """Aurora: from which version rebooting the writer leaves the readers running.

    Without it ("rebooting an Aurora cluster without read availability"), a writer reboot restarts
    every reader at the same time, so the reconciler reboots the writer alone; with it, the
    readers are rebooted one at a time first. ``since`` gives, for each release line (the first
    number), the first version that has it: a line below the lowest listed never has it, a line
    above the highest always does. ``aurora_version``: compare Aurora's own version (Aurora
    MySQL's 3.08.0 in "8.0.mysql_aurora.3.08.0") rather than the engine's (8.0).
    """

    since: tuple[Version, ...]
    source: str
    aurora_version: bool = False

    def writer_reboot_restarts_readers(self, engine_version: str) -> bool:
        """True where a writer reboot restarts the readers too. A version this cannot read
        counts as True: the writer is then rebooted alone first, and the readers after it only
        if they still need it, so no node restarts twice either way."""
        parsed = (
            _aurora_version(engine_version)
            if self.aurora_version
            else parse_version(engine_version)
        )
        if parsed is None:
            return True
        lines = {floor[0]: floor for floor in self.since}
        if parsed[0] in lines:
            return parsed < lines[parsed[0]]
        return parsed[0] < min(lines)


_AURORA_VERSION = re.compile(r"mysql_aurora\.(\d+(?:\.\d+)*)")


def _aurora_version(engine_version: str) -> Version | None:
    """Aurora MySQL's own version: "8.0.mysql_aurora.3.08.0" -> (3, 8, 0). Aurora MySQL version
    1 ("5.6.10a", engine "aurora") has none and reads as (1,)."""
    m = _AURORA_VERSION.search(engine_version)
    if m:
        return tuple(int(part) for part in m.group(1).split("."))
    parsed = parse_version(engine_version)
    return (1,) if parsed is not None and parsed[:2] == (5, 6) else None


@dataclass(frozen=True)
class Engine:
    """One RDS engine: how it is made SSL-only, and where that fact comes from."""

    title: str
    engines: tuple[str, ...]  # the RDS Engine strings this row covers
    source: str  # the AWS page for the parameter, its value and its versions
    # The SSL parameter; None for an engine that no parameter makes SSL-only (see not_applicable).
    parameter: str | None = None
    value: str | None = None  # what ForceSsl writes
    # Values that count as enforcing when read from a group (MySQL-family booleans take 1 or ON).
    enforcing: frozenset[str] = frozenset()
    # What a running server answers for ``parameter`` when it enforces, where that differs from
    # the group's stored value (read by the CLI's verify, exactly as written; empty: the
    # server answers as ``enforcing`` says). See _PG_SERVER_ENFORCING.
    server_enforcing: frozenset[str] = frozenset()
    # The server variable that lists the TLS protocols it allows, e.g. "TLSv1.2,TLSv1.3" (the
    # MySQL family's tls_version). Read by the CLI's verify only; ForceSsl never writes it: its
    # value is a list, not the one version a TlsFloor parameter takes.
    tls_protocols_setting: str | None = None
    # Aurora: the parameter lives in the DB cluster parameter group only, and the members are
    # rebooted one at a time. Otherwise a DB instance's own DB parameter group (or, for a
    # Multi-AZ DB cluster, its DB cluster parameter group).
    aurora: bool = False
    multi_az_cluster: bool = False  # can run as a Multi-AZ DB cluster (RebootDBCluster)
    apply_type: str = "undocumented"  # static | dynamic | disputed | undocumented (docs only)
    minimum_version: Version | None = None  # the first version that has the parameter
    default_on_from: Version | None = None  # the engine default enforces from this version on
    # The parameter-group family: "{engine}", "{major}" (16) and "{major_minor}" (8.0).
    family_format: str = "{engine}{major}"
    families: tuple[str, ...] = ()  # the families AWS documents today (derivation covers newer)
    security_hub: str | None = None  # the Security Hub control that checks it, if any
    config_rule: str | None = None  # the AWS Config managed rule behind that control
    tls_floor: TlsFloor | None = None
    read_availability: ReadAvailability | None = None  # Aurora only
    not_applicable: str | None = None  # why ForceSsl cannot make this engine SSL-only
    pin_example: str = ""  # how to pin a version in CDK, for messages
    # The parameter that logs each authorized connection with its TLS details, set to "1" by
    # ForceSsl(log_connections=True): the history `rds-force-ssl clients` reads. None: none.
    connection_log: str | None = None

    def family(self, engine: str, version: str) -> str | None:
        """The parameter-group family for ``engine`` at ``version`` (None if not a version)."""
        parsed = parse_version(version)
        if parsed is None:
            return None
        major = str(parsed[0])
        major_minor = f"{parsed[0]}.{parsed[1] if len(parsed) > 1 else 0}"
        return self.family_format.format(engine=engine, major=major, major_minor=major_minor)

    def enforces(self, value: object) -> bool:
        """Whether a group's literal ``value`` for ``parameter`` makes the engine SSL-only."""
        return isinstance(value, (str, int)) and str(value).strip().upper() in self.enforcing

    def too_old(self, version: str) -> bool:
        parsed = parse_version(version)
        return (
            self.minimum_version is not None
            and parsed is not None
            and parsed < self.minimum_version
        )

    def default_enforces(self, version: str) -> bool | None:
        """Whether the engine's default group enforces at ``version`` (None: unknown)."""
        parsed = parse_version(version)
        if parsed is None:
            return None
        return self.default_on_from is not None and parsed >= self.default_on_from

    def writer_reboot_restarts_readers(self, engine_version: str) -> bool:
        """Whether rebooting this engine's Aurora writer restarts every reader with it (False
        for an engine that is not Aurora: it has no readers to take along)."""
        if self.read_availability is None:
            return False
        return self.read_availability.writer_reboot_restarts_readers(engine_version)

    def wanted_parameters(
        self, min_tls_version: str | None, *, log_connections: bool = False
    ) -> dict[str, str]:
        """The parameters ForceSsl owns on this engine: the SSL parameter, the TLS floor
        where a parameter sets it, and the connection log when asked for and the engine has
        one. This is the one place they are computed."""
        if self.parameter is None or self.value is None:
            raise ValueError(f"{self.title} has no SSL parameter: {self.not_applicable}")
        wanted = {self.parameter: self.value}
        if min_tls_version is not None and self.tls_floor and self.tls_floor.parameter:
            wanted[self.tls_floor.parameter] = min_tls_version
        if log_connections and self.connection_log:
            wanted[self.connection_log] = "1"
        return wanted

    def tls_floor_problem(self, min_tls_version: str, version: str | None) -> str | None:
        """Why ``min_tls_version`` cannot be met on this engine and version, with the fix for
        whoever asked ForceSsl for it (None: it can be met)."""
        found = self.tls_floor_shortfall(min_tls_version, version)
        return None if found is None else f"{found[0]}; {found[1]}"

    def tls_floor_shortfall(
        self, min_tls_version: str, version: str | None
    ) -> tuple[str, str] | None:
        """(why ``min_tls_version`` cannot be met here, the fix), or None where it can."""
        if min_tls_version not in TLS_VERSIONS:
            return (
                f"min_tls_version={min_tls_version!r} is not one RDS accepts",
                f"use one of {', '.join(repr(v) for v in TLS_VERSIONS)}",
            )
        floor = self.tls_floor
        first = floor.from_version.get(min_tls_version) if floor else None
        if floor is None or first is None:
            return (
                f"ForceSsl cannot set a TLS floor of {min_tls_version} on {self.title} (no "
                "parameter in its table row does)",
                "drop min_tls_version, or set the engine's own TLS settings in its parameter group",
            )
        parsed = parse_version(version) if version else None
        if parsed is not None and parsed < first:
            lower = [
                v
                for v in TLS_VERSIONS[: TLS_VERSIONS.index(min_tls_version)]
                if v in floor.from_version and parsed >= floor.from_version[v]
            ]
            fix = f"use {lower[-1]!r}" if lower else "drop min_tls_version"
            return (
                f"{min_tls_version} needs {self.title} {show(first)} or later (engine is "
                f"{version})",
                f"{fix}, or upgrade the engine",
            )
        return None

    def tls_floor_note(self, min_tls_version: str) -> str | None:
        """What ForceSsl says when the floor needs no parameter (the engine refuses older
        protocols by itself), so that a floor is always either set or explained."""
        floor = self.tls_floor
        if floor is None or floor.parameter is not None:
            return None
        return (
            f"min_tls_version={min_tls_version}: {self.title} refuses older protocols by itself "
            f"({floor.source}); nothing to set"
        )


_BOOLEAN_ON = frozenset({"1", "ON"})

# rds.force_ssl as a running PostgreSQL shows it (SHOW, current_setting(), pg_settings): the
# group stores 0/1, but the setting is a boolean (AWS, the row's source: "1 (on)"), and
# PostgreSQL shows a boolean as "on" or "off" however it was written (src/backend/utils/misc/
# guc.c, ShowGUCOption; https://www.postgresql.org/docs/current/config-setting.html lists the
# spellings it accepts). Where no extension defines it and postgresql.conf merely sets it (a
# custom placeholder, as on the tests' server), it is text and shows as written: "1". Either
# answer is the server enforcing; "off" and "0" are not.
_PG_SERVER_ENFORCING = frozenset({"1", "on"})
# https://dev.mysql.com/doc/refman/8.0/en/server-system-variables.html#sysvar_tls_version and
# https://mariadb.com/kb/en/ssltls-system-variables/#tls_version
_MYSQL_TLS_PROTOCOLS = "tls_version"

# Dynamic on RDS and Aurora PostgreSQL: no restart. With it, every authorized connection is
# logged, "SSL enabled (protocol=..., cipher=...)" when it uses TLS (PostgreSQL 18 takes a list
# there, and still "1" for the same three aspects):
# https://www.postgresql.org/docs/current/runtime-config-logging.html#GUC-LOG-CONNECTIONS
_PG_CONNECTION_LOG = "log_connections"

_PG_TLS = TlsFloor(
    parameter="ssl_min_protocol_version",
    # ssl_min_protocol_version exists from PostgreSQL 12; RDS offers TLS 1.3 from 16.
    from_version={TLS12: (12,), TLS13: (16,)},
    source="https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/PostgreSQL.Concepts.General.SSL.html",
)

POSTGRES = Engine(
    title="RDS for PostgreSQL",
    engines=("postgres",),
    source="https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/PostgreSQL.Concepts.General.SSL.html",
    parameter="rds.force_ssl",
    value="1",
    enforcing=frozenset({"1"}),
    server_enforcing=_PG_SERVER_ENFORCING,
    multi_az_cluster=True,
    # Sources disagree on static vs dynamic: the reconciler goes by ParameterApplyStatus.
    apply_type="disputed",
    default_on_from=(15,),
    family_format="{engine}{major}",
    families=tuple(f"postgres{v}" for v in range(11, 19)),
    security_hub="RDS.38",
    config_rule="rds-postgres-instance-encrypted-in-transit",
    tls_floor=_PG_TLS,
    pin_example="rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16_9)",
    connection_log=_PG_CONNECTION_LOG,
)

AURORA_POSTGRES = Engine(
    title="Aurora PostgreSQL",
    engines=("aurora-postgresql",),
    source="https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraPostgreSQL.Security.html",
    parameter="rds.force_ssl",
    value="1",
    enforcing=frozenset({"1"}),
    server_enforcing=_PG_SERVER_ENFORCING,
    aurora=True,
    apply_type="undocumented",
    # Reported: 0 up to 16, 1 from 17. ForceSsl pins it either way.
    default_on_from=(17,),
    family_format="{engine}{major}",
    families=tuple(f"aurora-postgresql{v}" for v in range(11, 18)),
    security_hub=None,  # RDS.38's Config rule skips cluster members: nothing checks Aurora
    tls_floor=_PG_TLS,
    # "14.6 and lower 14 versions, 13.9 and lower 13 versions, 12.13 and lower 12 versions, all
    # PostgreSQL 11 versions" restart the readers with the writer; "15.2 and higher 15
    # versions" (the first Aurora PostgreSQL 15) have read availability, and every later line.
    read_availability=ReadAvailability(
        since=((12, 14), (13, 10), (14, 7), (15, 2)),
        source="https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-reboot-cluster.html",
    ),
    pin_example="rds.DatabaseClusterEngine.aurora_postgres("
    "version=rds.AuroraPostgresEngineVersion.VER_16_9)",
    connection_log=_PG_CONNECTION_LOG,
)

MYSQL = Engine(
    title="RDS for MySQL",
    engines=("mysql",),
    source="https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/mysql-ssl-connections.require-ssl.html",
    parameter="require_secure_transport",
    # The Config rule behind RDS.39 checks for 1; RDS's MySQL groups take 0/1.
    value="1",
    enforcing=_BOOLEAN_ON,
    tls_protocols_setting=_MYSQL_TLS_PROTOCOLS,
    multi_az_cluster=True,
    apply_type="dynamic",  # "You don't need to reboot your DB instance"
    minimum_version=(5, 7),  # the server variable exists from MySQL 5.7
    default_on_from=(9, 7),  # "For MySQL 9.7 ... defaults to 1"; off for 8.4 and lower
    family_format="{engine}{major_minor}",
    families=("mysql5.7", "mysql8.0", "mysql8.4"),
    security_hub="RDS.39",
    config_rule="rds-mysql-instance-encrypted-in-transit",
    # RDS for MySQL 8.0 and 8.4 support only TLS 1.2 and 1.3: a 1.2 floor needs no parameter.
    tls_floor=TlsFloor(
        parameter=None,
        from_version={TLS12: (8, 0)},
        source="https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/MySQL.Concepts.SSLSupport.html",
    ),
    pin_example="rds.DatabaseInstanceEngine.mysql(version=rds.MysqlEngineVersion.VER_8_0_39)",
)

MARIADB = Engine(
    title="RDS for MariaDB",
    engines=("mariadb",),
    source="https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/mariadb-ssl-connections.require-ssl.html",
    parameter="require_secure_transport",
    # AWS's page and the Config rule behind RDS.44 say ON; RDS's MariaDB groups take 0/1 (as
    # MySQL's). 1 is what the group stores; both are read as enforcing.
    value="1",
    enforcing=_BOOLEAN_ON,
    tls_protocols_setting=_MYSQL_TLS_PROTOCOLS,
    apply_type="dynamic",
    minimum_version=(10, 5),  # "only supported for MariaDB version 10.5 and higher"
    default_on_from=(11, 8),  # OFF for 11.4 and earlier, ON from 11.8
    family_format="{engine}{major_minor}",
    families=("mariadb10.5", "mariadb10.6", "mariadb10.11", "mariadb11.4", "mariadb11.8"),
    security_hub="RDS.44",
    config_rule="rds-mariadb-instance-encrypted-in-transit",
    pin_example="rds.DatabaseInstanceEngine.maria_db(version=rds.MariaDbEngineVersion.VER_10_11_9)",
)

AURORA_MYSQL = Engine(
    title="Aurora MySQL",
    # "aurora" is Aurora MySQL version 1 (5.6): it has no require_secure_transport.
    engines=("aurora-mysql", "aurora"),
    source="https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraMySQL.Security.html#AuroraMySQL.Security.SSL.RequireSSL",
    parameter="require_secure_transport",
    value="ON",  # the cluster parameter takes ON/OFF
    enforcing=_BOOLEAN_ON,
    tls_protocols_setting=_MYSQL_TLS_PROTOCOLS,
    aurora=True,
    apply_type="dynamic",  # "You don't need to reboot your DB cluster"
    minimum_version=(5, 7),  # Aurora MySQL version 2 (5.7) and 3 (8.0); not version 1 (5.6)
    default_on_from=None,  # OFF
    family_format="{engine}{major_minor}",
    families=("aurora-mysql5.7", "aurora-mysql8.0"),
    security_hub=None,  # RDS.39's Config rule skips cluster members: nothing checks Aurora
    # "The read availability feature for primary DB clusters is available in Aurora MySQL
    # version 2.10 and higher" (so all of version 3); "this reboot behavior applies to all DB
    # clusters created in Aurora MySQL version 2.09 and lower". Aurora's own version counts,
    # not MySQL's: 8.0.mysql_aurora.3.08.0 is 3.08. AWS says "created in": a cluster created
    # in 2.09 and upgraded since may still restart its readers with the writer, which no API
    # shows (docs/reboot.md, "What it cannot see"). Global-database secondaries have it from 3.06.
    read_availability=ReadAvailability(
        since=((2, 10),),
        source="https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-mysql-survivable-replicas.html",
        aurora_version=True,
    ),
    pin_example="rds.DatabaseClusterEngine.aurora_mysql("
    "version=rds.AuroraMysqlEngineVersion.VER_3_08_0)",
)

SQLSERVER = Engine(
    title="RDS for SQL Server",
    engines=("sqlserver-ee", "sqlserver-se", "sqlserver-ex", "sqlserver-web"),
    source="https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/SQLServer.Concepts.General.SSL.Using.html",
    parameter="rds.force_ssl",
    value="1",
    enforcing=frozenset({"1"}),
    apply_type="static",  # "you must reboot your DB instance for the change to take effect"
    default_on_from=None,  # 0 (off)
    family_format="{engine}-{major}.0",
    families=tuple(
        f"{edition}-{v}.0"
        for edition in ("sqlserver-ee", "sqlserver-se", "sqlserver-ex", "sqlserver-web")
        for v in (13, 14, 15, 16)
    ),
    security_hub="RDS.41",
    config_rule="rds-sqlserver-encrypted-in-transit",
    pin_example="rds.DatabaseInstanceEngine.sql_server_se("
    "version=rds.SqlServerEngineVersion.VER_16_00_4165_4_V1)",
)

ORACLE = Engine(
    title="RDS for Oracle",
    engines=(
        "oracle-ee",
        "oracle-ee-cdb",
        "oracle-se2",
        "oracle-se2-cdb",
        "custom-oracle-ee",
        "custom-oracle-ee-cdb",
        "custom-oracle-se2",
        "custom-oracle-se2-cdb",
    ),
    source="https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Appendix.Oracle.Options.SSL.html",
    family_format="{engine}-{major}",
    families=("oracle-ee-19", "oracle-ee-cdb-19", "oracle-ee-cdb-21", "oracle-se2-19"),
    not_applicable=(
        "TLS on RDS for Oracle is the SSL option of an option group, which opens a second, TLS "
        "port next to the plaintext one (AWS: 'both clear text and SSL-encrypted communication' "
        "at the same time); no parameter closes the plaintext port, only the security groups "
        "can, and synth cannot prove them"
    ),
)

DB2 = Engine(
    title="RDS for Db2",
    engines=("db2-se", "db2-ae"),
    source="https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Db2.Concepts.SSL.html",
    family_format="{engine}-{major_minor}",
    families=("db2-se-11.5", "db2-ae-11.5"),
    not_applicable=(
        "TLS on RDS for Db2 is DB2COMM plus SSL_SVCENAME, a second port that must differ from "
        "the instance's port; DB2COMM=SSL alone moves every client off the endpoint's port, a "
        "choice (port, security groups, client settings) ForceSsl will not make for you"
    ),
)

ENGINES: tuple[Engine, ...] = (
    POSTGRES,
    AURORA_POSTGRES,
    MYSQL,
    MARIADB,
    AURORA_MYSQL,
    SQLSERVER,
    ORACLE,
    DB2,
)
_BY_ENGINE = {name: row for row in ENGINES for name in row.engines}


def lookup(engine: str | None) -> Engine | None:
    """The row for an RDS Engine string (case as RDS or CDK spell it), or None if unknown."""
    if engine is None:
        return None
    return _BY_ENGINE.get(engine.lower())


def for_family(family: str) -> Engine | None:
    """The row whose parameter-group family ``family`` is (e.g. mysql8.0 -> RDS for MySQL)."""
    names = sorted(_BY_ENGINE, key=len, reverse=True)  # aurora-mysql before aurora
    for name in names:
        row = _BY_ENGINE[name]
        if family.lower().startswith(name) and parse_version(family[len(name) :].lstrip("-")):
            return row
    return None


@dataclass(frozen=True)
class ProxyFacts:
    """RDS Proxy: TLS is a property of the proxy, not a parameter; nothing is rebooted."""

    title: str = "RDS Proxy"
    property: str = "RequireTLS"  # AWS::RDS::DBProxy; CDK DatabaseProxy(require_tls=...)
    cloudformation_default: bool = False  # CDK's DatabaseProxy defaults to True
    security_hub: str = "RDS.43"
    config_rule: str = "rds-proxy-tls-encryption"
    source: str = (
        "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy.howitworks.html"
        "#rds-proxy-security.tls"
    )


PROXY = ProxyFacts()
