"""``rds-force-ssl audit``: report, for every database and RDS proxy of a region, whether its
SSL-only setting is configured and in effect.

The reading and the judging are in ``cli/audit.py``; AWS errors are translated by ``cli/aws.py``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rds_force_ssl.cli.errors import CliError
from rds_force_ssl.cli.output import dump, printable, progress, table
from rds_force_ssl.cli.scope import add_scope_arguments, scope_given

if TYPE_CHECKING:
    from rds_force_ssl.cli import Parser
    from rds_force_ssl.cli.audit import Report
    from rds_force_ssl.cli.org import OrgReport
    from rds_force_ssl.cli.org import Result as OrgResult
    from rds_force_ssl.facts.findings import Finding

NAME = "audit"
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C


def add_parser(subparsers: argparse._SubParsersAction[Parser]) -> None:
    # The setting names in the help come from the engine table.
    from rds_force_ssl.facts import engines as engine_table

    ssl_settings = ", ".join(
        dict.fromkeys(row.parameter for row in engine_table.ENGINES if row.parameter)
    )
    a = subparsers.add_parser(
        NAME,
        help="report every database and RDS proxy in a region",
        description="For each DB instance, DB cluster and RDS Proxy of the region: the "
        f"engine's SSL-only setting ({ssl_settings}, {engine_table.PROXY.property}), where "
        "its value comes from, whether it is in effect or only pending a reboot, the Security "
        "Hub control that checks it, and the CA. Oracle and Db2, which no parameter makes "
        "SSL-only, are reported not applicable, with the reason.",
        epilog="Exit codes: 0 every resource effectively enforced; 1 one is not; 2 one cannot "
        "be judged (unreadable, not applicable), a listing was denied, or nothing was found; "
        "with a scope, also 2 when an account-region was not audited or a Security Hub import "
        "failed, whatever else was found; 130 interrupted (resume with --checkpoint).",
    )
    a.add_argument("--region", help="AWS region (default: the AWS SDK's configuration)")
    a.add_argument("--json", action="store_true", help="machine-readable output")
    a.add_argument(
        "--format",
        choices=("asff", "ocsf"),
        help="print the findings as a JSON list, in the AWS Security Finding Format (what "
        "securityhub:BatchImportFindings takes) or as OCSF 1.1 Compliance Findings",
    )
    scope = a.add_argument_group(
        "scope: many accounts and regions",
        "Any of these audits every (account, region) of the scope in parallel, as tables per "
        "account-region plus totals; an account-region that cannot be read is listed as not "
        "audited, with the reason, and the exit code is 2.",
    )
    add_scope_arguments(scope, work="read")
    scope.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="append each finished account-region to FILE (JSON lines); a rerun with the same "
        "FILE reads the audited ones from it instead of from AWS",
    )
    scope.add_argument(
        "--security-hub",
        action="store_true",
        help="import the findings (ASFF) into each account-region's Security Hub, from the "
        "account's own role",
    )


def scoped(args: argparse.Namespace) -> bool:
    return scope_given(args) or bool(args.checkpoint or args.security_hub)


def run(args: argparse.Namespace, *, out: IO[str], err: IO[str]) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from rds_force_ssl.cli import audit, aws

    if args.json and args.format:
        raise CliError("usage", "--json and --format exclude each other", fix="pass one of them")
    if scoped(args):
        return run_scoped(args, out=out, err=err)
    client = aws.rds_client(args.region, command=NAME)
    try:
        report = audit.audit(client, progress=progress(err, "audited"))
        account = _caller_account() if args.format else ""
    except (BotoCoreError, ClientError) as error:
        raise aws.translate(error, command=NAME) from error
    code = audit.exit_code(report.rows, complete=report.complete)
    if args.format:
        from rds_force_ssl.cli import org

        result = org.Result(account, client.meta.region_name, rows=report.rows)
        dump_findings(args.format, org.result_findings(result), out)
        for note in report.notes:
            err.write(f"note: {note}\n")
    elif args.json:
        dump(render_json(report, code), out)
    else:
        out.write(render_table(report, code, now=datetime.now(UTC)))
    return code


def _caller_account() -> str:
    import boto3

    sts = boto3.session.Session().client("sts")
    return str(sts.get_caller_identity()["Account"])


def dump_findings(kind: str, found: list[Finding], out: IO[str]) -> None:
    from rds_force_ssl.facts import findings

    now = datetime.now(UTC)
    if kind == "asff":
        documents = [findings.asff(f, now=now) for f in found]
    else:
        documents = [findings.ocsf(f, now=now, version=_version()) for f in found]
    json.dump(documents, out, indent=2)
    out.write("\n")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rds-force-ssl")
    except PackageNotFoundError:
        return ""


def run_scoped(args: argparse.Namespace, *, out: IO[str], err: IO[str]) -> int:
    import botocore.session

    from rds_force_ssl.cli import org

    scope = org.scope_of(args)
    caller = botocore.session.Session()
    targets = org.resolve(scope, caller)
    sessions = org.Sessions(caller, role_name=scope.role_name, external_id=scope.external_id)
    auditor = org.Auditor(sessions, security_hub=args.security_hub)
    checkpoint = org.Checkpoint(Path(args.checkpoint)) if args.checkpoint else None
    try:
        results = org.run(
            targets,
            auditor,
            parallel=scope.parallel,
            checkpoint=checkpoint,
            on_result=org_progress(err, len(targets)),
        )
    except KeyboardInterrupt:
        resume = (
            f"rerun the same command to resume from {args.checkpoint}"
            if args.checkpoint
            else "nothing was kept: pass --checkpoint FILE to make a run resumable"
        )
        err.write(f"\ninterrupted, nothing was concluded; {resume}\n")
        return EXIT_INTERRUPTED
    report = org.OrgReport(results)
    code = report.exit_code()
    if args.format:
        found = [f for res in results for f in org.result_findings(res)]
        dump_findings(args.format, found, out)
        err.write(render_not_audited(report))
    elif args.json:
        dump(render_org_json(report, code), out)
    else:
        out.write(render_org_table(report, code, now=datetime.now(UTC)))
    return code


def org_progress(err: IO[str], total: int) -> Callable[[OrgResult], None] | None:
    """On a terminal: account-regions done / total, databases judged, errors; on a pipe,
    nothing."""
    if not err.isatty():
        return None
    done = [0, 0, 0]

    def show(result: OrgResult) -> None:
        done[0] += 1
        done[1] += len(result.rows)
        done[2] += (not result.audited) + bool(result.import_error)
        err.write(
            f"\raudited {done[0]}/{total} account-regions, {done[1]} databases judged, "
            f"{done[2]} errors"
        )
        if done[0] == total:
            err.write("\n")
        err.flush()

    return show


def render_org_json(report: OrgReport, code: int) -> dict[str, Any]:
    from rds_force_ssl.cli.audit import Report

    rows = report.rows
    return {
        "account_regions": [
            {
                "account": res.account,
                "region": res.region,
                **render_json(Report(res.rows, res.notes, res.complete), code),
                "security_hub_imported": res.imported,
                "api_calls": res.calls,  # this run's (0 when read from the checkpoint)
            }
            for res in report.results
            if res.audited
        ],
        "not_audited": [
            {"account": res.account, "region": res.region, "reason": res.error}
            for res in report.not_audited
        ]
        + [
            {"account": res.account, "region": res.region, "reason": res.import_error}
            for res in report.results
            if res.import_error
        ],
        "enforced": sum(r.enforced is True for r in rows),
        "total": len(rows),
        "account_regions_audited": len(report.results) - len(report.not_audited),
        "account_regions_total": len(report.results),
        "complete": not report.not_audited and all(res.complete for res in report.results),
        "exit_code": code,
    }


def render_org_table(report: OrgReport, code: int, *, now: datetime) -> str:
    from rds_force_ssl.cli.audit import Report

    parts = []
    empty = 0
    for res in report.results:
        if not res.audited:
            continue
        if not res.rows and not res.notes:
            empty += 1
            continue
        enforced = sum(r.enforced is True for r in res.rows)
        parts.append(f"== account {printable(res.account)}, {printable(res.region)} ==\n")
        if res.rows:
            parts.append(rows_table(Report(res.rows, [], res.complete), now=now))
        parts.append(f"{enforced} of {len(res.rows)} effectively enforced\n")
        parts += [f"note: {n}\n" for n in res.notes]
        parts.append("\n")
    rows = report.rows
    audited = len(report.results) - len(report.not_audited)
    parts.append(
        f"TOTAL: {audited} of {len(report.results)} account-regions audited"
        + (f" ({empty} with no database or proxy)" if empty else "")
        + f"; {sum(r.enforced is True for r in rows)} of {len(rows)} effectively enforced "
        f"(exit {code})\n"
    )
    parts.append(render_not_audited(report))
    return "".join(parts)


def render_not_audited(report: OrgReport) -> str:
    lines = [
        f"  {printable(res.account)} {printable(res.region)}: {reason}"
        for res in report.results
        for reason in (res.error, res.import_error)
        if reason
    ]
    if not lines:
        return ""
    return "not audited:\n" + "\n".join(lines) + "\n"


def render_json(report: Report, code: int) -> dict[str, Any]:
    return {
        "resources": [
            {
                "kind": r.kind,
                "name": r.name,
                "engine": r.engine,
                "version": r.version,
                "parameter_groups": list(r.groups),
                "parameter": r.parameter,
                "value": r.value,
                "source": r.source,
                "apply_status": r.apply_status,
                "state": r.state,
                "enforced": r.enforced,
                "security_hub": r.control,
                "reason": r.reason,
                "ca": r.ca,
                "ca_valid_till": r.ca_valid_till.isoformat() if r.ca_valid_till else None,
                "members": dict(r.members),
            }
            for r in report.rows
        ],
        "enforced": sum(r.enforced is True for r in report.rows),
        "total": len(report.rows),
        "complete": report.complete,
        "notes": list(report.notes),
        "exit_code": code,
    }


def render_table(report: Report, code: int, *, now: datetime) -> str:
    body = rows_table(report, now=now)
    enforced = sum(r.enforced is True for r in report.rows)
    summary = f"{enforced} of {len(report.rows)} effectively enforced (exit {code})\n"
    return body + summary + "".join(f"note: {n}\n" for n in report.notes)


def rows_table(report: Report, *, now: datetime) -> str:
    def expiry(ca: str | None, valid_till: datetime | None) -> str:
        if ca is None:
            return "-"
        if valid_till is None:
            return "unknown"
        left = (valid_till - now).days
        plural = "" if left == 1 else "s"
        mark = " EXPIRED" if left < 0 else f" ({left} day{plural})" if left < 30 else ""
        return f"{valid_till:%Y-%m-%d}{mark}"

    return table(
        (
            "RESOURCE",
            "ENGINE",
            "PARAMETER GROUP",
            "SETTING",
            "SOURCE",
            "STATE",
            "CONTROL",
            "CA",
            "CA EXPIRES",
        ),
        [
            (
                f"{r.kind} {r.name}",
                f"{r.engine} {r.version}".strip(),
                ",".join(r.groups) or "-",
                r.setting,
                r.source,
                r.state,
                r.control or "-",
                r.ca or "-",
                expiry(r.ca, r.ca_valid_till),
            )
            for r in report.rows
        ],
    )
