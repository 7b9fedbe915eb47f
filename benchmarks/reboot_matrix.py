#!/usr/bin/env python3
"""Restarts per change under slow and unreliable RDS timings: every deploy_sim scenario, with
ForceSsl (variant c), under a matrix of restart length, event delay, pending-reboot looks after a
restart, and the memory table denied for the first minutes.

One row per scenario: the most restarts RDS performed in any cell (CloudFormation's and
ForceSsl's), the most that changed nothing the engine runs, the stack results seen, and false
successes ("false"). More than one restart per change is a failure whatever the outcome.

    .venv/bin/python benchmarks/reboot_matrix.py [--scenario NAME ...]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "constructs"))

from benchmarks import deploy_sim
from simulator import Fault

MINUTE = 60.0
RESTARTS = (117.0, 5.5 * MINUTE, 20 * MINUTE)
EVENT_LAGS = (15.0, 150.0)
LOOKS = (1, 3)
MEMORY_DOWN = (0.0, 3 * MINUTE)


def cells() -> list[tuple[float, dict[str, float], float]]:
    return [
        (restart, {"event_lag_seconds": lag, "pending_reboot_looks": looks}, down)
        for restart, lag, looks, down in itertools.product(RESTARTS, EVENT_LAGS, LOOKS, MEMORY_DOWN)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scenario", nargs="+", choices=[s.name for s in deploy_sim.SCENARIOS])
    args = parser.parse_args(argv)
    chosen = [s for s in deploy_sim.SCENARIOS if not args.scenario or s.name in args.scenario]
    grid = cells()
    print(
        f"ForceSsl under {len(grid)} timings: restarts {', '.join(f'{r:g}' for r in RESTARTS)} s; "
        f"restart events {' or '.join(f'{e:g}' for e in EVENT_LAGS)} s late; pending-reboot for "
        f"{' or '.join(map(str, LOOKS))} looks after a restart; the memory table denied for "
        f"{' or '.join(f'{d:g}' for d in MEMORY_DOWN)} s from the deploy's start"
    )
    print()
    print("| scenario | most restarts (CFN + ForceSsl) | most unnecessary | results | false |")
    print("| --- | --- | --- | --- | --- |")
    worst = 0
    false = 0
    for scenario in chosen:
        outcomes = []
        for restart, knobs, down in grid:
            faults = scenario.faults
            if down:
                faults = (
                    *faults,
                    Fault("PutItem", "denied", until=down),
                    Fault("BatchGetItem", "denied", until=down),
                )
            run = replace(scenario, faults=faults)
            outcomes.append(
                deploy_sim.simulate(
                    run,
                    "forcessl",
                    reboot_s=restart,
                    query_interval=deploy_sim.QUERY_INTERVAL_S,
                    timing=knobs,
                )
            )
        most = max(o.cfn_restarts + o.restarts for o in outcomes)
        split = max(outcomes, key=lambda o: o.cfn_restarts + o.restarts)
        unnecessary = max(o.unnecessary for o in outcomes)
        results = sorted({f"{o.result}/{o.attribute}" for o in outcomes})
        falses = sum(o.false_success for o in outcomes)
        worst = max(worst, unnecessary)
        false += falses
        print(
            f"| {scenario.name} | {most} ({split.cfn_restarts} + {split.restarts}) | "
            f"{unnecessary} | {', '.join(results)} | {falses} |"
        )
    print()
    print(
        f"SUMMARY reboot_matrix: {len(chosen)} scenarios x {len(grid)} timings; most unnecessary "
        f"restarts in any cell: {worst}; false successes: {false}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
