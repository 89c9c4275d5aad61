"""Real PostgreSQL and Redis servers for tests, started on loopback in a temporary directory.

Debian's packages (scripts/services-install.sh) give the programs; nothing here uses their
system services. A PostgreSQL cluster is made with initdb in a private directory and runs as
the `postgres` user when the tests run as root (PostgreSQL refuses to run as root); a Redis
server runs with its data directory beside it. Each can be stopped and started again on the
same port and data, which is how the failure tests take them away mid-load.

When the programs are missing a test that asks for one is skipped, unless
TOLLGATE_SERVICES_REQUIRED=1 (set by scripts/with-test-tools.sh), then it fails.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from tests.support.ports import free_port

START_TIMEOUT = 30.0


class ServiceMissing(RuntimeError):
    """The program a service needs is not installed."""


def pg_bin() -> Path:
    configured = os.environ.get("TOLLGATE_PG_BIN")
    if configured:
        return Path(configured)
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    for path in found:
        if (path / "initdb").exists():
            return path
    raise ServiceMissing("PostgreSQL (Debian's postgresql package) is not installed: scripts/services-install.sh")


def redis_server_program() -> str:
    program = os.environ.get("TOLLGATE_REDIS_SERVER") or shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(program).exists():
        raise ServiceMissing("redis-server (Debian's redis-server package) is not installed: scripts/services-install.sh")
    return program


def _wait_port(port: int, proc: subprocess.Popen | None, what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}\n{log.read_text()[-3000:] if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {START_TIMEOUT}s")


def _run(args: list[str], timeout: float) -> str:
    """Run a program; its output, or an error that carries what it printed."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"{args[0] if args[0] != 'runuser' else args[3]} exited with {done.returncode}:\n"
                           f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


class PostgresServer:
    """One throw-away PostgreSQL cluster on 127.0.0.1; `database()` makes a fresh database in it.

    Its directory is a new one directly under the system's temporary directory, not pytest's: run as
    root, the server runs as `postgres`, which cannot enter root's private pytest directories.
    """

    def __init__(self) -> None:
        self.bin = pg_bin()
        self.root = Path(tempfile.mkdtemp(prefix="tollgate-pg-"))
        self.data = self.root / "pgdata"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self.user = "tollgate"
        self.password = uuid.uuid4().hex
        # PostgreSQL will not run as root: as root, run it as the `postgres` user Debian's package creates.
        self._as: list[str] = []
        if os.geteuid() == 0:
            pwd.getpwnam("postgres")
            self._as = ["runuser", "-u", "postgres", "--"]

    def _owned(self, path: Path) -> None:
        if self._as:
            shutil.chown(path, "postgres", "postgres")

    def init(self) -> PostgresServer:
        self._owned(self.root)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        self._owned(pwfile)
        _run([*self._as, str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user, "--pwfile", str(pwfile),
              "-A", "scram-sha-256", "-E", "UTF8", "--no-sync"], 120)
        pwfile.unlink()
        return self

    def start(self) -> PostgresServer:
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root}"
                   " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        _run([*self._as, str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
              "-w", "-t", str(int(START_TIMEOUT)), "start"], START_TIMEOUT + 10)
        _wait_port(self.port, None, "postgres", self.log)
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`immediate` is a crash: no shutdown checkpoint); it can start again."""
        subprocess.run([*self._as, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
                       capture_output=True, timeout=60)

    def remove(self) -> None:
        """Stop the server for good and delete its files."""
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """A new empty database; its URL."""
        name = "t_" + uuid.uuid4().hex[:12]
        self.sql(f"CREATE DATABASE {name}")
        return self.url(name)

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement with psql; what it printed (unaligned, tuples only)."""
        return _run([str(self.bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d",
                     self.url(database), "-c", statement], 60).strip()


class RedisServer:
    """One throw-away redis-server on 127.0.0.1 with its data in `root` (append-only file on by choice)."""

    def __init__(self, root: Path, appendonly: bool = False) -> None:
        self.program = redis_server_program()
        self.root = root
        self.port = free_port()
        self.appendonly = appendonly
        self.log = root / "redis.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.root.mkdir(parents=True, exist_ok=True)
        args = [self.program, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.root),
                "--save", "", "--appendonly", "yes" if self.appendonly else "no", "--protected-mode", "yes",
                "--logfile", str(self.log), "--daemonize", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        _wait_port(self.port, self.proc, "redis-server", self.log)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
