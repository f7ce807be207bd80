"""Scrape runs and health: finishing runs, recording errors, stale pairs and recurring failures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import World, on_citus, snapshot

from oddsstore import OddsStore, ScrapeStatus, UnknownReferenceError

pytestmark = on_citus


async def test_a_run_is_opened_and_closed(store: OddsStore) -> None:
    run = await store.start_scrape_run("manual")
    assert (run.status, run.completed_at, run.trigger) == (ScrapeStatus.RUNNING, None, "manual")
    done = await store.finish_scrape_run(run.id, "partial", events_scraped=10, events_failed=2)
    assert (done.status, done.events_scraped, done.events_failed) == (ScrapeStatus.PARTIAL, 10, 2)
    assert done.completed_at is not None and done.completed_at >= done.started_at
    assert [r.id for r in await store.recent_scrape_runs(limit=5)] == [run.id]
    with pytest.raises(UnknownReferenceError, match="no scrape run with id 999"):
        await store.finish_scrape_run(999, ScrapeStatus.COMPLETED)


async def test_errors_are_stored_in_one_batch(store: OddsStore, world: World) -> None:
    run = await store.start_scrape_run()
    stored = await store.record_scrape_errors(
        [
            {
                "scrape_run_id": run.id,
                "error_type": "timeout",
                "error_message": "read timed out",
                "bookmaker_id": world.bookmakers[1].id,
            },
            {
                "scrape_run_id": run.id,
                "error_type": "parse_error",
                "error_message": "no markets",
                "bookmaker_id": world.bookmakers[1].id,
                "event_id": world.events[0].id,
            },
        ]
    )
    assert stored == 2
    errors = await store.scrape_errors(run.id)
    assert [(e.error_type, e.event_id) for e in errors] == [("timeout", None), ("parse_error", world.events[0].id)]
    assert await store.record_scrape_errors([]) == 0
    with pytest.raises(UnknownReferenceError, match="scrape_run_id"):
        await store.record_scrape_errors([{"scrape_run_id": 424242, "error_type": "x", "error_message": "y"}])


async def test_stale_odds_names_every_reason(store: OddsStore, world: World) -> None:
    (event_a, event_b), (betpawa, sporty, bet9ja) = world.events, world.bookmakers
    now = datetime.now(UTC)
    first = await store.start_scrape_run()
    await store.write_snapshots(
        [
            snapshot(event_a, betpawa, now - timedelta(minutes=2)),  # fresh
            snapshot(event_a, sporty, now - timedelta(hours=2)),  # too old
            snapshot(event_b, betpawa, now - timedelta(minutes=1)),  # fresh, errors come later
        ],
        scrape_run_id=first.id,
    )
    await store.finish_scrape_run(first.id, "completed")
    await store.link_event_bookmaker(event_a.id, bet9ja.id, "b9-1", "https://bet9ja.example/1")  # never scraped
    latest = await store.start_scrape_run()
    await store.record_scrape_errors(
        [{"scrape_run_id": latest.id, "error_type": "timeout", "error_message": "t", "event_id": event_b.id}]
    )

    stale = {(s.event_id, s.bookmaker_id): s for s in await store.stale_odds(timedelta(minutes=30))}

    assert set(stale) == {(event_a.id, bet9ja.id), (event_a.id, sporty.id), (event_b.id, betpawa.id)}
    assert stale[(event_a.id, bet9ja.id)].reasons == ["no_snapshot"]
    assert stale[(event_a.id, bet9ja.id)].captured_at is None
    assert stale[(event_a.id, sporty.id)].reasons == ["older_than_max_age"]
    assert stale[(event_a.id, sporty.id)].age > timedelta(hours=1, minutes=59)
    assert stale[(event_b.id, betpawa.id)].reasons == ["errors_since_snapshot"]

    await store.finish_scrape_run(latest.id, "failed")
    stale = {(s.event_id, s.bookmaker_id): s.reasons for s in await store.stale_odds(timedelta(minutes=30))}
    # The failed run started after every snapshot: every scraped pair is now suspect.
    assert stale[(event_a.id, betpawa.id)] == ["latest_run_failed"]
    assert stale[(event_a.id, sporty.id)] == ["older_than_max_age", "latest_run_failed"]
    assert stale[(event_b.id, betpawa.id)] == ["latest_run_failed", "errors_since_snapshot"]


async def test_events_that_kicked_off_are_not_stale(store: OddsStore, world: World) -> None:
    event = world.events[0]
    await store.write_snapshots([snapshot(event, world.bookmakers[0], datetime.now(UTC) - timedelta(hours=5))])
    # (Both events are linked to BetPawa by their betpawa_event_id: the other has no snapshot.)
    assert [s.event_id for s in await store.stale_odds(timedelta(hours=1))] == [world.events[1].id, event.id]
    await store.upsert_event(
        event.tournament_id, event.betpawa_event_id, event.home_team, event.away_team, datetime.now(UTC)
    )
    assert [s.event_id for s in await store.stale_odds(timedelta(hours=1))] == [world.events[1].id]


async def test_error_summary_counts_and_streaks(store: OddsStore, world: World) -> None:
    since = datetime.now(UTC) - timedelta(hours=1)
    betpawa, sporty = world.bookmakers[0].id, world.bookmakers[1].id
    # Five runs, oldest first; which errors each recorded.
    pattern = [
        [("timeout", betpawa)],
        [("timeout", betpawa), ("parse_error", sporty)],
        [("parse_error", sporty)],
        [("timeout", betpawa), ("timeout", betpawa), ("network", None)],
        [("timeout", betpawa), ("network", None)],
    ]
    for errors in pattern:
        run = await store.start_scrape_run()
        await store.record_scrape_errors(
            [
                {"scrape_run_id": run.id, "error_type": kind, "error_message": "m", "bookmaker_id": bookmaker}
                for kind, bookmaker in errors
            ]
        )
        await store.finish_scrape_run(run.id, "partial")
    summary = {(s.bookmaker_id, s.error_type): s for s in await store.error_summary(since)}
    assert set(summary) == {(betpawa, "timeout"), (sporty, "parse_error"), (None, "network")}
    timeout = summary[(betpawa, "timeout")]
    assert (timeout.occurrences, timeout.runs_affected, timeout.consecutive_runs) == (5, 4, 2)
    assert timeout.first_seen <= timeout.last_seen
    assert (summary[(None, "network")].consecutive_runs, summary[(None, "network")].occurrences) == (2, 2)
    assert summary[(sporty, "parse_error")].consecutive_runs == 0
    assert summary[(sporty, "parse_error")].runs_affected == 2
    assert [s.error_type for s in await store.error_summary(since)][:2] == ["timeout", "network"]
    assert await store.error_summary(datetime.now(UTC) + timedelta(minutes=1)) == []


async def test_reference_upserts_are_idempotent(store: OddsStore, world: World) -> None:
    again = await store.upsert_bookmaker("BetPawa", "betpawa", "https://www.betpawa.ng")
    assert again.id == world.bookmakers[0].id and again.base_url == "https://www.betpawa.ng"
    sport = await store.upsert_sport("Football", "football")
    first = await store.upsert_tournament(sport.id, "World Cup")
    assert (await store.upsert_tournament(sport.id, "World Cup")).id == first.id
    event = world.events[0]
    moved = await store.upsert_event(
        event.tournament_id,
        event.betpawa_event_id,
        event.home_team,
        event.away_team,
        event.kickoff + timedelta(hours=3),
    )
    assert moved.id == event.id and moved.kickoff == event.kickoff + timedelta(hours=3)
    link = await store.link_event_bookmaker(event.id, world.bookmakers[1].id, "sb-9", "https://sportybet.example/9")
    kept = await store.link_event_bookmaker(event.id, world.bookmakers[1].id)
    assert kept == link
    assert await store.get_event(event.id) == moved
    assert [b.slug for b in await store.bookmakers()] == ["betpawa", "sportybet", "bet9ja"]


async def test_repeated_upserts_do_not_use_up_ids(store: OddsStore, world: World) -> None:
    event = world.events[0]
    for _ in range(5):
        await store.upsert_event(event.tournament_id, event.betpawa_event_id, "H", "A", event.kickoff)
        await store.upsert_bookmaker("BetPawa", "betpawa")
    fresh = await store.upsert_event(event.tournament_id, "bp-new", "H", "A", event.kickoff)
    assert fresh.id == world.events[1].id + 1
    assert (await store.upsert_bookmaker("New", "new")).id == world.bookmakers[-1].id + 1
