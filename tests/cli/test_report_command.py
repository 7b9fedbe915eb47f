"""`rds-force-ssl report`: what a synthesized app protects, as `python -m rds_force_ssl.report`
prints it, plus --json and the exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest

from rds_force_ssl import ForceSsl, cli, report
from tests.conftest import Sandbox


@pytest.fixture
def assembly(tmp_path: Path) -> Path:
    sandbox = Sandbox(cdk.App(builtin_cloud_formation_validation=False, outdir=str(tmp_path)))
    ForceSsl(sandbox.stack, "DbSsl", database=sandbox.instance())
    return Path(sandbox.app.synth().directory)


def test_report_prints_what_the_module_prints(
    assembly: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert report.main([str(assembly)]) == 0
    module = capsys.readouterr().out
    assert cli.main(["report", str(assembly)]) == 0
    assert capsys.readouterr().out == module
    assert module == "protected: Stack/Db (instance) by Stack/DbSsl: rds.force_ssl=1\n"


def test_report_json(assembly: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", "--json", str(assembly)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["exit_code"] == 0
    [row] = document["protected"]
    assert (row["database"], row["enforced"]) == ("Stack/Db", True)


def test_report_without_an_assembly_exits_2_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no manifest.json in it" in err
    assert "fix: synthesize the app first (cdk synth writes cdk.out)" in err
    assert cli.main(["report", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such folder" in capsys.readouterr().err
    template = tmp_path / "cdk.out" / "Database.template.json"
    template.parent.mkdir()
    template.write_text("{}")
    assert cli.main(["report", str(template)]) == 2
    assert capsys.readouterr().err == (
        f"rds-force-ssl: {template}: a file, not a folder: report reads the whole cloud "
        "assembly\n"
        "  fix: name the folder that holds it and manifest.json (cdk.out), e.g. "
        f"rds-force-ssl report {template.parent}\n"
    )


def test_report_of_an_app_that_protects_nothing_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox = Sandbox(cdk.App(builtin_cloud_formation_validation=False, outdir=str(tmp_path)))
    sandbox.instance()
    out = Path(sandbox.app.synth().directory)
    assert cli.main(["report", str(out)]) == 1
    assert "no database is protected by rds-force-ssl (exit 1)" in capsys.readouterr().out


def test_report_names_the_guard_and_what_it_watches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rds_force_ssl import SslGuard

    app = cdk.App(builtin_cloud_formation_validation=False, outdir=str(tmp_path))
    sandbox = Sandbox(app)
    ForceSsl(sandbox.stack, "DbSsl", database=sandbox.instance())
    SslGuard.of(sandbox.stack)
    out = Path(app.synth().directory)
    assert report.main([str(out)]) == 0
    module = capsys.readouterr().out
    assert cli.main(["report", str(out)]) == 0
    assert capsys.readouterr().out == module
    assert module.splitlines()[-1] == (
        "guarded: every database and proxy of the account and region it is deployed to: "
        "EventBridge on CloudTrail, a sweep every 60 min, by Stack/RdsForceSslGuard"
    )
    assert cli.main(["report", "--json", str(out)]) == 0
    [guard] = json.loads(capsys.readouterr().out)["guards"]
    assert guard["guard"] == "Stack/RdsForceSslGuard"
