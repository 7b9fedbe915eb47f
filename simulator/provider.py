"""The CDK Provider framework, on the simulator's clock: what drives the reboot reconciler.

The framework calls on-event once; then its waiter state machine calls is-complete at once and
every ``query_interval`` until it answers complete, raises (FAILED), or ``total_timeout`` passes
("Operation timed out"). An exception of any kind from a handler fails the resource, as it does
in the framework. Several requests may run at once on one database (``run_concurrent``): two
resources, a redeploy, CloudFormation delivering a request twice.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from rds_force_ssl.handlers import reboot
from rds_force_ssl.handlers.memory import Memory


def memory(sim: Any) -> Memory:
    """The reconciler's memory, in the simulator's DynamoDB table."""
    return Memory(client=sim.table, table=sim.table.name)


@dataclass
class ProviderRun:
    status: str = "RUNNING"  # RUNNING, SUCCESS or FAILED
    reason: str = ""
    physical_id: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    polls: int = 0
    started: float = 0.0
    finished: float | None = None

    @property
    def elapsed(self) -> float:
        return (self.finished or 0.0) - self.started


class _Run:
    """One request's progress through the framework."""

    def __init__(self, event: dict[str, Any], start: float) -> None:
        self.event = copy.deepcopy(event)
        self.merged: dict[str, Any] | None = None
        self.next_at = start
        self.result = ProviderRun(started=start)

    def step(self, sim: Any, query_interval: float, total_timeout: float) -> None:
        run = self.result
        try:
            if self.merged is None:
                answer = reboot.handle_on_event(self.event, sim, now=sim.time())
                self.merged = {**self.event, **answer}
                run.physical_id = answer["PhysicalResourceId"]
                run.data.update(answer.get("Data", {}))
                self.next_at = sim.now  # the waiter's first is-complete comes straight after
                return
            run.polls += 1
            done = reboot.handle_is_complete(self.merged, sim, memory=memory(sim), now=sim.time())
        except Exception as err:  # the framework fails the resource on any handler error
            run.status, run.reason, run.finished = "FAILED", str(err), sim.now
            return
        if done["IsComplete"]:
            run.data.update(done.get("Data", {}))
            run.status, run.finished = "SUCCESS", sim.now
            return
        if sim.now - run.started + query_interval > total_timeout:
            run.status, run.reason, run.finished = "FAILED", "Operation timed out", sim.now
            return
        self.next_at = sim.now + query_interval


def run_concurrent(
    sim: Any,
    requests: list[tuple[float, dict[str, Any]]],
    *,
    query_interval: float = 10.0,
    total_timeout: float = 3000.0,
) -> list[ProviderRun]:
    """Run each (start delay, event) as its own Provider execution, interleaved on one clock."""
    base = sim.now
    runs = [_Run(event, base + delay) for delay, event in requests]
    while any(r.result.status == "RUNNING" for r in runs):
        run = min((r for r in runs if r.result.status == "RUNNING"), key=lambda r: r.next_at)
        if run.next_at > sim.now:
            sim.advance(run.next_at - sim.now)
        run.step(sim, query_interval, total_timeout)
    return [r.result for r in runs]


def run_provider(
    sim: Any,
    event: dict[str, Any],
    *,
    query_interval: float = 10.0,
    total_timeout: float = 3000.0,
) -> ProviderRun:
    """One request, driven like the Provider framework drives it."""
    (run,) = run_concurrent(
        sim, [(0.0, event)], query_interval=query_interval, total_timeout=total_timeout
    )
    return run


def rollback_of(update: dict[str, Any], request_id: str) -> dict[str, Any]:
    """The Update CloudFormation sends to roll ``update`` back: a new RequestId, the properties
    swapped."""
    back = copy.deepcopy(update)
    back["RequestId"] = request_id
    back["ResourceProperties"], back["OldResourceProperties"] = (
        copy.deepcopy(update["OldResourceProperties"]),
        copy.deepcopy(update["ResourceProperties"]),
    )
    return back
