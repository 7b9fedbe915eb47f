"""Sample outputs in the docs, produced by the code rather than typed by hand.

A fenced code block in README.md or docs/ that shows what a program prints, or a Markdown table
made from the code's own data (the engine table, the rule catalogue), is marked by an HTML
comment on the line right before it (MkDocs and GitHub both hide the comment)::

    <!-- sample: synth-report -->
    ```
    ...what the sample function returns...
    ```

    <!-- sample: rule-catalogue -->
    | rule | ... |
    | --- | ... |

``SAMPLES`` maps each name to a function that returns the exact text, computed in-process (an
in-memory synth, no CDK CLI). tests/test_docs.py compares every marked block with its function,
and checks that each marker names a sample and each sample is used. After a change to what the
code prints, rewrite the blocks with::

    .venv/bin/python -m tests.docs_samples --write

Without ``--write`` it prints the differences and exits 1 if there are any.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import functools
import io
import json
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import aws_cdk as cdk

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
WRITE_COMMAND = ".venv/bin/python -m tests.docs_samples --write"

MARKER = re.compile(r"^<!-- sample: (?P<name>[^\s>]+) -->[ \t]*$")
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})")

# The name under which aws-cdk-lib reports annotations in validation-report.json.
ANNOTATION_PLUGIN = "Construct Annotations"

SAMPLES: dict[str, Callable[[], str]] = {}


def sample(name: str) -> Callable[[Callable[[], str]], Callable[[], str]]:
    """Register a sample function under ``name``; its result is computed once per process."""

    def register(func: Callable[[], str]) -> Callable[[], str]:
        cached = functools.cache(func)
        SAMPLES[name] = cached
        return cached

    return register


def render(name: str) -> str:
    """The body of a block marked ``name``: the sample's text, ending with a newline."""
    text = SAMPLES[name]()
    text = text if text.endswith("\n") else text + "\n"
    for line in text.splitlines():
        if FENCE.match(line):
            raise ValueError(f"sample {name} has a line that would close its code fence: {line}")
    return text


# --- finding the marked blocks ---------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One ``<!-- sample: NAME -->`` marker and the fenced block after it.

    ``body`` is the text between the fences (None when no fenced block follows the marker);
    ``start`` and ``end`` are the 0-based indices of the body's first line and of the closing
    fence in the page's lines."""

    page: Path
    line: int  # 1-based line of the marker
    name: str
    body: str | None
    start: int
    end: int
    table: bool = False  # a Markdown table (its rows replace each other), not a fenced block

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT).as_posix()}:{self.line}"


def pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def find_blocks(page: Path, text: str | None = None) -> list[Block]:
    """Every marker in ``page`` outside a code block (a marker shown inside one, as an example,
    does not count)."""
    lines = (page.read_text() if text is None else text).splitlines(keepends=True)
    found: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i].rstrip("\n")
        opened = FENCE.match(line)
        if opened:  # skip a block that no marker announces
            i = _closing(lines, i, opened["fence"]) + 1
            continue
        marker = MARKER.match(line)
        if not marker:
            i += 1
            continue
        if i + 1 < len(lines) and lines[i + 1].startswith("|"):
            end = i + 1
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            body = "".join(lines[i + 1 : end])
            found.append(Block(page, i + 1, marker["name"], body, i + 1, end, table=True))
            i = end
            continue
        fence = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
        end = _closing(lines, i + 1, fence["fence"]) if fence else len(lines)
        if fence is None or end >= len(lines):
            found.append(Block(page, i + 1, marker["name"], None, i + 1, i + 1))
            i += 1
            continue
        body = "".join(lines[i + 2 : end])
        found.append(Block(page, i + 1, marker["name"], body, i + 2, end))
        i = end + 1
    return found


def _closing(lines: list[str], opening: int, fence: str) -> int:
    """Index of the line that closes the fence opened at ``opening`` (len(lines) if none)."""
    for j in range(opening + 1, len(lines)):
        stripped = lines[j].strip()
        if stripped.startswith(fence) and not stripped.lstrip(fence[0]):
            return j
    return len(lines)


def all_blocks() -> list[Block]:
    return [block for page in pages() for block in find_blocks(page)]


def problems(blocks: list[Block]) -> list[str]:
    """Markers without a fenced block after them, and markers that name no sample."""
    found = []
    for block in blocks:
        if block.body is None:
            found.append(
                f"{block.where}: the line after <!-- sample: {block.name} --> must open a "
                "fenced code block or a Markdown table"
            )
        if block.name not in SAMPLES:
            found.append(
                f"{block.where}: no sample named {block.name!r} in tests/docs_samples.py "
                f"(known: {', '.join(sorted(SAMPLES))})"
            )
    return found


def rewritten(page: Path, text: str) -> str:
    """``text`` (the page) with every marked block replaced by its sample's output."""
    lines = text.splitlines(keepends=True)
    for block in reversed(find_blocks(page, text)):
        if block.body is not None and block.name in SAMPLES:
            lines[block.start : block.end] = render(block.name).splitlines(keepends=True)
    return "".join(lines)


# --- the samples -----------------------------------------------------------------------------


def _app(outdir: Path) -> cdk.App:
    """An app that synthesizes as `npx cdk synth` does here: cdk.json's context (its feature
    flags decide, for one, that annotations go into the validation report), and the app leaves
    the validation report to the CLI instead of printing it or raising. CDK's built-in
    CloudFormation validation is off, for speed; it changes none of the samples (the CLI test in
    tests/test_docs.py synthesizes with it on)."""
    import aws_cdk as cdk

    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text()).get("context", {})
    context = {**context, "@aws-cdk/core:failSynthOnValidationErrors": False}
    return cdk.App(outdir=str(outdir), context=context, builtin_cloud_formation_validation=False)


@contextlib.contextmanager
def _outdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="rds-force-ssl-docs-") as tmp:
        yield Path(tmp) / "cdk.out"


@sample("synth-report")
def synth_report() -> str:
    """What `make synth` ends by printing: the baseline's count, which app.py prints after the
    synth, then ``rds-force-ssl report cdk.out``. (In a terminal, the CDK CLI's info
    annotations come between the two.)"""
    from rds_force_ssl import report
    from stacks.sample_app import compose

    with _outdir() as outdir:
        app = _app(outdir)
        baseline = compose(app)
        app.synth()
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            report.main([str(outdir)])
    return f"{baseline.summary()}\n{printed.getvalue()}"


@sample("baseline-finding")
def baseline_finding() -> str:
    """The RFS2 finding of tests/fixtures/noncompliant_app.py's NonCompliant/SslOff (a
    PostgreSQL instance whose group sets rds.force_ssl=0) under the audit baseline, as the CDK
    CLI prints it: the fixture's own build(), in an app with cdk.json's context."""
    from tests.fixtures.noncompliant_app import build

    with _outdir() as outdir:
        app = _app(outdir)
        build(app)
        app.synth()
        validation = json.loads((outdir / "validation-report.json").read_text())
    blocks = [
        cli_violation_block(plugin["pluginName"], violation, construct)
        for plugin in validation["pluginReports"]
        for violation in plugin["violations"]
        if violation["severity"] == "error" and "[RFS2]" in violation["description"]
        for construct in violation["violatingConstructs"]
        if construct["constructPath"] == "NonCompliant/SslOff"
    ]
    if len(blocks) != 1:
        raise RuntimeError(f"expected one RFS2 error on NonCompliant/SslOff, found {blocks}")
    return blocks[0]


def cli_violation_block(
    plugin_name: str, violation: dict[str, Any], construct: dict[str, Any]
) -> str:
    """One entry of validation-report.json as the CDK CLI prints it (without colour, as in a
    pipe or a log): ``ValidationReportFormatter.formatViolationBlock`` of
    @aws-cdk/cloud-assembly-api, which aws-cdk-lib uses too. Source locations, which it
    prints first when a stack trace reaches user code, are left out: annotations carry none."""
    severity = str(violation["severity"]).upper()
    description = re.sub(r"\s*\[ack:\s*[^\]]+\]\s*", "", violation["description"]).strip()
    rule = str(violation["ruleName"])
    namespace, _, rule_id = rule.partition("::") if "::" in rule else ("", "", rule)
    shown = namespace.replace("-", " ") if namespace else plugin_name
    lines = [f"{severity} {description} ({shown})"]
    where = construct["constructPath"]
    logical_id = construct.get("cloudFormationResource", {}).get("logicalId")
    info = f"{where} ({logical_id})" if logical_id else where
    if construct.get("constructFqn"):
        info += f" {construct['constructFqn']}"
    lines.append(f"   {info}")
    if violation.get("suggestedFix"):
        lines.append(f"   Suggested fix: {violation['suggestedFix']}".replace("\n", "\n   "))
    # The namespace of an acknowledgement: the rule's own, else the plugin's ("Annotation" for
    # the plugin that reports annotations).
    default = "Annotation" if plugin_name == ANNOTATION_PLUGIN else plugin_name.replace(" ", "-")
    if namespace in ("annotation", "Construct-Annotations"):
        namespace = "Annotation"
    ack = f"{(namespace or default).replace(' ', '-')}::{rule_id.replace(' ', '-')}"
    error_annotation = (
        violation.get("ruleMetadata", {}).get("cdk:annotation") and severity == "ERROR"
    )
    if severity == "FATAL" or error_annotation:
        lines.append(f"   Rule {ack}")
    else:
        lines.append(f"   Acknowledge with '{ack}'")
    return "\n".join(lines) + "\n"


@sample("engine-table")
def engine_table() -> str:
    """docs/engines.md's table, from rds_force_ssl.facts.engines (a row per engine, and the
    proxy)."""
    from rds_force_ssl.facts import engines

    lines = [
        "| engine | parameter = value ForceSsl writes | where | static / dynamic (AWS docs) | "
        "minimum | engine default | Security Hub |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in engines.ENGINES:
        hub = row.security_hub or "none"
        if row.parameter is None:
            why = (row.not_applicable or "").split(";")[0]
            lines.append(f"| {row.title} | none: {why} | | | | | {hub} |")
            continue
        where = (
            "DB cluster parameter group"
            if row.aurora
            else "DB parameter group (Multi-AZ DB cluster: cluster group)"
            if row.multi_az_cluster
            else "DB parameter group"
        )
        minimum = engines.show(row.minimum_version) if row.minimum_version else "any"
        default = f"on from {engines.show(row.default_on_from)}" if row.default_on_from else "off"
        lines.append(
            f"| {row.title} | `{row.parameter}` = `{row.value}` | {where} | {row.apply_type} | "
            f"{minimum} | {default} | {hub} |"
        )
    proxy = engines.PROXY
    lines.append(
        f"| {proxy.title} | `{proxy.property}` = `true` (a property of the proxy; CDK's "
        "`DatabaseProxy` defaults to it) | the proxy | applies without a reboot | | "
        f"CloudFormation: {str(proxy.cloudformation_default).lower()} | {proxy.security_hub} |"
    )
    return "\n".join(lines) + "\n"


@sample("tls-floor-table")
def tls_floor_table() -> str:
    """Which engine takes which TLS floor, from each engine row's tls_floor."""
    from rds_force_ssl.facts import engines

    versions = engines.TLS_VERSIONS
    lines = [
        "| engine | floor set by | " + " | ".join(f"`{v}` from" for v in versions) + " |",
        "| --- | --- | " + " | ".join("---" for _ in versions) + " |",
    ]
    for row in engines.ENGINES:
        floor = row.tls_floor
        if row.parameter is None:
            continue
        by = (
            "none: ForceSsl cannot set a floor"
            if floor is None
            else f"`{floor.parameter}`"
            if floor.parameter
            else "the engine itself (nothing to set)"
        )
        cells = [
            engines.show(floor.from_version[v]) if floor and v in floor.from_version else "-"
            for v in versions
        ]
        lines.append(f"| {row.title} | {by} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@sample("rule-catalogue")
def rule_catalogue() -> str:
    """The baseline's rule catalogue, from rds_force_ssl.rules.RULES."""
    from rds_force_ssl import rules

    lines = ["| rule | finding | audit | enforce |", "| --- | --- | --- | --- |"]
    lines += [f"| {r.id} | {r.finding} | {r.audit} | {r.enforce} |" for r in rules.RULES]
    return "\n".join(lines) + "\n"


# --- the command -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.docs_samples",
        description="Check (or, with --write, rewrite) the docs' marked sample outputs.",
    )
    parser.add_argument("--write", action="store_true", help="rewrite the marked blocks")
    args = parser.parse_args(argv)
    blocks = all_blocks()
    trouble = problems(blocks)
    for problem in trouble:
        print(problem, file=sys.stderr)
    unused = sorted(set(SAMPLES) - {block.name for block in blocks})
    for name in unused:
        print(f"sample {name!r} is marked nowhere in README.md or docs/", file=sys.stderr)
    changed = []
    for page in pages():
        old = page.read_text()
        new = rewritten(page, old)
        if new == old:
            continue
        changed.append(page)
        if args.write:
            page.write_text(new)
            print(f"rewrote {page.relative_to(ROOT).as_posix()}")
        else:
            name = page.relative_to(ROOT).as_posix()
            sys.stdout.writelines(
                difflib.unified_diff(
                    old.splitlines(keepends=True),
                    new.splitlines(keepends=True),
                    f"{name} (now)",
                    f"{name} (what the code prints)",
                )
            )
    if changed and not args.write:
        print(f"\n{len(changed)} page(s) differ from what the code prints: run {WRITE_COMMAND}")
    failed = bool(trouble or unused or (changed and not args.write))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
