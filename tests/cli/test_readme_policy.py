"""The documented IAM policy (docs/cli/iam.md) grants exactly the actions the CLI calls (the
discovery and audit tests check that the calls made are these), all of them read-only."""

from __future__ import annotations

import json
import re
from itertools import chain
from pathlib import Path

from rds_force_ssl.cli import aws

POLICY_PAGE = Path(__file__).resolve().parents[2] / "docs" / "cli" / "iam.md"


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
