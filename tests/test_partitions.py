"""Partition lifecycle: made ahead and on demand, refused outside the window, dropped by day."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta

import asyncpg
import pytest
from conftest import World, on_citus, snapshot

from oddsstore import OddsStore, OutsidePartitionWindowError

TABLES = ("market_changes", "odds_snapshots", "scrape_errors")

pytestmark = on_citus


def today() -> date:
    return datetime.now(UTC).date()


def noon(day: date) -> datetime:
    return datetime.combine(day, time(12), UTC)


async def days_by_table(store: OddsStore) -> dict[str, list[date]]:
    found: dict[str, list[date]] = {table: [] for table in TABLES}
    for partition in await store.partitions():
        found[partition.parent].append(partition.day)
    return found


async def test_ensure_creates_every_table_ahead_and_is_idempotent(store: OddsStore) -> None:
    created = await store.ensure_partitions(days_ahead=2)
    days = [today() + timedelta(days=n) for n in range(3)]
    assert sorted(created) == sorted(f"{t}_p{d:%Y%m%d}" for t in TABLES for d in days)
    assert await days_by_table(store) == {table: days for table in TABLES}
    assert await store.ensure_partitions(days_ahead=2) == []


async def test_partition_bounds_are_utc_days_whatever_the_session_time_zone(store: OddsStore) -> None:
    await store.ensure_partitions(days_ahead=0)
    async with store.pool.acquire() as connection:
        await connection.execute("set time zone 'Pacific/Kiritimati'")  # UTC+14
        bounds = await connection.fetchval(
            "select pg_get_expr(relpartbound, oid) from pg_class where relname = $1",
            f"market_changes_p{today():%Y%m%d}",
        )
        days = await connection.fetch("select day from oddsstore_partitions()")
    start = datetime.combine(today(), time(), UTC)
    assert bounds == (
        f"FOR VALUES FROM ('{(start + timedelta(hours=14)):%Y-%m-%d %H:%M:%S}+14') "
        f"TO ('{(start + timedelta(days=1, hours=14)):%Y-%m-%d %H:%M:%S}+14')"
    )
    assert {row["day"] for row in days} == {today()}


async def test_a_write_creates_the_days_it_needs(store: OddsStore, world: World) -> None:
    event, bookmaker = world.events[0], world.bookmakers[0]
    past = today() - timedelta(days=10)
    await store.write_snapshots([snapshot(event, bookmaker, noon(past))])
    assert await days_by_table(store) == {table: [past] for table in TABLES}
    (history,) = await store.odds_history(event.id, "3743")
    assert history.captured_at == noon(past)


@pytest.mark.python_checks
@pytest.mark.parametrize(
    "when",
    [
        lambda: datetime.combine(today() - timedelta(days=31), time(23, 59), UTC),
        lambda: datetime.combine(today() + timedelta(days=4), time(0, 0), UTC),
        lambda: datetime(2000, 1, 1, tzinfo=UTC),
        lambda: datetime(9999, 12, 31, tzinfo=UTC),
    ],
    ids=["before-retention", "after-days-ahead", "far-past", "far-future"],
)
async def test_writes_outside_the_window_are_refused_and_create_nothing(store: OddsStore, world: World, when) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(OutsidePartitionWindowError, match=r"snapshots\[0\] .*outside the partition window"):
        await store.write_snapshots([snapshot(world.events[0], world.bookmakers[0], when())])
    assert await store.partitions() == []


async def test_window_edges_are_accepted(store: OddsStore, world: World) -> None:
    first = datetime.combine(today() - timedelta(days=30), time(), UTC)
    last = datetime.combine(today() + timedelta(days=4), time(), UTC) - timedelta(microseconds=1)
    event, bookmaker = world.events[0], world.bookmakers[0]
    result = await store.write_snapshots([snapshot(event, bookmaker, first), snapshot(event, bookmaker, last)])
    assert result.snapshots == 2


async def test_retention_drops_exactly_the_expired_days_of_every_table(store: OddsStore, world: World) -> None:
    event, bookmaker = world.events[0], world.bookmakers[0]
    old, recent = today() - timedelta(days=12), today() - timedelta(days=6)
    run = await store.start_scrape_run()
    await store.write_snapshots([snapshot(event, bookmaker, noon(old))])
    await store.write_snapshots(
        [snapshot(world.events[1], bookmaker, noon(old)), snapshot(event, bookmaker, noon(recent))]
    )
    await store.record_scrape_errors(
        [
            {"scrape_run_id": run.id, "error_type": "timeout", "error_message": "old", "occurred_at": noon(old)},
            {"scrape_run_id": run.id, "error_type": "timeout", "error_message": "new", "occurred_at": noon(recent)},
        ]
    )

    dropped = await store.drop_expired_partitions(retention_days=7)

    assert sorted(dropped) == sorted(f"{t}_p{old:%Y%m%d}" for t in TABLES)
    remaining = await days_by_table(store)
    assert remaining["market_changes"] == remaining["odds_snapshots"] == [recent]
    assert recent in remaining["scrape_errors"] and old not in remaining["scrape_errors"]
    assert [h.captured_at for h in await store.odds_history(event.id, "3743")] == [noon(recent)]
    # The second event's only snapshot was in the dropped day: it has no latest odds any more.
    assert await store.latest_odds(world.events[1].id) == []
    assert [e.error_message for e in await store.scrape_errors(run.id)] == ["new"]
    assert await store.drop_expired_partitions(retention_days=7) == []


async def test_concurrent_creators_of_the_same_days_all_succeed(store: OddsStore) -> None:
    creators = [await OddsStore.connect(store._dsn, min_size=1, max_size=1) for _ in range(6)]
    try:
        results = await asyncio.gather(*(creator.ensure_partitions(days_ahead=3) for creator in creators))
    finally:
        await asyncio.gather(*(creator.close() for creator in creators))
    created = [name for result in results for name in result]
    assert len(created) == len(set(created)) == 4 * len(TABLES)


async def test_creating_partitions_does_not_wait_for_readers(store: OddsStore, world: World) -> None:
    await store.write_snapshots([snapshot(world.events[0], world.bookmakers[0], datetime.now(UTC))])
    reader = await asyncpg.connect(store._dsn)
    try:
        async with reader.transaction():
            await reader.fetch("select count(*) from market_changes")  # holds ACCESS SHARE to commit
            async with store.pool.acquire() as connection:
                # An ACCESS EXCLUSIVE lock on the parent (CREATE TABLE ... PARTITION OF) would
                # wait for the reader and time out here.
                await connection.execute("set lock_timeout = '2s'")
                created = await connection.fetchval(
                    "select count(*) from oddsstore_ensure_partitions($1, $2)",
                    today() + timedelta(days=1),
                    today() + timedelta(days=2),
                )
                await connection.execute("reset lock_timeout")
    finally:
        await reader.close()
    assert created == 2 * len(TABLES)


async def test_retention_does_not_wait_for_readers_of_reference_tables(store: OddsStore, world: World) -> None:
    """Dropping a day takes no lock on events, bookmakers or scrape_runs: a transaction that read
    them stays open while the day is dropped (with foreign keys on the partitions, DROP TABLE
    would wait for it, holding up everyone queued behind)."""
    run = await store.start_scrape_run()
    old = today() - timedelta(days=5)
    await store.write_snapshots([snapshot(world.events[0], world.bookmakers[0], noon(old))], scrape_run_id=run.id)
    await store.record_scrape_errors(
        [{"scrape_run_id": run.id, "error_type": "t", "error_message": "m", "occurred_at": noon(old)}]
    )
    reader = await asyncpg.connect(store._dsn)
    try:
        async with reader.transaction():
            await reader.fetch("select * from events, bookmakers, scrape_runs")
            dropped = await asyncio.wait_for(store.drop_expired_partitions(retention_days=2), timeout=10)
    finally:
        await reader.close()
    assert sorted(dropped) == sorted(f"{t}_p{old:%Y%m%d}" for t in TABLES)
