"""The verify decisions as pure functions: what the server said -> PASS / WARN / FAIL / ERROR.

These cover wordings the local PostgreSQL 15 cannot produce (older servers' "SSL off", a client
that is asked for a password) and the command line's usage errors.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rds_force_ssl import cli
from rds_force_ssl.verify import (
    Finding,
    ServerView,
    Status,
    certificate_finding,
    classify_floor,
    classify_plaintext,
    classify_tls_error,
    exit_code,
    settings_finding,
    tls_finding,
)

AT = 'connection failed: connection to server at "10.0.0.5", port 5432 failed: '
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        # PostgreSQL 12+ wording, with and without a reject line
        (
            f'{AT}FATAL:  pg_hba.conf rejects connection for host "1.2.3.4", user "u", '
            'database "d", no encryption',
            Status.PASS,
        ),
        (
            f'{AT}FATAL:  no pg_hba.conf entry for host "1.2.3.4", user "u", database "d", '
            "no encryption",
            Status.PASS,
        ),
        # older servers, as quoted in the RDS documentation
        (
            f'{AT}FATAL:  no pg_hba.conf entry for host "1.2.3.4", user "u", database "d", SSL off',
            Status.PASS,
        ),
        (
            f'{AT}FATAL:  pg_hba.conf rejects connection for host "1.2.3.4", user "u", '
            'database "d", SSL off',
            Status.PASS,
        ),
        # plaintext reached authentication or beyond
        (f'{AT}FATAL:  password authentication failed for user "u"', Status.FAIL),
        (f'{AT}FATAL:  role "u" does not exist', Status.FAIL),
        (f'{AT}FATAL:  database "d" does not exist', Status.FAIL),
        (f"{AT}fe_sendauth: no password supplied", Status.FAIL),
        (None, Status.FAIL),
        # no answer from the SSL rule: never a pass
        (f"{AT}Connection refused\n\tIs the server running on that host?", Status.ERROR),
        (f"{AT}timeout expired", Status.ERROR),
        (f"{AT}server closed the connection unexpectedly", Status.ERROR),
        (f"{AT}FATAL:  sorry, too many clients already", Status.ERROR),
        ("failed to resolve host 'db.invalid': [Errno -2] Name or service not known", Status.ERROR),
    ],
)
def test_plaintext_outcomes(error: str | None, status: Status) -> None:
    assert classify_plaintext(error).status == status


def test_plaintext_evidence_is_the_server_text_without_preamble() -> None:
    finding = classify_plaintext(
        f'{AT}FATAL:  no pg_hba.conf entry for host "1.2.3.4", user "u", database "d", SSL off'
    )
    assert finding.evidence == (
        'server refused sslmode=disable: no pg_hba.conf entry for host "1.2.3.4", '
        'user "u", database "d", SSL off'
    )


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (f"{AT}SSL error: certificate verify failed", Status.FAIL),
        (f"{AT}server does not support SSL, but SSL was required", Status.FAIL),
        (f'{AT}FATAL:  password authentication failed for user "u"', Status.ERROR),
        (f"{AT}Connection refused", Status.ERROR),
    ],
)
def test_tls_connection_failures(error: str, status: Status) -> None:
    assert classify_tls_error(error, sslmode="verify-full").status == status


def test_server_without_ssl_on_the_session_fails() -> None:
    view = ServerView(False, None, None, None, None, {})
    assert tls_finding(view, sslmode="verify-full").status == Status.FAIL


@pytest.mark.parametrize(
    ("error", "floor", "status"),
    [
        (f"{AT}SSL error: tlsv1 alert protocol version", "TLSv1.3", Status.PASS),
        (f"{AT}SSL error: no protocols available", "TLSv1.2", Status.SKIP),
        (f'{AT}FATAL:  password authentication failed for user "u"', "TLSv1.3", Status.FAIL),
        (None, "TLSv1.3", Status.FAIL),
        (f"{AT}Connection refused", "TLSv1.3", Status.ERROR),
        (None, "TLSv1", Status.SKIP),
        (None, None, Status.SKIP),
    ],
)
def test_tls_floor_outcomes(error: str | None, floor: str | None, status: Status) -> None:
    assert classify_floor(error, floor=floor).status == status


@pytest.mark.parametrize(
    ("settings", "status"),
    [
        ({"rds.force_ssl": "1", "ssl_min_protocol_version": "TLSv1.2"}, Status.PASS),
        ({"rds.force_ssl": "0", "ssl_min_protocol_version": "TLSv1.2"}, Status.FAIL),
        ({"rds.force_ssl": None, "ssl_min_protocol_version": "TLSv1.2"}, Status.PASS),
        ({"rds.force_ssl": None, "ssl_min_protocol_version": None}, Status.SKIP),
    ],
)
def test_settings(settings: dict[str, str | None], status: Status) -> None:
    assert settings_finding(settings).status == status


def _cert(name: str, *, issuer: str, not_after: datetime) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=400))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )


def test_expiring_ca_warns_even_when_the_server_certificate_is_fresh() -> None:
    ca = _cert("rds-ca-test", issuer="rds-ca-test", not_after=NOW + timedelta(days=5))
    leaf = _cert("db.example", issuer="rds-ca-test", not_after=NOW + timedelta(days=300))
    finding = certificate_finding(leaf, bundle=[ca], now=NOW)
    assert finding.status == Status.WARN
    assert "CA expires 2026-01-06 (5 days)" in finding.evidence


def test_expired_certificate_fails() -> None:
    leaf = _cert("db.example", issuer="rds-ca-test", not_after=NOW - timedelta(days=1))
    finding = certificate_finding(leaf, bundle=[], now=NOW)
    assert finding.status == Status.FAIL
    assert finding.evidence.startswith("EXPIRED: subject CN=db.example; issuer CN=rds-ca-test")


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        ([Status.PASS, Status.WARN, Status.SKIP], 0),
        ([Status.PASS, Status.ERROR], 2),
        # proof of a problem beats a missing answer
        ([Status.FAIL, Status.ERROR], 1),
    ],
)
def test_exit_code(statuses: list[Status], code: int) -> None:
    assert exit_code(Finding("c", s, "") for s in statuses) == code


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["verify", "--user", "u"],  # no --host
        ["verify", "--host", "h", "--user", "u"],  # verify-full without --sslrootcert
        ["verify", "--host", "h", "--user", "u", "--sslmode", "disable"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 2
    assert capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["verify", "--help"]) == 0
    assert "--sslrootcert" in capsys.readouterr().out


def test_no_password_and_no_terminal_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code = cli.main(["verify", "--host", "h", "--user", "u", "--sslrootcert", "ca.pem"])
    assert code == 2
    assert "set PGPASSWORD or run in a terminal" in capsys.readouterr().err
