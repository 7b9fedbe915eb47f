"""A throwaway PostgreSQL cluster with TLS, for the CLI tests and the verify benchmark.

One cluster serves every scenario: a scenario rewrites ``pg_hba.conf`` (or swaps the server
certificate, or raises the TLS floor) and reloads. The server binaries are the machine's own;
``initdb`` refuses to run as root, so under root every server command runs as ``postgres``.
Administration goes through a ``local ... trust`` line on a socket inside the cluster folder, so it
keeps working whatever the TCP rules of a scenario are.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import trustme

SERVER_USER = "postgres"
HOST = "localhost"  # the name in the server certificate
ADDRESS = "127.0.0.1"  # the same server under a name the certificate does not carry
APP_USER = "app"
APP_DB = "appdb"
SSLINFO_DB = "sslinfodb"  # a database with the sslinfo extension installed

ADMIN_LINE = f"local all {SERVER_USER} trust"
# rds.force_ssl=1 as pg_hba.conf: TLS or nothing.
HBA_SSL_ONLY = (
    f"hostssl all all {ADDRESS}/32 scram-sha-256",
    f"hostnossl all all {ADDRESS}/32 reject",
)
# The same, without the reject line: the refusal then reads "no pg_hba.conf entry".
HBA_SSL_ONLY_NO_REJECT = (f"hostssl all all {ADDRESS}/32 scram-sha-256",)
# A `host` line matches plaintext and TLS alike.
HBA_HOST = (f"host all all {ADDRESS}/32 scram-sha-256",)
# Plaintext with cleartext `password` authentication: the worst case for a leaked password.
HBA_PLAINTEXT_PASSWORD = (
    f"hostssl all all {ADDRESS}/32 scram-sha-256",
    f"hostnossl all all {ADDRESS}/32 password",
)
HBA_HOST_PASSWORD = (f"host all all {ADDRESS}/32 password",)
# SSL-only over TCP, and a cleartext password over the Unix-domain socket, where libpq never
# uses TLS whatever its sslmode: what a --host naming the socket would reach.
HBA_SSL_ONLY_LOCAL_PASSWORD = (*HBA_SSL_ONLY, f"local all {APP_USER} password")
# SSL-only, for one user only: any other name is refused, with TLS or without.
HBA_APP_SSL_ONLY = (
    f"hostssl all {APP_USER} {ADDRESS}/32 scram-sha-256",
    f"hostnossl all all {ADDRESS}/32 reject",
)
# A line for one user only: any other name is refused whether it comes with TLS or not.
HBA_APP_ONLY = (f"host all {APP_USER} {ADDRESS}/32 scram-sha-256",)
# Plaintext for one user, TLS for everyone: SSL-only for every name but that one.
HBA_APP_PLAINTEXT = (
    f"host all {APP_USER} {ADDRESS}/32 scram-sha-256",
    f"hostssl all all {ADDRESS}/32 scram-sha-256",
)
HBA_HOST_MD5 = (f"host all all {ADDRESS}/32 md5",)
HBA_TRUST = (f"host all all {ADDRESS}/32 trust",)
# TLS, but a cleartext `password` method on it: a client asked for it cannot use channel binding.
HBA_SSL_PASSWORD = (
    f"hostssl all all {ADDRESS}/32 password",
    f"hostnossl all all {ADDRESS}/32 reject",
)
# PostgreSQL's default, and one that lets the client offer TLS 1.0 and 1.1 as well.
CIPHERS_DEFAULT = "HIGH:MEDIUM:+3DES:!aNULL"
CIPHERS_LEGACY = "DEFAULT:@SECLEVEL=0"
# What the server logs at DEBUG5/DEBUG4 the moment a password or a SASL answer arrives
# (src/backend/libpq/auth.c, auth-sasl.c): the proof that the probes never sent one.
PASSWORD_RECEIVED = ("received password packet", "processing received SASL response")
# 127.0.0.1 and more loopback addresses on the same server: one endpoint per address, for fleet
# tests. PostgreSQL listens on at most 64 sockets (MAXLISTEN in postmaster.c), the Unix-domain
# socket included.
MAX_ADDRESSES = 63


def loopback_addresses(count: int) -> tuple[str, ...]:
    return tuple(f"127.0.0.{n}" for n in range(1, count + 1))


RELOADED = "received SIGHUP, reloading configuration files"


def find_bindir() -> Path | None:
    """The server binaries: ``pg_config --bindir`` first, then the newest Debian-style layout."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip())
        if out.returncode == 0 and (candidate / "initdb").exists():
            return candidate
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((ADDRESS, 0))
        port: int = sock.getsockname()[1]
        return port


def as_user(cmd: list[str], user: str = SERVER_USER) -> list[str]:
    """``cmd`` run as the server's own user when the tests run as root (the servers refuse root)."""
    return ["runuser", "-u", user, "--", *cmd] if os.geteuid() == 0 else cmd


def give_to_user(path: Path, user: str = SERVER_USER) -> None:
    """Make ``path`` the server user's when the tests run as root."""
    if os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


@dataclass
class PgServer:
    bindir: Path
    root: Path
    port: int
    ca: trustme.CA
    app_password: str
    addresses: tuple[str, ...] = (ADDRESS,)
    cert_names: tuple[str, ...] = ()  # more names for the certificate than HOST
    # More postgresql.conf lines, (name, value) as written: e.g. max_connections.
    settings: tuple[tuple[str, str], ...] = ()
    _applied: tuple[object, ...] = field(default=(), init=False, repr=False)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.pem"

    # ---- lifecycle -------------------------------------------------------------------------
    def init(self) -> None:
        for folder in (self.root, self.socket_dir, self.root / "tls"):
            folder.mkdir(exist_ok=True)
            give_to_user(folder)
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SERVER_USER,
            "--auth=trust",
            "--no-sync",
            "--no-instructions",
        )
        # A year, like a real server certificate (trustme's default runs to the year 3000).
        a_year = datetime.now(UTC) + timedelta(days=365)
        self.install_certificate(
            self.ca.issue_cert(HOST, *self.cert_names, common_name=HOST, not_after=a_year),
            name="server",
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '{','.join(self.addresses)}'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "ssl = on\n"
                f"ssl_cert_file = '{self.root / 'tls' / 'server.crt'}'\n"
                f"ssl_key_file = '{self.root / 'tls' / 'server.key'}'\n"
                "log_connections = on\n"
                "log_line_prefix = '%m [%p] %r %u@%d '\n"
                "fsync = off\n"
                # A custom setting named like RDS's, so `settings` has something to report.
                "rds.force_ssl = 1\n"
            )
            conf.writelines(f"{name} = {value}\n" for name, value in self.settings)
        self.write_hba(HBA_SSL_ONLY)

    def start(self) -> None:
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            "30",
            "start",
        )
        with self.admin() as conn:
            conn.execute(f"CREATE ROLE {APP_USER} LOGIN PASSWORD '{self.app_password}'")
            # Like an RDS master user (rds_superuser is in pg_monitor): it may read ssl_* settings.
            conn.execute(f"GRANT pg_monitor TO {APP_USER}")
            conn.execute(f"CREATE DATABASE {APP_DB} OWNER {APP_USER}")
            conn.execute(f"CREATE DATABASE {SSLINFO_DB} OWNER {APP_USER}")
        with self.admin(dbname=SSLINFO_DB) as conn:
            conn.execute("CREATE EXTENSION sslinfo")
        self._applied = (HBA_SSL_ONLY, "server", "TLSv1.2", CIPHERS_DEFAULT, "warning", True)

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # ---- scenarios -------------------------------------------------------------------------
    def admin(self, *, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=SERVER_USER,
            dbname=dbname,
            autocommit=True,
        )

    def write_hba(self, lines: tuple[str, ...]) -> None:
        (self.data / "pg_hba.conf").write_text("\n".join((ADMIN_LINE, *lines)) + "\n")

    def install_certificate(self, cert: trustme.LeafCert, *, name: str) -> None:
        """Write ``name``.crt/.key where the server can read them (key 0600, owned by it)."""
        crt, key = self.root / "tls" / f"{name}.crt", self.root / "tls" / f"{name}.key"
        cert.cert_chain_pems[0].write_to_path(str(crt))
        cert.private_key_pem.write_to_path(str(key))
        key.chmod(0o600)
        for path in (crt, key):
            give_to_user(path)

    def configure(
        self,
        *,
        hba: tuple[str, ...],
        cert: str = "server",
        ssl_min_protocol_version: str = "TLSv1.2",
        ssl_ciphers: str = CIPHERS_DEFAULT,
        log_min_messages: str = "warning",
        ssl: bool = True,
    ) -> None:
        """Apply a scenario and wait until the postmaster has reloaded it.

        ``log_min_messages="debug5"`` makes the server log every password or SASL message it
        receives (``PASSWORD_RECEIVED``); ``ssl=False`` turns TLS off (it then answers an
        SSLRequest with N)."""
        wanted = (hba, cert, ssl_min_protocol_version, ssl_ciphers, log_min_messages, ssl)
        if wanted == self._applied:
            return
        self.write_hba(hba)
        before = self.log_text().count(RELOADED)
        tls = self.root / "tls"
        with self.admin() as conn:
            conn.execute(f"ALTER SYSTEM SET ssl_cert_file = '{tls / (cert + '.crt')}'")
            conn.execute(f"ALTER SYSTEM SET ssl_key_file = '{tls / (cert + '.key')}'")
            conn.execute(
                f"ALTER SYSTEM SET ssl_min_protocol_version = '{ssl_min_protocol_version}'"
            )
            conn.execute(f"ALTER SYSTEM SET ssl_ciphers = '{ssl_ciphers}'")
            conn.execute(f"ALTER SYSTEM SET log_min_messages = '{log_min_messages}'")
            conn.execute(f"ALTER SYSTEM SET ssl = {'on' if ssl else 'off'}")
            conn.execute("SELECT pg_reload_conf()")
        # pg_reload_conf only signals; new connections see the new rules once it is logged.
        deadline = time.monotonic() + 10
        while self.log_text().count(RELOADED) <= before:
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not reload its configuration")
            time.sleep(0.01)
        self._applied = wanted

    def issue_expiring_certificate(self, *, not_after: datetime) -> None:
        self.install_certificate(
            self.ca.issue_cert(HOST, common_name=HOST, not_after=not_after), name="expiring"
        )

    # ---- evidence --------------------------------------------------------------------------
    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def log_mark(self) -> int:
        return self.log_file.stat().st_size

    def log_since(self, mark: int) -> str:
        with self.log_file.open("rb") as log:
            log.seek(mark)
            return log.read().decode(errors="replace")

    def _run(self, *cmd: str) -> None:
        done = subprocess.run(
            as_user(list(cmd)), capture_output=True, text=True, cwd=self.root, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{Path(cmd[0]).name} exited {done.returncode}: {done.stderr.strip()}\n"
                f"{self.log_text()[-2000:]}"
            )


def start_server(
    *,
    bindir: Path,
    app_password: str,
    addresses: tuple[str, ...] = (ADDRESS,),
    cert_names: tuple[str, ...] = (),
    settings: tuple[tuple[str, str], ...] = (),
) -> PgServer:
    """Create, configure and start a TLS cluster on a free port of every address (its
    certificate names HOST and ``cert_names``, its postgresql.conf ends with ``settings``);
    SSL-only rules to begin with."""
    root = Path(tempfile.mkdtemp(prefix="rds-force-ssl-pg-"))
    # mkdtemp makes it 0700 for the current user; the server user must be able to enter it.
    root.chmod(0o755)
    server = PgServer(
        bindir, root, free_port(), trustme.CA(), app_password, addresses, cert_names, settings
    )
    try:
        server.init()
        server.start()
    except BaseException:
        server.remove()
        raise
    return server
