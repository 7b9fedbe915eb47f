"""The README is the front door, the documentation lives in docs/ as a MkDocs site.

The site is built as CI would publish it, with ``mkdocs build --strict``: mkdocs.yml's
``validation`` makes a broken link, a missing anchor or a page left out of the nav a warning,
and --strict makes any warning fail the build. The README is read on GitHub and PyPI, outside
the site, so its own links into docs/ are checked here.

A sample output in the docs (a fenced block after ``<!-- sample: NAME -->``) is what
tests/docs_samples.py's sample NAME prints now; ``.venv/bin/python -m tests.docs_samples
--write`` rewrites the blocks after a change.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import docs_samples

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_BYTES = 15 * 1024

# [text](target): a target with no scheme, no spaces.
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading, which mkdocs.yml's toc slugify gives it too
    (pymdownx.slugs, case=lower): lowercase, drop what is not a word character, a hyphen or a
    space, spaces to hyphens (so ``verify --engine mysql`` is ``verify---engine-mysql``)."""
    text = heading.replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    return {slug(h) for h in HEADING.findall(FENCE.sub("", markdown))}


def test_the_docs_site_builds_with_strict(tmp_path: Path) -> None:
    """Every page is in the nav, every link and anchor between pages resolves, and the API
    reference is generated from the package (mkdocstrings, paths: [constructs])."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stderr}\n{done.stdout}"
    api = (site / "api" / "index.html").read_text()
    for name in ("ForceSsl", "SslBaseline", "Reboot", "exempt"):
        assert f"rds_force_ssl.{name}" in api, name


def test_the_readme_is_a_short_front_door() -> None:
    text = README.read_text()
    assert len(README.read_bytes()) <= README_MAX_BYTES, "move detail into docs/"
    # The two commands the CI script (.ci/run) and a newcomer rely on.
    assert "make synth" in text
    assert "make test" in text
    assert "No AWS account is needed for either." in text


def test_the_readme_links_into_the_docs_resolve() -> None:
    text = README.read_text()
    checked = 0
    for target in LINK.findall(FENCE.sub("", text)):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        page = ROOT / path if path else README
        assert page.is_file(), f"README links to {target}, which does not exist"
        if anchor:
            assert anchor in anchors(page.read_text()), f"README links to {target}: no anchor"
        checked += 1
    assert checked >= 10


def test_every_docs_page_is_in_the_nav() -> None:
    """The nav names every page (mkdocs --strict also fails on an omitted one); listed here too
    so that the failure names the file."""
    config = (ROOT / "mkdocs.yml").read_text()
    for page in DOCS.rglob("*.md"):
        assert page.relative_to(DOCS).as_posix() in config, page


BLOCKS = docs_samples.all_blocks()


@pytest.mark.parametrize("block", BLOCKS, ids=[f"{b.where}:{b.name}" for b in BLOCKS])
def test_a_sample_output_in_the_docs_is_what_the_code_prints(block: docs_samples.Block) -> None:
    assert block.body is not None, f"{block.where}: no fenced code block right after the marker"
    assert block.name in docs_samples.SAMPLES, f"{block.where}: no sample named {block.name!r}"
    try:
        expected = docs_samples.render(block.name)
    except docs_samples.SampleUnavailable as why:
        # As the CLI tests do: skipped where the server is missing, but never in CI.
        if why.required:
            pytest.fail(f"{why}; {why.variable}=1 forbids skipping")
        pytest.skip(str(why))
    diff = "".join(
        difflib.unified_diff(
            block.body.splitlines(keepends=True),
            expected.splitlines(keepends=True),
            "the page",
            "what the code prints",
        )
    )
    assert block.body == expected, (
        f"{block.where}: sample {block.name} differs from what the code prints; run "
        f"`{docs_samples.WRITE_COMMAND}` and review the diff:\n{diff}"
    )


def test_every_marker_names_a_sample_and_every_sample_is_used() -> None:
    assert docs_samples.problems(BLOCKS) == []
    used = {block.name for block in BLOCKS}
    assert set(docs_samples.SAMPLES) - used == set(), "a sample that no page shows"
    # The ones this test was written for; a marker lost in an edit is a failure, not a skip.
    assert {
        "synth-report",
        "baseline-finding",
        "audit-postgres-fleet",
        "audit-engines-fleet",
        "audit-pending-reboot",
        "audit-denied-certificates",
        "audit-no-region",
        "probe-loopback",
        "verify-postgres",
        "verify-postgres-failing",
        "verify-mariadb",
    } <= used


def test_a_marker_inside_a_code_block_is_an_example_not_a_sample() -> None:
    page = docs_samples.DOCS / "example.md"
    text = "````md\n<!-- sample: nothing -->\n```\nx\n```\n````\n<!-- sample: one -->\n```\n```\n"
    blocks = docs_samples.find_blocks(page, text)
    assert [(b.name, b.body, b.line) for b in blocks] == [("one", "", 7)]
    assert docs_samples.find_blocks(page, "<!-- sample: x -->\ntext\n")[0].body is None


def _cdk_synth(out: Path, *app: str) -> subprocess.CompletedProcess[str]:
    """`npx cdk synth` with the pinned CLI, without colour; ``app`` overrides cdk.json's."""
    npx = shutil.which("npx")
    if npx is None or not (ROOT / "node_modules" / ".bin" / "cdk").exists():
        pytest.fail("the pinned CDK CLI is not installed: run `npm ci` (make setup does)")
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        [npx, "cdk", "synth", "-q", "-o", str(out), *(["--app", app[0]] if app else [])],
        cwd=ROOT,
        env={**os.environ, "PATH": path, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


@pytest.mark.synth_cli
def test_the_synth_report_sample_is_what_make_synth_prints(tmp_path: Path) -> None:
    """The in-process sample against `make synth`'s two commands, with CDK's validation on."""
    out = tmp_path / "cdk.out"
    synth = _cdk_synth(out)
    assert synth.returncode == 0, synth.stderr[-3000:]
    summary = [line for line in synth.stderr.splitlines() if line.startswith("rds-force-ssl ")]
    report = subprocess.run(
        [sys.executable, "-m", "rds_force_ssl.report", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert "\n".join([*summary, report.stdout]) == docs_samples.render("synth-report")


@pytest.mark.synth_cli
def test_the_baseline_finding_sample_is_what_cdk_synth_prints(tmp_path: Path) -> None:
    """The in-process sample, and its CLI formatting, against the CDK CLI on the fixture app."""
    synth = _cdk_synth(tmp_path / "cdk.out", "python3 tests/fixtures/noncompliant_app.py")
    assert synth.returncode != 0
    assert docs_samples.render("baseline-finding") in synth.stderr
