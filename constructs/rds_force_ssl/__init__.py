"""rds-force-ssl: make RDS databases and proxies SSL-only with AWS CDK, and prove that they are.

The CDK names load on first use, so the CLI (`rds-force-ssl verify`/`audit`) and the Lambda
handler start without importing aws-cdk-lib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rds_force_ssl.baseline import SslBaseline, exempt
    from rds_force_ssl.facts.policy import Reboot
    from rds_force_ssl.force_ssl import ForceSsl, protected_by
    from rds_force_ssl.guard import SslGuard
    from rds_force_ssl.options import ForceSslError
    from rds_force_ssl.rules import RULES

_EXPORTS = {
    "ForceSsl": "rds_force_ssl.force_ssl",
    "ForceSslError": "rds_force_ssl.options",
    "protected_by": "rds_force_ssl.force_ssl",
    "Reboot": "rds_force_ssl.facts.policy",
    "SslBaseline": "rds_force_ssl.baseline",
    "SslGuard": "rds_force_ssl.guard",
    "exempt": "rds_force_ssl.baseline",
    "RULES": "rds_force_ssl.rules",
}
__all__ = [
    "RULES",
    "ForceSsl",
    "ForceSslError",
    "Reboot",
    "SslBaseline",
    "SslGuard",
    "exempt",
    "protected_by",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rds_force_ssl' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
