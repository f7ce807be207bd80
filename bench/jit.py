"""``python -m bench.jit [--dsn DSN] [--events N] [--cycles N]``: what JIT compilation costs the
analytics, in one run on one database.

Loads ``--cycles`` scrape cycles of a synthetic feed (``--events`` events x 3 bookmakers x 170
markets) through ``write_snapshots``. Then, per analytic (the named query, with the server's
default settings): ``EXPLAIN (ANALYZE)`` gives the planner's total cost, whether JIT compiled
it (and with which options), the milliseconds it spent compiling and the execution time; their
ratio is the figure that matters, and it does not depend on how busy the machine is. Then each
analytic is timed through the API ``--repeats`` times, alternating a store with the server's
settings and one connecting with ``jit = off``; and the outcomes of every current market are
expanded with ``jsonb_to_recordset`` and with ``oddsstore_outcomes``, alternately (what the
wrapper costs per call). Writes ``bench/results/jit-pg<major>.json`` and
prints a table. Debian's PostgreSQL ships JIT (``pg_jit_available()``); the embedded
PostgreSQL 18 does not, so there the JIT columns stay empty.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.server import create_database, drop_database, server, server_version
from oddsstore import OddsStore
from oddsstore.synthetic.feed import Feed, register, to_write

RESULTS = Path(__file__).parent / "results"
DATABASE = "bench_jit"
INTERVAL = timedelta(minutes=10)


async def measure(admin_dsn: str, events: int, cycles: int, repeats: int) -> dict[str, Any]:
    """Load the feed, time every analytic under both settings; return the figures."""
    dsn = await create_database(admin_dsn, DATABASE)
    try:
        async with OddsStore.connect(dsn, min_size=1, max_size=2) as store:
            await store.migrate()
            feed = Feed(events=events, start=datetime.now(UTC) - cycles * INTERVAL, interval=INTERVAL)
            began = time.perf_counter()
            ids = None
            for index in range(cycles):
                snapshots = feed.cycle(index)
                ids = await register(store, feed, snapshots, ids)
                await store.write_snapshots(to_write(snapshots, ids))
            loaded_s = time.perf_counter() - began
            await store.pool.execute("analyze")
            jit_available = await store.pool.fetchval("select pg_jit_available()")
            settings = dict(await store.pool.fetch("select name, setting from pg_settings where name like 'jit%'"))
            event_ids = sorted(ids.events.values()) if ids is not None else []
            home = min(ids.bookmakers.values()) if ids is not None else 0
        calls: dict[str, Callable[[OddsStore], Awaitable[Any]]] = {
            "compare_event": lambda s: s.compare_event(event_ids[0], home),
            "margins": lambda s: s.margins(),
            "tournament_margins": lambda s: s.tournament_margins(),
            "opening_closing": lambda s: s.opening_closing(event_ids[0]),
            "steam_moves": lambda s: s.steam_moves(feed.start, 5, timedelta(hours=1)),
            "arbitrage": lambda s: s.arbitrage(timedelta(hours=1)),
        }
        figures: dict[str, Any] = {}
        arguments: dict[str, dict[str, Any]] = {
            "compare_event": {"event_id": event_ids[0], "home_bookmaker_id": home},
            "margins": {"event_id": None, "tournament_id": None, "since": None, "market_id": None},
            "tournament_margins": {"tournament_id": None, "since": None, "market_id": None},
            "opening_closing": {"event_id": event_ids[0]},
            "steam_moves": {"since": feed.start, "min_drop_pct": 5.0, "window": timedelta(hours=1)},
            "arbitrage": {"max_age": timedelta(hours=1)},
        }
        async with OddsStore.connect(dsn, min_size=1, max_size=1) as default:
            queries = {query.name: query for query in default.queries}
            for name, params in arguments.items():
                query = queries[name]
                # The store's connections decode json (oddsstore/jsonb.py).
                plan = (
                    await default.pool.fetchval(
                        "explain (analyze, format json) " + query.sql, *(params[p] for p in query.params)
                    )
                )[0]
                jit = plan.get("JIT", {})
                figures[name] = {
                    "cost": plan["Plan"]["Total Cost"],
                    "estimated_rows": plan["Plan"]["Plan Rows"],
                    "actual_rows": plan["Plan"]["Actual Rows"],
                    "jit_functions": jit.get("Functions", 0),
                    "jit_options": jit.get("Options", {}),
                    "jit_ms": jit.get("Timing", {}).get("Total", 0.0),
                    "execution_ms": plan["Execution Time"],
                }
            # What the wrapper costs against the built-in it wraps, both over every current
            # market in one statement each, JIT off, alternating: the per-call overhead of a
            # set-returning SQL function that is not inlined.
            expand = {
                "jsonb_to_recordset": "select count(*) from market_current as c cross join lateral "
                "jsonb_to_recordset(c.outcomes) as o (name text, odds double precision, is_active boolean)",
                "oddsstore_outcomes": "select count(*) from market_current as c cross join lateral "
                "oddsstore_outcomes(c.outcomes) as o",
            }
            spent: dict[str, list[float]] = {name: [] for name in expand}
            async with default.pool.acquire() as connection:
                await connection.execute("set jit = off")
                for _ in range(repeats + 1):
                    for name, sql in expand.items():
                        began = time.perf_counter()
                        await connection.fetchval(sql)
                        spent[name].append(time.perf_counter() - began)
                await connection.execute("reset jit")
            wrapper = {name: statistics.median(values[1:]) * 1000 for name, values in spent.items()}
        async with (
            OddsStore.connect(dsn, min_size=1, max_size=1) as default,
            OddsStore.connect(dsn, min_size=1, max_size=1, server_settings={"jit": "off"}) as off,
        ):
            for name, call in calls.items():
                times: dict[str, list[float]] = {"default": [], "jit_off": []}
                rows = 0
                for round_number in range(repeats + 1):
                    for setting, store in (("default", default), ("jit_off", off)):
                        began = time.perf_counter()
                        rows = len(await call(store))
                        if round_number:
                            times[setting].append(time.perf_counter() - began)
                p50 = {setting: statistics.median(values) for setting, values in times.items()}
                figures[name] |= {
                    "rows": rows,
                    "default_p50_ms": p50["default"] * 1000,
                    "jit_off_p50_ms": p50["jit_off"] * 1000,
                    "ratio": p50["default"] / p50["jit_off"],
                }
        return {
            "server": {
                "version": await server_version(admin_dsn),
                "jit_available": jit_available,
                "settings": settings,
            },
            "config": {"events": events, "bookmakers": 3, "cycles": cycles, "repeats": repeats},
            "load_s": loaded_s,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "analytics": figures,
            "outcomes_expansion_p50_ms": wrapper,
        }
    finally:
        await drop_database(admin_dsn, DATABASE)


def table(results: dict[str, Any]) -> str:
    """The figures as a Markdown table."""
    lines = [
        f"{results['server']['version'].split(' on ')[0]}, JIT available: {results['server']['jit_available']}, "
        f"{results['config']['events']} events x 3 bookmakers, {results['config']['cycles']} cycles",
        "",
        "| query | rows | planner cost | JIT functions | JIT compile / execution "
        "| p50 default | p50 jit = off | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, f in results["analytics"].items():
        lines.append(
            f"| {name} | {f['rows']} | {f['cost']:,.0f} | {f['jit_functions']} | "
            f"{f['jit_ms']:,.0f} / {f['execution_ms']:,.0f} ms | {f['default_p50_ms']:,.0f} ms | "
            f"{f['jit_off_p50_ms']:,.0f} ms | {f['ratio']:.2f}x |"
        )
    expansion = results["outcomes_expansion_p50_ms"]
    lines += [
        "",
        "outcomes of every current market as rows, p50 (jit off): "
        + ", ".join(f"{name} {ms:,.0f} ms" for name, ms in expansion.items())
        + f" ({expansion['oddsstore_outcomes'] / expansion['jsonb_to_recordset']:.2f}x)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.jit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", help="a server to use (default: a temporary embedded PostgreSQL 18)")
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--cycles", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"where to write results (default {RESULTS})")
    args = parser.parse_args(argv)
    with server(args.dsn) as admin_dsn:
        results = asyncio.run(measure(admin_dsn, args.events, args.cycles, args.repeats))
    major = results["server"]["version"].split()[1].split(".")[0]
    path = args.results / f"jit-pg{major}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
