#!/usr/bin/env python3
"""jsii round trips: what synth costs in the unit that does not depend on the machine's load.

Every read or write of a CDK object from Python, and every call from CDK back into Python (an
Aspect's visit, a token's resolve, a validation), is a round trip to jsii's Node process. This
counts them while the app is built and while ``app.synth()`` runs, for each variant at three
sizes (one fresh process each, as ``cdk synth`` runs an app), and reports the round trips one
more database costs between each two sizes: the same from 10 to 50 as from 50 to 100 means
nothing the library does per database grows with the app (what Node does within a call is not
counted). Counting wraps the methods of jsii's kernel process provider
(``jsii._kernel.providers.process.ProcessProvider``), a private API of the jsii runtime: the
counts are exact for the jsii version installed. Validation is off (it runs in Node alone).

    .venv/bin/python benchmarks/jsii_calls.py [--n 10 50 100]
"""

from __future__ import annotations

import argparse
import itertools
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
PHASES = ("build", "synth")
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


def run(ns: Sequence[int], argv: Sequence[str]) -> int:
    got = {(v, n): measure(v, n) for v in MEASURED for n in ns}
    sizes = " / ".join(f"N={n}" for n in ns)
    steps = list(itertools.pairwise(ns))
    print(f"jsii round trips, counted at {sizes}; validation off")
    print()
    print(f"command: .venv/bin/python benchmarks/jsii_calls.py {shlex.join(argv)}".rstrip())
    print()
    head = (
        f"| variant | build, {sizes} | app.synth(), {sizes} "
        "| one more database, build + synth: "
        + " · ".join(f"N={a}→{b}" for a, b in steps)
        + " | over (a) | of which callbacks into Python |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    marginal: dict[str, list[float]] = {}
    for v in MEASURED:
        cells = []
        marginal[v] = []
        for a, b in steps:
            per_db = [(total(got[(v, b)][p]) - total(got[(v, a)][p])) / (b - a) for p in PHASES]
            marginal[v].append(sum(per_db))
            cells.append(f"{per_db[0]:g} + {per_db[1]:g} = {sum(per_db):g}")
        first, last = got[(v, ns[0])], got[(v, ns[-1])]
        callbacks = sum(
            last[p].get("sync_complete", 0) - first[p].get("sync_complete", 0) for p in PHASES
        ) / (ns[-1] - ns[0])
        print(
            f"| {LABELS[v]} | {' / '.join(str(total(got[(v, n)]['build'])) for n in ns)} "
            f"| {' / '.join(str(total(got[(v, n)]['synth'])) for n in ns)} "
            f"| {' · '.join(cells)} | {marginal[v][-1] - marginal['plain'][-1]:+g} "
            f"| {callbacks:g} |"
        )
    print()
    flat = all(max(m) - min(m) <= 1 for m in marginal.values())
    print(
        "SUMMARY jsii_calls: one more database costs "
        + ", ".join(f"{LABELS[v].split(' ', 1)[0]} {marginal[v][-1]:g}" for v in MEASURED)
        + " round trips"
        + (
            f"; the same from N={ns[0]} to N={ns[-1]} for each (flat: met)"
            if flat
            else "; it GROWS with N for "
            + ", ".join(
                LABELS[v].split(" ", 1)[0] for v, m in marginal.items() if max(m) - min(m) > 1
            )
            + " (flat: MISSED)"
        )
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--n", type=int, nargs="+", default=[10, 50, 100], help="two or more sizes (10 50 100)"
    )
    parser.add_argument("--worker", nargs=2, metavar=("VARIANT", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(args_in)
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]))))
        return 0
    ns = sorted(set(args.n))
    if len(ns) < 2 or ns[0] < 1:
        parser.error("--n needs two or more different sizes, each at least 1")
    return run(ns, args_in)


if __name__ == "__main__":
    sys.exit(main())
