"""``python -m bench.flat [--server pg18 pg15] [--dsn DSN]``: are the history reads flat in history?

A few events scraped every 10 minutes by 3 bookmakers (60 markets each: the core markets and
more) are written through ``write_snapshots``, one UTC day after another. After the first day
and again after the seventh, the reads a user makes of the most recent day are timed, end to
end (a pooled connection, the query, the records), on the events live throughout:

* ``odds_history``: over/under (every line, every bookmaker) since the start of the last day;
* ``odds_history_page``: its first page of 500 rows, and a page from a cursor at the last day;
* ``odds_at``: every market of the event six hours before the last cycle;
* ``line_movement_page``: 500 changes of over/under from a cursor at the start of the last day;
* ``compare_event``: the latest prices side by side (BetPawa as home);
* ``line_movement`` (every change ever logged; it grows with the history by definition: for
  reference, not a flatness figure).

The figure is each read's p50 with 7 days stored over its p50 with 1 day (target <= 1.3x).
Results go to ``bench/results/flat.json``; the table is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.databases import open_store
from bench.server import drop_database, pg15_server, server, server_version
from oddsstore import HistoryCursor, OddsStore
from oddsstore.synthetic.feed import Feed, to_write

RESULTS = Path(__file__).parent / "results"
DATABASE = "bench_flat"
TOTALS = "3752"  # over/under: several lines per bookmaker (oddsstore/synthetic/catalogue.py)
CYCLES_PER_DAY = 144
READS = ("odds_history", "odds_history_page", "odds_history_page_later", "odds_at", "line_movement_page",
         "compare_event", "line_movement")  # fmt: skip


def _log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


async def measure(admin_dsn: str, events: int, rounds: int, cycles_per_day: int = CYCLES_PER_DAY) -> dict[str, Any]:
    """Write 1 day, time the reads; write 6 more days, time them again."""
    first_day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=7)
    # Kickoffs up to 30 days after the start: most events live through the whole week (those
    # that do are the ones read).
    feed = Feed(
        events=events,
        seed=7,
        start=first_day,
        interval=timedelta(days=1) / cycles_per_day,
        markets_per_snapshot=60,
        horizon=timedelta(days=30),
    )
    cycles = [feed.cycle(n) for n in range(7 * cycles_per_day)]
    store, ids = await open_store(admin_dsn, DATABASE, feed, [s for cycle in cycles for s in cycle])
    try:
        live = sorted(set.intersection(*({ids.events[s.event_key] for s in c} for c in (cycles[0], cycles[-1]))))
        home = ids.bookmakers["betpawa"]
        found: dict[str, Any] = {}
        loaded = 0
        for days in (1, 7):
            began = time.perf_counter()
            for cycle in cycles[loaded : days * cycles_per_day]:
                await store.write_snapshots(to_write(cycle, ids))
            loaded = days * cycles_per_day
            _log(f"{days} day(s) written in {time.perf_counter() - began:.0f} s; reading")
            async with store.pool.acquire() as connection:
                await connection.execute("vacuum analyze")
            found[f"{days}d"] = await _reads(store, live, home, feed.captured_at(loaded - 1), rounds)
    finally:
        await store.close()
        await drop_database(admin_dsn, DATABASE)
    return {
        "server": await server_version(admin_dsn),
        "events_read": len(live),
        **found,
        "ratio_7d_over_1d": {name: found["7d"][name]["p50_ms"] / found["1d"][name]["p50_ms"] for name in READS},
    }


async def _reads(store: OddsStore, events: list[int], home: int, last: datetime, rounds: int) -> dict[str, Any]:
    """Each read on each live event, ``rounds`` times after an untimed round."""
    day = last.replace(hour=0, minute=0, second=0, microsecond=0)
    at_day = HistoryCursor(captured_at=day, bookmaker_id=0, line=None)
    calls: dict[str, Callable[[int], Awaitable[Any]]] = {
        "odds_history": lambda e: store.odds_history(e, TOTALS, since=day),
        "odds_history_page": lambda e: store.odds_history_page(e, TOTALS, since=day, limit=500),
        "odds_history_page_later": lambda e: store.odds_history_page(e, TOTALS, limit=500, after=at_day),
        "odds_at": lambda e: store.odds_at(e, last - timedelta(hours=6)),
        "line_movement_page": lambda e: store.line_movement_page(e, TOTALS, limit=500, after=at_day),
        "compare_event": lambda e: store.compare_event(e, home),
        "line_movement": lambda e: store.line_movement(e, TOTALS),
    }
    times: dict[str, list[float]] = {name: [] for name in READS}
    rows: dict[str, list[int]] = {name: [] for name in READS}
    for round_number in range(rounds + 1):
        for event in events:
            for name in READS:
                began = time.perf_counter()
                result = await calls[name](event)
                seconds = time.perf_counter() - began
                if round_number:
                    times[name].append(seconds)
                    rows[name].append(len(getattr(result, "rows", getattr(result, "changes", result))))
    return {
        name: {"p50_ms": statistics.median(times[name]) * 1000, "rows_per_call": statistics.mean(rows[name])}
        for name in READS
    }


def table(results: dict[str, Any]) -> str:
    """The figures as a Markdown table: per server, p50 at 1 and 7 days and the ratio (each read
    the first server timed, in its order; bench.analytics prints its results with it too)."""
    names = list(results["servers"])
    out = [
        "| read | " + " | ".join(f"{n}: 1 d ms | {n}: 7 d ms | {n}: 7 d / 1 d" for n in names) + " |",
        "|---|" + "---|---|---|" * len(names),
    ]
    for read in results["servers"][names[0]]["1d"]:
        cells = []
        for n in names:
            r = results["servers"][n]
            cells += [
                f"{r['1d'][read]['p50_ms']:.1f}",
                f"{r['7d'][read]['p50_ms']:.1f}",
                f"{r['ratio_7d_over_1d'][read]:.2f}",
            ]
        out.append(f"| {read} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flat", description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", nargs="+", choices=("pg18", "pg15"), default=["pg18", "pg15"])
    parser.add_argument("--dsn", help="a server of your own instead (its user must be allowed to create databases)")
    parser.add_argument("--events", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.flat " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average": os.getloadavg()},
        "config": {"events": args.events, "bookmakers": 3, "markets_per_snapshot": 60, "interval_min": 10},
        "servers": {},
    }
    targets = {"dsn": [args.dsn]} if args.dsn else {name: [None] for name in args.server}
    for name in targets:
        _log(f"server {name}")
        with pg15_server() if name == "pg15" else server(args.dsn) as admin_dsn:
            results["servers"][name] = asyncio.run(measure(admin_dsn, args.events, args.rounds))
    results["machine"]["load_average_at_end"] = os.getloadavg()
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / "flat.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
