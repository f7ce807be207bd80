"""``python -m bench.analytics [--server pg18 pg15] [--dsn DSN]``: reads across every event at 1 and 7 days.

The analytics reads that do not look at one market of one event, at the board's size: 1,300
upcoming events x 3 bookmakers x ~170 markets, scraped every 10 minutes for the last ``--hours``
(default 2) through ``write_snapshots`` (about 5.5% of markets change per cycle: ~36,000 changes
a cycle, ~220,000 an hour, production's rate). Timed end to end (a pooled connection, the query,
the records), with that history alone ("1 d") and again after six earlier UTC days were added
("7 d"):

* ``steam_moves``: a one-hour window, the last hour (``since`` = the last cycle - 1 h, 5%);
* ``margins``: one event (every market, every bookmaker);
* ``margins_market``: one market type (1X2) over every event;
* ``tournament_margins``: one tournament, every market;
* ``stale_odds``: every pair of every upcoming event;
* ``compare_event``: one event, BetPawa as home;
* with ``--baseline REV``, ``<read>_baseline`` for steam_moves, margins and tournament_margins: the
  same call with git revision ``REV``'s ``queries/analytics.sql`` (before/after as a ratio of one
  run).

The six earlier days are written in SQL, not through the feed, so that they take minutes, not
hours: per day, every pair snapshotted at midnight and ``--changes-per-day`` times more, and at
each of those moments every current market logged (the first: the day's checkpoint).
Production logs about 7 changes per market a day: the earlier days here are thinner than
production's. Reads that prune them do not notice; a read that scanned them would still grow
several-fold. The figure is each read's p50 at 7 days over its p50 at 1 day (flat: <= 1.3x),
with the load average at each read (the machine may be shared).
Results go to ``bench/results/analytics-<servers>.json``; the table is printed. ``--explain`` also stores
each read's ``EXPLAIN (ANALYZE, BUFFERS)`` at 7 days.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.databases import open_store
from bench.flat import table
from bench.server import drop_database, pg15_server, server, server_version
from oddsstore import OddsStore
from oddsstore.loader import load_directory, parse_file
from oddsstore.paths import sql_directory
from oddsstore.runner import Queries
from oddsstore.synthetic.feed import Feed, register, to_write

RESULTS = Path(__file__).parent / "results"
DATABASE = "bench_analytics"
ONE_X_TWO = "3743"  # oddsstore/synthetic/catalogue.py
READS = ("steam_moves", "margins", "margins_market", "tournament_margins", "stale_odds", "compare_event")
CHANGED = ("steam_moves", "margins", "margins_market", "tournament_margins")  # by issue 13's rewrite
# The earlier days, in SQL (bench data only): every current market as the day's checkpoint and
# again at $3 moments of the day. captured_at keeps each pair's rows apart (one per key and time).
EARLIER_DAY = """
insert into market_changes (event_id, bookmaker_id, captured_at, line, line_key, handicap_home, handicap_away,
                            betpawa_market_id, betpawa_market_name, handicap_type, outcomes, checkpoint)
select c.event_id, c.bookmaker_id, $1::timestamptz + n * ($2::interval / ($3 + 1)), c.line, c.line_key,
       c.handicap_home, c.handicap_away, c.betpawa_market_id, c.betpawa_market_name, c.handicap_type, c.outcomes,
       n = 0
from market_current as c
cross join generate_series(0, $3) as n
"""
# ... and the pairs' snapshots at those moments (the log's rows belong to snapshots).
EARLIER_SNAPSHOTS = """
insert into odds_snapshots (event_id, bookmaker_id, captured_at)
select ls.event_id, ls.bookmaker_id, $1::timestamptz + n * ($2::interval / ($3 + 1))
from latest_snapshots as ls
cross join generate_series(0, $3) as n
"""


def _log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


async def measure(
    admin_dsn: str,
    events: int,
    hours: int,
    changes_per_day: int,
    rounds: int,
    explain: bool,
    keep: bool = False,
    baseline: str | None = None,
) -> dict[str, Any]:
    """Write ``hours`` of cycles, time the reads; add six earlier days, time them again."""
    interval = timedelta(minutes=10)
    cycles_count = hours * 6 + 1
    start = datetime.now(UTC).replace(microsecond=0) - interval * (cycles_count - 1) - timedelta(minutes=1)
    feed = Feed(events=events, seed=13, start=start, interval=interval, horizon=timedelta(days=30))
    _log(f"registering {events} events")
    first = feed.cycle(0)
    store, ids = await open_store(admin_dsn, DATABASE, feed, first)
    try:
        written = 0
        began = time.perf_counter()
        for number in range(cycles_count):
            cycle = first if number == 0 else feed.cycle(number)
            await register(store, feed, cycle, ids)
            await store.write_snapshots(to_write(cycle, ids))
            written += 1
            _log(f"cycle {number} written ({time.perf_counter() - began:.0f} s)")
        last = feed.captured_at(cycles_count - 1)
        async with store.pool.acquire() as connection:
            await connection.execute("vacuum analyze")
            sizes = {
                "market_current_rows": await connection.fetchval("select count(*) from market_current"),
                "changes_last_hour": await connection.fetchval(
                    "select count(*) from market_changes where captured_at > $1 and not checkpoint",
                    last - timedelta(hours=1),
                ),
            }
            tournament = await connection.fetchval(
                "select tournament_id from events group by tournament_id order by count(*) desc, tournament_id limit 1"
            )
            event = await connection.fetchval(
                "select event_id from latest_snapshots group by event_id order by event_id limit 1"
            )
        home = ids.bookmakers["betpawa"]
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "steam_moves": lambda: store.steam_moves(last - timedelta(hours=1), 5, timedelta(hours=1)),
            "margins": lambda: store.margins(event_id=event),
            "margins_market": lambda: store.margins(market_id=ONE_X_TWO),
            "tournament_margins": lambda: store.tournament_margins(tournament_id=tournament),
            "stale_odds": lambda: store.stale_odds(timedelta(minutes=30)),
            "compare_event": lambda: store.compare_event(event, home),
        }
        if baseline is not None:
            before = _queries_of(baseline)
            calls.update({f"{name}_baseline": _with(store, before, calls[name]) for name in CHANGED})
        found = {"1d": await _reads(calls, rounds)}
        day = last.replace(hour=0, minute=0, second=0, microsecond=0)
        async with store.pool.acquire() as connection:
            await connection.execute(
                "select oddsstore_ensure_partitions($1::date, $2::date)",
                (day - timedelta(days=6)).date(),
                day.date(),
            )
            for back in range(6, 0, -1):
                began = time.perf_counter()
                for sql in (EARLIER_SNAPSHOTS, EARLIER_DAY):
                    await connection.execute(sql, day - timedelta(days=back), timedelta(days=1), changes_per_day)
                _log(f"day -{back} added ({time.perf_counter() - began:.0f} s)")
            await connection.execute("vacuum analyze")
            sizes["market_changes_rows_7d"] = await connection.fetchval("select count(*) from market_changes")
        found["7d"] = await _reads(calls, rounds)
        plans = await _explain(store, last, event, tournament, home) if explain else {}
    finally:
        await store.close()
        if not keep:
            await drop_database(admin_dsn, DATABASE)
    return {
        "server": await server_version(admin_dsn),
        **sizes,
        **found,
        "ratio_7d_over_1d": {name: found["7d"][name]["p50_ms"] / found["1d"][name]["p50_ms"] for name in found["1d"]},
        **(
            {}
            if baseline is None
            else {
                "baseline": baseline,
                "this_over_baseline": {
                    days: {
                        name: found[days][name]["p50_ms"] / found[days][f"{name}_baseline"]["p50_ms"]
                        for name in CHANGED
                    }
                    for days in found
                },
            }
        ),
        **({"plans_7d": plans} if plans else {}),
    }


def _queries_of(revision: str) -> Queries:
    """The named queries with git ``revision``'s queries/analytics.sql in place of this one's."""
    text = subprocess.run(
        ["git", "show", f"{revision}:queries/analytics.sql"], check=True, capture_output=True, text=True
    ).stdout
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "analytics.sql"
        path.write_text(text)
        old = {query.name: query for query in parse_file(path)}
    return Queries({**load_directory(sql_directory("queries")), **old})


def _with(store: OddsStore, queries: Queries, call: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
    """``call`` made with ``queries`` in place of the store's."""

    async def made() -> Any:
        current, store.queries = store.queries, queries
        try:
            return await call()
        finally:
            store.queries = current

    return made


async def _reads(calls: dict[str, Callable[[], Awaitable[Any]]], rounds: int) -> dict[str, Any]:
    """Each read ``rounds`` times after an untimed call; p50 and rows."""
    out: dict[str, Any] = {}
    for name in calls:
        times = []
        for round_number in range(rounds + 1):
            began = time.perf_counter()
            result = await calls[name]()
            if round_number:
                times.append(time.perf_counter() - began)
        out[name] = {"p50_ms": statistics.median(times) * 1000, "rows": len(result), "load_average": os.getloadavg()}
        _log(f"{name}: p50 {out[name]['p50_ms']:.1f} ms, {len(result)} rows")
    return out


async def _explain(store: OddsStore, last: datetime, event: int, tournament: int, home: int) -> dict[str, str]:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of each read's SQL with the bench's arguments."""
    arguments: dict[str, dict[str, Any]] = {
        "steam_moves": {"since": last - timedelta(hours=1), "min_drop_pct": 5.0, "window": timedelta(hours=1)},
        "margins": {"event_id": event, "tournament_id": None, "market_id": None, "since": None},
        "margins_market": {"event_id": None, "tournament_id": None, "market_id": ONE_X_TWO, "since": None},
        "tournament_margins": {"tournament_id": tournament, "market_id": None, "since": None},
        "stale_odds": {"max_age": timedelta(minutes=30)},
        "compare_event": {"event_id": event, "home_bookmaker_id": home},
    }
    queries = {query.name: query for query in store.queries}
    plans = {}
    async with store.pool.acquire() as connection:
        for name, values in arguments.items():
            query = queries[name.removesuffix("_market")]
            rows = await connection.fetch("explain (analyze, buffers) " + query.sql, *(values[p] for p in query.params))
            plans[name] = "\n".join(row[0] for row in rows)
    return plans


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.analytics", description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", nargs="+", choices=("pg18", "pg15"), default=["pg18", "pg15"])
    parser.add_argument("--dsn", help="a server of your own instead (its user must be allowed to create databases)")
    parser.add_argument("--events", type=int, default=1300)
    parser.add_argument("--hours", type=int, default=2)
    parser.add_argument("--changes-per-day", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--keep", action="store_true", help=f"leave database {DATABASE} (with --dsn) to look at")
    parser.add_argument(
        "--baseline", metavar="REV", help="also time the rewritten reads with this git revision's queries/analytics.sql"
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.analytics " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average": os.getloadavg()},
        "config": {
            "events": args.events,
            "bookmakers": 3,
            "hours": args.hours,
            "interval_min": 10,
            "changes_per_earlier_day": args.changes_per_day,
        },
        "servers": {},
    }
    targets = {"dsn": [args.dsn]} if args.dsn else {name: [None] for name in args.server}
    for name in targets:
        _log(f"server {name}")
        with pg15_server() if name == "pg15" else server(args.dsn) as admin_dsn:
            results["servers"][name] = asyncio.run(
                measure(
                    admin_dsn,
                    args.events,
                    args.hours,
                    args.changes_per_day,
                    args.rounds,
                    args.explain,
                    args.keep,
                    args.baseline,
                )
            )
    results["machine"]["load_average_at_end"] = os.getloadavg()
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"analytics-{'-'.join(targets)}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
