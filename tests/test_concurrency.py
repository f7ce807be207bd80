"""Concurrent writers and readers during partition maintenance.

Four writers (each its own OddsStore and pool, two batches in flight each) write the cycles of a
seeded feed, every writer touching every event x bookmaker pair at some cycle, in and out of
order, all four needing the same missing day partition at the same moment. Afterwards the store
must answer exactly what a plain model of every snapshot kept whole answers: nothing lost,
nothing duplicated, whatever the interleaving.

Readers keep calling latest_odds and odds_history while retention detaches and drops a day and
while partitions are created; the longest single call is measured, recorded and bounded, and
every answer is checked.

The last tests are strict xfails: minimal reproductions of lock conflicts between retention or
partition creation and the reference tables (events, bookmakers, scrape_runs) that the odds
tables' foreign keys point to.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from conftest import World, on_citus, snapshot
from reference_model import Model, Snapshot, line_order, rows, store_rows, unordered

from oddsstore import OddsStore
from oddsstore.synthetic.feed import Feed, FeedIds, FeedSnapshot, register, to_write

WRITERS = 4
TASKS_PER_WRITER = 2  # batches each writer has in flight at once
GROUPS = 4  # each cycle is split by event into this many batches
TABLES = ("market_changes", "odds_snapshots", "scrape_errors")
MAX_READER_STALL = 2.0  # seconds; generous, for a loaded 2-core CI machine
END = datetime.max.replace(tzinfo=UTC)

pytestmark = on_citus


def today() -> date:
    return datetime.now(UTC).date()


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def make_feed(events: int, first_day: date, interval: timedelta, seed: int) -> Feed:
    # Few markets and many changes: small batches whose merges still have plenty to compare.
    return Feed(
        events=events,
        seed=seed,
        start=midnight(first_day) + timedelta(hours=1),
        interval=interval,
        markets_per_snapshot=40,
        change_rate=0.2,
    )


def model_snapshot(snap: FeedSnapshot, ids: FeedIds) -> Snapshot:
    """A feed snapshot as the reference model keeps it: every market whole."""
    return Snapshot(
        ids.events[snap.event_key],
        ids.bookmakers[snap.bookmaker_slug],
        snap.captured_at,
        {
            (m["betpawa_market_id"], m["line"]): (
                m["betpawa_market_name"],
                tuple(sorted((o["name"], o["odds"], o["is_active"]) for o in m["outcomes"])),  # stored by name
            )
            for m in snap.markets
        },
    )


async def assert_store_matches(store: OddsStore, model: Model, moments: Sequence[datetime]) -> int:
    """latest_odds, odds_at at every moment and odds_history of a few markets, for every event of
    the model, equal the model's answers exactly. Returns how many answers were compared."""
    checked = 0
    for event in sorted({s.event for s in model.snapshots}):
        latest = rows(model.latest_at_or_before(event, END))
        assert unordered(store_rows(await store.latest_odds(event))) == unordered(latest), event
        for at in moments:
            expected = rows(model.latest_at_or_before(event, at))
            assert unordered(store_rows(await store.odds_at(event, at))) == unordered(expected), (event, at)
        for market_id in sample_markets(model, event):
            expected = sorted(rows(model.kept(event), market_id), key=line_order)
            assert store_rows(await store.odds_history(event, market_id)) == expected, (event, market_id)
        checked += 1 + len(moments) + 3
    return checked


def sample_markets(model: Model, event: int) -> list[str]:
    """Three market ids of the event: the 1X2 and two with lines, if it has them."""
    kept = model.kept(event)
    ids = sorted({mid for s in kept for (mid, _) in s.markets})
    with_lines = sorted({mid for s in kept for (mid, line) in s.markets if line is not None})
    return sorted({ids[0], *with_lines[:2]}) if ids else []


async def table_facts(store: OddsStore) -> dict[str, Any]:
    """Counts that expose lost or duplicated rows."""
    pool = store.pool
    return {
        "snapshots_per_pair": Counter(
            {
                (r["event_id"], r["bookmaker_id"]): r["n"]
                for r in await pool.fetch(
                    "select event_id, bookmaker_id, count(*) as n from odds_snapshots group by 1, 2"
                )
            }
        ),
        "snapshot_ids": await pool.fetchval("select count(*) - count(distinct id) from odds_snapshots"),
        "change_keys": await pool.fetchval(
            "select count(*) - count(distinct (event_id, bookmaker_id, betpawa_market_id, "
            "coalesce(line, 'NaN'), captured_at)) from market_changes"
        ),
        "current": await pool.fetchval("select count(*) from market_current"),
        "latest": {
            (r["event_id"], r["bookmaker_id"]): r["captured_at"]
            for r in await pool.fetch("select event_id, bookmaker_id, captured_at from latest_snapshots")
        },
    }


async def watch_lock_waits(store: OddsStore, stop: asyncio.Event) -> Counter[str]:
    """Sample, until ``stop``, how many sessions wait on the partition-creation lock and on pairs'
    write locks at once; returns the most seen for each (proof that the writers really contended)."""
    most: Counter[str] = Counter()
    async with store.pool.acquire() as connection:
        while not stop.is_set():
            for row in await connection.fetch(
                """
                select case when l.objsubid = 2 then 'pairs' else 'partitions' end as name, count(*) as n
                from pg_locks as l
                where l.locktype = 'advisory' and not l.granted and l.database = (
                    select oid from pg_database where datname = current_database()
                )
                  and (l.objsubid = 2  -- the two-integer form: (event_id, bookmaker_id)
                       or l.objid::bigint = hashtext('oddsstore_partitions')::bigint & 4294967295)
                group by 1
                """
            ):
                most[row["name"]] = max(most[row["name"]], row["n"])
            await asyncio.sleep(0.002)
    return most


def expected_facts(model: Model) -> dict[str, Any]:
    latest: dict[tuple[int, int], Snapshot] = {}
    for s in sorted(model.snapshots, key=lambda s: s.at):
        latest[(s.event, s.bookmaker)] = s
    return {
        "snapshots_per_pair": Counter((s.event, s.bookmaker) for s in model.snapshots),
        "snapshot_ids": 0,
        "change_keys": 0,
        "current": sum(len(s.markets) for s in latest.values()),
        "latest": {pair: s.at for pair, s in latest.items()},
    }


# --- concurrent writers ----------------------------------------------------------------------------


async def test_four_writers_lose_and_duplicate_nothing(store: OddsStore) -> None:
    """4 writers x 2 batches in flight; 32 cycles of 8 events x 3 bookmakers over four past days,
    each cycle split into 4 batches (128 batches, 768 snapshots, ~30,000 market observations)."""
    first_day = today() - timedelta(days=5)
    feed = make_feed(8, first_day, timedelta(hours=3), seed=11)
    cycles = [feed.cycle(i) for i in range(32)]
    ids = await register(store, feed, [s for cycle in cycles for s in cycle])
    assert await store.partitions() == []  # every day the writers need is missing

    # Batch (cycle c, group g) holds the events of slots g, g + 4, ...; writer (g + c) % 4 writes
    # it, so every writer writes every pair at some cycle and pairs pass between writers.
    batches: dict[int, list[tuple[int, list[dict[str, Any]]]]] = {w: [] for w in range(WRITERS)}
    for c, cycle in enumerate(cycles):
        for g in range(GROUPS):
            group = [s for n, s in enumerate(cycle) if (n // len(feed.bookmakers)) % GROUPS == g]
            batches[(g + c) % WRITERS].append((c, to_write(group, ids)))
    # Writers 0 and 1 go forward in time, 2 backwards, 3 in a random order: pairs arrive out of order.
    batches[2].reverse()
    random.Random(3).shuffle(batches[3])
    # First, each writer's batch of cycle 0, released together: four writers need the day's
    # partitions (none exist) at the same moment.
    rush = [next(b for b in batches[w] if b[0] == 0) for w in range(WRITERS)]
    for w in range(WRITERS):
        batches[w].remove(rush[w])

    written: Counter[str] = Counter()

    async def writer(w: int, pool_store: OddsStore, start: asyncio.Barrier) -> None:
        await start.wait()
        result = await pool_store.write_snapshots(rush[w][1])
        written["snapshots"] += result.snapshots
        written["markets"] += result.markets
        queue = list(batches[w])

        async def task() -> None:
            while queue:
                _, batch = queue.pop(0)
                result = await pool_store.write_snapshots(batch)
                written["snapshots"] += result.snapshots
                written["markets"] += result.markets
                written["batches"] += 1

        await asyncio.gather(*(task() for _ in range(TASKS_PER_WRITER)))
        written["batches"] += 1

    writers = [await OddsStore.connect(store._dsn, min_size=1, max_size=TASKS_PER_WRITER) for _ in range(WRITERS)]
    start = asyncio.Barrier(WRITERS)
    began = time.perf_counter()
    stop = asyncio.Event()
    waiting = asyncio.create_task(watch_lock_waits(store, stop))
    try:
        # A deadlock PostgreSQL detects raises DeadlockDetectedError; one it cannot see (advisory
        # locks waited on from outside the database) would hang: bound it.
        await asyncio.wait_for(asyncio.gather(*(writer(w, s, start) for w, s in enumerate(writers))), 120)
    finally:
        stop.set()
        await asyncio.gather(*(s.close() for s in writers))
    elapsed = time.perf_counter() - began
    waits = await waiting

    model = Model([model_snapshot(s, ids) for cycle in cycles for s in cycle])
    sent_markets = sum(len(s.markets) for s in model.snapshots)
    print(
        f"\n{WRITERS} writers x {TASKS_PER_WRITER} in flight: {written['batches']} batches, "
        f"{written['snapshots']} snapshots, {written['markets']} markets in {elapsed:.2f} s; most sessions "
        f"waiting at once on the partition lock {waits['partitions']}, on pairs' locks {waits['pairs']}"
    )
    assert written == {"batches": len(cycles) * GROUPS, "snapshots": len(model.snapshots), "markets": sent_markets}
    assert waits["partitions"] >= 2  # several writers needed a new day at the same moment

    days = sorted({s.at.date() for s in model.snapshots})
    found = Counter((p.parent, p.day) for p in await store.partitions())
    assert found == Counter({(t, d): 1 for t in TABLES for d in days})
    assert await table_facts(store) == expected_facts(model)
    moments = [feed.captured_at(i) + delta for i in range(len(cycles)) for delta in (timedelta(0), timedelta(hours=1))]
    await assert_store_matches(store, model, moments[::3])


async def test_writers_of_the_same_pairs_agree_with_the_model_whatever_the_order(store: OddsStore) -> None:
    """Two events, 24 cycles dealt in a random order to four writers, each writing its batches all
    at once: every batch holds every pair, most are late for them, and the merges of one pair
    interleave in whatever order their pairs' locks are granted."""
    first_day = today() - timedelta(days=4)
    feed = make_feed(2, first_day, timedelta(hours=2), seed=12)
    cycles = [feed.cycle(i) for i in range(24)]
    ids = await register(store, feed, [s for cycle in cycles for s in cycle])
    order = list(range(len(cycles)))
    random.Random(5).shuffle(order)
    # Writer w gets cycles order[w::4]; each batch is one whole cycle (both events, all bookmakers),
    # and every second batch of a writer also carries the next cycle it holds: several snapshots
    # of a pair in one batch.
    plans: list[list[list[dict[str, Any]]]] = []
    for w in range(WRITERS):
        mine = order[w::WRITERS]
        plan = []
        for n in range(0, len(mine), 2):
            plan.append(to_write([s for c in mine[n : n + 2] for s in cycles[c]], ids))
        plans.append(plan)

    async def run(plan: list[list[dict[str, Any]]]) -> None:
        async with OddsStore.connect(store._dsn, min_size=1, max_size=len(plan)) as own:
            await asyncio.gather(*(own.write_snapshots(batch) for batch in plan))

    await asyncio.wait_for(asyncio.gather(*(run(plan) for plan in plans)), 120)

    model = Model([model_snapshot(s, ids) for cycle in cycles for s in cycle])
    assert await table_facts(store) == expected_facts(model)
    moments = sorted({s.at for s in model.snapshots} | {s.at - timedelta(minutes=1) for s in model.snapshots})
    await assert_store_matches(store, model, moments)


async def test_writers_during_retention_and_partition_creation(store: OddsStore) -> None:
    """Four writers write the later days, late batches included, while retention drops the
    oldest day (it forgets pairs under their locks) and days ahead are created: no error, no
    deadlock, and the store equals the model with that day dropped."""
    first_day = today() - timedelta(days=5)
    feed = make_feed(4, first_day, timedelta(hours=3), seed=15)
    cycles = [feed.cycle(i) for i in range(36)]  # today-5 01:00 .. today-1 10:00
    ids = await register(store, feed, [s for cycle in cycles for s in cycle])
    early = [c for c in range(len(cycles)) if cycles[c][0].captured_at.date() < first_day + timedelta(days=2)]
    for c in early:
        await store.write_snapshots(to_write(cycles[c], ids))
    # The rest (all after the cutoff), shuffled and dealt to the writers: many arrive late.
    rest = [c for c in range(len(cycles)) if c not in early]
    random.Random(7).shuffle(rest)
    keep_days = 4
    cutoff = midnight(today() - timedelta(days=keep_days))
    assert all(cycles[c][0].captured_at >= cutoff for c in rest)

    async def write(cycle_numbers: list[int]) -> None:
        async with OddsStore.connect(store._dsn, min_size=1, max_size=1) as own:
            for c in cycle_numbers:
                await own.write_snapshots(to_write(cycles[c], ids))

    async def maintain() -> list[str]:
        async with OddsStore.connect(store._dsn, min_size=1, max_size=1) as own:
            await asyncio.sleep(0.05)
            dropped = await own.drop_expired_partitions(retention_days=keep_days)
            await own.ensure_partitions(days_ahead=2)
            return dropped

    *_, dropped = await asyncio.wait_for(
        asyncio.gather(*(write(rest[w::WRITERS]) for w in range(WRITERS)), maintain()), 120
    )
    assert sorted(dropped) == sorted(f"{t}_p{first_day:%Y%m%d}" for t in TABLES)
    model = Model([model_snapshot(s, ids) for cycle in cycles for s in cycle])
    model.drop_before(cutoff)
    assert await table_facts(store) == expected_facts(model)
    moments = [feed.captured_at(i) + timedelta(minutes=30) for i in range(len(cycles))]
    await assert_store_matches(store, model, moments[::2])


# --- readers during maintenance ------------------------------------------------------------------


async def test_readers_keep_answering_while_days_are_dropped_and_created(
    store: OddsStore, record_property: Callable[[str, object], None]
) -> None:
    """Two readers loop over latest_odds, odds_history and get_event while, one after the other,
    retention drops the oldest day (DETACH ... CONCURRENTLY), a write for other events creates
    today's partitions, and three days ahead are created. Each answer must be the model's before
    or after the drop; the longest single call is the stall."""
    first_day = today() - timedelta(days=5)
    feed = make_feed(6, first_day, timedelta(hours=4), seed=13)
    cycles = [feed.cycle(i) for i in range(24)]  # today-5 01:00 .. today-1 21:00
    snapshots = [s for cycle in cycles for s in cycle]
    ids = await register(store, feed, snapshots)
    for cycle in cycles:
        await store.write_snapshots(to_write(cycle, ids))
    model = Model([model_snapshot(s, ids) for s in snapshots])

    # Other events (the feed's ids would repeat: new betpawa ids), written during maintenance
    # into today's partitions, which do not exist yet.
    tournament = next(iter(ids.tournaments.values()))
    kickoff = midnight(today() + timedelta(days=2))
    others = [(await store.upsert_event(tournament, f"other-{n}", "H", "A", kickoff)).id for n in range(3)]
    other_batch = [
        {**w, "event_id": others[n % 3], "captured_at": midnight(today()) + timedelta(seconds=n)}
        for n, w in enumerate(to_write(cycles[-1][:9], ids))
    ]
    read_events = sorted({s.event for s in model.snapshots})
    markets = {e: sample_markets(model, e)[0] for e in read_events}
    keep_days = 4  # drops first_day only
    after_model = Model(list(model.snapshots))
    after_model.drop_before(midnight(today() - timedelta(days=keep_days)))
    # Per event: the expected latest_odds and odds_history, before and after the drop. Events
    # seen only on the dropped day have no latest odds afterwards.
    latest = {e: [unordered(rows(m.latest_at_or_before(e, END))) for m in (model, after_model)] for e in read_events}
    history = {
        e: [sorted(rows(m.kept(e), markets[e]), key=line_order) for m in (model, after_model)] for e in read_events
    }
    assert any(before != after for before, after in history.values())  # the drop shows

    latencies: list[float] = []
    seen = Counter[str]()
    done = asyncio.Event()

    async def reader(reading: OddsStore, offset: int) -> None:
        n = offset
        while not done.is_set():
            event = read_events[n % len(read_events)]
            n += 1
            t0 = time.perf_counter()
            got_latest = await reading.latest_odds(event)
            t1 = time.perf_counter()
            got_history = store_rows(await reading.odds_history(event, markets[event]))
            t2 = time.perf_counter()
            got_event = await reading.get_event(event)  # a reference table: retention leaves it alone
            t3 = time.perf_counter()
            latencies.extend((t1 - t0, t2 - t1, t3 - t2))
            assert got_event is not None and got_event.id == event
            assert unordered(store_rows(got_latest)) in latest[event]
            assert got_history in history[event]
            seen["after" if got_history == history[event][1] else "before"] += 1

    steps: list[tuple[str, float]] = []

    async def maintain(maintaining: OddsStore) -> None:
        await asyncio.sleep(0.3)  # readers are warm
        for name, step in (
            ("drop_expired_partitions", lambda: maintaining.drop_expired_partitions(retention_days=keep_days)),
            ("write into a new day", lambda: maintaining.write_snapshots(other_batch)),
            ("ensure_partitions", lambda: maintaining.ensure_partitions(days_ahead=3)),
        ):
            t0 = time.perf_counter()
            result = await step()
            steps.append((name, time.perf_counter() - t0))
            if name == "drop_expired_partitions":
                assert sorted(result) == sorted(f"{t}_p{first_day:%Y%m%d}" for t in TABLES)
            await asyncio.sleep(0.2)
        done.set()

    async with (
        OddsStore.connect(store._dsn, min_size=2, max_size=2) as reading,
        OddsStore.connect(store._dsn, min_size=1, max_size=1) as maintaining,
    ):
        await asyncio.wait_for(asyncio.gather(reader(reading, 0), reader(reading, 1), maintain(maintaining)), 60)

    stall = max(latencies)
    median = sorted(latencies)[len(latencies) // 2]
    record_property("longest_reader_stall_s", round(stall, 4))
    print(
        f"\nreaders: {len(latencies)} calls, median {median * 1000:.1f} ms, longest {stall * 1000:.1f} ms; "
        f"histories before/after the drop: {seen['before']}/{seen['after']}; maintenance "
        + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in steps)
    )
    assert stall < MAX_READER_STALL
    assert seen["after"] > 0
    days = {p.day for p in await store.partitions()}
    assert first_day not in days and today() + timedelta(days=3) in days


# --- retention and partition creation leave the reference tables alone --------------------------
# Until the day partitions lost their foreign keys (commit bcf837e), dropping a detached partition
# of odds_snapshots or scrape_errors dropped the keys' triggers on events, bookmakers and
# scrape_runs (ACCESS EXCLUSIVE on all three), and attaching one added them (SHARE ROW EXCLUSIVE
# until the writer's transaction ended). The first two tests deadlocked or stalled then.


async def old_and_new_snapshots(store: OddsStore, world: World) -> date:
    """One snapshot five days ago (to be dropped) and one today; returns the old day."""
    old = today() - timedelta(days=5)
    event, bookmaker = world.events[0], world.bookmakers[0]
    await store.write_snapshots([snapshot(event, bookmaker, midnight(old) + timedelta(hours=12))])
    await store.write_snapshots([snapshot(event, bookmaker, datetime.now(UTC) - timedelta(minutes=5))])
    return old


async def test_retention_writes_and_reads_do_not_wait_for_a_report_on_reference_tables(
    store: OddsStore, world: World
) -> None:
    """A transaction that read events, bookmakers and scrape_runs (a report) stays open while a
    day is dropped and, at the same time, a batch is written, a run started and an event read.
    With the foreign keys, the DROP waited for the report, everything queued behind the DROP, and
    the write, holding bookmakers and queued for events, deadlocked with it."""
    old = await old_and_new_snapshots(store, world)
    report = await asyncpg.connect(store._dsn)
    try:
        async with report.transaction():
            await report.fetch("select * from events, bookmakers, scrape_runs")
            run = await store.start_scrape_run("scheduled")
            dropped, written, event = await asyncio.wait_for(
                asyncio.gather(
                    store.drop_expired_partitions(retention_days=4),
                    store.write_snapshots(
                        [snapshot(world.events[1], world.bookmakers[1], datetime.now(UTC))], scrape_run_id=run.id
                    ),
                    store.get_event(world.events[1].id),
                ),
                10,
            )
    finally:
        await report.close()
    assert sorted(dropped) == sorted(f"{t}_p{old:%Y%m%d}" for t in TABLES)
    assert written.snapshots == 1 and event == world.events[1]


async def test_a_write_creating_a_day_does_not_block_reference_writes(store: OddsStore, world: World) -> None:
    """A write that creates a day's partitions holds the partition lock until it commits, merge
    wait included; runs, events and bookmakers can still be written meanwhile."""
    holder = await asyncpg.connect(store._dsn)
    try:
        # Another writer of the same pair, in a long merge: the new-day write below waits for
        # the pair's lock.
        pair = (world.events[0].id, world.bookmakers[0].id)
        await holder.execute("select pg_advisory_lock($1, $2)", *pair)
        day = midnight(today() - timedelta(days=2)) + timedelta(hours=12)
        write = asyncio.create_task(store.write_snapshots([snapshot(world.events[0], world.bookmakers[0], day)]))
        done, _ = await asyncio.wait({write}, timeout=0.5)
        assert not done  # it created the day's partitions and waits for the pair's lock
        tournament = world.events[0].tournament_id
        await asyncio.wait_for(
            asyncio.gather(
                store.start_scrape_run("scheduled"),
                store.upsert_event(tournament, "bp-new", "H", "A", datetime.now(UTC) + timedelta(days=1)),
                store.upsert_bookmaker("New", "new"),
            ),
            5,
        )
        await holder.execute("select pg_advisory_unlock($1, $2)", *pair)
        await asyncio.wait_for(write, 30)
    finally:
        await holder.close()


async def test_a_partition_detached_by_a_run_that_died_is_dropped_by_the_next_run(
    store: OddsStore, world: World
) -> None:
    old = await old_and_new_snapshots(store, world)
    name = f"odds_snapshots_p{old:%Y%m%d}"
    async with store.pool.acquire() as connection:
        # What drop_expired_partitions runs for this partition, up to its DROP TABLE (on Citus
        # a plain DETACH).
        mode = "" if await store.queries.citus_installed(connection) else "concurrently"
        await connection.execute(f"alter table odds_snapshots detach partition {name} {mode}")
    await store.drop_expired_partitions(retention_days=4)
    left = await store.pool.fetchval("select to_regclass($1)::text", name)
    assert left is None, f"{name} was detached by the dead run and is still there"
