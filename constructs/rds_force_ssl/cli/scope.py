"""The account and region scope options that ``audit`` and ``probe`` share, apart from
``cli/org.py`` (which runs them): every start of the CLI builds every command's parser, and
this module is all it needs for that.
"""

from __future__ import annotations

from typing import Any

DEFAULT_PARALLEL = 32  # benchmarks/org_audit.py: 16, 32 and 64 compared
SCOPE_OPTIONS = ("accounts", "regions", "role_name", "ou", "exclude", "external_id", "parallel")


def add_scope_arguments(group: Any, *, work: str) -> None:
    """The scope options, shared by ``audit`` and ``probe``; ``work``: what is done with an
    account-region ("read", "discovered")."""
    group.add_argument(
        "--accounts",
        metavar="IDS|org",
        help="comma-separated account ids, or 'org' for every ACTIVE account of the AWS "
        "Organization (organizations:ListAccounts); needs --role-name",
    )
    group.add_argument(
        "--ou", metavar="IDS", help="with --accounts org: only the accounts under these OUs"
    )
    group.add_argument("--exclude", metavar="IDS", help="account ids to leave out")
    group.add_argument(
        "--role-name", help="the IAM role to assume in each account (sts:AssumeRole)"
    )
    group.add_argument("--external-id", help="the external ID the role's trust policy requires")
    group.add_argument(
        "--regions",
        metavar="NAMES|all",
        help="comma-separated regions, or 'all' for every region enabled for the caller "
        "(ec2:DescribeRegions)",
    )
    group.add_argument(
        "--parallel",
        type=int,
        default=None,
        metavar="N",
        help=f"account-regions {work} at once (default: {DEFAULT_PARALLEL}); each one is "
        f"{work} one call at a time",
    )


def scope_given(args: Any) -> bool:
    return any(getattr(args, name, None) is not None for name in SCOPE_OPTIONS)
