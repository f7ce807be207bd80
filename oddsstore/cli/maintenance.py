"""The commands that keep a database in shape: ``migrate``, ``distribute`` (Citus), ``maintain``,
and ``status``, which shows partitions, recent scrape runs, stale odds and recurring errors."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel

from oddsstore.cli import render
from oddsstore.cli.analytics import event_name
from oddsstore.cli.render import age, size, table, time
from oddsstore.errors import PermissionDeniedError
from oddsstore.records import ErrorSummary, PartitionInfo, ScrapeRun, ScrapeStatus, StaleOdds
from oddsstore.store import OddsStore

STATUS_ROWS = 15  # rows per status table before "... and N more rows"
STATUS_MODELS: dict[str, type[BaseModel]] = {
    "partitions": PartitionInfo,
    "scrape_runs": ScrapeRun,
    "stale_odds": StaleOdds,
    "errors": ErrorSummary,
}
STATUS_SECTIONS = tuple(STATUS_MODELS)


async def migrate(store: OddsStore, args: argparse.Namespace) -> None:
    applied = await store.migrate()
    print(f"applied {', '.join(applied)}" if applied else "schema is up to date")


async def distribute(store: OddsStore, args: argparse.Namespace) -> None:
    await store.distribute()
    print("distributed: odds tables by event_id, reference data on every node (docs/scaling.md)")


async def maintain(store: OddsStore, args: argparse.Namespace) -> None:
    report = await store.maintain(args.days_ahead, args.retention_days)
    older_than = None if args.abandon_after is None else timedelta(minutes=args.abandon_after)
    closed = await store.close_abandoned_scrape_runs(older_than)
    print(f"created {len(report.created)} partitions{_listing(report.created)}")
    print(f"dropped {len(report.dropped)} partitions{_listing(report.dropped)}")
    print(f"closed {len(closed)} abandoned scrape runs as failed{_listing([str(run.id) for run in closed])}")
    if report.not_allowed:
        raise PermissionDeniedError("not allowed: " + "; ".join(report.not_allowed))


def _listing(names: Sequence[str]) -> str:
    if not names:
        return ""
    return ":\n" + textwrap.fill(", ".join(names), width=100, initial_indent="  ", subsequent_indent="  ")


async def status(store: OddsStore, args: argparse.Namespace) -> None:
    wanted = [args.section] if args.section else list(STATUS_SECTIONS)
    parts = await store.partitions() if "partitions" in wanted else None
    runs = (
        await store.recent_scrape_runs(limit=10 if args.format == "table" else 100) if "scrape_runs" in wanted else None
    )
    stale = await store.stale_odds(timedelta(minutes=args.max_age)) if "stale_odds" in wanted else None
    since = datetime.now(UTC) - timedelta(hours=24)
    errors = await store.error_summary(since) if "errors" in wanted else None
    found: dict[str, Sequence[BaseModel]] = {
        name: rows for name, rows in zip(STATUS_SECTIONS, (parts, runs, stale, errors), strict=True) if rows is not None
    }
    if args.format == "json":
        render.dump_json(found)
    elif args.format == "csv":
        render.dump_csv(found[wanted[0]], STATUS_MODELS[wanted[0]])
    else:
        await _status_tables(store, args, parts, runs, stale, errors)


async def _status_tables(
    store: OddsStore,
    args: argparse.Namespace,
    parts: Sequence[PartitionInfo] | None,
    runs: Sequence[ScrapeRun] | None,
    stale: Sequence[StaleOdds] | None,
    errors: Sequence[ErrorSummary] | None,
) -> None:
    books = {b.id: b.name for b in await store.bookmakers()}
    limit = None if args.all else STATUS_ROWS
    if parts is not None:
        render.section("Partitions (daily; ~rows are planner estimates)", _partition_table(parts, limit))
    if runs is not None:
        render.section("Recent scrape runs", _runs_table(runs, await store.abandon_limit()))
    if stale is not None:
        shown = stale if limit is None else stale[:limit]
        events = {s.event_id: await event_name(store, s.event_id) for s in shown}
        render.section(
            f"Stale odds (upcoming events; no snapshot for {args.max_age} min, or failures since): {len(stale)} pairs",
            _stale_table(stale, events, books, limit),
        )
    if errors is not None:
        render.section(
            "Recurring errors (last 24 h; streak = consecutive latest runs)", _errors_table(errors, books, limit)
        )


def _runs_table(runs: Sequence[ScrapeRun], abandon_after: timedelta) -> str:
    """A run ``running`` longer than ``abandon_after`` shows as abandoned: maintain closes it."""
    now = datetime.now(UTC)
    abandoned = [r.id for r in runs if r.status is ScrapeStatus.RUNNING and now - r.started_at > abandon_after]
    rows = [
        (r.id, "abandoned" if r.id in abandoned else r.status.value, time(r.started_at),
         _duration(r.started_at, r.completed_at), r.events_scraped, r.events_failed, r.trigger or "")
        for r in runs
    ]  # fmt: skip
    note = (
        f"\nabandoned: running for more than {age(abandon_after)}; the next maintain closes it as failed"
        if abandoned
        else ""
    )
    return table(("run", "status", "started (UTC)", "took", "events", "failed", "trigger"), rows, "rllrrrl") + note


def _duration(start: datetime, end: datetime | None) -> str:
    return age(end - start) if end else "running"


def _stale_table(stale: Sequence[StaleOdds], events: dict[int, str], books: dict[int, str], limit: int | None) -> str:
    return table(
        ("event", "bookmaker", "latest snapshot", "age", "reasons"),
        [
            (events[s.event_id], books[s.bookmaker_id], time(s.captured_at) if s.captured_at else "never",
             age(s.age), ", ".join(s.reasons))
            for s in (stale if limit is None else stale[:limit])
        ],
        "llrrl",
        more=0 if limit is None else max(len(stale) - limit, 0),
    )  # fmt: skip


def _errors_table(errors: Sequence[ErrorSummary], books: dict[int, str], limit: int | None) -> str:
    """``-`` as the bookmaker: errors not tied to one bookmaker."""
    return table(
        ("bookmaker", "error", "count", "runs", "streak", "first seen", "last seen"),
        [
            (books[e.bookmaker_id] if e.bookmaker_id else "-", e.error_type, e.occurrences, e.runs_affected,
             e.consecutive_runs, time(e.first_seen), time(e.last_seen))
            for e in errors
        ],
        "llrrrll",
        limit=limit,
    )  # fmt: skip


def _partition_table(found: Sequence[PartitionInfo], limit: int | None) -> str:
    """One row per day, one ``~rows size`` column per partitioned table, then the totals."""
    parents = sorted({p.parent for p in found})
    days: dict[date, dict[str, PartitionInfo]] = {}
    for p in found:
        days.setdefault(p.day, {})[p.parent] = p
    rows: list[tuple[object, ...]] = [
        (day, *(_partition_cell(cells.get(parent)) for parent in parents)) for day, cells in sorted(days.items())
    ]
    hidden = 0
    if limit is not None and len(rows) > limit:  # the newest days; the totals cover them all
        hidden, rows = len(rows) - limit, rows[-limit:]
    totals = [_total_rows([p for p in found if p.parent == parent]) for parent in parents]
    sizes = [sum(p.total_bytes for p in found if p.parent == parent) for parent in parents]
    rows.append(("total", *(f"{n} {size(b):>8}" for n, b in zip(totals, sizes, strict=True))))
    notes = []
    if hidden:
        notes.append(f"{hidden} older days not shown (--all shows every day)")
    if any(p.rows_estimate is None for p in found):
        notes.append("n/a: not analysed yet, so no estimate (autovacuum analyses it soon, or run ANALYZE)")
    pending = [p.name for p in found if p.detach_pending]
    if pending:
        notes.append(f"interrupted detach (the next maintain finishes it): {', '.join(pending)}")
    body = table(("day", *parents), rows if found else [], "l" + "r" * len(parents))
    return "\n".join([body, *notes])


def _total_rows(partitions: Sequence[PartitionInfo]) -> str:
    """The sum of the estimates, ``n/a`` while any partition has none yet (never analysed)."""
    estimates = [p.rows_estimate for p in partitions]
    return "n/a" if None in estimates else f"{sum(e or 0 for e in estimates):,}"


def _partition_cell(p: PartitionInfo | None) -> str:
    if p is None:
        return "-"
    rows = "n/a" if p.rows_estimate is None else f"{p.rows_estimate:,}"
    return f"{rows} {size(p.total_bytes):>8}"
