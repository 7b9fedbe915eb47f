"""``rds-force-ssl audit``: report, for every database and RDS proxy of a region, whether its
SSL-only setting is configured and in effect.

The reading and the judging are in ``cli/audit.py``; AWS errors are translated by ``cli/aws.py``.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from rds_force_ssl.cli.output import dump, progress, table

if TYPE_CHECKING:
    from rds_force_ssl.cli import Parser
    from rds_force_ssl.cli.audit import Report

NAME = "audit"


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
        "be judged (unreadable, not applicable), a listing was denied, or nothing was found.",
    )
    a.add_argument("--region", help="AWS region (default: the AWS SDK's configuration)")
    a.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace, *, out: IO[str], err: IO[str]) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from rds_force_ssl.cli import audit, aws

    client = aws.rds_client(args.region, command=NAME)
    try:
        report = audit.audit(client, progress=progress(err, "audited"))
    except (BotoCoreError, ClientError) as error:
        raise aws.translate(error, command=NAME) from error
    code = audit.exit_code(report.rows, complete=report.complete)
    if args.json:
        dump(render_json(report, code), out)
    else:
        out.write(render_table(report, code, now=datetime.now(UTC)))
    return code


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
    def expiry(ca: str | None, valid_till: datetime | None) -> str:
        if ca is None:
            return "-"
        if valid_till is None:
            return "unknown"
        days = (valid_till - now).days
        mark = " EXPIRED" if days < 0 else f" ({days} days)" if days < 30 else ""
        return f"{valid_till:%Y-%m-%d}{mark}"

    body = table(
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
    enforced = sum(r.enforced is True for r in report.rows)
    summary = f"{enforced} of {len(report.rows)} effectively enforced (exit {code})\n"
    return body + summary + "".join(f"note: {n}\n" for n in report.notes)
