"""Registering a scrape cycle's events: ``upsert_events`` (one statement for every event and its
bookmaker links) against one ``upsert_event`` and one ``link_event_bookmaker`` call per event
and link, the way the store's API asked for it before.

    python -m bench.events --events 1300 --bookmakers 3

Each way runs twice on its own fresh database: the first call inserts everything, the second
re-sends the same events unchanged (what a scraper does every cycle: nothing may be written).
Writes ``bench/results/events.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.server import create_database, server
from oddsstore import OddsStore

RESULTS = Path(__file__).parent / "results"


def events_of(tournament_id: int, bookmaker_ids: list[int], count: int) -> list[dict[str, Any]]:
    """``count`` events, each with a SportRadar id and a link at every bookmaker."""
    kickoff = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    return [
        {
            "tournament_id": tournament_id,
            "sportradar_id": f"sr:match:{number}",
            "home_team": f"Home {number}",
            "away_team": f"Away {number}",
            "kickoff": kickoff + timedelta(minutes=number % 600),
            "bookmakers": [
                {
                    "bookmaker_id": bookmaker,
                    "bookmaker_event_id": f"{bookmaker}-{number}",
                    "event_url": f"https://bookmaker{bookmaker}.example/event/{number}",
                }
                for bookmaker in bookmaker_ids
            ],
        }
        for number in range(count)
    ]


async def _setup(admin_dsn: str, name: str, bookmakers: int) -> tuple[OddsStore, int, list[int]]:
    dsn = await create_database(admin_dsn, name)
    store = await OddsStore.connect(dsn, min_size=1, max_size=1)
    await store.migrate()
    sport = await store.upsert_sport("Football", "football")
    tournament = await store.upsert_tournament(sport.id, "League")
    ids = [(await store.upsert_bookmaker(f"Bookmaker {n}", f"bookmaker-{n}")).id for n in range(bookmakers)]
    return store, tournament.id, ids


async def _row_versions(store: OddsStore) -> set[tuple[str, str]]:
    """Each row of events and event_bookmakers with its version (xmin): a rewritten row has a new one."""
    rows = await store.pool.fetch(
        "select 'e' || id, xmin::text from events union all "
        "select 'l' || event_id || '/' || bookmaker_id, xmin::text from event_bookmakers"
    )
    return {(row[0], row[1]) for row in rows}


async def measure(admin_dsn: str, events: int, bookmakers: int) -> dict[str, Any]:
    found: dict[str, Any] = {"events": events, "links": events * bookmakers}
    store, tournament, ids = await _setup(admin_dsn, "bench_events_bulk", bookmakers)
    try:
        given = events_of(tournament, ids, events)
        versions: set[tuple[str, str]] = set()
        for attempt in ("insert", "unchanged"):
            versions = await _row_versions(store)
            began = time.perf_counter()
            await store.upsert_events(given)
            found[f"upsert_events_{attempt}_s"] = time.perf_counter() - began
        found["rows_rewritten_by_unchanged_call"] = len(await _row_versions(store) - versions)
    finally:
        await store.close()
    store, tournament, ids = await _setup(admin_dsn, "bench_events_per_call", bookmakers)
    try:
        given = events_of(tournament, ids, events)
        for attempt in ("insert", "unchanged"):
            began = time.perf_counter()
            for event in given:
                stored = await store.upsert_event(
                    event["tournament_id"],
                    None,
                    event["home_team"],
                    event["away_team"],
                    event["kickoff"],
                    sportradar_id=event["sportradar_id"],
                )
                for link in event["bookmakers"]:
                    await store.link_event_bookmaker(stored.id, **link)
            found[f"per_call_{attempt}_s"] = time.perf_counter() - began
    finally:
        await store.close()
    for attempt in ("insert", "unchanged"):
        found[f"speedup_{attempt}"] = found[f"per_call_{attempt}_s"] / found[f"upsert_events_{attempt}_s"]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1300)
    parser.add_argument("--bookmakers", type=int, default=3)
    parser.add_argument("--dsn", help="a server to use (default: a temporary embedded PostgreSQL 18)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    with server(args.dsn) as admin_dsn:
        found = asyncio.run(measure(admin_dsn, args.events, args.bookmakers))
    found["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "events.json").write_text(json.dumps(found, indent=2) + "\n")
    print(
        f"{found['events']:,} events with {found['links']:,} links: upsert_events "
        f"{found['upsert_events_insert_s']:.3f} s (first), {found['upsert_events_unchanged_s']:.3f} s (unchanged, "
        f"{found['rows_rewritten_by_unchanged_call']} rows rewritten); one call per event and link "
        f"{found['per_call_insert_s']:.2f} s and {found['per_call_unchanged_s']:.2f} s: "
        f"{found['speedup_insert']:.0f}x and {found['speedup_unchanged']:.0f}x"
    )


if __name__ == "__main__":
    main()
