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
