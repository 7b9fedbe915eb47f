"""The project's RDS simulator and Provider-framework driver, shared by tests and benchmarks.

It is a test double, not part of the library: nothing under ``constructs/`` imports it.

What lives where (no module imports one that imports it back; tests/test_simulator_imports.py
checks):

- ``simulator.world``: what the services share: ``REGION``/``ACCOUNT``, the simulated clock
  (``World.now``, ``at``, ``advance``, ``time``, ``EPOCH``), the call log (``calls``), faults
  (``Fault``), IAM (``Iam``, ``Statement``, ``iam``, ``iam_ready_at``) and ``client_error``;
- ``simulator.rds``: the RDS part, ``SimRds`` (a ``World``): its state machine and API, ``arn``;
- ``simulator.dynamodb``: the DynamoDB part, the stack's table ``SimTable`` (in a ``World``),
  ``TABLE``, ``table_arn``;
- ``simulator.shapes``: requests and responses checked against botocore's models;
- ``simulator.provider``: the CDK Provider framework on the simulated clock (``run_provider``),
  and the reconciler's ``memory`` in the simulator's table;
- here: ``RdsSimulator``, the RDS part with the DynamoDB table in the same world, as ``table``.
"""

from functools import cached_property

from simulator.dynamodb import SimTable
from simulator.provider import ProviderRun, memory, rollback_of, run_concurrent, run_provider
from simulator.rds import SimRds
from simulator.world import EPOCH, Fault, Iam, Statement, World


class RdsSimulator(SimRds):
    """RDS and the stack's DynamoDB table in one world: what tests and benchmarks drive."""

    @cached_property
    def table(self) -> SimTable:
        """The stack's DynamoDB table, where the reconciler remembers the reboots it asked for
        (made on first use: it holds nothing before then)."""
        return SimTable(self)


__all__ = [
    "EPOCH",
    "Fault",
    "Iam",
    "ProviderRun",
    "RdsSimulator",
    "SimRds",
    "SimTable",
    "Statement",
    "World",
    "memory",
    "rollback_of",
    "run_concurrent",
    "run_provider",
]
