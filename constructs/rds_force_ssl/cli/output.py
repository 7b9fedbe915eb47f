"""What every command writes the same way: the exit codes' epilog, JSON on stdout, a progress
counter on a terminal's stderr, and a plain text table."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import IO, Any

EPILOG = (
    "Exit codes: 0 enforced, 1 not enforced, 2 usage, connection or internal error or "
    "inconclusive; "
    "verify also 3, not verified (plaintext refused, but a verifying client cannot connect)."
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
