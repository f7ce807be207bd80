"""Writes and maintenance at production scale (issue 11): one command, one run, ratios.

    python -m bench.production --label after                 # the quick harness
    python -m bench.production --label pawa --scale pawa     # the production shape

* ``ingest``: the same feed through a long-lived store, a new store per cycle (cron-style
  scrapers, restarts), one call holding every timed cycle (a backfill), and the seed plan's ORM.
  Cycle 0 warms every path and is not timed (the backfill's database gets it too).
* ``writers``: one process per bookmaker against one process writing all of them, per cycle, on
  databases of their own whose partitions exist (as ``oddsstore maintain`` leaves them); wall
  time per cycle, and the share of the writers' active time spent waiting for a lock
  (``pg_stat_activity`` sampled every 5 ms).
* ``history``: a late batch (a cycle replayed one second later), ``odds_at``, ``odds_history``
  (the last two hours of one market) after 1 and after 7 days of history, and retention of one
  day with 1 and with 7 days present, each with a writer inserting one snapshot at a time
  beside it (the longest insert is the delay retention caused). Days are loaded one write
  per cycle, at a coarser cadence than production so a week builds in minutes.
* ``retention``: three days of history at the production size (``--retention-events``, a cycle
  every two hours, so that it loads in minutes), then the oldest day dropped by
  ``drop_expired_partitions`` (DETACH CONCURRENTLY) and the next one by the SQL function
  ``oddsstore_drop_expired_partitions`` (for pg_cron), each with a writer inserting one
  snapshot at a time beside it: the longest insert is the delay retention caused.

Writes ``bench/results/production-<label>.json`` and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import asyncpg

from bench import retention, seed_orm
from bench.databases import observations, open_seed, open_store
from bench.server import database_dsn, drop_database, server
from oddsstore import OddsStore
from oddsstore.migrations import asyncpg_dsn
from oddsstore.partitions import utc_day
from oddsstore.synthetic.feed import Feed, FeedIds, FeedSnapshot, to_write

RESULTS = Path(__file__).parent / "results"
SEED = 2024

# --scale: "harness", the sizes of the first runs (quick); "pawa", the production shape (1,300
# events x 3 bookmakers x 170 markets) for ingest, writers and retention. The history keeps 100
# events either way: a week of pawa-sized history takes hours to load on 2 cores.
SCALES: dict[str, dict[str, int]] = {
    "harness": {
        "events": 60,
        "writer_events": 300,
        "cycles": 6,
        "markets": 150,
        "history_events": 100,
        "history_interval": 30,
        "days": 7,
        "retention_events": 300,
    },
    "pawa": {
        "events": 1300,
        "writer_events": 1300,
        "cycles": 3,
        "markets": 170,
        "history_events": 100,
        "history_interval": 30,
        "days": 7,
        "retention_events": 1300,
    },
}


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _feed(events: int, start: datetime, interval: timedelta, markets: int) -> Feed:
    return Feed(events=events, bookmakers=3, seed=SEED, start=start, interval=interval, markets_per_snapshot=markets)


def _recent_start(cycles: int) -> datetime:
    now = datetime.now(UTC)
    return now.replace(second=0, microsecond=0) - timedelta(minutes=now.minute % 10) - cycles * timedelta(minutes=10)


# --- ingest ---------------------------------------------------------------------------------------


async def ingest(admin_dsn: str, events: int, cycles: int, markets: int) -> dict[str, Any]:
    """Observations per second of each write path over cycles 1.., and each against seed_orm."""
    start = _recent_start(cycles)
    feed = _feed(events, start, timedelta(minutes=10), markets)
    batches = [feed.cycle(index) for index in range(cycles)]
    everything = [snapshot for cycle in batches for snapshot in cycle]
    days = {utc_day(snapshot.captured_at) for snapshot in everything}
    timed = sum(observations(cycle) for cycle in batches[1:])
    seconds: dict[str, list[float]] = {"long_lived": [], "new_store_per_cycle": [], "backfill": [], "seed_orm": []}
    names = {path: f"bench_production_{path}" for path in seconds}
    try:
        long_lived, ids = await open_store(admin_dsn, names["long_lived"], feed, everything)
        fresh, fresh_ids = await open_store(admin_dsn, names["new_store_per_cycle"], feed, everything)
        await fresh.close()
        backfill, backfill_ids = await open_store(admin_dsn, names["backfill"], feed, everything)
        seed_dsn = await open_seed(admin_dsn, names["seed_orm"], days, ids)
        engine = seed_orm.make_engine(seed_dsn)
        sessions = seed_orm.make_session_factory(engine)
        fresh_dsn = database_dsn(admin_dsn, names["new_store_per_cycle"])
        try:
            await backfill.write_snapshots(to_write(batches[0], backfill_ids))
            for number, cycle in enumerate(batches):
                _log(f"ingest cycle {number}")
                gc.collect()
                began = time.perf_counter()
                await long_lived.write_snapshots(to_write(cycle, ids))
                seconds["long_lived"].append(time.perf_counter() - began)
                async with OddsStore.connect(fresh_dsn, min_size=1, max_size=4) as store:
                    gc.collect()
                    began = time.perf_counter()
                    await store.write_snapshots(to_write(cycle, fresh_ids))
                    seconds["new_store_per_cycle"].append(time.perf_counter() - began)
                gc.collect()
                began = time.perf_counter()
                await seed_orm.write_batch(sessions, to_write(cycle, ids))
                seconds["seed_orm"].append(time.perf_counter() - began)
            _log("ingest backfill")
            backlog = [snapshot for cycle in batches[1:] for snapshot in to_write(cycle, backfill_ids)]
            gc.collect()
            began = time.perf_counter()
            await backfill.write_snapshots(backlog)
            seconds["backfill"] = [0.0, time.perf_counter() - began]
        finally:
            await long_lived.close()
            await backfill.close()
            await engine.dispose()
    finally:
        for name in names.values():
            await drop_database(admin_dsn, name)
    per_second = {path: timed / sum(times[1:]) for path, times in seconds.items()}
    return {
        "events": events,
        "cycles_timed": cycles - 1,
        "observations_timed": timed,
        "seconds": {path: sum(times[1:]) for path, times in seconds.items()},
        "per_second": per_second,
        "x_seed_orm": {path: rate / per_second["seed_orm"] for path, rate in per_second.items()},
    }


# --- writers --------------------------------------------------------------------------------------


def _writer_process(
    dsn: str,
    events: int,
    start: datetime,
    markets: int,
    cycles: int,
    slugs: list[str],
    ids: FeedIds,
    barrier: Any,
    results: Any,
) -> None:
    asyncio.run(_write_cycles(dsn, events, start, markets, cycles, slugs, ids, barrier, results))


async def _write_cycles(
    dsn: str,
    events: int,
    start: datetime,
    markets: int,
    cycles: int,
    slugs: list[str],
    ids: FeedIds,
    barrier: Any,
    results: Any,
) -> None:
    feed = _feed(events, start, timedelta(minutes=10), markets)
    batches = [[s for s in feed.cycle(index) if s.bookmaker_slug in slugs] for index in range(cycles)]
    spans: list[tuple[float, float]] = []
    async with OddsStore.connect(dsn, min_size=1, max_size=2) as store:
        for cycle in batches:
            batch = to_write(cycle, ids)
            gc.collect()
            barrier.wait()
            began = time.time()
            await store.write_snapshots(batch)
            spans.append((began, time.time()))
    results.put((slugs, spans))


async def _sample_waits(dsn: str, database: str, stop: asyncio.Event) -> dict[str, int]:
    """Samples, every 5 ms, of the backends of ``database``: active ones, and those waiting for
    a lock, by kind (``advisory``: the write locks; ``extend``, ``tuple``, ...: the server's own)."""
    connection = await asyncpg.connect(asyncpg_dsn(dsn))
    found: dict[str, int] = {"active": 0}
    try:
        while not stop.is_set():
            for row in await connection.fetch(
                "select coalesce(case when wait_event_type = 'Lock' then wait_event end, 'active') as kind, "
                "count(*) as n from pg_stat_activity "
                "where datname = $1 and state = 'active' and pid <> pg_backend_pid() group by 1",
                database,
            ):
                found[row["kind"]] = found.get(row["kind"], 0) + row["n"]
                if row["kind"] != "active":
                    found["active"] += row["n"]
            await asyncio.sleep(0.005)
    finally:
        await connection.close()
    return found


async def writers(admin_dsn: str, events: int, cycles: int, markets: int) -> dict[str, Any]:
    """Wall time per cycle of 3 processes (one per bookmaker) against 1 process writing all."""
    start = _recent_start(cycles)
    feed = _feed(events, start, timedelta(minutes=10), markets)
    everything = [snapshot for index in range(cycles) for snapshot in feed.cycle(index)]
    slugs = [bookmaker["slug"] for bookmaker in feed.bookmakers]
    found: dict[str, Any] = {}
    context = multiprocessing.get_context("spawn")
    for mode, groups in (("one_process", [slugs]), ("process_per_bookmaker", [[slug] for slug in slugs])):
        name = f"bench_production_{mode}"
        try:
            store, ids = await open_store(admin_dsn, name, feed, everything)
            # The days' partitions exist, as `oddsstore maintain` leaves them: a write that creates
            # a day holds the creation lock until it commits, and the others wait that long.
            await store.ensure_partitions(days_ahead=1)
            await store.close()
            dsn = database_dsn(admin_dsn, name)
            barrier = context.Barrier(len(groups))
            queue = context.Queue()
            processes = [
                context.Process(
                    target=_writer_process, args=(dsn, events, start, markets, cycles, group, ids, barrier, queue)
                )
                for group in groups
            ]
            for process in processes:
                process.start()
            stop = asyncio.Event()
            sampler = asyncio.create_task(_sample_waits(admin_dsn, name, stop))
            reports = [await asyncio.to_thread(queue.get) for _ in processes]
            stop.set()
            samples = await sampler
            for process in processes:
                await asyncio.to_thread(process.join)
        finally:
            await drop_database(admin_dsn, name)
        walls = [
            max(spans[number][1] for _, spans in reports) - min(spans[number][0] for _, spans in reports)
            for number in range(cycles)
        ]
        found[mode] = {
            "processes": len(groups),
            "cycle_wall_seconds": walls,
            "mean_wall_s": statistics.mean(walls[1:]),
            # Waiting for the write locks (advisory), and for any lock, against active time.
            "lock_wait_share": samples.get("advisory", 0) / samples["active"] if samples["active"] else 0.0,
            "any_lock_wait_share": sum(n for kind, n in samples.items() if kind != "active") / samples["active"]
            if samples["active"]
            else 0.0,
            "lock_wait_samples": samples,
        }
        _log(f"writers {mode}: {found[mode]['mean_wall_s']:.2f} s per cycle")
    found["wall_ratio"] = found["process_per_bookmaker"]["mean_wall_s"] / found["one_process"]["mean_wall_s"]
    found["events"] = events
    return found


# --- history --------------------------------------------------------------------------------------


async def _timed(calls: Sequence[Any]) -> float:
    """Median seconds of awaiting each zero-argument coroutine factory in ``calls``."""
    times = []
    for call in calls:
        began = time.perf_counter()
        await call()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


async def _depth_figures(
    store: OddsStore, cycles: list[list[FeedSnapshot]], loaded: int, ids: FeedIds, market_id: str
) -> dict[str, Any]:
    """Late batch, odds_at and odds_history with ``loaded`` cycles stored."""
    last = cycles[loaded - 1]
    end = last[0].captured_at
    live = sorted({ids.events[s.event_key] for s in last})
    at = end - timedelta(hours=3, minutes=7)
    since = end - timedelta(hours=2)
    odds_at = await _timed([lambda event=event: store.odds_at(event, at) for _ in range(3) for event in live])
    history = await _timed(
        [lambda event=event: store.odds_history(event, market_id, since=since) for _ in range(3) for event in live]
    )
    late_cycle = cycles[loaded - 1 - len(cycles) // 16]
    late = [
        {**snapshot, "captured_at": snapshot["captured_at"] + timedelta(seconds=1)}
        for snapshot in to_write(late_cycle, ids)
    ]
    began = time.perf_counter()
    await store.write_snapshots(late)
    late_seconds = time.perf_counter() - began
    return {
        "cycles_loaded": loaded,
        "late_batch_s": late_seconds,
        "late_batch_pairs": len(late),
        "odds_at_p50_ms": odds_at * 1000,
        "odds_history_p50_ms": history * 1000,
    }


async def _retention(store: OddsStore, day: Any, snapshot: dict[str, Any], *, sql: bool = False) -> dict[str, Any]:
    """Drop ``day`` (the only expired one) while a writer inserts ``snapshot`` again and again:
    by ``drop_expired_partitions``, or with ``sql`` by the SQL function."""
    keep = (datetime.now(UTC).date() - day).days - 1
    now = datetime.now(UTC)

    async def insert(number: int) -> None:
        await store.write_snapshots([{**snapshot, "captured_at": now + timedelta(milliseconds=number)}])

    async def drop() -> list[str]:
        if sql:
            rows = await store.pool.fetch("select name from oddsstore_drop_expired_partitions($1) as name", keep)
            return [row["name"] for row in rows]
        return await store.drop_expired_partitions(retention_days=keep)

    run = await retention._with_writer(drop, insert)
    return {"seconds": run.seconds, "error": run.error, "dropped": run.result, "writer": run.writer}


async def history(admin_dsn: str, events: int, interval_minutes: int, markets: int, days: int) -> dict[str, Any]:
    """Reads, a late batch and retention after 1 and after ``days`` days of history."""
    interval = timedelta(minutes=interval_minutes)
    per_day = int(timedelta(days=1) / interval)
    first_day = datetime.now(UTC).date() - timedelta(days=days + 1)
    feed = _feed(events, datetime.combine(first_day, clock_time(), UTC), interval, markets)
    cycles = [feed.cycle(index) for index in range(per_day * (days + 1))]
    name = "bench_production_history"
    found: dict[str, Any] = {"events": events, "interval_minutes": interval_minutes, "days": days}
    try:
        store, ids = await open_store(admin_dsn, name, feed, [s for cycle in cycles for s in cycle])
        market_id = cycles[0][0].markets[0]["betpawa_market_id"]
        loaded = 0
        try:

            async def load(count: int) -> None:
                nonlocal loaded
                began = time.perf_counter()
                for cycle in cycles[loaded : loaded + count * per_day]:
                    await store.write_snapshots(to_write(cycle, ids))
                loaded += count * per_day
                async with store.pool.acquire() as connection:
                    await connection.execute("vacuum analyze")
                _log(f"history: {loaded // per_day} days loaded ({time.perf_counter() - began:.0f} s)")

            await load(1)
            found["shallow"] = await _depth_figures(store, cycles, loaded, ids, market_id)
            await load(1)
            live_snapshot = to_write(cycles[loaded - 1][:1], ids)[0]
            found["shallow"]["retention"] = await _retention(store, first_day, live_snapshot)
            await load(days - 1)
            found["deep"] = await _depth_figures(store, cycles, loaded, ids, market_id)
            found["deep"]["retention"] = await _retention(store, first_day + timedelta(days=1), live_snapshot)
        finally:
            await store.close()
    finally:
        await drop_database(admin_dsn, name)
    shallow, deep = found["shallow"], found["deep"]
    found["deep_over_shallow"] = {
        "late_batch": deep["late_batch_s"] / shallow["late_batch_s"],
        "odds_at": deep["odds_at_p50_ms"] / shallow["odds_at_p50_ms"],
        "odds_history": deep["odds_history_p50_ms"] / shallow["odds_history_p50_ms"],
        "retention": deep["retention"]["seconds"] / shallow["retention"]["seconds"],
    }
    return found


async def retention_delays(admin_dsn: str, events: int, markets: int) -> dict[str, Any]:
    """Each retention path dropping a day of ``events`` events while a writer inserts."""
    interval = timedelta(hours=2)
    first_day = datetime.now(UTC).date() - timedelta(days=3)
    feed = _feed(events, datetime.combine(first_day, clock_time(), UTC), interval, markets)
    cycles = [feed.cycle(index) for index in range(36)]  # the three days before today
    name = "bench_production_retention"
    found: dict[str, Any] = {"events": events, "interval_minutes": 120, "days": 3}
    try:
        store, ids = await open_store(admin_dsn, name, feed, [s for cycle in cycles for s in cycle])
        try:
            await store.ensure_partitions(days_ahead=1)
            began = time.perf_counter()
            for number, cycle in enumerate(cycles):
                await store.write_snapshots(to_write(cycle, ids))
                if number % 6 == 5:
                    _log(f"retention: {number + 1} of {len(cycles)} cycles loaded")
            found["load_s"] = time.perf_counter() - began
            async with store.pool.acquire() as connection:
                await connection.execute("vacuum analyze")
            live_snapshot = to_write(cycles[-1][:1], ids)[0]
            partitions = await store.partitions()
            for day, path in ((first_day, "python"), (first_day + timedelta(days=1), "sql_function")):
                expiring = [p for p in partitions if p.day == day]
                found[path] = {
                    "day": day.isoformat(),
                    "rows": sum(p.rows_estimate or 0 for p in expiring),
                    "bytes": sum(p.total_bytes for p in expiring),
                }
            found["python"] |= await _retention(store, first_day, live_snapshot)
            found["sql_function"] |= await _retention(store, first_day + timedelta(days=1), live_snapshot, sql=True)
        finally:
            await store.close()
    finally:
        await drop_database(admin_dsn, name)
    return found


async def measure(admin_dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "label": args.label,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
    }
    if "ingest" in args.scenarios:
        _log(f"ingest: {args.events} events, {args.cycles} cycles")
        results["ingest"] = await ingest(admin_dsn, args.events, args.cycles, args.markets)
    if "writers" in args.scenarios:
        _log(f"writers: {args.writer_events} events, {args.cycles} cycles")
        results["writers"] = await writers(admin_dsn, args.writer_events, args.cycles, args.markets)
    if "history" in args.scenarios:
        _log(f"history: {args.history_events} events every {args.history_interval} min, {args.days} days")
        results["history"] = await history(
            admin_dsn, args.history_events, args.history_interval, args.markets, args.days
        )
    if "retention" in args.scenarios:
        _log(f"retention: {args.retention_events} events, 3 days")
        results["retention"] = await retention_delays(admin_dsn, args.retention_events, args.markets)
    results["load_average_at_end"] = os.getloadavg()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.production", description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", required=True, help="names the results file: production-<label>.json")
    parser.add_argument("--dsn", help="a server to use (default: a temporary embedded PostgreSQL 18)")
    parser.add_argument("--scenarios", nargs="+", default=["ingest", "writers", "history", "retention"])
    parser.add_argument(
        "--scale", choices=sorted(SCALES), default="harness", help="sizes; the options below override them"
    )
    parser.add_argument("--events", type=int, help="ingest: events per cycle")
    parser.add_argument("--writer-events", type=int, help="writers: events per cycle")
    parser.add_argument("--cycles", type=int, help="ingest and writers: cycles (the first untimed)")
    parser.add_argument("--markets", type=int, help="markets per snapshot")
    parser.add_argument("--history-events", type=int)
    parser.add_argument("--history-interval", type=int, help="minutes between history cycles")
    parser.add_argument("--days", type=int)
    parser.add_argument("--retention-events", type=int, help="retention: events per cycle")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    for option, value in SCALES[args.scale].items():
        if getattr(args, option) is None:
            setattr(args, option, value)
    with server(args.dsn) as admin_dsn:
        results = asyncio.run(measure(admin_dsn, args))
    path = args.results / f"production-{args.label}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
