#!/usr/bin/env python3
"""jsii round trips: what synth costs in the unit that does not depend on the machine's load.

Every read or write of a CDK object from Python, and every call from CDK back into Python (an
Aspect's visit, a token's resolve, a validation), is a round trip to jsii's Node process. This
counts them while the app is built and while ``app.synth()`` runs, for each variant at two sizes
(one fresh process each, as ``cdk synth`` runs an app), and reports the round trips one more
database costs. Counting wraps the methods of jsii's kernel process provider
(``jsii._kernel.providers.process.ProcessProvider``), a private API of the jsii runtime: the
counts are exact for the jsii version installed. Validation is off (it runs in Node alone).

    .venv/bin/python benchmarks/jsii_calls.py [--n 10 50]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.variants import LABELS, build_app, import_for

MEASURED = ("plain", "forcessl", "baseline")
# Requests Python sends, and the callback completions it answers with.
KINDS = ("create", "get", "set", "invoke", "sget", "sset", "sinvoke", "delete", "sync_complete")


def worker(variant: str, n: int) -> dict[str, dict[str, int]]:
    from jsii._kernel.providers import process

    import_for(variant)
    counts: dict[str, Counter[str]] = {"build": Counter(), "synth": Counter()}
    phase = ["import"]

    def counted(kind: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            if phase[0] in counts:
                counts[phase[0]][kind] += 1
            return original(self, *args, **kwargs)

        return call

    for kind in KINDS:
        setattr(
            process.ProcessProvider, kind, counted(kind, getattr(process.ProcessProvider, kind))
        )
    with tempfile.TemporaryDirectory(prefix="jsii-calls-") as outdir:
        phase[0] = "build"
        app = build_app(variant, n, validation=False, outdir=outdir, lift_resource_limit=True)
        phase[0] = "synth"
        app.synth()
        phase[0] = "done"
    return {p: dict(c) for p, c in counts.items()}


def measure(variant: str, n: int) -> dict[str, dict[str, int]]:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", variant, str(n)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{variant} N={n} failed:\n{done.stderr[-4000:]}")
    result: dict[str, dict[str, int]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def total(counts: dict[str, int]) -> int:
    return sum(counts.values())


def run(small: int, large: int, argv: Sequence[str]) -> int:
    got = {(v, n): measure(v, n) for v in MEASURED for n in (small, large)}
    print(f"jsii round trips, counted at N={small} and N={large}; validation off")
    print()
    print(f"command: .venv/bin/python benchmarks/jsii_calls.py {shlex.join(argv)}".rstrip())
    print()
    head = (
        f"| variant | build, N={small} / N={large} | app.synth(), N={small} / N={large} "
        "| one more database: build + synth | over (a) | of which callbacks into Python |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    each: dict[str, float] = {}
    for v in MEASURED:
        lo, hi = got[(v, small)], got[(v, large)]
        per_db = {p: (total(hi[p]) - total(lo[p])) / (large - small) for p in ("build", "synth")}
        callbacks = sum(
            hi[p].get("sync_complete", 0) - lo[p].get("sync_complete", 0) for p in hi
        ) / (large - small)
        each[v] = per_db["build"] + per_db["synth"]
        print(
            f"| {LABELS[v]} | {total(lo['build'])} / {total(hi['build'])} "
            f"| {total(lo['synth'])} / {total(hi['synth'])} "
            f"| {per_db['build']:g} + {per_db['synth']:g} = {each[v]:g} "
            f"| {each[v] - each['plain']:+g} | {callbacks:g} |"
        )
    print()
    print(
        "SUMMARY jsii_calls: one more database costs "
        + ", ".join(f"{LABELS[v].split(' ', 1)[0]} {each[v]:g}" for v in MEASURED)
        + " round trips"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--n", type=int, nargs=2, default=[10, 50], metavar=("SMALL", "LARGE"), help="(10 50)"
    )
    parser.add_argument("--worker", nargs=2, metavar=("VARIANT", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(args_in)
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]))))
        return 0
    small, large = sorted(args.n)
    if small < 1 or small == large:
        parser.error("--n needs two different sizes, both at least 1")
    return run(small, large, args_in)


if __name__ == "__main__":
    sys.exit(main())
