"""The SQL retention function ``oddsstore_drop_expired_partitions`` (for pg_cron on one server,
schema/0012_retention_locks.sql): on a single server it drops the same days as the Python path,
waits for write locks without a timeout, lets writers go on while it waits for a parent, and
respects the retention lease. On a Citus cluster it refuses (schema/0014, SQLSTATE OD002) and
changes nothing: retention there is ``oddsstore maintain`` (docs/scaling.md)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta

import asyncpg
import pytest
from conftest import World, market, snapshot

from oddsstore import OddsStore

TABLES = ("market_changes", "odds_snapshots", "scrape_errors")

# Only the cluster; the tests without this mark run on the single servers only (conftest).
only_citus = pytest.mark.parametrize(
    "oddsstore_server", [pytest.param("citus", marks=pytest.mark.citus)], indirect=True, scope="session"
)


def midnight(day_offset: int) -> datetime:
    return datetime.combine(datetime.now(UTC).date() + timedelta(days=day_offset), time(), UTC)


async def partition_names(store: OddsStore) -> list[str]:
    return sorted(p.name for p in await store.partitions())


async def test_the_sql_function_drops_the_same_days(store: OddsStore, world: World) -> None:
    """The days before today - 2 go, in every partitioned table, with the pair that had only them."""
    old = midnight(-3)
    await store.write_snapshots([snapshot(world.events[0], world.bookmakers[0], old + timedelta(hours=12))])
    await store.ensure_partitions(days_ahead=0)
    dropped = await store.pool.fetch("select * from oddsstore_drop_expired_partitions(2)")
    assert sorted(row[0] for row in dropped) == sorted(f"{t}_p{old:%Y%m%d}" for t in TABLES)
    assert await partition_names(store) == sorted(f"{t}_p{midnight(0):%Y%m%d}" for t in TABLES)
    assert await store.latest_odds(world.events[0].id) == []


async def test_the_sql_function_waits_for_a_write_lock_longer_than_five_seconds(store: OddsStore, world: World) -> None:
    """A writer holds the lock of a pair retention forgets for 6 s: the function waits for it
    (before 0012 its 5 s lock timeout failed the run)."""
    event, bookmaker = world.events[0], world.bookmakers[0]
    await store.write_snapshots([snapshot(event, bookmaker, midnight(-3) + timedelta(hours=12), [market("1")])])
    holder = await asyncpg.connect(store._dsn)
    try:
        async with holder.transaction():
            await holder.execute("select pg_advisory_xact_lock($1, $2)", event.id, bookmaker.id)
            dropping = asyncio.ensure_future(store.pool.fetch("select * from oddsstore_drop_expired_partitions(2)"))
            await asyncio.sleep(6)
            assert not dropping.done()
        dropped = await asyncio.wait_for(dropping, 30)
    finally:
        await holder.close()
    assert len(dropped) == 3
    assert await store.latest_odds(event.id) == []


async def test_the_sql_function_lets_writers_go_on_while_a_long_write_holds_a_parent(
    store: OddsStore, world: World
) -> None:
    """A long transaction holds market_changes (as a writer mid-merge does) for 3 s: the function
    waits for it in attempts of 200 ms, and a write of another pair arriving meanwhile is done
    within a second instead of queueing behind the function. Then the old day is dropped."""
    old, live = world.events
    bookmaker = world.bookmakers[0]
    await store.write_snapshots([snapshot(old, bookmaker, midnight(-3) + timedelta(hours=12), [market("1")])])
    await store.write_snapshots([snapshot(live, bookmaker, datetime.now(UTC) - timedelta(minutes=9), [market("1")])])
    await store.ensure_partitions(days_ahead=0)
    holder = await asyncpg.connect(store._dsn)
    try:
        async with holder.transaction():
            await holder.execute("lock table only market_changes in row exclusive mode")
            dropping = asyncio.ensure_future(store.pool.fetch("select * from oddsstore_drop_expired_partitions(2)"))
            await asyncio.sleep(0.5)
            for minutes in (8, 7, 6):
                began = asyncio.get_running_loop().time()
                at = datetime.now(UTC) - timedelta(minutes=minutes)
                await store.write_snapshots([snapshot(live, bookmaker, at, [market("1", odds=(minutes, 2.0, 3.0))])])
                assert asyncio.get_running_loop().time() - began < 1
            await asyncio.sleep(1.5)
            assert not dropping.done()
        dropped = await asyncio.wait_for(dropping, 30)
    finally:
        await holder.close()
    assert sorted(row[0] for row in dropped) == sorted(
        f"{table}_p{midnight(-3):%Y%m%d}" for table in ("market_changes", "odds_snapshots", "scrape_errors")
    )
    assert len(await store.odds_history(live.id, "1")) == 4


async def test_the_sql_function_refuses_to_run_beside_a_python_retention_run(store: OddsStore) -> None:
    """While a retention run holds the lease, the function raises instead of detaching the same
    partitions; once the lease is given back it runs."""
    async with store.pool.acquire() as connection:
        assert await store.queries.lock_retention(connection, holder="another run", ttl=timedelta(minutes=1))
        with pytest.raises(asyncpg.LockNotAvailableError, match="holds the lease"):
            await connection.fetch("select * from oddsstore_drop_expired_partitions(2)")
        await store.queries.unlock_retention(connection, holder="another run")
        assert await connection.fetch("select * from oddsstore_drop_expired_partitions(2)") == []
        assert await store.queries.lock_retention(connection, holder="the next run", ttl=timedelta(minutes=1))
        await store.queries.unlock_retention(connection, holder="the next run")


@only_citus
async def test_on_citus_the_sql_function_refuses_and_changes_nothing(store: OddsStore, world: World) -> None:
    """On the cluster the function raises SQLSTATE OD002 naming `oddsstore maintain`, before it
    takes any lock: every partition, snapshot and market is still there, the retention lease is
    free, and the Python retention path then drops the expired day."""
    event, bookmaker = world.events[0], world.bookmakers[0]
    old, recent = midnight(-3) + timedelta(hours=12), datetime.now(UTC) - timedelta(minutes=5)
    await store.write_snapshots([snapshot(event, bookmaker, old, [market("1"), market("2")])])
    await store.write_snapshots([snapshot(event, bookmaker, recent, [market("1", odds=(2.0, 3.0, 4.0)), market("2")])])
    partitions_before = await partition_names(store)
    history_before = await store.odds_history(event.id, "1")
    with pytest.raises(asyncpg.PostgresError, match="not for a Citus cluster") as raised:
        await store.pool.fetch("select * from oddsstore_drop_expired_partitions(2)")
    assert raised.value.sqlstate == "OD002"
    assert "oddsstore maintain" in raised.value.hint
    assert await partition_names(store) == partitions_before
    assert await store.odds_history(event.id, "1") == history_before
    assert len(await store.odds_at(event.id, old)) == 2
    assert len(await store.latest_odds(event.id)) == 2
    dropped = await store.drop_expired_partitions(retention_days=2)
    assert sorted(dropped) == sorted(f"{t}_p{midnight(-3):%Y%m%d}" for t in TABLES)
