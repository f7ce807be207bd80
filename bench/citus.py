"""``python -m bench.citus``: the store on one PostgreSQL 15 node against a Citus 13 cluster (a
coordinator and two workers on loopback ports, Debian's PostgreSQL 15, 32 shards a table, the
layout of ``oddsstore distribute``), on the same machine, in one run; writes
``bench/results/citus.json``. Needs Citus installed (``../shared/citus/install.sh``).

* ``ingest``: cycles of the synthetic feed (``--events`` events x 3 bookmakers x ~170 markets)
  through :meth:`OddsStore.write_snapshots`, on the two targets in turn (so both see the same
  machine), the first cycle untimed: market observations per second, and the cluster's ratio to
  the single node.
* ``maintenance``: three writer processes, each writing its own third of the events cycle after
  cycle (new markets, changed markets, a late cycle), while a fourth process drops the expired
  days (three days back were written first) and creates the days ahead: every process's errors
  (a distributed deadlock would be one), and how long each step took.
* ``explain``: the plan of ``latest_odds`` for one event on the cluster (a router query).
* with ``--baseline REV``: the ingest also runs, interleaved cycle by cycle, on a third database
  of the single node whose store uses the write statements (``queries/odds.sql``) of git
  revision ``REV``: whether this revision's statements cost the single node anything (the
  ratio ``single / single_baseline``, same run).

All nodes of the cluster share the machine's cores with the client: the point is the shape (no
pathological distributed plan), not a speed-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.databases import observations
from bench.scales import TEN_MINUTES
from oddsstore import OddsStore
from oddsstore.loader import load_directory, parse_file
from oddsstore.paths import sql_directory
from oddsstore.runner import Queries
from oddsstore.synthetic.feed import Feed, register, to_write

# The cluster the tests start (tests/citus_cluster.py, on tests/infra.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import citus_cluster  # noqa: E402
import infra  # noqa: E402

RESULTS = Path(__file__).parent / "results"
DATABASE = "bench_citus"
WRITERS = 3
OLD_DAYS = 3  # days written before the maintenance run, which keeps RETENTION_DAYS of them
RETENTION_DAYS = 2
DAYS_AHEAD = 10


@contextmanager
def targets(directory: Path) -> Iterator[dict[str, citus_cluster.CitusServer | infra.Cluster]]:
    """The single node and the cluster, both PostgreSQL 15 with fsync off."""
    with ExitStack() as stack:
        single = stack.enter_context(infra.cluster(directory / "single", {"fsync": "off", "max_connections": "300"}))
        cluster = stack.enter_context(citus_cluster.cluster(directory / "citus", shard_count=32))
        yield {"single": single, "citus": cluster}


async def prepare(
    target: citus_cluster.CitusServer | infra.Cluster, feed: Feed, cycles: list[Any], database: str = DATABASE
) -> str:
    """A migrated database (distributed on the cluster) with the feed's reference data; its DSN."""
    if isinstance(target, citus_cluster.CitusServer):
        target.drop_database(database)
        target.create_database(database)
        dsn = target.dsn(database)
    else:
        import psycopg

        with psycopg.connect(target.dsn("postgres"), autocommit=True) as connection:
            connection.execute(f"drop database if exists {database}")
            connection.execute(f"create database {database}")
        dsn = target.dsn(database)
    async with OddsStore.connect(dsn, min_size=1, max_size=1) as store:
        await store.migrate()
        if isinstance(target, citus_cluster.CitusServer):
            await store.distribute()
        await register(store, feed, [snapshot for cycle in cycles for snapshot in cycle])
    return dsn


def baseline_queries(revision: str) -> Queries:
    """This checkout's queries, with ``queries/odds.sql`` of git ``revision`` instead."""
    text = subprocess.run(
        ["git", "show", f"{revision}:queries/odds.sql"], check=True, capture_output=True, text=True
    ).stdout
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "odds.sql"
        path.write_text(text)
        old = {query.name: query for query in parse_file(path)}
    return Queries({**load_directory(sql_directory("queries")), **old})


async def ingest(dsns: dict[str, str], feed: Feed, cycles: list[Any], baseline: str | None = None) -> dict[str, Any]:
    stores = {
        name: await OddsStore.connect(dsn, min_size=1, max_size=2)
        for name, dsn in dsns.items()
        if name != "single_baseline"
    }
    if "single_baseline" in dsns:
        stores["single_baseline"] = await OddsStore.connect(dsns["single_baseline"], min_size=1, max_size=2)
        stores["single_baseline"].queries = baseline_queries(baseline or "HEAD")
    try:
        ids = {}
        for name, store in stores.items():
            ids[name] = await register(store, feed, [snapshot for cycle in cycles for snapshot in cycle])
        seconds: dict[str, list[float]] = {name: [] for name in stores}
        for cycle in cycles:
            for name, store in stores.items():
                batch = to_write(cycle, ids[name])
                began = time.perf_counter()
                await store.write_snapshots(batch)
                seconds[name].append(time.perf_counter() - began)
    finally:
        for store in stores.values():
            await store.close()
    timed = sum(observations(cycle) for cycle in cycles[1:])
    found: dict[str, Any] = {
        name: {"observations": timed, "seconds": sum(times[1:]), "per_second": timed / sum(times[1:]),
               "cycle_seconds": times}
        for name, times in seconds.items()
    }  # fmt: skip
    found["citus_to_single"] = found["citus"]["per_second"] / found["single"]["per_second"]
    if "single_baseline" in found:
        found["baseline"] = baseline
        found["single_to_baseline"] = found["single"]["per_second"] / found["single_baseline"]["per_second"]
    return found


def _writer(dsn: str, batches: list[list[dict[str, Any]]], out: Any) -> None:
    out.put(asyncio.run(_write(dsn, batches)))


async def _write(dsn: str, batches: list[list[dict[str, Any]]]) -> dict[str, Any]:
    errors: list[str] = []
    began = time.perf_counter()
    async with OddsStore.connect(dsn, min_size=1, max_size=1) as store:
        for batch in batches:
            try:
                await store.write_snapshots(batch)
            except Exception as exc:  # counted and reported: the run goes on
                errors.append(f"{type(exc).__name__}: {exc}")
    return {"role": "writer", "batches": len(batches), "seconds": time.perf_counter() - began, "errors": errors}


def _maintainer(dsn: str, out: Any) -> None:
    out.put(asyncio.run(_maintain(dsn)))


async def _maintain(dsn: str) -> dict[str, Any]:
    errors: list[str] = []
    result: dict[str, Any] = {"role": "maintenance"}
    async with OddsStore.connect(dsn, min_size=1, max_size=1) as store:
        await asyncio.sleep(0.5)  # the writers are under way
        for step, call in (
            ("drop_expired", lambda: store.drop_expired_partitions(RETENTION_DAYS)),
            ("ensure_ahead", lambda: store.ensure_partitions(DAYS_AHEAD)),
        ):
            began = time.perf_counter()
            try:
                result[step] = len(await call())
            except Exception as exc:
                errors.append(f"{step}: {type(exc).__name__}: {exc}")
            result[f"{step}_seconds"] = time.perf_counter() - began
    result["errors"] = errors
    return result


async def old_days(dsn: str, feed: Feed, cycle: list[Any]) -> None:
    """Cycle 0 of the feed once a day for the OLD_DAYS days before today (created by the write)."""
    async with OddsStore.connect(dsn, min_size=1, max_size=1) as store:
        ids = await register(store, feed, cycle)
        for days in range(OLD_DAYS + 1, 1, -1):
            batch = to_write(cycle, ids)
            for snapshot in batch:
                snapshot["captured_at"] -= timedelta(days=days)
            await store.write_snapshots(batch)


async def writer_batches(dsn: str, feed: Feed, cycles: list[Any]) -> list[list[list[dict[str, Any]]]]:
    """Each writer's batches: its own third of the events, every cycle in order, then cycle 1
    again one minute earlier (late: between two stored snapshots)."""
    async with OddsStore.connect(dsn, min_size=1, max_size=1) as store:
        ids = await register(store, feed, [snapshot for cycle in cycles for snapshot in cycle])
    batches: list[list[list[dict[str, Any]]]] = [[] for _ in range(WRITERS)]
    for cycle in cycles:
        for number in range(WRITERS):
            batches[number].append(to_write([s for i, s in enumerate(cycle) if i % WRITERS == number], ids))
    for number in range(WRITERS):
        late = to_write([s for i, s in enumerate(cycles[1]) if i % WRITERS == number], ids)
        for snapshot in late:
            snapshot["captured_at"] -= timedelta(minutes=1)
        batches[number].append(late)
    return batches


def maintenance(dsn: str, feed: Feed, cycles: list[Any]) -> dict[str, Any]:
    asyncio.run(old_days(dsn, feed, cycles[0]))
    batches = asyncio.run(writer_batches(dsn, feed, cycles))
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    processes = [context.Process(target=_writer, args=(dsn, batches[n], out)) for n in range(WRITERS)]
    processes.append(context.Process(target=_maintainer, args=(dsn, out)))
    began = time.perf_counter()
    for process in processes:
        process.start()
    reports = [out.get(timeout=1800) for _ in processes]
    for process in processes:
        process.join()
    return {
        "writers": WRITERS,
        "seconds": time.perf_counter() - began,
        "processes": reports,
        "errors": sum(len(report["errors"]) for report in reports),
    }


async def explain(dsn: str) -> str:
    async with OddsStore.connect(dsn, min_size=1, max_size=1) as store:
        event_id = await store.pool.fetchval("select min(event_id) from latest_snapshots")
        rows = await store.pool.fetch("explain " + store.queries._queries["latest_odds"].sql, event_id)
    return "\n".join(row[0] for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.citus", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100, help="events per cycle (default 100)")
    parser.add_argument("--cycles", type=int, default=5, help="ingest cycles, the first untimed (default 5)")
    parser.add_argument("--baseline", metavar="REV", help="also ingest on the single node with REV's queries/odds.sql")
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"where to write citus.json (default {RESULTS})")
    args = parser.parse_args(argv)
    if (missing := citus_cluster.missing_citus()) is not None:
        print(missing, file=sys.stderr)
        return 1
    load = os.getloadavg()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=now.minute % 10) - (args.cycles + 1) * TEN_MINUTES
    results: dict[str, Any] = {"events": args.events, "bookmakers": 3, "markets_per_snapshot": 170}
    with tempfile.TemporaryDirectory(prefix="oddsstore-bench-citus-") as workdir:
        Path(workdir).chmod(0o755)
        with targets(Path(workdir)) as found:
            feed = Feed(events=args.events, bookmakers=3, seed=2024, start=start, markets_per_snapshot=170)
            cycles = [feed.cycle(index) for index in range(args.cycles)]
            dsns = {name: asyncio.run(prepare(target, feed, cycles)) for name, target in found.items()}
            if args.baseline:
                dsns["single_baseline"] = asyncio.run(prepare(found["single"], feed, cycles, f"{DATABASE}_baseline"))
            results["ingest"] = asyncio.run(ingest(dsns, feed, cycles, args.baseline))
            print(f"ingest: {results['ingest']['citus_to_single']:.2f}x the single node", file=sys.stderr)
            if args.baseline:
                print(f"single node: {results['ingest']['single_to_baseline']:.2f}x {args.baseline}'s", file=sys.stderr)
            results["explain_latest_odds"] = asyncio.run(explain(dsns["citus"]))
            results["maintenance"] = {}
            for name, target in found.items():
                # A fresh database, the same feed: old days, then writers and maintenance at once.
                feed = Feed(events=args.events, bookmakers=3, seed=2024, start=start, markets_per_snapshot=170)
                cycles = [feed.cycle(index) for index in range(args.cycles)]
                dsn = asyncio.run(prepare(target, feed, cycles))
                results["maintenance"][name] = maintenance(dsn, feed, cycles)
                print(f"maintenance on {name}: {results['maintenance'][name]['errors']} errors", file=sys.stderr)
    results["machine"] = {"cpus": os.cpu_count(), "load_average_at_start": load, "load_average_at_end": os.getloadavg()}
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / "citus.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "explain_latest_odds"}, indent=2)[:4000])
    print(results["explain_latest_odds"])
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
