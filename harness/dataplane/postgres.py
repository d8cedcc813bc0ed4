"""A real PostgreSQL server from Debian's packages, run with the tier's own rendered configuration.

Only what must differ on a laptop is overridden: the port, the paths and the listen address.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from components import postgres_config as pgconf
from components.settings import Settings
from harness.needs import require
from harness.net import free_port

INSTALL_HINT = (
    f"install PostgreSQL {pgconf.MAJOR}'s server, the major the cluster runs ({pgconf.IMAGE}): "
    f"Debian: apt-get install postgresql-{pgconf.MAJOR}; Ubuntu 24.04 ships 16 only, so add the PostgreSQL "
    f"project's apt repository first (/usr/share/postgresql-common/pgdg/apt.postgresql.org.sh)"
)


def postgres_bin_dir() -> str | None:
    """The server binaries of the cluster's major: Debian keeps them off PATH, in
    /usr/lib/postgresql/<major>/bin. Another major would test settings the cluster never runs."""
    directory = f"/usr/lib/postgresql/{pgconf.MAJOR}/bin"
    if os.path.exists(os.path.join(directory, "postgres")):
        return directory
    found = shutil.which("pg_ctl")
    if found is None:
        return None
    version = subprocess.run([found, "--version"], capture_output=True, text=True).stdout
    return os.path.dirname(os.path.realpath(found)) if f" {pgconf.MAJOR}." in version else None


@dataclass
class PostgresServer:
    settings: Settings
    superuser_password: str = "superuser-secret-for-tests"
    cdc_password: str = "cdc-secret-for-tests"
    port: int = field(default_factory=free_port)
    bin_dir: str = field(default_factory=lambda: postgres_bin_dir() or "")

    def __post_init__(self):
        if not self.bin_dir:
            raise RuntimeError(f"PostgreSQL server not found; {INSTALL_HINT}")
        self.root = tempfile.mkdtemp(prefix="di-postgres-")
        self.data_dir = os.path.join(self.root, "data")
        self.config_dir = os.path.join(self.root, "etc")
        self.socket_dir = os.path.join(self.root, "run")
        self.log_file = os.path.join(self.root, "postgres.log")
        self.secrets_dir = os.path.join(self.root, "secrets")
        # The server refuses to run as root; CI runs as root, so it runs as Debian's postgres user.
        self.run_as = "postgres" if os.geteuid() == 0 else None

    # -- process control -------------------------------------------------------------------
    def _command(self, *argv: str) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *argv] if self.run_as else list(argv)

    def _own(self, *paths: str) -> None:
        if self.run_as:
            user = pwd.getpwnam(self.run_as)
            for path in paths:
                os.chown(path, user.pw_uid, user.pw_gid)

    def start(self) -> PostgresServer:
        for directory in (self.config_dir, self.socket_dir, self.secrets_dir):
            os.makedirs(directory, mode=0o700)
        self._own(self.root, self.config_dir, self.socket_dir, self.secrets_dir)
        os.chmod(self.root, 0o755)
        pwfile = os.path.join(self.secrets_dir, "superuser-password")
        self._write(pwfile, self.superuser_password, 0o400)
        self._write(os.path.join(self.secrets_dir, "cdc-password"), self.cdc_password, 0o400)
        self._run(
            os.path.join(self.bin_dir, "initdb"), "--pgdata", self.data_dir, "--username", pgconf.SUPERUSER,
            "--pwfile", pwfile, "--auth-local=peer", "--auth-host=scram-sha-256", "--encoding=UTF8",
            "--locale=C.UTF-8",
        )
        self._write(os.path.join(self.config_dir, "pg_hba.conf"), self._hba(), 0o600)
        conf = pgconf.render_postgresql_conf(
            self.settings.config,
            {
                "port": str(self.port),
                "listen_addresses": "'127.0.0.1'",
                "hba_file": f"'{self.config_dir}/pg_hba.conf'",
                "unix_socket_directories": f"'{self.socket_dir}'",
            },
        )
        self._write(os.path.join(self.config_dir, "postgresql.conf"), conf, 0o600)
        self._write(os.path.join(self.config_dir, "init.sql"), pgconf.init_sql(), 0o644)
        self._write(os.path.join(self.config_dir, "10-init.sh"),
                    pgconf.render_init_script(os.path.join(self.config_dir, "init.sql")), 0o755)
        self.start_server()
        return self

    def start_server(self) -> None:
        self._run(
            os.path.join(self.bin_dir, "pg_ctl"), "start", "--pgdata", self.data_dir, "--wait", "--timeout=60",
            "--log", self.log_file, "-o", f"-c config_file={self.config_dir}/postgresql.conf",
        )

    def stop_server(self, mode: str = "fast") -> None:
        self._run(os.path.join(self.bin_dir, "pg_ctl"), "stop", "--pgdata", self.data_dir, "--wait", f"--mode={mode}",
                  check=False)

    def restart(self) -> None:
        self.stop_server()
        self.start_server()

    def stop(self) -> None:
        try:
            self.stop_server("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- the tier's own init ------------------------------------------------------------------
    def run_init(self) -> subprocess.CompletedProcess:
        """Runs the initdb hook exactly as the image would: as the superuser on the socket."""
        env = {
            "PATH": f"{self.bin_dir}:/usr/bin:/bin",
            "CDC_PASSWORD_FILE": os.path.join(self.secrets_dir, "cdc-password"),
            "POSTGRES_USER": pgconf.SUPERUSER,
            "PGHOST": self.socket_dir,
            "PGPORT": str(self.port),
        }
        return subprocess.run(self._command("env", *[f"{k}={v}" for k, v in env.items()],
                                            os.path.join(self.config_dir, "10-init.sh")),
                              capture_output=True, text=True, check=True)

    def run_capture(self, settings: Settings | None = None) -> dict:
        """The capture step, as `pulumi up` runs it (connectors/capture_step.py), for `settings`."""
        from connectors.capture_step import apply_capture

        settings = settings or self.settings
        return apply_capture(self.dsn(), pgconf.capture_sql(settings), settings.names.replication_slot)

    @classmethod
    @contextmanager
    def initialized(cls, settings: Settings) -> Iterator[PostgresServer]:
        """A server as after the stack's first `pulumi up`: initdb's init SQL, then the capture step."""
        require(postgres_bin_dir() is not None, "PostgreSQL server", INSTALL_HINT)
        with cls(settings) as pg:
            pg.run_init()
            pg.run_capture()
            yield pg

    # -- clients ------------------------------------------------------------------------------
    def dsn(self, user: str = pgconf.SUPERUSER, password: str | None = None, database: str = pgconf.DATABASE) -> str:
        secret = password if password is not None else (
            self.superuser_password if user == pgconf.SUPERUSER else self.cdc_password
        )
        return f"host=127.0.0.1 port={self.port} dbname={database} user={user} password={secret}"

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while subprocess.run([os.path.join(self.bin_dir, "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"PostgreSQL on port {self.port} not ready; log: {self.log_tail()}")
            time.sleep(0.2)

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_file) as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- helpers -------------------------------------------------------------------------------
    def _hba(self) -> str:
        rules = pgconf.render_pg_hba()
        if self.run_as is None and pwd.getpwuid(os.geteuid()).pw_name != pgconf.SUPERUSER:
            # Peer authentication maps the OS user to the database user; a developer's login is
            # not "postgres". The socket sits in a private 0700 directory, so trust is as tight.
            rules = rules.replace(" peer\n", " trust\n")
        return rules

    def _write(self, path: str, text: str, mode: int) -> None:
        with open(path, "w") as handle:
            handle.write(text)
        os.chmod(path, mode)
        self._own(path)

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(self._command(*argv), capture_output=True, text=True)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:2])} failed ({result.returncode}): {result.stderr}\n{self.log_tail()}")
        return result
