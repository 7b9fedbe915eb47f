"""CloudFormation events for the reboot reconciler, and the worlds they run in."""

from __future__ import annotations

from typing import Any

from rds_force_ssl.facts import contract
from rds_force_ssl.facts.policy import OUTCOME_IN_SYNC
from rds_force_ssl.handlers import reboot
from simulator import RdsSimulator, run_provider

GROUP = "stack-dbparametergroup-abc"
ENFORCED = {"rds.force_ssl": "1"}
INTERVAL = 10.0


def props(
    *,
    kind: str = "instance",
    ident: str = "db1",
    group: str = GROUP,
    enforced: dict[str, str] | None = None,
    parameters: dict[str, str] | None = None,
    members: list[str] | None = None,
    autoscaled_readers: bool = False,
    failover: bool = False,
    policy: str | None = None,
    others: bool = False,
) -> dict[str, Any]:
    enforced = dict(ENFORCED if enforced is None else enforced)
    out: dict[str, Any] = {
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider",
        contract.PROP_KIND: kind,
        contract.PROP_IDENTIFIER: ident,
        contract.PROP_PARAMETER_GROUP: group,
        contract.PROP_PARAMETERS: dict(parameters if parameters is not None else enforced),
        contract.PROP_ENFORCED: enforced,
        contract.PROP_FORCE_FAILOVER: "true" if failover else "false",
    }
    if members:
        out[contract.PROP_MEMBERS] = members
    if autoscaled_readers:
        out[contract.PROP_AUTOSCALED_READERS] = "true"
    if policy is not None:
        out[contract.PROP_REBOOT] = policy
    if others:
        out[contract.PROP_OTHER_PARAMETERS] = "true"
    return out


def event(
    *,
    request: str = "Create",
    request_id: str | None = None,
    old: dict[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """A CloudFormation request; an Update takes the previous properties as ``old``."""
    new = props(**kwargs)
    ev: dict[str, Any] = {
        "RequestType": request,
        "RequestId": request_id or f"req-{request.lower()}-1",
        "ResourceType": contract.RESOURCE_TYPE,
        "ResponseURL": "https://cloudformation-custom-resource-response.example/secret-presigned",
        "ResourceProperties": new,
    }
    if request != "Create":
        ev["PhysicalResourceId"] = reboot.physical_id(
            new[contract.PROP_KIND], new[contract.PROP_IDENTIFIER]
        )
    if request == "Update":
        ev["OldResourceProperties"] = old if old is not None else props(**kwargs)
    return ev


def instance_world(apply: str = "in-sync", **sim_kwargs: Any) -> RdsSimulator:
    """db1 on GROUP (rds.force_ssl=1, static), its group reporting ``apply``."""
    sim = RdsSimulator(**sim_kwargs)
    sim.add_group(GROUP, ENFORCED)
    sim.add_instance("db1", groups={GROUP: apply})
    return sim


def deployed_in_effect(sim: RdsSimulator, **kwargs: Any) -> None:
    """The stack's earlier deploy (``event(**kwargs)``, a Create under IMMEDIATE): it finishes
    once ForceSsl's parameters are in effect, and leaves that proof in the stack's memory (what
    lets a later request leave a pending-reboot of the user's own parameters alone)."""
    run = run_provider(sim, event(**kwargs), query_interval=INTERVAL)
    assert (run.status, run.data.get("Outcome")) == ("SUCCESS", OUTCOME_IN_SYNC), run
    sim.calls.clear()
