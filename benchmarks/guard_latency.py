"""Detection latency of the guard, from the change that turns SSL-only off to its FAILED finding in
Security Hub, in the simulator (simulator/cloudtrail.py), with CloudTrail's delivery modelled at
1 to 15 minutes; side by side with AWS Config's managed rules (periodic: every hour at best, 24
hours by default) and Security Hub's controls (periodic, "within 12 hours").

For each CloudTrail delay, every drift kind (parameter off, group swapped, group reset, a
database created unprotected, proxy RequireTLS off, created but pending-reboot) is made at
several moments (its phase against the hourly sweep and against earlier checks differs), each
in a fresh world: the guard's latency is when its finding was imported minus when the change was
made. A burst row does the same with 500 events on one group shared by 50 databases. A jittered
row changes a database 5 s after a check and delivers that event fast, so the per-database
minute is what it waits for. A "lost" row drops the CloudTrail event: the sweep alone finds it.

Config and Security Hub are not simulated: their latency is their period (a change lands
uniformly within it, so the median is half the period and the worst a whole period), as AWS
documents it (FACTS.md, "After deploy").
Usage: python benchmarks/guard_latency.py [--delays 60 300 600 900] [--moments 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "constructs"))

from rds_force_ssl.handlers import guard
from simulator import RdsSimulator
from simulator.cloudtrail import GuardWorld

Change = Callable[[RdsSimulator, GuardWorld], tuple[str, str]]


def fleet() -> RdsSimulator:
    sim = RdsSimulator()
    sim.add_group("pg16", {"rds.force_ssl": "1"})
    sim.add_group("pg16-tuned", {"rds.force_ssl": "0"})
    sim.add_group("my84", {"require_secure_transport": "1"})
    sim.add_group("apg16", {"rds.force_ssl": "1"}, cluster=True)
    sim.set_parameters("default.postgres14", {"rds.force_ssl": "0"}, source="engine-default")
    sim.add_instance("orders", groups={"pg16": "in-sync"})
    sim.add_instance("shop", groups={"my84": "in-sync"}, engine="mysql", engine_version="8.4.6")
    sim.add_cluster("ledger", group="apg16", writer="l-1", readers=("l-2",), status="in-sync")
    sim.add_proxy("pool")
    for n in range(50):
        sim.add_instance(f"app-{n}", groups={"pg16": "in-sync"})
    return sim


def param_off(sim: RdsSimulator, world: GuardWorld) -> tuple[str, str]:
    sim.modify_group("my84", {"require_secure_transport": "0"})
    world.api_call("ModifyDBParameterGroup", DBParameterGroupName="my84")
    return "instance", "shop"


def swap(sim: RdsSimulator, world: GuardWorld) -> tuple[str, str]:
    sim.modify_instance("orders", group="pg16-tuned", seconds=30)
    world.api_call("ModifyDBInstance", DBInstanceIdentifier="orders")
    return "instance", "orders"


def reset(sim: RdsSimulator, world: GuardWorld) -> tuple[str, str]:
    sim.reset_group("apg16", "rds.force_ssl", "0")
    world.api_call("ResetDBClusterParameterGroup", DBClusterParameterGroupName="apg16")
    return "cluster", "ledger"


def created(sim: RdsSimulator, world: GuardWorld) -> tuple[str, str]:
    sim.add_instance("adhoc", groups={"default.postgres14": "in-sync"}, engine_version="14.12")
    world.api_call("CreateDBInstance", DBInstanceIdentifier="adhoc")
    return "instance", "adhoc"


def proxy_off(sim: RdsSimulator, world: GuardWorld) -> tuple[str, str]:
    sim.set_proxy_tls("pool", False)
    world.api_call("ModifyDBProxy", DBProxyName="pool")
    return "proxy", "pool"


def pending(sim: RdsSimulator, world: GuardWorld) -> tuple[str, str]:
    sim.add_instance("fresh", groups={"pg16": "pending-reboot"})
    world.api_call("CreateDBInstance", DBInstanceIdentifier="fresh")
    return "instance", "fresh"


def burst(sim: RdsSimulator, world: GuardWorld) -> tuple[str, str]:
    sim.modify_group("pg16", {"rds.force_ssl": "0"})
    for n in range(500):
        world.api_call(
            "ModifyDBParameterGroup", delay=world.delay + n * 0.2, DBParameterGroupName="pg16"
        )
    return "instance", "app-49"


JITTER_S = 30.0  # the second call's delivery, in the jittered row


def rapid(sim: RdsSimulator, world: GuardWorld) -> tuple[str, str]:
    """Jittered delivery: a database checked 5 s ago (for an earlier call) is changed, and this
    call's event comes fast (JITTER_S), inside the database's minute, so its check waits for that
    minute (one delayed recheck). With a constant delay of a minute or more this cannot happen:
    a check made after a change has seen it."""
    world.api_call("RebootDBInstance", DBInstanceIdentifier="shop")
    sim.advance(world.delay + world.window + 5)
    sim.modify_group("my84", {"require_secure_transport": "0"})
    world.api_call("ModifyDBParameterGroup", delay=JITTER_S, DBParameterGroupName="my84")
    return "instance", "shop"


def lost(sim: RdsSimulator, world: GuardWorld) -> tuple[str, str]:
    sim.modify_group("my84", {"require_secure_transport": "0"})  # no event reaches EventBridge
    return "instance", "shop"


CHANGES: dict[str, Change] = {
    "parameter off": param_off,
    "group swapped": swap,
    "group reset": reset,
    "created unprotected": created,
    "proxy RequireTLS off": proxy_off,
    "created, pending-reboot": pending,
    "burst: 500 events, 50 dbs": burst,
}


def latency(change: Change, delay: float, moment: float) -> tuple[float, int]:
    """Seconds from the change to its FAILED finding, and the checks the guard made by then."""
    sim = fleet()
    world = GuardWorld(sim, delay=delay)
    world.put({guard.MESSAGE_KEY: guard.SWEEP})
    sim.advance(moment)
    kind, name = change(sim, world)
    at = sim.now  # the change itself (rapid: after its first check)
    for _ in range(2 * 3600):
        sim.advance(1)
        if world.status(kind, name) == "FAILED":
            doc = world.hub.of(kind, name)
            assert doc is not None
            checks = sum(len(o.checked) for o in world.outcomes)
            return world.hub.imported_at[doc["Id"]] - at, checks
    raise SystemExit(f"{change.__name__} at delay {delay}: never detected")


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delays", type=float, nargs="+", default=[60.0, 300.0, 600.0, 900.0])
    parser.add_argument("--moments", type=int, default=4)
    args = parser.parse_args()
    print("python benchmarks/guard_latency.py  (simulated clock; CloudTrail delay modelled)")
    moments = [40.0 + n * (3500.0 / max(1, args.moments)) for n in range(args.moments)]
    print()
    print("| CloudTrail delay | change | guard median | guard worst | target (delay + 60 s) |")
    print("|---|---|---|---|---|")
    worst_over = 0.0
    by_delay: dict[float, list[float]] = {}
    for delay in args.delays:
        for label, change in CHANGES.items():
            seen = [latency(change, delay, m)[0] for m in moments]
            by_delay.setdefault(delay, []).extend(seen)
            worst = max(seen)
            worst_over = max(worst_over, worst - delay)
            met = "met" if worst <= delay + guard.EVERY_S else "MISSED"
            print(
                f"| {minutes(delay)} | {label} | {statistics.median(seen):.0f} s | {worst:.0f} s | "
                f"{met} |"
            )
    for delay in args.delays:
        seen = [latency(rapid, delay, m)[0] for m in moments]
        worst = max(seen)
        worst_over = max(worst_over, worst - JITTER_S)
        met = "met" if worst <= JITTER_S + guard.EVERY_S else "MISSED"
        print(
            f"| {minutes(JITTER_S)} (jitter: after one at {minutes(delay)}) | changed 5 s after "
            f"a check | {statistics.median(seen):.0f} s | {worst:.0f} s | {met} |"
        )
    lost_seen = [latency(lost, 300.0, m)[0] for m in moments]
    print(
        f"| event lost | parameter off | {minutes(statistics.median(lost_seen))} | "
        f"{minutes(max(lost_seen))} | the hourly sweep |"
    )
    print()
    print("| detector | how it runs | median | worst | source |")
    print("|---|---|---|---|---|")
    for delay, seen in by_delay.items():
        print(
            f"| guard, CloudTrail at {minutes(delay)} | events, at most 1 check a minute per "
            f"database | {minutes(statistics.median(seen))} | {minutes(max(seen))} | this run |"
        )
    print(
        f"| guard, event lost | hourly sweep | {minutes(statistics.median(lost_seen))} | "
        f"{minutes(max(lost_seen))} | this run |"
    )
    print("| AWS Config rule, best (1 h) | periodic | 30 min | 60 min | Config developer guide |")
    print("| AWS Config rule, default (24 h) | periodic | 12 h | 24 h | Config developer guide |")
    print("| Security Hub RDS.38/39/41/43/44 | periodic | 6 h | 12 h | Security Hub user guide |")
    print()
    print(
        f"SUMMARY guard_latency: worst detection {worst_over:.0f} s after CloudTrail's delivery "
        f"(target <= {guard.EVERY_S} s) over {len(args.delays)} delays x "
        f"{len(CHANGES) + 1} changes x {len(moments)} moments; Config >= 60 min, "
        "Security Hub <= 12 h"
    )


if __name__ == "__main__":
    main()
