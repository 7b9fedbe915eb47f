"""Wall time of ``rds-force-ssl probe`` over a loopback fleet of real PostgreSQL endpoints, next to
a sequential psql loop over the same endpoints, in the same run.

The fleet: as many of the test suite's TLS servers (SSL-only rules) as it takes, each listening
on up to 63 loopback addresses (one endpoint per address). In every round, the two take turns
going first (drift and caches hit both alike):

- ``rds-force-ssl probe E1 ... EN`` (the whole command, one process: the headline);
- the same proof by hand, in one bash process: for each endpoint, psql with
  ``sslmode=disable`` (refused: exit 2), then psql with ``sslmode=require`` and no password
  (admitted to authentication over TLS: "no password supplied").

Both must prove every endpoint, or the script stops. Prints medians, each round's paired ratio
and their median; the last line is a one-line summary against the target (500 endpoints in
<= 5 s).
Usage: python benchmarks/probe_fleet.py [--endpoints 500] [--rounds 3] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cli.pgserver import MAX_ADDRESSES, find_bindir, loopback_addresses, start_server

TARGET_S = 5.0
TARGET_N = 500


def probe_run(cli: str, endpoints: list[str], concurrency: int) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [cli, "probe", *endpoints, "--json", "--concurrency", str(concurrency)],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    report = json.loads(done.stdout)
    if done.returncode != 0 or report["counts"]["ENFORCED"] != len(endpoints):
        raise SystemExit(f"probe exited {done.returncode}: {report['counts']}")
    return elapsed


def psql_loop(psql: str, endpoints: list[str]) -> float:
    hosts = " ".join(shlex.quote(e) for e in endpoints)
    conninfo = (
        '"host=${e%:*} port=${e##*:} user=rds_force_ssl_probe dbname=postgres '
        'connect_timeout=5 sslmode=$mode"'
    )
    run = f'{shlex.quote(psql)} -X -w {conninfo} -c "SELECT 1"'
    script = (
        # no password from anywhere: over TLS the server must be the one to ask for it
        "unset PGPASSWORD; export PGPASSFILE=/dev/null\n"
        "proven=0\n"
        f"for e in {hosts}; do\n"
        f"  mode=disable; {run} >/dev/null 2>&1 || [ $? -ne 2 ] || {{\n"
        f"    mode=require; out=$({run} 2>&1)\n"
        '    case "$out" in *"no password supplied"*) proven=$((proven + 1));; esac\n'
        "  }\n"
        "done\n"
        'echo "$proven"\n'
    )
    start = time.perf_counter()
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.stdout.strip() != str(len(endpoints)):
        raise SystemExit(f"psql loop: {done.stdout.strip()} of {len(endpoints)} proven")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=TARGET_N)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()

    bindir = find_bindir()
    psql = shutil.which("psql") or (str(bindir / "psql") if bindir else None)
    if bindir is None or psql is None:
        raise SystemExit("needs the PostgreSQL server binaries and psql")
    cli = str(Path(sys.executable).parent / "rds-force-ssl")
    servers_needed = -(-args.endpoints // MAX_ADDRESSES)
    print(
        f"machine: {os.cpu_count()} CPUs; load average at start {os.getloadavg()}\n"
        f"fleet: {args.endpoints} endpoints on {servers_needed} PostgreSQL servers "
        f"(up to {MAX_ADDRESSES} loopback addresses each), SSL-only pg_hba.conf"
    )
    with contextlib.ExitStack() as stack:
        endpoints: list[str] = []
        for _ in range(servers_needed):
            count = min(MAX_ADDRESSES, args.endpoints - len(endpoints))
            server = start_server(
                bindir=bindir,
                app_password=secrets.token_hex(8),
                addresses=loopback_addresses(count),
            )
            stack.callback(server.remove)
            stack.callback(server.stop)
            endpoints += [f"{a}:{server.port}" for a in loopback_addresses(count)]
        probe_run(cli, endpoints, args.concurrency)  # warm-up
        probe_s, psql_s = [], []
        for round_ in range(args.rounds):
            if round_ % 2:
                psql_s.append(psql_loop(psql, endpoints))
                probe_s.append(probe_run(cli, endpoints, args.concurrency))
            else:
                probe_s.append(probe_run(cli, endpoints, args.concurrency))
                psql_s.append(psql_loop(psql, endpoints))

    probe_m, psql_m = statistics.median(probe_s), statistics.median(psql_s)
    ratios = [b / a for a, b in zip(probe_s, psql_s, strict=True)]
    paired = statistics.median(ratios)
    print(f"\n{args.rounds} rounds, each going first in turn; medians of wall time")
    print(f"{'command':58} {'median s':>9} {'per endpoint ms':>16}")
    print(
        f"{f'rds-force-ssl probe ({args.endpoints} endpoints, {args.concurrency} at once)':58} "
        f"{probe_m:9.2f} {probe_m * 1000 / args.endpoints:16.1f}"
    )
    print(
        f"{'sequential psql loop (disable, then require)':58} {psql_m:9.2f} "
        f"{psql_m * 1000 / args.endpoints:16.1f}"
    )
    print(f"rounds: probe {[round(x, 2) for x in probe_s]}, psql {[round(x, 2) for x in psql_s]}")
    print(
        f"paired: psql loop / probe per round {[round(r, 1) for r in ratios]}, median {paired:.1f}x"
    )
    print(f"load average at end {os.getloadavg()}")
    target = (
        f"; target {TARGET_N} endpoints in <= {TARGET_S:g} s: "
        f"{'met' if probe_m <= TARGET_S else 'MISSED'}"
        if args.endpoints == TARGET_N
        else ""
    )
    print(
        f"SUMMARY probe_fleet: probe {probe_m:.2f} s vs psql loop {psql_m:.2f} s for "
        f"{args.endpoints} endpoints (paired median {paired:.1f}x faster){target}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
