"""The MySQL side of `verify`, as pure functions over what a server said: its greeting, the
SSLRequest, the session's view, and PyMySQL's errors. The real server runs in
test_verify_mariadb.py."""

from __future__ import annotations

import ssl
import struct
from typing import cast

import pytest

from rds_force_ssl.cli import mywire
from rds_force_ssl.cli.mywire import Greeting, MysqlError, NoTls, NotMysql
from rds_force_ssl.cli.verify import Conclusion, Status, Target
from rds_force_ssl.cli.verify_mysql import (
    SECURE_TRANSPORT,
    MysqlView,
    classify_error,
    context,
    lowest_protocol,
    plaintext_finding,
    settings_finding,
    tls_finding,
)
from rds_force_ssl.cli.wire import Bounds
from rds_force_ssl.facts import engines

# MariaDB 10.11's greeting, as Debian's server sent it (scramble replaced).
MARIADB_GREETING = (
    b"\n5.5.5-10.11.18-MariaDB-0+deb12u1-log\x00\x08\x00\x00\x00AAAAAAAA\x00\xfe\xff\x08\x02"
    b"\x00\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00BBBBBBBBBBBB\x00"
    b"mysql_native_password\x00"
)


def target(sslmode: str = "verify-full") -> Target:
    return Target("db.example", 3306, "appdb", "app", sslmode, "ca.pem", sslmode != "verify-full")


def test_greeting_says_whether_tls_is_offered() -> None:
    hello = mywire.parse_greeting(MARIADB_GREETING)
    assert hello.version == "5.5.5-10.11.18-MariaDB-0+deb12u1-log"
    assert hello.offers_tls
    no_tls = bytearray(MARIADB_GREETING)
    flags_at = MARIADB_GREETING.index(b"\x00", 1) + 1 + 4 + 8 + 1
    no_tls[flags_at : flags_at + 2] = struct.pack("<H", 0xFFFE & ~mywire.CLIENT_SSL)
    assert not mywire.parse_greeting(bytes(no_tls)).offers_tls


def test_an_error_before_the_greeting_is_the_servers_words() -> None:
    with pytest.raises(MysqlError) as raised:
        mywire.parse_greeting(b"\xffj\x04Host '10.0.0.7' is not allowed to connect")
    assert (raised.value.code, raised.value.message) == (
        1130,
        "Host '10.0.0.7' is not allowed to connect",
    )


@pytest.mark.parametrize("payload", [b"", b"E\x00\x00\x00\x08SFATAL", b"\x0a5.7.0-no-terminator"])
def test_bytes_that_are_not_a_mysql_greeting(payload: bytes) -> None:
    with pytest.raises(NotMysql):
        mywire.parse_greeting(payload)


def test_ssl_request_carries_no_user_name() -> None:
    packet = mywire.ssl_request()
    assert len(packet) == 4 + 32  # header, then capabilities, max packet, charset, filler
    assert packet[3] == 1  # the answer to the greeting (sequence 0)
    (flags,) = struct.unpack("<I", packet[4:8])
    assert flags & mywire.CLIENT_SSL
    assert packet[13:] == b"\0" * 23  # the filler, and nothing after it


VIEW_ON = MysqlView("TLSv1.3", "TLS_AES_256_GCM_SHA384", {"require_secure_transport": "ON"})


@pytest.mark.parametrize(
    ("hello", "view", "status", "fails_as", "words"),
    [
        (Greeting("8.0.40", 0xFFFF), VIEW_ON, Status.PASS, None, "=ON in the running server"),
        (
            Greeting("8.0.40", 0xFFFF),
            MysqlView("TLSv1.3", "x", {"require_secure_transport": "1"}),
            Status.PASS,
            None,
            "=1 in the running server",
        ),
        (
            Greeting("8.0.40", 0xFFFF),
            MysqlView("TLSv1.3", "x", {"require_secure_transport": "OFF"}),
            Status.FAIL,
            Conclusion.NOT_ENFORCED,
            "with a valid password is let in",
        ),
        (
            Greeting("10.4.34-MariaDB", 0xFFFF),
            MysqlView("TLSv1.3", "x", {}),
            Status.FAIL,
            Conclusion.NOT_ENFORCED,
            "this server has no require_secure_transport",
        ),
        (
            NoTls(Greeting("8.0.40", 0xF7FF)),
            None,
            Status.FAIL,
            Conclusion.NOT_ENFORCED,
            "offers no TLS",
        ),
        (Greeting("8.0.40", 0xFFFF), None, Status.ERROR, None, "only after checking its password"),
        (ConnectionRefusedError(), None, Status.ERROR, None, "not judged"),
    ],
)
def test_plaintext_refused(
    hello: Greeting | Exception,
    view: MysqlView | None,
    status: Status,
    fails_as: Conclusion | None,
    words: str,
) -> None:
    finding = plaintext_finding(hello, view)
    assert (finding.status, finding.fails_as) == (status, fails_as)
    assert words in finding.evidence


def test_a_session_the_server_sees_unencrypted_is_not_enforced() -> None:
    finding = tls_finding(MysqlView(None, None, {}), target=target())
    assert (finding.status, finding.fails_as) == (Status.FAIL, Conclusion.NOT_ENFORCED)


def test_weaker_sslmodes_are_a_warning_that_says_so() -> None:
    finding = tls_finding(VIEW_ON, target=target("verify-ca"))
    assert finding.status == Status.WARN
    assert "WEAKER: sslmode=verify-ca does not check the host name" in finding.evidence


def _operational(code: int, message: str, cause: BaseException | None = None) -> Exception:
    import pymysql

    err = pymysql.OperationalError(code, message)  # PyMySQL ships no types: this is Any
    if cause is not None:
        err.original_exception = cause  # where PyMySQL's connections.py puts a lost link's cause
    # pymysql.OperationalError subclasses pymysql.MySQLError, an Exception.
    return cast(Exception, err)


@pytest.mark.parametrize(
    ("error", "status", "fails_as", "words"),
    [
        (
            _operational(2026, "SSL is required but the server doesn't support it"),
            Status.FAIL,
            Conclusion.NOT_ENFORCED,
            "offers no TLS at all",
        ),
        (
            _operational(
                2003,
                "Can't connect",
                ssl.SSLCertVerificationError(1, "certificate verify failed"),
            ),
            Status.FAIL,
            Conclusion.NOT_VERIFIED,
            "a client that verifies the server cannot connect",
        ),
        (
            _operational(1045, "Access denied for user 'app'@'10.0.0.7' (using password: YES)"),
            Status.ERROR,
            None,
            "could not log in",
        ),
        (_operational(2003, "Can't connect (timed out)"), Status.ERROR, None, "could not connect"),
    ],
)
def test_session_errors(
    error: Exception, status: Status, fails_as: Conclusion | None, words: str
) -> None:
    finding = classify_error(error, target=target())
    assert (finding.status, finding.fails_as) == (status, fails_as)
    assert words in finding.evidence


@pytest.mark.parametrize(
    ("tls_version", "status"),
    [
        ("TLSv1.2,TLSv1.3", Status.PASS),
        ("TLSv1.3", Status.PASS),
        ("TLSv1,TLSv1.1,TLSv1.2", Status.FAIL),
        (None, Status.SKIP),
    ],
)
def test_settings(tls_version: str | None, status: Status) -> None:
    variables = {"tls_version": tls_version} if tls_version else {}
    assert settings_finding(MysqlView("TLSv1.3", "x", variables)).status == status


def test_lowest_protocol() -> None:
    assert lowest_protocol("TLSv1.3,TLSv1.2") == "TLSv1.2"
    assert lowest_protocol("") is None
    assert lowest_protocol("SSLv3") is None


@pytest.mark.parametrize(
    ("sslmode", "hostname", "verify"),
    [
        ("verify-full", True, ssl.CERT_REQUIRED),
        ("verify-ca", False, ssl.CERT_REQUIRED),
        ("require", False, ssl.CERT_NONE),
    ],
)
def test_sslmode_is_the_context(sslmode: str, hostname: bool, verify: ssl.VerifyMode) -> None:
    made = context(Target("h", 3306, "", "u", sslmode, None, True))
    assert (made.check_hostname, made.verify_mode) == (hostname, verify)
    assert made.minimum_version == ssl.TLSVersion.TLSv1_2


def test_the_setting_read_is_the_engine_tables_parameter() -> None:
    for row in (engines.MYSQL, engines.MARIADB, engines.AURORA_MYSQL):
        assert row.parameter == SECURE_TRANSPORT


def _bounds(*, tls: bool, broken: str | None = None) -> Bounds:
    bounds = Bounds(deadline=0.0, max_bytes=1000)
    bounds.tls, bounds.broken = tls, broken
    return bounds


@pytest.mark.parametrize(
    ("bounds", "tls_established", "starts"),
    [
        # an error over the TLS session: past the handshake
        (_bounds(tls=True), True, "could not log in (sslmode=verify-full): Access denied"),
        # an ERR packet before any TLS: in plaintext, and no evidence of TLS
        (_bounds(tls=False), False, "could not log in: the server refused before any TLS"),
        # the connection's own limits ended it, whatever PyMySQL made of that
        (_bounds(tls=False, broken="deadline"), False, "the login: no answer by the run's"),
        (_bounds(tls=True, broken="bytes"), True, "the login: the server sent more than 1000"),
    ],
)
def test_the_login_connections_record_decides_what_an_error_says(
    bounds: Bounds, tls_established: bool, starts: str
) -> None:
    error = _operational(1045, "Access denied for user 'app'@'10.0.0.7' (using password: YES)")
    finding = classify_error(error, target=target(), bounds=bounds)
    assert finding.status == Status.ERROR
    assert finding.details["tls_established"] is tls_established
    assert finding.evidence.startswith(starts)


def test_what_an_unverified_server_reports_is_a_warning_that_proves_nothing() -> None:
    finding = plaintext_finding(Greeting("8.0", mywire.CLIENT_SSL), VIEW_ON, verified=False)
    assert finding.status == Status.WARN
    assert "NOT verified" in finding.evidence
    assert "read over the verified session" not in finding.evidence
