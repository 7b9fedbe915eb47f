"""The RDS API for ``audit`` and ``probe --region``: one client, and failures turned into errors
that say what to do (credentials, region, network, or the IAM actions to grant).

IAM: every call is a read-only Describe. The actions, per command, are in ``IAM_ACTIONS`` and in
the policy in docs/cli/iam.md; https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from rds_force_ssl.cli.errors import CliError

if TYPE_CHECKING:
    # Type stubs only (boto3-stubs[rds]), never imported at run time.
    from mypy_boto3_rds import RDSClient

IAM_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "audit": (
        "rds:DescribeDBInstances",
        "rds:DescribeDBClusters",
        "rds:DescribeDBParameters",
        "rds:DescribeDBClusterParameters",
        "rds:DescribeCertificates",
        "rds:DescribeDBProxies",
    ),
    "probe --region": (
        "rds:DescribeDBInstances",
        "rds:DescribeDBClusters",
        "rds:DescribeDBProxies",
        "rds:DescribeDBProxyEndpoints",
    ),
}
# Across accounts (the scope options of ``audit`` and ``probe``, cli/org.py): what the role
# assumed in each member account needs, and what the caller needs to list the scope and assume
# the role.
MEMBER_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "audit": IAM_ACTIONS["audit"],
    "probe --accounts": IAM_ACTIONS["probe --region"],
    "audit --security-hub": ("securityhub:BatchImportFindings",),
}
CALLER_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "--accounts org": (
        "organizations:ListAccounts",
        "organizations:ListAccountsForParent",
        "organizations:ListOrganizationalUnitsForParent",
    ),
    "--role-name": ("sts:AssumeRole",),
    "--regions all": ("ec2:DescribeRegions",),
}
# Standard mode retries throttling and dropped connections with backoff; a large fleet can hit
# the describe limits. A short connect timeout makes an unreachable API fail in seconds.
MAX_ATTEMPTS = 5
PAGE_SIZE = 100  # records per describe call (the most RDS returns)
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30  # one describe page; a call's attempts are bounded by MAX_ATTEMPTS

DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
REJECTED = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "AuthFailure",
    }
)
MAX_REASON = 200  # a parser error can carry a whole HTML page
POLICY_HINT = (
    "the docs page 'IAM policy for the CLI', docs/cli/iam.md, has a ready read-only policy"
)


def pages(
    client: Any, operation: str, key: str, *, page_size: int = PAGE_SIZE, **kwargs: Any
) -> Iterator[Mapping[str, Any]]:
    """Every item of a describe call, read page by page."""
    paginator = client.get_paginator(operation)
    for page in paginator.paginate(PaginationConfig={"PageSize": page_size}, **kwargs):
        yield from page.get(key, [])


def actions(command: str) -> str:
    return ", ".join(IAM_ACTIONS[command])


# A run across accounts, by the name translate() gets for it: its member role's actions.
SCOPED: Mapping[str, str] = {"audit --accounts": "audit", "probe --accounts": "probe --accounts"}
SET_CREDENTIALS = (
    "set AWS_PROFILE (after `aws sso login` or `aws configure`), or AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY"
)


def needed(command: str) -> str:
    """What the identity running ``command`` needs, for a fix: for a run across accounts
    (``SCOPED``), the caller's actions and those of the role it assumes in each account."""
    member = SCOPED.get(command)
    if member is None:
        return f"the identity needs {actions(command)} ({POLICY_HINT})"
    caller = "; ".join(f"{', '.join(acts)} for {option}" for option, acts in CALLER_ACTIONS.items())
    role = ", ".join(MEMBER_ACTIONS[member])
    if member == "audit":
        role += f" (and {', '.join(MEMBER_ACTIONS['audit --security-hub'])} for --security-hub)"
    return (
        f"the caller needs {caller}; the role assumed in each account (without --role-name, the "
        f"caller) needs {role} ({POLICY_HINT})"
    )


def rds_client(region: str | None, *, command: str) -> RDSClient:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, InvalidRegionError

    config = Config(
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT_S,
    )
    if region is not None and not region.strip():
        raise bad_region(region)
    try:
        # A session of its own: the environment and profile as they are now, nothing cached.
        return boto3.session.Session().client("rds", region_name=region, config=config)
    except InvalidRegionError as err:
        raise bad_region(region) from err
    except BotoCoreError as err:
        raise translate(err, command=command) from err


def bad_region(region: str | None) -> CliError:
    return CliError(
        "bad-region",
        f"{region!r} is not an AWS region name",
        fix="pass a region such as eu-west-1 (`aws ec2 describe-regions` lists them)",
    )


def error_code(err: BaseException) -> str | None:
    response = getattr(err, "response", None)
    if isinstance(response, Mapping):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def is_denied(err: BaseException) -> bool:
    return error_code(err) in DENIED


def denied_action(err: BaseException) -> str:
    return f"rds:{getattr(err, 'operation_name', 'Describe*')}"


def optional_failures() -> tuple[type[BaseException], ...]:
    """What an optional call may fail with and cost only what it would have shown: an AWS error
    (a denial, a throttle past the retries, a server error), a botocore failure, or a response
    botocore cannot parse (an HTTP 500 page; not a BotoCoreError)."""
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    return (ClientError, BotoCoreError, ResponseParserError)


def is_fatal(err: BaseException) -> bool:
    """A failure of the whole session (credentials, region, network), which no other call would
    escape either: reported as one error with its fix, never as a note."""
    from botocore import exceptions as bx

    return (
        isinstance(
            err,
            bx.NoRegionError
            | bx.ProfileNotFound
            | bx.NoCredentialsError
            | bx.PartialCredentialsError
            | bx.CredentialRetrievalError
            | bx.TokenRetrievalError
            | bx.SSOError
            | bx.ConnectionError
            | bx.HTTPClientError,
        )
        or error_code(err) in EXPIRED | REJECTED
    )


def failed(err: BaseException) -> str:
    """How an optional call ended, to follow its action's name in a note."""
    if is_denied(err):
        return "was denied"
    said = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return f"failed ({said[:MAX_REASON]})"


def translate(err: BaseException, *, command: str) -> CliError:
    """A botocore failure as a CliError with the fix."""
    from botocore import exceptions as bx

    needs = needed(command)
    if isinstance(err, bx.NoRegionError):
        return CliError(
            "no-region",
            "no AWS region is configured",
            fix="pass --region (e.g. --region eu-west-1), or set AWS_DEFAULT_REGION, or set a "
            "region in the profile (aws configure)",
        )
    if isinstance(err, bx.ProfileNotFound):
        return CliError("no-credentials", str(err), fix="set AWS_PROFILE to an existing profile")
    if isinstance(
        err,
        bx.NoCredentialsError
        | bx.PartialCredentialsError
        | bx.CredentialRetrievalError
        | bx.TokenRetrievalError
        | bx.SSOError,
    ):
        return CliError(
            "no-credentials",
            f"no usable AWS credentials: {err}",
            fix=f"{SET_CREDENTIALS}; {needs}",
        )
    if isinstance(err, bx.ConnectionError | bx.HTTPClientError):
        return CliError(
            "unreachable",
            f"could not reach the RDS API: {err}",
            fix="check the region name, the network and any HTTPS proxy "
            "(HTTPS_PROXY, AWS_ENDPOINT_URL_RDS)",
        )
    code = error_code(err)
    operation = getattr(err, "operation_name", "the call")
    if code in DENIED:
        return CliError(
            "access-denied",
            f"{denied_action(err)} was denied: {err}",
            fix=f"grant {denied_action(err)}; {needs}",
        )
    if code in EXPIRED:
        return CliError(
            "expired-credentials",
            f"the AWS credentials have expired ({code})",
            fix="refresh them (aws sso login, or new keys) and run again",
        )
    if code in REJECTED:
        return CliError(
            "rejected-credentials",
            f"AWS rejected the credentials ({code})",
            fix="check AWS_PROFILE / AWS_ACCESS_KEY_ID and the secret; " + needs,
        )
    return CliError(
        "aws-error",
        f"{operation} failed: {err}",
        fix=f"see the message above; {needs}",
    )
