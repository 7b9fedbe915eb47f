"""`rds-force-ssl verify` against a real PostgreSQL server, one scenario per pg_hba.conf rule set,
certificate and TLS setting. The SSL-only rules reproduce what rds.force_ssl=1 does on RDS; the
others are the ways a server can still let a plaintext client in, or a client fail to verify it.
Each scenario asserts the exit code and the evidence shown.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import trustme

from tests.cli.conftest import Run
from tests.cli.pgserver import (
    ADDRESS,
    APP_DB,
    APP_USER,
    CIPHERS_LEGACY,
    HBA_APP_SSL_ONLY,
    HBA_HOST,
    HBA_PLAINTEXT_PASSWORD,
    HBA_SSL_ONLY,
    HBA_SSL_ONLY_LOCAL_PASSWORD,
    HBA_SSL_ONLY_NO_REJECT,
    HBA_SSL_PASSWORD,
    HOST,
    PASSWORD_RECEIVED,
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
    assert table["plaintext refused"] == (
        "PASS",
        "refused in plaintext by pg_hba.conf: pg_hba.conf rejects connection for host "
        f'"127.0.0.1", user "{APP_USER}", database "{APP_DB}", no encryption (SQLSTATE 28000); '
        "the verified session, the same user and database over TLS, got past it",
    )
    assert table["verified TLS"][0] == "PASS"
    assert table["verified TLS"][1].startswith("TLSv1.3 TLS_AES_256_GCM_SHA384 256 bits")
    assert table["verified TLS"][1].endswith(
        "(pg_stat_ssl); sslmode=verify-full: CA and host name verified before the password was sent"
    )
    status, evidence = table["certificate"]
    assert status == "PASS"
    assert f"subject CN={HOST}" in evidence
    assert re.search(r"server certificate expires \d{4}-\d\d-\d\d \(36[45] days\)", evidence)
    assert "expires 3000-01-01" in evidence  # the test CA's own expiry, counted
    assert evidence.endswith("checked: chain and host name by libpq")
    assert table["settings"] == ("PASS", "rds.force_ssl=1; ssl_min_protocol_version=TLSv1.2")
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
    assert rows(run.out)["plaintext refused"] == (
        "FAIL",
        "a plaintext client was asked for SASL (SCRAM-SHA-256); the probe closed without "
        "answering (no password of any kind was sent)",
    )
    assert "verdict: NOT ENFORCED (exit 1)" in run.out


def test_trust_line_opens_a_plaintext_session(pg: PgServer, run_verify: Verify) -> None:
    pg.configure(hba=(*HBA_SSL_ONLY[:1], f"hostnossl all all {ADDRESS}/32 trust"))
    run = run_verify()
    assert run.code == 1
    assert rows(run.out)["plaintext refused"][1].startswith(
        "a plaintext client was let in without any password (trust)"
    )


def backends_that_received_a_password(log: str) -> set[str]:
    return {
        m[1]
        for line in log.splitlines()
        if any(p in line for p in PASSWORD_RECEIVED)
        for m in [re.search(r"\[(\d+)\]", line)]
        if m
    }


def tls_backends(log: str) -> set[str]:
    return {
        m[1] for m in re.finditer(r"\[(\d+)\][^\n]*connection authorized: [^\n]*SSL enabled", log)
    }


def test_cleartext_password_auth_receives_no_password_in_plaintext(
    pg: PgServer, run_verify: Verify
) -> None:
    pg.configure(hba=HBA_PLAINTEXT_PASSWORD, log_min_messages="debug5")
    mark = pg.log_mark()
    run = run_verify()
    log = pg.log_since(mark)
    assert run.code == 1
    assert rows(run.out)["plaintext refused"][1].startswith(
        "a plaintext client was asked for a cleartext password"
    )
    # The server logs every password or SASL message it receives: the only backend that got
    # one is the TLS session's (its SCRAM exchange), never the plaintext one.
    received = backends_that_received_a_password(log)
    assert received, log  # the logging is on: the TLS login shows
    assert received <= tls_backends(log), log


@pytest.mark.parametrize("form", ["socket directory", "empty, with PGHOST", "host list"])
def test_a_host_libpq_would_read_as_a_socket_gets_no_password(
    pg: PgServer, run_verify: Verify, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    """libpq ignores sslmode on a Unix-domain socket: a --host naming one (or an empty one that
    falls back to PGHOST, or a list that starts with one) would get the password in the clear
    from a server whose TCP side is SSL-only. It is a usage error before any connection."""
    pg.configure(hba=HBA_SSL_ONLY_LOCAL_PASSWORD, log_min_messages="debug5")
    socket_dir = str(pg.socket_dir)
    host = {
        "socket directory": socket_dir,
        "empty, with PGHOST": "",
        "host list": f"{socket_dir},{HOST}",
    }[form]
    monkeypatch.setenv("PGHOST", socket_dir)
    mark = pg.log_mark()
    run = run_verify(host=host)
    log = pg.log_since(mark)
    assert run.code == 2
    assert run.err.startswith(f"rds-force-ssl: --host {host!r} ")
    assert not [p for p in PASSWORD_RECEIVED if p in log], log
    assert "connection received" not in log  # nothing was even attempted


def test_the_socket_line_does_take_a_password(pg: PgServer) -> None:
    """Positive control for the test above: a client that does use the socket sends one."""
    pg.configure(hba=HBA_SSL_ONLY_LOCAL_PASSWORD, log_min_messages="debug5")
    mark = pg.log_mark()
    with psycopg.connect(
        host=str(pg.socket_dir),
        port=pg.port,
        user=APP_USER,
        dbname=APP_DB,
        password=pg.app_password,
        sslmode="verify-full",  # ignored on a socket: that is the danger
        sslrootcert=str(pg.ca_file),
    ):
        pass
    assert "received password packet" in pg.log_since(mark)


def test_every_connection_dials_the_address_resolved_once(
    pg: PgServer, run_verify: Verify, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`localhost` resolves to ::1 and 127.0.0.1; the server listens on the second only. verify
    picks the address that answers and hands it to libpq as hostaddr, so PGHOSTADDR (here an
    address where nothing listens) cannot send the login elsewhere; the certificate is still
    checked against the name."""
    monkeypatch.setenv("PGHOSTADDR", "127.0.0.99")
    run = run_verify("--json")
    report = json.loads(run.out)
    assert (run.code, report["verdict"]) == (0, "ENFORCED"), run.out
    assert report["target"]["host"] == HOST
    assert report["target"]["address"] == ADDRESS
    assert report["findings"][2]["details"]["checked"] == ["chain and host name by libpq"]


def test_a_user_with_no_line_at_all_proves_nothing(pg: PgServer, run_verify: Verify) -> None:
    """pg_hba.conf names only the app user: another user is refused in plaintext and over TLS
    alike, so the plaintext refusal is not for want of encryption."""
    pg.configure(hba=HBA_APP_SSL_ONLY)
    run = run_verify(user="someone_else")
    table = rows(run.out)
    assert run.code == 2, run.out
    status, evidence = table["plaintext refused"]
    assert status == "ERROR"
    assert "this identity is refused with and without TLS" in evidence
    assert evidence.endswith("pass the --user/--dbname your clients use")
    assert "verdict: INCONCLUSIVE (exit 2)" in run.out


def test_wrong_ca_is_not_verified(run_verify: Verify, tmp_path: Path) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    run = run_verify(sslrootcert=str(other))
    table = rows(run.out)
    assert run.code == 3, run.out
    # The verified session stopped at the certificate, before pg_hba.conf: the probe's own
    # unverified TLS start-up proves the other half.
    assert table["plaintext refused"] == (
        "PASS",
        "refused in plaintext by pg_hba.conf: pg_hba.conf rejects connection for host "
        f'"127.0.0.1", user "{APP_USER}", database "{APP_DB}", no encryption (SQLSTATE 28000); '
        "over TLS the same start-up was asked for SASL (SCRAM-SHA-256-PLUS, SCRAM-SHA-256)",
    )
    assert table["verified TLS"][0] == "FAIL"
    assert "a client that verifies the server cannot connect" in table["verified TLS"][1]
    assert "certificate verify failed" in table["verified TLS"][1]
    status, evidence = table["certificate"]
    assert status == "WARN"
    assert (
        "checked: by libpq, which REFUSED it (see verified TLS); NOT checked: the expiry of "
        + ("the issuer OU=Testing CA")
        in evidence
    )
    assert evidence.endswith("which is not in --sslrootcert")
    assert table["settings"][0] == "SKIP"
    assert "verdict: NOT VERIFIED (exit 3)" in run.out


def test_host_name_mismatch_is_not_verified(run_verify: Verify) -> None:
    run = run_verify(host=ADDRESS)
    status, evidence = rows(run.out)["verified TLS"]
    assert run.code == 3
    assert status == "FAIL"
    assert f'server certificate for "{HOST}"' in evidence
    assert f'does not match host name "{ADDRESS}"' in evidence


def test_verify_ca_sends_no_password_without_channel_binding(run_verify: Verify) -> None:
    run = run_verify("--sslmode", "verify-ca", host=ADDRESS)
    table = rows(run.out)
    assert run.code == 0, run.out
    assert table["verified TLS"][0] == "WARN"
    assert table["verified TLS"][1].endswith(
        "WEAKER: sslmode=verify-ca does not check the host name; SCRAM with channel binding "
        "(channel_binding=require) kept the password off the wire and would fail a relayed "
        "session, but an impostor in the server's place still gets a SCRAM proof it can attack "
        "offline: only verify-full rules that out"
    )
    assert table["certificate"][0] == "WARN"
    assert "NOT checked: the host name (sslmode=verify-ca)" in table["certificate"][1]


def test_require_checks_nothing_and_says_so(
    run_verify: Verify, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PGSSLROOTCERT", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.postgresql/root.crt for libpq to find
    run = run_verify("--sslmode", "require", sslrootcert="")
    table = rows(run.out)
    assert run.code == 0, run.out
    assert table["verified TLS"][0] == "WARN"
    assert (
        "WEAKER: sslmode=require does not check the CA and the host name"
        in (table["verified TLS"][1])
    )
    assert table["certificate"][0] == "WARN"
    assert table["certificate"][1].endswith(
        "NOT checked: the issuer and its expiry (no --sslrootcert), the chain and the host "
        "name (sslmode=require)"
    )


def test_require_with_a_ca_file_is_verify_ca_and_refused(
    run_verify: Verify, pg: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_verify("--sslmode", "require")
    assert run.code == 2
    assert "--sslmode require with a CA file" in run.err
    monkeypatch.setenv("PGSSLROOTCERT", str(pg.ca_file))  # libpq would read it
    assert run_verify("--sslmode", "require", sslrootcert="").code == 2


def test_without_channel_binding_the_weak_modes_send_nothing(
    pg: PgServer, run_verify: Verify
) -> None:
    """A `password` method over TLS cannot bind to the channel: with verify-ca, libpq then
    refuses before sending anything, and says how to go on."""
    pg.configure(hba=HBA_SSL_PASSWORD, log_min_messages="debug5")
    mark = pg.log_mark()
    run = run_verify("--sslmode", "verify-ca", host=ADDRESS)
    log = pg.log_since(mark)
    status, evidence = rows(run.out)["verified TLS"]
    assert run.code == 2, run.out
    assert status == "ERROR"
    assert "channel binding" in evidence
    assert "the password was not sent" in evidence
    assert not backends_that_received_a_password(log), log


def test_allow_unverified_password_sends_it_and_says_so(pg: PgServer, run_verify: Verify) -> None:
    """The real server, SSL-only: everything it says is right, but nothing proved that it was
    the server (verify-ca does not check the name, and no channel binding): never exit 0."""
    pg.configure(hba=HBA_SSL_PASSWORD)
    run = run_verify("--sslmode", "verify-ca", "--allow-unverified-password", host=ADDRESS)
    table = rows(run.out)
    status, evidence = table["verified TLS"]
    assert run.code == 2, run.out
    assert "verdict: INCONCLUSIVE (exit 2)" in run.out
    assert status == "WARN"
    assert (
        "WEAKER: sslmode=verify-ca does not check the host name, and the password was sent "
        "without channel binding (--allow-unverified-password); the server was NOT verified"
    ) in evidence
    assert "the TLS session (server NOT verified)" in table["plaintext refused"][1]
    assert "the verified session" not in run.out


def test_certificate_expiring_in_ten_days_warns(pg: PgServer, run_verify: Verify) -> None:
    pg.issue_expiring_certificate(not_after=datetime.now(UTC) + timedelta(days=10, hours=1))
    pg.configure(hba=HBA_SSL_ONLY, cert="expiring")
    run = run_verify()
    status, evidence = rows(run.out)["certificate"]
    assert run.code == 0
    assert status == "WARN"
    assert "fewer than 30 days left" in evidence
    assert "server certificate expires" in evidence
    assert "(10 days)" in evidence


def test_server_down_is_an_error_never_a_pass(run_verify: Verify) -> None:
    run = run_verify(port=free_port())
    table = rows(run.out)
    assert run.code == 2
    assert table["plaintext refused"] == (
        "ERROR",
        "no answer from the server's SSL rule: connection refused: nothing listens on that port",
    )
    assert table["verified TLS"][0] == "ERROR"
    assert table["certificate"][0] == "ERROR"
    assert "verdict: INCONCLUSIVE (exit 2)" in run.out


def test_a_query_stuck_behind_a_lock_ends_in_an_error_not_a_hang(
    pg: PgServer, run_verify: Verify, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session's query reads pg_extension; with an exclusive lock held on it, the server
    cancels the query at verify's statement_timeout (made short here) instead of letting the
    run wait for ever."""
    from rds_force_ssl.cli import verify

    monkeypatch.setattr(verify, "QUERY_TIMEOUT_MS", 300)
    done: list[Run] = []
    with pg.admin(dbname=APP_DB) as admin:  # pg_extension is each database's own
        admin.autocommit = False
        admin.execute("LOCK TABLE pg_catalog.pg_extension IN ACCESS EXCLUSIVE MODE")
        worker = threading.Thread(target=lambda: done.append(run_verify()), daemon=True)
        worker.start()
        worker.join(timeout=60)  # a liveness guard for the old behaviour, not a timing check
        admin.rollback()
    assert not worker.is_alive(), "verify hung behind the lock"
    [run] = done
    assert run.code == 2, run.out
    status, evidence = rows(run.out)["verified TLS"]
    assert status == "ERROR"
    assert "canceling statement due to statement timeout" in evidence


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
    assert floor["evidence"] == (
        "a client capped at TLSv1.2 was refused: tlsv1 alert protocol version "
        "(TLSV1_ALERT_PROTOCOL_VERSION)"
    )


def test_tls_floor_at_tls12_refuses_tls11(run_verify: Verify) -> None:
    run = run_verify("--check-tls-floor")
    assert run.code == 0
    status, evidence = rows(run.out)["TLS floor"]
    assert status == "PASS"
    assert evidence.startswith("a client capped at TLSv1.1 was refused")


def test_a_floor_below_tls12_fails_the_settings_row(pg: PgServer, run_verify: Verify) -> None:
    pg.configure(hba=HBA_SSL_ONLY, ssl_min_protocol_version="TLSv1.1")
    run = run_verify()
    assert run.code == 1
    assert rows(run.out)["settings"] == (
        "FAIL",
        "ssl_min_protocol_version=TLSv1.1 admits TLS versions deprecated by RFC 8996; set "
        "TLSv1.2 or higher (rds.force_ssl=1; ssl_min_protocol_version=TLSv1.1)",
    )
    assert "verdict: NOT ENFORCED (exit 1)" in run.out


@pytest.fixture
def plain_role(pg: PgServer) -> str:
    """A role without pg_read_all_settings, like an application user on RDS."""
    password = "plain-" + os.urandom(6).hex()
    with pg.admin() as conn:
        conn.execute("DROP ROLE IF EXISTS plain")
        conn.execute(f"CREATE ROLE plain LOGIN PASSWORD '{password}'")
    return password


def test_a_hidden_floor_says_why_and_the_handshake_shows_the_truth(
    pg: PgServer, run_verify: Verify, plain_role: str
) -> None:
    """The role may not read ssl_min_protocol_version, so the settings row says why it is not
    shown; the floor probe then finds that TLS 1.1 is accepted."""
    pg.configure(hba=HBA_SSL_ONLY, ssl_min_protocol_version="TLSv1", ssl_ciphers=CIPHERS_LEGACY)
    run = run_verify("--check-tls-floor", user="plain", password=plain_role, dbname="postgres")
    table = rows(run.out)
    assert table["settings"] == (
        "PASS",
        "rds.force_ssl=1; ssl_min_protocol_version not shown: this role may not read it (it "
        "needs pg_read_all_settings; the RDS master user has it)",
    )
    assert table["TLS floor"] == (
        "FAIL",
        "a TLSv1.1 handshake completed (ssl_min_protocol_version=not shown, TLSv1.2 expected)",
    )
    assert run.code == 1


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
    certificate = report["findings"][2]["details"]
    assert certificate["checked"] == ["chain and host name by libpq"]
    assert certificate["not_checked"] == []
    assert [c["not_after"][:10] for c in certificate["ca_chain"]] == ["3000-01-01"]
    assert "password" not in json.dumps(report["target"])
    # which libpq did the login: the [cli] extra's, in the test environment
    from rds_force_ssl.cli import libpq

    assert report["libpq"]["path"] == (libpq.vendored() or ["?"])[0]
    assert re.fullmatch(r"1[3-9]\.\d+|[2-9]\d\.\d+", report["libpq"]["version"])


def verify_args(pg: PgServer) -> list[str]:
    """`rds-force-ssl verify` against the test server, as the app user, verify-full."""
    return [
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
    exe = str(Path(sys.executable).parent / "rds-force-ssl")
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


def test_the_system_libpq_serves_when_psycopg_binary_is_absent(
    run_verify: Verify, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rds_force_ssl.cli import libpq

    monkeypatch.setitem(sys.modules, "psycopg_binary", None)
    libpq.load.cache_clear()
    try:
        assert libpq.candidates() == list(libpq.SYSTEM_NAMES[sys.platform])
        run = run_verify()
    finally:
        libpq.load.cache_clear()
    assert run.code == 0, run.out
