"""The documented IAM policies (docs/cli/iam.md) grant exactly the actions the CLI calls (the
discovery and audit tests check that the calls made are these): the read-only policy for one
account, and, across an organization, the member role's and the caller's."""

from __future__ import annotations

import json
import re
from itertools import chain
from pathlib import Path
from typing import Any

from rds_force_ssl.cli import aws

POLICY_PAGE = Path(__file__).resolve().parents[2] / "docs" / "cli" / "iam.md"


def policies(section: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [
        json.loads(block) for block in re.findall(r"```json\n(.*?)```", section, re.DOTALL)
    ]
    return found


def granted(policy: dict[str, Any]) -> dict[str, list[str]]:
    """Sid -> its actions, every statement an Allow."""
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])
    return {s["Sid"]: sorted(s["Action"]) for s in policy["Statement"]}


def test_readme_policy_is_the_cli_actions() -> None:
    text = POLICY_PAGE.read_text()
    section = text[text.index("# IAM policy for the CLI") :]
    block = re.search(r"```json\n(.*?)```", section, re.DOTALL)
    assert block, "no JSON policy in docs/cli/iam.md"
    [statement] = json.loads(block[1])["Statement"]
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == sorted(set(chain(*aws.IAM_ACTIONS.values())))
    assert all(a.startswith("rds:Describe") for a in statement["Action"])
    for command, actions in aws.IAM_ACTIONS.items():
        row = next(line for line in section.splitlines() if line.startswith(f"| `{command}`"))
        if command == "probe --region":
            assert all(f"`{a}`" in row for a in actions), row
    audit_rows = "\n".join(line for line in section.splitlines() if line.startswith("| `audit`"))
    assert all(f"`{a}`" in audit_rows for a in aws.IAM_ACTIONS["audit"])


def test_the_organization_policies_are_the_member_and_caller_actions() -> None:
    text = POLICY_PAGE.read_text()
    section = text[text.index("## Across an organization") :]
    member, trust, caller = policies(section)
    reads = {*aws.MEMBER_ACTIONS["audit"], *aws.MEMBER_ACTIONS["probe --accounts"]}
    assert granted(member) == {
        "RdsForceSslAuditReadOnly": sorted(reads),
        "RdsForceSslSecurityHubImport": sorted(aws.MEMBER_ACTIONS["audit --security-hub"]),
    }
    assert trust["Statement"][0]["Action"] == "sts:AssumeRole"
    assert "sts:ExternalId" in trust["Statement"][0]["Condition"]["StringEquals"]
    caller_actions = granted(caller)
    assert sorted(chain(*caller_actions.values())) == sorted(chain(*aws.CALLER_ACTIONS.values()))
    assert caller_actions["RdsForceSslAssumeMemberRole"] == ["sts:AssumeRole"]
    # Every action is in the table, on a row of the identity that needs it.
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    for who, table in (("member role", aws.MEMBER_ACTIONS), ("caller", aws.CALLER_ACTIONS)):
        mine = "\n".join(r for r in rows if r.startswith(f"| {who} |"))
        assert all(f"`{a}`" in mine for a in chain(*table.values())), who
