"""``rds-force-ssl probe``: does each endpoint refuse a plaintext client before authentication?

No credentials are involved: the probe sends a plaintext start-up (no SSLRequest), reads the
first answer and closes. A server that enforces SSL refuses it before authentication, and lets
the same start-up over TLS through to authentication (the probe checks both); one that does not
asks for a password (which is never sent) or lets the client in. See ``pgwire.py`` for
how each PostgreSQL answer is read, and ``wire.Verdict`` for the four verdicts.

Endpoints are probed concurrently, at most ``concurrency`` at a time, each within ``timeout``;
an endpoint named twice (``host`` and ``host:5432``, or named and also found in the region) is
probed and listed once, where it first appears.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from rds_force_ssl.cli.engines import DEFAULT_ENGINE, ENGINES
from rds_force_ssl.cli.wire import Endpoint, Identity, Outcome, Verdict, probe_endpoint

EXIT_ENFORCED = 0
EXIT_NOT_ENFORCED = 1
EXIT_INCOMPLETE = 2


@dataclass(frozen=True)
class Target:
    endpoint: Endpoint
    engine: str = DEFAULT_ENGINE
    resource: str | None = None  # what the region discovery found there, e.g. "instance orders"


@dataclass(frozen=True)
class Result:
    target: Target
    outcome: Outcome


def probe_one(target: Target, *, who: Identity, timeout: float) -> Result:
    converse = ENGINES[target.engine].plaintext_probe
    assert converse is not None  # discovery never makes a target of an engine without one
    return Result(target, probe_endpoint(target.endpoint, converse, who=who, timeout=timeout))


def distinct(targets: Iterable[Target]) -> list[Target]:
    """Each endpoint once, as it first occurs (``Endpoint.key``: host names compared without
    case or a trailing dot)."""
    firsts: dict[tuple[str, int], Target] = {}
    for target in targets:
        firsts.setdefault(target.endpoint.key, target)
    return list(firsts.values())


def probe_all(
    targets: Sequence[Target],
    *,
    who: Identity,
    timeout: float,
    concurrency: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[Result]:
    """Every distinct target's result, in the order given (see ``distinct``). ``progress`` is
    told ``(0, total)`` at once, so that a terminal shows the count before the first answer
    (which may be a whole ``timeout`` away), then after each endpoint."""
    targets = distinct(targets)
    if not targets:
        return []
    if progress:
        progress(0, len(targets))
    results: list[Result | None] = [None] * len(targets)
    # Threads, not asyncio: each probe is a few blocking socket calls with timeouts, and the
    # same function serves `verify`, which probes one endpoint.
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(targets)))) as pool:
        futures = {
            pool.submit(probe_one, target, who=who, timeout=timeout): index
            for index, target in enumerate(targets)
        }
        for done, future in enumerate(as_completed(futures), start=1):
            results[futures[future]] = future.result()
            if progress:
                progress(done, len(targets))
    return [r for r in results if r is not None]


def exit_code(results: Iterable[Result], *, complete: bool = True) -> int:
    """0 only when there was something to probe, all of it was, and all of it is ENFORCED;
    1 as soon as one endpoint is NOT_ENFORCED (proof beats a missing answer); else 2."""
    verdicts = [r.outcome.verdict for r in results]
    if Verdict.NOT_ENFORCED in verdicts:
        return EXIT_NOT_ENFORCED
    if verdicts and complete and all(v == Verdict.ENFORCED for v in verdicts):
        return EXIT_ENFORCED
    return EXIT_INCOMPLETE
