"""Scrape runs left 'running' by a scraper that was stopped: closed as failed by maintain, with a
reason, and shown as abandoned by status until then."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from test_cli import oddsstore, succeeded

from oddsstore import InvalidInputError, OddsStore, ScrapeStatus


async def test_runs_running_longer_than_the_limit_are_closed_with_a_reason(store: OddsStore) -> None:
    now = datetime.now(UTC)
    killed = await store.start_scrape_run("cron", started_at=now - timedelta(hours=2))
    current = await store.start_scrape_run("cron", started_at=now - timedelta(minutes=10))
    done = await store.start_scrape_run("cron", started_at=now - timedelta(hours=3))
    await store.finish_scrape_run(done.id, "completed", completed_at=now - timedelta(hours=3) + timedelta(minutes=4))

    closed = await store.close_abandoned_scrape_runs()

    assert [(r.id, r.status) for r in closed] == [(killed.id, ScrapeStatus.FAILED)]
    assert closed[0].completed_at is not None
    states = {r.id: r.status for r in await store.recent_scrape_runs()}
    assert states == {killed.id: "failed", current.id: "running", done.id: "completed"}
    (reason,) = await store.scrape_errors(killed.id)
    assert reason.error_type == "abandoned" and "01:00:00 after it started" in reason.error_message
    summary = await store.error_summary(now - timedelta(hours=24))
    assert [(e.error_type, e.occurrences) for e in summary] == [("abandoned", 1)]
    assert await store.close_abandoned_scrape_runs() == []  # nothing left to close


async def test_the_default_limit_follows_how_long_runs_take(store: OddsStore) -> None:
    assert await store.abandon_limit() == timedelta(hours=1)  # no run has ended yet
    now = datetime.now(UTC)
    slow = await store.start_scrape_run("cron", started_at=now - timedelta(hours=6))
    await store.finish_scrape_run(slow.id, "completed", completed_at=now - timedelta(hours=4))
    waiting = await store.start_scrape_run("cron", started_at=now - timedelta(hours=5))

    assert await store.abandon_limit() == timedelta(hours=6)  # three times the 2-hour run
    assert await store.close_abandoned_scrape_runs() == []
    assert [r.id for r in await store.close_abandoned_scrape_runs(timedelta(hours=4))] == [waiting.id]


async def test_a_limit_that_is_not_positive_is_refused(store: OddsStore) -> None:
    run = await store.start_scrape_run("cron", started_at=datetime.now(UTC) - timedelta(hours=2))
    with pytest.raises(InvalidInputError, match="older_than must be positive"):
        await store.close_abandoned_scrape_runs(timedelta(0))
    assert [r.status for r in await store.recent_scrape_runs()] == [ScrapeStatus.RUNNING]
    assert run.status is ScrapeStatus.RUNNING


async def test_status_shows_an_abandoned_run_and_maintain_closes_it(dsn: str, store: OddsStore) -> None:
    run = await store.start_scrape_run("demo", started_at=datetime.now(UTC) - timedelta(minutes=90))

    before = await asyncio.to_thread(lambda: succeeded(oddsstore("status", "--dsn", dsn, "--section", "scrape_runs")))
    maintained = await asyncio.to_thread(lambda: succeeded(oddsstore("maintain", "--dsn", dsn)))
    after = await asyncio.to_thread(lambda: succeeded(oddsstore("status", "--dsn", dsn)))

    row = next(line for line in before.splitlines() if line.split()[:1] == [str(run.id)])
    assert row.split()[1] == "abandoned" and "the next maintain closes it as failed" in before
    assert f"closed 1 abandoned scrape runs as failed:\n  {run.id}" in maintained
    assert "failed" in after and "abandoned" in after  # the run, and its reason among the errors
    maintained_again = await asyncio.to_thread(
        lambda: succeeded(oddsstore("maintain", "--dsn", dsn, "--abandon-after", "1"))
    )
    assert "closed 0 abandoned scrape runs" in maintained_again
