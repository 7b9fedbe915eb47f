"""``rds-force-ssl`` against hostile servers, before and after the hardening: each attack of
tests/cli/hostile.py, run against the CLI as a fresh process, once with the code of an earlier
commit (``--before``, default 749e66c, extracted with ``git archive``) and once with this tree.

For every run: the exit code, the wall time, the peak resident memory of the CLI's process
(``os.wait4``'s ru_maxrss, for that process alone), and what the attack was after (an escape
byte on the terminal, an exit 0 for an impostor, an internal error). A run is stopped when it
passes ``--cap-s`` seconds ("killed at N s") or ``--cap-mb`` MB of resident memory ("> N MB");
an address-space limit of 4 GB keeps the machine safe whatever happens. The servers run in this
process, on loopback.

Usage: python benchmarks/hostile.py [--quick] [--before 749e66c] [--cap-s 40] [--cap-mb 2048]
(--quick: caps of 20 s and 512 MB, the same attacks.)
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.cli import hostile  # noqa: E402 (after the path)

RUN_CLI = "import sys; from rds_force_ssl import cli; sys.exit(cli.main())"
ADDRESS_SPACE = 4 << 30
PASSWORD = "hostile-benchmark-password"  # noqa: S105 (what the impostors may receive)
ESC = "\x1b"


@dataclass(frozen=True)
class Attack:
    name: str
    what: str  # the defect it shows
    servers: Callable[[Path], list[hostile.Handler]]
    argv: Callable[[list[int], Path], list[str | bytes]]
    judge: Callable[[int, str], str]  # (exit code, stdout + stderr) -> what it shows
    descriptors: int | None = None  # RLIMIT_NOFILE for the CLI


@dataclass(frozen=True)
class Measured:
    code: int | None
    wall_s: float
    peak_mb: float
    stopped: str  # "", "killed at N s", "> N MB"
    shows: str


def _escapes(code: int, text: str) -> str:
    return f"{text.count(ESC)} raw ESC on the terminal" if ESC in text else "escaped"


def _verdict(code: int, text: str) -> str:
    if "internal error" in text:
        return "internal error"
    for line in reversed(text.splitlines()):
        if line.startswith("verdict: "):
            return line.removeprefix("verdict: ")
    return f"exit {code}"


def _internal(code: int, text: str) -> str:
    if "internal error" in text:
        return "internal error"
    if "usage" in text or "fix:" in text:
        return "usage error, with its fix"
    return f"exit {code}"


def _cert_row(code: int, text: str) -> str:
    row = next((line for line in text.splitlines() if line.startswith("certificate")), "")
    if "with no" in row:
        return 'says "answered ... with no"'
    if "error message instead of S or N" in row:
        return "says it was an error message"
    return row[:60] or "no certificate row"


def _local(code: int, text: str) -> str:
    rows = text.splitlines()
    unreachable = sum("UNREACHABLE" in r and "open files" in r for r in rows)
    local = sum("this machine could not open a connection" in r for r in rows)
    return f"{unreachable} UNREACHABLE for open files, {local} said local"


def _pg(port: int, *extra: str) -> list[str | bytes]:
    return ["verify", "--host", "localhost", "--port", str(port), "--user", "app", *extra]


def _mysql(port: int, *extra: str) -> list[str | bytes]:
    head: list[str | bytes] = ["verify", "--engine", "mysql", "--host", "localhost"]
    return [*head, "--port", str(port), "--user", "app", *extra]


def attacks(folder: Path) -> list[Attack]:
    certs = hostile.certificates(folder)
    ca = str(certs.ca_file)
    self_signed = hostile.self_signed(folder, common_name="db\x1b[2J\x1b]0;owned\x07")
    forged = b"\x1b]0;owned\x07\x1b[2J\r\n1 ENFORCED (exit 0)\n" + b"A" * 60000
    return [
        Attack(
            "mysql greeting at 1 byte / 50 ms",
            "1: no deadline",
            lambda _: [hostile.mysql_trickle()],
            lambda p, _: _mysql(p[0], "--sslrootcert", ca),
            _verdict,
        ),
        Attack(
            "mysql greeting of 16 MB packets",
            "2: memory before auth",
            lambda _: [hostile.mysql_flood],
            lambda p, _: _mysql(p[0], "--sslrootcert", ca),
            _verdict,
        ),
        Attack(
            "postgres: login, query never answered",
            "3: hang after login",
            lambda _: [hostile.pg_impostor(certs.context, after_login="silent")],
            lambda p, _: _pg(p[0], "--sslrootcert", ca),
            _verdict,
        ),
        Attack(
            "postgres: login, endless data row",
            "3: memory after login",
            lambda _: [hostile.pg_impostor(certs.context, after_login="flood")],
            lambda p, _: _pg(p[0], "--sslrootcert", ca),
            _verdict,
        ),
        Attack(
            "postgres: escapes in error and certificate",
            "4: forged output",
            lambda _: [hostile.pg_impostor(self_signed, refusal=forged)],
            lambda p, _: _pg(p[0], "--sslrootcert", ca),
            _escapes,
        ),
        Attack(
            "mysql: escapes in an ERR before the greeting",
            "4, 6: forged output",
            lambda _: [hostile.mysql_error(1130, forged)],
            lambda p, _: _mysql(p[0], "--sslrootcert", ca),
            _escapes,
        ),
        Attack(
            "mysql: escapes in the version string",
            "4: forged output",
            lambda _: [hostile.mysql_greeting_without_tls(b"8.0\x1b[2J\x1b]0;owned\x07")],
            lambda p, _: _mysql(p[0], "--sslrootcert", ca),
            _escapes,
        ),
        Attack(
            "mysql impostor, --sslmode require",
            "5: exit 0 unverified",
            lambda _: [hostile.mysql_impostor(self_signed)],
            lambda p, _: _mysql(p[0], "--sslmode", "require", "--allow-unverified-password"),
            _verdict,
        ),
        Attack(
            "postgres impostor, --sslmode require",
            "5: exit 0 unverified",
            lambda _: [hostile.pg_impostor(self_signed)],
            lambda p, _: _pg(p[0], "--sslmode", "require", "--allow-unverified-password"),
            _verdict,
        ),
        Attack(
            "mysql greeting, version not a number",
            "7: internal error",
            lambda _: [hostile.mysql_greeting_then_tls(b"evil", certs.context)],
            lambda p, _: _mysql(p[0], "--sslrootcert", ca),
            _verdict,
        ),
        Attack(
            "probe --timeout 9.3e9",
            "7: internal error",
            lambda _: [hostile.pg_error_everywhere(b"x")],
            lambda p, _: ["probe", f"127.0.0.1:{p[0]}", "--timeout", "9.3e9"],
            _internal,
        ),
        Attack(
            "probe --user with a byte not UTF-8",
            "7: internal error",
            lambda _: [hostile.pg_error_everywhere(b"x")],
            lambda p, _: ["probe", f"127.0.0.1:{p[0]}", "--user", b"app\xff"],
            _internal,
        ),
        Attack(
            "probe, 40 silent servers, 24 descriptors",
            "8: fd exhaustion",
            lambda _: [lambda s, c: s.hold(c)] * 40,
            lambda p, _: ["probe", *(f"127.0.0.1:{x}" for x in p), "--timeout", "1"],
            _local,
            descriptors=24,
        ),
        Attack(
            "postgres: ErrorResponse to the SSLRequest",
            "8: certificate row",
            lambda _: [hostile.pg_error_everywhere(b"sorry, too many clients already")],
            lambda p, _: _pg(p[0], "--sslrootcert", ca),
            _cert_row,
        ),
    ]


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_cli(
    argv: Sequence[str | bytes],
    *,
    code_path: Path,
    cap_s: float,
    cap_mb: float,
    descriptors: int | None,
) -> tuple[Measured, str]:
    env = {**os.environ, "PYTHONPATH": str(code_path), "PGPASSWORD": PASSWORD}
    env |= {"MYSQL_PWD": PASSWORD, "HOME": tempfile.gettempdir()}
    env.pop("PGSSLROOTCERT", None)

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
        if descriptors:
            resource.setrlimit(resource.RLIMIT_NOFILE, (descriptors, descriptors))

    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN_CLI, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        preexec_fn=limits,
    )
    stopped = ""
    chunks: list[bytes] = []
    reader = threading.Thread(
        target=lambda: chunks.append(proc.stdout.read() if proc.stdout else b""), daemon=True
    )
    reader.start()
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - start > cap_s:
            stopped = f"killed at {cap_s:g} s"
        elif _rss_mb(proc.pid) > cap_mb:
            stopped = f"> {cap_mb:g} MB"
        if stopped:
            proc.send_signal(signal.SIGKILL)
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.02)
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    text = b"".join(chunks).decode(errors="replace")
    code = None if stopped else proc.returncode
    return Measured(code, wall, usage.ru_maxrss / 1024, stopped, ""), text


def measure(
    attack: Attack, *, folder: Path, code_path: Path, cap_s: float, cap_mb: float
) -> Measured:
    with ExitStack() as stack:
        servers = [
            stack.enter_context(hostile.serve(h, lifetime=cap_s + 10))
            for h in attack.servers(folder)
        ]
        measured, text = run_cli(
            attack.argv([s.port for s in servers], folder),
            code_path=code_path,
            cap_s=cap_s,
            cap_mb=cap_mb,
            descriptors=attack.descriptors,
        )
        sent = sum(s.sent for s in servers)
    shows = attack.judge(measured.code if measured.code is not None else -9, text)
    if measured.stopped:
        shows = measured.stopped
    if sent > 1 << 20:
        shows += f"; server sent {sent / (1 << 20):.0f} MB"
    return Measured(measured.code, measured.wall_s, measured.peak_mb, measured.stopped, shows)


def extract(ref: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "archive", ref, "constructs"], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "constructs"


def cell(m: Measured) -> tuple[str, str, str, str]:
    code = "-" if m.code is None else str(m.code)
    return code, f"{m.wall_s:.1f}", f"{m.peak_mb:.0f}", m.shows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="caps of 20 s and 512 MB")
    parser.add_argument("--before", default="749e66c", help="the commit to compare with")
    parser.add_argument("--cap-s", type=float, default=None)
    parser.add_argument("--cap-mb", type=float, default=None)
    parser.add_argument("--only", help="run only the attacks whose name contains this")
    args = parser.parse_args()
    cap_s = args.cap_s or (20.0 if args.quick else 40.0)
    cap_mb = args.cap_mb or (512.0 if args.quick else 2048.0)

    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        folder = Path(tmp)
        before = extract(args.before, folder)
        after = ROOT / "constructs"
        chosen = [a for a in attacks(folder) if not args.only or args.only in a.name]
        print(
            f"machine: {os.cpu_count()} CPUs; load average at start {os.getloadavg()}\n"
            f"before: {args.before} (git archive); after: this tree; caps {cap_s:g} s and "
            f"{cap_mb:g} MB resident per run, 4 GB address space"
        )
        header = (
            "| attack | defect | before: exit | s | MB | shows | after: exit | s | MB | shows |"
        )
        print("\n" + header)
        print("|" + " --- |" * 10)
        worst_after = 0.0
        most_after = 0.0
        for attack in chosen:
            old = measure(attack, folder=folder, code_path=before, cap_s=cap_s, cap_mb=cap_mb)
            new = measure(attack, folder=folder, code_path=after, cap_s=cap_s, cap_mb=cap_mb)
            worst_after = max(worst_after, new.wall_s)
            most_after = max(most_after, new.peak_mb)
            print(
                f"| {attack.name} | {attack.what} | " + " | ".join((*cell(old), *cell(new))) + " |"
            )
    print(
        f"\nSUMMARY hostile: {len(chosen)} attacks; after, the slowest run took "
        f"{worst_after:.1f} s and the largest peaked at {most_after:.0f} MB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
