"""Server-supplied text reaches a terminal only through output.printable."""

from __future__ import annotations

import pytest

from rds_force_ssl.cli.output import MAX_SERVER_TEXT, printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("PostgreSQL 16.4", "PostgreSQL 16.4"),
        ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),
        ("a\nb\rc\td", "a\\x0ab\\x0dc\\x09d"),
        ("\x9b2J", "\\x9b2J"),
        ("abc\u202edcba", "abc\\u202edcba"),
        ("line\u2028next", "line\\u2028next"),
        ("\x7f", "\\x7f"),
        ("C:\\x1b", "C:\\\\x1b"),
        ("héllo wörld", "héllo wörld"),
    ],
)
def test_controls_are_escaped(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_no_control_character_survives() -> None:
    every = "".join(chr(code) for code in range(0x2100))
    safe = printable(every, limit=len(every))
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in safe)
    assert "\u200e" not in safe
    assert "\u2066" not in safe


def test_long_text_is_cut_and_says_so() -> None:
    shown = printable("x" * 65536)
    assert shown.startswith("x" * MAX_SERVER_TEXT)
    assert shown.endswith(f"...(+{65536 - MAX_SERVER_TEXT} characters)")
    assert len(shown) < MAX_SERVER_TEXT + 40
