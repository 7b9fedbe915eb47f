"""What every command writes the same way: the exit codes' epilog, JSON on stdout, a progress
counter on a terminal's stderr, and a plain text table."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import IO, Any

# Every command's, in short (the top-level --help); each command's own --help has its exact ones.
EPILOG = (
    "Exit codes: 0 SSL-only holds (clients: no plaintext client seen); 1 it does not (clients: "
    "a plaintext client seen); 2 usage, connection or internal error, or inconclusive; verify "
    "also 3, not verified (plaintext refused, but a verifying client cannot connect). Each "
    "command's --help has its own."
)
VERIFY_EPILOG = (
    "Exit codes: 0 enforced, 1 not enforced, 2 usage, connection or internal error or "
    "inconclusive, 3 not verified (plaintext refused, but a verifying client cannot connect)."
)


def dump(document: dict[str, Any], out: IO[str]) -> None:
    json.dump(document, out, indent=2, default=str)
    out.write("\n")


def progress(err: IO[str], verb: str) -> Callable[[int, int], None] | None:
    if not err.isatty():
        return None

    def show(done: int, total: int) -> None:
        # A carriage-return counter on the terminal only; stdout stays clean for pipes.
        err.write(f"\r{verb} {done}/{total}")
        if done == total:
            err.write("\n")
        err.flush()

    return show


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    lines = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in (headers, *rows)
    ]
    return "\n".join(lines) + "\n"


# What a server may put in one table cell before it is cut (one server printed 64 KB on one line).
MAX_SERVER_TEXT = 200
# C0 and C1 controls and DEL (Cc), format characters such as the bidirectional overrides (Cf),
# and line and paragraph separators: each could move the cursor, rewrite or hide a line.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def clip(text: object, *, limit: int = MAX_SERVER_TEXT) -> str:
    """Text a server supplied, cut at ``limit`` characters with the number left out said, and
    not escaped: for evidence that goes to JSON (which escapes) as well as to a table (whose
    renderer applies ``printable``). Cut where it is quoted, so that a long server string
    cannot push the words after it out of view."""
    raw = str(text)
    return raw if len(raw) <= limit else f"{raw[:limit]}...(+{len(raw) - limit} characters)"


def printable(text: object, *, limit: int = MAX_SERVER_TEXT) -> str:
    """Text a server supplied, made safe for a terminal: every character that is not plainly
    printable is written as an escape (``\\x1b``, ``\\u202e``), a backslash is doubled so that
    an escape cannot be faked, and the result is cut at ``limit`` characters with the number
    left out said. JSON output needs none of this: ``json.dump`` escapes controls itself."""
    import unicodedata

    raw = str(text)
    cut = raw[:limit]
    parts: list[str] = []
    for char in cut:
        if char == "\\":
            parts.append("\\\\")
        elif unicodedata.category(char) in _UNPRINTABLE:
            code = ord(char)
            parts.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            parts.append(char)
    safe = "".join(parts)
    if len(raw) > limit:
        safe += f"...(+{len(raw) - limit} characters)"
    return safe
