"""``rds-force-ssl probe``: ask endpoints, without credentials, whether they refuse plaintext.

The wire exchange and the verdicts are in ``cli/probe.py``; region discovery in
``cli/discover.py``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

from rds_force_ssl.cli.errors import CliError, check_text, check_timeout
from rds_force_ssl.cli.output import dump, printable, progress, table

if TYPE_CHECKING:
    from rds_force_ssl.cli import Parser
    from rds_force_ssl.cli.probe import Result

NAME = "probe"
# probe's defaults, stated here only: importing probe to read them would put its engine table in
# front of verify's login on every run.
PROBE_TIMEOUT_S = 5.0
PROBE_CONCURRENCY = 64
# A detail cell: the server strings in it are cut where quoted; this bounds the sum.
MAX_DETAIL = 2000


def add_parser(subparsers: argparse._SubParsersAction[Parser]) -> None:
    from rds_force_ssl.cli.engines import DEFAULT_ENGINE, ENGINES

    default = ENGINES[DEFAULT_ENGINE]
    p = subparsers.add_parser(
        NAME,
        help="ask endpoints, without credentials, whether they refuse plaintext",
        description="Send each endpoint a plaintext start-up and read the first answer; never "
        "a password. ENFORCED: refused in plaintext, let through to authentication over TLS; "
        "NOT_ENFORCED: asked for a "
        "password or let in; UNREACHABLE: no connection or no answer; INCONCLUSIVE: an answer "
        "that does not tell. PostgreSQL endpoints only: MySQL and MariaDB refuse a plaintext "
        "client only after checking its password, so no credential-free probe can tell; "
        "--region counts them in a note (use verify --engine mysql, or audit).",
        epilog="Exit codes: 0 every endpoint ENFORCED; 1 any NOT_ENFORCED; 2 otherwise.",
    )
    p.add_argument(
        "endpoints",
        nargs="*",
        metavar="ENDPOINT",
        help=f"host[:port] (port {default.default_port})",
    )
    p.add_argument("--region", help="also probe every endpoint found in this AWS region")
    from rds_force_ssl.cli.scope import add_scope_arguments

    add_scope_arguments(
        p.add_argument_group(
            "scope: many accounts and regions",
            "Any of these also probes every endpoint found in every (account, region) of the "
            "scope; one that cannot be listed is noted, with the reason, and the run is "
            "incomplete.",
        ),
        work="discovered",
    )
    p.add_argument(
        "--user",
        default="rds_force_ssl_probe",
        help="user name in the start-up (pg_hba.conf may match on it; no password is ever "
        "sent); default rds_force_ssl_probe",
    )
    p.add_argument("--dbname", default=default.default_dbname, help="database name in the start-up")
    p.add_argument(
        "--timeout",
        type=float,
        default=PROBE_TIMEOUT_S,
        help=f"seconds per endpoint for its connections and answers, every address of its name "
        f"included; resolving the name is not bounded by it (default {PROBE_TIMEOUT_S:g}, at "
        "most 3600)",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=PROBE_CONCURRENCY,
        help=f"endpoints probed at once (default {PROBE_CONCURRENCY})",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace, *, out: IO[str], err: IO[str]) -> int:
    from rds_force_ssl.cli import probe
    from rds_force_ssl.cli.engines import DEFAULT_ENGINE, ENGINES
    from rds_force_ssl.cli.org import scope_of
    from rds_force_ssl.cli.scope import scope_given
    from rds_force_ssl.cli.wire import Identity, parse_endpoint

    if not args.endpoints and args.region is None and not scope_given(args):
        raise CliError(
            "usage",
            "nothing to probe",
            fix="name endpoints (host[:port] ...) or pass --region to find them",
        )
    if not (math.isfinite(args.timeout) and args.timeout > 0) or args.concurrency < 1:
        raise CliError(
            "usage",
            "--timeout must be > 0 (and finite), and --concurrency >= 1",
            fix="e.g. --timeout 5 --concurrency 64",
        )
    check_timeout(args.timeout)
    check_text(args.user, option="--user")
    check_text(args.dbname, option="--dbname")
    try:
        targets = [
            probe.Target(parse_endpoint(e, default_port=ENGINES[DEFAULT_ENGINE].default_port))
            for e in args.endpoints
        ]
    except ValueError as error:
        raise CliError("usage", f"bad endpoint {error}", fix="write host[:port]") from error
    notes: list[str] = []
    complete = True
    scope = scope_of(args) if scope_given(args) else None
    if args.region is not None or scope is not None:
        found = _discover(args.region) if scope is None else _discover_scope(scope)
        named = {t.endpoint for t in targets}
        targets += [t for t in found.targets if t.endpoint not in named]
        notes += found.notes
        complete = found.complete
        if not found.targets:
            where = args.region or "the scope"
            notes.append(f"no endpoint of a probe-able engine found in {where}")
    results = probe.probe_all(
        targets,
        who=Identity(args.user, args.dbname),
        timeout=args.timeout,
        concurrency=args.concurrency,
        progress=progress(err, "probed"),
    )
    code = probe.exit_code(results, complete=complete)
    if args.json:
        dump(render_json(results, notes, complete, code), out)
    else:
        out.write(render_table(results, notes, code))
    return code


def _discover(region: str) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    from rds_force_ssl.cli import aws
    from rds_force_ssl.cli.discover import discover

    command = "probe --region"
    client = aws.rds_client(region, command=command)
    try:
        return discover(client)
    except (BotoCoreError, ClientError) as error:
        raise aws.translate(error, command=command) from error


def _discover_scope(scope: Any) -> Any:
    import botocore.session

    from rds_force_ssl.cli import org

    return org.discover(scope, botocore.session.Session())


def _counts(results: Sequence[Result]) -> dict[str, int]:
    from rds_force_ssl.cli.wire import Verdict

    return {str(v): sum(r.outcome.verdict == v for r in results) for v in Verdict}


def render_json(
    results: Sequence[Result], notes: Sequence[str], complete: bool, code: int
) -> dict[str, Any]:
    return {
        "endpoints": [
            {
                "endpoint": str(r.target.endpoint),
                "verdict": str(r.outcome.verdict),
                "detail": r.outcome.detail,
                "engine": r.target.engine,
                "resource": r.target.resource,
                "evidence": dict(r.outcome.evidence),
            }
            for r in results
        ],
        "counts": _counts(results),
        "complete": complete,
        "notes": list(notes),
        "exit_code": code,
    }


def render_table(results: Sequence[Result], notes: Sequence[str], code: int) -> str:
    with_resource = any(r.target.resource for r in results)
    headers = ("ENDPOINT", "VERDICT", *(("RESOURCE",) if with_resource else ()), "DETAIL")
    body = table(
        headers,
        [
            (
                str(r.target.endpoint),
                str(r.outcome.verdict),
                *((r.target.resource or "-",) if with_resource else ()),
                # The server's words (cut where quoted): no control character or escape
                # sequence reaches the terminal (--json escapes them as JSON does).
                printable(r.outcome.detail, limit=MAX_DETAIL),
            )
            for r in results
        ],
    )
    counts = ", ".join(f"{n} {v}" for v, n in _counts(results).items())
    return body + f"{counts} (exit {code})\n" + "".join(f"note: {n}\n" for n in notes)
