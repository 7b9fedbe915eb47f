"""The reconciler's memory of the reboots it asked for: one DynamoDB item per node, in a table of
the stack's own.

Why a memory at all: the reconciler keeps a database from being rebooted twice for one change by
reading its restarts back from RDS's events. AWS emits those "on a best effort basis" and says
nothing of how late they may appear (RDS user guide, "Monitoring Amazon RDS events"); RDS may
also keep reporting ``pending-reboot`` for a while after the restart. If the events come later
than the restart takes, nothing RDS shows tells a node that was just rebooted from one that
still needs it, and the next poll (or a second request, or the next scheduled run) reboots it
again.

Why DynamoDB, and not a tag on the database or the handler's own log:

- a conditional write claims the reboot: of two pollers that decide to reboot the same node at
  once, one writes and reboots, the other is refused and waits;
- a read with ``ConsistentRead`` returns "the most up-to-date data, reflecting the updates from
  all prior write operations that were successful" (DynamoDB developer guide, "Read
  consistency"); the handler's own log reaches CloudWatch Logs with a delay no more bounded than
  RDS's events;
- nothing is written to the user's database: a tag would need ``rds:AddTagsToResource`` on every
  protected database (about 100 more characters of the poller's policy per database, which would
  halve how many databases a stack can protect before IAM's 10,240-character limit), would show
  as drift on databases whose template sets tags, and would be copied into their snapshots;
- the table is one resource per stack whatever the number of databases, and IAM names it once.

A claim lasts SETTLE_S: by then either RDS's events show the restart (they hold the memory from
there on, as before) or they are later than the bound every other wait here rests on. A memory
that cannot be read or written is logged and the reboot goes ahead on the events alone: a deploy
never fails because its memory failed, and never waits on it.

Lambda code: stdlib and boto3 only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

from .decide import SETTLE_S

# The poller's environment names the table (the construct sets it).
ENV_TABLE = "RDS_FORCE_SSL_TABLE"
KEY = "Node"  # "db:<instance id>" or "cluster:<Multi-AZ DB cluster id>", lower case
ASKED = "AskedAt"  # epoch seconds, Lambda's clock
EXPIRES = "ExpiresAt"  # DynamoDB's time to live deletes the item after this (epoch seconds)
KEEP_S = 86400
BATCH = 100  # BatchGetItem takes at most 100 keys


class DynamoApi(Protocol):
    """The slice of the boto3 DynamoDB client the memory uses."""

    def batch_get_item(self, **kwargs: Any) -> Any: ...
    def put_item(self, **kwargs: Any) -> Any: ...


def key(ident: str, *, cluster: bool) -> str:
    return f"{'cluster' if cluster else 'db'}:{ident.lower()}"


@dataclass(frozen=True)
class Memory:
    """The stack's table, through a DynamoDB client."""

    client: DynamoApi
    table: str

    def asked(self, keys: Iterable[str]) -> tuple[dict[str, float], str]:
        """When a reboot of each node was last asked for (a node asked for more than a day ago,
        or never, is absent), and what went wrong reading it ("" if nothing)."""
        wanted = sorted(set(keys))
        found: dict[str, float] = {}
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
                        found[item[KEY]["S"]] = float(item[ASKED]["N"])
                    todo = page.get("UnprocessedKeys") or {}
        except Exception as err:  # the events still stand; never fail a deploy on the memory
            return found, f"memory not read ({_code(err)})"
        return found, ""

    def claim(self, node: str, now: float) -> tuple[bool, str]:
        """Record that a reboot of ``node`` is asked for now, unless one was asked for less than
        SETTLE_S ago: (whether to go ahead, what went wrong writing it)."""
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    KEY: {"S": node},
                    ASKED: {"N": _number(now)},
                    EXPIRES: {"N": str(int(now + KEEP_S))},
                },
                ConditionExpression="attribute_not_exists(#node) OR #asked < :stale",
                ExpressionAttributeNames={"#node": KEY, "#asked": ASKED},
                ExpressionAttributeValues={":stale": {"N": _number(now - SETTLE_S)}},
            )
        except Exception as err:
            code = _code(err)
            if code == "ConditionalCheckFailedException":
                return False, ""
            # Throttled, denied, unreachable, or written with the answer lost: go ahead on the
            # events alone (a lost answer means the claim is ours anyway).
            return True, f"memory not written ({code})"
        return True, ""


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
