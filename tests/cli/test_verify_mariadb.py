"""`rds-force-ssl verify --engine mysql` against a real MariaDB server the tests start (Debian's
mariadb-server), refusing plaintext (require_secure_transport=ON) or not.

Every run is checked in the server's general log, which records each login attempt with its
transport once the server holds the client's credentials: the user's credentials only ever
arrive "using SSL/TLS", never "using TCP/IP". The control tests show that the log would tell,
and why no credential-free plaintext attempt could prove anything on this engine.
"""

from __future__ import annotations

import json
import re
import socket
import struct
from collections.abc import Callable

import pytest

from tests.cli.conftest import Run
from tests.cli.mariadbserver import APP_USER, MariaDbServer
from tests.cli.pgserver import ADDRESS

pytestmark = pytest.mark.mariadb


def logins(log: str, user: str = APP_USER) -> list[str]:
    """The transport of each login attempt of ``user`` in a stretch of the general log."""
    return re.findall(rf"Connect\s+{user}@\S+ on \S* using (\S+)", log)


def test_enforcing_server(maria: MariaDbServer, run_verify_mysql: Callable[..., Run]) -> None:
    mark = maria.log_mark()
    run = run_verify_mysql()
    assert run.code == 0, run.out
    assert "require_secure_transport=ON in the running server" in run.out
    assert re.search(
        r"verified TLS\s+PASS\s+TLSv1\.3 TLS_AES_\w+ \(Ssl_version, Ssl_cipher\)", run.out
    )
    assert "sslmode=verify-full: CA and host name verified before the password was sent" in run.out
    assert re.search(r"settings\s+PASS\s+tls_version=TLSv1\.2,TLSv1\.3; version 10\.", run.out)
    assert "checked: chain and host name by Python's ssl" in run.out
    assert run.out.splitlines()[-1] == "verdict: ENFORCED (exit 0)"
    assert logins(maria.log_since(mark)) == ["SSL/TLS"]  # one login, over TLS; nothing else
    assert maria.app_password not in maria.log_since(0)  # carried a user name


def test_plaintext_accepting_server(
    maria: MariaDbServer, run_verify_mysql: Callable[..., Run]
) -> None:
    maria.require_secure_transport(on=False)
    mark = maria.log_mark()
    run = run_verify_mysql()
    assert run.code == 1, run.out
    assert re.search(
        r"plaintext refused\s+FAIL\s+require_secure_transport=OFF in the running server: a "
        r"plaintext client with a valid password is let in",
        run.out,
    )
    assert run.out.splitlines()[-1] == "verdict: NOT ENFORCED (exit 1)"
    # Even against a server that would take it, the password went over TLS only.
    assert logins(maria.log_since(mark)) == ["SSL/TLS"]


def test_the_log_would_show_a_plaintext_login(maria: MariaDbServer) -> None:
    """The control for the log checks above: a plaintext login is logged as such."""
    import pymysql

    maria.require_secure_transport(on=False)
    mark = maria.log_mark()
    pymysql.connect(
        host=ADDRESS,
        port=maria.port,
        user=APP_USER,
        password=maria.app_password,
        ssl_disabled=True,
    ).close()
    assert logins(maria.log_since(mark)) == ["TCP/IP"]


def handshake_response(port: int, user: str) -> tuple[int, str]:
    """A plaintext login attempt with no credential at all: the greeting, then a
    HandshakeResponse41 with an empty auth response. The server's answer: (error code, text),
    or (0, "OK")."""
    with socket.create_connection((ADDRESS, port), timeout=10) as sock:
        sock.recv(4096)  # the greeting
        flags = 0x1 | 0x200 | 0x8000 | 0x80000
        body = struct.pack("<IIB23s", flags, 1 << 24, 45, b"") + user.encode() + b"\0\0"
        body += b"mysql_native_password\0"
        sock.sendall(struct.pack("<I", len(body))[:3] + b"\x01" + body)
        answer = sock.recv(4096)[4:]
    if answer[:1] == b"\xff":
        return struct.unpack("<H", answer[1:3])[0], answer[9:].decode()
    return 0, "OK"


@pytest.mark.parametrize("on", [True, False])
def test_without_the_password_plaintext_is_refused_alike_either_way(
    maria: MariaDbServer, on: bool
) -> None:
    """Why there is no credential-free probe for MySQL and MariaDB: the server checks
    require_secure_transport only after the password (sql_acl.cc, acl_check_ssl), so a client
    without it gets the same "Access denied" whether plaintext is refused or not."""
    import pymysql

    maria.require_secure_transport(on=on)
    for user in ("rds_force_ssl_probe", APP_USER):
        code, text = handshake_response(maria.port, user)
        assert code == 1045, text
        assert text.startswith(f"Access denied for user '{user}'@'{ADDRESS}'")
    # With the right password over plaintext, MariaDB says the same "Access denied" when
    # require_secure_transport is ON (no ER_SECURE_TRANSPORT_REQUIRED), and lets it in when OFF.
    try:
        pymysql.connect(
            host=ADDRESS,
            port=maria.port,
            user=APP_USER,
            password=maria.app_password,
            ssl_disabled=True,
        ).close()
        answer = "logged in"
    except pymysql.OperationalError as err:
        answer = f"{err.args[0]}"
    assert answer == ("1045" if on else "logged in")


def test_a_host_name_the_certificate_lacks_fails_verification_but_proves_nothing_else(
    maria: MariaDbServer, run_verify_mysql: Callable[..., Run]
) -> None:
    """Not NOT VERIFIED (exit 3), which says plaintext is refused: with no session, MySQL's
    require_secure_transport could not be read, so the run is INCONCLUSIVE."""
    mark = maria.log_mark()
    run = run_verify_mysql(host=ADDRESS)
    assert run.code == 2, run.out
    assert re.search(
        r"verified TLS\s+FAIL\s+a client that verifies the server cannot connect "
        r"\(sslmode=verify-full\): .*127\.0\.0\.1",
        run.out,
    )
    assert run.out.splitlines()[-1] == "verdict: INCONCLUSIVE (exit 2)"
    assert logins(maria.log_since(mark)) == []  # refused before the user name was sent


def test_a_wrong_password_is_inconclusive(
    maria: MariaDbServer, run_verify_mysql: Callable[..., Run]
) -> None:
    mark = maria.log_mark()
    run = run_verify_mysql(password="not-" + maria.app_password)
    assert run.code == 2, run.out
    assert "could not log in (sslmode=verify-full): Access denied for user 'app'" in run.out
    assert "plaintext refused  ERROR   not judged" in run.out
    assert logins(maria.log_since(mark)) == ["SSL/TLS"]


def test_tls_floor(maria: MariaDbServer, run_verify_mysql: Callable[..., Run]) -> None:
    run = run_verify_mysql("--check-tls-floor")
    assert run.code == 0, run.out
    floor = next(line for line in run.out.splitlines() if line.startswith("TLS floor"))
    # Either the server refused TLSv1.1, or this client cannot offer it at all; never a pass
    # that was not earned.
    assert re.search(r"PASS\s+a client capped at TLSv1\.1 was refused", floor) or re.search(
        r"SKIP\s+this client's TLS library cannot offer TLSv1\.1", floor
    ), floor


def test_json(maria: MariaDbServer, run_verify_mysql: Callable[..., Run]) -> None:
    run = run_verify_mysql("--json")
    report = json.loads(run.out)
    assert (report["verdict"], report["exit_code"]) == ("ENFORCED", 0)
    assert report["target"]["engine"] == "mysql"
    plaintext = report["findings"][0]
    assert (plaintext["check"], plaintext["details"]) == (
        "plaintext refused",
        {"require_secure_transport": "ON"},
    )
    tls = report["findings"][1]["details"]
    assert (tls["ssl"], tls["version"]) == (True, "TLSv1.3")


def test_weaker_modes_need_the_explicit_flag(
    maria: MariaDbServer, run_verify_mysql: Callable[..., Run]
) -> None:
    mark = maria.log_mark()
    refused = run_verify_mysql("--sslmode", "verify-ca")
    assert refused.code == 2
    assert "MySQL has no channel binding" in refused.err
    assert logins(maria.log_since(mark)) == []  # a usage error, before any connection
    weaker = run_verify_mysql("--sslmode", "verify-ca", "--allow-unverified-password")
    # The real server, saying the right things; but nothing proved it was the server.
    assert weaker.code == 2, weaker.out
    assert "verdict: INCONCLUSIVE (exit 2)" in weaker.out
    assert "plaintext refused  WARN    require_secure_transport=ON, as reported over a TLS" in (
        weaker.out
    )
    assert "read over the verified session" not in weaker.out
    assert "verified TLS       WARN    TLSv1.3" in weaker.out
    assert "WEAKER: sslmode=verify-ca does not check the host name" in weaker.out
