"""The write path's merge against a git revision's, statement by statement, in one run.

    python -m bench.merge_ab --baseline 350a867                    # harness scale, embedded PostgreSQL 18
    python -m bench.merge_ab --baseline 350a867 --baseline e282405 --label X   # + results/merge-ab-X.json

Both variants write the same feed (60 events x 3 bookmakers x 150 markets, cycle 0 untimed) on
databases of their own on one server, alternately (this, each baseline, this, ...; a first
round warms the server and is not kept): with a
new store per cycle (the pairs' fingerprints loaded from the database; the issue 11 path that
merges the most rows per cycle) and as a backfill (cycles 1.. in one call). Each baseline is
``queries/odds.sql`` of a ``--baseline`` revision (the schema must be this one's), every other query this
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


def variants(baselines: list[str]) -> dict[str, dict[str, Query]]:
    """This checkout's queries ("this"), and per revision the same with its queries/odds.sql."""
    this = load_directory(sql_directory("queries"))
    found = {"this": this}
    for revision in baselines:
        text = subprocess.run(
            ["git", "show", f"{revision}:queries/odds.sql"], check=True, capture_output=True, text=True
        ).stdout
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "odds.sql"
            path.write_text(text)
            found[revision] = {**this, **{query.name: query for query in parse_file(path)}}
    return found


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


async def measure(
    admin_dsn: str,
    baselines: list[str],
    events: int,
    markets: int,
    cycles: int,
    rounds: int,
    warm_up: bool = True,
) -> dict[str, Any]:
    """Wall and statement times of each variant and path over ``rounds`` (after a round that
    warms the server and is not kept, with ``warm_up``)."""
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
    sources = variants(baselines)
    load_start = os.getloadavg()
    wall: dict[str, dict[str, list[float]]] = {v: {p: [] for p in PATHS} for v in sources}
    steps: dict[str, dict[str, list[dict[str, float]]]] = {v: {p: [] for p in PATHS} for v in sources}
    first = 0 if warm_up else 1
    for round_number in range(first, rounds + 1):  # round 0 warms the server and is not kept
        for number, (variant, queries) in enumerate(sources.items()):
            for path in PATHS:
                _log(f"round {round_number}: {variant} {path}")
                name = f"bench_merge_ab_{number}_{path}"
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
        "baselines": baselines,
        "events": events,
        "markets": markets,
        "cycles_timed": cycles - 1,
        "observations_timed": sum(observations(cycle) for cycle in batches[1:]),
        "rounds": rounds,
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "seconds": wall,
        "median_seconds": median,
        "this_over_baseline": {b: {p: median["this"][p] / median[b][p] for p in PATHS} for b in baselines},
        "merge_statement_seconds": step_medians,
    }


def report(result: dict[str, Any]) -> str:
    """Per path: each variant's median wall time and this / it, then each step's median ms."""
    names = ["this", *result["baselines"]]
    lines = [
        f"this checkout's queries/odds.sql against {', '.join(result['baselines'])}'s, {result['server']}, "
        f"{result['rounds']} rounds, load average {result['load_average']['start'][0]:.1f} -> "
        f"{result['load_average']['end'][0]:.1f}"
    ]
    for path in PATHS:
        medians = result["median_seconds"]
        lines.append(
            f"{path}: "
            + ", ".join(f"{name} {medians[name][path]:.3f} s" for name in names)
            + "; this / "
            + ", ".join(f"{b} {result['this_over_baseline'][b][path]:.2f}x" for b in result["baselines"])
        )
        statements = result["merge_statement_seconds"]
        lines.append("  ms:          " + "".join(f"{name:>10}" for name in names))
        for label in statements["this"][path]:
            times = "".join(f"{statements[name][path].get(label, float('nan')) * 1000:10.1f}" for name in names)
            lines.append(f"  {label:<12} {times}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--baseline",
        required=True,
        action="append",
        metavar="REV",
        help="git revision of a queries/odds.sql to compare (repeat for several)",
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
