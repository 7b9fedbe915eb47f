"""ForceSsl(outcome_output=True): `cdk deploy` prints what the deploy left in effect."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Match, Template

from rds_force_ssl import ForceSsl, SslBaseline
from tests.conftest import Sandbox


def _outcome_outputs(stack: cdk.Stack) -> Mapping[str, Mapping[str, Any]]:
    return Template.from_stack(stack).find_outputs(
        "*", {"Value": {"Fn::GetAtt": [Match.any_value(), "Outcome"]}}
    )


def test_an_output_per_database_when_asked(sandbox: Sandbox) -> None:
    ForceSsl(sandbox.stack, "DbSsl", database=sandbox.instance(), outcome_output=True)
    outputs = _outcome_outputs(sandbox.stack)
    assert len(outputs) == 1
    (output,) = outputs.values()
    assert "Stack/Db" in str(output)


def test_no_output_by_default(sandbox: Sandbox) -> None:
    ForceSsl(sandbox.stack, "DbSsl", database=sandbox.instance())
    assert _outcome_outputs(sandbox.stack) == {}


def test_the_baseline_passes_it_on_to_every_database(sandbox: Sandbox) -> None:
    sandbox.instance("A")
    sandbox.instance("B")
    SslBaseline.apply(sandbox.app, outcome_output=True)
    sandbox.app.synth()
    assert len(_outcome_outputs(sandbox.stack)) == 2


def test_the_output_says_what_each_outcome_means_under_the_policy(sandbox: Sandbox) -> None:
    from rds_force_ssl import Reboot

    ForceSsl(sandbox.stack, "A", database=sandbox.instance("DbA"), outcome_output=True)
    ForceSsl(
        sandbox.stack,
        "B",
        database=sandbox.instance("DbB"),
        outcome_output=True,
        reboot=Reboot.MAINTENANCE_WINDOW,
    )
    descriptions = {
        str(o["Description"]).split(":")[1].strip(): str(o["Description"])
        for o in _outcome_outputs(sandbox.stack).values()
    }
    assert "in-sync = SSL-only in effect" in descriptions["what the deploy left on Stack/DbA"]
    assert (
        "reboot-scheduled = in effect after the restart in the maintenance window"
        in (descriptions["what the deploy left on Stack/DbB"])
    )
