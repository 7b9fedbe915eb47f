"""`rds-force-ssl verify` against a real PostgreSQL server, one scenario per pg_hba.conf rule set.

The SSL-only rules reproduce what rds.force_ssl=1 does on RDS; the others are the ways a server
can still let a plaintext client in. Each scenario asserts the exit code and the evidence shown.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme

from tests.cli.conftest import Run
from tests.cli.pgserver import (
    ADDRESS,
    APP_USER,
    HBA_HOST,
    HBA_PLAINTEXT_PASSWORD,
    HBA_SSL_ONLY,
    HBA_SSL_ONLY_NO_REJECT,
    HOST,
    SSLINFO_DB,
    PgServer,
    free_port,
)

pytestmark = pytest.mark.postgres
Verify = Callable[..., Run]


def rows(out: str) -> dict[str, tuple[str, str]]:
    """The table as {check: (status, evidence)}."""
    found = {}
    for line in out.splitlines():
        m = re.match(
            r"(plaintext refused|verified TLS|certificate|settings|TLS floor)\s+"
            r"(PASS|WARN|FAIL|ERROR|SKIP)\s+(.*)",
            line,
        )
        if m:
            found[m[1]] = (m[2], m[3])
    return found


def test_ssl_only_server_passes(run_verify: Verify) -> None:
    run = run_verify()
    table = rows(run.out)
    assert run.code == 0, run.out
    assert table["plaintext refused"][0] == "PASS"
    assert "pg_hba.conf rejects connection" in table["plaintext refused"][1]
    assert "no encryption" in table["plaintext refused"][1]
    assert table["verified TLS"][0] == "PASS"
    assert "TLSv1.3" in table["verified TLS"][1]
    assert "bits (pg_stat_ssl)" in table["verified TLS"][1]
    assert table["certificate"][0] == "PASS"
    assert f"CN={HOST}" in table["certificate"][1]
    assert table["settings"] == (
        "PASS",
        "rds.force_ssl=1; ssl_min_protocol_version=TLSv1.2",
    )
    assert "verdict: ENFORCED (exit 0)" in run.out


def test_refusal_without_reject_line_reads_no_entry(pg: PgServer, run_verify: Verify) -> None:
    pg.configure(hba=HBA_SSL_ONLY_NO_REJECT)
    run = run_verify()
    assert run.code == 0, run.out
    status, evidence = rows(run.out)["plaintext refused"]
    assert status == "PASS"
    assert "no pg_hba.conf entry" in evidence


def test_host_line_lets_plaintext_reach_authentication(pg: PgServer, run_verify: Verify) -> None:
    pg.configure(hba=HBA_HOST)
    run = run_verify()
    assert run.code == 1, run.out
    status, evidence = rows(run.out)["plaintext refused"]
    assert status == "FAIL"
    assert "plaintext reached authentication" in evidence
    assert "verdict: NOT ENFORCED (exit 1)" in run.out


def test_trust_line_opens_a_plaintext_session(pg: PgServer, run_verify: Verify) -> None:
    pg.configure(hba=(*HBA_SSL_ONLY[:1], f"hostnossl all all {ADDRESS}/32 trust"))
    run = run_verify()
    assert run.code == 1
    assert rows(run.out)["plaintext refused"] == (
        "FAIL",
        "a plaintext session was opened (sslmode=disable)",
    )


def test_cleartext_password_auth_never_receives_the_real_password(
    pg: PgServer, run_verify: Verify
) -> None:
    pg.configure(hba=HBA_PLAINTEXT_PASSWORD)
    mark = pg.log_mark()
    run = run_verify()
    log = pg.log_since(mark)
    assert run.code == 1
    assert rows(run.out)["plaintext refused"][0] == "FAIL"
    # The plaintext attempt met `password` auth and failed: what it sent was not the password.
    assert f'FATAL:  password authentication failed for user "{APP_USER}"' in log
    assert f'Password does not match for user "{APP_USER}"' in log
    authorized = [line for line in log.splitlines() if "connection authorized" in line]
    assert authorized, log
    # The only session that authenticated as the app user is the TLS one.
    assert all("SSL enabled" in line for line in authorized if f"user={APP_USER}" in line), log


def test_wrong_ca_fails_verification_and_names_the_issuer(
    run_verify: Verify, tmp_path: Path
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    run = run_verify(sslrootcert=str(other))
    table = rows(run.out)
    assert run.code == 1
    assert table["verified TLS"][0] == "FAIL"
    assert "certificate verify failed" in table["verified TLS"][1]
    assert "issuer not in --sslrootcert" in table["certificate"][1]
    assert table["settings"][0] == "SKIP"


def test_host_name_mismatch_fails(run_verify: Verify) -> None:
    run = run_verify(host=ADDRESS)
    status, evidence = rows(run.out)["verified TLS"]
    assert run.code == 1
    assert status == "FAIL"
    assert f'server certificate for "{HOST}"' in evidence
    assert f'does not match host name "{ADDRESS}"' in evidence


def test_verify_ca_is_allowed_on_request_and_reported_weaker(run_verify: Verify) -> None:
    run = run_verify("--sslmode", "verify-ca", host=ADDRESS)
    status, evidence = rows(run.out)["verified TLS"]
    assert run.code == 0
    assert status == "WARN"
    assert "WEAKER: sslmode=verify-ca verifies the CA but not the host name" in evidence


def test_require_ignores_the_ca_and_is_reported_weaker(run_verify: Verify, tmp_path: Path) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    run = run_verify("--sslmode", "require", sslrootcert=str(other))
    status, evidence = rows(run.out)["verified TLS"]
    assert run.code == 0
    assert status == "WARN"
    assert "WEAKER: sslmode=require verifies nothing" in evidence


def test_certificate_expiring_in_ten_days_warns(pg: PgServer, run_verify: Verify) -> None:
    pg.issue_expiring_certificate(not_after=datetime.now(UTC) + timedelta(days=10, hours=1))
    pg.configure(hba=HBA_SSL_ONLY, cert="expiring")
    run = run_verify()
    status, evidence = rows(run.out)["certificate"]
    assert run.code == 0
    assert status == "WARN"
    assert "fewer than 30 days left" in evidence
    assert "(10 days)" in evidence


def test_server_down_is_an_error_never_a_pass(run_verify: Verify) -> None:
    run = run_verify(port=free_port())
    table = rows(run.out)
    assert run.code == 2
    assert table["plaintext refused"][0] == "ERROR"
    assert "Connection refused" in table["plaintext refused"][1]
    assert table["verified TLS"][0] == "ERROR"
    assert table["certificate"][0] == "ERROR"
    assert "verdict: INCONCLUSIVE (exit 2)" in run.out


def test_sslinfo_corroborates_where_installed(run_verify: Verify) -> None:
    run = run_verify(dbname=SSLINFO_DB)
    assert run.code == 0
    assert "sslinfo ssl_is_used()=t" in rows(run.out)["verified TLS"][1]


def test_tls_floor_refuses_a_client_capped_below_it(pg: PgServer, run_verify: Verify) -> None:
    pg.configure(hba=HBA_SSL_ONLY, ssl_min_protocol_version="TLSv1.3")
    run = run_verify("--check-tls-floor", "--json")
    report = json.loads(run.out)
    floor = next(f for f in report["findings"] if f["check"] == "TLS floor")
    assert run.code == 0
    assert floor["status"] == "PASS"
    assert "a client capped at TLSv1.2 was refused" in floor["evidence"]


def test_tls_floor_not_probed_when_the_client_cannot_go_lower(
    pg: PgServer, run_verify: Verify
) -> None:
    # TLSv1.2 is the server's default floor; OpenSSL 3 clients will not offer TLSv1.1 at all.
    pg.configure(hba=HBA_SSL_ONLY, ssl_min_protocol_version="TLSv1.2")
    run = run_verify("--check-tls-floor")
    assert run.code == 0
    status, evidence = rows(run.out)["TLS floor"]
    assert status == "SKIP"
    assert "will not offer TLSv1.1" in evidence


def test_json_output_is_machine_readable(run_verify: Verify) -> None:
    run = run_verify("--json")
    report = json.loads(run.out)
    assert report["verdict"] == "ENFORCED"
    assert report["exit_code"] == 0
    assert [f["check"] for f in report["findings"]] == [
        "plaintext refused",
        "verified TLS",
        "certificate",
        "settings",
    ]
    tls = report["findings"][1]["details"]
    assert tls["ssl"] is True
    assert tls["version"] == "TLSv1.3"
    assert tls["bits"] == 256
    assert "password" not in json.dumps(report["target"])


def verify_args(pg: PgServer) -> list[str]:
    """`rds-force-ssl verify` against the test server, as the app user, verify-full."""
    return [
        "verify",
        "--host",
        HOST,
        "--port",
        str(pg.port),
        "--dbname",
        "appdb",
        "--user",
        APP_USER,
        "--sslrootcert",
        str(pg.ca_file),
    ]


def test_password_from_a_named_variable(
    pg: PgServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rds_force_ssl import cli

    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("APP_DB_PASSWORD", pg.app_password)
    code = cli.main([*verify_args(pg), "--password-env", "APP_DB_PASSWORD"])
    assert code == 0, capsys.readouterr().out


def test_password_prompted_on_a_terminal(
    pg: PgServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rds_force_ssl import cli

    prompts: list[str] = []

    def typed(prompt: str) -> str:
        prompts.append(prompt)
        return pg.app_password

    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", typed)
    code = cli.main(verify_args(pg))
    assert code == 0, capsys.readouterr().out
    assert prompts == [f"Password for {APP_USER}: "]


def test_console_script_runs_installed(pg: PgServer) -> None:
    exe = shutil.which("rds-force-ssl") or str(Path(os.__file__).parents[3] / "bin/rds-force-ssl")
    env = {
        **os.environ,
        "PGPASSWORD": pg.app_password,
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    done = subprocess.run(
        [exe, *verify_args(pg)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: ENFORCED (exit 0)" in done.stdout
    assert pg.app_password not in done.stdout + done.stderr
