"""`rds-force-ssl probe` against a real PostgreSQL server, one scenario per pg_hba.conf rule set,
with the server logging at DEBUG5: it would log "received password packet" (or a SASL response)
the moment any password arrived, and the positive control shows that it does."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from rds_force_ssl import cli
from tests.cli.fakepg import fake_fleet
from tests.cli.pgserver import (
    ADDRESS,
    APP_DB,
    APP_USER,
    HBA_APP_ONLY,
    HBA_APP_PLAINTEXT,
    HBA_HOST,
    HBA_HOST_PASSWORD,
    HBA_SSL_ONLY,
    HBA_SSL_ONLY_NO_REJECT,
    HBA_TRUST,
    MAX_ADDRESSES,
    PASSWORD_RECEIVED,
    PgServer,
    free_port,
    loopback_addresses,
)

pytestmark = pytest.mark.postgres


def probe(
    pg: PgServer, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, dict[str, Any]]:
    code = cli.main(["probe", f"{ADDRESS}:{pg.port}", "--json", *args])
    return code, json.loads(capsys.readouterr().out)


SCRAM_OVER_TLS = "over TLS the same start-up was asked for SASL (SCRAM-SHA-256-PLUS, SCRAM-SHA-256)"


@pytest.mark.parametrize(
    ("hba", "ssl", "verdict", "code", "detail"),
    [
        (
            HBA_SSL_ONLY,
            True,
            "ENFORCED",
            0,
            "refused in plaintext by pg_hba.conf: pg_hba.conf rejects connection for host "
            '"127.0.0.1", user "rds_force_ssl_probe", database "postgres", no encryption '
            f"(SQLSTATE 28000); {SCRAM_OVER_TLS}",
        ),
        (
            HBA_SSL_ONLY_NO_REJECT,
            True,
            "ENFORCED",
            0,
            "refused in plaintext by pg_hba.conf: no pg_hba.conf entry for host "
            '"127.0.0.1", user "rds_force_ssl_probe", database "postgres", no encryption '
            f"(SQLSTATE 28000); {SCRAM_OVER_TLS}",
        ),
        (
            HBA_HOST,
            True,
            "NOT_ENFORCED",
            1,
            "a plaintext client was asked for SASL (SCRAM-SHA-256); the probe closed without "
            "answering",
        ),
        (
            HBA_HOST_PASSWORD,
            True,
            "NOT_ENFORCED",
            1,
            "a plaintext client was asked for a cleartext password; the probe closed without "
            "answering",
        ),
        (
            HBA_TRUST,
            True,
            "NOT_ENFORCED",
            1,
            "a plaintext client was let in without any password (trust)",
        ),
        # The probe's name has no line; another user's `host` line admits plaintext. PostgreSQL
        # 12+ still ends the refusal in "no encryption": it describes the connection, not why.
        (
            HBA_APP_ONLY,
            False,
            "INCONCLUSIVE",
            2,
            "refused in plaintext by pg_hba.conf: no pg_hba.conf entry for host "
            '"127.0.0.1", user "rds_force_ssl_probe", database "postgres", no encryption '
            "(SQLSTATE 28000); and the server offers no TLS at all (it answered the SSLRequest "
            "with N), so the refusal is not for want of encryption",
        ),
        (
            HBA_APP_ONLY,
            True,
            "INCONCLUSIVE",
            2,
            "this identity is refused with and without TLS (no pg_hba.conf entry for host "
            '"127.0.0.1", user "rds_force_ssl_probe", database "postgres", no encryption '
            '(SQLSTATE 28000); over TLS: no pg_hba.conf entry for host "127.0.0.1", user '
            '"rds_force_ssl_probe", database "postgres", SSL encryption (SQLSTATE 28000)), so the '
            "refusal says nothing about encryption: pass the --user/--dbname your clients use",
        ),
    ],
    ids=[
        "hostssl+reject",
        "hostssl-only",
        "host-scram",
        "host-password",
        "host-trust",
        "ssl-off+other-user-host",
        "other-user-host",
    ],
)
def test_verdict_and_no_password_reaches_the_server(
    pg: PgServer,
    capsys: pytest.CaptureFixture[str],
    hba: tuple[str, ...],
    ssl: bool,
    verdict: str,
    code: int,
    detail: str,
) -> None:
    pg.configure(hba=hba, ssl=ssl, log_min_messages="debug5")
    mark = pg.log_mark()
    got, report = probe(pg, capsys)
    log = pg.log_since(mark)
    [endpoint] = report["endpoints"]
    assert (got, endpoint["verdict"], endpoint["detail"]) == (code, verdict, detail)
    assert "connection received: host=127.0.0.1" in log  # the probe did reach this server
    assert not [p for p in PASSWORD_RECEIVED if p in log], log


def test_plaintext_for_one_user_and_tls_for_all_the_verdict_is_for_the_names_probed(
    pg: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """`host all app` + `hostssl all all`: plaintext is refused for every name but `app`. No
    credential-free probe can see a line for a name it does not send (the server's answers to
    any other name are those of an SSL-only server, byte for byte), which is why the verdict
    quotes the names and docs/cli/probe.md says to pass the ones your clients use. With them, the
    plaintext line shows."""
    pg.configure(hba=HBA_APP_PLAINTEXT, log_min_messages="debug5")
    mark = pg.log_mark()
    code, report = probe(pg, capsys, "--user", APP_USER, "--dbname", APP_DB)
    assert (code, report["endpoints"][0]["verdict"]) == (1, "NOT_ENFORCED")
    code, report = probe(pg, capsys)
    [endpoint] = report["endpoints"]
    assert (code, endpoint["verdict"]) == (0, "ENFORCED")
    assert 'user "rds_force_ssl_probe", database "postgres"' in endpoint["detail"]
    assert not [p for p in PASSWORD_RECEIVED if p in pg.log_since(mark)]


def test_positive_control_the_log_shows_a_password_when_one_is_sent(pg: PgServer) -> None:
    """Without this, an absent log line could mean the logging was off."""
    pg.configure(hba=HBA_HOST_PASSWORD, log_min_messages="debug5")
    mark = pg.log_mark()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            host=ADDRESS,
            port=pg.port,
            user=APP_USER,
            dbname=APP_DB,
            password="a-wrong-password",
            sslmode="disable",
        ).close()
    assert "received password packet" in pg.log_since(mark)


def test_user_and_database_go_into_the_startup(
    pg: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _, report = probe(pg, capsys, "--user", APP_USER, "--dbname", APP_DB)
    assert f'user "{APP_USER}", database "{APP_DB}"' in report["endpoints"][0]["detail"]


def test_closed_port_is_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["probe", f"{ADDRESS}:{free_port()}"])
    out = capsys.readouterr().out
    assert code == 2
    assert "UNREACHABLE  connection refused: nothing listens on that port" in out
    assert out.splitlines()[-1] == (
        "0 ENFORCED, 0 NOT_ENFORCED, 1 UNREACHABLE, 0 INCONCLUSIVE (exit 2)"
    )


def test_a_fleet_on_every_loopback_address_of_one_server(
    pg: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """63 real endpoints (one server, listening on each of 127.0.0.1-63) are ENFORCED, mixed
    with 10 closed ports and 5 fake servers that ask for a password. (pg_hba.conf matches the
    client's address, which is 127.0.0.1 whatever address it dials, so one server cannot play
    both parts.)"""
    addresses = loopback_addresses(MAX_ADDRESSES)
    pg.configure(hba=HBA_SSL_ONLY_NO_REJECT, log_min_messages="debug5")
    with fake_fleet(["password"] * 5) as fakes:
        real = [f"{a}:{pg.port}" for a in addresses]
        closed = [f"127.0.0.1:{free_port()}" for _ in range(10)]
        asking = [f"127.0.0.1:{port}" for port in fakes.parts]
        endpoints = [e for group in zip(real, closed + asking, strict=False) for e in group]
        endpoints += real[len(closed + asking) :]
        mark = pg.log_mark()
        code = cli.main(["probe", *endpoints, "--json", "--concurrency", "16"])
    report = json.loads(capsys.readouterr().out)
    log = pg.log_since(mark)
    assert code == 1
    got = {e["endpoint"]: e["verdict"] for e in report["endpoints"]}
    assert list(got) == endpoints  # in the order given
    assert got == (
        dict.fromkeys(real, "ENFORCED")
        | dict.fromkeys(closed, "UNREACHABLE")
        | dict.fromkeys(asking, "NOT_ENFORCED")
    )
    assert log.count("no pg_hba.conf entry for host") == len(real)
    assert not [p for p in PASSWORD_RECEIVED if p in log]
    assert fakes.after_answer == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["probe"], "nothing to probe"),
        (["probe", "db:99999"], "bad endpoint"),
        (["probe", "db", "--timeout", "0"], "--timeout must be > 0"),
        (["probe", "db", "--concurrency", "x"], "invalid int value"),
    ],
)
def test_usage_errors_exit_2_as_json_too(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert cli.main([*argv, "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert message in report["error"]["message"]
    assert report["error"]["fix"]
    assert report["exit_code"] == 2
