"""The sample app as CI ships it: CDK's own validation on, cdk-nag, cfn-lint and the CDK CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_rds as rds
from cdk_nag import AwsSolutionsChecks

from rds_force_ssl import ForceSsl, report
from stacks.sample_app import compose

ROOT = Path(__file__).resolve().parent.parent
STACK = "RdsForceSslSample"


def test_constructs_resolves_to_the_real_package() -> None:
    import constructs

    assert not (ROOT / "constructs" / "__init__.py").exists()
    assert hasattr(constructs, "Construct")
    assert Path(constructs.__file__).resolve().parent != (ROOT / "constructs").resolve()


def _unacknowledged(assembly: Path, plugin: str) -> list[tuple[str, str]]:
    rep = json.loads((assembly / "validation-report.json").read_text())
    return sorted(
        (v["ruleName"], c["constructPath"])
        for pr in rep["pluginReports"]
        if pr["pluginName"] == plugin
        for v in pr["violations"]
        for c in v["violatingConstructs"]
    )


@pytest.fixture(scope="module")
def nagged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample app synthesized with CDK's built-in validation and cdk-nag AwsSolutions."""
    out = tmp_path_factory.mktemp("nag") / "cdk.out"
    app = cdk.App(
        outdir=str(out),
        # Keep going on findings so the test can list them all, not just fail on the first.
        context={"@aws-cdk/core:failSynthOnValidationErrors": False},
    )
    compose(app)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()
    return out


def test_no_unacknowledged_cdk_nag_findings(nagged: Path) -> None:
    assert _unacknowledged(nagged, "AwsSolutions") == []


def test_every_acknowledgment_has_a_reason(nagged: Path) -> None:
    rep = json.loads((nagged / "validation-report.json").read_text())
    acknowledged = [
        v
        for pr in rep["pluginReports"]
        if pr["pluginName"] == "AwsSolutions"
        for v in pr.get("suppressedViolations", [])
    ]
    rules = {v["ruleName"] for v in acknowledged}
    assert {"AwsSolutions-SF1", "AwsSolutions-SF2", "AwsSolutions-RDS3"} <= rules
    assert all(len(v["reason"]) > 40 for v in acknowledged)


def test_builtin_cloudformation_validation_finds_no_errors(nagged: Path) -> None:
    rep = json.loads((nagged / "validation-report.json").read_text())
    errors = [
        (v["ruleName"], c["constructPath"])
        for pr in rep["pluginReports"]
        if pr["pluginName"] == "CloudFormation Validate"
        for v in pr["violations"]
        if v.get("severity") == "error"
        for c in v["violatingConstructs"]
    ]
    assert errors == []


def test_sample_resources(nagged: Path) -> None:
    template = json.loads((nagged / f"{STACK}.template.json").read_text())
    types = Counter(r["Type"] for r in template["Resources"].values())
    # The PostgreSQL and MySQL instances, the cluster's writer and reader.
    assert types["AWS::RDS::DBInstance"] == 4
    assert types["AWS::RDS::DBParameterGroup"] == 2  # postgres16, mysql8.4
    assert types["AWS::RDS::DBClusterParameterGroup"] == 1
    assert types["Custom::RdsForceSslReboot"] == 3
    assert types["AWS::StepFunctions::StateMachine"] == 1
    assert types["AWS::EC2::NatGateway"] == 0
    # The MySQL instance defers its changes to its window: the stack's schedule, one rule and
    # the permission for it to invoke the poller. The guard (guard=True) adds its three rules
    # (CloudTrail's RDS calls, RDS's events, the sweep), which send to its queue, not a Lambda.
    assert types["AWS::Events::Rule"] == 1 + 3
    assert types["AWS::Lambda::Permission"] == 1
    assert types["AWS::SQS::Queue"] == 2  # the guard's queue and its dead letters
    assert types["AWS::Lambda::EventSourceMapping"] == 1
    assert types["AWS::CloudWatch::Alarm"] == 1
    assert types["AWS::SNS::Topic"] == 1
    # Only the Provider's waiter keeps a separate policy; every other role carries its own.
    assert types["AWS::IAM::Policy"] == 1
    outputs = template["Outputs"]
    psql = json.dumps(outputs["PsqlCommand"]["Value"])
    assert "sslmode=verify-full sslrootcert=global-bundle.pem" in psql
    reboot = next(k for k in template["Resources"] if k.startswith("ForceSslReboot"))
    assert outputs["ForceSslOutcome"]["Value"] == {"Fn::GetAtt": [reboot, "Outcome"]}
    assert outputs["ForceSslRebooted"]["Value"] == {"Fn::GetAtt": [reboot, "Rebooted"]}
    assert report.protected(nagged) == [
        {
            "stack": STACK,
            "database": f"{STACK}/Cluster",
            "protected_by": f"{STACK}/ClusterForceSsl",
            "kind": "cluster",
            "reboot": "immediate",
            "parameters": {"rds.force_ssl": "1", "ssl_min_protocol_version": "TLSv1.2"},
            "enforced": True,
        },
        {
            "stack": STACK,
            "database": f"{STACK}/Database",
            "protected_by": f"{STACK}/ForceSsl",
            "kind": "instance",
            "reboot": "immediate",
            "parameters": {"rds.force_ssl": "1", "ssl_min_protocol_version": "TLSv1.2"},
            "enforced": True,
        },
        {
            # The baseline's TLSv1.2 floor needs no parameter on MySQL 8.0+ (engine table).
            "stack": STACK,
            "database": f"{STACK}/MySql",
            "protected_by": f"{STACK}/MySqlForceSsl",
            "kind": "instance",
            "reboot": "maintenance-window",
            "parameters": {"require_secure_transport": "1"},
            "enforced": True,
        },
    ]


def test_report_exit_codes(
    tmp_path: Path, nagged: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert report.main([str(nagged)]) == 0
    assert f"protected: {STACK}/Database (instance)" in capsys.readouterr().out
    assert report.main([str(tmp_path)]) == 2


def l1_db(
    stack: cdk.Stack, engine: str = "postgres", version: str = "16.9", **kwargs: Any
) -> rds.CfnDBInstance:
    """The smallest L1 instance the report tests protect."""
    return rds.CfnDBInstance(
        stack,
        "Db",
        engine=engine,
        engine_version=version,
        db_instance_class="db.t4g.micro",
        allocated_storage="20",
        **kwargs,
    )


def test_report_reads_the_rendered_group_and_catches_an_override(tmp_path: Path) -> None:
    """A raw override is invisible to synth-time checks; the template is the truth."""
    app = cdk.App(outdir=str(tmp_path), builtin_cloud_formation_validation=False)
    stack = cdk.Stack(app, "Overridden")
    group = rds.CfnDBParameterGroup(
        stack, "Group", family="postgres16", description="mine", parameters={"a": "1"}
    )
    ForceSsl(stack, "Ssl", database=l1_db(stack, db_parameter_group_name=group.ref))
    group.add_property_override("Parameters.rds\\.force_ssl", "0")
    app.synth()
    (row,) = report.protected(tmp_path)
    assert row["parameters"]["rds.force_ssl"] == "0"
    assert row["enforced"] is False
    assert report.main([str(tmp_path)]) == 1


def test_report_catches_a_database_overridden_onto_another_group(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The group still enforces, but the database no longer uses it: the report used to say
    "protected" here."""
    app = cdk.App(outdir=str(tmp_path), builtin_cloud_formation_validation=False)
    stack = cdk.Stack(app, "Swapped")
    db = l1_db(stack, "mysql", "8.0.39")
    ForceSsl(stack, "Ssl", database=db)
    db.add_property_override("DBParameterGroupName", "default.mysql8.0")
    app.synth()
    (row,) = report.protected(tmp_path)
    assert row["parameters"] == {"require_secure_transport": "1"}
    assert row["enforced"] is False
    assert row["why"] == (
        'the database\'s DBParameterGroupName is "default.mysql8.0", not the group ForceSsl wrote'
    )
    assert report.main([str(tmp_path)]) == 1
    assert "NOT ENFORCED in the template: Swapped/Db (instance)" in capsys.readouterr().out


def test_report_reads_the_stacks_of_a_stage(tmp_path: Path) -> None:
    """A Stage's stacks are synthesized into a nested assembly (assembly-<stage>/)."""
    app = cdk.App(outdir=str(tmp_path), builtin_cloud_formation_validation=False)
    for scope in (app, cdk.Stage(app, "Prod")):
        stack = cdk.Stack(scope, "Shop")
        ForceSsl(stack, "Ssl", database=l1_db(stack))
    app.synth()
    rows = report.protected(tmp_path)
    assert sorted((row["database"], row["enforced"]) for row in rows) == [
        ("Prod/Shop/Db", True),
        ("Shop/Db", True),
    ]


def cdk_synth(out: Path, *app: str) -> subprocess.CompletedProcess[str]:
    """`npx cdk synth` with the pinned CLI; ``app`` overrides cdk.json's app command."""
    npx = shutil.which("npx")
    if npx is None or not (ROOT / "node_modules" / ".bin" / "cdk").exists():
        pytest.fail("the pinned CDK CLI is not installed: run `npm ci` (make setup does)")
    env = dict(os.environ)
    # cdk.json runs `python3 app.py`: put this interpreter first on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        [npx, "cdk", "synth", "-q", "-o", str(out), *(["--app", app[0]] if app else [])],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.synth_cli
def test_cdk_cli_synth_then_cfn_lint(tmp_path: Path) -> None:
    """`npx cdk synth` of app.py, then cfn-lint with zero errors (and zero warnings, but the
    one ignored in .cfnlintrc.yaml)."""
    out = tmp_path / "cdk.out"
    synth = cdk_synth(out)
    assert synth.returncode == 0, synth.stderr[-3000:]
    assert "rds-force-ssl enforce: 3 COMPLIANT, 0 NON_COMPLIANT" in synth.stderr
    templates = sorted(out.glob("*.template.json"))
    assert [t.name for t in templates] == [f"{STACK}.template.json"]
    lint = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), *map(str, templates)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    # cfn-lint's exit code is a bit mask: 2 errors, 4 warnings, 8 informational.
    assert lint.returncode == 0, lint.stdout[-3000:]


@pytest.mark.synth_cli
def test_a_non_compliant_app_fails_synth_in_audit_mode(tmp_path: Path) -> None:
    synth = cdk_synth(tmp_path / "cdk.out", "python3 tests/fixtures/noncompliant_app.py")
    assert synth.returncode != 0
    assert "[RFS1] NonCompliant/DefaultGroup: uses the engine's default parameter group" in (
        synth.stderr
    )
    assert "[RFS2] NonCompliant/SslOff: parameter group" in synth.stderr
    assert (
        "[RFS1] NonCompliant/Mysql: uses the engine's default parameter group, whose "
        "require_secure_transport" in synth.stderr
    )
    assert "[RFS8] NonCompliant/Oracle: RDS for Oracle cannot be made SSL-only" in synth.stderr
    assert (
        "rds-force-ssl audit: 0 COMPLIANT, 3 NON_COMPLIANT, 1 NOT_APPLICABLE"
        in synth.stdout + synth.stderr
    )
