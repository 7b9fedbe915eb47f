"""libpq, loaded with ctypes, for the verified session of ``verify``.

Why libpq: it is what psql uses, so ``sslmode``, ``sslrootcert`` and ``channel_binding`` mean
exactly what they mean to psql, checks included. Why not through psycopg: importing psycopg costs
100-170 ms on a 2-core machine, more than the whole TLS login over a 10 ms link, and ``verify``
needs one connection and one query. (https://www.postgresql.org/docs/current/libpq-connect.html,
https://www.postgresql.org/docs/current/libpq-exec.html)

Which libpq: the one psycopg-binary carries (the ``[cli]`` extra installs it; its wheels vendor
libpq next to the package), else the system's, by the name the dynamic loader knows (Debian's
libpq5). Homebrew's libpq is keg-only, off the loader's path, so on macOS it is the extra's. It
must be 13 or later: verify passes channel_binding (13), gssencmode and tcp_user_timeout (12),
which an older libpq rejects as unknown options.
"""

from __future__ import annotations

import ctypes
import glob
import importlib.util
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from typing import Any

MIN_VERSION = 130000  # PQlibVersion of libpq 13.0
CONNECTION_OK = 0
PGRES_TUPLES_OK = 2
# Where psycopg-binary's wheels put libpq: auditwheel/delvewheel (Linux, Windows) and delocate
# (macOS).
VENDORED = (
    ("psycopg_binary.libs", "libpq*"),
    (os.path.join("psycopg_binary", ".dylibs"), "libpq*"),
)
SYSTEM_NAMES = {"linux": ("libpq.so.5",), "darwin": ("libpq.5.dylib",), "win32": ("libpq.dll",)}


class LibpqError(Exception):
    """libpq's own message for a failed connection or query."""


def vendored() -> list[str]:
    """psycopg-binary's libpq, found without importing anything."""
    try:
        spec = importlib.util.find_spec("psycopg_binary")
    except (ImportError, ValueError):
        return []
    if spec is None or spec.origin is None:
        return []
    site = os.path.dirname(os.path.dirname(spec.origin))
    found: list[str] = []
    for folder, pattern in VENDORED:
        found += sorted(glob.glob(os.path.join(site, folder, pattern)))
    return found


def candidates() -> list[str]:
    return vendored() + list(SYSTEM_NAMES.get(sys.platform, ()))


@cache
def load() -> ctypes.CDLL:
    """The first libpq that loads; ImportError (with what was tried) if none does."""
    tried = []
    for path in candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError as err:
            tried.append(f"{path}: {err}")
            continue
        _declare(lib)
        return lib
    raise ImportError(
        "no libpq could be loaded (tried: " + ("; ".join(tried) or "nothing found") + ")",
        name="libpq",
    )


def _declare(lib: ctypes.CDLL) -> None:
    p, s, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    for name, restype, argtypes in (
        ("PQconnectdbParams", p, [ctypes.POINTER(s), ctypes.POINTER(s), i]),
        ("PQstatus", i, [p]),
        ("PQerrorMessage", s, [p]),
        ("PQfinish", None, [p]),
        ("PQexec", p, [p, s]),
        ("PQresultStatus", i, [p]),
        ("PQresultErrorMessage", s, [p]),
        ("PQntuples", i, [p]),
        ("PQnfields", i, [p]),
        ("PQgetvalue", s, [p, i, i]),
        ("PQgetisnull", i, [p, i, i]),
        ("PQclear", None, [p]),
        ("PQlibVersion", i, []),
    ):
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes


def version() -> int:
    """libpq's version, e.g. 180006 for 18.6."""
    return int(load().PQlibVersion())


def describe() -> dict[str, str]:
    """Which libpq serves, for the record: the file (or the name the loader resolved), and its
    version."""
    number = version()
    return {"path": str(load()._name), "version": f"{number // 10000}.{number % 10000}"}


Row = tuple[str | None, ...]


class Session:
    def __init__(self, lib: ctypes.CDLL, conn: Any) -> None:
        self._lib = lib
        self._conn = conn

    def query(self, sql: str) -> list[Row]:
        """Rows of the last statement (one simple-query message may hold several), every value
        as text (None for NULL)."""
        lib = self._lib
        result = lib.PQexec(self._conn, sql.encode())
        try:
            if lib.PQresultStatus(result) != PGRES_TUPLES_OK:
                message = lib.PQresultErrorMessage(result) or lib.PQerrorMessage(self._conn)
                raise LibpqError((message or b"query failed").decode(errors="replace").strip())
            return [
                tuple(
                    None
                    if lib.PQgetisnull(result, r, c)
                    else lib.PQgetvalue(result, r, c).decode(errors="replace")
                    for c in range(lib.PQnfields(result))
                )
                for r in range(lib.PQntuples(result))
            ]
        finally:
            lib.PQclear(result)


@contextmanager
def connect(params: Mapping[str, object]) -> Iterator[Session]:
    """A connection with these libpq parameters (PQconnectdbParams), closed on exit."""
    lib = load()
    keys = [k.encode() for k in params] + [None]
    values = [str(v).encode() for v in params.values()] + [None]
    conn = lib.PQconnectdbParams(
        (ctypes.c_char_p * len(keys))(*keys), (ctypes.c_char_p * len(values))(*values), 0
    )
    if not conn:
        raise LibpqError("libpq could not allocate a connection")
    try:
        if lib.PQstatus(conn) != CONNECTION_OK:
            message = lib.PQerrorMessage(conn) or b"connection failed"
            raise LibpqError(message.decode(errors="replace").strip())
        yield Session(lib, conn)
    finally:
        lib.PQfinish(conn)
