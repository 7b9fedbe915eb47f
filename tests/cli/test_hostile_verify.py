"""`rds-force-ssl verify` against hostile servers of the tests' own (tests/cli/hostile.py), on
loopback: each attack must end in a clean verdict, within the run's deadline and the
connection's byte cap, with nothing the server wrote reaching the terminal raw, and never exit
0 for a server that was not verified.

A server that is still serving when the run returns shows that the client ended by itself (each
server stops on its own only after its lifetime); no test reads a clock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from rds_force_ssl import cli
from rds_force_ssl.cli.libpq import MAX_BYTES as PG_MAX_BYTES
from rds_force_ssl.cli.verify import Target, chain_verified
from rds_force_ssl.cli.verify_mysql import MAX_SESSION_BYTES, check_tls
from tests.cli import hostile
from tests.cli.conftest import Run

PASSWORD = "hostile-test-password"  # what the impostors may receive
# Escape sequences that set the window title, clear the screen and move the cursor, a fake
# verdict line, a bidirectional override, and 60,000 characters more on the same line.
FORGED = (
    b"\x1b]0;owned\x07\x1b[2J\x1b[H\r\n1 ENFORCED, 0 NOT_ENFORCED (exit 0)\n"
    b"verdict: ENFORCED (exit 0)\xe2\x80\xae" + b"A" * 60000
)


@pytest.fixture
def run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Callable[..., Run]:
    """``rds-force-ssl verify`` in-process, with the password in both engines' variables, no
    CA file of libpq's own, and the output checked for what must never be there."""
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    monkeypatch.setenv("MYSQL_PWD", PASSWORD)
    monkeypatch.delenv("PGSSLROOTCERT", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.postgresql/root.crt

    def go(*argv: str) -> Run:
        code = cli.main(["verify", "--user", "app", *argv])
        captured = capsys.readouterr()
        text = captured.out + captured.err
        assert PASSWORD not in text
        assert "internal error" not in text, text
        # Nothing a server sent may reach the terminal as a control character.
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f\u202e]", text), text
        return Run(code, captured.out, captured.err)

    return go


def rows(out: str) -> dict[str, tuple[str, str]]:
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


@pytest.fixture
def certs(tmp_path: Path) -> hostile.Certificates:
    return hostile.certificates(tmp_path)


def mysql(port: int, *extra: str) -> tuple[str, ...]:
    return ("--engine", "mysql", "--host", "localhost", "--port", str(port), *extra)


def pg(port: int, *extra: str) -> tuple[str, ...]:
    return ("--host", "localhost", "--port", str(port), "--dbname", "appdb", *extra)


# ---- 1. MySQL: one deadline for the whole run ------------------------------------------------
def test_a_trickled_mysql_greeting_ends_at_the_runs_deadline(
    run: Callable[..., Run], certs: hostile.Certificates
) -> None:
    with hostile.serve(hostile.mysql_trickle()) as server:
        done = run(*mysql(server.port, "--sslrootcert", str(certs.ca_file), "--timeout", "1"))
        assert not server.stop.is_set()  # the run ended by itself, the server still trickling
    assert done.code == 2, done.out
    assert "verdict: INCONCLUSIVE (exit 2)" in done.out
    assert rows(done.out)["verified TLS"] == (
        "ERROR",
        "the login: no answer by the run's deadline (--timeout)",
    )


# ---- 2. MySQL: memory bounded before authentication ------------------------------------------
def test_a_chain_of_16_mb_mysql_packets_is_cut_at_the_byte_cap(
    run: Callable[..., Run], certs: hostile.Certificates
) -> None:
    with hostile.serve(hostile.mysql_flood) as server:
        done = run(*mysql(server.port, "--sslrootcert", str(certs.ca_file)))
        assert not server.stop.is_set()
    assert done.code == 2, done.out
    status, evidence = rows(done.out)["verified TLS"]
    assert status == "ERROR"
    assert f"the server sent more than {MAX_SESSION_BYTES} bytes" in evidence
    # What the server got onto the wire: the cap and what the two kernels' buffers hold, where
    # PyMySQL alone read a chain of 16 MB packets to the end (about 3 times that in memory).
    assert server.sent < 32 * MAX_SESSION_BYTES, server.sent


# ---- 3. PostgreSQL: a login that gets no answer to its query ---------------------------------
def test_a_postgres_query_without_an_answer_ends_at_the_runs_deadline(
    run: Callable[..., Run], certs: hostile.Certificates
) -> None:
    """verify-full, with a certificate from the trusted CA: libpq logs in and sends its query,
    which the server never answers (statement_timeout is the server's to keep)."""
    impostor = hostile.pg_impostor(certs.context, after_login="silent")
    with hostile.serve(impostor) as server:
        done = run(*pg(server.port, "--sslrootcert", str(certs.ca_file), "--timeout", "2"))
        assert not server.stop.is_set()
    assert any(b"pg_stat_ssl" in q for q in server.received)  # logged in, query sent
    assert done.code == 2, done.out
    table = rows(done.out)
    assert table["verified TLS"] == (
        "ERROR",
        "the query: no answer by the run's deadline (--timeout)",
    )
    # The login itself verified the certificate, and got past pg_hba.conf: both are said.
    assert "checked: chain and host name by libpq" in table["certificate"][1]
    assert table["plaintext refused"][0] == "PASS"


def test_a_postgres_answer_that_never_ends_is_cut_at_the_byte_cap(
    run: Callable[..., Run], certs: hostile.Certificates
) -> None:
    impostor = hostile.pg_impostor(certs.context, after_login="flood")
    with hostile.serve(impostor) as server:
        done = run(*pg(server.port, "--sslrootcert", str(certs.ca_file)))
        assert not server.stop.is_set()
    assert done.code == 2, done.out
    status, evidence = rows(done.out)["verified TLS"]
    assert (status, evidence) == (
        "ERROR",
        f"the query: the server sent more than {PG_MAX_BYTES} bytes",
    )
    assert server.sent < 32 * PG_MAX_BYTES, server.sent


def test_a_postgres_login_that_never_ends_is_cut_at_the_byte_cap(
    run: Callable[..., Run], certs: hostile.Certificates
) -> None:
    """AuthenticationOk, then one data row without end before ReadyForQuery: libpq reads it
    inside PQconnectPoll, where the byte cap holds as it does for the query."""
    with hostile.serve(hostile.flood_at_login(certs.context)) as server:
        done = run(*pg(server.port, "--sslrootcert", str(certs.ca_file)))
        assert not server.stop.is_set()
    assert done.code == 2, done.out
    assert rows(done.out)["verified TLS"] == (
        "ERROR",
        f"the login: the server sent more than {PG_MAX_BYTES} bytes",
    )
    assert server.sent < 32 * PG_MAX_BYTES, server.sent


# ---- 4. Output that cannot be forged ---------------------------------------------------------
def test_postgres_error_and_certificate_text_cannot_write_to_the_terminal(
    run: Callable[..., Run], tmp_path: Path, certs: hostile.Certificates
) -> None:
    context = hostile.self_signed(tmp_path, common_name="db\x1b[2J\x1b]0;owned\x07")
    with hostile.serve(hostile.pg_impostor(context, refusal=FORGED)) as server:
        done = run(*pg(server.port, "--sslrootcert", str(certs.ca_file)))
    table = rows(done.out)
    assert done.code == 2, done.out
    assert not any(
        line.startswith(("1 ENFORCED", "verdict: ENFORCED")) for line in done.out.split("\n")
    )
    assert max(len(line) for line in done.out.splitlines()) < 2000
    assert r"\x1b]0;owned\x07\x1b[2J\x1b[H\x0d\x0a1 ENFORCED" in table["plaintext refused"][1]
    assert "...(+" in table["plaintext refused"][1]  # cut where quoted, the rest said
    # (RFC 4514 writes the ";" as "\;", and the table doubles that backslash.)
    assert r"subject CN=db\x1b[2J\x1b]0\\;owned\x07;" in table["certificate"][1]
    assert done.out.splitlines()[-1] == "verdict: INCONCLUSIVE (exit 2)"


def test_under_json_the_servers_words_are_kept_whole_and_escaped_by_json(
    run: Callable[..., Run], certs: hostile.Certificates
) -> None:
    """--json carries what the server said as it said it (cut at the same length), and JSON's
    own escapes keep it off the terminal."""
    with hostile.serve(hostile.pg_impostor(certs.context, refusal=FORGED)) as server:
        done = run(*pg(server.port, "--sslrootcert", str(certs.ca_file)), "--json")
    assert "\\u001b]0;owned\\u0007" in done.out  # JSON's escape, not a raw ESC
    plaintext = json.loads(done.out)["findings"][0]
    assert "\x1b]0;owned\x07\x1b[2J" in plaintext["evidence"]
    assert plaintext["details"]["message"] == FORGED.decode()  # the whole message, raw


def test_mysql_err_before_the_greeting_is_escaped_and_never_called_tls(
    run: Callable[..., Run], certs: hostile.Certificates
) -> None:
    with hostile.serve(hostile.mysql_error(1130, FORGED)) as server:
        done = run(*mysql(server.port, "--sslrootcert", str(certs.ca_file)))
    table = rows(done.out)
    assert done.code == 2, done.out
    status, evidence = table["verified TLS"]
    assert status == "ERROR"
    assert evidence.startswith(
        r"could not log in: the server refused before any TLS (in plaintext, unverified): "
        r"\x1b]0;owned\x07"
    )
    assert evidence.endswith("(MySQL error 1130)")
    assert "checked: chain" not in done.out
    assert done.out.splitlines()[-1] == "verdict: INCONCLUSIVE (exit 2)"


@pytest.mark.parametrize("code", [1045, 1130, 1040])
def test_an_err_packet_before_the_greeting_is_no_tls_evidence(
    code: int, certs: hostile.Certificates
) -> None:
    """6. The login's own record of the conversation says no TLS was made, so the certificate
    row cannot say the chain was checked (chain_verified: not looked at)."""
    target = Target("127.0.0.1", 0, "", "app", "verify-full", str(certs.ca_file))
    with hostile.serve(hostile.mysql_error(code, b"go away")) as server:
        finding, view = check_tls(
            Target(**{**target.__dict__, "port": server.port}), password=PASSWORD
        )
    assert view is None
    assert finding.details["tls_established"] is False
    assert "before any TLS" in finding.evidence
    assert chain_verified(finding, sslmode="verify-full") is None


def test_a_mysql_version_string_cannot_write_to_the_terminal(
    run: Callable[..., Run], certs: hostile.Certificates
) -> None:
    greeting = hostile.mysql_greeting_without_tls(b"8.0.1\x1b[2J\x1b]0;owned\x07" + b"v" * 5000)
    with hostile.serve(greeting) as server:
        done = run(*mysql(server.port, "--sslrootcert", str(certs.ca_file)))
    status, evidence = rows(done.out)["plaintext refused"]
    assert (done.code, status) == (1, "FAIL"), done.out
    assert evidence.startswith(r"the server (8.0.1\x1b[2J\x1b]0;owned\x07vvv")
    assert "...(+" in evidence
    assert evidence.endswith("every client of this server connects in plaintext")


# ---- 5. No exit 0 for a server that was not verified -----------------------------------------
def test_a_mysql_impostor_under_require_never_passes(
    run: Callable[..., Run], tmp_path: Path
) -> None:
    context = hostile.self_signed(tmp_path, common_name="impostor")
    with hostile.serve(hostile.mysql_impostor(context)) as server:
        done = run(*mysql(server.port, "--sslmode", "require", "--allow-unverified-password"))
    assert server.received  # it got the login, as --allow-unverified-password allows
    table = rows(done.out)
    assert done.code == 2, done.out
    assert table["plaintext refused"][0] == "WARN"
    assert "NOT verified" in table["plaintext refused"][1]
    assert "read over the verified session" not in done.out
    assert done.out.splitlines()[-1] == "verdict: INCONCLUSIVE (exit 2)"


def test_a_mysql_impostor_with_a_certificate_of_the_ca_for_another_name_never_passes(
    run: Callable[..., Run], tmp_path: Path
) -> None:
    """verify-ca: the certificate is the CA's, but for another host (any RDS instance's is)."""
    certs = hostile.certificates(tmp_path, names=("impostor.example",))
    with hostile.serve(hostile.mysql_impostor(certs.context)) as server:
        done = run(
            *mysql(server.port, "--sslrootcert", str(certs.ca_file), "--sslmode", "verify-ca"),
            "--allow-unverified-password",
        )
    assert done.code == 2, done.out
    assert "read over the verified session" not in done.out


def test_the_mysql_impostor_passes_where_it_is_verified(
    run: Callable[..., Run], certs: hostile.Certificates
) -> None:
    """The control: the same server, with a certificate for the name verified, is as good as
    the real one; so the refusals above are for want of verification, not of protocol."""
    with hostile.serve(hostile.mysql_impostor(certs.context)) as server:
        done = run(*mysql(server.port, "--sslrootcert", str(certs.ca_file)), "--json")
    report = json.loads(done.out)
    assert (done.code, report["verdict"]) == (0, "ENFORCED"), done.out


def test_a_postgres_impostor_under_require_never_passes(
    run: Callable[..., Run], tmp_path: Path
) -> None:
    context = hostile.self_signed(tmp_path, common_name="impostor")
    with hostile.serve(hostile.pg_impostor(context)) as server:
        done = run(*pg(server.port, "--sslmode", "require", "--allow-unverified-password"))
    table = rows(done.out)
    assert done.code == 2, done.out
    assert table["verified TLS"][0] == "WARN"
    assert "the server was NOT verified" in table["verified TLS"][1]
    assert "the TLS session (server NOT verified)" in table["plaintext refused"][1]
    assert "the verified session" not in done.out
    assert done.out.splitlines()[-1] == "verdict: INCONCLUSIVE (exit 2)"


def test_the_postgres_impostor_passes_where_it_is_verified(
    run: Callable[..., Run], certs: hostile.Certificates
) -> None:
    with hostile.serve(hostile.pg_impostor(certs.context)) as server:
        done = run(*pg(server.port, "--sslrootcert", str(certs.ca_file)))
    assert done.code == 0, done.out


# ---- 7. Clean messages, not internal errors; 8. --timeout ------------------------------------
def test_the_commands_default_deadline_is_the_verifiers() -> None:
    from rds_force_ssl.cli import verify
    from rds_force_ssl.cli.commands import verify as command

    assert command.VERIFY_TIMEOUT_S == verify.DEFAULT_TIMEOUT_S


def test_a_mysql_greeting_with_a_version_that_is_no_number(
    run: Callable[..., Run], certs: hostile.Certificates
) -> None:
    greeting = hostile.mysql_greeting_then_tls(b"evil\x1b[31m", certs.context)
    with hostile.serve(greeting) as server:
        done = run(*mysql(server.port, "--sslrootcert", str(certs.ca_file)))
    status, evidence = rows(done.out)["verified TLS"]
    assert (done.code, status) == (2, "ERROR"), done.out
    assert evidence.startswith(
        "could not log in: the server's greeting is not one a MySQL client can read"
    )
    assert r"'evil\\x1b[31m'" in evidence  # the repr's backslash, itself escaped


@pytest.mark.parametrize("timeout", ["9.3e9", "1e300", "0", "-1", "nan", "inf"])
def test_a_timeout_out_of_range_is_a_usage_error(
    run: Callable[..., Run], certs: hostile.Certificates, timeout: str
) -> None:
    done = run(*pg(1, "--sslrootcert", str(certs.ca_file), "--timeout", timeout))
    assert done.code == 2
    assert "--timeout" in done.err
    assert "at most 3600 seconds" in done.err


def test_a_user_name_that_is_not_utf8_is_a_usage_error(
    run: Callable[..., Run], certs: hostile.Certificates
) -> None:
    # How Python hands over a command-line byte that is not UTF-8: a lone surrogate.
    done = run(*pg(1, "--sslrootcert", str(certs.ca_file)), "--user", "app\udcff")
    assert done.code == 2
    assert "--user: the value is not valid UTF-8 text" in done.err


# ---- 8. The certificate row says what the SSLRequest got --------------------------------------
def test_an_error_response_to_the_sslrequest_is_called_one(
    run: Callable[..., Run], certs: hostile.Certificates
) -> None:
    with hostile.serve(hostile.pg_error_everywhere(b"sorry, too many clients already")) as server:
        done = run(*pg(server.port, "--sslrootcert", str(certs.ca_file)))
    status, evidence = rows(done.out)["certificate"]
    assert (done.code, status) == (2, "ERROR"), done.out
    assert "answered the SSLRequest with an error message instead of S or N" in evidence
    assert "with no" not in evidence
