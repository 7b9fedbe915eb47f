#!/usr/bin/env python3
"""Synth cost: a whole ``cdk synth`` app process with ForceSsl or SslBaseline, next to plain CDK.

The headline is what a user waits for: the whole process that ``cdk synth`` runs (``python
app.py``: start Python, import CDK, build the app, ``app.synth()`` with CDK's built-in
CloudFormation validation, exit), here ``benchmarks/synth_app.py``, for a stack with a VPC and N
PostgreSQL instances made SSL-only three ways (``variants.py``): (a) plain CDK
``parameters={"rds.force_ssl": "1"}``, (c) ``ForceSsl`` per database, (e) ``SslBaseline`` over
the app. Every variant runs in every round, in an order that rotates from round to round, so
each is paired with the plain-CDK run of its own round and a burst of load from elsewhere hits
all alike. Wall time and CPU time are both measured; CPU time is the process's and its children's
(the node processes of jsii's kernel, where CDK's own work runs), from ``wait4``.

Every run, at every N and for every variant alike, lifts the 500-resource limit (CloudFormation's
quota a stack; from N = 82 the stacks pass it, and would not deploy): the context
``@aws-cdk/core:stackResourceLimit`` is 0, which turns off CDK's count, and the built-in
validation's finding for it (``CloudFormation-Validate::F0007``) is acknowledged on the stack.
Everything else is validated as usual (``variants.build_app(lift_resource_limit=True)``).

Every process imports Python modules from compiled bytecode, as a user's app does once pip has
installed the wheel (``bytecode_env``): one cache for all variants, filled by an untimed run of
each before the first round.

After the headline, as explanation only: where each process's time goes (start-up and exit,
imports, building the app, ``app.synth()``, and CDK's validation within it, taken as ``app.synth()``
with validation on minus extra runs with it off), from the same rounds.

    .venv/bin/python benchmarks/synth_cost.py [--rounds 7] [--n 1 10 50 100] [--split-rounds 3]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
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


from benchmarks.variants import LABELS

APP = Path(__file__).resolve().parent / "synth_app.py"
ROOT = APP.parent.parent
BASE = "plain"
MEASURED = ("plain", "forcessl", "baseline")
TARGETS = {"forcessl": 1.05, "baseline": 1.10}  # whole process, wall, at TARGET_N
TARGET_N = 50
WALL_CPU = ("wall_s", "cpu_s")
PHASES = ("import", "build", "synth")  # timed inside synth_app.py


@dataclass(frozen=True)
class Run:
    variant: str
    n: int
    round: int
    validation: bool
    wall_s: float
    cpu_s: float
    phases: dict[str, float]  # import/build/synth wall and CPU, from inside the process
    resources: int


# ---- one measured process --------------------------------------------------------------------
def bytecode_env(cache: str) -> dict[str, str]:
    """The environment of every measured process: Python's compiled bytecode kept, in ``cache``.

    pip compiles an installed wheel's modules, so a user's app imports this library from
    bytecode, as it imports aws-cdk-lib. A checkout run with PYTHONDONTWRITEBYTECODE set would
    compile the library's source in every process (tens of ms, charged to (c) and (e) alone);
    one cache for all variants, filled by an untimed run of each first, removes that.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache
    return env


def measure(variant: str, n: int, round_: int, validation: bool, env: dict[str, str]) -> Run:
    with tempfile.TemporaryDirectory(prefix="synth-cost-") as outdir:
        cmd = [sys.executable, str(APP), variant, str(n), outdir, "--lift-resource-limit"]
        if not validation:
            cmd += ["--validation", "off"]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, env=env)
            # wait4: the process's own rusage, which includes the node processes it waited for.
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{stderr[-4000:]}")
    got = json.loads(stdout.strip().splitlines()[-1])
    resources = int(got.pop("resources"))
    return Run(
        variant, n, round_, validation, wall, usage.ru_utime + usage.ru_stime, got, resources
    )


# ---- statistics ------------------------------------------------------------------------------
def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """(first quartile, median, third quartile); with fewer than 4 values, (min, median, max)."""
    ordered = sorted(values)
    if len(ordered) < 4:
        return ordered[0], statistics.median(ordered), ordered[-1]
    q1, q2, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    return q1, q2, q3


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """Median [first quartile, third quartile] (min-max below 4 values)."""
    q1, q2, q3 = quartiles(values)
    return f"{fmt.format(q2)} [{fmt.format(q1)}-{fmt.format(q3)}]"


def paired(runs: Sequence[Run], variant: str, attr: str) -> list[float]:
    """variant / plain within each round."""
    by_round: dict[int, dict[str, float]] = defaultdict(dict)
    for r in runs:
        by_round[r.round][r.variant] = getattr(r, attr)
    return [v[variant] / v[BASE] for v in by_round.values() if variant in v and BASE in v]


def med(runs: Sequence[Run], variant: str, attr: str) -> float:
    return float(statistics.median(getattr(r, attr) for r in runs if r.variant == variant))


# ---- the report ------------------------------------------------------------------------------
def headline(results: dict[int, list[Run]], variants: Sequence[str]) -> list[str]:
    head = (
        "| N | variant | resources | wall s, median [IQR] | wall / (a), paired | "
        "CPU s, median [IQR] | CPU / (a), paired |"
    )
    lines = [head, _rule(head)]
    for n, runs in sorted(results.items()):
        for v in variants:
            mine = [r for r in runs if r.variant == v]
            wall_ratio = cpu_ratio = "1 (the base)"
            if v != BASE:
                wall_ratio = "**" + spread(paired(runs, v, "wall_s"), "{:.3f}") + "**"
                cpu_ratio = spread(paired(runs, v, "cpu_s"), "{:.3f}")
            lines.append(
                f"| {n} | {LABELS[v]} | {mine[0].resources} "
                f"| {spread([r.wall_s for r in mine])} | {wall_ratio} "
                f"| {spread([r.cpu_s for r in mine])} | {cpu_ratio} |"
            )
    return lines


def per_database(results: dict[int, list[Run]], variants: Sequence[str]) -> list[str]:
    """What each database adds over plain CDK, and what one more database costs between two N
    (the marginal cost, which is flat when nothing grows with the size of the app)."""
    ns = sorted(n for n in results if n >= 10)  # at N=1 it is the fixed cost
    head = (
        "| variant | over (a) per database, ms wall / CPU: "
        + " · ".join(f"N={n}" for n in ns)
        + " | one more database, ms wall / CPU: "
        + " · ".join(f"{a}→{b}" for a, b in itertools.pairwise(ns))
        + " |"
    )
    lines = [head, _rule(head)]
    for v in variants:
        if v == BASE:
            continue
        over = {
            n: tuple((med(results[n], v, attr) - med(results[n], BASE, attr)) for attr in WALL_CPU)
            for n in ns
        }
        each = " · ".join(f"{over[n][0] / n * 1000:.1f} / {over[n][1] / n * 1000:.1f}" for n in ns)
        marginal = " · ".join(
            f"{(over[b][0] - over[a][0]) / (b - a) * 1000:.1f} / "
            f"{(over[b][1] - over[a][1]) / (b - a) * 1000:.1f}"
            for a, b in itertools.pairwise(ns)
        )
        lines.append(f"| {LABELS[v]} | {each} | {marginal} |")
    return lines


def phases(
    results: dict[int, list[Run]], split: dict[int, list[Run]], variants: Sequence[str]
) -> list[str]:
    head = (
        "| N | variant | start-up and exit s | imports s | build s | app.synth() s "
        "| of which validation s | CPU s: imports / build / app.synth() |"
    )
    lines = [head, _rule(head)]
    for n, runs in sorted(results.items()):
        for v in variants:
            mine = [r for r in runs if r.variant == v]
            p = {k: statistics.median(r.phases[f"{k}_s"] for r in mine) for k in PHASES}
            cpu = {k: statistics.median(r.phases[f"{k}_cpu_s"] for r in mine) for k in PHASES}
            rest = statistics.median(
                r.wall_s - sum(r.phases[f"{k}_s"] for k in PHASES) for r in mine
            )
            off = [r.phases["synth_s"] for r in split.get(n, []) if r.variant == v]
            validation = f"{p['synth'] - statistics.median(off):.2f}" if off else "not measured"
            lines.append(
                f"| {n} | {LABELS[v]} | {rest:.2f} | {p['import']:.2f} | {p['build']:.2f} "
                f"| {p['synth']:.2f} | {validation} "
                f"| {cpu['import']:.2f} / {cpu['build']:.2f} / {cpu['synth']:.2f} |"
            )
    return lines


def summary(results: dict[int, list[Run]], variants: Sequence[str]) -> str:
    parts = []
    for v, target in TARGETS.items():
        if v not in variants:
            continue
        label = LABELS[v].split(" ", 1)[0]
        if TARGET_N not in results:
            parts.append(f"{label} not measured at N={TARGET_N}")
            continue
        ratio = statistics.median(paired(results[TARGET_N], v, "wall_s"))
        cpu = statistics.median(paired(results[TARGET_N], v, "cpu_s"))
        verdict = "met" if ratio <= target else f"MISSED by {ratio - target:.3f}"
        parts.append(
            f"{label} {ratio:.3f}x wall ({cpu:.3f}x CPU) at N={TARGET_N}, target <= {target}: "
            f"{verdict}"
        )
        ns = sorted(n for n in results if n >= 10)
        if len(ns) >= 3:
            # A difference of differences of whole processes: milliseconds out of seconds, so
            # only a quiet machine resolves it; jsii_calls.py counts the same thing exactly.
            over = {n: med(results[n], v, "cpu_s") - med(results[n], BASE, "cpu_s") for n in ns}
            steps = list(itertools.pairwise(ns))
            parts.append(
                f"{label} one more database "
                + ", ".join(
                    f"{(over[b] - over[a]) / (b - a) * 1000:.1f} ms CPU at N={a}→{b}"
                    for a, b in steps
                )
            )
    return "SUMMARY synth_cost: " + "; ".join(parts)


def _rule(head: str) -> str:
    return "|" + "---|" * (head.count("|") - 1)


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


# ---- the run ---------------------------------------------------------------------------------
def run(
    ns: Sequence[int],
    rounds: int,
    split_rounds: int,
    variants: Sequence[str],
    validation: bool,
    argv: Sequence[str],
) -> int:
    started, load_before = time.time(), _load()
    results: dict[int, list[Run]] = defaultdict(list)
    split: dict[int, list[Run]] = defaultdict(list)
    plan = [(n, r, validation) for n in ns for r in range(rounds)]
    plan += [(n, rounds + r, not validation) for n in ns for r in range(split_rounds)]
    total, done = len(plan) * len(variants), 0
    cache = tempfile.TemporaryDirectory(prefix="synth-cost-pycache-")
    env = bytecode_env(cache.name)
    for v in variants:  # untimed: fills the bytecode cache, as installing a wheel does
        measure(v, 1, -1, validation, env)
    for n, r, with_validation in plan:
        # Rotate the order so that no variant always runs first (cold caches) or last.
        order = list(variants[r % len(variants) :]) + list(variants[: r % len(variants)])
        for v in order:
            got = measure(v, n, r, with_validation, env)
            (results if with_validation == validation else split)[n].append(got)
            done += 1
            print(
                f"  [{done}/{total}] N={n} {v} validation={'on' if with_validation else 'off'}"
                f" {got.wall_s:.2f} s",
                file=sys.stderr,
                flush=True,
            )
    cache.cleanup()
    minutes = (time.time() - started) / 60
    print(
        "Synth cost: the whole app process (what `cdk synth` runs), fresh for every run, "
        "variants alternated in each round"
    )
    print()
    print(f"command: .venv/bin/python benchmarks/synth_cost.py {shlex.join(argv)}".rstrip())
    print(
        f"rounds: {rounds} per N (plus {split_rounds} with validation "
        f"{'off' if validation else 'on'}, for the split); took {minutes:.1f} min; "
        f"load average (1/5/15 min) {load_before} before, {_load()} after"
    )
    print(
        "every run: the 500-resource limit lifted (context @aws-cdk/core:stackResourceLimit=0, "
        "finding CloudFormation-Validate::F0007 acknowledged), built-in CloudFormation "
        f"validation {'on' if validation else 'OFF'}; Python bytecode cached, as for an "
        "installed wheel (one untimed run of each variant first)"
    )
    print()
    for line in headline(results, variants):
        print(line)
    print()
    print(
        "Ratios are medians of each round's run over the same round's (a) run; [IQR] is the "
        "first to third quartile (min-max below 4 rounds). CPU includes jsii's node processes."
    )
    print()
    if len([n for n in results if n >= 10]) >= 2:
        print("Cost per database, from the medians above (N >= 10)")
        print()
        for line in per_database(results, variants):
            print(line)
        print()
    print("Where a process's time goes (medians; explanation, not the measure)")
    print()
    for line in phases(results, split, variants):
        print(line)
    print()
    print(summary(results, variants))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=7, help="rounds per N (default: 7)")
    parser.add_argument(
        "--n", type=int, nargs="+", default=[1, 10, 50, 100], help="stack sizes (1 10 50 100)"
    )
    parser.add_argument(
        "--split-rounds",
        type=int,
        default=3,
        help="extra rounds with validation the other way, for the validation split (default: 3)",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=MEASURED,
        default=list(MEASURED),
        help="(a) plain is always measured, as the base",
    )
    parser.add_argument(
        "--validation",
        choices=["on", "off"],
        default="on",
        help="CDK's built-in validation in the headline runs (default: on, what users get)",
    )
    args = parser.parse_args(args_in)
    variants = [BASE] + [v for v in args.variants if v != BASE]
    if args.rounds < 1 or any(n < 1 for n in args.n):
        parser.error("--rounds and every --n must be at least 1")
    return run(
        sorted(set(args.n)),
        args.rounds,
        args.split_rounds,
        variants,
        args.validation == "on",
        args_in,
    )


if __name__ == "__main__":
    sys.exit(main())
