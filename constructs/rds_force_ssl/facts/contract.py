"""The contract between the construct and the reboot reconciler: ``Custom::RdsForceSslReboot``'s
type, property, attribute and kind names. The construct writes them into the template, the
handlers read them from the CloudFormation event, and the report and the CLI look for them.

Stdlib only.
"""

from __future__ import annotations

RESOURCE_TYPE = "Custom::RdsForceSslReboot"
PROP_KIND = "Kind"
PROP_IDENTIFIER = "Identifier"
PROP_PARAMETER_GROUP = "ParameterGroupName"
# The whole group, as the template writes it: any change to it sends an Update.
PROP_PARAMETERS = "Parameters"
# The parameters ForceSsl owns and their values (e.g. {"rds.force_ssl": "1"}): what must be in
# effect before the resource may say done.
PROP_ENFORCED = "EnforcedParameters"
# The Aurora members declared in the app: the ones IAM lets the reconciler describe and reboot.
PROP_MEMBERS = "Members"
# "true": IAM also names this cluster's Aurora Auto Scaling readers (by their AWS-set tag).
PROP_AUTOSCALED_READERS = "AutoscaledReaders"
PROP_FORCE_FAILOVER = "ForceFailover"
PROP_GIVE_UP_AFTER = "GiveUpAfterSeconds"
# The reboot policy (a Reboot value); absent: Reboot.IMMEDIATE.
PROP_REBOOT = "Reboot"
# "true": reboot (per the policy) for the group's other parameters too, not only ForceSsl's.
PROP_OTHER_PARAMETERS = "RebootForOtherParameters"
# The Kind property: a DB instance, or a DB cluster (Aurora or Multi-AZ).
KIND_INSTANCE = "instance"
KIND_CLUSTER = "cluster"

# Attributes (GetAtt) besides StateAtStart, Outcome, State, Rebooted and RebootedMembers: when a
# request found a restart owed that the maintenance window is to make, the time of the look at
# which RDS showed it owed (epoch seconds): a restart after it loads ForceSsl's change, one
# before it may not have (RDS may show a group change late). "0" otherwise.
ATTR_REBOOT_OWED_SINCE = "RebootOwedSince"
