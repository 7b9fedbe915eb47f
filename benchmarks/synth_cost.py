#!/usr/bin/env python3
"""Synth cost: how much slower does ``app.synth()`` get with ForceSsl than with plain CDK?

A stack with a VPC and N PostgreSQL instances is built three ways (see ``variants.py``): (a)
plain CDK ``parameters={"rds.force_ssl": "1"}``, (b) (a) plus an ``AwsCustomResource`` calling
``rebootDBInstance`` per instance, (c) ``ForceSsl``. Every measurement is a fresh process that
imports CDK, builds the stack and synthesizes it; only ``app.synth()`` is timed for the headline
(the whole process is timed too). Within a round the variants run back to back, in an order that
rotates from round to round, so a burst of load from elsewhere hits all three alike. Each is run
with CDK's built-in CloudFormation validation on (the default) and off.

Reported: medians of wall time for ``app.synth()`` and for the whole process, the ratio of the
medians, and the median of the per-round ratios (each round's (c) over the same round's (a),
which cancels slow drifts in load). CPU time of the synth (Python plus the jsii node process)
is given as a cross-check that is less sensitive to other work on the machine.

    .venv/bin/python benchmarks/synth_cost.py [--rounds 7] [--n 1 10 50] [--validation on off]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.variants import LABELS, VARIANTS

TARGET_RATIO = 1.05
TARGET_N = 50


@dataclass(frozen=True)
class Sample:
    variant: str
    n: int
    validation: bool
    synth_s: float
    synth_cpu_s: float
    build_s: float
    import_s: float
    process_s: float
    process_cpu_s: float
    resources: int


# ---- the measured process --------------------------------------------------------------------
def _node_cpu_seconds() -> float:
    """CPU seconds used so far by this process's descendants: jsii's runtime and the node
    kernel it starts, where CDK's synthesis runs."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # After "pid (comm)": state ppid ...; utime and stime are fields 14 and 15.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        cpu[pid] = (int(fields[11]) + int(fields[12])) / ticks
    mine, total = {os.getpid()}, 0.0
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in mine and pid not in mine:
                mine.add(pid)
                total += cpu[pid]
                grew = True
    return total


def worker(variant: str, n: int, validation: bool) -> None:
    t0 = time.perf_counter()
    import aws_cdk  # noqa: F401  (timed: what every variant pays to start)

    from benchmarks.variants import build_app

    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="synth-cost-") as outdir:
        app = build_app(variant, n, validation=validation, outdir=outdir)
        t2 = time.perf_counter()
        cpu0 = time.process_time() + _node_cpu_seconds()
        assembly = app.synth()
        cpu1 = time.process_time() + _node_cpu_seconds()
        t3 = time.perf_counter()
        template = json.loads(
            Path(assembly.get_stack_by_name("Bench").template_full_path).read_text()
        )
    print(
        json.dumps(
            {
                "import_s": t1 - t0,
                "build_s": t2 - t1,
                "synth_s": t3 - t2,
                "synth_cpu_s": cpu1 - cpu0,
                "resources": len(template["Resources"]),
            }
        )
    )


def measure(variant: str, n: int, validation: bool) -> Sample:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--worker", variant, str(n), "on" if validation else "off"],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{variant} N={n} failed:\n{done.stderr[-4000:]}")
    got = json.loads(done.stdout.strip().splitlines()[-1])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(
        variant=variant,
        n=n,
        validation=validation,
        synth_s=got["synth_s"],
        synth_cpu_s=got["synth_cpu_s"],
        build_s=got["build_s"],
        import_s=got["import_s"],
        process_s=elapsed,
        process_cpu_s=cpu,
        resources=got["resources"],
    )


# ---- the report ------------------------------------------------------------------------------
def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def paired_ratio(samples: Sequence[Sample], attr: str, num: str, den: str) -> float:
    """Median over rounds of (num / den) within the same round."""
    by_round: dict[int, dict[str, float]] = defaultdict(dict)
    counters: dict[str, int] = defaultdict(int)
    for s in samples:
        by_round[counters[s.variant]][s.variant] = getattr(s, attr)
        counters[s.variant] += 1
    ratios = [r[num] / r[den] for r in by_round.values() if num in r and den in r and r[den] > 0]
    return _median(ratios)


def table(results: dict[tuple[int, bool], list[Sample]]) -> list[str]:
    head = (
        "| N | validation | rounds | resources a/b/c | synth median s (a / b / c) "
        "| (b)/(a) | (c)/(a) | (c)/(a) paired | (c)/(a) CPU | build s (a / c) "
        "| whole process s (a / b / c) | (c)/(a) whole |"
    )
    lines = [head, _rule(head)]
    for (n, validation), samples in sorted(
        results.items(), key=lambda kv: (kv[0][0], not kv[0][1])
    ):
        med: dict[str, dict[str, float]] = {}
        for v in VARIANTS:
            mine = [s for s in samples if s.variant == v]
            med[v] = {
                f: _median([getattr(s, f) for s in mine])
                for f in ("synth_s", "synth_cpu_s", "build_s", "process_s", "resources")
            }
        rounds = min(sum(1 for s in samples if s.variant == v) for v in VARIANTS)
        a, b, c = (med[v] for v in VARIANTS)
        lines.append(
            f"| {n} | {'on' if validation else 'off'} | {rounds} "
            f"| {a['resources']:.0f}/{b['resources']:.0f}/{c['resources']:.0f} "
            f"| {a['synth_s']:.2f} / {b['synth_s']:.2f} / {c['synth_s']:.2f} "
            f"| {b['synth_s'] / a['synth_s']:.2f} | **{c['synth_s'] / a['synth_s']:.2f}** "
            f"| {paired_ratio(samples, 'synth_s', 'forcessl', 'plain'):.2f} "
            f"| {c['synth_cpu_s'] / a['synth_cpu_s']:.2f} "
            f"| {a['build_s']:.2f} / {c['build_s']:.2f} "
            f"| {a['process_s']:.2f} / {b['process_s']:.2f} / {c['process_s']:.2f} "
            f"| {c['process_s'] / a['process_s']:.2f} |"
        )
    return lines


def breakdown(results: dict[tuple[int, bool], list[Sample]]) -> list[str]:
    """Where a process's time goes, per N and variant: medians of each phase, with the built-in
    validation's share taken as app.synth() with it on minus app.synth() with it off."""
    head = (
        "| N | variant | import s | build s | synth without validation s "
        "| validation s (on - off) | whole process s (validation on) |"
    )
    lines = [head, _rule(head)]
    for n in sorted({n for n, _ in results}):
        if (n, True) not in results or (n, False) not in results:
            continue
        for v in VARIANTS:
            on = [s for s in results[(n, True)] if s.variant == v]
            off = [s for s in results[(n, False)] if s.variant == v]
            synth_off = _median([s.synth_s for s in off])
            lines.append(
                f"| {n} | {LABELS[v]} | {_median([s.import_s for s in on + off]):.2f} "
                f"| {_median([s.build_s for s in on + off]):.2f} | {synth_off:.2f} "
                f"| {_median([s.synth_s for s in on]) - synth_off:.2f} "
                f"| {_median([s.process_s for s in on]):.2f} |"
            )
    return lines


def _rule(head: str) -> str:
    return "|" + "---|" * (head.count("|") - 1)


def run(ns: Sequence[int], rounds_for: dict[int, int], validations: Sequence[bool]) -> int:
    results: dict[tuple[int, bool], list[Sample]] = defaultdict(list)
    total = sum(rounds_for[n] for n in ns) * len(validations) * len(VARIANTS)
    done = 0
    for n in ns:
        for r in range(rounds_for[n]):
            for validation in validations:
                # Rotate the order so no variant always runs first (cold caches) or last.
                order = VARIANTS[r % 3 :] + VARIANTS[: r % 3]
                for variant in order:
                    results[(n, validation)].append(measure(variant, n, validation))
                    done += 1
                    print(
                        f"  [{done}/{total}] N={n} {variant} validation={validation}",
                        file=sys.stderr,
                        flush=True,
                    )
    print("Synth cost: app.synth() in fresh processes, variants alternated within each round")
    print(", ".join(LABELS[v] for v in VARIANTS))
    print()
    for line in table(results):
        print(line)
    print()
    where = breakdown(results)
    if len(where) > 2:
        print("Where the time goes (medians)")
        print()
        for line in where:
            print(line)
        print()
    key = (
        (TARGET_N, True)
        if (TARGET_N, True) in results
        else max(results, key=lambda k: (k[1], k[0]))
    )
    samples = results[key]
    a = _median([s.synth_s for s in samples if s.variant == "plain"])
    c = _median([s.synth_s for s in samples if s.variant == "forcessl"])
    ratio = c / a
    verdict = "met" if ratio <= TARGET_RATIO else f"missed by {ratio - TARGET_RATIO:+.2f}"
    print(
        f"SUMMARY synth_cost: (c)/(a) app.synth() = {ratio:.2f} at N={key[0]} with validation "
        f"{'on' if key[1] else 'off'} (target <= {TARGET_RATIO} at N={TARGET_N}, validation on: "
        f"{verdict if key == (TARGET_N, True) else 'not measured in this run'})"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7, help="rounds per N (default: 7)")
    parser.add_argument(
        "--rounds-large",
        type=int,
        default=None,
        help="rounds for N >= 50, where one synth takes seconds (default: same as --rounds)",
    )
    parser.add_argument("--n", type=int, nargs="+", default=[1, 10, 50], help="stack sizes")
    parser.add_argument(
        "--validation",
        choices=["on", "off"],
        nargs="+",
        default=["on", "off"],
        help="built-in CloudFormation validation settings to measure (default: on off)",
    )
    parser.add_argument(
        "--worker", nargs=3, metavar=("VARIANT", "N", "VALIDATION"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.worker:
        variant, n, validation = args.worker
        worker(variant, int(n), validation == "on")
        return 0
    large = args.rounds_large if args.rounds_large is not None else args.rounds
    rounds_for = {n: (large if n >= 50 else args.rounds) for n in args.n}
    return run(args.n, rounds_for, [v == "on" for v in args.validation])


if __name__ == "__main__":
    sys.exit(main())
