"""The library as a user installs it.

Build the sdist and, from it, the wheel (once per session); install the wheel into two fresh
virtual environments, one plain and one with ``[cli]``, with the pip that Python's ``venv`` ships;
then, from an app outside this repository, synthesize a protected database with the CDK CLI and
prove the endpoint with the installed ``rds-force-ssl`` command.

Nothing here silences the jsii end-of-life banner on an old Node: the app runs as it would on a
new user's machine, and nothing parses the output the banner shares.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.pgserver import APP_DB, APP_USER, HOST, PgServer

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
NOT_A_USERS = ("PYTHONPATH", "VIRTUAL_ENV", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION")
README_INSTALL = re.compile(r'^pip install "(\./rds-force-ssl(?:\[[a-z,]+\])?)"', re.MULTILINE)


@dataclass(frozen=True)
class Dist:
    sdist: Path
    wheel: Path


@dataclass(frozen=True)
class Venv:
    path: Path

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    def env(self) -> dict[str, str]:
        """A shell with this venv activated, and nothing of ours: no PYTHONPATH, no banner
        silencing, no CI switches."""
        env = {k: v for k, v in os.environ.items() if k not in NOT_A_USERS}
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.path)
        return env

    def run(self, *cmd: str | Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(c) for c in cmd],
            cwd=cwd,
            env={**self.env(), **env},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )


def _ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, f"{done.args} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """sdist, then the wheel built from that sdist (so the sdist is proven complete)."""
    out = tmp_path_factory.mktemp("dist")
    _ok(
        subprocess.run(
            [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    )
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return Dist(sdist, wheel)


def _make_venv(path: Path, requirement: str) -> Venv:
    venv = Venv(path)
    _ok(
        subprocess.run(
            [sys.executable, "-m", "venv", str(path)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    )
    # --no-compile: byte-compiling aws-cdk-lib's 240 MB takes three times as long as installing it,
    # and Python compiles what it imports anyway; what is installed is otherwise the same.
    _ok(venv.run("python", "-m", "pip", "install", "--no-compile", requirement, cwd=path.parent))
    return venv


@pytest.fixture(scope="session")
def venvs(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Venv]]:
    """Two fresh venvs, installed side by side (pip is mostly waiting on the disk)."""
    root = tmp_path_factory.mktemp("venvs")
    wanted = {"plain": str(dist.wheel), "cli": f"{dist.wheel}[cli]"}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(_make_venv, root / name, req) for name, req in wanted.items()}
        made = {name: f.result() for name, f in futures.items()}
    yield made
    shutil.rmtree(root, ignore_errors=True)


def test_the_sdist_and_the_wheel_carry_the_library_its_licence_and_types(dist: Dist) -> None:
    names = zipfile.ZipFile(dist.wheel).namelist()
    assert "rds_force_ssl/handlers/reboot.py" in names
    assert "rds_force_ssl/facts/engines.py" in names
    assert "rds_force_ssl/py.typed" in names
    assert not [n for n in names if n.startswith("constructs/") or n.startswith("tests/")]
    meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
    metadata = zipfile.ZipFile(dist.wheel).read(meta_name).decode()
    # SPDX expression (PEP 639), not the table form that setuptools now warns about on every build.
    assert "License-Expression: Apache-2.0" in metadata
    assert "Provides-Extra: cli" in metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    with tarfile.open(dist.sdist) as sdist:
        members = [m.split("/", 1)[1] for m in sdist.getnames() if "/" in m]
    assert "LICENSE" in members
    assert "constructs/rds_force_ssl/handlers/reboot.py" in members
    assert "constructs/rds_force_ssl/facts/engines.py" in members
    assert not [m for m in members if m.startswith("tests/")]


def test_the_readme_install_lines_work_with_the_pip_venv_ships(
    venvs: dict[str, Venv], tmp_path: Path
) -> None:
    """Every `pip install "./rds-force-ssl..."` line of the README, run from a clone's parent."""
    lines = README_INSTALL.findall((ROOT / "README.md").read_text())
    assert "./rds-force-ssl" in lines, lines
    assert "./rds-force-ssl[cli]" in lines, lines
    clone = tmp_path / "rds-force-ssl"
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    venv = venvs["plain"]
    pip_version = _ok(venv.run("python", "-m", "pip", "--version", cwd=tmp_path)).stdout
    for requirement in lines:
        # --dry-run --no-deps: pip parses the line and builds the project's metadata, which is
        # all that differs from the wheel installs above.
        done = _ok(
            venv.run(
                "python",
                "-m",
                "pip",
                "install",
                "--dry-run",
                "--no-deps",
                "--quiet",
                "--report",
                "-",
                requirement,
                cwd=tmp_path,
            )
        )
        (item,) = json.loads(done.stdout)["install"]
        assert item["metadata"]["name"] == "rds-force-ssl", pip_version
        if requirement.endswith("[cli]"):
            assert item["requested_extras"] == ["cli"]
            assert "cli" in item["metadata"]["provides_extra"]


USER_APP = """\
import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from rds_force_ssl import ForceSsl, SslBaseline

app = cdk.App()
stack = cdk.Stack(app, "UserApp")
vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0, subnet_configuration=[
    ec2.SubnetConfiguration(name="db", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)])
db = rds.DatabaseInstance(stack, "Db",
    engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16_9),
    vpc=vpc, vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED))
ForceSsl(stack, "DbSsl", database=db, min_tls_version="TLSv1.2")
SslBaseline.apply(app, mode="audit")
app.synth()
"""


def test_an_app_outside_the_repository_synthesizes_a_protected_database(
    venvs: dict[str, Venv], tmp_path: Path
) -> None:
    venv = venvs["plain"]
    app = tmp_path / "user-app"
    app.mkdir()
    (app / "app.py").write_text(USER_APP)
    (app / "cdk.json").write_text(json.dumps({"app": "python app.py"}))
    where = _ok(
        venv.run(
            "python",
            "-c",
            "import constructs, rds_force_ssl; "
            "print(rds_force_ssl.__file__); print(constructs.__file__)",
            cwd=app,
        )
    )
    for line in where.stdout.split():
        assert Path(line).is_relative_to(venv.path), where.stdout  # the wheel, not this checkout

    synth = _ok(venv.run(ROOT / "node_modules" / ".bin" / "cdk", "synth", "--quiet", cwd=app))
    template = json.loads((app / "cdk.out" / "UserApp.template.json").read_text())
    resources = template["Resources"]
    groups = [r for r in resources.values() if r["Type"] == "AWS::RDS::DBParameterGroup"]
    assert [g["Properties"]["Parameters"] for g in groups] == [
        {"rds.force_ssl": "1", "ssl_min_protocol_version": "TLSv1.2"}
    ]
    assert [r["Type"] for r in resources.values()].count("Custom::RdsForceSslReboot") == 1
    # The handler code shipped in the wheel reaches the Lambda assets: each function's module.
    manifest = json.loads((app / "cdk.out" / "UserApp.assets.json").read_text())
    asset_dirs = {a["source"]["path"] for a in manifest["files"].values()}
    modules = {
        r["Properties"]["Handler"].rsplit(".", 1)[0]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"].get("Runtime", "").startswith("python")
    }
    assert modules
    for module in modules:
        source = f"{module.replace('.', '/')}.py"  # rds_force_ssl.handlers.reboot -> .../reboot.py
        assert [d for d in asset_dirs if (app / "cdk.out" / d / source).exists()], module
    report = _ok(venv.run("python", "-m", "rds_force_ssl.report", "cdk.out", cwd=app))
    assert "protected: UserApp/Db (instance) by UserApp/DbSsl" in report.stdout
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    if int(node.stdout.strip().lstrip("v").split(".")[0]) not in (22, 24):
        # The run above had the jsii end-of-life banner in it, and still passed.
        assert "end-of-life" in synth.stderr


def _verify(venv: Venv, pg: PgServer, cwd: Path) -> subprocess.CompletedProcess[str]:
    return venv.run(
        "rds-force-ssl",
        "verify",
        "--host",
        HOST,
        "--port",
        str(pg.port),
        "--dbname",
        APP_DB,
        "--user",
        APP_USER,
        "--sslrootcert",
        str(pg.ca_file),
        cwd=cwd,
        PGPASSWORD=pg.app_password,
    )


def test_the_installed_cli_verifies_an_ssl_only_server(
    venvs: dict[str, Venv], pg: PgServer, tmp_path: Path
) -> None:
    done = _verify(venvs["cli"], pg, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: ENFORCED (exit 0)" in done.stdout


def test_the_cli_extra_loads_its_own_libpq_not_the_systems(
    venvs: dict[str, Venv], tmp_path: Path
) -> None:
    """psycopg-binary vendors libpq; if its wheel layout changed, verify would fall back to the
    system's libpq5 (which CI has), and every other test would still pass."""
    script = (
        "import json; from rds_force_ssl.cli import libpq; "
        "print(json.dumps({'vendored': libpq.vendored(), **libpq.describe()}))"
    )
    done = _ok(venvs["cli"].run(venvs["cli"].bin / "python", "-c", script, cwd=tmp_path))
    found = json.loads(done.stdout)
    assert found["vendored"], "no libpq found in psycopg-binary's wheel"
    assert found["path"] == found["vendored"][0]
    assert Path(found["path"]).is_relative_to(venvs["cli"].path)


def test_verify_without_the_cli_extra_exits_2_and_says_what_to_install(
    venvs: dict[str, Venv], pg: PgServer, tmp_path: Path
) -> None:
    """The library alone installs no database driver: verify must say so, not crash."""
    done = _verify(venvs["plain"], pg, tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output
    assert "pip install 'rds-force-ssl[cli]'" in output
    assert pg.app_password not in output
