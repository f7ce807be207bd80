"""oddsstore.testing, the pytest plugin, used as a scraper's project uses it: its own test files
in a directory of their own, run by pytest in another process, the plugin found through the
pytest11 entry point (no conftest, no import)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import Server

SCRAPER_TESTS = '''
from datetime import UTC, datetime, timedelta

import pytest

from oddsstore import OddsStore


def scrape_once(store):
    """What a scraper without asyncio does after a cycle."""
    sport = store.upsert_sport("Football", "football")
    league = store.upsert_tournament(sport.id, "Premier League", "England")
    event = store.upsert_event(league.id, "bp-1", "Arsenal", "Chelsea", datetime.now(UTC) + timedelta(days=1))
    book = store.upsert_bookmaker("BetPawa", "betpawa")
    outcomes = [{"name": n, "odds": o, "is_active": True} for n, o in (("1", 2.1), ("X", 3.3), ("2", 3.6))]
    market = {"betpawa_market_id": "3743", "betpawa_market_name": "1X2 - FT", "line": None, "outcomes": outcomes}
    snapshot = {"event_id": event.id, "bookmaker_id": book.id, "captured_at": datetime.now(UTC), "markets": [market]}
    store.write_snapshots([snapshot])
    return event


@pytest.mark.parametrize("attempt", [1, 2])
def test_each_test_starts_from_an_empty_migrated_store(oddsstore_sync_store, attempt):
    assert oddsstore_sync_store.bookmakers() == []
    event = scrape_once(oddsstore_sync_store)
    assert event.id == 1  # a database of its own: ids start afresh
    assert [m.outcomes[0].odds for m in oddsstore_sync_store.latest_odds(event.id)] == [2.1]


@pytest.mark.asyncio
async def test_the_async_store(oddsstore_store, oddsstore_dsn):
    assert isinstance(oddsstore_store, OddsStore)
    assert await oddsstore_store.migrate() == []  # already migrated
    assert await oddsstore_store.bookmakers() == []
    assert oddsstore_dsn.startswith("postgresql://")
'''


def test_a_scrapers_tests_get_a_migrated_empty_store_each(pg_server: Server, tmp_path: Path) -> None:
    (tmp_path / "test_scraper.py").write_text(SCRAPER_TESTS)
    env = {**os.environ, "ODDSSTORE_TEST_DSN": pg_server.dsn("postgres")}

    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=strict",
            "test_scraper.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed" in run.stdout
