"""Errors the CLI reports instead of a traceback: what went wrong, and what to do about it.

Every one of them ends the command with exit code 2 (usage or connection error), as text on
stderr or, under ``--json``, as a JSON object on stdout.
"""

from __future__ import annotations

import importlib.util
from typing import Any

INSTALL_HINT = "pip install 'rds-force-ssl[cli]'"


class CliError(Exception):
    """``code`` is a stable identifier for scripts; ``message`` says what happened, ``fix`` what
    to do."""

    def __init__(self, code: str, message: str, *, fix: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fix = fix

    def as_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "fix": self.fix}}


def require(*modules: str, command: str) -> None:
    """Fail early, before any prompt or connection, when a driver of the ``[cli]`` extra is
    missing. (find_spec only looks; the import itself happens where the driver is used.)"""
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise missing(module, command=command)


def missing(module: str, *, command: str) -> CliError:
    return CliError(
        "missing-dependency",
        f"rds-force-ssl {command} needs the Python package {module}, which is not installed",
        fix=f"install the CLI's extra: {INSTALL_HINT}",
    )


# A timeout past this is a mistake (and from about 9.2e9 s, more than the C timeval the socket
# calls take: OverflowError); an hour is far more than any endpoint needs.
MAX_TIMEOUT_S = 3600.0


def check_timeout(seconds: float, *, option: str = "--timeout") -> None:
    """A usage error unless ``seconds`` is finite, above 0 and at most ``MAX_TIMEOUT_S``."""
    import math

    if not (math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT_S):
        raise CliError(
            "usage",
            f"{option} {seconds:g}: must be more than 0 and at most {MAX_TIMEOUT_S:g} seconds",
            fix=f"e.g. {option} 10",
        )


def check_text(value: str, *, option: str) -> None:
    """A usage error unless ``value`` can go on the wire: text that is valid UTF-8 (a byte that
    is not arrives from the command line as a lone surrogate) and without NUL, which ends a
    name in both protocols' start-up."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise CliError(
            "usage",
            f"{option}: the value is not valid UTF-8 text (it holds bytes that decode to nothing)",
            fix=f"pass {option} as UTF-8 text",
        ) from err
    if "\0" in value:
        raise CliError(
            # Raw: the CLI escapes every message as it prints it (cli/__init__.py, _fail).
            "usage",
            f"{option} '{value}' contains a NUL character",
            fix=f"remove it from {option}",
        )
