"""Wall time of ``rds-force-ssl verify`` next to the two psql connections it stands in for, on
loopback and over a link with a 10 ms round-trip time.

Starts the test suite's TLS PostgreSQL server (SSL-only rules). For the 10 ms link it makes a
network namespace with netem on a veth pair, and removes it at the end; where the kernel has no
netem it says so and uses a userspace delay relay instead, labelled as such (see netlink.py).
In every round it runs, as fresh processes, each in turn going first (the order rotates by one
each round, so that drift and warm caches hit all alike):

- ``rds-force-ssl verify`` (the whole command, the headline);
- psql with ``sslmode=disable``: the plaintext attempt, refused by the server;
- psql with ``sslmode=verify-full``: one query on pg_stat_ssl;
- ``rds-force-ssl --help`` on loopback: the CLI's start-up cost alone.

Usage: python benchmarks/verify_vs_psql.py [--rounds N] [--links loopback rtt] [--rtt-ms 10]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.netlink import (
    NS_CLIENT,
    NS_HOST,
    DelayRelay,
    Link,
    netem_namespace,
    netem_unavailable,
)
from tests.cli.pgserver import (
    ADDRESS,
    APP_DB,
    APP_USER,
    HBA_SSL_ONLY,
    PgServer,
    find_bindir,
    start_server,
)

TARGET = 1.2


def timed(cmd: list[str], env: dict[str, str], *, expect: int) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != expect:
        raise SystemExit(
            f"{' '.join(cmd)} exited {done.returncode}, expected {expect}:\n"
            f"{done.stdout}{done.stderr}"
        )
    return elapsed


def commands(
    link: Link, server: PgServer, *, cli: str, psql: str
) -> dict[str, tuple[list[str], int]]:
    common = f"host={link.host} port={link.port} user={APP_USER} dbname={APP_DB}"
    runs = {
        "rds-force-ssl verify": (
            [
                cli,
                "verify",
                "--host",
                link.host,
                "--port",
                str(link.port),
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
            [psql, "-X", "-w", f"{common} sslmode=disable", "-c", "SELECT 1"],
            2,
        ),
        "psql sslmode=verify-full (query)": (
            [
                psql,
                "-X",
                "-At",
                f"{common} sslmode=verify-full sslrootcert={server.ca_file}",
                "-c",
                "SELECT ssl, version, cipher, bits FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            ],
            0,
        ),
    }
    if link.kind == "loopback":
        runs["rds-force-ssl --help (start-up only)"] = ([cli, "--help"], 0)
    return {name: ([*link.prefix, *cmd], code) for name, (cmd, code) in runs.items()}


def report(
    link: Link, samples: dict[str, list[float]], *, rounds: int
) -> tuple[float, float, float]:
    median = {name: statistics.median(v) for name, v in samples.items()}
    verify = median["rds-force-ssl verify"]
    disable, full = (
        samples["psql sslmode=disable (refused)"],
        samples["psql sslmode=verify-full (query)"],
    )
    both = statistics.median(a + b for a, b in zip(disable, full, strict=True))
    paired = statistics.median(
        v / (a + b) for v, a, b in zip(samples["rds-force-ssl verify"], disable, full, strict=True)
    )
    print(f"\n{link.kind}: {link.note or 'direct'} ({rounds} rounds, medians per process)")
    print(f"{'command':40} {'median ms':>10} {'verify / this':>14}")
    for name, value in median.items():
        print(f"{name:40} {value * 1000:10.1f} {verify / value:13.2f}x")
    print(
        f"{'both psql connections (sum per round)':40} {both * 1000:10.1f} {verify / both:13.2f}x"
    )
    print(f"paired: median over rounds of verify / (psql + psql) = {paired:.2f}x")
    return verify, both, paired


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument(
        "--links", nargs="+", choices=("loopback", "rtt"), default=["loopback", "rtt"]
    )
    parser.add_argument("--rtt-ms", type=float, default=10.0)
    args = parser.parse_args()

    bindir = find_bindir()
    cli = str(Path(sys.executable).parent / "rds-force-ssl")
    psql = shutil.which("psql") or (str(bindir / "psql") if bindir else None)
    if bindir is None or psql is None:
        raise SystemExit("needs the PostgreSQL server binaries and psql")
    print(f"machine: {os.cpu_count()} CPUs; load average at start {os.getloadavg()}")

    with contextlib.ExitStack() as stack:
        addresses: tuple[str, ...] = (ADDRESS,)
        why_not = netem_unavailable() if "rtt" in args.links else None
        namespace = None
        if "rtt" in args.links and why_not is None:
            namespace, _ = stack.enter_context(netem_namespace(args.rtt_ms))
            addresses = (ADDRESS, NS_HOST)
        server = start_server(
            bindir=bindir,
            app_password="real-" + secrets.token_hex(12),
            addresses=addresses,
            cert_names=addresses,
        )
        stack.callback(server.remove)
        stack.callback(server.stop)
        if namespace is not None:  # the clients in the namespace come from NS_CLIENT
            server.configure(
                hba=(
                    *HBA_SSL_ONLY,
                    f"hostssl all all {NS_CLIENT}/32 scram-sha-256",
                    f"hostnossl all all {NS_CLIENT}/32 reject",
                )
            )
        links = []
        if "loopback" in args.links:
            links.append(Link("loopback", ADDRESS, server.port))
        if "rtt" in args.links:
            if namespace is not None:
                links.append(
                    Link(
                        "netem",
                        NS_HOST,
                        server.port,
                        ("ip", "netns", "exec", namespace),
                        f"{args.rtt_ms:g} ms RTT by netem on a veth pair; every command, psql "
                        "too, starts through `ip netns exec`",
                    )
                )
            else:
                print(f"netem: NOT AVAILABLE here ({why_not}); the RTT link is a userspace relay")
                relay = stack.enter_context(DelayRelay((ADDRESS, server.port), rtt_ms=args.rtt_ms))
                links.append(
                    Link(
                        "relay",
                        ADDRESS,
                        relay.port,
                        note=f"{args.rtt_ms:g} ms RTT emulated by a userspace TCP relay, NOT "
                        "netem (each chunk held half the RTT each way, the first client bytes "
                        "one RTT more for the TCP handshake)",
                    )
                )
        env = {**os.environ, "PGPASSWORD": server.app_password}
        plans = {link: commands(link, server, cli=cli, psql=psql) for link in links}
        for plan in plans.values():  # warm-up: page cache, first fork of each binary
            for cmd, expect in plan.values():
                timed(cmd, env, expect=expect)
        samples: dict[Link, dict[str, list[float]]] = {
            link: {name: [] for name in plan} for link, plan in plans.items()
        }
        for round_ in range(args.rounds):
            for link, plan in plans.items():
                order = list(plan.items())
                shift = round_ % len(order)
                for name, (cmd, expect) in order[shift:] + order[:shift]:
                    samples[link][name].append(timed(cmd, env, expect=expect))

    results = {link: report(link, samples[link], rounds=args.rounds) for link in links}
    print(f"\nload average at end {os.getloadavg()}")
    parts = []
    for link, (verify, both, paired) in results.items():
        label = "loopback" if link.kind == "loopback" else f"{args.rtt_ms:g} ms RTT ({link.kind})"
        verdict = ""
        if link.kind != "loopback":
            verdict = f"; target <= {TARGET}x: {'met' if verify / both <= TARGET else 'MISSED'}"
        parts.append(
            f"{label}: verify {verify * 1000:.0f} ms vs {both * 1000:.0f} ms for both psql "
            f"({verify / both:.2f}x, paired {paired:.2f}x){verdict}"
        )
    print("SUMMARY verify_vs_psql: " + "; ".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
