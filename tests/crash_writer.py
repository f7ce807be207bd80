"""A writer process for tests/test_crash.py to kill: writes one deterministic batch and exits.

    python tests/crash_writer.py DSN --events 1,2,3 --bookmakers 1,2 --at 2026-01-01T12:00:00+00:00 \\
        --version 1 --markets 170 [--steps 2] [--application-name NAME] [--server-setting KEY=VALUE]

Its connections carry ``application_name`` (default ``oddsstore_crash_writer``) so the test can
find its backend in pg_stat_activity and pick the moment to kill it. On success it prints the
write's result as one JSON line. :func:`build_batch` is imported by the test too, to know what
the batch holds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

APPLICATION_NAME = "oddsstore_crash_writer"


def build_batch(
    events: list[int], bookmakers: list[int], at: datetime, *, version: int, markets: int, steps: int = 1
) -> list[dict[str, Any]]:
    """Snapshots of every event at every bookmaker, ``steps`` of them per pair one minute apart
    from ``at``, each with ``markets`` markets. A third of the markets' prices depend on
    ``version`` and the step, so two versions differ in a third of their markets."""
    batch = []
    for step in range(steps):
        for event in events:
            for bookmaker in bookmakers:
                batch.append(
                    {
                        "event_id": event,
                        "bookmaker_id": bookmaker,
                        "captured_at": at + timedelta(minutes=step),
                        "markets": [_market(n, event, bookmaker, version + step) for n in range(markets)],
                    }
                )
    return batch


def _market(n: int, event: int, bookmaker: int, version: int) -> dict[str, Any]:
    moving = version if n % 3 == 0 else 0
    base = 1.2 + ((n * 7 + event * 3 + bookmaker + moving * 11) % 90) / 20
    return {
        "betpawa_market_id": str(5000 + n // 2),
        "betpawa_market_name": f"Market {5000 + n // 2}",
        "line": None if n % 2 == 0 else 2.5,
        "outcomes": [
            {"name": "Over", "odds": round(base, 2), "is_active": True},
            {"name": "Under", "odds": round(base + 0.35, 2), "is_active": moving % 5 != 4},
        ],
    }


def _ids(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dsn")
    parser.add_argument("--events", type=_ids, required=True)
    parser.add_argument("--bookmakers", type=_ids, required=True)
    parser.add_argument("--at", type=datetime.fromisoformat, required=True)
    parser.add_argument("--version", type=int, default=1)
    parser.add_argument("--markets", type=int, default=170)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--application-name", default=APPLICATION_NAME)
    parser.add_argument("--server-setting", action="append", default=[], help="KEY=VALUE for the session")
    args = parser.parse_args(argv)

    # Run from a checkout: import the oddsstore next to tests/.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from oddsstore import OddsStore

    settings = dict(item.split("=", 1) for item in args.server_setting)
    settings["application_name"] = args.application_name
    batch = build_batch(
        args.events, args.bookmakers, args.at, version=args.version, markets=args.markets, steps=args.steps
    )
    async with OddsStore.connect(args.dsn, min_size=1, max_size=1, server_settings=settings) as store:
        print("connected", flush=True)
        result = await store.write_snapshots(batch)
    print(json.dumps({"snapshots": result.snapshots, "markets": result.markets}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
