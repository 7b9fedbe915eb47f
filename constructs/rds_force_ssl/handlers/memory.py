"""The reconciler's memory: one DynamoDB item per node for the reboot it last asked for, and one
per database for the last proof that ForceSsl's parameters were in effect, in a table of the
stack's own.

Why a memory at all: RDS's restart events are emitted "on a best effort basis", with no bound on
how late (RDS user guide, "Monitoring Amazon RDS events"), and RDS may keep reporting
``pending-reboot`` after a restart. Between a reboot asked for and RDS showing it, nothing RDS
shows tells a node that was just rebooted from one that still needs it; without a record of the
ask, the next poll (or a second request, or the scheduled run) reboots it again.

A claim keeps three facts apart, and ends only on the last (``Claim``):

1. **asked**: written, with a conditional write, *before* the reboot call. Of two pollers that
   decide to reboot one node, one writes and reboots, the other is refused and waits;
2. **seen restarting**: a look after the ask saw the node ``rebooting`` (or the reboot's own
   answer said so);
3. **restarted**: RDS showed the restart over: a look saw the node up again after seeing it
   restarting, or RDS logged the restart (an event dated after the ask).

Until the third, no reconciler of the stack reboots that node again, whatever the clock says: a
20-minute restart is waited out, not repeated. A claim also ends when RDS refused the reboot on
the call's first attempt (``InvalidDBInstanceState`` before any retry): then no restart came of
it. An open claim has no time to live; DynamoDB's TTL removes only closed ones, a day after.

A memory that cannot be read, or a claim that cannot be written, never licenses a reboot: the
poller waits and looks again. A write whose answer was lost is read back (consistently) before
the reboot call: the claim is ours only if the table says so.

Why DynamoDB, and not a tag on the database or the handler's own log: a conditional write is
the claim; a ``ConsistentRead`` returns "the most up-to-date data, reflecting the updates from
all prior write operations that were successful" (DynamoDB developer guide, "Read
consistency"), while the Lambda log reaches CloudWatch Logs late; nothing is written to the
user's database (a tag needs ``rds:AddTagsToResource`` on each, shows as drift, and is copied
into snapshots); one table per stack, named once in IAM.

Lambda code: stdlib and boto3 only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

# The poller's environment names the table (the construct sets it).
ENV_TABLE = "RDS_FORCE_SSL_TABLE"
KEY = "Node"  # "db:<instance id>", "cluster:<Multi-AZ DB cluster id>", "proof:<kind>:<id>"
BY = "By"  # who asked: the CloudFormation RequestId, or the maintenance-window run
ASKED = "AskedAt"  # epoch seconds, Lambda's clock
RESTARTING = "RestartingAt"
RESTARTED = "RestartedAt"
STATE = "State"
OPEN, RESTARTED_STATE, REFUSED = "open", "restarted", "refused"
# A restart no reconciler asked for (CloudFormation's, a person's, a writer's that took its
# readers along), recorded when a look first sees the node rebooting: it holds like a claim
# until a look sees the node back up, so its end is known without waiting for its events.
OBSERVED = "observed"
GROUP, ENFORCED, PROVEN = "Group", "Enforced", "ProvenAt"
EXPIRES = "ExpiresAt"  # DynamoDB's time to live deletes a closed item after this (epoch s)
KEEP_S = 86400
BATCH = 100  # BatchGetItem takes at most 100 keys


class DynamoApi(Protocol):
    """The slice of the boto3 DynamoDB client the memory uses."""

    def batch_get_item(self, **kwargs: Any) -> Any: ...
    def put_item(self, **kwargs: Any) -> Any: ...


def key(ident: str, *, cluster: bool) -> str:
    return f"{'cluster' if cluster else 'db'}:{ident.lower()}"


def proof_key(kind: str, ident: str) -> str:
    return f"proof:{kind}:{ident.lower()}"


@dataclass(frozen=True)
class Claim:
    """The last reboot of a node a reconciler asked for, and what RDS has shown of it since."""

    asked: float
    by: str = ""
    restarting: float | None = None  # a look after the ask saw it restarting
    restarted: float | None = None  # RDS showed the restart over
    refused: bool = False  # RDS refused the call's first attempt: no restart came of it

    @property
    def observed(self) -> bool:
        """A restart seen, not asked for."""
        return self.by == OBSERVED

    @property
    def open(self) -> bool:
        """No reboot of the node may be asked for while this holds: until RDS showed the
        restart over, or refused the reboot (unless a restart was seen after all)."""
        return self.restarted is None and (not self.refused or self.restarting is not None)

    @property
    def state(self) -> str:
        if self.open:
            return OPEN
        return RESTARTED_STATE if self.restarted is not None else REFUSED


@dataclass(frozen=True)
class Proof:
    """A request saw ForceSsl's parameters in effect (``in-sync``, trusted) on the database."""

    group: str
    enforced: Mapping[str, str]
    at: float


@dataclass(frozen=True)
class Recalled:
    """What the memory holds for some keys; ``problem`` is not "" when it could not be read
    (then ``claims`` may lack some that exist, and no reboot may be decided on it)."""

    claims: Mapping[str, Claim]
    proofs: Mapping[str, Proof]
    problem: str = ""


@dataclass(frozen=True)
class Memory:
    """The stack's table, through a DynamoDB client."""

    client: DynamoApi
    table: str

    def recall(self, keys: Iterable[str]) -> Recalled:
        """The claims and proofs stored under ``keys`` (ConsistentRead, paginated)."""
        wanted = sorted(set(keys))
        claims: dict[str, Claim] = {}
        proofs: dict[str, Proof] = {}
        try:
            for start in range(0, len(wanted), BATCH):
                todo: Mapping[str, Any] = {
                    self.table: {
                        "Keys": [{KEY: {"S": k}} for k in wanted[start : start + BATCH]],
                        "ConsistentRead": True,
                    }
                }
                while todo:
                    page = self.client.batch_get_item(RequestItems=todo)
                    for item in page.get("Responses", {}).get(self.table, []):
                        name = item[KEY]["S"]
                        if PROVEN in item:
                            proofs[name] = _proof(item)
                        elif ASKED in item:
                            claims[name] = _claim(item)
                    todo = page.get("UnprocessedKeys") or {}
        except Exception as err:
            return Recalled(claims, proofs, f"memory not read ({_code(err)})")
        return Recalled(claims, proofs)

    def claim(
        self, node: str, now: float, by: str, *, restarting: bool = False
    ) -> tuple[bool, str]:
        """Record that a reboot of ``node`` is asked for now (``restarting``: that a look sees
        it restarting now), unless a claim on it is open: (whether the claim is ours, so the
        reboot may be asked for; what went wrong)."""
        at = asked_at(now)
        mine = Claim(asked=at, by=by, restarting=at if restarting else None)
        try:
            self.client.put_item(
                TableName=self.table,
                Item=_item(node, mine),
                ConditionExpression="attribute_not_exists(#node) OR #state = :restarted "
                "OR #state = :refused",
                ExpressionAttributeNames={"#node": KEY, "#state": STATE},
                ExpressionAttributeValues={
                    ":restarted": {"S": RESTARTED_STATE},
                    ":refused": {"S": REFUSED},
                },
            )
        except Exception as err:
            code = _code(err)
            if code == "ConditionalCheckFailedException":
                return False, ""
            # Throttled, denied, unreachable, or written with the answer lost: only the table
            # can say whether the claim is ours.
            back = self.recall([node])
            if back.claims.get(node) == mine:
                return True, f"memory answer lost ({code}); read back: the claim is ours"
            return False, f"memory not written ({code}); not rebooting without a claim"
        return True, ""

    def record(self, node: str, was: Claim, now: Claim) -> str:
        """Write what RDS has shown of a claim since (``was`` -> ``now``), if nobody has claimed
        the node again meanwhile; what went wrong ("" if nothing)."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item=_item(node, now, expires=None if now.open else now.asked + KEEP_S),
                ConditionExpression="#asked = :asked",
                ExpressionAttributeNames={"#asked": ASKED},
                ExpressionAttributeValues={":asked": {"N": _number(was.asked)}},
            )
        except Exception as err:
            if _code(err) == "ConditionalCheckFailedException":
                return ""  # claimed again since: that claim's evidence is its own
            return f"memory not written ({_code(err)})"
        return ""

    def prove(self, kind: str, ident: str, proof: Proof) -> str:
        """Record that ForceSsl's parameters were seen in effect; what went wrong."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    KEY: {"S": proof_key(kind, ident)},
                    GROUP: {"S": proof.group.lower()},
                    ENFORCED: {"S": json.dumps(dict(proof.enforced), sort_keys=True)},
                    PROVEN: {"N": _number(proof.at)},
                },
            )
        except Exception as err:
            return f"proof not written ({_code(err)})"
        return ""


def asked_at(now: float) -> float:
    """``now`` as the table stores it, so that a read-back compares equal."""
    return float(_number(now))


def _item(node: str, claim: Claim, *, expires: float | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        KEY: {"S": node},
        BY: {"S": claim.by},
        ASKED: {"N": _number(claim.asked)},
        STATE: {"S": claim.state},
    }
    if claim.restarting is not None:
        item[RESTARTING] = {"N": _number(claim.restarting)}
    if claim.restarted is not None:
        item[RESTARTED] = {"N": _number(claim.restarted)}
    if expires is not None:
        item[EXPIRES] = {"N": str(int(expires))}
    return item


def _claim(item: Mapping[str, Any]) -> Claim:
    def number(name: str) -> float | None:
        return float(item[name]["N"]) if name in item else None

    return Claim(
        asked=float(item[ASKED]["N"]),
        by=str(item.get(BY, {}).get("S", "")),
        restarting=number(RESTARTING),
        restarted=number(RESTARTED),
        refused=item.get(STATE, {}).get("S", OPEN) == REFUSED,
    )


def _proof(item: Mapping[str, Any]) -> Proof:
    return Proof(
        group=str(item[GROUP]["S"]),
        enforced={str(k): str(v) for k, v in json.loads(item[ENFORCED]["S"]).items()},
        at=float(item[PROVEN]["N"]),
    )


def _number(value: float) -> str:
    return f"{value:.3f}"


def _code(err: BaseException) -> str:
    response = getattr(err, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(err).__name__


_CLIENT: DynamoApi | None = None


def lambda_memory() -> Memory:
    """The table the construct named in this function's environment, through a boto3 client
    made on first use."""
    global _CLIENT
    if _CLIENT is None:
        import boto3
        from botocore.config import Config

        _CLIENT = cast(
            DynamoApi,
            boto3.client("dynamodb", config=Config(retries={"mode": "standard"})),
        )
    return Memory(client=_CLIENT, table=os.environ[ENV_TABLE])
