"""A link with a given round-trip time between the benchmark's clients and its PostgreSQL server.

Two ways, tried in this order:

- ``netem``: a network namespace joined to the host by a veth pair, with ``tc qdisc ... netem
  delay`` of half the RTT on each end. The server listens on the host end; the clients run inside
  the namespace. Needs root, ``ip`` and the kernel's sch_netem; made and removed here.
- ``relay``: a userspace TCP relay on loopback that holds every chunk for half the RTT in each
  direction, and the client's first bytes for one RTT more (the TCP handshake a client would
  otherwise have waited for). Not netem: no kernel queueing, no segment-level delay. Reported
  as such, and used only when netem cannot be had.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Link:
    kind: str  # "loopback", "netem" or "relay"
    host: str  # the address the clients dial
    port: int
    prefix: tuple[str, ...] = ()  # run a client inside the namespace: prefix + argv
    note: str = ""


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


NS_HOST, NS_CLIENT = "10.231.7.1", "10.231.7.2"


def netem_unavailable() -> str | None:
    """Why a netem link cannot be made here, or None if it can (tries it on a dummy pair)."""
    if os.geteuid() != 0:
        return "not root"
    if not shutil.which("ip") or not shutil.which("tc"):
        return "`ip` or `tc` is not installed"
    name = f"rfsprobe{os.getpid() % 10000}"
    made = _run("ip", "link", "add", name, "type", "veth", "peer", "name", name + "p")
    if made.returncode != 0:
        return f"ip link add (veth): {made.stderr.strip()}"
    try:
        tried = _run("tc", "qdisc", "add", "dev", name, "root", "netem", "delay", "1ms")
        if tried.returncode != 0:
            return f"tc qdisc add ... netem: {tried.stderr.strip()} (the kernel lacks sch_netem)"
    finally:
        _run("ip", "link", "del", name)
    return None


@contextmanager
def netem_namespace(rtt_ms: float) -> Iterator[tuple[str, str]]:
    """A namespace and veth pair with netem on both ends; yields (namespace, host address)."""
    ns, veth = f"rfs-bench-{os.getpid()}", f"rfsb{os.getpid() % 100000}"
    half = f"{rtt_ms / 2:g}ms"
    steps = [
        ("ip", "netns", "add", ns),
        ("ip", "link", "add", veth, "type", "veth", "peer", "name", veth + "n"),
        ("ip", "link", "set", veth + "n", "netns", ns),
        ("ip", "addr", "add", f"{NS_HOST}/30", "dev", veth),
        ("ip", "link", "set", veth, "up"),
        ("ip", "-n", ns, "addr", "add", f"{NS_CLIENT}/30", "dev", veth + "n"),
        ("ip", "-n", ns, "link", "set", veth + "n", "up"),
        ("ip", "-n", ns, "link", "set", "lo", "up"),
        ("tc", "qdisc", "add", "dev", veth, "root", "netem", "delay", half),
        ("tc", "-n", ns, "qdisc", "add", "dev", veth + "n", "root", "netem", "delay", half),
    ]
    try:
        for step in steps:
            done = _run(*step)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(step)}: {done.stderr.strip()}")
        yield ns, NS_HOST
    finally:
        _run("ip", "link", "del", veth)
        _run("ip", "netns", "del", ns)


class DelayRelay:
    """127.0.0.1:<port> -> upstream, each chunk held `one_way` seconds per direction."""

    def __init__(self, upstream: tuple[str, int], *, rtt_ms: float) -> None:
        self.upstream = upstream
        self.one_way = rtt_ms / 2000
        self.rtt = rtt_ms / 1000
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def __enter__(self) -> DelayRelay:
        self._thread.start()
        self._ready.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        async def shutdown() -> None:
            # Connections still open at the end are cut: nothing to report about them.
            self._loop.set_exception_handler(lambda loop, context: None)
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
        self._thread.join()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        first_extra: float,
    ) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await queue.get()
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                if not chunk:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.create_task(deliver())
        extra = first_extra
        try:
            while True:
                chunk = await reader.read(65536)
                queue.put_nowait((time.monotonic() + self.one_way + extra, chunk))
                extra = 0.0
                if not chunk:
                    break
            await sender
        except (ConnectionError, OSError):
            sender.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pump(reader, up_writer, first_extra=self.rtt),
            self._pump(up_reader, writer, first_extra=0.0),
            return_exceptions=True,
        )
        for w in (writer, up_writer):
            w.close()
