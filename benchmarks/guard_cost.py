"""What the guard costs in a day: Lambda invocations and API calls for a fleet of 200 databases
with 50 changes a day, on the simulator's clock (simulator/cloudtrail.py).

The fleet: 170 instances (PostgreSQL and MySQL, ten instances to a parameter group), 30 Aurora
clusters of two members, 10 proxies. The changes, at seeded random moments over 24 hours, each
recorded by CloudTrail and delivered 5 minutes later: group value changes (which touch the ten
databases of the group), group swaps, reboots, proxy changes. RDS's own events are not modelled
(they add invocations of the same kind). The sweep runs hourly.

Every call the guard makes is counted: RDS describes (and DescribeDB(Cluster)Parameters), the
DynamoDB conditional writes and scans, SQS rechecks, Security Hub imports, PutMetricData, SNS.
Usage: python benchmarks/guard_cost.py [--databases 200] [--changes 50] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "constructs"))

from simulator import RdsSimulator
from simulator.cloudtrail import GuardWorld

DAY = 86400.0


def fleet(databases: int) -> tuple[RdsSimulator, list[str], list[str], list[str]]:
    sim = RdsSimulator()
    clusters = max(1, databases * 15 // 100)
    instances = databases - clusters
    groups = []
    names = []
    for n in range(instances):
        mysql = n % 2 == 1
        group = f"{'my' if mysql else 'pg'}-{n // 20}"
        if group not in sim.groups:
            values = {"require_secure_transport": "1"} if mysql else {"rds.force_ssl": "1"}
            sim.add_group(group, values)
            groups.append(group)
        sim.add_instance(
            f"db-{n}",
            groups={group: "in-sync"},
            engine="mysql" if mysql else "postgres",
            engine_version="8.4.6" if mysql else "16.9",
        )
        names.append(f"db-{n}")
    cluster_names = []
    for n in range(clusters):
        sim.add_group(f"apg-{n}", {"rds.force_ssl": "1"}, cluster=True)
        sim.add_cluster(
            f"c-{n}", group=f"apg-{n}", writer=f"c-{n}-1", readers=(f"c-{n}-2",), status="in-sync"
        )
        cluster_names.append(f"c-{n}")
    for n in range(max(1, databases // 20)):
        sim.add_proxy(f"p-{n}")
    return sim, names, groups, cluster_names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", type=int, default=200)
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(
        f"python benchmarks/guard_cost.py --databases {args.databases} --changes {args.changes}"
        "  (one simulated day)"
    )
    sim, names, groups, clusters = fleet(args.databases)
    world = GuardWorld(sim, delay=300.0)
    rng = random.Random(args.seed)
    moments = sorted(rng.uniform(0, DAY) for _ in range(args.changes))
    kinds: Counter[str] = Counter()
    for at in moments:
        sim.advance(at - sim.now)
        pick = rng.random()
        if pick < 0.4:
            group = rng.choice(groups)
            world.api_call("ModifyDBParameterGroup", DBParameterGroupName=group)
            kinds["ModifyDBParameterGroup"] += 1
        elif pick < 0.6:
            world.api_call("ModifyDBInstance", DBInstanceIdentifier=rng.choice(names))
            kinds["ModifyDBInstance"] += 1
        elif pick < 0.8:
            world.api_call("RebootDBInstance", DBInstanceIdentifier=rng.choice(names))
            kinds["RebootDBInstance"] += 1
        elif pick < 0.9:
            world.api_call("ModifyDBCluster", DBClusterIdentifier=rng.choice(clusters))
            kinds["ModifyDBCluster"] += 1
        else:
            world.api_call("ModifyDBProxy", DBProxyName="p-0")
            kinds["ModifyDBProxy"] += 1
    sim.advance(DAY - sim.now)
    rds_calls = Counter(sim.call_names())
    checks = sum(len(o.checked) for o in world.outcomes)
    rechecks = sum(len(o.deferred) for o in world.outcomes)
    print()
    print("| per day | count | what |")
    print("|---|---|---|")
    print(f"| CloudTrail events matched | {sum(kinds.values())} | {dict(kinds)} |")
    print(f"| Lambda invocations | {world.invocations} | 24 sweeps + event batches + rechecks |")
    print(f"| database checks | {checks} | {rechecks} deferred to a recheck |")
    for op, count in sorted(rds_calls.items()):
        print(f"| rds:{op} | {count} | |")
    print(f"| dynamodb:UpdateItem | {world.marks.writes} | marks, last statuses, conditions |")
    print(f"| dynamodb:Scan | {world.marks.scans} | one a sweep (for the gone) |")
    print(f"| securityhub:BatchImportFindings | {world.hub.calls} | 100 findings a call |")
    print(f"| cloudwatch:PutMetricData | {world.metrics.calls} | one a run |")
    print(
        f"| cloudtrail:DescribeTrails + GetTrailStatus | {world.trails.calls} | "
        "a sweep: does a trail log the region |"
    )
    print(f"| sns:Publish | {len(world.topic.messages)} | on a change of status |")
    print()
    print(
        f"SUMMARY guard_cost: {world.invocations} Lambda invocations and "
        f"{sum(rds_calls.values())} RDS API calls a day for {args.databases} databases and "
        f"{args.changes} changes ({world.hub.calls} Security Hub imports)"
    )


if __name__ == "__main__":
    main()
