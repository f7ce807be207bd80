"""``oddsstore board``: the odds board, and its plain text table.

One block per event (a title line: teams, tournament, kickoff), one row per outcome of each market
with every bookmaker's price, the best fresh price and the home bookmaker's gap, then a margin
row per market and a ``seen`` row with how old each bookmaker's prices are. Marks: ``*`` the best
fresh price, ``~`` a stale price, ``susp`` suspended, ``-`` not listed by that bookmaker.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from oddsstore.cli import render
from oddsstore.errors import InvalidInputError
from oddsstore.records import BoardEvent, BoardMarket, BoardPage, BoardQuote
from oddsstore.store import OddsStore

# The production system's events list: 1X2, over/under (at its main line), both teams to score,
# double chance (ids as in oddsstore/synthetic/catalogue.py).
DEFAULT_MARKETS = ("3743", "3752", "3764", "3746")


async def board(store: OddsStore, args: argparse.Namespace) -> None:
    """Upcoming events (kickoff from now), a page at a time, or every page with ``--all``."""
    books = {b.id: b for b in await store.bookmakers()}
    home = None
    if args.home is not None:
        home = next((b.id for b in books.values() if b.slug == args.home), None)
        if home is None:
            raise InvalidInputError(
                f"no bookmaker with slug {args.home!r}; known: {', '.join(sorted(b.slug for b in books.values()))}"
            )
    kickoff_to = None if args.hours is None else datetime.now(UTC) + timedelta(hours=args.hours)
    events: list[BoardEvent] = []
    page: BoardPage | None = None
    while page is None or (args.all and page.next_cursor is not None):
        page = await store.odds_board(
            args.market or list(DEFAULT_MARKETS),
            kickoff_to=kickoff_to,
            sport_id=args.sport,
            tournament_id=args.tournament,
            home_bookmaker_id=home,
            stale_after=timedelta(minutes=args.stale_after),
            limit=args.limit,
            after=page.next_cursor if page is not None else None,
        )
        events += page.events
    if args.format == "json":
        render.dump_json(events)
    elif args.format == "csv":
        render.dump_csv(events, BoardEvent)
    else:
        whole = BoardPage(events=events, next_cursor=page.next_cursor)
        print(render_board(whole, {b.id: b.name for b in books.values()}, home))
        if whole.next_cursor is not None:
            print("(--all: every page)")


def render_board(page: BoardPage, bookmakers: Mapping[int, str], home_bookmaker_id: int | None = None) -> str:
    """Render a board page as text.

    :param page: what :meth:`oddsstore.OddsStore.odds_board` returned.
    :param bookmakers: column per bookmaker, in this order: id -> name (usually every bookmaker).
    :param home_bookmaker_id: the board's home bookmaker; adds the ``gap`` column.
    """
    books = list(bookmakers)
    header = ["market", "outcome", *bookmakers.values(), "best"] + (["gap"] if home_bookmaker_id is not None else [])
    rows: list[list[str] | str] = []
    for event in page.events:
        kickoff = event.kickoff.astimezone(UTC).strftime("%a %d %b %H:%M UTC")
        country = f" ({event.country})" if event.country else ""
        rows.append(f"{event.home_team} v {event.away_team}  {event.tournament_name}{country}  {kickoff}")
        if not event.markets:
            rows.append("  (no odds)")
            continue
        for market in event.markets:
            rows.extend(_market_rows(market, books, home_bookmaker_id is not None))
        seen = {q.bookmaker_id: q for m in event.markets for q in m.quotes}
        ages = [_age(seen[b]) if b in seen else "-" for b in books]
        rows.append(["", "seen", *ages, ""] + ([""] if home_bookmaker_id is not None else []))
    lines = _table(header, rows)
    if page.next_cursor is not None:
        cursor = page.next_cursor
        lines.append(f"more events: after {cursor.kickoff.astimezone(UTC).isoformat()} #{cursor.event_id}")
    return "\n".join(lines)


def _market_rows(market: BoardMarket, books: Sequence[int], with_gap: bool) -> list[list[str] | str]:
    quotes = {q.bookmaker_id: q for q in market.quotes}
    label = market.betpawa_market_name if market.line is None else f"{market.betpawa_market_name} {market.line:g}"
    rows: list[list[str] | str] = []
    for index, outcome in enumerate(market.outcomes):
        prices = [_price(quotes.get(b), outcome.outcome, b in outcome.best_bookmaker_ids) for b in books]
        best = "-" if outcome.best_odds is None else f"{outcome.best_odds:.2f}"
        gap = ["-" if outcome.gap_pct is None else f"{outcome.gap_pct:+.1f}%"] if with_gap else []
        rows.append([label if index == 0 else "", outcome.outcome, *prices, best, *gap])
    margins = [_margin(quotes.get(b)) for b in books]
    rows.append(["", "margin", *margins, ""] + ([""] if with_gap else []))
    return rows


def _price(quote: BoardQuote | None, outcome: str, best: bool) -> str:
    if quote is None or outcome not in quote.odds:
        return "-"
    odds = quote.odds[outcome]
    if odds is None:
        return "susp"
    return f"{odds:.2f}" + ("*" if best else "~" if quote.stale else "")


def _margin(quote: BoardQuote | None) -> str:
    return "-" if quote is None or quote.margin_pct is None else f"{quote.margin_pct:.1f}%"


def _age(quote: BoardQuote) -> str:
    minutes = int(quote.age / timedelta(minutes=1))
    text = f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"
    return f"{text} stale" if quote.stale else text


def _table(header: Sequence[str], rows: Sequence[Sequence[str] | str]) -> list[str]:
    """Columns two spaces apart, the first two left-aligned, the rest right-aligned; a row that
    is a plain string (an event's title) is printed as it is."""
    cells = [list(header), *(row for row in rows if not isinstance(row, str))]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    out += [row if isinstance(row, str) else line(row) for row in rows]
    return out
