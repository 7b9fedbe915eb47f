"""The README is the front door, the documentation lives in docs/ as a MkDocs site.

The site is built as CI would publish it, with ``mkdocs build --strict``: mkdocs.yml's
``validation`` makes a broken link, a missing anchor or a page left out of the nav a warning,
and --strict makes any warning fail the build. The README is read on GitHub and PyPI, outside
the site, so its own links into docs/ are checked here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

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
