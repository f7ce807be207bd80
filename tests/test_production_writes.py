"""Writes at production scale (schema/0010_production_writes.sql): writers of different pairs do
not wait for each other, a new process sends only what changed, backfills of many snapshots per
pair, daily checkpoints, and retention that loses nothing when a late batch runs beside it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from typing import Any

import asyncpg
import pytest
from conftest import World, market, on_citus, snapshot

from oddsstore import LockTableFullError, OddsStore, partitions, writes

pytestmark = on_citus


def prices(rows: list) -> dict[tuple[int, str, float | None], tuple[float, ...]]:
    return {(m.bookmaker_id, m.betpawa_market_id, m.line): tuple(o.odds for o in m.outcomes) for m in rows}


async def count(store: OddsStore, table: str, where: str = "true") -> int:
    return int(await store.pool.fetchval(f"select count(*) from {table} where {where}"))


def midnight(day_offset: int) -> datetime:
    return datetime.combine(datetime.now(UTC).date() + timedelta(days=day_offset), time(), UTC)


@pytest.fixture
def staged(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Market rows each merge stages (COPYs into oddsstore_stage_markets), in order."""
    counts: list[int] = []
    stage_rows = writes._stage_rows

    def counting(*args: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        snapshot_rows, market_rows = stage_rows(*args)
        counts.append(len(market_rows))
        return snapshot_rows, market_rows

    monkeypatch.setattr(writes, "_stage_rows", counting)
    return counts


# --- locks ---------------------------------------------------------------------------------------


async def test_a_writer_of_another_pair_does_not_wait(store: OddsStore, world: World) -> None:
    """One pair's write lock is held by an open transaction (another writer mid-merge): a write
    of another pair completes meanwhile, and a write of the held pair waits until it ends."""
    event = world.events[0]
    held, free = world.bookmakers[0], world.bookmakers[1]
    at = datetime.now(UTC) - timedelta(minutes=5)
    holder = await asyncpg.connect(store._dsn)
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("select pg_advisory_xact_lock($1, $2)", event.id, held.id)
        result = await asyncio.wait_for(store.write_snapshots([snapshot(event, free, at, [market("1")])]), 10)
        assert result.snapshots == 1
        waiting = asyncio.create_task(store.write_snapshots([snapshot(event, held, at, [market("1")])]))
        done, _ = await asyncio.wait({waiting}, timeout=1.0)
        assert not done  # the held pair's writer waits for the lock
        await transaction.rollback()
        assert (await asyncio.wait_for(waiting, 10)).snapshots == 1
    finally:
        await holder.close()
    assert {m.bookmaker_id for m in await store.latest_odds(event.id)} == {held.id, free.id}


async def test_two_writers_of_overlapping_pairs_in_opposite_orders_do_not_deadlock(
    store: OddsStore, world: World, dsn: str
) -> None:
    """Batches list the same pairs in opposite orders, several times over: the locks are taken
    sorted, in one statement, so neither waits for the other in a cycle."""
    pairs = [(event, bookmaker) for event in world.events for bookmaker in world.bookmakers]
    base = datetime.now(UTC) - timedelta(minutes=30)

    async def write(store: OddsStore, order: list[Any], offset: int) -> None:
        for round_number in range(5):
            at = base + timedelta(seconds=2 * round_number + offset)
            await store.write_snapshots(
                [
                    snapshot(event, bookmaker, at, [market("1", odds=(1.5 + round_number / 10, 2.5))])
                    for event, bookmaker in order
                ]
            )

    async with OddsStore.connect(dsn, min_size=1, max_size=1) as other:
        await asyncio.wait_for(asyncio.gather(write(store, pairs, 0), write(other, pairs[::-1], 1)), 60)
    assert await count(store, "odds_snapshots") == 2 * 5 * len(pairs)


# --- the database remembers ----------------------------------------------------------------------


async def test_a_new_process_sends_only_the_markets_that_changed(
    store: OddsStore, world: World, dsn: str, staged: list[int]
) -> None:
    """A store that never wrote the pair loads its fingerprints and stages one changed market,
    one gone and none of the 38 unchanged; what it wrote reads like the whole snapshot."""
    event, bookmaker = world.events[0], world.bookmakers[0]
    at = datetime.now(UTC) - timedelta(minutes=30)
    markets = [market(str(n)) for n in range(40)]
    await store.write_snapshots([snapshot(event, bookmaker, at, markets)])
    assert staged == [40]
    later = [*markets[:38], market("0", odds=(2.0, 3.0, 4.0))][1:]  # "0" changed, "38" and "39" gone
    later.append(markets[38])  # "38" is back (it never left): only "39" is gone
    async with OddsStore.connect(dsn, min_size=1, max_size=1) as fresh:
        await fresh.write_snapshots([snapshot(event, bookmaker, at + timedelta(minutes=10), later)])
    assert staged == [40, 2]  # "0" changed, "39" gone
    latest = prices(await store.latest_odds(event.id))
    assert len(latest) == 39 and latest[(bookmaker.id, "0", None)] == (2.0, 4.0, 3.0)
    assert await count(store, "market_changes") == 40 + 2


async def test_a_store_that_does_not_remember_dedupes_from_the_database(
    dsn: str, world: World, staged: list[int]
) -> None:
    event, bookmaker = world.events[0], world.bookmakers[0]
    at = datetime.now(UTC) - timedelta(minutes=30)
    markets = [market(str(n)) for n in range(10)]
    async with OddsStore.connect(dsn, min_size=1, max_size=1, remember_writes=False) as forgetful:
        for step in range(3):
            markets[step] = market(str(step), odds=(2.0, 3.0, 4.0))
            await forgetful.write_snapshots([snapshot(event, bookmaker, at + timedelta(minutes=10 * step), markets)])
    assert staged == [10, 1, 1]


async def test_a_fingerprint_from_another_version_is_not_trusted(
    store: OddsStore, world: World, dsn: str, staged: list[int]
) -> None:
    """Fingerprints are salted with FINGERPRINT_VERSION: digests kept by another version match
    no row, so every market is sent (and nothing is lost)."""
    event, bookmaker = world.events[0], world.bookmakers[0]
    at = datetime.now(UTC) - timedelta(minutes=30)
    markets = [market(str(n)) for n in range(5)]
    await store.write_snapshots([snapshot(event, bookmaker, at, markets)])
    await store.pool.execute("update market_current set fingerprint = sha256(fingerprint)::bytea")
    async with OddsStore.connect(dsn, min_size=1, max_size=1) as fresh:
        await fresh.write_snapshots([snapshot(event, bookmaker, at + timedelta(minutes=10), markets)])
    assert staged[-1] == 5  # every market sent again
    assert len(await store.latest_odds(event.id)) == 5
    assert await count(store, "market_changes") == 5  # nothing changed, nothing logged


# --- backfills and checkpoints -------------------------------------------------------------------


async def test_a_backfill_is_merged_at_once_and_reads_like_snapshot_by_snapshot(
    store: OddsStore, world: World, dsn: str, staged: list[int]
) -> None:
    """Six snapshots per pair in one call, over two UTC days: one merge (no late snapshot), each
    snapshot staged with only what changed since the one before; the same answers as six calls."""
    pairs = [(event, bookmaker) for event in world.events[:2] for bookmaker in world.bookmakers]
    start = midnight(-1) + timedelta(hours=21)  # 21:00, 22:00, ... 02:00: the day changes
    cycles = []
    for step in range(6):
        markets = [market(str(n)) for n in range(8)]
        markets[step] = market(str(step), odds=(2.0 + step / 10, 3.0, 4.0))
        if step == 4:
            markets = markets[:6]  # two markets gone, back at step 5
        cycles.append([snapshot(e, b, start + timedelta(hours=step), markets) for e, b in pairs])
    await store.write_snapshots([s for cycle in cycles for s in cycle])
    assert len(staged) == 1
    # The first whole; then per step the market moved back and the one moved; two gone; two back.
    assert staged[0] == len(pairs) * (8 + 2 + 2 + 2 + (2 + 2) + (2 + 2))
    async with OddsStore.connect(dsn, min_size=1, max_size=1) as reference_store:
        await reference_store.pool.execute("truncate odds_snapshots, market_changes, market_current, latest_snapshots")
        expected = {}
        for number, cycle in enumerate(cycles):
            await reference_store.write_snapshots(cycle)
            for event, _ in pairs:
                expected[(event.id, number)] = prices(await reference_store.odds_at(event.id, cycle[0]["captured_at"]))
    # The reference truncated the shared tables: write the backfill again, as one call.
    await store.pool.execute("truncate odds_snapshots, market_changes, market_current, latest_snapshots")
    store._written.clear()
    await store.write_snapshots([s for cycle in cycles for s in cycle])
    for number, cycle in enumerate(cycles):
        for event, _ in pairs:
            assert prices(await store.odds_at(event.id, cycle[0]["captured_at"])) == expected[(event.id, number)]


async def test_each_pairs_first_snapshot_of_a_day_logs_a_checkpoint_that_is_not_a_change(
    store: OddsStore, world: World
) -> None:
    event, bookmaker = world.events[0], world.bookmakers[0]
    yesterday = midnight(-1) + timedelta(hours=23)
    markets = [market("1"), market("2", odds=(1.5, 2.5))]
    await store.write_snapshots([snapshot(event, bookmaker, yesterday, markets)])
    moved = [market("1"), market("2", odds=(1.6, 2.4))]
    await store.write_snapshots([snapshot(event, bookmaker, midnight(0) + timedelta(minutes=5), moved)])
    await store.write_snapshots([snapshot(event, bookmaker, midnight(0) + timedelta(minutes=15), moved)])
    # Today's first snapshot: "2" changed (a change), "1" did not (a checkpoint); the second: nothing.
    assert await count(store, "market_changes", "checkpoint") == 1
    assert await count(store, "market_changes", "not checkpoint") == 2 + 1
    movement = await store.line_movement(event.id, "1")
    assert [change.captured_at for change in movement] == [yesterday]


async def test_a_late_snapshot_opening_its_day_turns_the_next_checkpoint_into_a_change(
    store: OddsStore, world: World
) -> None:
    event, bookmaker = world.events[0], world.bookmakers[0]
    await store.write_snapshots([snapshot(event, bookmaker, midnight(-1) + timedelta(hours=20), [market("1")])])
    first_today = midnight(0) + timedelta(hours=2)
    await store.write_snapshots([snapshot(event, bookmaker, first_today, [market("1")])])  # a checkpoint
    late = midnight(0) + timedelta(hours=1)
    await store.write_snapshots([snapshot(event, bookmaker, late, [market("1", odds=(2.0, 3.0, 4.0))])])
    movement = await store.line_movement(event.id, "1")
    assert [change.captured_at for change in movement] == [midnight(-1) + timedelta(hours=20), late, first_today]
    assert prices(await store.odds_at(event.id, late))[(bookmaker.id, "1", None)] == (2.0, 4.0, 3.0)
    assert prices(await store.odds_at(event.id, first_today))[(bookmaker.id, "1", None)] == (1.85, 4.2, 3.4)


async def test_a_full_lock_table_raises_a_clear_error_and_stores_nothing(store: OddsStore, world: World) -> None:
    """Another session fills the server's lock table (as thousands of pairs locked by other
    writers would): a write raises LockTableFullError naming the setting, and stores nothing;
    once the locks are gone the same write goes through."""
    event, bookmaker = world.events[0], world.bookmakers[0]
    at = datetime.now(UTC) - timedelta(minutes=5)
    batch = [snapshot(event, bookmaker, at), snapshot(world.events[1], bookmaker, at)]
    await store.ensure_partitions(days_ahead=0)
    hog = await asyncpg.connect(store._dsn)
    try:
        async with hog.transaction():
            taken = 0
            for size in (1000, 100, 10, 1):  # each chunk in a savepoint: a failed one gives its locks back
                while True:
                    try:
                        async with hog.transaction():
                            await hog.execute(
                                "select pg_advisory_xact_lock(-1, n) from generate_series($1::int, $2::int) as n",
                                taken + 1,
                                taken + size,
                            )
                    except asyncpg.OutOfMemoryError:
                        break
                    taken += size
            with pytest.raises(LockTableFullError, match="max_locks_per_transaction"):
                await store.write_snapshots(batch)
    finally:
        await hog.close()
    assert await count(store, "odds_snapshots") == 0
    assert (await store.write_snapshots(batch)).snapshots == 2


# --- retention -----------------------------------------------------------------------------------


async def test_a_late_snapshot_between_prepare_and_drop_keeps_its_markets(store: OddsStore, world: World) -> None:
    """The race docs/schema.md listed: retention prepares the cutoff, a late snapshot for the
    first kept day arrives (listing markets unchanged since before the cutoff), then the days
    before the cutoff are dropped. The late snapshot still shows every market it listed."""
    event, bookmaker = world.events[0], world.bookmakers[0]
    markets = [market(str(n)) for n in range(5)]
    await store.write_snapshots([snapshot(event, bookmaker, midnight(-3) + timedelta(hours=12), markets)])
    kept_later = midnight(-2) + timedelta(hours=12)
    await store.write_snapshots([snapshot(event, bookmaker, kept_later, markets)])
    cutoff = midnight(-2)
    async with store.pool.acquire() as connection:
        async with connection.transaction():
            await store.queries.prepare_retention(connection, cutoff=cutoff)
        late = midnight(-2) + timedelta(hours=1)  # before the pair's first snapshot of the kept day
        await store.write_snapshots([snapshot(event, bookmaker, late, markets)])
        await partitions.drop_expired(connection, store.queries, cutoff.date())
    assert len(await store.odds_at(event.id, late)) == 5
    assert len(await store.odds_at(event.id, kept_later)) == 5
    assert len(await store.latest_odds(event.id)) == 5


async def test_retention_waits_only_for_the_pairs_it_forgets(store: OddsStore, world: World) -> None:
    """A writer holds a live pair's lock: retention (forgetting a pair with nothing left) does
    not wait for it."""
    old_event, live_event, bookmaker = world.events[0], world.events[1], world.bookmakers[0]
    await store.write_snapshots([snapshot(old_event, bookmaker, midnight(-3) + timedelta(hours=12), [market("1")])])
    await store.write_snapshots(
        [snapshot(live_event, bookmaker, datetime.now(UTC) - timedelta(minutes=1), [market("1")])]
    )
    holder = await asyncpg.connect(store._dsn)
    try:
        async with holder.transaction():
            await holder.execute("select pg_advisory_xact_lock($1, $2)", live_event.id, bookmaker.id)
            dropped = await asyncio.wait_for(store.drop_expired_partitions(retention_days=2), 30)
    finally:
        await holder.close()
    assert any(name.startswith("odds_snapshots_p") for name in dropped)
    assert await store.latest_odds(old_event.id) == []
    assert len(await store.latest_odds(live_event.id)) == 1
