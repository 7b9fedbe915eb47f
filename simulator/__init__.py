"""The project's RDS simulator and Provider-framework driver, shared by tests and benchmarks.

It is a test double, not part of the library: nothing under ``constructs/`` imports it.
"""

from simulator.provider import ProviderRun, memory, rollback_of, run_concurrent, run_provider
from simulator.rds import EPOCH, Fault, Iam, RdsSimulator, Statement

__all__ = [
    "EPOCH",
    "Fault",
    "Iam",
    "ProviderRun",
    "RdsSimulator",
    "Statement",
    "memory",
    "rollback_of",
    "run_concurrent",
    "run_provider",
]
