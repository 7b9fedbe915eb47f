"""What the simulated services share: the account, the clock, the faults, IAM and the call log.

The RDS part (``simulator.rds``) and the DynamoDB part (``simulator.dynamodb``) both import this
module and neither imports the other; ``simulator.RdsSimulator`` puts them in one world.

- ``REGION`` and ``ACCOUNT``, which every ARN names;
- the simulated clock: ``World.now`` (seconds since ``EPOCH``, the wall-clock time of t=0),
  callbacks due at a later time (``World.at``), run in order by ``World.advance``, the only thing
  that moves the clock; ``World.time`` is the clock as epoch seconds;
- ``World.calls``: every API call made to either service, in order, with its arguments;
- ``World.faults``: faults on demand (``Fault``), which each service turns into its own errors;
- ``World.iam``: an identity policy (``Iam`` of ``Statement``), or None for "everything
  allowed", and ``World.iam_ready_at``, before which every call is denied (a policy still
  propagating); ``World.allowed`` is the check, each service raises its own AccessDenied;
- ``client_error``: the ClientError botocore raises for an error response.
"""

from __future__ import annotations

import fnmatch
import heapq
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

REGION = "us-east-1"
ACCOUNT = "123456789012"
# t=0 of the simulated clock, as a wall-clock time (events and handlers see epoch seconds).
EPOCH = datetime(2026, 1, 5, 9, 0, tzinfo=UTC).timestamp()


def client_error(
    operation: str, code: str, message: str, status: int = 400, *, retries: int = 0
) -> ClientError:
    """The error botocore raises for an error response (its parsed shape), from RDS or DynamoDB:
    ``retries`` is how many times botocore had retried the call when this answer came."""
    response: Any = {
        "Error": {"Code": code, "Message": message, "Type": "Sender"},
        "ResponseMetadata": {"HTTPStatusCode": status, "RetryAttempts": retries},
    }
    return ClientError(response, operation)


@dataclass
class Fault:
    """The next ``times`` calls of ``operation`` fail this way (every call before the simulated
    time ``until``, when it is given):
    - ``throttle``: Throttling, after botocore's retries gave up (nothing happens);
    - ``5xx``: InternalFailure, HTTP 500 (nothing happens);
    - ``lost``: the call takes effect, the answer is lost (the caller sees a read timeout);
    - ``lost-retried``: the call takes effect, the answer is lost, and the caller sees what
      botocore's retry of the same call meets (InvalidDBInstanceState for a reboot);
    - ``denied`` (the DynamoDB table only): AccessDeniedException, nothing happens."""

    operation: str
    kind: str
    times: int = 1
    until: float | None = None

    def hits(self, operation: str, now: float) -> bool:
        """Whether this fault answers a call of ``operation`` made at ``now`` (and counts it)."""
        if self.operation != operation:
            return False
        if self.until is not None:
            return now < self.until
        if self.times > 0:
            self.times -= 1
            return True
        return False


@dataclass
class Statement:
    actions: set[str]
    resources: list[str]  # ARN patterns, "*" allowed
    tag_equals: dict[str, str] = field(default_factory=dict)  # aws:ResourceTag/<key> = value


@dataclass
class Iam:
    """An identity policy, as IAM evaluates it for the calls the reconciler makes."""

    statements: list[Statement]

    def allows(self, action: str, resource: str, tags: Mapping[str, str]) -> bool:
        return any(
            action in s.actions
            and any(fnmatch.fnmatchcase(resource, pattern) for pattern in s.resources)
            and all(tags.get(k) == v for k, v in s.tag_equals.items())
            for s in self.statements
        )


class World:
    """The clock, call log, faults and IAM that the simulated services share."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.faults: list[Fault] = []
        self.iam: Iam | None = None  # None: everything allowed
        self.iam_ready_at = 0.0  # before this, IAM denies every call (a policy propagating)
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()

    # ---- the clock ---------------------------------------------------------------------------
    def at(self, delay: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (self.now + delay, next(self._seq), fn))

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while self._queue and self._queue[0][0] <= end:
            when, _, fn = heapq.heappop(self._queue)
            self.now = when
            fn()
        self.now = end

    def time(self) -> float:
        """The simulated time as epoch seconds (what a handler's clock would read)."""
        return EPOCH + self.now

    # ---- calls, faults and IAM -------------------------------------------------------------------
    def call_names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def fault(self, operation: str) -> Fault | None:
        """The first fault that answers a call of ``operation`` now (it counts the call)."""
        return next((f for f in self.faults if f.hits(operation, self.now)), None)

    def allowed(self, action: str, resource: str, tags: Mapping[str, str]) -> bool:
        """Whether IAM allows ``action`` (``service:Operation``) on ``resource`` now."""
        return not (
            self.now < self.iam_ready_at
            or (self.iam is not None and not self.iam.allows(action, resource, tags))
        )
