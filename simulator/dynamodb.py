"""The DynamoDB part of the simulator: the stack's table (the reconciler's memory of the reboots
it asked for), ``SimTable``, in the same ``simulator.world.World`` as the RDS part: the same
clock, call log, faults and IAM. It imports ``simulator.world``, never ``simulator.rds``;
``simulator.RdsSimulator`` gives each simulator its table, as ``table``.

What it keeps of DynamoDB, and where it is less kind than moto:
- ``PutItem`` with a ``ConditionExpression`` of ``attribute_not_exists(...)``, ``<`` and ``=``
  terms joined by ``OR`` (anything else is refused, so the handler cannot rely on syntax this
  double does not check); a failed condition is ``ConditionalCheckFailedException``;
- ``BatchGetItem``: a read with ``ConsistentRead`` sees every write that succeeded before it
  (DynamoDB developer guide, "Read consistency"); an eventually consistent one here misses the
  writes of the last ``eventual_lag_seconds``, and the first call of a batch may come back with
  its keys as ``UnprocessedKeys``, as DynamoDB's documentation allows;
- items past their time-to-live attribute are still returned: DynamoDB deletes expired items
  "within a few days", never at once.
Requests and responses are checked against botocore's DynamoDB model.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from botocore.exceptions import ReadTimeoutError

from simulator import shapes
from simulator.world import ACCOUNT, REGION, World, client_error

TABLE = "stack-rdsforcesslrebootprovidermemory-a1b2c3d4"
_TERM_NOT_EXISTS = re.compile(r"^attribute_not_exists\((#?\w+)\)$")
_TERM_COMPARE = re.compile(r"^(#?\w+) (<|=) (:\w+)$")


def table_arn(name: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


class SimTable:
    """One DynamoDB table keyed by a string partition key, as the boto3 client sees it."""

    def __init__(self, world: World, *, name: str = TABLE, key: str = "Node") -> None:
        self.world = world
        self.name = name
        self.key = key
        self.items: dict[str, dict[str, Any]] = {}
        self.written_at: dict[str, float] = {}  # simulated time of each item's last write
        self.eventual_lag_seconds = 1.0
        self.unprocessed_first = False  # the next BatchGetItem returns its keys unprocessed

    # ---- the boto3 DynamoDB API -------------------------------------------------------------
    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._api("PutItem", kwargs, self._put_item)

    def batch_get_item(self, **kwargs: Any) -> dict[str, Any]:
        return self._api("BatchGetItem", kwargs, self._batch_get_item)

    # ---- internals ------------------------------------------------------------------------------
    def _api(self, op: str, kwargs: dict[str, Any], impl: Any) -> dict[str, Any]:
        world = self.world
        world.calls.append((op, kwargs))
        shapes.check_request(op, kwargs, "dynamodb")
        fault = world.fault(op)
        if fault is not None:
            if fault.kind == "throttle":
                raise client_error(op, "ProvisionedThroughputExceededException", "Throttled")
            if fault.kind == "5xx":
                raise client_error(op, "InternalServerError", "Internal server error", 500)
            if fault.kind == "denied":
                raise client_error(op, "AccessDeniedException", "Not authorized", 400)
            impl(kwargs)  # it happens; the answer is lost
            raise ReadTimeoutError(endpoint_url=f"https://dynamodb.{REGION}.amazonaws.com/")
        response: dict[str, Any] = impl(kwargs)
        shapes.check_response(op, response, "dynamodb")
        return response

    def _authorize(self, op: str, name: str) -> None:
        if not self.world.allowed(f"dynamodb:{op}", table_arn(name), {}):
            raise client_error(
                op,
                "AccessDeniedException",
                f"User is not authorized to perform: dynamodb:{op} on resource: {table_arn(name)}",
            )
        if name != self.name:
            raise client_error(op, "ResourceNotFoundException", "Requested resource not found")

    def _put_item(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        self._authorize("PutItem", kwargs["TableName"])
        item = kwargs["Item"]
        node = item[self.key]["S"]
        condition = kwargs.get("ConditionExpression")
        if condition is not None and not self._holds(
            condition,
            self.items.get(node),
            kwargs.get("ExpressionAttributeNames", {}),
            kwargs.get("ExpressionAttributeValues", {}),
        ):
            raise client_error(
                "PutItem", "ConditionalCheckFailedException", "The conditional request failed"
            )
        self.items[node] = item
        self.written_at[node] = self.world.now
        return {}

    def _batch_get_item(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        responses: dict[str, list[dict[str, Any]]] = {}
        unprocessed: dict[str, Any] = {}
        for name, request in kwargs["RequestItems"].items():
            self._authorize("BatchGetItem", name)
            if self.unprocessed_first:
                self.unprocessed_first = False
                unprocessed[name] = request
                continue
            consistent = bool(request.get("ConsistentRead"))
            found = []
            for wanted in request["Keys"]:
                node = wanted[self.key]["S"]
                item = self.items.get(node)
                fresh = self.world.now - self.written_at.get(node, float("-inf"))
                if item is not None and (consistent or fresh >= self.eventual_lag_seconds):
                    found.append(item)
            responses[name] = found
        return {"Responses": responses, "UnprocessedKeys": unprocessed}

    @staticmethod
    def _holds(
        condition: str,
        item: dict[str, Any] | None,
        names: dict[str, str],
        values: dict[str, dict[str, str]],
    ) -> bool:
        def attribute(token: str) -> str:
            return names[token] if token.startswith("#") else token

        results = []
        for term in (t.strip() for t in condition.split(" OR ")):
            if m := _TERM_NOT_EXISTS.match(term):
                results.append(item is None or attribute(m.group(1)) not in item)
            elif m := _TERM_COMPARE.match(term):
                have = (item or {}).get(attribute(m.group(1)))
                want = values[m.group(3)]
                if m.group(2) == "=":
                    results.append(have == want)
                else:
                    results.append(
                        have is not None
                        and "N" in have
                        and "N" in want
                        and Decimal(have["N"]) < Decimal(want["N"])
                    )
            else:
                raise AssertionError(f"condition term this simulator does not evaluate: {term!r}")
        return any(results)
