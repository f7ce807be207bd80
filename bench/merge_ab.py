"""The write path's merge against a git revision's, statement by statement, in one run.

    python -m bench.merge_ab --baseline 350a867            # harness scale, PostgreSQL 18 embedded
    python -m bench.merge_ab --baseline 350a867 --label X  # also bench/results/merge-ab-X.json

Both variants write the same feed (60 events x 3 bookmakers x 150 markets, cycle 0 untimed) on
databases of their own on one server, alternately (this, baseline, this, baseline, ...; a first
round warms the server and is not kept): with a
new store per cycle (the pairs' fingerprints loaded from the database; the issue 11 path that
merges the most rows per cycle) and as a backfill (cycles 1.. in one call). The baseline is
``queries/odds.sql`` of ``--baseline`` (the schema must be this one's), every other query this
checkout's. Per path: the write's wall time, and the time of each statement of ``merge_stage``
(in a second pass where the statements are sent one by one, so that each is timed; step 1's time
also holds the Python work the write does while its merge runs). Medians over the rounds; the
ratios this / baseline compare within the run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import sqlparse

from bench.databases import observations, open_store
from bench.server import database_dsn, drop_database, server, server_version
from oddsstore import OddsStore
from oddsstore.loader import Query, load_directory, parse_file
from oddsstore.paths import sql_directory
from oddsstore.runner import Queries
from oddsstore.synthetic.feed import Feed, FeedSnapshot, to_write

RESULTS = Path(__file__).parent / "results"
PATHS = ("new_store_per_cycle", "backfill")


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def variants(baseline: str) -> dict[str, dict[str, Query]]:
    """This checkout's queries, and the same with ``baseline``'s queries/odds.sql."""
    this = load_directory(sql_directory("queries"))
    text = subprocess.run(
        ["git", "show", f"{baseline}:queries/odds.sql"], check=True, capture_output=True, text=True
    ).stdout
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "odds.sql"
        path.write_text(text)
        old = {query.name: query for query in parse_file(path)}
    return {"this": this, "baseline": {**this, **old}}


def statement_labels(statements: list[str]) -> list[str]:
    """The step of each merge_stage statement: its leading ``-- N.`` comment, else the step of
    the statement before it (the first is step 1, whose comment is the query's doc)."""
    labels: list[str] = []
    current = "step 1"
    for statement in statements:
        for line in statement.splitlines():
            words = line.strip().removeprefix("--").split()
            if line.strip().startswith("--") and words and words[0].rstrip(".").isdigit():
                current = f"step {words[0].rstrip('.')}"
                break
        labels.append(current)
    return labels


def profiled(queries: dict[str, Query], seconds: dict[str, float]) -> Queries:
    """``queries`` with merge_stage sent statement by statement, each one's time added to
    ``seconds`` under its label (statements of one step add up)."""
    statements = [s for s in sqlparse.split(queries["merge_stage"].sql) if s.strip()]
    labels = statement_labels(statements)

    async def merge_stage(connection: asyncpg.Connection) -> None:
        for statement, label in zip(statements, labels, strict=True):
            began = time.perf_counter()
            await connection.execute(statement)
            seconds[label] = seconds.get(label, 0.0) + time.perf_counter() - began

    class Profiled(Queries):
        def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
            return merge_stage if name == "merge_stage" else super().__getattr__(name)

    return Profiled(queries)


async def run_path(
    admin_dsn: str,
    path: str,
    name: str,
    queries: Queries,
    feed: Feed,
    batches: list[list[FeedSnapshot]],
    statement_seconds: dict[str, float] | None = None,
) -> float:
    """Seconds the timed writes of ``path`` took, on a new database ``name``
    (``statement_seconds``: the profiled statements' times, emptied after the untimed cycle 0)."""
    everything = [snapshot for cycle in batches for snapshot in cycle]
    store, ids = await open_store(admin_dsn, name, feed, everything)
    total = 0.0
    try:
        store.queries = queries
        await store.write_snapshots(to_write(batches[0], ids))
        if statement_seconds is not None:
            statement_seconds.clear()
        if path == "backfill":
            backlog = [snapshot for cycle in batches[1:] for snapshot in to_write(cycle, ids)]
            gc.collect()
            began = time.perf_counter()
            await store.write_snapshots(backlog)
            total = time.perf_counter() - began
        else:
            dsn = database_dsn(admin_dsn, name)
            for cycle in batches[1:]:
                async with OddsStore.connect(dsn, min_size=1, max_size=4) as fresh:
                    fresh.queries = queries
                    gc.collect()
                    began = time.perf_counter()
                    await fresh.write_snapshots(to_write(cycle, ids))
                    total += time.perf_counter() - began
    finally:
        await store.close()
        await drop_database(admin_dsn, name)
    return total


async def measure(admin_dsn: str, baseline: str, events: int, markets: int, cycles: int, rounds: int) -> dict[str, Any]:
    start = datetime.now(UTC).replace(second=0, microsecond=0) - cycles * timedelta(minutes=10)
    feed = Feed(
        events=events,
        bookmakers=3,
        seed=2024,
        start=start,
        interval=timedelta(minutes=10),
        markets_per_snapshot=markets,
    )
    batches = [feed.cycle(index) for index in range(cycles)]
    sources = variants(baseline)
    load_start = os.getloadavg()
    wall: dict[str, dict[str, list[float]]] = {v: {p: [] for p in PATHS} for v in sources}
    steps: dict[str, dict[str, list[dict[str, float]]]] = {v: {p: [] for p in PATHS} for v in sources}
    for round_number in range(rounds + 1):  # round 0 warms the server and is not kept
        for variant, queries in sources.items():
            for path in PATHS:
                _log(f"round {round_number}: {variant} {path}")
                name = f"bench_merge_ab_{variant}_{path}"
                took = await run_path(admin_dsn, path, name, Queries(queries), feed, batches)
                seconds: dict[str, float] = {}
                await run_path(admin_dsn, path, name, profiled(queries, seconds), feed, batches, seconds)
                if round_number:
                    wall[variant][path].append(took)
                    steps[variant][path].append(seconds)
    median = {v: {p: statistics.median(found) for p, found in paths.items()} for v, paths in wall.items()}
    step_medians = {
        v: {p: {label: statistics.median(r[label] for r in runs) for label in runs[0]} for p, runs in paths.items()}
        for v, paths in steps.items()
    }
    return {
        "server": await server_version(admin_dsn),
        "baseline": baseline,
        "events": events,
        "markets": markets,
        "cycles_timed": cycles - 1,
        "observations_timed": sum(observations(cycle) for cycle in batches[1:]),
        "rounds": rounds,
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "seconds": wall,
        "median_seconds": median,
        "this_over_baseline": {p: median["this"][p] / median["baseline"][p] for p in PATHS},
        "merge_statement_seconds": step_medians,
    }


def report(result: dict[str, Any]) -> str:
    lines = [f"this against {result['baseline']}'s queries/odds.sql, {result['server']}, {result['rounds']} rounds"]
    for path in PATHS:
        this, base = result["median_seconds"]["this"][path], result["median_seconds"]["baseline"][path]
        lines.append(f"{path}: {this:.3f} s against {base:.3f} s, {this / base:.2f}x")
        statements = result["merge_statement_seconds"]
        for label, seconds in statements["this"][path].items():
            other = statements["baseline"][path].get(label, float("nan"))
            lines.append(f"  {label:<12} {seconds * 1000:8.1f} ms against {other * 1000:8.1f} ms")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--baseline", required=True, metavar="REV", help="git revision of the queries/odds.sql to compare"
    )
    parser.add_argument("--events", type=int, default=60)
    parser.add_argument("--markets", type=int, default=150)
    parser.add_argument("--cycles", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dsn", help="a server to use (default: a temporary embedded PostgreSQL 18)")
    parser.add_argument("--label", help="write bench/results/merge-ab-LABEL.json")
    args = parser.parse_args(argv)
    with server(args.dsn) as admin_dsn:
        result = asyncio.run(measure(admin_dsn, args.baseline, args.events, args.markets, args.cycles, args.rounds))
    if args.label:
        (RESULTS / f"merge-ab-{args.label}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
