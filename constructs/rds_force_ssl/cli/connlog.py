"""Connection history from PostgreSQL's log, without a login: who logged in without TLS.

With ``log_connections`` on (dynamic in the group the database uses; a newly associated group,
as a database on a default group gets, waits for a reboot), PostgreSQL writes one line per
authorized connection, and says ``SSL enabled (...)`` when the connection uses TLS
(src/backend/utils/init/postinit.c, ``PerformAuthentication``)::

    connection authorized: user=app database=appdb application_name=psql SSL enabled
    (protocol=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384, bits=256)

(one line; no ``application_name=`` when the client sent none, ``compression=`` inside the
parentheses before PostgreSQL 13, a ``GSS (...)`` part after it with GSSAPI, and
``replication connection authorized: user=...`` without a database for a walsender). RDS and
Aurora PostgreSQL prefix every line with ``log_line_prefix = '%t:%r:%u@%d:[%p]:'``::

    2026-01-02 03:04:05 UTC:10.0.0.5(43210):app@appdb:[1234]:LOG:  connection authorized: ...

so the client's address is in the prefix (``%r``, its port in parentheses; ``[local]`` for a
Unix-domain socket). The lines come from a local file (read in large blocks: memory stays
bounded and the scan runs near the speed of the disk) or from CloudWatch Logs, where RDS
exports the ``postgresql`` log to ``/aws/rds/instance/<id>/postgresql`` (a cluster:
``/aws/rds/cluster/<id>/postgresql``).

What a line cannot tell: the application name is whatever the client sent, logged as it came
(printable ASCII; PostgreSQL 15 puts ``?`` for the rest, and does not shorten it), and any
session allowed to run SQL while ``log_statement`` is on can write text that reads like a log
line. The ``SSL enabled (...)`` part comes after the name, so a plaintext client can name
itself ``x SSL enabled (protocol=..., cipher=..., bits=...)``: a line is read as TLS only when
``SSL enabled (`` occurs in it once, at its end, with a TLS protocol and a cipher of that
protocol's form; any other line with ``SSL enabled (`` in it is ambiguous (neither TLS nor
plaintext, and the view is incomplete). A name that copies a real suffix exactly cannot be
told from a TLS login by its line: the live view (``pg_stat_ssl``) can.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from rds_force_ssl.cli.errors import CliError
from rds_force_ssl.facts.engines import TLS13, TLS_PROTOCOLS

PARAMETER = "log_connections"
RDS_LINE_PREFIX = "%t:%r:%u@%d:[%p]:"
NEEDLE = b"connection authorized: "
BLOCK = 32 << 20  # bytes read at a time; a longer line is skipped and counted
MAX_GROUPS = 100_000  # distinct (day, client, message) keys kept; past it the scan stops
MAX_EVENTS = 1_000_000  # CloudWatch events read at most
PAGE_EVENTS = 10_000  # events per FilterLogEvents page (the API's most)
LOG_GROUP = "/aws/rds/{kind}/{id}/postgresql"
# The lines a scan keeps: the day, the client's address (its port left out) and the message
# after "connection authorized: ". Everything per line happens in C (findall, Counter); the
# messages, far fewer than the lines, are parsed afterwards.
_LINE = re.compile(
    rb"^(\d{4}-\d\d-\d\d) [^:\n]*:[^:\n]*:[^:\n]*:"  # %t: "2026-01-02 03:04:05 UTC:"
    rb"(\[local\]|[^()\n]*)(?:\(\d+\))?:"  # %r: "10.0.0.5(43210)", "[local]" or nothing
    rb"[^\n]*?:\[\d+\]:LOG:  (?:replication )?connection authorized: ([^\n]*)$",
    re.MULTILINE,
)
_MESSAGE = re.compile(
    r"user=(?P<user>.*?)(?: database=(?P<database>.*?))?(?: application_name=(?P<app>.*?))?"
    r"(?P<ssl> SSL enabled \(protocol=(?P<protocol>[^,]*), cipher=(?P<cipher>[^,]*), "
    r"bits=\d+(?:, compression=\w+)?\))?(?: GSS \(.*\))?$"
)
SSL_MARK = "SSL enabled ("  # what PostgreSQL writes before a TLS connection's details
# What OpenSSL reports (SSL_get_version, SSL_get_cipher): TLS 1.3's five suites by their IANA
# names, older protocols' by OpenSSL's (ECDHE-RSA-AES256-GCM-SHA384, AES128-SHA, ...).
_TLS13_CIPHER = re.compile(
    r"TLS_(?:AES_128_GCM_SHA256|AES_256_GCM_SHA384|CHACHA20_POLY1305_SHA256"
    r"|AES_128_CCM_SHA256|AES_128_CCM_8_SHA256)"
)
_OLDER_CIPHER = re.compile(
    r"(?:[A-Z0-9]+-)*(?:AES|CAMELLIA|ARIA|CHACHA20|DES|RC4|SEED|IDEA)"
    r"[A-Z0-9-]*"
)
# The engine table's protocol names, and SSLv3, which an old OpenSSL could still report.
_PROTOCOL = re.compile("|".join(re.escape(name) for name in (*TLS_PROTOCOLS, "SSLv3")))


class Readable(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...


@dataclass(frozen=True)
class Login:
    """One kind of authorized connection: who, from where, how, on which day, how often."""

    day: str
    client: str  # the address, without the port; "[local]" for a Unix-domain socket
    user: str
    database: str | None
    application: str
    protocol: str | None  # None: no TLS
    cipher: str | None
    count: int
    ambiguous: bool = False  # "SSL enabled (" in a line not read as TLS: neither TLS nor not


@dataclass
class Scan:
    """What a scan found: the logins in the window, and what it could not read."""

    logins: list[Login] = field(default_factory=list)
    lines: int = 0  # "connection authorized" lines seen, in the window or not
    unparsed: int = 0  # such lines not in RDS's log_line_prefix format
    skipped_long: int = 0  # lines longer than BLOCK, skipped
    bytes_read: int = 0
    truncated: str | None = None  # why the scan stopped early


def window_start(days: int, *, now: datetime) -> datetime:
    """The first moment of the window: 00:00 UTC of the day ``days - 1`` days before ``now``'s
    (``--days 1`` is today, UTC)."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days - 1)


# (user, database, application, protocol, cipher, ambiguous)
Parsed = tuple[str, str | None, str, str | None, str | None, bool]


def plausible_tls(protocol: str, cipher: str) -> bool:
    """Could OpenSSL have reported this protocol and cipher together?"""
    if not _PROTOCOL.fullmatch(protocol):
        return False
    if protocol == TLS13:
        return bool(_TLS13_CIPHER.fullmatch(cipher))
    return bool(_OLDER_CIPHER.fullmatch(cipher))


def parse_message(message: str) -> Parsed | None:
    """(user, database, application, protocol, cipher, ambiguous) from what follows
    "connection authorized: "; None if it does not read like PostgreSQL's.

    The application name comes before the TLS part and is the client's own text: the line is
    TLS only when ``SSL enabled (`` is in it once, as its TLS part, with a protocol and cipher
    OpenSSL could report. Any other line that has ``SSL enabled (`` in it is ambiguous
    (protocol None: never TLS): a TLS client whose name says it, or a plaintext one posing
    as TLS."""
    m = _MESSAGE.match(message)
    if m is None:
        return None
    marks = message.count(SSL_MARK)
    tls = bool(m["ssl"]) and marks == 1 and plausible_tls(m["protocol"], m["cipher"])
    return (
        m["user"],
        m["database"],
        m["app"] or "",
        m["protocol"] if tls else None,
        m["cipher"] if tls else None,
        marks > 0 and not tls,
    )


def _logins(counted: Counter[tuple[bytes, bytes, bytes]], since_day: str, scan: Scan) -> None:
    # Far fewer messages than keys (each comes from many clients and days): parsed once each.
    messages: dict[bytes, Parsed | None] = {}
    for (day_b, client_b, message_b), count in counted.items():
        day = day_b.decode()
        if day < since_day:
            continue
        if message_b not in messages:
            messages[message_b] = parse_message(message_b.decode(errors="replace"))
        parsed = messages[message_b]
        if parsed is None:
            scan.unparsed += count
            continue
        user, database, application, protocol, cipher, ambiguous = parsed
        client = client_b.decode(errors="replace")
        scan.logins.append(
            Login(day, client, user, database, application, protocol, cipher, count, ambiguous)
        )


def blocks(stream: Readable, scan: Scan, *, size: int = BLOCK) -> Iterator[bytes]:
    """``stream`` in blocks of whole lines of at most ``size`` bytes, in one buffer: a line
    longer than that is skipped and counted."""
    buf = bytearray(size)
    view = memoryview(buf)
    keep = 0  # bytes of an unfinished line at the start of buf
    skipping = False  # inside a line too long to keep
    while True:
        n = stream.readinto(view[keep:])
        if not n:
            if keep and not skipping:
                yield bytes(view[:keep])
            return
        scan.bytes_read += n
        end = keep + n
        start = 0
        if skipping:
            newline = buf.find(b"\n", 0, end)
            if newline < 0:
                keep = 0
                continue
            skipping = False
            start = newline + 1
        cut = buf.rfind(b"\n", start, end) + 1
        if cut == 0:  # no line ends in what is left
            if start == 0 and end == size:  # a full buffer: the line is too long
                scan.skipped_long += 1
                skipping = True
                keep = 0
            else:
                view[: end - start] = view[start:end]
                keep = end - start
            continue
        if cut > start:
            yield bytes(view[start:cut])
        rest = end - cut
        view[:rest] = view[cut:end]
        keep = rest


def scan_file(
    stream: Readable,
    *,
    since: datetime,
    deadline: float | None = None,
    max_groups: int = MAX_GROUPS,
    block: int = BLOCK,
) -> Scan:
    """Every "connection authorized" line of a log file in RDS's format, from ``since`` (whole
    UTC days), counted by (day, client address, message)."""
    scan = Scan()
    counted: Counter[tuple[bytes, bytes, bytes]] = Counter()
    for chunk in blocks(stream, scan, size=block):
        authorized = [line for line in chunk.split(b"\n") if NEEDLE in line]
        if not authorized:
            continue
        scan.lines += len(authorized)
        found = _LINE.findall(b"\n".join(authorized))
        scan.unparsed += len(authorized) - len(found)
        counted.update(found)
        if len(counted) > max_groups:
            scan.truncated = (
                f"more than {max_groups} distinct (day, client, user, application) kinds of "
                f"connection: the scan stopped after {scan.bytes_read} bytes"
            )
            break
        if deadline is not None and time.monotonic() > deadline:
            scan.truncated = f"--timeout reached after {scan.bytes_read} bytes"
            break
    _logins(counted, f"{since:%Y-%m-%d}", scan)
    return scan


def log_group(*, instance: str | None = None, cluster: str | None = None) -> str:
    kind, ident = ("instance", instance) if instance else ("cluster", cluster)
    return LOG_GROUP.format(kind=kind, id=ident)


def scan_events(
    messages: Iterable[str],
    *,
    since: datetime,
    scan: Scan | None = None,
    max_groups: int = MAX_GROUPS,
) -> Scan:
    """The same as ``scan_file``, over log lines one by one (CloudWatch events)."""
    scan = scan or Scan()
    counted: Counter[tuple[bytes, bytes, bytes]] = Counter()
    for message in messages:
        line = message.rstrip("\n").encode()
        if NEEDLE not in line:
            continue
        scan.lines += 1
        found = _LINE.findall(line)
        if not found:
            scan.unparsed += 1
            continue
        counted.update(found[:1])
        if len(counted) > max_groups:
            scan.truncated = (
                f"more than {max_groups} distinct (day, client, user, application) kinds of "
                f"connection: the scan stopped after {scan.lines} connection lines"
            )
            break
    _logins(counted, f"{since:%Y-%m-%d}", scan)
    return scan


def cloudwatch_messages(
    client: Any,
    group: str,
    *,
    since: datetime,
    until: datetime,
    deadline: float,
    scan: Scan,
    max_events: int = MAX_EVENTS,
) -> Iterator[str]:
    """The "connection authorized" events of ``group`` between ``since`` and ``until``, page
    by page (FilterLogEvents, the filter applied by CloudWatch), until ``max_events`` or the
    deadline; ``scan.truncated`` says so when either cut it short."""
    kwargs: dict[str, Any] = {
        "logGroupName": group,
        "startTime": int(since.timestamp() * 1000),
        "endTime": int(until.timestamp() * 1000),
        "filterPattern": '"connection authorized"',
        "limit": PAGE_EVENTS,
    }
    read = 0
    while True:
        if time.monotonic() > deadline:
            scan.truncated = f"--timeout reached after {read} events of {group}"
            return
        page = client.filter_log_events(**kwargs)
        for event in page.get("events", []):
            read += 1
            yield str(event.get("message", ""))
            if read >= max_events:
                scan.truncated = f"stopped at {max_events} events of {group}"
                return
        token = page.get("nextToken")
        if not token or token == kwargs.get("nextToken"):
            return
        kwargs["nextToken"] = token


def logs_error(err: BaseException, group: str, region: str | None) -> CliError:
    """A CloudWatch Logs failure, with the fix."""
    response = getattr(err, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    where = f" in {region}" if region else ""
    from rds_force_ssl.cli import aws

    if code == "ResourceNotFoundException":
        return CliError(
            "no-log-group",
            f"no log group {group}{where}: the database does not export its postgresql log",
            fix="export it (CDK: cloudwatch_logs_exports=['postgresql']; CLI: aws rds "
            "modify-db-instance --cloudwatch-logs-export-configuration "
            "'EnableLogTypes=[postgresql]'), or check the identifier and --region",
        )
    if code in ("AccessDeniedException", "AccessDenied"):
        return CliError(
            "access-denied",
            f"logs:FilterLogEvents on {group} was denied",
            fix=f"grant logs:FilterLogEvents on the log group {group} (docs/cli/iam.md)",
        )
    from botocore import exceptions as bx

    grant = f"the identity needs logs:FilterLogEvents on the log group {group} (docs/cli/iam.md)"
    said = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
    if isinstance(
        err,
        bx.NoCredentialsError
        | bx.PartialCredentialsError
        | bx.CredentialRetrievalError
        | bx.TokenRetrievalError
        | bx.SSOError
        | bx.ProfileNotFound,
    ):
        return CliError(
            "no-credentials",
            f"no usable AWS credentials to read {group}{where}: {said}",
            fix=f"{aws.SET_CREDENTIALS}; {grant}",
        )
    return CliError(
        "cloudwatch-error",
        f"could not read {group}{where}: {said}",
        fix="check the credentials, --region and the network (HTTPS_PROXY, "
        f"AWS_ENDPOINT_URL_CLOUDWATCH_LOGS); {grant}",
    )


def logs_client(region: str | None) -> Any:
    """A CloudWatch Logs client with bounded retries and timeouts."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    from rds_force_ssl.cli import aws

    config = Config(
        retries={"mode": "standard", "max_attempts": aws.MAX_ATTEMPTS},
        connect_timeout=aws.CONNECT_TIMEOUT_S,
        read_timeout=aws.READ_TIMEOUT_S,
    )
    try:
        return boto3.session.Session().client("logs", region_name=region, config=config)
    except BotoCoreError as err:
        raise CliError(
            "no-region" if "region" in str(err).lower() else "aws-error",
            f"cannot make a CloudWatch Logs client: {err}",
            fix="pass --region (e.g. --region eu-west-1), or set AWS_DEFAULT_REGION",
        ) from err


def scan_cloudwatch(
    client: Any,
    group: str,
    *,
    since: datetime,
    until: datetime,
    deadline: float,
    region: str | None = None,
    max_events: int = MAX_EVENTS,
) -> Scan:
    from botocore.exceptions import BotoCoreError, ClientError

    scan = Scan()
    messages = cloudwatch_messages(
        client,
        group,
        since=since,
        until=until,
        deadline=deadline,
        scan=scan,
        max_events=max_events,
    )
    try:
        return scan_events(messages, since=since, scan=scan)
    except (ClientError, BotoCoreError) as err:
        raise logs_error(err, group, region) from err
