#!/usr/bin/env python3
"""The app ``synth_cost.py`` times: what ``cdk synth`` runs, for one variant and N databases.

    python benchmarks/synth_app.py VARIANT N OUTDIR [--validation on|off] [--lift-resource-limit]

Like an ``app.py``, it imports CDK, builds the app (``variants.build_app``) and calls
``app.synth()`` into OUTDIR. The whole process is the headline; the one line of JSON it prints
last (phase durations, resources) is for the explanation that comes after it. Printing it is the
only thing this process does that a real ``app.py`` would not.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402  (timed from the first line: imports are part of the cost)
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.variants import VARIANTS, build_app, import_for  # noqa: E402


def cpu_seconds() -> float:
    """CPU seconds used so far by this process and its live descendants (the node processes
    jsii starts, where CDK's own work runs)."""
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
    mine, total, grew = {os.getpid()}, time.process_time(), True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in mine and pid not in mine:
                mine.add(pid)
                total += cpu[pid]
                grew = True
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("n", type=int)
    parser.add_argument("outdir")
    parser.add_argument("--validation", choices=["on", "off"], default="on")
    parser.add_argument(
        "--lift-resource-limit",
        action="store_true",
        help="let the stack pass 500 resources (see variants.build_app)",
    )
    args = parser.parse_args(argv)
    import_for(args.variant)
    imported, imported_cpu = time.perf_counter(), cpu_seconds()
    app = build_app(
        args.variant,
        args.n,
        validation=args.validation == "on",
        outdir=args.outdir,
        lift_resource_limit=args.lift_resource_limit,
    )
    built, built_cpu = time.perf_counter(), cpu_seconds()
    assembly = app.synth()
    synthesized, synthesized_cpu = time.perf_counter(), cpu_seconds()
    template = json.loads(Path(assembly.get_stack_by_name("Bench").template_full_path).read_text())
    print(
        json.dumps(
            {
                "import_s": imported - STARTED,
                "build_s": built - imported,
                "synth_s": synthesized - built,
                "import_cpu_s": imported_cpu,
                "build_cpu_s": built_cpu - imported_cpu,
                "synth_cpu_s": synthesized_cpu - built_cpu,
                "resources": len(template["Resources"]),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
