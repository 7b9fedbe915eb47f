"""A login's rules and password, one copy for ``verify`` and ``clients``: the login goes only
over TLS, and the password never to a server whose identity is not verified unless the user
asked for it; the password comes from an environment variable, else a prompt on a terminal,
never a command-line argument, which ends up in shell history and `ps`."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import TYPE_CHECKING

from rds_force_ssl.cli.errors import CliError, check_text

if TYPE_CHECKING:
    from rds_force_ssl.cli.engines import Engine as Protocol


def check_login(args: argparse.Namespace, protocol: Protocol) -> None:
    """Usage errors, before any prompt or connection, for a login's options: the TLS mode and
    its CA file, the password's exposure under a mode that does not verify the server, the
    host, the user, the database and the port."""
    from rds_force_ssl.cli import verify

    if args.sslmode != "require" and not args.sslrootcert:
        raise CliError(
            "usage",
            f"--sslrootcert is required with --sslmode {args.sslmode}",
            fix="pass the RDS CA bundle, global-bundle.pem, from "
            "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem",
        )
    if (
        not protocol.channel_binding
        and args.sslmode != "verify-full"
        and not args.allow_unverified_password
    ):
        raise CliError(
            "usage",
            f"MySQL has no channel binding: with --sslmode {args.sslmode} the password would go "
            "to a server whose identity is not fully verified",
            fix="pass --sslmode verify-full with --sslrootcert, or --allow-unverified-password "
            "to send it anyway",
        )
    ca_file = args.sslrootcert or (verify.default_root_cert() if protocol.libpq else None)
    if protocol.libpq and args.sslmode == "require" and ca_file:
        # libpq checks the CA under `require` whenever it finds a CA file: that is verify-ca.
        raise CliError(
            "usage",
            f"--sslmode require with a CA file ({ca_file}) is what libpq calls verify-ca",
            fix="pass --sslmode verify-full (or verify-ca) with --sslrootcert",
        )
    if args.allow_unverified_password and args.sslmode == "verify-full":
        raise CliError(
            "usage",
            "--allow-unverified-password only applies to --sslmode verify-ca or require",
            fix="drop it: verify-full verifies the server before the password is sent",
        )
    verify.check_host(args.host)
    check_text(args.user, option="--user")
    if args.dbname is not None:
        check_text(args.dbname, option="--dbname")
    if args.port is not None and not 0 < args.port < 65536:
        raise CliError("usage", f"--port {args.port} is not a TCP port", fix="pass 1 to 65535")
    if args.sslrootcert:
        verify.check_sslrootcert(args.sslrootcert)


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
