#!/usr/bin/env python3
"""Run every benchmark once, one after another, and write benchmarks/RESULTS.md from that run.

Each script's output goes in verbatim, under the command that produced it, with the machine's
load average before and after it and how long it took; the targets are each script's own
SUMMARY line. benchmarks/EARLIER.md, written by hand (measurements from other runs: A/B
comparisons, history), follows under its own heading. Nothing else runs while a script runs,
so that the timings are this machine's: run it when the machine is otherwise quiet.

    .venv/bin/python benchmarks/results.py [--out benchmarks/RESULTS.md]

About 30 minutes on 2 quiet cores, most of it synth_cost.py (11 rounds at N = 1, 10, 50 and
100, 3 variants, plus 3 rounds without validation for the split). verify_vs_psql.py and
probe_fleet.py need the PostgreSQL server binaries and psql (and root for verify's network
namespace); a script that fails is in the file with its exit code and the end of its stderr.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Written by hand: measurements from other runs (A/B comparisons, history), appended under their
# own heading so that everything above it is from the one run.
EARLIER = ROOT / "benchmarks" / "EARLIER.md"
# (script, arguments, what it shows); run in this order, the timing runs last, the longest last.
SCRIPTS: tuple[tuple[str, list[str], str], ...] = (
    ("footprint.py", [], "Template footprint"),
    ("deploy_sim.py", [], "Deploy behaviour, simulated"),
    ("jsii_calls.py", [], "Synth cost in jsii round trips"),
    ("guard_coverage.py", [], "What the guard covers, next to Config, Security Hub and Prowler"),
    ("guard_latency.py", [], "The guard's detection latency, simulated"),
    ("guard_cost.py", [], "The guard's calls a day for 200 databases"),
    ("hostile.py", [], "`probe` and `verify` against hostile servers, before and after"),
    (
        "org_audit.py",
        ["--accounts", "200", "--regions", "4", "--databases", "10"],
        "`audit` over an organization of 200 accounts x 4 regions (moto)",
    ),
    (
        "clients.py",
        ["--sessions", "1000", "--size-mb", "1024"],
        "`clients` next to psql on 1,000 sessions, and a 1 GB log scan next to grep -c",
    ),
    ("verify_vs_psql.py", [], "`verify` next to plain psql, on loopback and at 10 ms RTT"),
    ("probe_fleet.py", [], "`probe` over 500 endpoints next to a psql loop"),
    # 11 rounds, not the script's 7: on this 2-core machine one round's ratio moves by about
    # 0.1 from round to round, as much as the targets' margins, and the median needs more.
    ("synth_cost.py", ["--rounds", "11"], "Synth cost, the whole `cdk synth` process"),
)
QUICK: tuple[tuple[str, list[str], str], ...] = (
    ("footprint.py", ["--n", "1", "2"], "Template footprint"),
    ("deploy_sim.py", [], "Deploy behaviour, simulated"),
    ("jsii_calls.py", ["--n", "1", "2"], "Synth cost in jsii round trips"),
    ("guard_coverage.py", [], "Guard coverage"),
    ("guard_latency.py", ["--delays", "60", "--moments", "1"], "Guard latency"),
    ("guard_cost.py", ["--databases", "10", "--changes", "3"], "Guard cost"),
    ("hostile.py", ["--quick", "--only", "escapes"], "Hostile servers"),
    ("org_audit.py", ["--accounts", "2", "--regions", "1", "--databases", "1"], "Org audit"),
    ("clients.py", ["--sessions", "4", "--rounds", "1", "--size-mb", "1"], "`clients`"),
    ("verify_vs_psql.py", ["--rounds", "1", "--rtt-ms", "2"], "`verify` next to plain psql"),
    ("probe_fleet.py", ["--endpoints", "3", "--rounds", "1"], "`probe` next to a psql loop"),
    ("synth_cost.py", ["--rounds", "1", "--n", "1", "--split-rounds", "0"], "Synth cost"),
)
# How to read each script's figures: what its output does not say itself. No figures here:
# every figure in RESULTS.md comes from the run.
NOTES = {
    "footprint.py": "Counts from synthesized templates, the same on any machine. IAM's limit is "
    'per role, all its inline policies together, whitespace not counted (IAM User Guide, "IAM '
    "and AWS STS quotas\"); identifiers are sized at RDS's 63-character maximum, the worst "
    "case. Fixed resources are the variant's own, over the stack with only its VPC.",
    "deploy_sim.py": "The models of CloudFormation and RDS behind each scenario are stated at "
    "the top of `benchmarks/deploy_sim.py`; times are simulated seconds, not measured ones.",
    "jsii_calls.py": "Exact counts for the jsii runtime installed: a round trip is a request "
    "from Python to jsii's Node process, or a callback from Node into Python (an Aspect's "
    "visit, a token's resolve, a validation). This is synth cost in the unit that load does not "
    "move; the whole-process timings below are what a user waits for.",
    "verify_vs_psql.py": "Where the kernel has no netem (`tc qdisc ... netem` fails with "
    '"Specified qdisc kind is unknown"), the 10 ms figures come from the userspace relay the '
    "script falls back to and labels: it delays application round trips as a 10 ms link "
    "would, and does not model kernel queueing or segment timing, so read them as an estimate.",
    "probe_fleet.py": "Loopback is the easy case for the probe: over a real network an SSL-only "
    "endpoint costs about six round trips (the plaintext start-up on one connection; an "
    "SSLRequest, a TLS handshake and the same start-up on a second), with 64 endpoints in "
    "flight at once, and an unreachable endpoint costs up to `--timeout`.",
    "synth_cost.py": "Each figure is a whole process, as `cdk synth` runs it. On 2 cores, CDK's "
    "built-in validation (most of each process, and multi-threaded) competes with anything "
    "else running, so read the figures with the load average above them. The cost of one more "
    "database is milliseconds taken from differences of seconds, which only a quiet machine "
    "resolves; the jsii round trips section counts the same cost exactly, at each size.",
}


@dataclass(frozen=True)
class Ran:
    script: str
    title: str
    command: str
    output: str
    minutes: float
    load_before: str
    load_after: str
    returncode: int


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def run(script: str, args: list[str], title: str) -> Ran:
    command = " ".join([".venv/bin/python", f"benchmarks/{script}", *args])
    print(f"running {command} (load {load()})", file=sys.stderr, flush=True)
    before, started = load(), time.time()
    errors: list[str] = []
    with tempfile.TemporaryFile(mode="w+") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / script), *args],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        for line in proc.stderr:  # progress, live; its end is kept in case the script fails
            sys.stderr.write(line)
            errors = [*errors[-19:], line.rstrip()]
        returncode = proc.wait()
        out.seek(0)
        output = out.read().rstrip()
    if returncode != 0:
        output += "\n[stderr, last lines]\n" + "\n".join(errors)
    return Ran(
        script, title, command, output, (time.time() - started) / 60, before, load(), returncode
    )


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    node = shutil.which("node")
    node_version = (
        subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout
        if node
        else "none"
    ).strip()
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}" for name in ("aws-cdk-lib", "jsii")
    )
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {mem_kb / 1024 / 1024:.0f} GB RAM, Linux "
        f"{platform.release()}, Python {platform.python_version()}, Node {node_version}, "
        f"{versions}"
    )


def commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" with uncommitted changes" if git("status", "--porcelain") else "")


def write(out: Path, runs: list[Ran], started: str) -> None:
    lines = [
        "# Benchmark results",
        "",
        f"Written by `.venv/bin/python benchmarks/results.py`, which ran each script below once, "
        f"one after another, on {started} at commit {commit()}. Each section gives the command, "
        "the load average (1, 5 and 15 minutes) before and after it, and its output verbatim.",
        "",
        f"**Machine:** {machine()}.",
        "",
        "Every stack is a VPC with isolated subnets in 2 AZs and N `t4g.micro` PostgreSQL 16.9 "
        "instances, with this project's `cdk.json` feature flags, protected one of these ways "
        "(`benchmarks/variants.py`): (a) plain CDK `parameters={'rds.force_ssl': '1'}`; "
        "(b) (a) plus one `AwsCustomResource` calling `rebootDBInstance` per instance; "
        "(c) `ForceSsl` per database; (d) (c) with `reboot=Reboot.MAINTENANCE_WINDOW`; "
        "(e) `SslBaseline.apply(app)` over the app. `deploy_sim.py` names "
        "its own variants (its (a) is CloudFormation alone).",
        "",
        "## Targets",
        "",
        "Each script's own verdict, its last line:",
        "",
    ]
    for ran in runs:
        last = ran.output.splitlines()[-1] if ran.output else "(no output)"
        lines.append(f"- `{ran.command}`: {last}")
    for number, ran in enumerate(runs, start=1):
        lines += [
            "",
            f"## {number}. {ran.title}",
            "",
            f"`{ran.command}` took {ran.minutes:.1f} min; load average {ran.load_before} before, "
            f"{ran.load_after} after"
            + ("" if ran.returncode == 0 else f"; it exited {ran.returncode}")
            + ".",
            "",
            "```",
            ran.output,
            "```",
        ]
        if ran.script in NOTES:
            lines += ["", NOTES[ran.script]]
    if EARLIER.is_file():
        lines += ["", "## Earlier runs (not this run)", "", EARLIER.read_text().rstrip()]
    out.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one round of everything at N=1, to try this script end to end in about a minute; "
        "its figures are not results",
    )
    args = parser.parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    scripts = QUICK if args.quick else SCRIPTS
    runs = [run(script, list(extra), title) for script, extra, title in scripts]
    write(args.out, runs, started)
    print(f"wrote {args.out}", file=sys.stderr)
    return max(ran.returncode for ran in runs)


if __name__ == "__main__":
    sys.exit(main())
