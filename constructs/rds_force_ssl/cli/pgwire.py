"""The PostgreSQL side of the plaintext probe: send a StartupMessage without SSLRequest, read the
first answer, and say what it proves. Nothing here ever sends a password, in any form.

Protocol reference: https://www.postgresql.org/docs/current/protocol-flow.html (start-up) and
https://www.postgresql.org/docs/current/protocol-message-formats.html (message layouts).

A server decides in this order, so the first answer tells how far a plaintext client got:

1. the postmaster may turn the client away before anything else (starting up, shutting down,
   too many clients): that says nothing about SSL;
2. ``pg_hba.conf`` is matched; with ``rds.force_ssl=1`` (or ``hostssl``-only rules) no line
   admits a plaintext client, and the server answers ``no pg_hba.conf entry ... no encryption``
   (``SSL off`` before PostgreSQL 12) or ``pg_hba.conf rejects connection ... no encryption``;
3. the matched line's method asks for credentials (an AuthenticationRequest), or lets the client
   in at once (``trust``: AuthenticationOk);
4. only then are the role and the database looked up.

The words at the end of a ``pg_hba.conf`` refusal describe the connection that came in, not the
reason it was refused: PostgreSQL 12 and later always add ``no encryption`` to a plaintext
client's refusal (``SSL off`` before), also when no line names this user at all, or when the
server has no TLS. So a refusal in plaintext is only half the proof. The other half is a second
connection that asks for TLS (SSLRequest), completes an unverified handshake and sends the same
StartupMessage: if the server then asks for credentials (or gets past ``pg_hba.conf`` in any other
way), it was the encryption that made the difference.

Hence: a plaintext refusal by ``pg_hba.conf`` that TLS gets past is ENFORCED; an authentication
request, a login, or any error that only comes after step 2 is NOT_ENFORCED; a refusal with and
without TLS, a server without TLS, and everything else is INCONCLUSIVE, with the server's words.
"""

from __future__ import annotations

import re
import ssl
import struct
from collections.abc import Mapping
from typing import Any

from rds_force_ssl.cli.output import clip
from rds_force_ssl.cli.wire import (
    Identity,
    Outcome,
    Verdict,
    Wire,
    describe_foreign,
    mysql_greeting_version,
    tls_error_text,
)

PROTOCOL_3_0 = 3 << 16
MAX_MESSAGE = 64 * 1024  # an ErrorResponse or AuthenticationRequest is far smaller
MAX_MESSAGES = 8  # notices and a protocol negotiation may come first; then give up

# Message types a server sends during start-up (protocol-message-formats).
AUTHENTICATION = ord("R")
ERROR_RESPONSE = ord("E")
NOTICE_RESPONSE = ord("N")
NEGOTIATE_PROTOCOL_VERSION = ord("v")
START_UP_TYPES = frozenset(
    {AUTHENTICATION, ERROR_RESPONSE, NOTICE_RESPONSE, NEGOTIATE_PROTOCOL_VERSION}
)

# AuthenticationRequest codes: what the server asked the plaintext client for.
AUTH_OK = 0
AUTH_SASL = 10
AUTH_REQUESTS = {
    2: "Kerberos V5",
    3: "a cleartext password",
    5: "an MD5 password hash",
    7: "GSSAPI",
    9: "SSPI",
    AUTH_SASL: "SASL",
}

# pg_hba.conf turning a client away, with or without an explicit `reject` line. The words after
# the database name ("no encryption", "SSL off", "SSL encryption") describe the connection, not the
# reason (src/backend/libpq/auth.c, ClientAuthentication).
HBA_REFUSAL = re.compile(r"(no pg_hba\.conf entry|pg_hba\.conf rejects connection) for host ")
# Errors a server raises only once a client has passed pg_hba.conf: authentication
# failures (ident, ldap, radius, password), and role or database look-ups (step 4 above).
PAST_HBA = re.compile(
    r"authentication failed|does not exist|not permitted to log in|"
    r"too many connections for (role|database)|remaining connection slots are reserved",
    re.IGNORECASE,
)
# SQLSTATEs that come before pg_hba.conf is read (step 1): the server is not taking anyone now.
BEFORE_HBA = {
    "53300": "the server is full and turned every client away before reading pg_hba.conf",
    "57P03": "the server is not accepting connections now",
}
INVALID_AUTHORIZATION = "28000"
# https://www.postgresql.org/docs/current/protocol-message-formats.html (SSLRequest)
SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def startup_message(who: Identity) -> bytes:
    """A protocol 3.0 StartupMessage: user, database and application_name, and nothing else."""
    params = b"".join(
        key.encode() + b"\0" + value.encode() + b"\0"
        for key, value in (
            ("user", who.user),
            ("database", who.dbname),
            ("application_name", who.application_name),
        )
    )
    body = struct.pack("!i", PROTOCOL_3_0) + params + b"\0"
    return struct.pack("!i", len(body) + 4) + body


def error_fields(body: bytes) -> dict[str, str]:
    """An ErrorResponse's fields by their one-letter code (S severity, C SQLSTATE, M message)."""
    fields: dict[str, str] = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", errors="replace")
    return fields


def hex_preview(data: bytes) -> str:
    return " ".join(f"{b:02x}" for b in data[:8])


def quoted(fields: Mapping[str, str]) -> str:
    """The server's message and SQLSTATE, each cut to ``MAX_SERVER_TEXT`` (a table escapes
    what remains; a server may send 64 KB on one line)."""
    code, message = clip(fields.get("C", ""), limit=5), clip(fields.get("M", ""))
    return f"{message} (SQLSTATE {code})" if code else message


def is_hba_refusal(fields: Mapping[str, str]) -> bool:
    return bool(HBA_REFUSAL.search(fields.get("M", ""))) and fields.get("C", "") in (
        "",
        INVALID_AUTHORIZATION,
    )


def classify_error(fields: Mapping[str, str]) -> Outcome:
    """The plaintext start-up's first answer was an ErrorResponse other than a pg_hba.conf
    refusal (which ``plaintext_probe`` follows up over TLS): which step produced it?"""
    code = fields.get("C", "")
    said = quoted(fields)
    evidence = {"sqlstate": code or None, "message": fields.get("M", "")}
    if code in BEFORE_HBA and not PAST_HBA.search(said):
        return Outcome(Verdict.INCONCLUSIVE, f"{BEFORE_HBA[code]}; try again: {said}", evidence)
    if PAST_HBA.search(said):
        return Outcome(
            Verdict.NOT_ENFORCED,
            f"a plaintext client got past pg_hba.conf to authentication or later: {said}",
            evidence,
        )
    return Outcome(
        Verdict.INCONCLUSIVE,
        f"an error that does not say whether plaintext is refused: {said}",
        evidence,
    )


def requested(body: bytes) -> str | None:
    """What an AuthenticationRequest asks for ("" for AuthenticationOk); None if truncated."""
    if len(body) < 4:
        return None
    (code,) = struct.unpack("!i", body[:4])
    if code == AUTH_OK:
        return ""
    if code == AUTH_SASL:
        mechanisms = [m.decode(errors="replace") for m in body[4:].split(b"\0") if m]
        return f"SASL ({clip(', '.join(mechanisms))})"
    return AUTH_REQUESTS.get(code, f"authentication method {code}")


def classify_authentication(body: bytes) -> Outcome:
    """The first answer was an AuthenticationRequest: plaintext reached step 3."""
    asked = requested(body)
    if asked is None:
        return Outcome(Verdict.INCONCLUSIVE, "a truncated authentication request")
    if not asked:
        return Outcome(
            Verdict.NOT_ENFORCED,
            "a plaintext client was let in without any password (trust)",
            {"auth_request": "ok"},
        )
    return Outcome(
        Verdict.NOT_ENFORCED,
        f"a plaintext client was asked for {asked}; the probe closed without answering",
        {"auth_request": asked},
    )


def classify_over_tls(
    answer: tuple[int, bytes] | Outcome, *, refusal: str, evidence: Mapping[str, Any]
) -> Outcome:
    """The same start-up, sent over TLS after pg_hba.conf refused it in plaintext: did TLS make
    the difference?"""
    refused = f"refused in plaintext by pg_hba.conf: {refusal}"
    if isinstance(answer, Outcome):
        return Outcome(Verdict.INCONCLUSIVE, f"{refused}; over TLS: {answer.detail}", evidence)
    kind, body = answer
    if kind == AUTHENTICATION:
        asked = requested(body)
        if asked is None:
            return Outcome(
                Verdict.INCONCLUSIVE,
                f"{refused}; over TLS: a truncated authentication request",
                evidence,
            )
        over_tls = f"was asked for {asked}" if asked else "was let in (trust)"
        return Outcome(
            Verdict.ENFORCED,
            f"{refused}; over TLS the same start-up {over_tls}",
            {**evidence, "over_tls": over_tls},
        )
    fields = error_fields(body)
    said = quoted(fields)
    evidence = {**evidence, "over_tls": said}
    if is_hba_refusal(fields):
        return Outcome(
            Verdict.INCONCLUSIVE,
            f"this identity is refused with and without TLS ({refusal}; over TLS: {said}), so "
            "the refusal says nothing about encryption: pass the --user/--dbname your clients "
            "use",
            evidence,
        )
    if PAST_HBA.search(said):
        return Outcome(
            Verdict.ENFORCED,
            f"{refused}; over TLS the same start-up got past pg_hba.conf: {said}",
            evidence,
        )
    if fields.get("C", "") in BEFORE_HBA:
        return Outcome(
            Verdict.INCONCLUSIVE,
            f"{refused}; over TLS: {BEFORE_HBA[fields['C']]}; try again: {said}",
            evidence,
        )
    return Outcome(
        Verdict.INCONCLUSIVE,
        f"{refused}; over TLS, an error that does not tell: {said}",
        evidence,
    )


def read_message(wire: Wire, buffer: bytearray) -> tuple[int, bytes] | Outcome | None:
    """The next whole message from ``buffer`` (filled from ``wire``), an Outcome if the bytes are
    not PostgreSQL's, or None at end of stream before a whole message."""
    while True:
        if len(buffer) >= 1 and buffer[0] not in START_UP_TYPES:
            return not_postgres(bytes(buffer))
        # A MySQL greeting whose length happens to start with E, N, R or v would otherwise be
        # read as a 10-byte message of that type.
        if len(buffer) >= 6 and mysql_greeting_version(bytes(buffer[:6])) is not None:
            return not_postgres(bytes(buffer))
        if len(buffer) >= 5:
            (length,) = struct.unpack("!i", buffer[1:5])
            if not 4 <= length <= MAX_MESSAGE:
                return not_postgres(bytes(buffer))
            if len(buffer) >= 1 + length:
                kind, body = buffer[0], bytes(buffer[5 : 1 + length])
                del buffer[: 1 + length]
                return kind, body
        chunk = wire.receive()
        if not chunk:
            return None
        buffer += chunk


def not_postgres(data: bytes) -> Outcome:
    """Bytes that are not PostgreSQL's: say what kind of server sent them, when it is a known
    kind (an HTTP server, a TLS endpoint, MySQL), and show the first bytes otherwise."""
    said = describe_foreign(data)
    if said is None:
        return Outcome(
            Verdict.INCONCLUSIVE,
            "the answer is not PostgreSQL's start-up protocol "
            f"(first bytes, hex: {hex_preview(data)})",
            {"first_bytes_hex": hex_preview(data)},
        )
    return Outcome(
        Verdict.INCONCLUSIVE,
        f"the answer is not PostgreSQL's start-up protocol: {said}",
        {"first_bytes_hex": hex_preview(data), "not_postgres": said},
    )


def first_answer(wire: Wire) -> tuple[int, bytes] | Outcome:
    """The first ErrorResponse or AuthenticationRequest, past notices and a protocol
    negotiation; an Outcome when there is none."""
    buffer = bytearray()
    for _ in range(MAX_MESSAGES):
        message = read_message(wire, buffer)
        if isinstance(message, Outcome):
            return message
        if message is None:
            if buffer:
                return Outcome(Verdict.INCONCLUSIVE, "the connection closed in mid-message")
            return Outcome(
                Verdict.UNREACHABLE, "the server closed the connection without answering"
            )
        if message[0] in (ERROR_RESPONSE, AUTHENTICATION):
            return message
        # A NoticeResponse or NegotiateProtocolVersion decides nothing: read on.
    return Outcome(Verdict.INCONCLUSIVE, f"no deciding answer in {MAX_MESSAGES} messages")


def follow_up_over_tls(wire: Wire, who: Identity, *, refusal: Mapping[str, str]) -> Outcome:
    """pg_hba.conf refused the plaintext start-up: send the same one over TLS."""
    said = quoted(refusal)
    evidence = {"sqlstate": refusal.get("C") or None, "message": refusal.get("M", "")}
    refused = f"refused in plaintext by pg_hba.conf: {said}"
    try:
        wire.reconnect()
        wire.send(SSL_REQUEST)
        reply = wire.receive()
        if reply == b"N":
            return Outcome(
                Verdict.INCONCLUSIVE,
                f"{refused}; and the server offers no TLS at all (it answered the SSLRequest "
                "with N), so the refusal is not for want of encryption",
                {**evidence, "over_tls": "no TLS"},
            )
        if not reply:
            return Outcome(
                Verdict.INCONCLUSIVE,
                f"{refused}; the server hung up when asked for TLS",
                evidence,
            )
        if reply != b"S":
            # One byte and nothing more: anything else is not a PostgreSQL server's answer
            # (a server must not send data before the handshake, CVE-2021-23222).
            said = describe_foreign(reply) or f"first bytes, hex: {hex_preview(reply)}"
            return Outcome(
                Verdict.INCONCLUSIVE,
                f"{refused}; the answer to the SSLRequest is not PostgreSQL's ({said})",
                evidence,
            )
        wire.start_tls()
        wire.send(startup_message(who))
        answer = first_answer(wire)
    except TimeoutError:
        return Outcome(Verdict.INCONCLUSIVE, f"{refused}; no answer over TLS in time", evidence)
    except ssl.SSLError as err:
        return Outcome(
            Verdict.INCONCLUSIVE,
            f"{refused}; the TLS handshake failed: {tls_error_text(err)}",
            evidence,
        )
    except OSError as err:
        return Outcome(
            Verdict.INCONCLUSIVE,
            f"{refused}; the connection over TLS failed: {err.strerror or err}",
            evidence,
        )
    return classify_over_tls(answer, refusal=said, evidence=evidence)


HALF_PROVEN = "pg_hba_refused_in_plaintext"  # evidence key of an Outcome not followed up yet


def plaintext_probe(wire: Wire, who: Identity, *, follow_up: bool = True) -> Outcome:
    """Send the plaintext StartupMessage and classify the first answer that decides; a
    pg_hba.conf refusal is followed up over TLS. With ``follow_up=False`` (for a caller that
    has its own TLS session as the same user) such a refusal is INCONCLUSIVE, its evidence
    marked ``HALF_PROVEN``, for the caller to settle."""
    wire.send(startup_message(who))
    answer = first_answer(wire)
    if isinstance(answer, Outcome):
        return answer
    kind, body = answer
    if kind == AUTHENTICATION:
        return classify_authentication(body)
    fields = error_fields(body)
    if not is_hba_refusal(fields):
        return classify_error(fields)
    if follow_up:
        return follow_up_over_tls(wire, who, refusal=fields)
    return Outcome(
        Verdict.INCONCLUSIVE,
        f"refused in plaintext by pg_hba.conf: {quoted(fields)}",
        {"sqlstate": fields.get("C") or None, "message": fields.get("M", ""), HALF_PROVEN: True},
    )
