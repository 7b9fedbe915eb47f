"""The plaintext probe's decisions as pure functions, on answers the local server cannot give:
older servers' "SSL off", a server that is full or starting up, a pooler's post-auth errors,
notices before the answer, non-PostgreSQL bytes, and the endpoint syntax and exit codes."""

from __future__ import annotations

import socket
import ssl
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rds_force_ssl.cli import pgwire, wire
from rds_force_ssl.cli.engines import ENGINES, for_proxy_family, for_rds_engine
from rds_force_ssl.cli.probe import Result, Target, exit_code
from rds_force_ssl.cli.wire import Endpoint, Identity, Outcome, Verdict, parse_endpoint

E, N, U, Q = (Verdict.ENFORCED, Verdict.NOT_ENFORCED, Verdict.UNREACHABLE, Verdict.INCONCLUSIVE)


def message(kind: str, body: bytes) -> bytes:
    return kind.encode() + struct.pack("!i", len(body) + 4) + body


def error(code: str, text: str) -> bytes:
    return message("E", b"SFATAL\0C" + code.encode() + b"\0M" + text.encode() + b"\0\0")


def auth(code: int, extra: bytes = b"") -> bytes:
    return message("R", struct.pack("!i", code) + extra)


class FakeWire:
    """Replays the server's bytes in the chunks given; records what the probe sent. After
    ``reconnect`` it replays ``again`` instead (the follow-up over TLS); ``tls_error`` makes the
    handshake fail."""

    def __init__(
        self, *chunks: bytes, again: tuple[bytes, ...] = (), tls_error: bool = False
    ) -> None:
        self.sent: list[bytes] = []
        self.events: list[str] = []
        self._chunks: Iterator[bytes] = iter(chunks)
        self._again = again
        self._tls_error = tls_error

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def receive(self) -> bytes:
        return next(self._chunks, b"")

    def reconnect(self) -> None:
        self.events.append(f"reconnect after {len(self.sent)} sent")
        self._chunks = iter(self._again)

    def start_tls(self) -> None:
        self.events.append("tls")
        if self._tls_error:
            raise ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")


def converse(
    *chunks: bytes, again: tuple[bytes, ...] = (), tls_error: bool = False
) -> tuple[Outcome, FakeWire]:
    wire = FakeWire(*chunks, again=again, tls_error=tls_error)
    return pgwire.plaintext_probe(wire, Identity("u", "d")), wire  # type: ignore[arg-type]


HBA = 'for host "10.0.0.9", user "u", database "d"'
# pg_hba.conf refusals of a plaintext client: PostgreSQL 12+ and older wordings, with and
# without a reject line. The last words describe the connection, not the reason.
PLAINTEXT_REFUSALS = [
    error("28000", f"pg_hba.conf rejects connection {HBA}, no encryption"),
    error("28000", f"no pg_hba.conf entry {HBA}, no encryption"),
    error("28000", f"no pg_hba.conf entry {HBA}, SSL off"),
    error("28000", f"pg_hba.conf rejects connection {HBA}, SSL off"),
    error("28000", f"no pg_hba.conf entry {HBA}"),  # a server built without SSL
]
TLS_OK = b"S"


@pytest.mark.parametrize("refusal", PLAINTEXT_REFUSALS)
@pytest.mark.parametrize(
    ("over_tls", "verdict"),
    [
        # TLS makes the difference: the same start-up gets past pg_hba.conf
        ((TLS_OK, auth(10, b"SCRAM-SHA-256\0\0")), E),
        ((TLS_OK, auth(5, b"salt")), E),
        ((TLS_OK, auth(0)), E),
        ((TLS_OK, error("28P01", 'password authentication failed for user "u"')), E),
        ((TLS_OK, error("28000", 'role "u" does not exist')), E),
        # refused over TLS too: no line for this identity at all, encrypted or not
        ((TLS_OK, error("28000", f"no pg_hba.conf entry {HBA}, SSL encryption")), Q),
        ((TLS_OK, error("28000", f"pg_hba.conf rejects connection {HBA}, SSL encryption")), Q),
        # no TLS on this server, or no clear answer over it
        ((b"N",), Q),
        ((b"",), Q),
        ((b"SE",), Q),  # bytes after the S, before the handshake (CVE-2021-23222)
        ((b"E\x00\x00\x00\x08",), Q),
        ((TLS_OK, error("57P03", "the database system is shutting down")), Q),
        ((TLS_OK, error("0A000", "unsupported frontend protocol 3.0")), Q),
        ((TLS_OK, b""), Q),
        ((TLS_OK, message("R", b"\0\0")), Q),
    ],
)
def test_a_plaintext_refusal_is_proven_only_by_the_same_startup_over_tls(
    refusal: bytes, over_tls: tuple[bytes, ...], verdict: Verdict
) -> None:
    outcome, wire = converse(refusal, again=over_tls)
    assert outcome.verdict == verdict, outcome.detail
    assert wire.events[0] == "reconnect after 1 sent"
    assert wire.sent[1] == pgwire.SSL_REQUEST
    if verdict == E:
        # the identical StartupMessage, over TLS, and nothing more
        assert wire.events == ["reconnect after 1 sent", "tls"]
        assert wire.sent[2:] == [wire.sent[0]]
    if over_tls[0] == b"N":
        assert "offers no TLS" in outcome.detail
        assert len(wire.sent) == 2


def test_a_failed_handshake_after_a_plaintext_refusal_is_inconclusive() -> None:
    outcome, _ = converse(PLAINTEXT_REFUSALS[1], again=(TLS_OK,), tls_error=True)
    assert outcome.verdict == Q
    assert outcome.detail.endswith("the TLS handshake failed: wrong version number")


def test_refused_both_ways_says_which_names_to_pass() -> None:
    outcome, _ = converse(
        PLAINTEXT_REFUSALS[1],
        again=(TLS_OK, error("28000", f"no pg_hba.conf entry {HBA}, SSL encryption")),
    )
    assert outcome.detail.startswith("this identity is refused with and without TLS")
    assert outcome.detail.endswith("pass the --user/--dbname your clients use")


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        # plaintext got past pg_hba.conf: authentication or later
        (auth(0), N),
        (auth(3), N),
        (auth(5, b"salt"), N),
        (auth(10, b"SCRAM-SHA-256\0\0"), N),
        (auth(7), N),
        (auth(42), N),
        (error("28P01", 'password authentication failed for user "u"'), N),
        (error("28000", 'Ident authentication failed for user "u"'), N),
        (error("28000", 'role "u" does not exist'), N),
        (error("3D000", 'database "d" does not exist'), N),
        (error("53300", 'too many connections for role "u"'), N),
        (error("53300", "remaining connection slots are reserved for superusers"), N),
        # turned away before pg_hba.conf, or an answer that does not tell
        (error("53300", "sorry, too many clients already"), Q),
        (error("57P03", "the database system is starting up"), Q),
        (error("57P03", "the database system is shutting down"), Q),
        (error("0A000", "unsupported frontend protocol 3.0"), Q),
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", Q),
        (message("R", b"\0\0"), Q),  # a truncated authentication request
        # no answer at all
        (b"", U),
    ],
)
def test_first_answer_decides(answer: bytes, verdict: Verdict) -> None:
    outcome, wire = converse(answer)
    assert outcome.verdict == verdict, outcome.detail
    assert wire.events == []  # no follow-up: only a pg_hba.conf refusal needs one


def test_answer_split_across_reads_and_after_a_notice() -> None:
    notice = message("N", b"SNOTICE\0Mhello\0\0")
    refusal = error("28000", f"no pg_hba.conf entry {HBA}, no encryption")
    asked = auth(10, b"SCRAM-SHA-256\0\0")
    outcome, _ = converse(
        notice[:3],
        notice[3:] + refusal[:7],
        refusal[7:],
        again=(TLS_OK, notice + asked[:3], asked[3:]),
    )
    assert outcome.verdict == E
    assert outcome.evidence == {
        "sqlstate": "28000",
        "message": f"no pg_hba.conf entry {HBA}, no encryption",
        "over_tls": "was asked for SASL (SCRAM-SHA-256)",
    }


def test_a_connection_closed_mid_message_is_inconclusive() -> None:
    outcome, _ = converse(error("28000", "x")[:6])
    assert (outcome.verdict, outcome.detail) == (Q, "the connection closed in mid-message")


def test_an_absurd_length_is_not_postgres() -> None:
    outcome, _ = converse(b"E\x7f\xff\xff\xff")
    assert outcome.verdict == Q
    assert outcome.detail.endswith("(first bytes, hex: 45 7f ff ff ff)")


def test_evidence_and_details_quote_the_server() -> None:
    outcome, _ = converse(
        error("28000", f"no pg_hba.conf entry {HBA}, SSL off"),
        again=(TLS_OK, auth(10, b"SCRAM-SHA-256\0\0")),
    )
    assert outcome.detail == (
        f"refused in plaintext by pg_hba.conf: no pg_hba.conf entry {HBA}, SSL off "
        "(SQLSTATE 28000); over TLS the same start-up was asked for SASL (SCRAM-SHA-256)"
    )
    outcome, _ = converse(auth(10, b"SCRAM-SHA-256\0SCRAM-SHA-256-PLUS\0\0"))
    assert outcome.detail == (
        "a plaintext client was asked for SASL (SCRAM-SHA-256, SCRAM-SHA-256-PLUS); "
        "the probe closed without answering"
    )


def test_the_probe_sends_one_startup_message_and_nothing_else() -> None:
    _, wire = converse(auth(3))
    assert len(wire.sent) == 1
    sent = wire.sent[0]
    (length, protocol) = struct.unpack("!ii", sent[:8])
    assert (length, protocol) == (len(sent), 3 << 16)
    fields = sent[8:].split(b"\0")
    assert fields[:6] == [
        b"user",
        b"u",
        b"database",
        b"d",
        b"application_name",
        b"rds-force-ssl probe",
    ]
    assert b"password" not in sent.lower()


@pytest.mark.parametrize(
    ("text", "endpoint"),
    [
        ("db.example.com", Endpoint("db.example.com", 5432)),
        ("db.example.com:6432", Endpoint("db.example.com", 6432)),
        ("10.0.0.5:5433", Endpoint("10.0.0.5", 5433)),
        ("[::1]:5433", Endpoint("::1", 5433)),
        ("[::1]", Endpoint("::1", 5432)),
        ("fe80::1", Endpoint("fe80::1", 5432)),
    ],
)
def test_endpoint_syntax(text: str, endpoint: Endpoint) -> None:
    assert parse_endpoint(text, default_port=5432) == endpoint


@pytest.mark.parametrize("text", ["db:0", "db:65536", "db:x", ":5432", "[::1", "[::1]5432"])
def test_bad_endpoints_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"port|host|IPv6"):
        parse_endpoint(text, default_port=5432)


def test_ipv6_endpoints_print_with_brackets() -> None:
    assert str(Endpoint("::1", 5432)) == "[::1]:5432"


def results(*verdicts: Verdict) -> list[Result]:
    return [Result(Target(Endpoint("h", 5432)), Outcome(v, "")) for v in verdicts]


@pytest.mark.parametrize(
    ("verdicts", "complete", "code"),
    [
        ((E, E), True, 0),
        ((E, N, U), True, 1),  # proof beats a missing answer
        ((E, U), True, 2),
        ((E, Q), True, 2),
        ((E, E), False, 2),  # part of the region could not be listed
        ((N,), False, 1),
        ((), True, 2),  # nothing probed proves nothing
    ],
)
def test_exit_codes(verdicts: tuple[Verdict, ...], complete: bool, code: int) -> None:
    assert exit_code(results(*verdicts), complete=complete) == code


def test_engine_table_names_postgres_and_aurora_and_the_proxy_family() -> None:
    postgres = ENGINES["postgresql"]
    assert for_rds_engine("postgres") is postgres
    assert for_rds_engine("aurora-postgresql") is postgres
    assert for_proxy_family("POSTGRESQL") is postgres
    assert postgres.default_port == 5432
    # MySQL-protocol engines are known, and say why they have no credential-free probe.
    mysql = ENGINES["mysql"]
    for engine in ("mysql", "mariadb", "aurora-mysql"):
        assert for_rds_engine(engine) is mysql
    assert for_proxy_family("MYSQL") is mysql
    assert mysql.plaintext_probe is None
    assert "only after checking its password" in (mysql.no_probe or "")
    assert for_rds_engine("sqlserver-se") is None


class FakeNetwork:
    """A name with three addresses, and sockets on a fake clock: connecting to a silent address
    takes the socket's whole timeout, a refused one a tenth of a second. Nothing real is dialed
    and no time passes, so the bound is checked without a clock in the test."""

    def __init__(self, answers: list[str]) -> None:
        self.now = 0.0
        self.answers = answers  # per address: "silent", "refused" or "ok"
        self.timeouts: list[float] = []

    def getaddrinfo(self, host: str, port: int, *_: object, **__: object) -> list[Any]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (f"192.0.2.{n}", port))
            for n in range(1, len(self.answers) + 1)
        ]

    def socket(self, *_: object, **__: object) -> Any:
        network = self

        class Sock:
            timeout: float | None = None

            def settimeout(self, value: float | None) -> None:
                self.timeout = value

            def connect(self, address: tuple[str, int]) -> None:
                network.timeouts.append(self.timeout or 0.0)
                answer = network.answers[int(address[0].rsplit(".", 1)[1]) - 1]
                if answer == "silent":
                    network.now += self.timeout or 0.0
                    raise TimeoutError
                network.now += 0.1
                if answer == "refused":
                    raise ConnectionRefusedError

            def close(self) -> None:
                pass

        return Sock()


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str]], FakeNetwork]:
    def make(answers: list[str]) -> FakeNetwork:
        fake = FakeNetwork(answers)
        monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
        monkeypatch.setattr(socket, "socket", fake.socket)
        monkeypatch.setattr(time, "monotonic", lambda: fake.now)
        return fake

    return make


def test_three_silent_addresses_share_one_timeout(
    network: Callable[[list[str]], FakeNetwork],
) -> None:
    fake = network(["silent", "silent", "silent"])
    outcome = wire.probe_endpoint(
        Endpoint("db.example", 5432), pgwire.plaintext_probe, who=Identity(), timeout=2.0
    )
    assert (outcome.verdict, outcome.detail) == (U, "no TCP connection within 2 s")
    assert fake.now <= 2.0  # create_connection gave each address 2 s: 6 s in all
    assert fake.timeouts == [2.0]


def test_a_refused_address_leaves_the_rest_of_the_time_to_the_next(
    network: Callable[[list[str]], FakeNetwork],
) -> None:
    fake = network(["refused", "silent", "ok"])
    outcome = wire.probe_endpoint(
        Endpoint("db.example", 5432), pgwire.plaintext_probe, who=Identity(), timeout=2.0
    )
    assert (outcome.verdict, outcome.detail) == (U, "no TCP connection within 2 s")
    assert fake.timeouts == [2.0, pytest.approx(1.9)]
    assert fake.now == pytest.approx(2.0)
