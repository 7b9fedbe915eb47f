"""The password of a login (``verify``, ``clients``): from an environment variable, else a
prompt on a terminal; never a command-line argument, which ends up in shell history and `ps`."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from rds_force_ssl.cli.errors import CliError


def password_from(args: argparse.Namespace) -> str:
    """The value of ``args.password_env``, or what a person types at the prompt for
    ``args.user``; a CliError naming the variable when it is unset and stdin is no terminal."""
    password = os.environ.get(args.password_env)
    if password:
        return password
    if sys.stdin.isatty():
        return getpass.getpass(f"Password for {args.user}: ")
    raise CliError(
        "no-password",
        f"no password: {args.password_env} is not set and stdin is not a terminal",
        fix=f"set {args.password_env} (or name another variable with --password-env), or run "
        "in a terminal to be prompted",
    )
