"""``oddsstore demo``: migrate, write scrape cycles of the synthetic feed
(:mod:`oddsstore.synthetic`), show one event's latest odds across bookmakers, and print the
commands to run next with the ids they need. ``--reset`` first empties a database holding only
demo data, so two demos never mix their feeds into the same events."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from oddsstore.cli.analytics import price
from oddsstore.cli.render import table
from oddsstore.cli.render import time as clock
from oddsstore.errors import InvalidInputError
from oddsstore.records import MarketOdds, ScrapeStatus
from oddsstore.store import OddsStore
from oddsstore.synthetic.feed import Feed, FeedIds, FeedSnapshot, register, to_write

INTERVAL = timedelta(minutes=10)
TRIGGER = "demo"  # every run the demo writes; --reset refuses a database with runs of others
# Markets the demo compares across bookmakers (every bookmaker of the feed offers them), each at
# its main line: the one with the most balanced prices.
MARKETS = ("1X2 - FT", "Draw No Bet - FT", "Over/Under - FT", "Asian Handicap - FT", "Both Teams To Score - FT")
MOVEMENT_MARKET = "3743"  # 1X2 - FT


async def demo(store: OddsStore, args: argparse.Namespace) -> None:
    applied = await store.migrate()
    print(f"schema: applied {', '.join(applied)}" if applied else "schema: up to date")
    if args.reset:
        await _reset(store)
        print("reset: the previous demo data is gone")
    start = datetime.now(UTC) - (args.cycles - 1) * INTERVAL
    feed = Feed(events=args.events, start=start, interval=INTERVAL)
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
    event_id = ids.events[event.betpawa_event_id]
    written = sorted(ids.events.values())
    print(f"event ids: {_ranges(written)}")
    odds = await store.latest_odds(event_id)
    bookmakers = {ids.bookmakers[b["slug"]]: b["name"] for b in feed.bookmakers}
    print(f"\nEvent {event_id}: {event.home_team} v {event.away_team} ({event.tournament}, {event.country})")
    print(f"kickoff {clock(event.kickoff)} UTC; each bookmaker's latest odds:")
    print(_comparison(odds, bookmakers))
    print("* best price   - not offered   susp suspended   margin: sum(1/odds) - 1")
    same_dsn = " --dsn DSN" if args.dsn else ""
    steps = [
        (f"oddsstore compare {event_id}{same_dsn}", f"every market of event {event_id}"),
        (f"oddsstore movement {event_id} {MOVEMENT_MARKET} --plot movement.png{same_dsn}", "how its 1X2 prices moved"),
        (f"oddsstore status{same_dsn}", "partitions, scrape runs, stale odds"),
    ]
    width = max(len(command) for command, _ in steps)
    print("\nnext:\n" + "\n".join(f"  {command:<{width}}  # {why}" for command, why in steps))


async def _reset(store: OddsStore) -> None:
    async with store.pool.acquire() as connection, connection.transaction():
        if await store.queries.holds_other_than_demo_data(connection):
            raise InvalidInputError(
                "--reset empties only a database that holds nothing but demo data; this one has scrape runs "
                "or snapshots the demo did not write"
            )
        await store.queries.reset_demo_data(connection)


def _ranges(ids: Sequence[int]) -> str:
    """``1-12`` or ``1-12, 20-23`` for sorted ids."""
    spans: list[list[int]] = []
    for n in ids:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in spans)


async def _scrape_cycle(store: OddsStore, snapshots: list[FeedSnapshot], ids: FeedIds) -> int:
    """Write one cycle as a scrape run started when the cycle was scraped; the run is marked
    failed if the write fails."""
    scraped_at = snapshots[0].captured_at
    run = await store.start_scrape_run(TRIGGER, started_at=scraped_at)
    try:
        result = await store.write_snapshots(to_write(snapshots, ids), scrape_run_id=run.id)
    except BaseException:
        await store.finish_scrape_run(run.id, ScrapeStatus.FAILED, completed_at=scraped_at)
        raise
    events = len({s.event_key for s in snapshots})
    await store.finish_scrape_run(run.id, ScrapeStatus.COMPLETED, events_scraped=events, completed_at=scraped_at)
    return result.markets


def _comparison(odds: Sequence[MarketOdds], bookmakers: dict[int, str]) -> str:
    """:data:`MARKETS` at their main lines as rows (one per outcome, then the margin),
    bookmakers as columns."""
    rows: list[tuple[str, ...]] = []
    for name in MARKETS:
        lines = [m for m in odds if m.betpawa_market_name == name]
        if lines:
            line = _main_line(lines)
            rows += _market_rows(
                [next((m for m in lines if m.bookmaker_id == b and m.line == line), None) for b in bookmakers]
            )
    return table(("market", "outcome", *bookmakers.values()), rows, "ll" + "r" * len(bookmakers))


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
        rows.append((label if number == 0 else "", name, *(price(o, best) for o in outcomes)))
    rows.append(("", "margin", *(_margin(m) for m in markets)))
    return rows


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
