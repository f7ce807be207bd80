"""Paging long histories (OddsStore.odds_history_page, line_movement_page; queries/history.sql):
following the cursor page by page gives exactly the rows of the unpaged read, in its order, for
every page size; bad page arguments are refused.

The history: one event at three bookmakers, a snapshot every 15 minutes from 90 minutes before
a UTC midnight to 75 minutes after it (the state of each snapshot after midnight is read from
the new day's log). Over/under at two lines whose prices move now and then, line 3.5 gone for
a while at one bookmaker, and one bookmaker listing the same market id without a line too (it
comes first in the order)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import Server, World, market, snapshot

from bench import flat
from oddsstore import HistoryCursor, InvalidInputError, OddsStore

TOTALS = "3752"
SIZES = [1, 2, 3, 7, 50, 10_000]


@pytest.fixture
async def history(store: OddsStore, world: World) -> datetime:
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = midnight - timedelta(minutes=90)
    event = world.events[0]
    snapshots = []
    for step in range(12):
        at = start + timedelta(minutes=15 * step)
        for number, bookmaker in enumerate(world.bookmakers):
            markets = [market(TOTALS, 2.5, (1.80 + (step // 3) / 100 + number / 10, 2.0))]
            if not (number == 1 and 4 <= step < 7):
                markets.append(market(TOTALS, 3.5, (2.5 + (step // 2) / 100, 1.5)))
            if number == 2:
                markets.append(market(TOTALS, None, (1.9, 1.9)))
            snapshots.append(snapshot(event, bookmaker, at, markets))
    await store.write_snapshots(snapshots)
    return start


@pytest.mark.parametrize("size", SIZES)
async def test_odds_history_pages_add_up_to_the_whole_history(
    store: OddsStore, world: World, history: datetime, size: int
) -> None:
    event = world.events[0].id
    assert len(await store.odds_history(event, TOTALS)) > 50  # longer than most page sizes
    for bookmaker, since in [(None, None), (world.bookmakers[2].id, None), (None, history + timedelta(minutes=80))]:
        whole = await store.odds_history(event, TOTALS, bookmaker_id=bookmaker, since=since)
        paged, after, pages = [], None, 0
        while True:
            page = await store.odds_history_page(event, TOTALS, bookmaker, since, limit=size, after=after)
            assert len(page.rows) <= size
            paged.extend(page.rows)
            pages += 1
            if (after := page.next_cursor) is None:
                break
        assert paged == whole
        assert pages == max(1, -(-len(whole) // size))


@pytest.mark.parametrize("size", SIZES)
async def test_line_movement_pages_add_up_to_every_change(
    store: OddsStore, world: World, history: datetime, size: int
) -> None:
    event = world.events[0].id
    for line in (None, 3.5):
        whole = await store.line_movement(event, TOTALS, line)
        paged, after = [], None
        while True:
            page = await store.line_movement_page(event, TOTALS, line, limit=size, after=after)
            paged.extend(page.changes)
            if (after := page.next_cursor) is None:
                break
        assert paged == whole
        assert any(change.outcomes is None for change in whole)  # line 3.5 disappeared once


async def test_a_cursor_names_the_last_row_of_its_page(store: OddsStore, world: World, history: datetime) -> None:
    page = await store.odds_history_page(world.events[0].id, TOTALS, world.bookmakers[2].id, limit=3)
    last = page.rows[-1]
    assert page.next_cursor == HistoryCursor(
        captured_at=last.captured_at, bookmaker_id=last.bookmaker_id, line=last.line
    )
    assert [row.line for row in page.rows] == [None, 2.5, 3.5]  # "no line" first at a snapshot


@pytest.mark.parametrize("limit", [0, -1, 10_001, True])
async def test_bad_page_sizes_are_refused(store: OddsStore, world: World, limit: int) -> None:
    with pytest.raises(InvalidInputError, match="limit"):
        await store.odds_history_page(world.events[0].id, TOTALS, limit=limit)
    with pytest.raises(InvalidInputError, match="limit"):
        await store.line_movement_page(world.events[0].id, TOTALS, limit=limit)


async def test_flatness_benchmark_runs_end_to_end(pg_server: Server) -> None:
    """bench/flat.py at three events and 4 cycles a day: every read is timed at 1 and 7 days, with
    rows (no timing assertion: ``python -m bench.flat`` measures)."""
    results = await flat.measure(pg_server.dsn("postgres"), events=3, rounds=1, cycles_per_day=4)

    for read in flat.READS:
        assert results["7d"][read]["p50_ms"] > 0 and results["ratio_7d_over_1d"][read] > 0
    assert results["7d"]["odds_history"]["rows_per_call"] > 0
    assert results["7d"]["line_movement"]["rows_per_call"] > results["1d"]["line_movement"]["rows_per_call"]
    assert flat.table({"servers": {"here": results}}).startswith("| read | here: 1 d ms")
