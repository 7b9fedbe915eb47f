"""Wall time of ``rds-force-ssl verify`` next to the two psql connections it stands in for.

Starts the test suite's TLS PostgreSQL server (SSL-only rules), then, alternating in every round
so that drift hits all of them alike, runs:

- ``rds-force-ssl verify`` (the installed console script, a fresh process each time);
- psql with ``sslmode=disable``: the plaintext attempt, refused by the server;
- psql with ``sslmode=verify-full``: one query on pg_stat_ssl;
- ``rds-force-ssl --help``: the CLI's start-up cost alone, to tell it from the checks.

Prints medians and ratios side by side; the last line is a one-line summary.
Usage: python benchmarks/verify_vs_psql.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.cli.pgserver import APP_DB, APP_USER, HOST, find_bindir, start_server


def timed(cmd: list[str], env: dict[str, str], *, expect: int) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != expect:
        raise SystemExit(
            f"{cmd[0]} exited {done.returncode}, expected {expect}:\n{done.stdout}{done.stderr}"
        )
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()

    bindir = find_bindir()
    cli = shutil.which("rds-force-ssl") or str(Path(sys.executable).parent / "rds-force-ssl")
    psql = shutil.which("psql") or (str(bindir / "psql") if bindir else None)
    if bindir is None or psql is None:
        raise SystemExit("needs the PostgreSQL server binaries and psql")

    server = start_server(bindir=bindir, app_password="real-" + secrets.token_hex(12))
    try:
        env = {**os.environ, "PGPASSWORD": server.app_password}
        common = f"host={HOST} port={server.port} user={APP_USER} dbname={APP_DB}"
        runs = {
            "rds-force-ssl verify": (
                [
                    cli,
                    "verify",
                    "--host",
                    HOST,
                    "--port",
                    str(server.port),
                    "--dbname",
                    APP_DB,
                    "--user",
                    APP_USER,
                    "--sslrootcert",
                    str(server.ca_file),
                ],
                0,
            ),
            "psql sslmode=disable (refused)": (
                [
                    psql,
                    "-X",
                    f"{common} sslmode=disable password=dummy-not-the-real-one",
                    "-c",
                    "SELECT 1",
                ],
                2,
            ),
            "psql sslmode=verify-full (query)": (
                [
                    psql,
                    "-X",
                    "-At",
                    f"{common} sslmode=verify-full sslrootcert={server.ca_file}",
                    "-c",
                    "SELECT ssl, version, cipher, bits FROM pg_stat_ssl "
                    "WHERE pid = pg_backend_pid()",
                ],
                0,
            ),
            "rds-force-ssl --help (start-up only)": ([cli, "--help"], 0),
        }
        for cmd, expect in runs.values():  # warm-up: page cache, first fork of each binary
            timed(cmd, env, expect=expect)
        samples: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, (cmd, expect) in runs.items():
                samples[name].append(timed(cmd, env, expect=expect))
    finally:
        server.stop()
        server.remove()

    median = {name: statistics.median(values) for name, values in samples.items()}
    verify = median["rds-force-ssl verify"]
    both_psql = (
        median["psql sslmode=disable (refused)"] + median["psql sslmode=verify-full (query)"]
    )
    print(f"{args.rounds} rounds, alternating; medians of wall time per process")
    print(f"{'command':40} {'median ms':>10} {'verify / this':>14}")
    for name, value in median.items():
        print(f"{name:40} {value * 1000:10.1f} {verify / value:13.2f}x")
    print(
        f"{'both psql connections together':40} {both_psql * 1000:10.1f} "
        f"{verify / both_psql:13.2f}x"
    )
    startup = median["rds-force-ssl --help (start-up only)"]
    print(
        f"summary: verify {verify * 1000:.0f} ms vs {both_psql * 1000:.0f} ms for the two psql "
        f"connections ({verify / both_psql:.1f}x); {startup * 1000:.0f} ms of it is CLI start-up"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
