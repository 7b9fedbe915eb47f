"""The code examples in the docs are files that the tests run (docs/examples/).

Each docs/examples/*.py is a complete CDK app that a user could copy: it is run here as a
script, as ``cdk synth`` would run it (``python <file>`` with CDK_OUTDIR set; here in process,
with CDK's built-in CloudFormation validation off, a few seconds for all of them), and what its
page says of it is checked on the cloud assembly it writes. The pages
show its lines through pymdownx.snippets (``--8<-- "docs/examples/<file>.py:<section>"``,
sections marked ``# --8<-- [start:<section>]`` / ``# --8<-- [end:<section>]``), so what a page
shows is what ran. The README, which GitHub shows without expanding snippets, keeps its one
example inline: it is checked to be the example's sections, character for character.

ruff and mypy --strict cover docs/examples/ (pyproject.toml's mypy ``files``).
"""

from __future__ import annotations

import os
import re
import runpy
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import cx_api

import rds_force_ssl

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
FILES = sorted(EXAMPLES.glob("*.py"))

# The README's example: these sections of this file, one after the other.
README_EXAMPLE = ("force_ssl_instance.py", ("imports", "force_ssl"))

REBOOT = "Custom::RdsForceSslReboot"
COMPLIANCE = "rds-force-ssl:compliance"
EXEMPT = "rds-force-ssl:exempt"

# pymdownx.snippets' syntax as this project uses it; paths from the repository's root
# (mkdocs.yml: base_path is the config's folder).
INCLUDE = re.compile(r'^\s*-{1,}8<-{1,}\s+"(?P<path>[^":]+)(?::(?P<section>[a-z][-_0-9a-z]*))?"')
MARKER = re.compile(r"^\s*# -{1,}8<-{1,} \[(?P<type>start|end):(?P<name>[a-z][-_0-9a-z]*)\]\s*$")
FENCE = re.compile(r"^(?P<fence>```+)(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=fence)\s*$", re.M | re.S)


def section(path: Path, name: str) -> str:
    """The lines between ``[start:name]`` and ``[end:name]``, other markers left out and
    dedented, as pymdownx.snippets includes them (mkdocs.yml: dedent_subsections)."""
    lines: list[str] | None = None
    for line in path.read_text().splitlines(keepends=True):
        marker = MARKER.match(line)
        if marker is None:
            if lines is not None:
                lines.append(line)
        elif marker["name"] != name:
            continue
        elif marker["type"] == "start":
            assert lines is None, f"{path.name}: section {name!r} starts twice"
            lines = []
        else:
            assert lines is not None, f"{path.name}: section {name!r} ends before it starts"
            return textwrap.dedent("".join(lines))
    raise AssertionError(f"{path.name}: no section {name!r} (with a start and an end)")


def sections(path: Path) -> set[str]:
    return {m["name"] for m in map(MARKER.match, path.read_text().splitlines()) if m}


# --- running an example ---------------------------------------------------------------------


class _App(cdk.App):
    """The example's own ``cdk.App()``, without the built-in CloudFormation validation (seconds
    per synth; it only warns, and CDK's own tests cover it). CDK_OUTDIR is passed on as
    ``outdir``: jsii's Node process, which reads it, took its environment when it started."""

    def __init__(self, **props: Any) -> None:
        props.setdefault("builtin_cloud_formation_validation", False)
        props.setdefault("outdir", os.environ["CDK_OUTDIR"])
        super().__init__(**props)


@dataclass
class Run:
    assembly: cx_api.CloudAssembly
    stderr: str

    def templates(self) -> list[Mapping[str, Any]]:
        return [stack.template for stack in self.assembly.stacks]

    def resources(self, kind: str) -> list[Mapping[str, Any]]:
        return [
            resource.get("Properties", {})
            for template in self.templates()
            for resource in template.get("Resources", {}).values()
            if resource["Type"] == kind
        ]

    def outputs(self) -> dict[str, Mapping[str, Any]]:
        return {k: v for t in self.templates() for k, v in t.get("Outputs", {}).items()}

    def metadata(self, kind: str) -> dict[str, Any]:
        """The construct path (``Stack/Db``) of each entry of this type, and its data."""
        return {
            entry.path.strip("/").removesuffix("/Resource"): entry.data
            for stack in self.assembly.stacks
            for entry in stack.find_metadata_by_type(kind)
        }

    def reboots(self) -> list[Mapping[str, Any]]:
        return self.resources(REBOOT)

    def group_parameters(self, family: str) -> Mapping[str, Any]:
        (group,) = [
            g
            for kind in ("AWS::RDS::DBParameterGroup", "AWS::RDS::DBClusterParameterGroup")
            for g in self.resources(kind)
            if g["Family"] == family
        ]
        parameters: Mapping[str, Any] = group["Parameters"]
        return parameters


@pytest.fixture
def run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[[Path], Run]:
    def run_example(path: Path) -> Run:
        out = tmp_path / "cdk.out"
        monkeypatch.setenv("CDK_OUTDIR", str(out))  # what `cdk synth` sets for the app
        monkeypatch.setattr(cdk, "App", _App)
        monkeypatch.chdir(tmp_path)
        capsys.readouterr()
        runpy.run_path(str(path), run_name="__main__")
        assert (out / "manifest.json").is_file(), f"{path.name} did not call app.synth()"
        return Run(cx_api.CloudAssembly(str(out)), capsys.readouterr().err)

    return run_example


# --- what each example claims -----------------------------------------------------------------


def _force_ssl_instance(run: Run) -> None:
    assert run.group_parameters("postgres16") == {"rds.force_ssl": "1"}
    (reboot,) = run.reboots()
    assert reboot["Kind"] == "instance"
    assert reboot["EnforcedParameters"] == {"rds.force_ssl": "1"}


def _force_ssl_mysql(run: Run) -> None:
    assert run.group_parameters("mysql8.4") == {"require_secure_transport": "1"}
    (reboot,) = run.reboots()
    assert reboot["EnforcedParameters"] == {"require_secure_transport": "1"}


def _force_ssl_cluster(run: Run) -> None:
    assert run.group_parameters("aurora-postgresql16") == {"rds.force_ssl": "1"}
    (reboot,) = run.reboots()
    assert reboot["Kind"] == "cluster"
    assert len(reboot["Members"]) == 2  # the writer and the reader, rebooted in turn


def _force_ssl_proxy(run: Run) -> None:
    (proxy,) = run.resources("AWS::RDS::DBProxy")
    assert proxy["RequireTLS"] is True
    assert run.group_parameters("postgres16") == {"rds.force_ssl": "1"}
    assert len(run.reboots()) == 1  # the instance's: a proxy is never rebooted


def _reboot_policy(run: Run) -> None:
    (reboot,) = run.reboots()
    assert reboot["Reboot"] == "maintenance-window"
    (schedule,) = run.resources("AWS::Events::Rule")
    assert schedule["ScheduleExpression"] == "cron(0/5 * * * ? *)"


def _outcome_output(run: Run) -> None:
    values = {name: output["Value"] for name, output in run.outputs().items()}
    attributes = sorted(v["Fn::GetAtt"][1] for v in values.values() if "Fn::GetAtt" in v)
    assert attributes == ["Outcome", "Rebooted"]
    assert "DbRebooted" in values
    (outcome,) = [o for o in run.outputs().values() if o["Value"]["Fn::GetAtt"][1] == "Outcome"]
    assert "in-sync = SSL-only in effect" in outcome["Description"]


def _baseline_enforce(run: Run) -> None:
    assert run.metadata(COMPLIANCE) == {
        "Baseline/Users": "COMPLIANT",
        "Baseline/Orders": "COMPLIANT",
    }
    assert run.group_parameters("postgres16") == {
        "rds.force_ssl": "1",
        "ssl_min_protocol_version": "TLSv1.2",
    }
    assert run.group_parameters("aurora-mysql8.0") == {"require_secure_transport": "ON"}
    assert len(run.reboots()) == 2
    assert "rds-force-ssl enforce: 2 COMPLIANT, 0 NON_COMPLIANT" in run.stderr


def _baseline_audit(run: Run) -> None:
    assert run.metadata(COMPLIANCE) == {"Audited/Db": "COMPLIANT"}
    assert len(run.reboots()) == 1  # the stack's own ForceSsl: audit adds nothing
    assert "rds-force-ssl audit: 1 COMPLIANT, 0 NON_COMPLIANT" in run.stderr


def _baseline_exempt(run: Run) -> None:
    assert run.metadata(COMPLIANCE) == {
        "Exempted/Users": "COMPLIANT",
        "Exempted/Legacy": "EXEMPT",
    }
    assert run.metadata(EXEMPT) == {
        "Exempted/Legacy": "vendor appliance without TLS until 2027; ticket DB-9"
    }
    (reboot,) = run.reboots()  # Users' only: the baseline left Legacy as it is
    assert "Users" in str(reboot["Identifier"])
    assert "1 COMPLIANT, 0 NON_COMPLIANT, 0 NOT_APPLICABLE, 1 EXEMPT" in run.stderr


CLAIMS: dict[str, Callable[[Run], None]] = {
    "force_ssl_instance.py": _force_ssl_instance,
    "force_ssl_mysql.py": _force_ssl_mysql,
    "force_ssl_cluster.py": _force_ssl_cluster,
    "force_ssl_proxy.py": _force_ssl_proxy,
    "reboot_policy.py": _reboot_policy,
    "outcome_output.py": _outcome_output,
    "baseline_enforce.py": _baseline_enforce,
    "baseline_audit.py": _baseline_audit,
    "baseline_exempt.py": _baseline_exempt,
}


def test_every_example_has_its_claims_checked() -> None:
    assert [p.name for p in FILES] == sorted(CLAIMS)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_an_example_synthesizes_and_does_what_its_page_says(
    path: Path, run: Callable[[Path], Run]
) -> None:
    CLAIMS[path.name](run(path))


def test_the_audit_example_fails_without_its_force_ssl(
    run: Callable[[Path], Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What docs/baseline.md says of it: remove the ForceSsl line, and the audit finds RFS1 on
    the database (an error annotation, which makes `cdk synth` fail)."""

    def removed(*args: Any, **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(rds_force_ssl, "ForceSsl", removed, raising=False)
    result = run(EXAMPLES / "baseline_audit.py")
    assert result.metadata(COMPLIANCE) == {"Audited/Db": "NON_COMPLIANT"}
    (error,) = result.metadata("aws:cdk:error").values()
    assert str(error).startswith("[RFS1] Audited/Db:")
    assert result.reboots() == []


# --- the pages and the README -------------------------------------------------------------


def _includes() -> list[tuple[str, str, str | None]]:
    """(page, path, section) for every snippet include in the docs pages."""
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        for line in page.read_text().splitlines():
            if (m := INCLUDE.match(line)) is not None:
                found.append((page.relative_to(ROOT).as_posix(), m["path"], m["section"]))
    return found


def test_every_include_names_an_example_file_and_one_of_its_sections() -> None:
    includes = _includes()
    assert includes, "no page includes an example"
    for page, path, name in includes:
        file = ROOT / path
        assert file.is_file(), f"{page}: includes {path}, which does not exist"
        assert file.parent == EXAMPLES, f"{page}: includes {path}, outside docs/examples/"
        assert name is not None, f"{page}: includes all of {path}; name a section"
        assert section(file, name).strip(), f"{page}: section {name!r} of {path} is empty"


def test_every_example_is_shown_on_a_page_and_every_section_is_used() -> None:
    used = {(Path(path).name, name) for _, path, name in _includes()}
    for file in FILES:
        assert sections(file), f"{file.name}: no section, so no page shows it"
        for name in sections(file):
            section(file, name)  # starts and ends
            assert (file.name, name) in used, f"{file.name}: section {name!r} is on no page"


def test_the_docs_pages_show_python_only_from_the_examples() -> None:
    """A ```python block in a page holds snippet includes only: an example typed inline is
    one that nothing runs."""
    for page in sorted(DOCS.rglob("*.md")):
        for block in FENCE.finditer(page.read_text()):
            if block["info"].strip() not in ("python", "py"):
                continue
            lines = [line for line in block["body"].splitlines() if line.strip()]
            inline = [line for line in lines if not INCLUDE.match(line)]
            assert not inline, (
                f"{page.relative_to(ROOT)}: an inline Python example; put it in docs/examples/ "
                f"and include its section with --8<--: {inline[:3]}"
            )


def test_the_readme_example_is_the_example_file() -> None:
    """GitHub does not expand snippets, so the README's example is typed out: it must be the
    example's sections exactly, which the tests run."""
    blocks = [
        b["body"] for b in FENCE.finditer(README.read_text()) if b["info"].strip() == "python"
    ]
    assert len(blocks) == 1, "the README keeps one Python example"
    name, names = README_EXAMPLE
    expected = "".join(section(EXAMPLES / name, n) for n in names)
    assert blocks[0] == expected, (
        f"README.md's example differs from docs/examples/{name} (sections {', '.join(names)}); "
        "change the file, then copy its sections into the README"
    )


def test_the_section_reader_reads_as_snippets_does(tmp_path: Path) -> None:
    example = tmp_path / "x.py"
    example.write_text(
        "a = 1\n"
        "# --8<-- [start:outer]\n"
        "def f() -> None:\n"
        "    # --8<-- [start:inner]\n"
        "    b = 2\n"
        "\n"
        "    # --8<-- [end:inner]\n"
        "    c = 3\n"
        "# --8<-- [end:outer]\n"
    )
    assert section(example, "inner") == "b = 2\n\n"
    assert section(example, "outer") == "def f() -> None:\n    b = 2\n\n    c = 3\n"
    assert sections(example) == {"inner", "outer"}
    with pytest.raises(AssertionError, match="no section 'other'"):
        section(example, "other")
