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
in-memory synth, no CDK CLI; the CLI's ``main`` against the tests' moto fleets, the RDS
simulator, or the tests' PostgreSQL and MariaDB servers). tests/test_docs.py compares every
marked block with its function, and checks that each marker names a sample and each sample is
used. A sample that needs a server binary this machine lacks raises ``SampleUnavailable``: the
test skips it (fails under RDS_FORCE_SSL_REQUIRE_POSTGRES=1, or RDS_FORCE_SSL_REQUIRE_MARIADB=1
for MariaDB's) and the command below says it was not checked. After a
change to what the code prints, rewrite the blocks with::

    .venv/bin/python -m tests.docs_samples --write

Without ``--write`` it prints the differences and exits 1 if there are any.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import difflib
import functools
import io
import json
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

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


def rewritten(page: Path, text: str, unavailable: dict[str, str] | None = None) -> str:
    """``text`` (the page) with every marked block replaced by its sample's output. A block
    whose sample this machine cannot produce (``SampleUnavailable``) is left as it is, and its
    name and the reason are put in ``unavailable``."""
    lines = text.splitlines(keepends=True)
    for block in reversed(find_blocks(page, text)):
        if block.body is not None and block.name in SAMPLES:
            try:
                body = render(block.name)
            except SampleUnavailable as why:
                if unavailable is None:
                    raise
                unavailable[block.name] = str(why)
                continue
            lines[block.start : block.end] = body.splitlines(keepends=True)
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


@sample("guard-coverage")
def guard_coverage() -> str:
    """docs/guard.md's coverage table: benchmarks/guard_coverage.py's, whose guard cells are
    measured on the simulator."""
    from benchmarks.guard_coverage import table

    return table() + "\n"


@sample("guard-calls")
def guard_calls() -> str:
    """The RDS API calls the guard's CloudTrail rule matches, and what each makes it check."""
    from rds_force_ssl.handlers import guard

    shown = {
        guard.DB_GROUP: "every instance using the DB parameter group",
        guard.CLUSTER_GROUP: "every cluster using the DB cluster parameter group",
        "instance": "the instance (a cluster member: its cluster)",
        "cluster": "the cluster and its members",
        "proxy": "the proxy",
    }
    lines = ["| CloudTrail event | checks |", "| --- | --- |"]
    for name, fields in sorted(guard.API_CALLS.items()):
        kinds = dict.fromkeys(kind for kind, _ in fields)
        lines.append(f"| `{name}` | {'; '.join(shown[k] for k in kinds)} |")
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


# --- rds-force-ssl audit ----------------------------------------------------------------------
# The CLI itself (rds_force_ssl.cli.main, stdout and stderr as a pipe gets them: no progress),
# against moto in server mode over real HTTP, on the fleets tests/cli/test_audit_moto.py tests
# (built by tests/cli/moto_fleets.py), with the tests' fake credentials. One moto server per
# process. moto's state is global to the process, and tests/test_docs.py may run these next to
# the moto tests in one pytest worker: the samples' fleets live in an account of their own.

SAMPLES_ACCOUNT = "111122223333"


@contextlib.contextmanager
def _aws_environment(**variables: str) -> Iterator[None]:
    """os.environ without any AWS configuration of this machine, plus ``variables``; restored
    on exit."""
    from tests.cli.moto_fleets import AWS_VARIABLES

    with (
        tempfile.TemporaryDirectory(prefix="rds-force-ssl-docs-aws-") as tmp,
        mock.patch.dict(os.environ),
    ):
        for name in AWS_VARIABLES:
            os.environ.pop(name, None)
        os.environ["AWS_CONFIG_FILE"] = str(Path(tmp) / "none")
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(Path(tmp) / "none")
        os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
        os.environ.update(variables)
        yield


@functools.cache
def _moto_endpoint() -> str:
    from moto.server import ThreadedMotoServer

    # werkzeug logs each request on stderr, which the samples capture: warnings and errors only.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    atexit.register(server.stop)
    host, port = server.get_host_and_port()
    return f"http://{host}:{port}"


@contextlib.contextmanager
def _moto(**patches: Callable[..., Any]) -> Iterator[str]:
    """The samples' moto server, in the samples' account, with DescribeCertificates answering
    the tests' CA data (moto lacks it) and the given RDSResponse methods replaced; the
    environment the tests' aws_env fixture sets (the endpoint, fake credentials)."""
    from moto.rds.responses import RDSResponse

    from tests.cli.moto_fleets import describe_certificates

    endpoint = _moto_endpoint()
    methods = {"describe_certificates": describe_certificates, **patches}
    with contextlib.ExitStack() as stack:
        # moto warns that AccessDenied is not one of RDS's error shapes (IAM sends it), as in
        # test_audit_moto.py: not what the CLI prints.
        stack.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", r"Exception\(RDSClientError\)", UserWarning)
        for name, method in methods.items():
            stack.enter_context(mock.patch.object(RDSResponse, name, method, create=True))
        stack.enter_context(
            _aws_environment(
                AWS_ENDPOINT_URL_RDS=endpoint,
                AWS_ACCESS_KEY_ID="testing",
                AWS_SECRET_ACCESS_KEY="testing",
                MOTO_ACCOUNT_ID=SAMPLES_ACCOUNT,
            )
        )
        yield endpoint


@functools.cache
def _built(fleet: str) -> None:
    """Build one of tests/cli/moto_fleets.py's fleets on the samples' moto, once."""
    from tests.cli import moto_fleets

    with _moto() as endpoint:
        {"fleet": moto_fleets.build_fleet, "engines": moto_fleets.build_engines_fleet}[fleet](
            endpoint
        )


def _cli(argv: list[str], *, expect: int) -> str:
    """``$ rds-force-ssl ARGV`` and what it prints (stdout, then stderr), in the environment
    of the caller; the exit code must be ``expect``."""
    from rds_force_ssl import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    if code != expect:
        raise RuntimeError(f"rds-force-ssl {' '.join(argv)} exited {code}, not {expect}")
    return f"$ rds-force-ssl {' '.join(argv)}\n{out.getvalue()}{err.getvalue()}"


@sample("audit-postgres-fleet")
def audit_postgres_fleet() -> str:
    """test_audit_moto.py's ``fleet``: RDS for PostgreSQL and Aurora PostgreSQL."""
    from tests.cli.moto_fleets import FLEET_REGION

    _built("fleet")
    with _moto():
        return _cli(["audit", "--region", FLEET_REGION], expect=1)


@sample("audit-engines-fleet")
def audit_engines_fleet() -> str:
    """test_audit_moto.py's ``engines_fleet``: the other engines and the proxies."""
    from tests.cli.moto_fleets import ENGINES_REGION

    _built("engines")
    with _moto():
        return _cli(["audit", "--region", ENGINES_REGION], expect=1)


@sample("audit-denied-certificates")
def audit_denied_certificates() -> str:
    """The PostgreSQL fleet for an identity denied rds:DescribeCertificates (as
    test_denied_describe_certificates_costs_only_the_ca_expiry_column has it)."""
    from tests.cli.moto_fleets import FLEET_REGION, denied

    _built("fleet")
    with _moto(describe_certificates=denied("DescribeCertificates")):
        return _cli(["audit", "--region", FLEET_REGION], expect=1)


# An organization of its own (its management account is not the samples' or the tests'), with
# moto's identifiers seeded so that its account ids are the same in every run.
ORG_SAMPLE_MANAGEMENT = "999988887777"
ORG_SAMPLE_REGIONS = ("eu-south-2", "me-central-1")


@functools.cache
def _built_org() -> list[str]:
    from moto.moto_api._internal import mock_random

    from tests.cli.moto_fleets import build_org

    with _aws_environment():
        mock_random.seed(25)
        _, accounts = build_org(
            _moto_endpoint(),
            accounts=3,
            databases=2,
            regions=ORG_SAMPLE_REGIONS,
            not_enforced=frozenset({2}),
            name="sample",
            management=ORG_SAMPLE_MANAGEMENT,
        )
    return accounts


@sample("audit-org-one-region")
def audit_org_one_region() -> str:
    """The README's: the same organization (``audit-org``'s), in the opt-in region only."""
    return _org_cli(ORG_SAMPLE_REGIONS[1:])


@sample("audit-org")
def audit_org() -> str:
    """tests/cli/test_org_audit.py's organization, as tests/cli/moto_fleets.py builds it: three
    member accounts, two regions, two databases each; the third account's group sets
    rds.force_ssl=0, and the second account has not enabled the opt-in region me-central-1
    (moto answers AuthFailure there, as in test_org_audit.py). The CLI runs as the management
    account."""
    return _org_cli(ORG_SAMPLE_REGIONS)


def _org_cli(regions: tuple[str, ...]) -> str:
    """``audit --accounts org`` on the samples' organization, as its management account."""
    from moto.rds.exceptions import RDSClientError
    from moto.rds.responses import RDSResponse

    from tests.cli.moto_fleets import ORG_ROLE, caller, describe_certificates

    accounts = _built_org()
    endpoint = _moto_endpoint()
    original = RDSResponse.describe_db_clusters

    def opt_in(self: RDSResponse) -> Any:
        if (self.current_account, self.region) == (accounts[1], ORG_SAMPLE_REGIONS[1]):
            raise RDSClientError("AuthFailure", "AWS was not able to validate the credentials")
        return original(self)

    with _aws_environment():
        role = f"arn:aws:iam::{ORG_SAMPLE_MANAGEMENT}:role/OrganizationAdmin"
        sts = caller(endpoint, "sts")
        creds = sts.assume_role(RoleArn=role, RoleSessionName="docs-sample")["Credentials"]
    with (
        warnings.catch_warnings(),
        mock.patch.object(RDSResponse, "describe_certificates", describe_certificates, create=True),
        mock.patch.object(RDSResponse, "describe_db_clusters", opt_in),
        _aws_environment(
            AWS_ENDPOINT_URL=endpoint,
            AWS_ACCESS_KEY_ID=creds["AccessKeyId"],
            AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
            AWS_SESSION_TOKEN=creds["SessionToken"],
            AWS_DEFAULT_REGION="us-east-1",
        ),
    ):
        # moto warns that AuthFailure is not one of RDS's error shapes: not what the CLI prints.
        warnings.filterwarnings("ignore", r"Exception\(RDSClientError\)", UserWarning)
        argv = ["audit", "--accounts", "org", "--role-name", ORG_ROLE]
        argv += ["--regions", ",".join(regions)]
        return _cli(argv, expect=2)


@sample("audit-no-region")
def audit_no_region() -> str:
    """`audit` on a machine with no AWS configuration at all (test_audit_moto.py's
    no_aws_config): no region, so a usage error before any call."""
    with _aws_environment():
        return _cli(["audit"], expect=2)


@sample("audit-pending-reboot")
def audit_pending_reboot() -> str:
    """What moto cannot show (it keeps every group in-sync), on the RDS simulator as
    tests/cli/test_audit_sim.py sets it up: a new PostgreSQL group pending a reboot, MySQL's
    dynamic require_secure_transport one second after a change, an Aurora cluster whose members
    wait for a reboot, a proxy whose RequireTLS is being applied. The CLI runs as usual, its RDS
    client replaced by the simulator."""
    from rds_force_ssl.cli import aws
    from simulator import RdsSimulator
    from tests.cli.moto_fleets import CERTIFICATES

    sim = RdsSimulator(applying_seconds=20)
    sim.certificates.update(CERTIFICATES)
    sim.set_parameters("pg16-force-ssl", {"rds.force_ssl": "1"})
    sim.add_instance("payments", groups={"pg16-force-ssl": "pending-reboot"})
    sim.set_parameters("mysql80-app", {"require_secure_transport": "0"})
    sim.add_instance(
        "shop", engine="mysql", engine_version="8.0.40", groups={"mysql80-app": "in-sync"}
    )
    sim.modify_group("mysql80-app", {"require_secure_transport": "1"})
    sim.advance(1)
    sim.set_parameters("apg16-force-ssl", {"rds.force_ssl": "1"}, cluster=True)
    sim.add_cluster("ledger", group="apg16-force-ssl", writer="ledger-1", readers=("ledger-2",))
    sim.add_proxy("pool", require_tls=True, status="modifying")
    with (
        _aws_environment(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing"),
        mock.patch.object(aws, "rds_client", return_value=sim),
    ):
        shown = _cli(["audit", "--region", "us-east-1"], expect=1)
    return shown.split("\n", 1)[1]  # no command line: no region holds the simulator


# --- rds-force-ssl probe ----------------------------------------------------------------------


class SampleUnavailable(RuntimeError):
    """A sample this machine cannot produce: a server binary it needs is missing. ``server``
    says which, so that tests/test_docs.py skips it only where tests/cli/conftest.py would skip
    that server's tests (``required`` is True where it would fail them instead)."""

    def __init__(self, reason: str, *, server: str = "PostgreSQL") -> None:
        super().__init__(reason)
        self.server = server

    @property
    def variable(self) -> str:
        """The variable that forbids skipping it (CI sets both)."""
        return f"RDS_FORCE_SSL_REQUIRE_{'MARIADB' if self.server == 'MariaDB' else 'POSTGRES'}"

    @property
    def required(self) -> bool:
        mariadb_ci = self.server == "MariaDB" and os.environ.get("CI") == "true"
        return os.environ.get(self.variable) == "1" or mariadb_ci


# The ports the probe sample shows: the test server's real ones change every run (a free port,
# like the tests'), so they are replaced by these, in the command lines and the output alike; the
# page says so. Five digits, as every ephemeral port is, so the table's columns stay aligned.
PROBE_SERVER_PORT = "59419"
PROBE_CLOSED_PORT = "50141"


@sample("probe-loopback")
def probe_loopback() -> str:
    """`probe` against the tests' PostgreSQL server (tests/cli/pgserver.py, SSL-only
    pg_hba.conf, listening on 127.0.0.1 and 127.0.0.2) and a closed port; then the same server
    with HBA_PLAINTEXT_PASSWORD (a `hostnossl ... password` line)."""
    import secrets

    from tests.cli import pgserver

    bindir = pgserver.find_bindir()
    if bindir is None:
        raise SampleUnavailable("PostgreSQL server binaries not found (tests/cli/pgserver.py)")
    server = pgserver.start_server(
        bindir=bindir,
        app_password="real-" + secrets.token_hex(12),
        addresses=pgserver.loopback_addresses(2),
    )
    try:
        closed = pgserver.free_port()
        shown = {str(server.port): PROBE_SERVER_PORT, str(closed): PROBE_CLOSED_PORT}
        if any(len(real) != len(port) for real, port in shown.items()):
            raise RuntimeError(f"ports {list(shown)} are not 5 digits: the columns would shift")
        with _aws_environment():
            both = [f"127.0.0.{n}:{server.port}" for n in (1, 2)]
            first = _cli(["probe", *both, f"127.0.0.1:{closed}"], expect=2)
            server.configure(hba=pgserver.HBA_PLAINTEXT_PASSWORD)
            second = _cli(["probe", f"127.0.0.1:{server.port}"], expect=1)
    finally:
        server.stop()
        server.remove()
    text = f"{first}\n{second}"
    return re.sub(r"(?<=127\.0\.0\.[12]:)(\d+)\b", lambda m: shown.get(m[1], m[1]), text)


# --- rds-force-ssl verify ---------------------------------------------------------------------
# The CLI against the servers the verify tests start (tests/cli/pgserver.py, mariadbserver.py),
# with their scenarios (pg_hba.conf rule sets, require_secure_transport), run from the server's
# folder so that `--sslrootcert ca.pem` is the test CA as given. The password is in the variable
# verify reads (PGPASSWORD, MYSQL_PWD), as in the tests; it must appear nowhere in the output.
# What changes from run to run is normalised, and the page says so: the port (a free one), the
# random part of the test CA's and certificate's OU ("Testing CA #<random>"), the server
# certificate's expiry date (a year after the server starts: its day count, 364, is the same
# every run), the CA's day count (to 3000-01-01: one less each day), and MariaDB's version
# (Debian's point release of the day).

VERIFY_POSTGRES_PORT = PROBE_SERVER_PORT
VERIFY_MARIADB_PORT = "58289"
TRUSTME_OU = re.compile(r"(?<=OU=Testing )(?P<what>cert|CA) #(?P<token>[A-Za-z0-9_-]+)")
SERVER_EXPIRY = re.compile(r"(?<=server certificate expires )\d{4}-\d\d-\d\d(?= \(\d+ days\))")
CA_DAYS = re.compile(r"(?P<head>; CA [^;]*? expires \d{4}-\d\d-\d\d) \(\d+ days\)")
MARIADB_VERSION = re.compile(r"(?<=; version )\S*MariaDB.*$", re.MULTILINE)


@contextlib.contextmanager
def _verify_environment(folder: Path, password_variable: str, password: str) -> Iterator[None]:
    """In ``folder``, with no PG* or MYSQL* variable of this machine (PGHOSTADDR, PGSSLMODE or
    a service file would change what libpq does) but the password's."""
    with _aws_environment(), contextlib.chdir(folder):
        for name in [n for n in os.environ if n.startswith(("PG", "MYSQL"))]:
            del os.environ[name]
        os.environ[password_variable] = password
        yield


def _verify_shown(text: str, *, port: int, shown_port: str, password: str) -> str:
    """``text`` (command lines and output) with what changes per run normalised."""
    if password in text:
        raise RuntimeError("the sample shows the password")
    text = re.sub(rf"(?<=--port ){port}\b|(?<=:){port}(?=/)", shown_port, text)
    if re.search(rf"\b{port}\b", text):
        raise RuntimeError(f"port {port} is shown somewhere the sample does not replace it")
    tokens = {(m["what"], m["token"]) for m in TRUSTME_OU.finditer(text)}
    if sorted(what for what, _ in tokens) != ["CA", "cert"]:
        raise RuntimeError(f"expected one test CA and one server certificate, found {tokens}")
    text = TRUSTME_OU.sub(lambda m: f"{m['what']} #<random>", text)
    text = SERVER_EXPIRY.sub("<date>", text)
    return CA_DAYS.sub(lambda m: f"{m['head']} (<days> days)", text)


@functools.cache
def _verify_postgres_runs() -> tuple[str, str, str]:
    """test_verify_postgres.py's scenarios on a server of its own: SSL-only pg_hba.conf
    (test_ssl_only_server_passes), HBA_PLAINTEXT_PASSWORD (a `hostnossl ... password` line), and
    SSL-only again, by the address the certificate does not name
    (test_host_name_mismatch_is_not_verified)."""
    import secrets

    from tests.cli import pgserver

    bindir = pgserver.find_bindir()
    if bindir is None:
        raise SampleUnavailable("PostgreSQL server binaries not found (tests/cli/pgserver.py)")
    password = "real-" + secrets.token_hex(12)
    server = pgserver.start_server(bindir=bindir, app_password=password)
    try:
        with _verify_environment(server.root, "PGPASSWORD", password):

            def verify(host: str, *, expect: int) -> str:
                argv = ["verify", "--host", host, "--port", str(server.port)]
                argv += ["--dbname", pgserver.APP_DB, "--user", pgserver.APP_USER]
                return _cli([*argv, "--sslrootcert", server.ca_file.name], expect=expect)

            enforced = verify(pgserver.HOST, expect=0)
            server.configure(hba=pgserver.HBA_PLAINTEXT_PASSWORD)
            plaintext = verify(pgserver.HOST, expect=1)
            server.configure(hba=pgserver.HBA_SSL_ONLY)
            mismatch = verify(pgserver.ADDRESS, expect=3)
    finally:
        server.stop()
        server.remove()
    port = server.port
    shown = [
        _verify_shown(t, port=port, shown_port=VERIFY_POSTGRES_PORT, password=password)
        for t in (enforced, plaintext, mismatch)
    ]
    return shown[0], shown[1], shown[2]


@sample("verify-postgres")
def verify_postgres() -> str:
    """`verify` against the tests' PostgreSQL server, SSL-only pg_hba.conf: ENFORCED."""
    return _verify_postgres_runs()[0]


@sample("verify-postgres-failing")
def verify_postgres_failing() -> str:
    """The same server with a `hostnossl ... password` line (NOT ENFORCED), then back on
    SSL-only rules, by an address its certificate does not name (NOT VERIFIED)."""
    _, plaintext, mismatch = _verify_postgres_runs()
    return f"{plaintext}\n{mismatch}"


@sample("verify-mariadb")
def verify_mariadb() -> str:
    """`verify --engine mysql` against the tests' MariaDB server, as test_verify_mariadb.py runs
    it: require_secure_transport=ON (ENFORCED), OFF (NOT ENFORCED), then ON again by an address
    the certificate does not name (INCONCLUSIVE)."""
    import secrets

    from tests.cli import mariadbserver, pgserver

    if mariadbserver.find_binaries() is None:
        raise SampleUnavailable(
            "MariaDB server binaries not found (tests/cli/mariadbserver.py)", server="MariaDB"
        )
    password = "real-" + secrets.token_hex(12)
    server = mariadbserver.start_server(app_password=password)
    try:
        with _verify_environment(server.root, "MYSQL_PWD", password):

            def verify(host: str, *, expect: int) -> str:
                argv = ["verify", "--engine", "mysql", "--host", host]
                argv += ["--port", str(server.port), "--dbname", mariadbserver.APP_DB]
                argv += ["--user", mariadbserver.APP_USER, "--sslrootcert", server.ca_file.name]
                return _cli([*argv, "--check-tls-floor"], expect=expect)

            enforced = verify(pgserver.HOST, expect=0)
            server.require_secure_transport(on=False)
            plaintext = verify(pgserver.HOST, expect=1)
            server.require_secure_transport(on=True)
            mismatch = verify(pgserver.ADDRESS, expect=2)
    finally:
        server.stop()
        server.remove()
    text = "\n".join((enforced, plaintext, mismatch))
    text = _verify_shown(text, port=server.port, shown_port=VERIFY_MARIADB_PORT, password=password)
    return MARIADB_VERSION.sub("<MariaDB version>", text)


# --- rds-force-ssl clients --------------------------------------------------------------------
# The CLI against a PostgreSQL server of its own (tests/cli/pgserver.py) with RDS's
# log_line_prefix, while libpq clients are connected as tests/cli/test_clients_postgres.py
# connects them: the live listing, then the connection log the server wrote meanwhile, read
# from a file. Normalised as the verify samples are (the port), plus the times and days, which
# change every run: shown as placeholders of the same width, so the columns stay aligned.

CLIENTS_TIME = re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
CLIENTS_DAY = re.compile(r"\b\d{4}-\d\d-\d\d\b")


@functools.cache
def _clients_runs() -> tuple[str, str]:
    import secrets

    import psycopg

    from rds_force_ssl.cli import connlog
    from tests.cli import pgserver

    bindir = pgserver.find_bindir()
    if bindir is None:
        raise SampleUnavailable("PostgreSQL server binaries not found (tests/cli/pgserver.py)")
    password = "real-" + secrets.token_hex(12)
    server = pgserver.start_server(
        bindir=bindir,
        app_password=password,
        settings=(("log_line_prefix", f"'{connlog.RDS_LINE_PREFIX}'"),),
    )
    opened: list[Any] = []
    try:
        with server.admin() as conn:
            conn.execute(f"CREATE ROLE reporter LOGIN PASSWORD '{password}'")
        server.configure(hba=pgserver.HBA_HOST)
        mark = server.log_mark()
        for user, application, tls, count in (
            ("reporter", "nightly report", False, 2),
            (pgserver.APP_USER, "web", True, 3),
            (pgserver.APP_USER, "", False, 1),
        ):
            for _ in range(count):
                opened.append(
                    psycopg.connect(
                        host=pgserver.HOST if tls else pgserver.ADDRESS,
                        hostaddr=pgserver.ADDRESS,
                        port=server.port,
                        user=user,
                        dbname=pgserver.APP_DB,
                        password=password,
                        application_name=application,
                        sslmode="verify-full" if tls else "disable",
                        sslrootcert=str(server.ca_file),
                    )
                )
        with _verify_environment(server.root, "PGPASSWORD", password):
            argv = ["clients", "--host", pgserver.HOST, "--port", str(server.port)]
            argv += ["--dbname", pgserver.APP_DB, "--user", pgserver.APP_USER]
            live = _cli([*argv, "--sslrootcert", server.ca_file.name], expect=1)
            (server.root / "postgresql.log").write_text(server.log_since(mark))
            history = _cli(["clients", "--log-file", "postgresql.log"], expect=1)
    finally:
        for conn in opened:
            conn.close()
        server.stop()
        server.remove()
    shown = []
    for text in (live, history):
        if password in text:
            raise RuntimeError("the sample shows the password")
        text = re.sub(rf"(?<=--port ){server.port}\b|(?<=:){server.port}(?=/)", "59419", text)
        if re.search(rf"\b{server.port}\b", text):
            raise RuntimeError(f"port {server.port} is shown where the sample does not replace it")
        text = CLIENTS_TIME.sub("YYYY-MM-DDTHH:MM:SSZ", text)
        shown.append(CLIENTS_DAY.sub("YYYY-MM-DD", text))
    return shown[0], shown[1]


@sample("clients-live")
def clients_live() -> str:
    """`clients --host` while two plaintext sessions of `reporter` ("nightly report"), three TLS
    sessions of `app` ("web") and one plaintext session of `app` without a name are open."""
    return _clients_runs()[0]


@sample("clients-log")
def clients_log() -> str:
    """The same server's connection log over that time (log_connections=on, RDS's
    log_line_prefix), read from a file: the same clients, and the listing's own login."""
    return _clients_runs()[1]


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
    unavailable: dict[str, str] = {}
    for page in pages():
        old = page.read_text()
        new = rewritten(page, old, unavailable)
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
    for name, why in unavailable.items():
        print(f"sample {name!r} was not checked: {why}", file=sys.stderr)
    failed = bool(trouble or unused or unavailable or (changed and not args.write))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
