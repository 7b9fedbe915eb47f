"""``rds-force-ssl clients`` on a server with many sessions, next to the bare SELECT in psql; and
its connection-log scan next to ``grep -c`` on the same file.

1. **Live sessions.** Starts the test suite's TLS PostgreSQL server with room for them, opens
   ``--sessions`` sessions (a quarter plaintext, the rest TLS, under four application names),
   then in every round runs, as fresh processes, each going first in turn:

   - ``rds-force-ssl clients --host localhost ...`` (the whole command: the headline);
   - ``psql`` with the same verify-full login running the same SELECT (cli/clients.py's
     PG_SQL) and printing its rows.

   Before timing, one run with ``log_statement=all`` for the listing's role counts the
   statements the server received from the listing's session: the list is one round trip.
   The listing alone (``clients.read_postgres`` in this process: the verified login, the query,
   the grouping) shows what the command's start-up adds.
2. **Log scan.** Writes a PostgreSQL log in RDS's format (``--size-mb``, default 64; use 1024
   for the real figure): per connection the "connection received", "connection authorized"
   (2% without TLS) and "disconnection" lines, over the last three days. Then, each going first
   in turn, ``rds-force-ssl clients --log-file`` (the whole process) and ``grep -c 'connection
   authorized'`` on the same file, both from the page cache once warmed: MB/s of each.
3. **MySQL memory.** A hostile MySQL server of the tests' kind (tests/cli/hostile.py) takes the
   verified login, then answers the listing with the most it may: (a) a chain of 16 MB packets
   (cut at the byte cap), (b) ``MYSQL_MAX_SESSIONS`` + 1 rows of the widest values (every
   column at its LEFT/RIGHT width, every character 4 bytes), without the listing's own row, and
   then as many widest PROCESSLIST rows. Each answers ``rds-force-ssl clients --engine mysql``
   in a fresh process, whose peak resident memory (VmHWM) is printed against the ~128 MB
   budget.

Prints medians, each round's paired ratio and their median; the last line is the summary.
Usage: python benchmarks/clients.py [--sessions 1000] [--rounds 7] [--size-mb 64]
       [--mysql-rows 20001]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import secrets
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rds_force_ssl.cli import clients as logic
from rds_force_ssl.cli import connlog
from tests.cli.pgserver import ADDRESS, APP_DB, APP_USER, HOST, PgServer, find_bindir, start_server

TARGET_RATIO = 1.5
BULK = "bulk"


def bytecode_env(base: dict[str, str], cache: str) -> dict[str, str]:
    """``base`` with Python's compiled bytecode kept, in ``cache`` (as benchmarks/synth_cost.py
    does): pip compiles an installed wheel, so a user's CLI starts from bytecode, while a
    checkout run under PYTHONDONTWRITEBYTECODE would compile every module in every process.
    The warm-up run fills the cache."""
    env = dict(base)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache
    return env


def timed(cmd: list[str], env: dict[str, str], *, expect: int) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != expect:
        raise SystemExit(
            f"{' '.join(cmd)} exited {done.returncode}, expected {expect}:\n"
            f"{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return elapsed


def open_sessions(server: PgServer, count: int) -> list[Any]:
    import psycopg

    opened = []
    for n in range(count):
        tls = n % 4 != 0
        opened.append(
            psycopg.connect(
                host=HOST if tls else ADDRESS,
                hostaddr=ADDRESS,
                port=server.port,
                user=BULK,
                dbname=APP_DB,
                application_name=f"worker-{n % 4}",
                sslmode="verify-full" if tls else "disable",
                sslrootcert=str(server.ca_file),
            )
        )
    return opened


def statements_of_listing(server: PgServer, cli: str, env: dict[str, str], argv: list[str]) -> int:
    """How many statements the server received from the listing's own session."""
    with server.admin() as conn:
        conn.execute(f"ALTER ROLE {APP_USER} SET log_statement = 'all'")
    mark = server.log_mark()
    timed([cli, *argv], env, expect=1)
    log = server.log_since(mark)
    with server.admin() as conn:
        conn.execute(f"ALTER ROLE {APP_USER} RESET log_statement")
    pids = re.findall(
        rf"\[(\d+)\][^\n]*LOG:  connection authorized: user={APP_USER} .*application_name="
        f"{re.escape(logic.APPLICATION_NAME)}",
        log,
    )
    if len(pids) != 1:
        raise SystemExit(f"expected one listing session in the log, found {pids}")
    return len(re.findall(rf"\[{pids[0]}\][^\n]*LOG:  statement: ", log))


def listing_alone(server: PgServer, rounds: int) -> float:
    """The median time of the listing itself in this process: the verified login, the one
    query, the grouping (what the command adds to its own start-up)."""
    from rds_force_ssl.cli import verify

    target = verify.Target(
        host=HOST,
        port=server.port,
        dbname=APP_DB,
        user=APP_USER,
        sslmode="verify-full",
        sslrootcert=str(server.ca_file),
        address=ADDRESS,
    )
    times = []
    for _ in range(rounds + 1):
        started = time.perf_counter()
        logic.read_postgres(target, password=server.app_password, timeout=60)
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def paired(
    plans: dict[str, tuple[list[str], int]], env: dict[str, str], rounds: int
) -> dict[str, list[float]]:
    for cmd, expect in plans.values():  # warm-up: page cache, first fork of each binary
        timed(cmd, env, expect=expect)
    samples: dict[str, list[float]] = {name: [] for name in plans}
    order = list(plans.items())
    for round_ in range(rounds):
        shift = round_ % len(order)
        for name, (cmd, expect) in order[shift:] + order[:shift]:
            samples[name].append(timed(cmd, env, expect=expect))
    return samples


def live(args: argparse.Namespace, cli: str, psql: str) -> tuple[float, float, float, int]:
    bindir = find_bindir()
    assert bindir is not None
    settings = (("max_connections", str(args.sessions + 50)),)
    server = start_server(
        bindir=bindir, app_password="real-" + secrets.token_hex(12), settings=settings
    )
    opened: list[Any] = []
    try:
        with server.admin() as conn:
            conn.execute(f"CREATE ROLE {BULK} LOGIN")
        server.configure(
            hba=(f"host all {BULK} {ADDRESS}/32 trust", f"host all all {ADDRESS}/32 scram-sha-256")
        )
        started = time.perf_counter()
        opened = open_sessions(server, args.sessions)
        print(f"opened {len(opened)} sessions in {time.perf_counter() - started:.1f} s")
        env = bytecode_env({**os.environ, "PGPASSWORD": server.app_password}, args.pycache)
        argv = ["clients", "--host", HOST, "--port", str(server.port), "--dbname", APP_DB]
        argv += ["--user", APP_USER, "--sslrootcert", str(server.ca_file)]
        statements = statements_of_listing(server, cli, env, argv)
        conninfo = (
            f"host={HOST} hostaddr={ADDRESS} port={server.port} user={APP_USER} dbname={APP_DB} "
            f"sslmode=verify-full sslrootcert={server.ca_file}"
        )
        sql = " ".join(logic.PG_SQL.format(limit=logic.MAX_SESSIONS + 1).split())
        plans = {
            "rds-force-ssl clients --host": ([cli, *argv], 1),
            "psql: the same SELECT, verify-full": ([psql, "-X", "-At", conninfo, "-c", sql], 0),
        }
        samples = paired(plans, env, args.rounds)
        alone = listing_alone(server, args.rounds)
    finally:
        for conn in opened:
            conn.close()
        server.stop()
        server.remove()
    ours, theirs = samples.values()
    ratio = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
    print(f"\nlive sessions: {args.sessions} ({args.rounds} rounds, medians per process)")
    print(f"{'command':44} {'median ms':>10}")
    for name, values in samples.items():
        print(f"{name:44} {statistics.median(values) * 1000:10.1f}")
    print(f"{'the listing alone (clients.read_postgres)':44} {alone * 1000:10.1f}")
    print(f"paired: median over rounds of clients / psql = {ratio:.2f}x")
    print(f"statements the listing's session sent: {statements} (one simple-query message)")
    return statistics.median(ours), statistics.median(theirs), ratio, statements


def write_log(path: Path, size_mb: int) -> int:
    """A log in RDS's format, over the last three days; returns its size."""
    rnd = random.Random(24)
    users = [f"svc{n}" for n in range(20)]
    apps = ["", "psql", "PostgreSQL JDBC Driver", "cron-report", "airflow", "metabase"]
    hosts = [f"10.0.{a}.{b}" for a in range(3) for b in range(1, 30)]
    size = size_mb << 20
    written = 0
    moment = time.time() - 3 * 86400
    step = 3 * 86400 / max(1, size // 400)  # about 400 bytes per connection
    pid = 1000
    with path.open("wb") as out:
        while written < size:
            lines = []
            for _ in range(2000):
                moment += step
                pid += 1
                stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(moment))
                host, port = rnd.choice(hosts), rnd.randint(30000, 60000)
                user, app = rnd.choice(users), rnd.choice(apps)
                prefix = f"{stamp}:{host}({port}):{user}@appdb:[{pid}]:LOG:  "
                named = f" application_name={app}" if app else ""
                tls = (
                    " SSL enabled (protocol=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384, bits=256)"
                    if rnd.random() > 0.02
                    else ""
                )
                lines += [
                    f"{stamp}:{host}({port}):[unknown]@[unknown]:[{pid}]:LOG:  connection "
                    f"received: host={host} port={port}\n",
                    f"{prefix}connection authorized: user={user} database=appdb{named}{tls}\n",
                    f"{prefix}disconnection: session time: 0:00:00.012 user={user} "
                    f"database=appdb host={host} port={port}\n",
                ]
            chunk = "".join(lines).encode()
            out.write(chunk)
            written += len(chunk)
    return written


def scan(args: argparse.Namespace, cli: str) -> tuple[float, float]:
    grep = shutil.which("grep")
    if grep is None:
        raise SystemExit("needs grep")
    with tempfile.TemporaryDirectory(prefix="rds-force-ssl-log-") as tmp:
        path = Path(tmp) / "postgresql.log"
        size = write_log(path, args.size_mb)
        plans = {
            "rds-force-ssl clients --log-file": ([cli, "clients", "--log-file", str(path)], 1),
            "grep -c 'connection authorized'": (
                [grep, "-c", "connection authorized", str(path)],
                0,
            ),
        }
        samples = paired(plans, bytecode_env(dict(os.environ), args.pycache), args.rounds)
        with path.open("rb", buffering=0) as stream:  # what it read: not timed
            found = connlog.scan_file(stream, since=connlog.window_start(7, now=_now()))
    megabytes = size / (1 << 20)
    ours, theirs = (statistics.median(v) for v in samples.values())
    ratio = statistics.median(a / b for a, b in zip(*samples.values(), strict=True))
    print(f"\nlog scan: {megabytes:.0f} MB, {found.lines} connection lines, warm page cache")
    print(f"{'command':44} {'median s':>9} {'MB/s':>8}")
    for name, value in zip(samples, (ours, theirs), strict=True):
        print(f"{name:44} {value:9.2f} {megabytes / value:8.0f}")
    print(f"paired: median over rounds of clients / grep -c = {ratio:.2f}x")
    return megabytes / ours, megabytes / theirs


MEMORY_BUDGET_MB = 128
WIDE = "\U0001f600".encode()  # 4 bytes in utf8mb4


def _lenenc(value: bytes) -> bytes:
    size = len(value)
    return (bytes([size]) if size < 251 else b"\xfc" + struct.pack("<H", size)) + value


def _column(kind: int) -> bytes:
    names = b"".join(_lenenc(x) for x in (b"def", b"", b"", b"", b"c", b"c"))
    return names + b"\x0c" + struct.pack("<HIBHB", 45, 256, kind, 0, 0) + b"\0\0"


def _widths(sql: str) -> list[int]:
    return [int(w) for w in re.findall(r"(?:LEFT|RIGHT)\(.*?, (\d+)\)", " ".join(sql.split()))]


def wide_rows(context: Any, rows: int) -> Any:
    """A MySQL server that logs any login in over TLS, then answers the listing with ``rows``
    widest rows and no row of the listing's own, and PROCESSLIST with ``rows`` widest rows."""
    from tests.cli import hostile

    def read(server: Any, conn: Any) -> bytes:
        header = server.recv_exactly(conn, 4)
        return bytes(server.recv_exactly(conn, header[0] | header[1] << 8 | header[2] << 16))

    def answer(server: Any, conn: Any, columns: list[bytes], row: bytes) -> None:
        head = [bytes([len(columns)]), *columns, hostile.MYSQL_EOF]
        server.send(conn, b"".join(hostile.mysql_packet(i + 1, p) for i, p in enumerate(head)))
        seq = len(head) + 1
        for _ in range(rows):
            server.send(conn, hostile.mysql_packet(seq % 256, row))
            seq += 1
        server.send(conn, hostile.mysql_packet(seq % 256, hostile.MYSQL_EOF))

    listing_row = b"".join(_lenenc(WIDE * w) for w in _widths(logic.MYSQL_SQL)) + _lenenc(b"0")
    processlist_row = b"".join(_lenenc(WIDE * w) for w in _widths(logic.MYSQL_PROCESSLIST_SQL))
    assert len(listing_row) + 4 <= logic.MYSQL_ROW_BYTES
    assert len(processlist_row) + 4 <= logic.MYSQL_PROCESSLIST_ROW_BYTES

    def handle(server: Any, conn: Any) -> None:
        server.send(conn, hostile.mysql_greeting(b"8.0.36"))
        read(server, conn)  # the SSLRequest
        tls = hostile.start_tls(server, conn, context)
        header = server.recv_exactly(tls, 4)
        server.recv_exactly(tls, header[0] | header[1] << 8 | header[2] << 16)  # the login
        server.send(tls, hostile.mysql_packet(header[3] + 1, hostile.MYSQL_OK))
        while b"performance_schema.threads" not in read(server, tls):
            server.send(tls, hostile.mysql_packet(1, hostile.MYSQL_OK))
        texts = len(_widths(logic.MYSQL_SQL))
        answer(server, tls, [_column(0xFD)] * texts + [_column(0x08)], listing_row)
        read(server, tls)  # PROCESSLIST's query
        answer(server, tls, [_column(0xFD)] * logic.MYSQL_PROCESSLIST_COLUMNS, processlist_row)
        server.hold(tls)

    return handle


def peak_memory(cli: str, port: int, ca_file: Path) -> tuple[int, float]:
    """A fresh ``rds-force-ssl clients`` process against ``port``: its exit code and its peak
    resident memory in MB (VmHWM, read by the process itself as it ends)."""
    code = (
        "import sys\n"
        "from rds_force_ssl import cli\n"
        f"code = cli.main(['clients', '--engine', 'mysql', '--user', 'app', '--host', "
        f"'localhost', '--port', '{port}', '--sslrootcert', '{ca_file}', '--json', "
        "'--timeout', '300'])\n"
        "hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')]\n"
        "print(hwm[0], file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "MYSQL_PWD": "benchmark-password"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return done.returncode, int(done.stderr.split()[-1]) / 1024


def mysql_memory(args: argparse.Namespace) -> float:
    from tests.cli import hostile
    from tests.cli.test_clients_hostile import mysql_flood_after_login

    cap = logic.mysql_answer_bytes(logic.MYSQL_MAX_SESSIONS)
    print(
        f"\nMySQL memory: MYSQL_MAX_SESSIONS {logic.MYSQL_MAX_SESSIONS}, byte cap after the "
        f"login {cap / 1e6:.1f} MB, budget {MEMORY_BUDGET_MB} MB"
    )
    print(f"{'hostile answer':44} {'exit':>5} {'peak MB':>8} {'sent MB':>8}")
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="rds-force-ssl-mysql-") as tmp:
        certs = hostile.certificates(Path(tmp))
        servers = {
            "16 MB packets without end": mysql_flood_after_login(certs.context),
            f"{args.mysql_rows} widest rows, twice": wide_rows(certs.context, args.mysql_rows),
        }
        for name, handler in servers.items():
            with hostile.serve(handler, lifetime=600) as server:
                code, peak = peak_memory(cli_path(), server.port, certs.ca_file)
            worst = max(worst, peak)
            print(f"{name:44} {code:5} {peak:8.0f} {server.sent / 1e6:8.1f}")
    return worst


def cli_path() -> str:
    return str(Path(sys.executable).parent / "rds-force-ssl")


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--size-mb", type=int, default=64)
    parser.add_argument("--mysql-rows", type=int, default=logic.MYSQL_MAX_SESSIONS + 1)
    args = parser.parse_args()
    bindir = find_bindir()
    cli = str(Path(sys.executable).parent / "rds-force-ssl")
    psql = shutil.which("psql") or (str(bindir / "psql") if bindir else None)
    if bindir is None or psql is None:
        raise SystemExit("needs the PostgreSQL server binaries and psql")
    print(f"machine: {os.cpu_count()} CPUs; load average at start {os.getloadavg()}")
    cache = tempfile.TemporaryDirectory(prefix="clients-pycache-")
    args.pycache = cache.name
    ours, psql_s, ratio, statements = live(args, cli, psql)
    our_mbs, grep_mbs = scan(args, cli)
    peak = mysql_memory(args)
    cache.cleanup()
    print(f"\nload average at end {os.getloadavg()}")
    met = "met" if ratio <= TARGET_RATIO and statements == 1 else "MISSED"
    print(
        f"SUMMARY clients: {args.sessions} sessions: clients {ours * 1000:.0f} ms vs psql "
        f"{psql_s * 1000:.0f} ms (paired {ratio:.2f}x; {statements} statement for the list; "
        f"target <= {TARGET_RATIO}x and 1: {met}); log scan {args.size_mb} MB: clients "
        f"{our_mbs:.0f} MB/s vs grep -c {grep_mbs:.0f} MB/s; MySQL hostile answers: peak "
        f"{peak:.0f} MB (budget {MEMORY_BUDGET_MB} MB: "
        f"{'met' if peak <= MEMORY_BUDGET_MB else 'MISSED'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
