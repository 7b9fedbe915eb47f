"""Wall time of ``rds-force-ssl audit --accounts org --role-name R --regions ...`` over a fake AWS
Organization, next to the same audit run sequentially (``--parallel 1``) and to ``audit`` run
once per account in a shell loop (one process per account, the way Prowler's docs loop over
accounts), against the same moto server.

The organization: moto in server mode, in a process of its own (Organizations, STS, RDS; the
audit reaches each member account's databases only through the role it assumes there), with
ACCOUNTS member accounts x REGIONS regions x DATABASES PostgreSQL instances on one parameter
group each. Once it is built, every API call answers after 50-150 ms (a latency shim in the
server), and RDS throttles per account and region at its documented rates: a token bucket of 300
requests, refilled at 12 a second
(https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-api-throttling.html); a throttled call
is answered ``Throttling``, as RDS does.

Reported: wall time of each way, the paired ratios, the API calls per account-region against the
budget (pages + distinct groups + 1 AssumeRole per account), the calls RDS throttled and whether
any throttle surfaced (an account-region not audited), and the audit process's peak RSS.
The sequential and shell-loop runs read a sample of the accounts and are scaled to the whole
organization (their cost is linear in the accounts; said next to the figure).

Usage: python benchmarks/org_audit.py [--accounts 20] [--regions 2] [--databases 3]
       [--parallel 32] [--sample 5]       (the real figure: --accounts 200 --regions 4
       --databases 10)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cli.moto_fleets import AWS_VARIABLES, ORG_ROLE, build_org  # noqa: E402

REGIONS = ("eu-west-3", "ap-southeast-2", "ca-central-1", "sa-east-1", "eu-north-1")
LATENCY_S = (0.05, 0.15)
RDS_BURST, RDS_RATE = 300, 12.0  # per account and region
TARGET_RATIO = 20.0


# ---- the server (a process of its own) -------------------------------------------------------
def serve(port: Any, shaping: Any, throttled: Any, burst: int, rate: float) -> None:
    """moto, with DescribeCertificates (moto lacks it), and once ``shaping`` is set: latency on
    every call and RDS's token bucket per (account, region)."""
    import logging

    from moto.core.common_types import TYPE_RESPONSE
    from moto.core.responses import ActionResult, BaseResponse
    from moto.rds.exceptions import RDSClientError
    from moto.rds.responses import RDSResponse
    from moto.server import ThreadedMotoServer

    from tests.cli.moto_fleets import describe_certificates

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    RDSResponse.describe_certificates = describe_certificates  # type: ignore[attr-defined]
    original = BaseResponse.call_action
    lock = threading.Lock()
    rng = random.Random(7)
    buckets: dict[tuple[str, str], list[float]] = {}  # -> [tokens, last refill]

    def take(key: tuple[str, str]) -> bool:
        now = time.monotonic()
        tokens, last = buckets.get(key, [float(burst), now])
        tokens = min(float(burst), tokens + (now - last) * rate)
        allowed = tokens >= 1
        buckets[key] = [tokens - 1 if allowed else tokens, now]
        return allowed

    def call_action(self: BaseResponse) -> TYPE_RESPONSE:
        if shaping.value:
            with lock:
                delay = rng.uniform(*LATENCY_S)
            time.sleep(delay)
            if self.service_name == "rds":
                with lock:
                    allowed = take((self.current_account, self.region))
                if not allowed:
                    with throttled.get_lock():
                        throttled.value += 1
                    error = RDSClientError("Throttling", "Rate exceeded")
                    status, headers, body = self.serialized(ActionResult(error))
                    headers["status"] = status
                    return status, headers, body
        return original(self)

    BaseResponse.call_action = call_action  # type: ignore[method-assign]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port.value = server.get_host_and_port()[1]
    threading.Event().wait()  # until the parent terminates this process


# ---- the runs --------------------------------------------------------------------------------
def environment(endpoint: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in AWS_VARIABLES}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106  # moto's fake credentials
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=str(home / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


# The CLI in a process of its own, which says its peak RSS last on stderr.
CHILD = (
    "import resource, sys\n"
    "from rds_force_ssl import cli\n"
    "code = cli.main(sys.argv[1:])\n"
    "use = resource.getrusage(resource.RUSAGE_SELF)\n"
    "sys.stderr.write(f'\\nRSS {use.ru_maxrss} CPU {use.ru_utime + use.ru_stime}\\n')\n"
    "sys.exit(code)\n"
)


def audit(env: dict[str, str], args: list[str]) -> tuple[float, dict[str, Any], int, float]:
    """One ``rds-force-ssl audit ... --json`` process: (seconds, its JSON, peak RSS in KiB,
    CPU seconds)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, "audit", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    elapsed = time.perf_counter() - start
    try:
        report = json.loads(done.stdout)
    except ValueError:
        raise SystemExit(f"audit exited {done.returncode}: {done.stderr[-2000:]}") from None
    said = done.stderr.rsplit("RSS ", 1)[1].split()
    return elapsed, report, int(said[0]), float(said[2])


def cpu_seconds(pid: int | None) -> float:
    """A process's CPU time so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def shell_loop(env: dict[str, str], accounts: list[str], regions: str) -> tuple[float, int]:
    """for a in ACCOUNTS; do rds-force-ssl audit --accounts $a ...; done, in one bash."""
    cli = shutil.which("rds-force-ssl", path=str(Path(sys.executable).parent))
    if cli is None:
        raise SystemExit("rds-force-ssl is not installed next to this Python")
    script = (
        f'for a in {" ".join(accounts)}; do "{cli}" audit --accounts "$a" --role-name {ORG_ROLE} '
        f"--regions {regions} --json > /dev/null; [ $? -le 1 ] || fails=$((fails+1)); done; "
        "exit ${fails:-0}"
    )
    start = time.perf_counter()
    done = subprocess.run(["bash", "-c", script], env=env, timeout=3600, check=False)
    return time.perf_counter() - start, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--regions", type=int, default=2, choices=range(1, len(REGIONS) + 1))
    parser.add_argument("--databases", type=int, default=3)
    parser.add_argument(
        "--parallel",
        default="32",
        help="comma-separated: the parallel audit runs once at each (default 32)",
    )
    parser.add_argument(
        "--sample", type=int, default=5, help="accounts read by the sequential and loop runs"
    )
    parser.add_argument("--burst", type=int, default=RDS_BURST)
    parser.add_argument("--rate", type=float, default=RDS_RATE)
    opts = parser.parse_args()
    regions = ",".join(REGIONS[: opts.regions])
    parallels = [int(n) for n in opts.parallel.split(",")]
    sample = max(1, min(opts.sample, opts.accounts))

    context = multiprocessing.get_context("spawn")
    port, shaping = context.Value("i", 0), context.Value("b", 0)
    throttled = context.Value("i", 0)
    server = context.Process(
        target=serve, args=(port, shaping, throttled, opts.burst, opts.rate), daemon=True
    )
    server.start()
    try:
        while not port.value:
            if not server.is_alive():
                raise SystemExit("the moto server did not start")
            time.sleep(0.05)
        endpoint = f"http://127.0.0.1:{port.value}"
        home = Path(tempfile.mkdtemp(prefix="org-audit-bench-"))
        env = environment(endpoint, home)
        os.environ.update(env)  # the builder's boto3 clients
        start = time.perf_counter()
        ou, accounts = build_org(
            endpoint,
            accounts=opts.accounts,
            databases=opts.databases,
            regions=REGIONS[: opts.regions],
            name="bench",
        )
        built = time.perf_counter() - start
        shaping.value = 1
        scope = ["--accounts", "org", "--ou", ou, "--role-name", ORG_ROLE, "--regions", regions]
        targets = opts.accounts * opts.regions

        runs = []  # (parallel, seconds, report, rss, cpu, server cpu, load)
        for parallel in parallels:
            server_before = cpu_seconds(server.pid)
            par_s, report, rss, cpu = audit(env, [*scope, "--parallel", str(parallel)])
            server_cpu = cpu_seconds(server.pid) - server_before
            runs.append((parallel, par_s, report, rss, cpu, server_cpu, os.getloadavg()[0]))
        # The headline: the fastest of the parallel runs.
        best, par_s, report, rss, *_ = min(runs, key=lambda run: run[1])
        sampled = ["--accounts", ",".join(accounts[:sample]), "--role-name", ORG_ROLE]
        seq_s, seq_report, _, _ = audit(env, [*sampled, "--regions", regions, "--parallel", "1"])
        loop_s, loop_fails = shell_loop(env, accounts[:sample], regions)
        thrown = throttled.value
    finally:
        server.terminate()
        server.join(10)

    scale = opts.accounts / sample
    seq_full, loop_full = seq_s * scale, loop_s * scale
    not_audited = [n for run in runs for n in run[2]["not_audited"]]
    surfaced = [n for n in not_audited + seq_report["not_audited"] if "Throttl" in n["reason"]]
    calls = [ar["api_calls"] for ar in report["account_regions"]]
    # Pages: clusters, instances, certificates, proxies (each <= 100 records), one per
    # distinct group, and the AssumeRole of the account's first region.
    groups = 1
    pages = 4 * max(1, -(-opts.databases // 100))
    budget = pages + groups + 1
    expected = opts.accounts * opts.regions * opts.databases
    judged = [run[2]["total"] for run in runs]
    if any(total != expected for total in judged) or not_audited:
        raise SystemExit(f"the audits judged {judged} of {expected}: {not_audited}")
    if seq_report["total"] != sample * opts.regions * opts.databases or loop_fails:
        raise SystemExit(f"the sequential or loop run failed ({loop_fails} loop failures)")

    print(
        f"organization: {opts.accounts} accounts x {opts.regions} regions x {opts.databases} "
        f"databases = {targets} account-regions, {expected} databases (built in {built:.0f} s)"
    )
    print(
        f"API latency {LATENCY_S[0] * 1000:.0f}-{LATENCY_S[1] * 1000:.0f} ms a call; RDS "
        f"throttling {opts.burst} burst, {opts.rate:g}/s per account-region"
    )
    print()
    print("| way | wall time | vs parallel |")
    print("| --- | --- | --- |")
    print(f"| `audit --accounts org --parallel {best}` | {par_s:.1f} s | 1.0x |")
    for parallel, seconds, *_ in runs:
        if parallel != best:
            print(
                f"| `audit --accounts org --parallel {parallel}` | {seconds:.1f} s | "
                f"{seconds / par_s:.1f}x slower |"
            )
    print(
        f"| `audit --parallel 1` (sequential; {sample} accounts measured, x{scale:g}) | "
        f"{seq_full:.1f} s | {seq_full / par_s:.1f}x slower |"
    )
    print(
        f"| shell loop, one `audit` per account ({sample} measured, x{scale:g}) | "
        f"{loop_full:.1f} s | {loop_full / par_s:.1f}x slower |"
    )
    print()
    print("| measure | value | budget |")
    print("| --- | --- | --- |")
    print(
        f"| API calls per account-region | max {max(calls)}, mean {sum(calls) / len(calls):.2f} "
        f"| {budget} (pages {pages} + groups {groups} + AssumeRole 1) |"
    )
    print(f"| RDS calls answered Throttling (all runs) | {thrown} | retried |")
    print(f"| throttles that surfaced (not audited) | {len(surfaced)} | 0 |")
    print(f"| peak RSS of the parallel audit | {rss / 1024:.0f} MiB | - |")
    for parallel, _, _, _, run_cpu, run_server, run_load in runs:
        print(
            f"| CPU at --parallel {parallel}: the audit / moto (load after) | "
            f"{run_cpu / targets * 1000:.0f} / {run_server / targets * 1000:.0f} ms per "
            f"account-region ({run_load:.1f} on {os.cpu_count()} CPUs) | - |"
        )
    ratio = seq_full / par_s
    met = ratio >= TARGET_RATIO and not surfaced and max(calls) <= budget
    print(
        f"SUMMARY org_audit: {targets} account-regions in {par_s:.1f} s, {ratio:.1f}x faster than "
        f"sequential, {loop_full / par_s:.1f}x than a per-account loop; max {max(calls)} calls "
        f"per account-region (budget {budget}); {len(surfaced)} throttles surfaced; target "
        f">= {TARGET_RATIO:g}x: {'met' if met else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
