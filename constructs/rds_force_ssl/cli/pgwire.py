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

Hence: an SSL-rule refusal is ENFORCED; an authentication request, a login, or any error that
only comes after step 2 is NOT_ENFORCED; everything else is INCONCLUSIVE, with the server's words.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping

from rds_force_ssl.cli.wire import Identity, Outcome, Verdict, Wire

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

# The SSL rule refusing a plaintext client, with or without an explicit `hostnossl ... reject`.
SSL_RULE = re.compile(
    r"(no pg_hba\.conf entry|pg_hba\.conf rejects connection) for host .*(no encryption|SSL off)"
)
# Errors a server raises only once a plaintext client has passed pg_hba.conf: authentication
# failures (ident, ldap, radius, password), and role or database look-ups (step 4 above).
PAST_SSL_RULE = re.compile(
    r"authentication failed|does not exist|not permitted to log in|"
    r"too many connections for (role|database)|remaining connection slots are reserved",
    re.IGNORECASE,
)
# SQLSTATEs that come before pg_hba.conf is read (step 1): the server is not taking anyone now.
BEFORE_SSL_RULE = {
    "53300": "the server is full and turned every client away before its SSL rule",
    "57P03": "the server is not accepting connections now",
}
INVALID_AUTHORIZATION = "28000"


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


def classify_error(fields: Mapping[str, str]) -> Outcome:
    """The first answer was an ErrorResponse: which step of the start-up produced it?"""
    code = fields.get("C", "")
    message = fields.get("M", "")
    said = f"{message} (SQLSTATE {code})" if code else message
    evidence = {"sqlstate": code or None, "message": message}
    if SSL_RULE.search(message) and code in ("", INVALID_AUTHORIZATION):
        return Outcome(
            Verdict.ENFORCED, f"refused before authentication by the SSL rule: {said}", evidence
        )
    if code in BEFORE_SSL_RULE and not PAST_SSL_RULE.search(message):
        return Outcome(
            Verdict.INCONCLUSIVE, f"{BEFORE_SSL_RULE[code]}; try again: {said}", evidence
        )
    if PAST_SSL_RULE.search(message):
        return Outcome(
            Verdict.NOT_ENFORCED,
            f"a plaintext client got past pg_hba.conf to authentication or later: {said}",
            evidence,
        )
    if code == INVALID_AUTHORIZATION and "pg_hba.conf" in message:
        # e.g. a server built without SSL: no line for this user at all, encrypted or not.
        return Outcome(
            Verdict.INCONCLUSIVE,
            f"refused by pg_hba.conf, but not for want of encryption: {said}",
            evidence,
        )
    return Outcome(
        Verdict.INCONCLUSIVE,
        f"an error that does not say whether plaintext is refused: {said}",
        evidence,
    )


def classify_authentication(body: bytes) -> Outcome:
    """The first answer was an AuthenticationRequest: plaintext reached step 3."""
    if len(body) < 4:
        return Outcome(Verdict.INCONCLUSIVE, "a truncated authentication request")
    (code,) = struct.unpack("!i", body[:4])
    if code == AUTH_OK:
        return Outcome(
            Verdict.NOT_ENFORCED,
            "a plaintext client was let in without any password (trust)",
            {"auth_request": "ok"},
        )
    asked = AUTH_REQUESTS.get(code, f"authentication method {code}")
    if code == AUTH_SASL:
        mechanisms = [m.decode(errors="replace") for m in body[4:].split(b"\0") if m]
        asked = f"SASL ({', '.join(mechanisms)})"
    return Outcome(
        Verdict.NOT_ENFORCED,
        f"a plaintext client was asked for {asked}; the probe closed without answering",
        {"auth_request": asked},
    )


def read_message(wire: Wire, buffer: bytearray) -> tuple[int, bytes] | Outcome | None:
    """The next whole message from ``buffer`` (filled from ``wire``), an Outcome if the bytes are
    not PostgreSQL's, or None at end of stream before a whole message."""
    while True:
        if len(buffer) >= 1 and buffer[0] not in START_UP_TYPES:
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
    return Outcome(
        Verdict.INCONCLUSIVE,
        f"the answer is not PostgreSQL's start-up protocol (first bytes, hex: {hex_preview(data)})",
    )


def plaintext_probe(wire: Wire, who: Identity) -> Outcome:
    """Send the plaintext StartupMessage and classify the first answer that decides."""
    wire.send(startup_message(who))
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
        kind, body = message
        if kind == ERROR_RESPONSE:
            return classify_error(error_fields(body))
        if kind == AUTHENTICATION:
            return classify_authentication(body)
        # A NoticeResponse or NegotiateProtocolVersion decides nothing: read on.
    return Outcome(Verdict.INCONCLUSIVE, f"no deciding answer in {MAX_MESSAGES} messages")
