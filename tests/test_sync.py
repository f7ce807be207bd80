"""oddsstore.sync: the synchronous store scrapers without asyncio use (requests, Scrapy). Plain
test functions, no event loop of their own, as such a scraper's tests would be."""

from __future__ import annotations

import asyncio
import inspect
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from conftest import market

from oddsstore import Event, InvalidInputError, MarketOdds, OddsStore, OddsStoreError, UnknownReferenceError
from oddsstore.sync import SyncOddsStore


def reference(store: SyncOddsStore) -> tuple[Event, list[int]]:
    sport = store.upsert_sport("Football", "football")
    league = store.upsert_tournament(sport.id, "Premier League", "England")
    event = store.upsert_event(league.id, "bp-1", "Arsenal", "Chelsea", datetime.now(UTC) + timedelta(days=1))
    return event, [store.upsert_bookmaker(name, name.lower()).id for name in ("BetPawa", "SportyBet")]


def test_a_scrape_cycle_without_asyncio(dsn: str) -> None:
    with SyncOddsStore.connect(dsn, retention_days=30) as store:
        event, (betpawa, sporty) = reference(store)
        run = store.start_scrape_run("scheduled")
        now = datetime.now(UTC)
        result = store.write_snapshots(
            [
                {"event_id": event.id, "bookmaker_id": b, "captured_at": now, "markets": [market()]}
                for b in (betpawa, sporty)
            ],
            scrape_run_id=run.id,
        )
        store.finish_scrape_run(run.id, "completed", events_scraped=1)

        latest = store.latest_odds(event.id)

    assert (result.snapshots, result.markets) == (2, 2)
    assert [type(m) for m in latest] == [MarketOdds, MarketOdds]
    assert {m.bookmaker_id for m in latest} == {betpawa, sporty} and latest[0].outcomes[0].odds == 1.85
    assert [r.status.value for r in _recent(dsn)] == ["completed"]
    rows = [m.model_dump() for m in latest]  # what pandas.DataFrame(rows) or polars.DataFrame(rows) takes
    assert list(rows[0]) == list(MarketOdds.model_fields) and rows[0]["outcomes"][0]["odds"] == 1.85


def _recent(dsn: str) -> list:  # type: ignore[type-arg]
    with SyncOddsStore.connect(dsn) as store:
        return store.recent_scrape_runs()  # type: ignore[no-any-return]


def test_errors_are_the_async_stores_and_nothing_is_lost(dsn: str) -> None:
    with SyncOddsStore.connect(dsn) as store:
        event, (betpawa, _) = reference(store)
        good = {"event_id": event.id, "bookmaker_id": betpawa, "captured_at": datetime.now(UTC), "markets": [market()]}
        store.write_snapshots([good])

        with pytest.raises(InvalidInputError, match="naive"):
            store.write_snapshots([{**good, "captured_at": datetime.now()}])
        with pytest.raises(UnknownReferenceError):
            store.write_snapshots([{**good, "event_id": 424242, "captured_at": datetime.now(UTC)}])

        assert len(store.snapshots(event.id)) == 1


def test_every_method_of_the_store_is_there_and_documented(dsn: str) -> None:
    coroutines = inspect.getmembers(OddsStore, inspect.iscoroutinefunction)
    methods = [name for name, _ in coroutines if not name.startswith("_") and name not in vars(SyncOddsStore)]
    assert len(methods) > 30
    with SyncOddsStore.connect(dsn) as store:
        for name in methods:
            assert name in dir(store)
            assert getattr(store, name).__doc__ == getattr(OddsStore, name).__doc__
        assert store.retention_days == 30 and store.pool is not None


def test_calls_from_several_threads_share_one_store(dsn: str) -> None:
    with SyncOddsStore.connect(dsn, min_size=1, max_size=4) as store:
        event, bookmakers = reference(store)
        start = datetime.now(UTC) - timedelta(hours=1)

        def write(n: int) -> int:
            at = start + timedelta(minutes=n)
            snapshot = {
                "event_id": event.id,
                "bookmaker_id": bookmakers[n % 2],
                "captured_at": at,
                "markets": [market()],
            }
            return store.write_snapshots([snapshot]).snapshots  # type: ignore[no-any-return]

        with ThreadPoolExecutor(8) as pool:
            assert sum(pool.map(write, range(40))) == 40
        assert len(store.snapshots(event.id)) == 40


def test_it_works_where_an_event_loop_already_runs(dsn: str) -> None:
    async def inside_a_loop() -> int:
        with SyncOddsStore.connect(dsn) as store:
            return len(store.bookmakers())

    assert asyncio.run(inside_a_loop()) == 0


def test_a_closed_store_says_so_and_leaves_no_thread(dsn: str) -> None:
    before = threading.active_count()
    store = SyncOddsStore.connect(dsn)
    store.close()
    store.close()

    with pytest.raises(OddsStoreError, match="closed"):
        store.bookmakers()
    assert threading.active_count() == before


def test_a_failed_connect_raises_and_leaves_no_thread() -> None:
    before = threading.active_count()
    with pytest.raises((OddsStoreError, OSError)):
        SyncOddsStore.connect("postgresql://nobody@127.0.0.1:1/nowhere", connect_timeout=2)
    assert threading.active_count() == before
