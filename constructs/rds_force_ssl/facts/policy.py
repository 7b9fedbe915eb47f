"""The reboot policy (``Reboot``) and the outcomes a reboot resource reports (its ``Outcome``
attribute): what the construct writes, the reconciler decides by, and the CLI's audit reads.

Stdlib only.
"""

from __future__ import annotations

from enum import StrEnum

OUTCOME_IN_SYNC = "in-sync"
OUTCOME_STOPPED = "stopped-applies-at-next-start"
# ForceSsl's parameters wait for a reboot that the policy leaves to the maintenance window...
OUTCOME_REBOOT_SCHEDULED = "reboot-scheduled"
# ... or to the user (Reboot.NEVER): configured, not in effect.
OUTCOME_PENDING_REBOOT = "pending-reboot"
# ForceSsl's parameters are in effect; the group's other changes wait for a reboot that is the
# user's to make (docs/reboot.md, "Only for what ForceSsl changed").
OUTCOME_OTHERS_PENDING = "in-effect-other-changes-pending-reboot"


class Reboot(StrEnum):
    """When ForceSsl may restart a database to put its parameters in effect.

    ``IMMEDIATE``: during the deploy, which finishes once they are in effect.
    ``MAINTENANCE_WINDOW``: the deploy finishes once RDS shows whether a restart is owed
    (``Outcome`` ``reboot-scheduled`` if it is), and the stack's scheduled reconciler restarts
    the database inside its own ``PreferredMaintenanceWindow``.
    ``NEVER``: the deploy finishes with ``Outcome`` ``pending-reboot``; restarting is yours.
    """

    IMMEDIATE = "immediate"
    MAINTENANCE_WINDOW = "maintenance-window"
    NEVER = "never"
