"""The guard's world in the simulator: CloudTrail delivering RDS API calls to EventBridge after a
delay, the SQS queue and Lambda's batching window, the hourly sweep, and the services the guard
reports to (Security Hub, CloudWatch, SNS) and remembers in (its DynamoDB marks), all on the
``SimRds`` clock. Tests and benchmarks drive the guard (``rds_force_ssl.handlers.guard``) with it.

What it keeps of AWS:
- CloudTrail delivers each management event ``delay`` seconds after the call (AWS: "typically
  ... within an average of about 5 minutes", not guaranteed); a test can deliver out of order
  or twice;
- SQS: a message sent with ``DelaySeconds`` is invisible until then; Lambda's event source
  waits ``window`` seconds after the first visible message (MaximumBatchingWindowInSeconds),
  then hands over up to ``batch`` messages in one invocation;
- Security Hub keeps the last import of each finding Id (an import with the same Id updates it),
  and can refuse findings (``refuse``) or every call (``denied``, ``disabled``);
- CloudTrail's trails (``SimTrails``): whether one with logging on covers the region.

It imports ``simulator.rds`` (``SimRds``) and the guard's handler module, nothing of tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rds_force_ssl.handlers import guard
from simulator.rds import SimRds
from simulator.world import ACCOUNT, REGION, client_error


@dataclass
class SimMarks:
    """The guard's DynamoDB marks with DynamoDB's conditional-write semantics, in memory."""

    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    claims: int = 0  # conditional writes, as DynamoMarks makes them
    writes: int = 0  # every UpdateItem: claims, defers and statuses
    scans: int = 0

    def claim(self, key: str, now: float) -> bool:
        self.claims += 1
        self.writes += 1
        item = self.items.setdefault(key, {})
        checked = item.get("CheckedAt")
        if checked is not None and checked > now - guard.EVERY_S:
            return False
        item["CheckedAt"] = now
        return True

    def defer(self, key: str, now: float) -> float | None:
        self.writes += 1
        item = self.items.setdefault(key, {})
        if "CheckedAt" not in item:
            return None
        due = item.get("RecheckAt")
        if due is not None and due >= now:
            return None
        item["RecheckAt"] = item["CheckedAt"] + guard.EVERY_S
        return float(item["RecheckAt"])

    def seen(self, key: str, now: float) -> guard.Memory:
        self.writes += 1
        item = self.items.setdefault(key, {})
        item.setdefault("FirstSeen", now)
        return guard.Memory(
            reported=item.get("Status"),
            told=item.get("Told"),
            first=float(item["FirstSeen"]),
            remediated_at=item.get("RemediatedAt"),
            method=item.get("ApplyMethod", ""),
            pending_seen=bool(item.get("PendingSeen", False)),
        )

    def record(self, key: str, *, reported: str | None, told: str | None) -> None:
        if reported is None and told is None:
            return
        self.writes += 1
        item = self.items.setdefault(key, {})
        if reported is not None:
            item["Status"] = reported
        if told is not None:
            item["Told"] = told

    def remediation(
        self, key: str, *, at: float | None, method: str = "", pending_seen: bool = False
    ) -> None:
        self.writes += 1
        item = self.items.setdefault(key, {})
        for name in ("RemediatedAt", "ApplyMethod", "PendingSeen"):
            item.pop(name, None)
        if at is not None:
            item.update(RemediatedAt=at, ApplyMethod=method, PendingSeen=pending_seen)

    def restarted(self, key: str, when: float) -> None:
        self.writes += 1
        item = self.items.get(key, {})
        if item.get("RemediatedAt") is not None and item["RemediatedAt"] <= when:
            for name in ("RemediatedAt", "ApplyMethod", "PendingSeen"):
                item.pop(name, None)

    def condition(self, name: str, value: str) -> str | None:
        self.writes += 1
        item = self.items.setdefault(f"condition:{name}", {})
        before = item.get("Condition")
        item["Condition"] = value
        return None if before is None else str(before)

    def known(self) -> dict[str, str]:
        self.scans += 1
        return {k: v["Status"] for k, v in self.items.items() if "Status" in v}


@dataclass
class SimHub:
    """securityhub:BatchImportFindings: the latest document per Id, and when it came."""

    world: SimRds
    findings: dict[str, dict[str, Any]] = field(default_factory=dict)
    imported_at: dict[str, float] = field(default_factory=dict)
    calls: int = 0
    denied: bool = False
    disabled: bool = False  # Security Hub not enabled in the account and region
    refuse: set[str] = field(default_factory=set)  # resource names whose findings it refuses

    def batch_import_findings(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        documents = kwargs["Findings"]
        if len(documents) > 100:
            raise client_error("BatchImportFindings", "InvalidInputException", "over 100", 400)
        if self.denied:
            raise client_error("BatchImportFindings", "AccessDeniedException", "denied", 403)
        if self.disabled:
            raise client_error(
                "BatchImportFindings",
                "InvalidAccessException",
                "Account is not subscribed to AWS Security Hub",
                401,
            )
        failed = []
        for doc in documents:
            if any(str(doc["Id"]).endswith(f":{name}/ssl-only") for name in self.refuse):
                failed.append(
                    {"Id": doc["Id"], "ErrorCode": "InvalidInput", "ErrorMessage": "refused"}
                )
                continue
            self.findings[doc["Id"]] = doc
            self.imported_at[doc["Id"]] = self.world.now
        return {
            "SuccessCount": len(documents) - len(failed),
            "FailedCount": len(failed),
            "FailedFindings": failed,
        }

    def of(self, kind: str, name: str) -> dict[str, Any] | None:
        """The finding of one resource, by the ARN segment the finding Id carries."""
        segment = {"instance": "db", "cluster": "cluster", "proxy": "db-proxy"}[kind]
        return next(
            (d for i, d in self.findings.items() if i.endswith(f":{segment}:{name}/ssl-only")),
            None,
        )


@dataclass
class SimTrails:
    """cloudtrail:DescribeTrails and GetTrailStatus: by default one multi-region trail that
    logs; a test turns ``logging`` off, removes the trail or denies the calls."""

    logging: bool = True
    multi_region: bool = True
    home: str = REGION
    exists: bool = True
    denied: bool = False
    calls: int = 0

    def describe_trails(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.denied:
            raise client_error("DescribeTrails", "AccessDeniedException", "denied", 403)
        if not self.exists:
            return {"trailList": []}
        return {
            "trailList": [
                {
                    "Name": "management",
                    "TrailARN": f"arn:aws:cloudtrail:{self.home}:{ACCOUNT}:trail/management",
                    "HomeRegion": self.home,
                    "IsMultiRegionTrail": self.multi_region,
                }
            ]
        }

    def get_trail_status(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        return {"IsLogging": self.logging}


@dataclass
class SimMetrics:
    data: list[tuple[float, str, float]] = field(default_factory=list)
    world: SimRds | None = None
    calls: int = 0

    def put_metric_data(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        now = self.world.now if self.world else 0.0
        for datum in kwargs["MetricData"]:
            self.data.append((now, datum["MetricName"], float(datum["Value"])))
        return {}

    def total(self, name: str) -> float:
        return sum(v for _, n, v in self.data if n == name)


@dataclass
class SimTopic:
    messages: list[dict[str, Any]] = field(default_factory=list)

    def publish(self, **kwargs: Any) -> dict[str, Any]:
        self.messages.append(kwargs)
        return {"MessageId": str(len(self.messages))}


@dataclass
class Message:
    body: str
    visible_at: float


class GuardWorld:
    """The guard running on ``sim``'s clock: call ``api_call`` where a person or a tool changes
    RDS (and change ``sim`` accordingly), then ``sim.advance``; the guard runs when its queue
    and window say it would."""

    def __init__(
        self,
        sim: SimRds,
        *,
        delay: float = 300.0,
        window: float = 10.0,
        batch: int = 100,
        sweep_every: float | None = 3600.0,
        remediate: bool = False,
    ) -> None:
        self.sim = sim
        self.delay = delay
        self.window = window
        self.batch = batch
        self.marks = SimMarks()
        self.hub = SimHub(sim)
        self.metrics = SimMetrics(world=sim)
        self.topic = SimTopic()
        self.trails = SimTrails()
        self.queue: list[Message] = []
        self.invocations = 0
        self.outcomes: list[guard.Outcome] = []
        self.ran_at: list[float] = []  # when each invocation ran (simulated seconds)
        self._pending = False
        self.slept: list[float] = []
        self.services = guard.Services(
            rds=sim,
            marks=self.marks,
            account=ACCOUNT,
            region=REGION,
            recheck=self,
            hub=self.hub,
            metrics=self.metrics,
            topic=self.topic,
            topic_arn=f"arn:aws:sns:{REGION}:{ACCOUNT}:guard",
            trails=self.trails,
            remediate=remediate,
            sleep=self.slept.append,
            clock=lambda: sim.now,
        )
        if sweep_every:
            self._every(sweep_every)

    # ---- what reaches the queue -------------------------------------------------------------
    def api_call(self, name: str, *, delay: float | None = None, **request: str) -> None:
        """CloudTrail records the call now and EventBridge gets it ``delay`` seconds later."""
        event = {
            "source": "aws.rds",
            "detail-type": guard.CLOUDTRAIL_DETAIL_TYPE,
            "detail": {
                "eventSource": "rds.amazonaws.com",
                "eventName": name,
                "eventTime": datetime.fromtimestamp(self.sim.time(), UTC).isoformat(),
                "requestParameters": {_camel(k): v for k, v in request.items()},
            },
        }
        self.sim.at(self.delay if delay is None else delay, lambda: self.put(event))

    def put(self, event: dict[str, Any], delay_s: float = 0.0) -> None:
        self.queue.append(Message(json.dumps(event), self.sim.now + delay_s))
        self._wake(delay_s)

    def send(self, targets: list[guard.Target], delay_s: int) -> None:
        """The guard's delayed recheck (guard.Recheck)."""
        self.put({guard.MESSAGE_KEY: guard.RECHECK, "targets": [list(t) for t in targets]}, delay_s)

    def _every(self, seconds: float) -> None:
        def tick() -> None:
            self.put({guard.MESSAGE_KEY: guard.SWEEP})
            self.sim.at(seconds, tick)

        self.sim.at(seconds, tick)

    def _wake(self, delay_s: float) -> None:
        self.sim.at(delay_s + self.window, self._invoke)

    def _invoke(self) -> None:
        ready = [m for m in self.queue if m.visible_at <= self.sim.now]
        if not ready:
            return
        taken = ready[: self.batch]
        self.queue = [m for m in self.queue if m not in taken]
        self.invocations += 1
        self.ran_at.append(self.sim.now)
        records = [{"messageId": str(i), "body": m.body} for i, m in enumerate(taken)]
        self.outcomes.append(guard.run({"Records": records}, self.services, now=self.sim.time()))
        if any(m.visible_at <= self.sim.now for m in self.queue):
            self._wake(0.0)

    # ---- what tests read ----------------------------------------------------------------------
    def status(self, kind: str, name: str) -> str | None:
        """The finding's compliance status in Security Hub ("ARCHIVED" once archived)."""
        doc = self.hub.of(kind, name)
        if doc is None:
            return None
        if doc["RecordState"] == "ARCHIVED":
            return "ARCHIVED"
        return str(doc["Compliance"]["Status"])

    def checks_of(self, key: str) -> int:
        return sum(key in o.checked for o in self.outcomes)


def _camel(name: str) -> str:
    """CloudTrail's spelling of a request field: DBInstanceIdentifier -> dBInstanceIdentifier."""
    return name[:1].lower() + name[1:]
