#!/usr/bin/env python3
"""Template footprint: what each way of enforcing SSL adds to a CloudFormation template.

For each variant (see ``variants.py``) the stack is synthesized at two sizes, and the report gives
the resources each protected database adds, the fixed resources the variant adds to a stack (over
the same stack with only its VPC), template bytes per database, and the N at which the stack
would reach CloudFormation's 500-resource limit.

It also checks the limit that can come first: IAM caps the inline policies of one role at 10,240
characters in all, whitespace not counted (IAM User Guide, "IAM and AWS STS quotas",
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html), and every
custom-resource variant grants its shared Lambda roles access to each database by ARN. Policy
sizes are measured after resolving the template's intrinsics to realistic values, RDS identifiers
at their 63-character maximum (the worst case); the role whose policy grows fastest with N is
the one reported.

    .venv/bin/python benchmarks/footprint.py [--n 1 10]
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import tempfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.variants import LABELS, VARIANTS, WINDOW, build_app
from rds_force_ssl.reboot_provider import WINDOW_INPUT_LIMIT, WindowInput

RESOURCE_LIMIT = 500
ROLE_POLICY_LIMIT = 10_240  # characters, all inline policies of one role together
TARGET_EXTRA_PER_DB = 1
TARGET_FIXED = 17  # the Provider framework's own, with an is-complete handler
TARGET_LIMIT_N = 75

ACCOUNT = "123456789012"
REGION = "us-east-1"
# What CloudFormation makes of a logical ID for a generated name: "<stack>-<logicalid>-<suffix>";
# 12 random characters is what it appends.
SUFFIX = "a1b2c3d4e5f6"
RDS_IDENTIFIER_MAX = 63  # DB instance, cluster and parameter group identifiers


@dataclass(frozen=True)
class Synth:
    resources: int
    template_bytes: int
    role_policies: dict[str, int]  # role logical ID -> inline policy characters


def synth(variant: str, n: int) -> Synth:
    with tempfile.TemporaryDirectory(prefix="footprint-") as outdir:
        assembly = build_app(variant, n, validation=False, outdir=outdir).synth()
        path = Path(assembly.get_stack_by_name("Bench").template_full_path)
        raw = path.read_bytes()
    template = json.loads(raw)
    return Synth(
        resources=len(template["Resources"]),
        template_bytes=len(raw),
        role_policies=role_policy_sizes(template),
    )


# ---- resolving intrinsics to realistic strings, to size IAM policies -------------------------
def physical_name(logical_id: str, resource: Mapping[str, Any]) -> str:
    name = f"bench-{logical_id}-{SUFFIX}"
    if resource.get("Type", "").startswith("AWS::RDS::"):
        return name.lower().ljust(RDS_IDENTIFIER_MAX, "x")[:RDS_IDENTIFIER_MAX]
    return name


def resolve(value: Any, resources: Mapping[str, Any]) -> Any:
    if isinstance(value, list):
        return [resolve(v, resources) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            pseudo = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
            if arg in pseudo:
                return pseudo[arg]
            return physical_name(arg, resources.get(arg, {}))
        if key == "Fn::Join":
            sep, parts = arg
            return sep.join(str(resolve(p, resources)) for p in parts)
        if key == "Fn::GetAtt":
            logical_id = arg[0] if isinstance(arg, list) else str(arg).split(".")[0]
            res = resources.get(logical_id, {})
            service = str(res.get("Type", "AWS::X::Y")).split("::")[1].lower()
            return f"arn:aws:{service}:{REGION}:{ACCOUNT}:x:{physical_name(logical_id, res)}"
    return {k: resolve(v, resources) for k, v in value.items()}


def role_policy_sizes(template: Mapping[str, Any]) -> dict[str, int]:
    """Characters (no whitespace) of all inline policies per role, as IAM counts them."""
    resources = template["Resources"]
    sizes: dict[str, int] = defaultdict(int)
    for logical_id, res in resources.items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Policy":
            doc = json.dumps(resolve(props["PolicyDocument"], resources), separators=(",", ":"))
            for role in props.get("Roles", []):
                sizes[role.get("Ref", str(role))] += len(doc)
        elif res["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                doc = json.dumps(
                    resolve(policy["PolicyDocument"], resources), separators=(",", ":")
                )
                sizes[logical_id] += len(doc)
    return dict(sizes)


def window_input_limit_n() -> int:
    """The most instances a stack's maintenance-window schedule input holds at its longest."""
    n = 0
    while WindowInput.longest([0] * (n + 1)) <= WINDOW_INPUT_LIMIT:
        n += 1
    return n


# ---- the report ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Footprint:
    variant: str
    per_db: float
    fixed: float
    bytes_per_db: float
    limit_n: int
    policy_per_db: float
    policy_limit_n: int | None
    policy_role: str  # the role whose policy grows fastest, its logical ID without the hash


def footprint(variant: str, small: int, large: int, base: Synth) -> Footprint:
    lo, hi = synth(variant, small), synth(variant, large)
    per_db = (hi.resources - lo.resources) / (large - small)
    fixed = lo.resources - small * per_db - base.resources
    bytes_per_db = (hi.template_bytes - lo.template_bytes) / (large - small)
    limit_n = int((RESOURCE_LIMIT - base.resources - fixed) // per_db)
    # The role whose inline policies grow fastest with N is the one that reaches IAM's cap.
    # (Between roles that grow alike, the larger one reaches it first.)
    policy_per_db, policy_limit_n, policy_role = 0.0, None, ""
    for role, size in sorted(hi.role_policies.items(), key=lambda kv: -kv[1]):
        slope = (size - lo.role_policies.get(role, 0)) / (large - small)
        if slope > policy_per_db:
            at_zero = lo.role_policies.get(role, 0) - small * slope
            policy_per_db, policy_limit_n = slope, int((ROLE_POLICY_LIMIT - at_zero) // slope)
            policy_role = re.sub(r"[0-9A-F]{8}$", "", role)
    return Footprint(
        variant,
        per_db,
        fixed,
        bytes_per_db,
        limit_n,
        policy_per_db,
        policy_limit_n,
        policy_role,
    )


def run(small: int, large: int, argv: Sequence[str]) -> int:
    base = synth("plain", 0)
    rows = {v: footprint(v, small, large, base) for v in (*VARIANTS, WINDOW)}
    plain = rows["plain"]
    print(
        f"Template footprint (fitted from N={small} and N={large}; the VPC-only stack has "
        f"{base.resources} resources; IAM sized with {RDS_IDENTIFIER_MAX}-character RDS "
        "identifiers)"
    )
    print()
    print(f"command: .venv/bin/python benchmarks/footprint.py {shlex.join(argv)}".rstrip())
    print()
    head = (
        "| variant | resources per DB | over (a) | fixed resources per stack "
        "| template bytes per DB | N at 500 resources "
        "| handler policy chars per DB (role growing fastest) | N at IAM 10,240 "
        "| first limit at N |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for v, f in rows.items():
        iam_n = "none" if f.policy_limit_n is None else str(f.policy_limit_n)
        first = min(f.limit_n, f.policy_limit_n or f.limit_n)
        role = f" ({f.policy_role})" if f.policy_role else ""
        print(
            f"| {LABELS[v]} | {f.per_db:g} | {f.per_db - plain.per_db:+g} | {f.fixed:g} "
            f"| {f.bytes_per_db:,.0f} | {f.limit_n} | {f.policy_per_db:,.0f}{role} | {iam_n} "
            f"| {first} |"
        )
    print()
    verdicts = [summary(rows[v], rows["plain"], base) for v in ("forcessl", WINDOW, "baseline")]
    print("SUMMARY footprint: " + "; ".join(verdicts))
    return 0


def summary(c: Footprint, plain: Footprint, base: Synth) -> str:
    """The issue 12 targets for one ForceSsl variant (the maintenance-window schedule included)."""
    c_first = min(c.limit_n, c.policy_limit_n or c.limit_n)
    if c.variant == WINDOW:
        # The schedule's input lists every such database: EventBridge takes 8,192 characters.
        fits = window_input_limit_n()
        print(
            f"{LABELS[c.variant]}: the schedule's input reaches EventBridge's "
            f"{WINDOW_INPUT_LIMIT:,} characters at N={fits + 1} ({RDS_IDENTIFIER_MAX}-character "
            "identifiers)"
        )
        c_first = min(c_first, fits)
    checks = [
        ("+1 resource per DB", c.per_db - plain.per_db <= TARGET_EXTRA_PER_DB),
        (f"fixed <= {TARGET_FIXED}", c.fixed <= TARGET_FIXED),
        (f"limit N >= {TARGET_LIMIT_N}", c_first >= TARGET_LIMIT_N),
    ]
    verdict = ", ".join(f"{name}: {'met' if ok else 'MISSED'}" for name, ok in checks)
    if c_first < TARGET_LIMIT_N:
        # At a given per-DB count the limit cannot move past (500 - VPC - fixed) / per-DB.
        verdict += (
            f"; short by {TARGET_LIMIT_N - c_first}: {TARGET_LIMIT_N} databases need at most "
            f"{(RESOURCE_LIMIT - base.resources - c.fixed) / TARGET_LIMIT_N:.2f} resources each "
            f"with this fixed overhead, and it has {c.per_db:g}"
        )
    return (
        f"{LABELS[c.variant]} adds {c.per_db - plain.per_db:+g} resource per DB over (a), "
        f"{c.fixed:g} fixed, {c.policy_per_db:,.0f} handler-policy characters per DB, first "
        f"limit at N={c_first} ({verdict})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--n",
        type=int,
        nargs=2,
        default=[1, 10],
        metavar=("SMALL", "LARGE"),
        help="the two stack sizes to fit from (default: 1 10)",
    )
    args_in = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(args_in)
    small, large = sorted(args.n)
    if small < 1 or small == large:
        parser.error("--n needs two different sizes, both at least 1")
    return run(small, large, args_in)


if __name__ == "__main__":
    sys.exit(main())
