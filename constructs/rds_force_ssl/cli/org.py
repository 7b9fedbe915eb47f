"""``rds-force-ssl audit`` over a scope: many accounts (a list, or every account of the AWS
Organization, optionally under some OUs), each through a role assumed with STS, and many regions
(a list, or every region enabled for the caller).

The judging is ``cli/audit.py``'s, unchanged: one account-region is one ``audit.audit`` on its
own RDS client, in a thread pool of ``parallel`` workers. So:

- at most ``parallel`` account-regions are read at once, and one account-region is read by one
  worker, one call at a time: never more than one request in flight against an account-region,
  whose RDS quota (a token bucket per account and region, 300 burst, 12/s sustained:
  https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-api-throttling.html) is never shared
  by two workers of this run;
- each client uses botocore's ``adaptive`` retry mode, which retries a throttle and then slows its
  own sending rate;
- each parameter group is read once per account-region (``audit.GroupCache``);
- each account's role is assumed once (a refusal too is asked once), and its credentials are
  botocore refreshable credentials, which re-assume the role before they expire (botocore
  refreshes 15 minutes ahead; a run never signs with credentials that have less than
  ``REFRESH_MARGIN_S`` left). A call that is nonetheless answered ``ExpiredToken`` re-assumes the
  role and reads the account-region again, once. The caller's own failure (no credentials,
  rejected by STS, STS unreachable) ends the run with its fix instead.
- the Security Hub import (``--security-hub``) comes from the account's own role: 100 findings a
  call, at most one call every ``IMPORT_INTERVAL_S`` per account-region.

Partial failure is normal: a role that cannot be assumed, a region that refuses the account's
credentials (an opt-in region not enabled there), a denied or failed listing: each costs only its
account-region(s), which end up in ``not_audited`` with the reason. Only the scope itself (listing
the organization, its regions) can end the run.

Resumable: with a checkpoint, each account-region's result is appended as one JSON line, flushed,
as soon as it is known; a later run with the same file reads the audited ones from it instead of
from AWS. An account-region that was not audited is tried again.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rds_force_ssl.cli import audit, aws
from rds_force_ssl.cli.errors import CliError
from rds_force_ssl.cli.output import printable
from rds_force_ssl.cli.scope import (  # the options, light enough for every start
    DEFAULT_PARALLEL,
)
from rds_force_ssl.facts import findings

if TYPE_CHECKING:
    from botocore.session import Session

ORG = "org"  # --accounts org: every ACTIVE account of the organization
ALL = "all"  # --regions all: every region enabled for the caller
MAX_PARALLEL = 256
SESSION_NAME = "rds-force-ssl-audit"
ROLE_DURATION_S = 3600
REFRESH_MARGIN_S = 300  # botocore refreshes at 15 min left, and must at 10: both are above this
# Security Hub: BatchImportFindings, about 10 calls a second per account and region (FACTS.md).
IMPORT_INTERVAL_S = 0.1
ACCOUNT_ID = re.compile(r"^\d{12}$")
OU_ID = re.compile(r"^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
ROLE_NAME = re.compile(r"^[\w+=,.@/-]{1,64}$")
NO_ROWS_NOTE = "no database or proxy here"


# ---- the scope -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Scope:
    """What to audit. ``accounts``: ids, or ``(ORG,)``; empty: the caller's own account.
    ``regions``: names, or ``(ALL,)``; empty: the SDK's configured region."""

    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    role_name: str | None = None
    external_id: str | None = None
    ous: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    parallel: int = DEFAULT_PARALLEL


def scope_of(args: Any) -> Scope:
    """The validated scope of parsed arguments (``add_scope_arguments``'), with ``--region``
    refused next to it."""
    if getattr(args, "region", None) is not None:
        raise CliError(
            "usage",
            "--region and the scope options exclude each other",
            fix="pass the regions as --regions (e.g. --regions eu-west-1,us-east-1)",
        )
    scope = Scope(
        accounts=split(args.accounts),
        regions=split(args.regions),
        role_name=args.role_name,
        external_id=args.external_id,
        ous=split(args.ou),
        exclude=split(args.exclude),
        parallel=DEFAULT_PARALLEL if args.parallel is None else args.parallel,
    )
    validate(scope)
    return scope


def split(value: str | None) -> tuple[str, ...]:
    """A comma-separated option as its items, blanks dropped, order kept, duplicates removed."""
    if value is None:
        return ()
    return tuple(dict.fromkeys(item.strip() for item in value.split(",") if item.strip()))


def validate(scope: Scope) -> None:
    """Every problem with the scope at once, each with its own fix."""
    problems: list[tuple[str, str]] = []  # (what is wrong, what to pass instead)
    listed = [a for a in scope.accounts if a != ORG]
    if ORG in scope.accounts and listed:
        problems.append(
            (
                "--accounts takes either 'org' or account ids, not both",
                "pass --accounts org, or only ids (e.g. --accounts 111111111111,222222222222)",
            )
        )
    bad = [a for a in (*listed, *scope.exclude) if not ACCOUNT_ID.match(a)]
    if bad:
        problems.append(
            (
                f"not 12-digit account ids: {', '.join(map(repr, bad))}",
                "write each account id as its 12 digits, leading zeros included",
            )
        )
    if scope.ous and scope.accounts != (ORG,):
        problems.append(("--ou needs --accounts org", "add --accounts org, or drop --ou"))
    bad_ous = [o for o in scope.ous if not OU_ID.match(o)]
    if bad_ous:
        problems.append(
            (
                f"not OU or root ids (ou-xxxx-yyyyyyyy, r-xxxx): {', '.join(bad_ous)}",
                "pass the ids `aws organizations list-roots` and "
                "`list-organizational-units-for-parent` show",
            )
        )
    if scope.exclude and not scope.accounts:
        problems.append(("--exclude needs --accounts", "add --accounts org (or ids)"))
    if scope.accounts and not scope.role_name:
        problems.append(
            (
                "--accounts needs --role-name, the role to assume in each account",
                "add --role-name RdsForceSslAudit (the member role's name)",
            )
        )
    if scope.role_name and not scope.accounts:
        problems.append(
            (
                "--role-name needs --accounts (a list of ids, or org)",
                "add --accounts org (or ids)",
            )
        )
    if scope.role_name and not ROLE_NAME.match(scope.role_name):
        problems.append(
            (
                f"{scope.role_name!r} is not an IAM role name (or path/name)",
                "pass the role's name (e.g. RdsForceSslAudit), not its ARN",
            )
        )
    if scope.external_id is not None and not scope.role_name:
        problems.append(("--external-id needs --role-name", "add --role-name, or drop it"))
    if ALL in scope.regions and len(scope.regions) > 1:
        problems.append(
            (
                "--regions takes either 'all' or region names, not both",
                "pass --regions all, or only names (e.g. --regions eu-west-1,us-east-1)",
            )
        )
    bad_regions = [r for r in scope.regions if r != ALL and not REGION.match(r)]
    if bad_regions:
        problems.append(
            (
                f"not AWS region names: {', '.join(map(repr, bad_regions))}",
                "pass region codes such as eu-west-1",
            )
        )
    if not 1 <= scope.parallel <= MAX_PARALLEL:
        problems.append(
            (
                f"--parallel must be between 1 and {MAX_PARALLEL}",
                f"e.g. --parallel {DEFAULT_PARALLEL}",
            )
        )
    if problems:
        raise CliError(
            "usage",
            "; ".join(problem for problem, _ in problems),
            fix="; ".join(dict.fromkeys(fix for _, fix in problems)),
        )


# ---- results -------------------------------------------------------------------------------
@dataclass
class Result:
    """One account-region: its rows, or why it was not audited (``error``)."""

    account: str
    region: str
    rows: list[audit.Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    complete: bool = True
    error: str | None = None
    import_error: str | None = None  # --security-hub: why the import failed
    imported: int = 0
    calls: int = 0  # API calls this account-region cost (its share of the role: 1 or 0)
    resumed: bool = False  # read from the checkpoint, not from AWS

    @property
    def audited(self) -> bool:
        return self.error is None


@dataclass
class OrgReport:
    results: list[Result]  # in scope order: account, then region
    scope_notes: list[str] = field(default_factory=list)

    @property
    def rows(self) -> list[audit.Row]:
        return [r for res in self.results for r in res.rows]

    @property
    def not_audited(self) -> list[Result]:
        return [res for res in self.results if not res.audited]

    def exit_code(self) -> int:
        """2 when an account-region was not audited or an import failed, whatever else was
        found; otherwise as for one region, an empty account-region counting as complete."""
        if self.not_audited or any(res.import_error for res in self.results):
            return 2
        return audit.exit_code(self.rows, complete=all(res.complete for res in self.results))


def row_json(row: audit.Row) -> dict[str, Any]:
    document = asdict(row)
    document["groups"] = list(row.groups)
    document["members"] = dict(row.members)
    document["ca_valid_till"] = row.ca_valid_till.isoformat() if row.ca_valid_till else None
    return document


def row_from_json(document: Mapping[str, Any]) -> audit.Row:
    values = dict(document)
    values["groups"] = tuple(values["groups"])
    till = values.get("ca_valid_till")
    values["ca_valid_till"] = datetime.fromisoformat(till) if till else None
    return audit.Row(**values)


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def finding(row: audit.Row, *, account: str, region: str) -> findings.Finding:
    """An audit row in the shared finding shape: FAILED when not enforced, PASSED when it is,
    NOT_AVAILABLE when it cannot be judged."""
    status = {True: findings.PASSED, False: findings.FAILED, None: findings.UNKNOWN}[row.enforced]
    detail = f"{row.setting} ({row.source}), {row.state}"
    if row.reason:
        detail += f": {row.reason}"
    return findings.Finding(
        account=account,
        region=region,
        kind=row.kind,
        name=row.name,
        status=status,
        state=row.state,
        detail=detail,
        engine=f"{row.engine} {row.version}".strip(),
        control=row.control,
        partition=partition(region),
    )


def result_findings(result: Result) -> list[findings.Finding]:
    return [finding(r, account=result.account, region=result.region) for r in result.rows]


# ---- checkpoint ----------------------------------------------------------------------------
class Checkpoint:
    """One JSON line per finished account-region, appended and flushed as it finishes, so that
    an interrupted run leaves every finished one behind (a line cut by a crash is ignored)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file: IO[str] | None = None

    def load(self) -> dict[tuple[str, str], Result]:
        """The account-regions audited by an earlier run (the last line for each wins)."""
        done: dict[tuple[str, str], Result] = {}
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return done
        except OSError as err:
            raise CliError(
                "bad-checkpoint",
                f"cannot read the checkpoint {self.path}: {err}",
                fix="pass a readable file, or a new path to start afresh",
            ) from err
        for line in text.splitlines():
            try:
                entry = json.loads(line)
                result = Result(
                    account=entry["account"],
                    region=entry["region"],
                    rows=[row_from_json(r) for r in entry["rows"]],
                    notes=list(entry["notes"]),
                    complete=bool(entry["complete"]),
                    error=entry.get("error"),
                    resumed=True,
                )
            except (ValueError, KeyError, TypeError):
                continue  # a line an interruption cut short: that account-region is redone
            key = (result.account, result.region)
            if result.audited:
                done[key] = result
            else:
                done.pop(key, None)
        return done

    def append(self, result: Result) -> None:
        line = json.dumps(
            {
                "account": result.account,
                "region": result.region,
                "rows": [row_json(r) for r in result.rows],
                "notes": result.notes,
                "complete": result.complete,
                "error": result.error,
            },
            default=str,
        )
        with self._lock:
            if self._file is None:
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


# ---- sessions and credentials --------------------------------------------------------------
def client_config() -> Any:
    from botocore.config import Config

    # Adaptive: retries throttles like standard mode, and then paces this client's own calls.
    return Config(
        retries={"mode": "adaptive", "max_attempts": aws.MAX_ATTEMPTS},
        connect_timeout=aws.CONNECT_TIMEOUT_S,
        read_timeout=aws.READ_TIMEOUT_S,
    )


def timestamp(value: Any) -> datetime:
    """botocore's timestamp parser, with ISO 8601 (what the query APIs send) parsed natively."""
    from botocore.utils import parse_timestamp

    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    said: datetime = parse_timestamp(value)
    return said


class RoleRefused(Exception):
    """The account's role could not be assumed: ``cause`` is what STS raised, ``asked`` whether
    this call asked (an AssumeRole call made) or reused an earlier refusal."""

    def __init__(self, cause: BaseException, *, asked: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.asked = asked


class Sessions:
    """The caller's one botocore session, and per account the role's credentials: assumed once
    (under that account's lock), kept, and refreshed before they expire. A client is made per
    account-region from the one session (service models parsed once), signed with the
    account's credentials as they are then: an account-region's reads take seconds, far less
    than the refresh margin."""

    def __init__(
        self,
        caller: Session,
        *,
        role_name: str | None,
        external_id: str | None,
        assume: Callable[..., Mapping[str, Any]] | None = None,
    ) -> None:
        self._caller = caller
        # Every listing carries timestamps the audit never reads but botocore parses, through
        # dateutil: a third of a client's CPU per account-region. ISO 8601 is parsed natively.
        factory = caller.get_component("response_parser_factory")
        factory.set_parser_defaults(timestamp_parser=timestamp)
        self._role_name = role_name
        self._external_id = external_id
        self._lock = threading.Lock()
        self._account_locks: dict[str, threading.Lock] = {}
        self._credentials: dict[str, Any] = {}  # account -> RefreshableCredentials
        self._refused: dict[str, BaseException] = {}  # account -> what AssumeRole raised
        self._sts: Any = None
        self._assume = assume or self._sts_assume
        self.assumed: dict[str, int] = {}  # account -> AssumeRole calls made

    def role_arn(self, account: str, region: str) -> str:
        return f"arn:{partition(region)}:iam::{account}:role/{self._role_name}"

    def _sts_assume(self, **kwargs: Any) -> Mapping[str, Any]:
        with self._lock:
            if self._sts is None:
                self._sts = self._caller.create_client("sts", config=client_config())
        answer: Mapping[str, Any] = self._sts.assume_role(**kwargs)
        return answer

    def credentials(self, account: str, region: str) -> tuple[Any, int]:
        """The account's credentials (None: the caller's own), assuming the role on first use,
        and the AssumeRole calls this made (1 or 0). A refusal is kept, so that the account's
        other regions do not ask again: ``RoleRefused`` each time."""
        if self._role_name is None:
            return None, 0
        with self._lock:
            lock = self._account_locks.setdefault(account, threading.Lock())
        with lock:
            if account in self._refused:
                raise RoleRefused(self._refused[account], asked=False)
            if account in self._credentials:
                return self._credentials[account], 0
            try:
                self._credentials[account] = self._assumed(account, region)
            except aws.optional_failures() as err:
                if aws.is_fatal(err):
                    # The caller's own credentials, or no way to reach STS: the whole run.
                    raise
                self._refused[account] = err
                raise RoleRefused(err, asked=True) from err
            return self._credentials[account], 1

    def forget(self, account: str) -> None:
        """Drop the account's credentials (they were refused as expired)."""
        with self._lock:
            self._credentials.pop(account, None)

    def client(self, credentials: Any, service: str, region: str) -> Any:
        keys: dict[str, Any] = {}
        if credentials is not None:
            # A refresh, when due, happens here (botocore's lock), before the client exists.
            frozen = credentials.get_frozen_credentials()
            keys = {
                "aws_access_key_id": frozen.access_key,
                "aws_secret_access_key": frozen.secret_key,
                "aws_session_token": frozen.token,
            }
        # A botocore session is not thread-safe; its clients are.
        with self._lock:
            return self._caller.create_client(
                service, region_name=region, config=client_config(), **keys
            )

    def _assumed(self, account: str, region: str) -> Any:
        from botocore.credentials import RefreshableCredentials

        kwargs: dict[str, Any] = {
            "RoleArn": self.role_arn(account, region),
            "RoleSessionName": SESSION_NAME,
            "DurationSeconds": ROLE_DURATION_S,
        }
        if self._external_id is not None:
            kwargs["ExternalId"] = self._external_id

        def refresh() -> dict[str, str]:
            answer = self._assume(**kwargs)
            with self._lock:
                self.assumed[account] = self.assumed.get(account, 0) + 1
            creds = answer["Credentials"]
            expiry = creds["Expiration"]
            if isinstance(expiry, datetime):
                expiry = expiry.isoformat()
            return {
                "access_key": creds["AccessKeyId"],
                "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"],
                "expiry_time": str(expiry),
            }

        # botocore re-assumes 15 minutes before expiry (10 at the latest): well above
        # REFRESH_MARGIN_S, so no call of this run is signed with credentials about to lapse.
        return RefreshableCredentials.create_from_metadata(
            metadata=refresh(), refresh_using=refresh, method="assume-role"
        )


# ---- reasons -------------------------------------------------------------------------------
def not_assumed(err: BaseException, arn: str) -> str:
    code = aws.error_code(err)
    said = aws.failed(err) if code else f"failed ({type(err).__name__}: {err})"
    if code in aws.DENIED:
        said = "was denied"
    return (
        f"role {arn} could not be assumed: sts:AssumeRole {said} (check the role exists, trusts "
        "the caller, and the external ID)"
    )


def region_failure(err: BaseException, region: str) -> str:
    code = aws.error_code(err)
    if code in aws.REJECTED:
        return (
            f"{region} refused the account's credentials ({code}): an opt-in region not enabled "
            "in this account? (enable it, or leave it out of --regions)"
        )
    if code in aws.EXPIRED:
        return f"the role's credentials were refused as expired twice ({code}); run again"
    if aws.is_denied(err):
        return f"{aws.denied_action(err)} was denied: grant it to the role (docs/cli/iam.md)"
    if isinstance(err, CliError):
        return err.message
    return f"{aws.denied_action(err)} {aws.failed(err)}"


def _tidy(notes: Iterable[str]) -> list[str]:
    # An empty account-region is ordinary across an organization: no note for it.
    return [printable(n, limit=2000) for n in notes if not n.startswith(NO_ROWS_NOTE)]


# ---- the run -------------------------------------------------------------------------------
class Auditor:
    """Reads account-regions, each on its own client, and imports their findings if asked."""

    def __init__(
        self,
        sessions: Sessions,
        *,
        security_hub: bool = False,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.sessions = sessions
        self.security_hub = security_hub
        self._now = now
        self._sleep = sleep

    def audit_target(self, account: str, region: str) -> Result:
        failures = aws.optional_failures()
        calls = [0]

        def count(**_: Any) -> None:
            calls[0] += 1

        for attempt in (1, 2):
            try:
                credentials, assumed = self.sessions.credentials(account, region)
            except failures as err:
                raise aws.translate(err, command="audit --accounts") from err
            except RoleRefused as refused:
                arn = self.sessions.role_arn(account, region)
                return Result(
                    account,
                    region,
                    error=printable(not_assumed(refused.cause, arn)),
                    calls=calls[0] + refused.asked,
                )
            calls[0] += assumed  # the account's AssumeRole, if this region made it
            try:
                client = self.sessions.client(credentials, "rds", region)
                client.meta.events.register("before-call.rds.*", count)
                report = audit.audit(client)
            except failures as err:
                if aws.error_code(err) in aws.EXPIRED and attempt == 1:
                    self.sessions.forget(account)
                    continue
                if getattr(err, "operation_name", None) == "AssumeRole":  # a refresh failed
                    reason = not_assumed(err, self.sessions.role_arn(account, region))
                else:
                    reason = region_failure(err, region)
                return Result(account, region, error=printable(reason), calls=calls[0])
            result = Result(
                account,
                region,
                rows=report.rows,
                notes=_tidy(report.notes),
                complete=report.complete,
                calls=calls[0],
            )
            if self.security_hub and result.rows:
                self._import(credentials, result)
            return result
        raise AssertionError("unreachable: the second attempt returns")

    def _import(self, credentials: Any, result: Result) -> None:
        """BatchImportFindings from the account's own role, 100 findings a call, at most one
        call every IMPORT_INTERVAL_S in this account-region."""
        now = self._now()
        documents = [findings.asff(f, now=now) for f in result_findings(result)]
        import_failures: tuple[type[BaseException], ...] = (
            *aws.optional_failures(),
            _ImportRefused,
        )
        try:
            hub = self.sessions.client(credentials, "securityhub", result.region)
            last = 0.0
            for batch in findings.batches(documents):
                wait_s = last + IMPORT_INTERVAL_S - time.monotonic()
                if wait_s > 0:
                    self._sleep(wait_s)
                last = time.monotonic()
                answer = hub.batch_import_findings(Findings=batch)
                result.calls += 1
                result.imported += int(answer.get("SuccessCount", 0))
                if answer.get("FailedCount"):
                    first = (answer.get("FailedFindings") or [{}])[0]
                    raise _ImportRefused(
                        f"{answer['FailedCount']} of {len(batch)} findings refused "
                        f"({first.get('ErrorCode', '?')}: {first.get('ErrorMessage', '')})"
                    )
        except import_failures as err:
            if isinstance(err, _ImportRefused):
                said = str(err)
            elif aws.is_denied(err):
                said = "securityhub:BatchImportFindings was denied (grant it to the role)"
            else:
                said = f"securityhub:BatchImportFindings {aws.failed(err)}"
            result.import_error = printable(
                f"Security Hub import: {said}; {result.imported} of {len(documents)} imported"
            )


class _ImportRefused(Exception):
    pass


def run(
    targets: Sequence[tuple[str, str]],
    auditor: Auditor,
    *,
    parallel: int,
    checkpoint: Checkpoint | None = None,
    on_result: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Every target's result, in target order; the checkpoint's audited ones are not read again.
    ``on_result`` runs in the calling thread as each finishes (the progress line)."""
    done = checkpoint.load() if checkpoint else {}
    results: dict[tuple[str, str], Result] = {t: done[t] for t in targets if t in done}
    for result in results.values():
        if on_result:
            on_result(result)
    todo = iter([t for t in targets if t not in results])
    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="audit")
    running: dict[Future[Result], tuple[str, str]] = {}

    def submit(n: int) -> None:
        # Submitted as workers free up, so that an interruption leaves nothing queued.
        for target in _take(todo, n):
            running[pool.submit(auditor.audit_target, *target)] = target

    try:
        submit(parallel)
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                target = running.pop(future)
                result = future.result()
                results[target] = result
                if checkpoint:
                    checkpoint.append(result)
                if on_result:
                    on_result(result)
            submit(parallel - len(running))
    finally:
        # On Ctrl-C: nothing new starts, the ones in flight end (each within its timeouts) and
        # are kept in the checkpoint too.
        pool.shutdown(wait=True, cancel_futures=True)
        if checkpoint:
            for future in running:
                if future.done() and not future.cancelled() and future.exception() is None:
                    checkpoint.append(future.result())
            checkpoint.close()
    return [results[t] for t in targets]


def _take(items: Iterator[tuple[str, str]], n: int) -> list[tuple[str, str]]:
    taken = []
    for _ in range(n):
        item = next(items, None)
        if item is None:
            break
        taken.append(item)
    return taken


# ---- resolving the scope -------------------------------------------------------------------
def list_accounts(caller: Session, *, ous: Sequence[str]) -> list[str]:
    """ACTIVE accounts of the organization, or of the OUs (recursively), in listing order."""
    org = caller.create_client("organizations", config=client_config())
    if not ous:
        found = aws.pages(org, "list_accounts", "Accounts", page_size=20)
        return [a["Id"] for a in found if a.get("Status", "ACTIVE") == "ACTIVE"]
    accounts: dict[str, None] = {}
    pending = list(ous)
    seen: set[str] = set()
    while pending:
        parent = pending.pop(0)
        if parent in seen:
            continue
        seen.add(parent)
        for a in aws.pages(
            org, "list_accounts_for_parent", "Accounts", page_size=20, ParentId=parent
        ):
            if a.get("Status", "ACTIVE") == "ACTIVE":
                accounts[a["Id"]] = None
        pending += [
            ou["Id"]
            for ou in aws.pages(
                org,
                "list_organizational_units_for_parent",
                "OrganizationalUnits",
                page_size=20,
                ParentId=parent,
            )
        ]
    return list(accounts)


def enabled_regions(caller: Session) -> list[str]:
    """The regions enabled for the caller (DescribeRegions without AllRegions): a member account
    where an opt-in one is off refuses it, and that account-region is listed not audited."""
    region = caller.get_config_variable("region") or "us-east-1"
    ec2: Any = caller.create_client("ec2", region_name=region, config=client_config())
    answer = ec2.describe_regions()
    return sorted(r["RegionName"] for r in answer.get("Regions", []))


def caller_account(caller: Session) -> str:
    """The caller's account id (sts:GetCallerIdentity needs no permission)."""
    sts: Any = caller.create_client("sts", config=client_config())
    return str(sts.get_caller_identity()["Account"])


def resolve(
    scope: Scope, caller: Session, *, command: str = "audit --accounts"
) -> list[tuple[str, str]]:
    """The (account, region) pairs of the scope; a failure here ends the run with its fix."""
    try:
        if scope.accounts == (ORG,):
            accounts = list_accounts(caller, ous=scope.ous)
        elif scope.accounts:
            accounts = list(scope.accounts)
        else:
            accounts = [caller_account(caller)]
        accounts = [a for a in accounts if a not in set(scope.exclude)]
        if scope.regions == (ALL,):
            regions = enabled_regions(caller)
        elif scope.regions:
            regions = list(scope.regions)
        else:
            region = caller.get_config_variable("region")
            if not region:
                raise aws.translate(_no_region(), command=command)
            regions = [region]
    except aws.optional_failures() as err:
        raise scope_error(err, command=command) from err
    if not accounts:
        raise CliError(
            "empty-scope",
            "no account is left to audit",
            fix="check --accounts, --ou and --exclude",
        )
    return [(a, r) for a in accounts for r in regions]


def _no_region() -> BaseException:
    from botocore.exceptions import NoRegionError

    return NoRegionError()


def scope_error(err: BaseException, *, command: str = "audit --accounts") -> CliError:
    if aws.is_denied(err):
        operation = getattr(err, "operation_name", "the call")
        return CliError(
            "access-denied",
            f"listing the scope failed: {operation} was denied",
            fix="grant the caller policy in docs/cli/iam.md (organizations:ListAccounts, "
            "ListAccountsForParent, ListOrganizationalUnitsForParent, ec2:DescribeRegions), or "
            "pass --accounts and --regions as lists",
        )
    return aws.translate(err, command=command)


# ---- probe: discovery over a scope ---------------------------------------------------------
def discover(scope: Scope, caller: Session) -> Any:
    """``probe``'s discovery (``cli/discover.py``) in every account-region of the scope, in
    parallel: one ``Discovery`` whose targets name their account and region. An account-region
    that cannot be listed costs only its endpoints: a note with the reason, and the run is
    incomplete."""
    import dataclasses

    from rds_force_ssl.cli import discover as discovery

    targets = resolve(scope, caller, command="probe --accounts")
    sessions = Sessions(caller, role_name=scope.role_name, external_id=scope.external_id)
    failures = aws.optional_failures()

    def one(target: tuple[str, str]) -> tuple[Any, str | None]:
        account, region = target
        try:
            credentials, _ = sessions.credentials(account, region)
        except failures as err:
            raise aws.translate(err, command="probe --accounts") from err
        except RoleRefused as refused:
            return None, not_assumed(refused.cause, sessions.role_arn(account, region))
        try:
            return discovery.discover(sessions.client(credentials, "rds", region)), None
        except failures as err:
            return None, region_failure(err, region)

    merged = discovery.Discovery()
    with ThreadPoolExecutor(max_workers=scope.parallel, thread_name_prefix="discover") as pool:
        for (account, region), (found, reason) in zip(targets, pool.map(one, targets), strict=True):
            where = printable(f"{account} {region}")
            if found is None:
                merged.complete = False
                merged.notes.append(printable(f"{where} not discovered: {reason}", limit=2000))
                continue
            merged.complete = merged.complete and found.complete
            merged.notes += [printable(f"{where}: {n}", limit=2000) for n in found.notes]
            merged.targets += [
                dataclasses.replace(t, resource=f"{where} {t.resource or ''}".strip())
                for t in found.targets
            ]
    return merged
