"""The verify decisions as pure functions: what the server said -> PASS / WARN / FAIL / ERROR, and
which verdict a FAIL proves. These cover what the local PostgreSQL 15 cannot produce (libpq
wordings of other versions, a session without SSL behind a proxy, expired CAs) and the command
line's usage errors, before any connection."""

from __future__ import annotations

import json
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rds_force_ssl import cli
from rds_force_ssl.cli import libpq, pgwire
from rds_force_ssl.cli.errors import CliError
from rds_force_ssl.cli.verify import (
    EXIT_CODES,
    GRACE_S,
    UNVERIFIED,
    Conclusion,
    Finding,
    Job,
    ServerView,
    Status,
    Target,
    certificate_check,
    certificate_finding,
    chain_verified,
    classify_floor,
    classify_tls_error,
    conclusion,
    plaintext_finding,
    resolve,
    server_verified,
    settings_finding,
    settle_plaintext,
    tls_finding,
    version_below,
)
from rds_force_ssl.cli.wire import Outcome, Verdict

AT = 'connection to server at "10.0.0.5", port 5432 failed: '
NOW = datetime(2026, 1, 1, tzinfo=UTC)
FULL = Target("db", 5432, "d", "u", "verify-full", "ca.pem")
VERIFY_CA = Target("db", 5432, "d", "u", "verify-ca", "ca.pem")
REQUIRE = Target("db", 5432, "d", "u", "require", None)
REQUIRE_ALLOWED = Target("db", 5432, "d", "u", "require", None, allow_unverified_password=True)


@pytest.mark.parametrize(
    ("verdict", "status", "fails_as"),
    [
        (Verdict.ENFORCED, Status.PASS, None),
        (Verdict.NOT_ENFORCED, Status.FAIL, Conclusion.NOT_ENFORCED),
        (Verdict.UNREACHABLE, Status.ERROR, None),
        (Verdict.INCONCLUSIVE, Status.ERROR, None),
    ],
)
def test_plaintext_check_follows_the_probe(
    verdict: Verdict, status: Status, fails_as: Conclusion | None
) -> None:
    finding = plaintext_finding(Outcome(verdict, "what the server said"))
    assert (finding.status, finding.fails_as) == (status, fails_as)
    assert "what the server said" in finding.evidence


@pytest.mark.parametrize(
    ("error", "status", "fails_as"),
    [
        (f"{AT}SSL error: certificate verify failed", Status.FAIL, Conclusion.NOT_VERIFIED),
        (
            f'{AT}server certificate for "a" does not match host name "b"',
            Status.FAIL,
            Conclusion.NOT_VERIFIED,
        ),
        (
            f"{AT}server does not support SSL, but SSL was required",
            Status.FAIL,
            Conclusion.NOT_ENFORCED,
        ),
        (
            f"{AT}channel binding required, but server authenticated client without channel "
            "binding",
            Status.ERROR,
            None,
        ),
        (f'{AT}FATAL:  password authentication failed for user "u"', Status.ERROR, None),
        (f"{AT}Connection refused", Status.ERROR, None),
        # A dropped connection or a TLS alert says nothing about the server's certificate.
        (f"{AT}SSL SYSCALL error: EOF detected", Status.ERROR, None),
        (f"{AT}SSL SYSCALL error: Connection reset by peer", Status.ERROR, None),
        (f"{AT}SSL error: unexpected eof while reading", Status.ERROR, None),
        (f"{AT}SSL error: tlsv1 alert protocol version", Status.ERROR, None),
        (f"{AT}SSL error: tlsv13 alert certificate required", Status.ERROR, None),
        (
            f"{AT}SSL error: certificate verify failed: certificate has expired",
            Status.FAIL,
            Conclusion.NOT_VERIFIED,
        ),
        (
            f"{AT}could not get server's host name from server certificate",
            Status.FAIL,
            Conclusion.NOT_VERIFIED,
        ),
    ],
)
def test_tls_connection_failures(error: str, status: Status, fails_as: Conclusion | None) -> None:
    finding = classify_tls_error(error, target=FULL)
    assert (finding.status, finding.fails_as) == (status, fails_as)


def test_channel_binding_failure_says_what_to_do() -> None:
    finding = classify_tls_error(
        f"{AT}channel binding required but not supported by server's authentication request",
        target=REQUIRE,
    )
    assert "the password was not sent" in finding.evidence
    assert "--allow-unverified-password" in finding.evidence
    assert "`trust`, which asks for nothing" in finding.evidence
    assert chain_verified(finding, sslmode="verify-ca") is True


def view(**kw: object) -> ServerView:
    base: dict[str, object] = {
        "ssl": True,
        "version": "TLSv1.3",
        "cipher": "TLS_AES_256_GCM_SHA384",
        "bits": 256,
        "sslinfo_ssl_is_used": None,
        "force_ssl": "1",
        "floor": "TLSv1.2",
    }
    return ServerView(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("target", "status", "words"),
    [
        (FULL, Status.PASS, "CA and host name verified before the password was sent"),
        (VERIFY_CA, Status.WARN, "WEAKER: sslmode=verify-ca does not check the host name; "),
        (REQUIRE, Status.WARN, "an impostor in the server's place still gets a SCRAM proof"),
        (REQUIRE_ALLOWED, Status.WARN, "sent without channel binding"),
    ],
)
def test_tls_row_says_how_the_password_was_protected(
    target: Target, status: Status, words: str
) -> None:
    finding = tls_finding(view(), target=target)
    assert finding.status == status
    assert words in finding.evidence


def test_a_session_the_server_sees_unencrypted_is_not_enforced() -> None:
    finding = tls_finding(view(ssl=False), target=FULL)
    assert (finding.status, finding.fails_as) == (Status.FAIL, Conclusion.NOT_ENFORCED)


@pytest.mark.parametrize(
    ("settings", "status", "evidence"),
    [
        ({}, Status.PASS, "rds.force_ssl=1; ssl_min_protocol_version=TLSv1.2"),
        ({"floor": "TLSv1.3"}, Status.PASS, "rds.force_ssl=1; ssl_min_protocol_version=TLSv1.3"),
        (
            {"force_ssl": "0"},
            Status.FAIL,
            "rds.force_ssl=0 lets clients connect without TLS (rds.force_ssl=0; "
            "ssl_min_protocol_version=TLSv1.2)",
        ),
        (
            {"floor": "TLSv1"},
            Status.FAIL,
            "ssl_min_protocol_version=TLSv1 admits TLS versions deprecated by RFC 8996; set "
            "TLSv1.2 or higher",
        ),
        ({"floor": "TLSv1.1"}, Status.FAIL, "ssl_min_protocol_version=TLSv1.1 admits"),
        (
            {"force_ssl": None},
            Status.PASS,
            "rds.force_ssl not set on this server (it exists only on RDS)",
        ),
        (
            {"floor": None, "floor_readable": False},
            Status.PASS,
            "ssl_min_protocol_version not shown: this role may not read it (it needs "
            "pg_read_all_settings; the RDS master user has it)",
        ),
        ({"force_ssl": None, "floor": None}, Status.SKIP, "this server has no such setting"),
    ],
)
def test_settings(settings: dict[str, object], status: Status, evidence: str) -> None:
    finding = settings_finding(view(**settings))
    assert finding.status == status
    assert evidence in finding.evidence
    assert finding.fails_as == (Conclusion.NOT_ENFORCED if status == Status.FAIL else None)


@pytest.mark.parametrize(
    ("error", "floor", "status"),
    [
        ("tlsv1 alert protocol version (TLSV1_ALERT_PROTOCOL_VERSION)", "TLSv1.3", Status.PASS),
        ("no protocols available (NO_PROTOCOLS_AVAILABLE)", "TLSv1.2", Status.SKIP),
        (None, "TLSv1.3", Status.FAIL),
        (None, None, Status.FAIL),  # floor not shown: TLS 1.1 must still be refused
        ("network: Connection refused", "TLSv1.3", Status.ERROR),
    ],
)
def test_tls_floor_outcomes(error: str | None, floor: str | None, status: Status) -> None:
    assert classify_floor(error, floor=floor, below=version_below(floor)).status == status


def test_nothing_below_tls1() -> None:
    assert version_below("TLSv1") is None
    assert classify_floor(None, floor="TLSv1", below=None).status == Status.SKIP
    assert version_below(None) == "TLSv1.1"


def _cert(
    name: str, *, issuer: str, not_after: datetime, not_before: datetime | None = None
) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - timedelta(days=400))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )


ROOT = _cert("root", issuer="root", not_after=NOW + timedelta(days=3000))
INTERMEDIATE = _cert("regional", issuer="root", not_after=NOW + timedelta(days=1000))
LEAF = _cert("db.example", issuer="regional", not_after=NOW + timedelta(days=300))


def test_the_whole_chain_checked_passes_and_counts_each_ca() -> None:
    finding = certificate_finding(
        LEAF, bundle=[ROOT, INTERMEDIATE], verified=True, sslmode="verify-full", now=NOW
    )
    assert finding.status == Status.PASS
    assert "server certificate expires 2026-10-28 (300 days)" in finding.evidence
    assert "CA CN=regional expires 2028-09-27 (1000 days)" in finding.evidence
    assert "CA CN=root expires 2034-03-20 (3000 days)" in finding.evidence
    assert finding.evidence.endswith("checked: chain and host name by libpq")


def test_an_expiring_root_warns_even_when_the_server_certificate_is_fresh() -> None:
    root = _cert("root", issuer="root", not_after=NOW + timedelta(days=5))
    finding = certificate_finding(
        LEAF, bundle=[root, INTERMEDIATE], verified=True, sslmode="verify-full", now=NOW
    )
    assert finding.status == Status.WARN
    assert "CA CN=root expires 2026-01-06 (5 days)" in finding.evidence


def test_one_day_left_is_one_day() -> None:
    root = _cert("root", issuer="root", not_after=NOW + timedelta(days=1, hours=1))
    finding = certificate_finding(
        LEAF, bundle=[root, INTERMEDIATE], verified=True, sslmode="verify-full", now=NOW
    )
    assert "CA CN=root expires 2026-01-02 (1 day);" in finding.evidence


def test_an_expired_ca_is_not_verified() -> None:
    root = _cert("root", issuer="root", not_after=NOW - timedelta(days=1))
    finding = certificate_finding(
        LEAF, bundle=[root, INTERMEDIATE], verified=False, sslmode="verify-full", now=NOW
    )
    assert (finding.status, finding.fails_as) == (Status.FAIL, Conclusion.NOT_VERIFIED)
    assert finding.evidence.startswith("CA CN=root has EXPIRED: ")


def test_a_certificate_not_valid_yet_fails() -> None:
    leaf = _cert(
        "db", issuer="root", not_after=NOW + timedelta(days=9), not_before=NOW + timedelta(days=1)
    )
    finding = certificate_finding(leaf, bundle=[ROOT], verified=False, sslmode="verify-ca", now=NOW)
    assert finding.status == Status.FAIL
    assert "server certificate is not valid yet" in finding.evidence


@pytest.mark.parametrize(
    ("bundle", "verified", "sslmode", "unchecked"),
    [
        # a bundle from another CA: the issuer's expiry cannot be known
        (
            [_cert("other", issuer="other", not_after=NOW + timedelta(days=900))],
            False,
            "verify-full",
            "checked: by libpq, which REFUSED it (see verified TLS); NOT checked: the expiry of "
            "the issuer CN=regional, which is not in --sslrootcert",
        ),
        # the intermediate only: the root is not there
        (
            [INTERMEDIATE],
            True,
            "verify-full",
            "NOT checked: the expiry of CN=root, which is not in --sslrootcert",
        ),
        (
            None,
            None,
            "require",
            "NOT checked: the issuer and its expiry (no --sslrootcert), the chain and the host "
            "name (sslmode=require)",
        ),
        (
            [ROOT, INTERMEDIATE],
            True,
            "verify-ca",
            "NOT checked: the host name (sslmode=verify-ca)",
        ),
    ],
)
def test_what_was_not_checked_is_said_and_never_a_pass(
    bundle: list[x509.Certificate] | None, verified: bool | None, sslmode: str, unchecked: str
) -> None:
    finding = certificate_finding(LEAF, bundle=bundle, verified=verified, sslmode=sslmode, now=NOW)
    assert finding.status == Status.WARN
    assert unchecked in finding.evidence


def F(status: Status, fails_as: Conclusion | None = None) -> Finding:
    return Finding("c", status, "", fails_as=fails_as)


def P(status: Status, fails_as: Conclusion | None = None) -> Finding:
    """The plaintext check."""
    return Finding("plaintext refused", status, "", fails_as=fails_as)


@pytest.mark.parametrize(
    ("findings", "verdict", "code"),
    [
        ([P(Status.PASS), F(Status.WARN), F(Status.SKIP)], Conclusion.ENFORCED, 0),
        ([P(Status.PASS), F(Status.ERROR)], Conclusion.INCONCLUSIVE, 2),
        ([P(Status.PASS), F(Status.FAIL, Conclusion.NOT_VERIFIED)], Conclusion.NOT_VERIFIED, 3),
        (
            [P(Status.PASS), F(Status.FAIL, Conclusion.NOT_VERIFIED), F(Status.ERROR)],
            Conclusion.NOT_VERIFIED,
            3,
        ),
        # NOT VERIFIED says plaintext is refused: not without that check's PASS
        ([P(Status.ERROR), F(Status.FAIL, Conclusion.NOT_VERIFIED)], Conclusion.INCONCLUSIVE, 2),
        ([F(Status.FAIL, Conclusion.NOT_VERIFIED)], Conclusion.INCONCLUSIVE, 2),
        # nor ENFORCED
        ([F(Status.PASS), F(Status.PASS)], Conclusion.INCONCLUSIVE, 2),
        (
            [
                P(Status.PASS),
                F(Status.FAIL, Conclusion.NOT_VERIFIED),
                F(Status.FAIL, Conclusion.NOT_ENFORCED),
            ],
            Conclusion.NOT_ENFORCED,
            1,
        ),
        ([P(Status.FAIL, Conclusion.NOT_ENFORCED), F(Status.ERROR)], Conclusion.NOT_ENFORCED, 1),
        ([P(Status.ERROR), F(Status.FAIL, Conclusion.NOT_ENFORCED)], Conclusion.NOT_ENFORCED, 1),
    ],
)
def test_conclusion_and_exit_code(findings: list[Finding], verdict: Conclusion, code: int) -> None:
    assert conclusion(findings) == verdict
    assert EXIT_CODES[verdict] == code


@pytest.mark.parametrize(
    ("sslmode", "engine", "allow", "verified"),
    [
        ("verify-full", "postgresql", False, True),
        # SCRAM with channel binding: only the server that holds the verifier completes it
        ("verify-ca", "postgresql", False, True),
        ("require", "postgresql", False, True),
        ("verify-ca", "postgresql", True, False),
        ("require", "postgresql", True, False),
        ("verify-full", "mysql", False, True),
        ("verify-ca", "mysql", True, False),
        ("require", "mysql", True, False),
    ],
)
def test_which_runs_verified_the_server(
    sslmode: str, engine: str, allow: bool, verified: bool
) -> None:
    target = Target("db.example", 5432, "d", "u", sslmode, None, allow, engine)
    assert server_verified(target) is verified


def test_a_run_whose_server_was_not_verified_never_concludes_enforced() -> None:
    unverified = Finding("verified TLS", Status.WARN, "x", {UNVERIFIED: False})
    assert conclusion([P(Status.PASS), unverified]) == Conclusion.INCONCLUSIVE
    # and a proof of a problem, even from such a server, still counts
    failing = F(Status.FAIL, Conclusion.NOT_ENFORCED)
    assert conclusion([P(Status.PASS), unverified, failing]) == Conclusion.NOT_ENFORCED


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: command"),
        (["verify", "--user", "u"], "the following arguments are required: --host"),
        (["verify", "--host", "h", "--user", "u"], "--sslrootcert is required"),
        (["verify", "--host", "h", "--user", "u", "--sslmode", "disable"], "invalid choice"),
        (
            [
                "verify",
                "--host",
                "h",
                "--user",
                "u",
                "--sslrootcert",
                "x.pem",
                "--allow-unverified-password",
            ],
            "only applies to --sslmode verify-ca or require",
        ),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err


@pytest.mark.parametrize(
    ("host", "port", "message"),
    [
        ("", "5432", "is empty: libpq would connect wherever PGHOST"),
        ("  ", "5432", "is empty"),
        ("/var/run/postgresql", "5432", "names a Unix-domain socket"),
        ("@abstract", "5432", "names a Unix-domain socket"),
        ("db.example.com,/tmp", "5432", "is a list of hosts"),
        ("a..b", "5432", "is not a valid host name"),
        ("db.example.com", "70000", "--port 70000 is not a TCP port"),
        ("db.example.com", "0", "--port 0 is not a TCP port"),
    ],
)
def test_hosts_and_ports_libpq_would_misread_are_usage_errors_before_any_password(
    host: str,
    port: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    # No password anywhere: reaching the prompt would be an error of its own.
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    argv = ["verify", "--host", host, "--port", port, "--user", "u", "--sslrootcert", str(ca)]
    assert cli.main([*argv, "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["error"]["code"] == "usage"
    assert message in report["error"]["message"]


def test_a_name_that_does_not_resolve_is_an_error_before_any_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code = cli.main(
        ["verify", "--host", "no-such-host.invalid", "--user", "u", "--sslrootcert", str(ca)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("rds-force-ssl: --host no-such-host.invalid: the name does not resolve")
    assert "\n  fix: " in err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["verify", "--help"]) == 0
    assert "--sslrootcert" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "No such file or directory"),
        ("", "NO_CERTIFICATE_OR_CRL_FOUND"),
        ("not a certificate\n", "NO_CERTIFICATE_OR_CRL_FOUND"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "cannot use it"),
        ("directory", "Is a directory"),
    ],
    ids=["missing", "empty", "not-pem", "broken-pem", "a-directory"],
)
def test_a_bad_sslrootcert_is_a_usage_error_before_any_connection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, reason: str
) -> None:
    path = tmp_path / "ca.pem"
    if content == "directory":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    # An unroutable host: had it tried to connect, the test would hang, not pass.
    code = cli.main(
        ["verify", "--host", "192.0.2.1", "--user", "u", "--sslrootcert", str(path), "--json"]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 2
    assert report["error"]["code"] == "bad-sslrootcert"
    assert reason in report["error"]["message"]


def test_a_leaf_certificate_is_no_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    leaf = trustme.CA().issue_cert("db.example")
    path = tmp_path / "leaf.pem"
    leaf.cert_chain_pems[0].write_to_path(str(path))
    assert (
        cli.main(["verify", "--host", "192.0.2.1", "--user", "u", "--sslrootcert", str(path)]) == 2
    )
    assert "holds no CA certificate" in capsys.readouterr().err


@pytest.fixture
def no_libpq(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """What a machine without the [cli] extra and without a system libpq looks like."""
    monkeypatch.setitem(sys.modules, "psycopg_binary", None)
    monkeypatch.setattr(libpq, "SYSTEM_NAMES", {})
    libpq.load.cache_clear()
    yield
    libpq.load.cache_clear()


@pytest.mark.parametrize(
    ("missing", "message", "fix"),
    [
        (
            "libpq",
            "rds-force-ssl verify needs libpq: no libpq could be loaded (tried: nothing found)",
            "install the CLI's extra: pip install 'rds-force-ssl[cli]' (psycopg-binary brings a "
            "current libpq), or the system's libpq 13 or later (e.g. apt install libpq5)",
        ),
        (
            "cryptography",
            "rds-force-ssl verify needs the Python package cryptography, which is not installed",
            "install the CLI's extra: pip install 'rds-force-ssl[cli]'",
        ),
    ],
)
def test_without_the_cli_extra_verify_exits_2_with_the_install_hint(
    missing: str,
    message: str,
    fix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    if missing == "libpq":
        request.getfixturevalue("no_libpq")
    else:
        monkeypatch.setitem(sys.modules, missing, None)  # an install without [cli]
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    monkeypatch.setattr("getpass.getpass", lambda prompt: pytest.fail("prompted first"))
    argv = ["verify", "--host", "192.0.2.1", "--user", "u", "--sslrootcert", str(ca)]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == f"rds-force-ssl: {message}\n  fix: {fix}\n"
    assert cli.main([*argv, "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"] == {
        "code": "missing-dependency",
        "message": message,
        "fix": fix,
    }


@pytest.mark.parametrize(
    ("engine", "missing", "command"),
    [
        ("postgresql", "cryptography", "clients --host"),
        ("mysql", "pymysql", "clients --host --engine mysql"),
    ],
)
def test_without_the_cli_extra_clients_host_names_itself_not_verify(
    engine: str,
    missing: str,
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # an install without [cli]
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    monkeypatch.setattr("getpass.getpass", lambda prompt: pytest.fail("prompted first"))
    argv = ["clients", "--host", "192.0.2.1", "--engine", engine, "--user", "u"]
    assert cli.main([*argv, "--sslrootcert", str(ca), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"] == {
        "code": "missing-dependency",
        "message": f"rds-force-ssl {command} needs the Python package {missing}, which is not "
        "installed",
        "fix": "install the CLI's extra: pip install 'rds-force-ssl[cli]'",
    }


def test_a_missing_ca_bundle_says_where_to_get_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["verify", "--host", "h", "--user", "u"]) == 2
    assert capsys.readouterr().err.endswith(
        "  fix: pass the RDS CA bundle, global-bundle.pem, from "
        "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem\n"
    )


def test_no_password_and_no_terminal_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code = cli.main(["verify", "--host", "127.0.0.1", "--user", "u", "--sslrootcert", str(ca)])
    assert code == 2
    assert "PGPASSWORD is not set and stdin is not a terminal" in capsys.readouterr().err


def test_a_server_that_says_s_then_hangs_up_is_inconclusive_not_unverified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """It accepts TLS (or anything) with "S" and closes: libpq reports an SSL SYSCALL error or
    an unexpected EOF, which used to count as a certificate failure, NOT VERIFIED (exit 3),
    whose documented meaning is "plaintext refused"; nothing here was refused or verified."""
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                conn.recv(1024)
                conn.sendall(b"S")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    monkeypatch.setenv("PGPASSWORD", "not-sent")
    try:
        argv = ["verify", "--host", "127.0.0.1", "--port", str(port), "--user", "u"]
        code = cli.main([*argv, "--sslrootcert", str(ca), "--json"])
    finally:
        stop.set()
        thread.join()
        listener.close()
    report = json.loads(capsys.readouterr().out)
    statuses = {f["check"]: f["status"] for f in report["findings"]}
    assert (code, report["verdict"]) == (2, "INCONCLUSIVE"), report
    assert statuses["plaintext refused"] == "ERROR"
    assert statuses["verified TLS"] == "ERROR"


def _failed_handshake() -> bytes:
    """A real TLS failure: the peer answers the ClientHello with plain text."""
    client, server = socket.socketpair()
    with client, server:
        server.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        context.wrap_socket(client)
    raise AssertionError("the handshake should have failed")


def test_a_failed_handshake_reads_as_a_sentence_in_the_certificate_row() -> None:
    finding = certificate_check(
        Job(_failed_handshake), bundle=None, verified=None, sslmode="require", now=NOW
    )
    assert finding.status == Status.ERROR
    assert finding.evidence.startswith("could not read the certificate: ")
    assert "[SSL" not in finding.evidence
    assert "_ssl.c" not in finding.evidence


def test_a_libpq_older_than_13_is_refused_before_any_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """libpq 12 would fail on channel_binding as an unknown option, in libpq's own words."""
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    monkeypatch.setattr(libpq, "version", lambda: 120022)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)  # a prompt would be an error too
    argv = ["verify", "--host", "127.0.0.1", "--user", "u", "--sslrootcert", str(ca), "--json"]
    assert cli.main(argv) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "missing-dependency"
    assert error["message"].startswith(
        "rds-force-ssl verify needs libpq 13 or later (channel_binding); the one that loads "
        "is 12.22 ("
    )
    assert "pip install 'rds-force-ssl[cli]'" in error["fix"]


HALF = Outcome(
    Verdict.INCONCLUSIVE,
    "refused in plaintext by pg_hba.conf: no pg_hba.conf entry ..., no encryption",
    {"sqlstate": "28000", "message": "...", pgwire.HALF_PROVEN: True},
)


def test_the_verified_session_past_pg_hba_settles_a_plaintext_refusal() -> None:
    settled = settle_plaintext(HALF, past_pg_hba=True)
    assert settled is not None
    assert settled.verdict == Verdict.ENFORCED
    assert settled.detail.endswith(
        "the verified session, the same user and database over TLS, got past it"
    )
    assert pgwire.HALF_PROVEN not in settled.evidence


def test_a_session_that_never_reached_pg_hba_leaves_it_to_the_probes_follow_up() -> None:
    assert settle_plaintext(HALF, past_pg_hba=False) is None


@pytest.mark.parametrize(
    "verdict", [Verdict.NOT_ENFORCED, Verdict.UNREACHABLE, Verdict.INCONCLUSIVE]
)
def test_other_outcomes_need_no_settling(verdict: Verdict) -> None:
    outcome = Outcome(verdict, "as the probe said")
    assert settle_plaintext(outcome, past_pg_hba=True) is outcome


@pytest.mark.parametrize(
    ("error", "past"),
    [
        (f'{AT}FATAL:  password authentication failed for user "u"', True),
        (f'{AT}FATAL:  role "u" does not exist', True),
        (
            f'{AT}FATAL:  no pg_hba.conf entry for host "h", user "u", database "d", '
            "SSL encryption",
            False,
        ),
        (f"{AT}SSL error: certificate verify failed", False),
        (
            f"{AT}channel binding required but not supported by server's authentication request",
            True,
        ),
    ],
)
def test_which_session_failures_came_after_pg_hba(error: str, past: bool) -> None:
    assert classify_tls_error(error, target=REQUIRE).details.get("past_pg_hba", False) is past


def test_a_job_not_done_by_the_deadline_and_its_grace_is_given_up() -> None:
    """The backstop behind every connection's own deadline: the run stops waiting."""
    release = threading.Event()
    job = Job(release.wait)
    try:
        with pytest.raises(TimeoutError):
            job.result(time.monotonic() - GRACE_S)  # deadline and grace both past
    finally:
        release.set()
    assert job.result(time.monotonic() + 5)  # once done, its value


def test_a_name_not_resolved_by_the_deadline_is_an_error_that_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()

    def blocked(*_: object, **__: object) -> list[object]:
        release.wait()
        return []

    monkeypatch.setattr(socket, "getaddrinfo", blocked)
    try:
        with pytest.raises(CliError) as raised:
            resolve("db.example", 5432, deadline=time.monotonic() - GRACE_S)
    finally:
        release.set()
    assert raised.value.code == "timeout"
    assert "--timeout" in raised.value.message


def test_a_deadline_is_said_in_tenths_of_a_second() -> None:
    from rds_force_ssl.cli import wire

    assert [wire.seconds(s) for s in (2.99744, 2.0, 0.5, 10.04, 1.25)] == [
        "3",
        "2",
        "0.5",
        "10",
        "1.2",
    ]
