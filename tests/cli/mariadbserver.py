"""A throwaway MariaDB server with TLS, for the CLI tests: Debian's ``mariadb-server`` binaries,
started in a temporary folder, with a test CA, ``require_secure_transport=ON`` to begin with.

``require_secure_transport`` is dynamic, so one server serves both scenarios (refuses plaintext,
accepts it): a scenario is a ``SET GLOBAL``. Under root every server command runs as ``mysql``
(the user the package creates; mariadbd will not run as root without --user). Administration
goes over the Unix socket inside the folder, as a passwordless root: MariaDB counts a socket as
secure transport, so it works in every scenario.

The general log records every login attempt with its transport, after the server has received
the client's credentials ("Connect app@127.0.0.1 on appdb using SSL/TLS" or "... using TCP/IP",
sql/sql_acl.cc, ``acl_authenticate``): the proof that no credential of ``app`` ever arrived in
plaintext.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trustme

from tests.cli.pgserver import ADDRESS, HOST, as_user, free_port, give_to_user

SERVER_USER = "mysql"
APP_USER = "app"
APP_DB = "appdb"
SBIN = ("/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin")


def native_hash(password: str) -> str:
    """mysql_native_password's stored form: "*" and SHA1(SHA1(password)) in hex."""
    inner = hashlib.sha1(password.encode(), usedforsecurity=False).digest()
    return "*" + hashlib.sha1(inner, usedforsecurity=False).hexdigest().upper()


def find_binaries() -> tuple[Path, Path] | None:
    """mariadbd and mariadb-install-db, from PATH or Debian's /usr/sbin."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN])
    server = shutil.which("mariadbd", path=path)
    install = shutil.which("mariadb-install-db", path=path)
    return (Path(server), Path(install)) if server and install else None


@dataclass
class MariaDbServer:
    mariadbd: Path
    install_db: Path
    root: Path
    port: int
    ca: trustme.CA
    app_password: str
    process: subprocess.Popen[bytes] | None = None
    # On, as on RDS with Performance Insights: the clients command reads its threads tables.
    performance_schema: bool = True

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket(self) -> Path:
        return self.root / "mariadb.sock"

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.pem"

    @property
    def general_log(self) -> Path:
        return self.root / "general.log"

    @property
    def error_log(self) -> Path:
        return self.root / "error.log"

    def init(self) -> None:
        for folder in (self.root, self.root / "tls"):
            folder.mkdir(exist_ok=True)
            give_to_user(folder, SERVER_USER)
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        a_year = datetime.now(UTC) + timedelta(days=365)
        leaf = self.ca.issue_cert(HOST, common_name=HOST, not_after=a_year)
        crt, key = self.root / "tls" / "server.crt", self.root / "tls" / "server.key"
        leaf.cert_chain_pems[0].write_to_path(str(crt))
        leaf.private_key_pem.write_to_path(str(key))
        key.chmod(0o600)
        for path in (crt, key):
            give_to_user(path, SERVER_USER)
        self._run(
            str(self.install_db),
            "--no-defaults",
            f"--datadir={self.data}",
            "--auth-root-authentication-method=normal",  # passwordless root, socket only
            "--skip-test-db",
            "--skip-name-resolve",
            # Smaller InnoDB files: the default 100 MB redo log is most of the set-up time.
            "--innodb-log-file-size=4M",
            "--innodb-buffer-pool-size=8M",
        )

    def start(self) -> None:
        tls = self.root / "tls"
        cmd = [
            str(self.mariadbd),
            "--no-defaults",
            f"--datadir={self.data}",
            f"--socket={self.socket}",
            f"--port={self.port}",
            f"--bind-address={ADDRESS}",
            f"--pid-file={self.root / 'mariadbd.pid'}",
            f"--log-error={self.error_log}",
            "--general-log=1",
            f"--general-log-file={self.general_log}",
            "--skip-name-resolve",
            f"--ssl-cert={tls / 'server.crt'}",
            f"--ssl-key={tls / 'server.key'}",
            "--tls-version=TLSv1.2,TLSv1.3",
            "--require-secure-transport=ON",
            "--innodb-log-file-size=4M",
            "--innodb-buffer-pool-size=8M",
            "--skip-log-bin",
            f"--performance-schema={'ON' if self.performance_schema else 'OFF'}",
        ]
        self.process = subprocess.Popen(
            as_user(cmd, SERVER_USER), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with self.admin() as conn, conn.cursor() as cur:
                    # By its hash: the password itself never reaches the server's log.
                    cur.execute(
                        f"CREATE USER {APP_USER}@'%' IDENTIFIED BY PASSWORD "
                        f"'{native_hash(self.app_password)}'"
                    )
                    cur.execute(f"CREATE DATABASE {APP_DB}")
                    cur.execute(f"GRANT ALL ON {APP_DB}.* TO {APP_USER}@'%'")
                return
            except Exception as err:  # not up yet: the socket is missing or refuses
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mariadbd did not start: {err}\n{self.log_tail()}") from err
                time.sleep(0.05)

    def admin(self) -> Any:
        import pymysql

        return pymysql.connect(unix_socket=str(self.socket), user="root", autocommit=True)

    def require_secure_transport(self, on: bool) -> None:
        with self.admin() as conn, conn.cursor() as cur:
            cur.execute(f"SET GLOBAL require_secure_transport = {'ON' if on else 'OFF'}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # The data folder is thrown away, so a clean shutdown would only cost seconds: kill
            # mariadbd itself (under root the process started is runuser, which would not pass
            # SIGKILL on), and its parent then ends.
            pid = self.root / "mariadbd.pid"
            if pid.exists():
                os.kill(int(pid.read_text()), signal.SIGKILL)
            else:
                self.process.terminate()
            self.process.wait(timeout=30)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # ---- evidence --------------------------------------------------------------------------
    def log_mark(self) -> int:
        return self.general_log.stat().st_size if self.general_log.exists() else 0

    def log_since(self, mark: int) -> str:
        with self.general_log.open("rb") as log:
            log.seek(mark)
            return log.read().decode(errors="replace")

    def log_tail(self) -> str:
        text = self.error_log.read_text(errors="replace") if self.error_log.exists() else ""
        return text[-2000:]

    def _run(self, *cmd: str) -> None:
        done = subprocess.run(
            as_user(list(cmd), SERVER_USER),
            capture_output=True,
            text=True,
            cwd=self.root,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{Path(cmd[0]).name} exited {done.returncode}: {done.stderr.strip()[-2000:]}"
            )


def start_server(*, app_password: str, performance_schema: bool = True) -> MariaDbServer:
    binaries = find_binaries()
    if binaries is None:
        raise FileNotFoundError("mariadbd or mariadb-install-db not found")
    root = Path(tempfile.mkdtemp(prefix="rds-force-ssl-mariadb-"))
    root.chmod(0o755)  # the server user must be able to enter it
    server = MariaDbServer(
        *binaries, root, free_port(), trustme.CA(), app_password, None, performance_schema
    )
    try:
        server.init()
        server.start()
    except BaseException:
        server.stop()
        server.remove()
        raise
    return server
