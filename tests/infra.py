"""Infrastructure the production tests start for themselves, from Debian's packages: PostgreSQL 15
clusters (a primary, a streaming hot standby made with ``pg_basebackup``, a logical replication
subscriber) and PgBouncer in transaction pooling mode.

As root, every server runs as the ``postgres`` system user (``runuser``), as conftest.py's
``_start_pg15`` does. Each lives in a directory of its own under the test's work directory and is
stopped by the fixture that started it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PG15_BIN = Path("/usr/lib/postgresql/15/bin")
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def missing_pg15() -> str | None:
    """Why the PostgreSQL 15 tests cannot run here, or ``None``."""
    if not (PG15_BIN / "postgres").exists():
        return "PostgreSQL 15 is not installed: apt-get install -y postgresql-15"
    return None


def missing_pgbouncer() -> str | None:
    """Why the PgBouncer tests cannot run here, or ``None``."""
    if not Path(PGBOUNCER).exists():
        return "PgBouncer is not installed: apt-get install -y pgbouncer"
    return None


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _run(*command: str) -> None:
    result = subprocess.run([*_as_postgres(), *command], capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr or result.stdout}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def own_directory(path: Path) -> Path:
    """Create ``path`` for the servers' user."""
    path.mkdir(parents=True)
    if os.geteuid() == 0:
        os.chown(path, pwd.getpwnam("postgres").pw_uid, -1)
    return path


@dataclass(frozen=True)
class Cluster:
    """A running PostgreSQL 15 cluster: data directory, socket directory and port."""

    data: Path
    sockets: Path
    port: int

    def dsn(self, database: str, user: str = "postgres") -> str:
        return f"postgresql://{user}@/{database}?host={self.sockets}&port={self.port}"

    def libpq(self, database: str) -> str:
        """A libpq connection string (for pg_basebackup and CREATE SUBSCRIPTION)."""
        return f"host={self.sockets} port={self.port} dbname={database} user=postgres"


def _start(data: Path, sockets: Path, settings: dict[str, str]) -> Cluster:
    port = free_port()
    options = f"-k {sockets} -h '' -p {port} " + " ".join(f"-c {name}={value}" for name, value in settings.items())
    _run(str(PG15_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(data.parent / "log"), "-w", "start")
    return Cluster(data, sockets, port)


def _stop(cluster: Cluster) -> None:
    subprocess.run(
        [*_as_postgres(), str(PG15_BIN / "pg_ctl"), "-D", str(cluster.data), "-m", "immediate", "-w", "stop"],
        capture_output=True,
    )


# What a primary needs for both kinds of replication; the rest are the test servers' defaults.
PRIMARY_SETTINGS = {"wal_level": "logical", "max_wal_senders": "10", "max_replication_slots": "10", "fsync": "off"}


@contextmanager
def cluster(directory: Path, settings: dict[str, str] | None = None) -> Iterator[Cluster]:
    """A new cluster in ``directory`` (initdb, trust authentication, replication allowed locally)."""
    own_directory(directory)
    data = directory / "data"
    _run(str(PG15_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    running = _start(data, directory, settings or PRIMARY_SETTINGS)
    try:
        yield running
    finally:
        _stop(running)


@contextmanager
def hot_standby(primary: Cluster, directory: Path) -> Iterator[Cluster]:
    """A streaming replica of ``primary``: ``pg_basebackup -R`` (it writes the standby settings),
    started read-only as a hot standby."""
    own_directory(directory)
    data = directory / "data"
    _run(
        str(PG15_BIN / "pg_basebackup"),
        "-D",
        str(data),
        "-d",
        primary.libpq("postgres"),
        "-R",
        "-X",
        "stream",
        "-c",
        "fast",
    )
    running = _start(data, directory, {"hot_standby": "on", "fsync": "off"})
    try:
        yield running
    finally:
        _stop(running)


@contextmanager
def pgbouncer(server: Cluster, directory: Path, *, pool_size: int = 2) -> Iterator[str]:
    """PgBouncer in transaction pooling mode in front of ``server``; yields the address
    ``host:port`` it listens on. ``pool_size`` server connections per database and user, fewer
    than the clients the tests open, so transactions of different clients share them."""
    own_directory(directory)
    port = free_port()
    (directory / "users.txt").write_text('"postgres" ""\n')
    config = directory / "pgbouncer.ini"
    config.write_text(
        "\n".join(
            [
                "[databases]",
                f"* = host={server.sockets} port={server.port}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {directory / 'users.txt'}",
                "pool_mode = transaction",
                f"default_pool_size = {pool_size}",
                "max_client_conn = 200",
                f"logfile = {directory / 'pgbouncer.log'}",
                "",
            ]
        )
    )
    for path in directory.iterdir():
        if os.geteuid() == 0:
            os.chown(path, pwd.getpwnam("postgres").pw_uid, -1)
    process = subprocess.Popen(  # its log goes to pgbouncer.log
        [*_as_postgres(), PGBOUNCER, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (directory / "pgbouncer.log").read_text() if (directory / "pgbouncer.log").exists() else ""
                    raise RuntimeError(f"pgbouncer did not start: {log}") from None
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
