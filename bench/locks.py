"""How many event x bookmaker pairs one write can lock: the server's lock table (issue 11).

    python -m bench.locks --label pg18
    python -m bench.locks --label pg15 --pg15

A write takes one advisory lock per pair of its batch (``lock_pairs`` in ``queries/odds.sql``),
held until it commits, and every one takes a slot of the server's shared lock table, sized for
``max_locks_per_transaction * (max_connections + max_prepared_transactions)`` locks (PostgreSQL
lets a table grow a little beyond that into spare shared memory). Measured on a server with its
default settings: the largest batch (one market per snapshot, one snapshot per pair) that one
``write_snapshots`` stores, by bisection, and the same for each of two writers at once. A batch
beyond it raises :class:`oddsstore.LockTableFullError` and stores nothing.

Writes ``bench/results/locks-<label>.json`` and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.server import create_database, drop_database, pg15_server, server
from oddsstore import LockTableFullError, OddsStore

RESULTS = Path(__file__).parent / "results"
BOOKMAKERS = 3


async def _register(store: OddsStore, events: int) -> list[tuple[int, int]]:
    sport = await store.upsert_sport("Football", "football")
    tournament = await store.upsert_tournament(sport.id, "League")
    kickoff = datetime.now(UTC) + timedelta(days=2)
    stored = await store.upsert_events(
        [
            {
                "tournament_id": tournament.id,
                "home_team": f"Home {n}",
                "away_team": f"Away {n}",
                "kickoff": kickoff,
                "sportradar_id": f"sr:{n}",
            }
            for n in range(events)
        ]
    )
    bookmakers = [(await store.upsert_bookmaker(f"B{n}", f"b{n}")).id for n in range(BOOKMAKERS)]
    return [(event.id, bookmaker) for event in stored for bookmaker in bookmakers]


def _batch(pairs: list[tuple[int, int]], at: datetime) -> list[dict[str, Any]]:
    market = {"betpawa_market_id": "1", "betpawa_market_name": "1X2", "outcomes": [{"name": "1", "odds": 2.0}]}
    return [{"event_id": e, "bookmaker_id": b, "captured_at": at, "markets": [market]} for e, b in pairs]


async def _fits(stores: list[OddsStore], pairs: list[tuple[int, int]], size: int, at: datetime) -> bool:
    """Whether each store writes ``size`` pairs of its own at once (rolled back when any fails)."""
    batches = [_batch(pairs[n * size : (n + 1) * size], at) for n in range(len(stores))]
    results = await asyncio.gather(
        *(store.write_snapshots(batch) for store, batch in zip(stores, batches, strict=True)), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, LockTableFullError):
            raise result
    return not any(isinstance(result, LockTableFullError) for result in results)


async def _largest(stores: list[OddsStore], pairs: list[tuple[int, int]]) -> int:
    """The largest batch each of ``stores`` writes at once, by bisection (to 1%)."""
    low, high = 1, len(pairs) // len(stores)
    at = datetime.now(UTC) - timedelta(minutes=30)
    while high - low > max(1, low // 100):
        middle = (low + high) // 2
        at += timedelta(seconds=1)
        if await _fits(stores, pairs, middle, at):
            low = middle
        else:
            high = middle
    return low


async def measure(admin_dsn: str, events: int) -> dict[str, Any]:
    name = "bench_locks"
    dsn = await create_database(admin_dsn, name)
    try:
        async with (
            OddsStore.connect(dsn, min_size=1, max_size=1) as store,
            OddsStore.connect(dsn, min_size=1, max_size=1) as other,
        ):
            await store.migrate()
            await store.ensure_partitions(days_ahead=0)
            pairs = await _register(store, events)
            settings = {
                row["name"]: row["setting"]
                for row in await store.pool.fetch(
                    "select name, setting from pg_settings where name in "
                    "('max_locks_per_transaction', 'max_connections', 'max_prepared_transactions', 'server_version')"
                )
            }
            one = await _largest([store], pairs)
            two = await _largest([store, other], pairs)
    finally:
        await drop_database(admin_dsn, name)
    nominal = int(settings["max_locks_per_transaction"]) * (
        int(settings["max_connections"]) + int(settings["max_prepared_transactions"])
    )
    return {
        "settings": settings,
        "lock_table_slots": nominal,
        "pairs_registered": len(pairs),
        "largest_batch_one_writer": one,
        "largest_batch_each_of_two_writers": two,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.locks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", required=True, help="names the results file: locks-<label>.json")
    parser.add_argument("--dsn", help="a server to use (default: a temporary embedded PostgreSQL 18)")
    parser.add_argument("--pg15", action="store_true", help="Debian's PostgreSQL 15 instead of the embedded 18")
    parser.add_argument("--events", type=int, default=5000, help="events registered (pairs: 3 per event)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with pg15_server() if args.pg15 else server(args.dsn) as admin_dsn:
        results = asyncio.run(measure(admin_dsn, args.events))
    path = args.results / f"locks-{args.label}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
