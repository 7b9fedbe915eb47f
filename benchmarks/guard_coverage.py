"""Coverage: what the guard, AWS Config's managed rules, Security Hub's controls and Prowler see,
for every engine the engine table knows (facts/engines.py) and RDS Proxy.

Columns: a DB instance, an Aurora cluster, an Aurora member, a Multi-AZ DB cluster, a proxy, and
"configured but not applied" (the value is on in the group, the database still pending-reboot).

Where each cell comes from:
- guard: measured here, on the simulator: a database of that engine and shape with SSL-only off
  (or on but pending-reboot) must get a FAILED finding from the guard's handler ("yes"); a
  database no parameter can make SSL-only gets NOT_AVAILABLE, said as such;
- Config and Security Hub: the engine table's ``config_rule`` / ``security_hub`` columns and
  FACTS.md ("After deploy": the rules skip instances that belong to a cluster, no managed rule
  checks Aurora, NON_COMPLIANT until the group is in-sync; RDS.43 and rds-proxy-tls-encryption
  for proxies);
- Prowler: its check ``rds_instance_transport_encrypted`` (metadata: SQL Server, PostgreSQL,
  MySQL, MariaDB, Aurora PostgreSQL and Aurora MySQL instances, by the configured value; FACTS:
  it reads the configured value only); "?" where neither says.
Usage: python benchmarks/guard_coverage.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "constructs"))

from rds_force_ssl.facts import engines as engine_table
from rds_force_ssl.facts.engines import PROXY, Engine
from rds_force_ssl.handlers import guard
from rds_force_ssl.handlers.judge import off_value
from simulator import RdsSimulator
from simulator.cloudtrail import GuardWorld

COLUMNS = (
    "instance",
    "Aurora cluster",
    "Aurora member",
    "Multi-AZ cluster",
    "proxy",
    "configured, not applied",
)
# A version of each engine that has the SSL parameter (the table's own families say which).
VERSIONS = {
    "postgres": "16.9",
    "aurora-postgresql": "16.9",
    "mysql": "8.4.6",
    "mariadb": "10.11.9",
    "aurora-mysql": "8.0.mysql_aurora.3.08.0",
    "sqlserver-ee": "16.00.4165.4.v1",
    "oracle-ee": "19.0.0.0.ru-2024-10.rur-2024-10.r1",
    "db2-se": "11.5.9.0.sb00000000.r1",
}
NA = "n/a"


def _guard_says(sim: RdsSimulator, kind: str, name: str) -> str:
    world = GuardWorld(sim, sweep_every=None)
    world.put({guard.MESSAGE_KEY: guard.SWEEP})
    sim.advance(30)
    return {"FAILED": "yes", "NOT_AVAILABLE": "NOT_AVAILABLE (no parameter)"}.get(
        str(world.status(kind, name)), f"MISSED ({world.status(kind, name)})"
    )


def guard_cells(row: Engine) -> list[str]:
    engine = row.engines[0]
    version = VERSIONS[engine]
    parameter = row.parameter or "rds.force_ssl"
    off = off_value(row) if row.parameter else "0"
    on = row.value or "1"

    def instance(apply: str, value: str) -> str:
        sim = RdsSimulator()
        sim.add_group("g", {parameter: value})
        sim.add_instance("db", groups={"g": apply}, engine=engine, engine_version=version)
        return _guard_says(sim, "instance", "db")

    def cluster(status: str, value: str) -> str:
        sim = RdsSimulator()
        sim.add_group("cg", {parameter: value}, cluster=True)
        sim.add_cluster(
            "c", group="cg", writer="c-1", readers=("c-2",), status=status, engine=engine,
            engine_version=version,
        )  # fmt: skip
        return _guard_says(sim, "cluster", "c")

    if row.aurora:
        return [
            NA,
            cluster("in-sync", off),
            cluster("pending-reboot", on) + " (via its cluster)",
            NA,
            NA,
            cluster("pending-reboot", on),
        ]
    return [
        instance("in-sync", off),
        NA,
        NA,
        cluster("in-sync", off) if row.multi_az_cluster else NA,
        NA,
        instance("pending-reboot", on) if row.parameter else NA,
    ]


def config_cells(row: Engine, control: str | None) -> list[str]:
    if row.parameter is None:
        return ["no rule", NA, NA, NA, NA, NA]
    if row.aurora:
        return [NA, "no rule", "skipped (cluster member)", NA, NA, "no rule"]
    if control is None:
        return ["no rule", NA, NA, "no rule" if row.multi_az_cluster else NA, NA, "no rule"]
    return [
        f"yes ({control})",
        NA,
        NA,
        "skipped (cluster member)" if row.multi_az_cluster else NA,
        NA,
        "yes (NON_COMPLIANT until in-sync)",
    ]


def prowler_cells(row: Engine) -> list[str]:
    if row.parameter is None:
        return ["no check", NA, NA, NA, NA, NA]
    if row.aurora:
        return [NA, "via members", "configured value only", NA, NA, "no (configured only)"]
    return [
        "configured value only",
        NA,
        NA,
        "?" if row.multi_az_cluster else NA,
        NA,
        "no (configured only)",
    ]


def proxy_rows() -> list[tuple[str, str, list[str]]]:
    sim = RdsSimulator()
    sim.add_proxy("p", require_tls=False)
    said = _guard_says(sim, "proxy", "p")
    blank = [NA] * 4
    return [
        (PROXY.title, "guard", [*blank, said, NA]),
        (PROXY.title, "Config rules", [*blank, f"yes ({PROXY.config_rule})", NA]),
        (PROXY.title, "Security Hub", [*blank, f"yes ({PROXY.security_hub})", NA]),
        (PROXY.title, "Prowler", [*blank, "?", NA]),
    ]


def table() -> str:
    lines = [
        "| engine | detector | " + " | ".join(COLUMNS) + " |",
        "|---|---|" + "---|" * len(COLUMNS),
    ]
    rows: list[tuple[str, str, list[str]]] = []
    for row in engine_table.ENGINES:
        rows.append((row.title, "guard", guard_cells(row)))
        rows.append((row.title, "Config rules", config_cells(row, row.config_rule)))
        rows.append((row.title, "Security Hub", config_cells(row, row.security_hub)))
        rows.append((row.title, "Prowler", prowler_cells(row)))
    rows += proxy_rows()
    for title, detector, cells in rows:
        lines.append(f"| {title} | {detector} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    print("python benchmarks/guard_coverage.py  (guard cells measured on the simulator)")
    print()
    text = table()
    print(text)
    missed = text.count("MISSED")
    guard_yes = sum(
        cell.strip().startswith("yes")
        for line in text.splitlines()
        if "| guard |" in line
        for cell in line.split("|")
    )
    other_yes = {
        name: sum(
            cell.strip().startswith("yes")
            for line in text.splitlines()
            if f"| {name} |" in line
            for cell in line.split("|")
        )
        for name in ("Config rules", "Security Hub", "Prowler")
    }
    print()
    print(
        f"SUMMARY guard_coverage: guard covers {guard_yes} cells ({missed} missed), Config "
        f"{other_yes['Config rules']}, Security Hub {other_yes['Security Hub']}, Prowler "
        f"{other_yes['Prowler']} (Prowler reads configured values only)"
    )
    if missed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
