"""The read commands over odds: ``compare``, ``margins``, ``movement`` and ``arbitrage``.

Each prints a table (bounded to :data:`~oddsstore.cli.render.SHOWN_ROWS` rows unless ``--all``),
or with ``--format json|csv`` the records the store returned, every one of them.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from datetime import timedelta

from pydantic import BaseModel

from oddsstore.cli import plot, render
from oddsstore.cli.render import market_label, percent, table, time
from oddsstore.errors import InvalidInputError, UnknownReferenceError
from oddsstore.records import (
    Arbitrage,
    Bookmaker,
    Event,
    Margin,
    MarketChange,
    Outcome,
    PriceComparison,
    TournamentMargin,
)
from oddsstore.store import OddsStore

# Margins compare like with like only within one market type; the tournament summary defaults to
# BetPawa's 1X2 full time (double chance alone averages ~100%: its outcomes overlap).
DEFAULT_MARGIN_MARKET = "3743"


async def compare(store: OddsStore, args: argparse.Namespace) -> None:
    event = await _require_event(store, args.event)
    books = {b.id: b for b in await store.bookmakers()}
    home = _bookmaker_by_slug(books.values(), args.home) if args.home else None
    found = await store.compare_event(event.id, home.id if home else None)
    if args.market:
        found = [r for r in found if r.betpawa_market_id in args.market]
    if _records(args, found, PriceComparison):
        return
    shown = sorted({b for r in found for b in r.prices})
    rows = []
    previous: tuple[str, float | None] | None = None
    for r in found:
        first, previous = (r.betpawa_market_id, r.line) != previous, (r.betpawa_market_id, r.line)
        label = market_label(r.betpawa_market_name, r.line, r.handicap_type)
        gap = (percent(r.gap_pct, signed=True),) if home else ()
        rows.append(
            (r.betpawa_market_id if first else "", label if first else "", r.outcome,
             *(_compared_price(r, b) for b in shown), *gap)
        )  # fmt: skip
    home_column = (f"{home.name} gap",) if home else ()
    print(f"{event.home_team} v {event.away_team} (event {event.id}), kickoff {time(event.kickoff)} UTC")
    print(table(("id", "market", "outcome", *(books[b].name for b in shown), *home_column), rows,
                "lll" + "r" * (len(shown) + len(home_column)), limit=_limit(args)))  # fmt: skip
    gap_note = f"   gap: {home.name} / best other - 1" if home else ""
    print(f"* best price   - not offered   susp suspended{gap_note}   --market ID: only that market")


def _compared_price(row: PriceComparison, bookmaker_id: int) -> str:
    if bookmaker_id not in row.prices:
        return "-  "
    price = row.prices[bookmaker_id]
    if price is None:
        return "susp "
    return f"{price:.2f}{'*' if bookmaker_id in row.best_bookmaker_ids else ' '}"


async def margins(store: OddsStore, args: argparse.Namespace) -> None:
    books = {b.id: b.name for b in await store.bookmakers()}
    if args.event is None:
        market = args.market or DEFAULT_MARGIN_MARKET
        summary = await store.tournament_margins(tournament_id=args.tournament, market_id=market)
        if _records(args, summary, TournamentMargin):
            return
        print(f"market {market}" + ("" if args.market else " (1X2 - FT, the default; --market ID for another)"))
        print(table(
            ("tournament", "bookmaker", "events", "markets", "avg", "min", "max"),
            [(f"{t.tournament_name} ({t.country})" if t.country else t.tournament_name, books[t.bookmaker_id],
              t.events, t.markets, percent(t.avg_margin_pct), percent(t.min_margin_pct),
              percent(t.max_margin_pct))
             for t in summary],
            "llrrrrr",
            limit=_limit(args),
        ))  # fmt: skip
    else:
        event = await _require_event(store, args.event)
        found = await store.margins(event_id=event.id, tournament_id=args.tournament, market_id=args.market)
        if _records(args, found, Margin):
            return
        shown = sorted({m.bookmaker_id for m in found})
        markets: dict[tuple[str, float | None], dict[int, Margin]] = {}
        for m in found:
            markets.setdefault((m.betpawa_market_id, m.line), {})[m.bookmaker_id] = m
        rows = []
        for (market_id, _), by_book in markets.items():
            first = next(iter(by_book.values()))
            label = market_label(first.betpawa_market_name, first.line, first.handicap_type)
            rows.append((market_id, label, *(percent(by_book[b].margin_pct) if b in by_book else "-" for b in shown)))
        print(f"{event.home_team} v {event.away_team} (event {event.id})")
        print(table(("id", "market", *(books[b] for b in shown)), rows, "ll" + "r" * len(shown), limit=_limit(args)))
    print(
        "margin: (sum(1/odds) - 1) * 100 over complete current markets (every outcome active); "
        "markets with overlapping outcomes (double chance) show ~100%"
    )


async def movement(store: OddsStore, args: argparse.Namespace) -> None:
    plt = plot.pyplot() if args.plot else None  # a missing extra fails before any work
    event = await _require_event(store, args.event)
    books = {b.id: b.name for b in await store.bookmakers()}
    changes = await store.line_movement(event.id, args.market, args.line)
    at_line = "" if args.line is None else f" at line {args.line:g}"
    if not changes:
        raise UnknownReferenceError(f"event {event.id} has no history of market {args.market!r}{at_line}")
    lines = sorted({c.line for c in changes if c.line is not None})
    if plt is not None and len(lines) > 1:
        raise InvalidInputError(
            f"market {args.market!r} has {len(lines)} lines ({', '.join(f'{n:g}' for n in lines)}); "
            "choose one to plot with --line"
        )
    name = next(c.betpawa_market_name for c in changes if c.betpawa_market_name)
    names = list(dict.fromkeys(o.name for c in changes for o in c.outcomes or ()))
    title = f"{event.home_team} v {event.away_team}: {name} ({args.market}){at_line}"
    if not _records(args, changes, MarketChange):
        print(f"{title}, {len(changes)} changes, oldest first")
        print(_movement_table(changes, names, books, bool(lines) and args.line is None, _limit(args)))
    if plt is not None:
        ends = {m.bookmaker_id: m.captured_at for m in await store.latest_odds(event.id)}
        plot.movement(plt, args.plot, title, changes, names, books, ends)
        render.note(f"plot: {args.plot}")


def _movement_table(
    changes: Sequence[MarketChange], names: Sequence[str], books: dict[int, str], with_line: bool, limit: int | None
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
        cells = [price(prices.get(n)) if c.outcomes is not None else "" for n in names]
        line = (f"{c.line:g}" if c.line is not None else "-",) if with_line else ()
        rows.append((time(c.captured_at), books[c.bookmaker_id], *line, *cells, note))
    header = ("time (UTC)", "bookmaker", *(("line",) if with_line else ()), *names, "note")
    return table(header, rows, "ll" + "r" * (len(header) - 3) + "l", limit=limit)


async def arbitrage(store: OddsStore, args: argparse.Namespace) -> None:
    books = {b.id: b.name for b in await store.bookmakers()}
    found = await store.arbitrage(timedelta(minutes=args.max_age))
    if _records(args, found, Arbitrage):
        return
    limit = _limit(args)
    shown = found if limit is None else found[:limit]
    events = {a.event_id: await event_name(store, a.event_id) for a in shown}
    rows = []
    for a in shown:
        label = market_label(a.betpawa_market_name, a.line, a.handicap_type)
        for number, leg in enumerate(a.legs):
            first = number == 0
            rows.append(
                (events[a.event_id] if first else "", label if first else "", percent(a.profit_pct) if first else "",
                 leg.outcome, f"{leg.odds:.2f}", ", ".join(books[b] for b in leg.bookmaker_ids),
                 percent(leg.stake_share * 100))
            )  # fmt: skip
    hidden = len(found) - len(shown)
    render.section(
        f"Arbitrage (odds confirmed within {args.max_age} min): {len(found)} markets"
        + (f", the first {len(shown)} shown (--all shows every one)" if hidden else ""),
        table(("event", "market", "profit", "outcome", "odds", "bookmaker", "stake"), rows, "llrlrlr"),
    )
    if found:
        print("stake: share of the total to put on each outcome at that price; profit: whichever outcome wins")


def _records(args: argparse.Namespace, found: Sequence[BaseModel], model: type[BaseModel]) -> bool:
    """Print ``found`` as JSON or CSV when ``--format`` asks for it; ``False`` for a table."""
    if args.format == "json":
        render.dump_json(found)
    elif args.format == "csv":
        render.dump_csv(found, model)
    return bool(args.format != "table")


def _limit(args: argparse.Namespace) -> int | None:
    return None if args.all else render.SHOWN_ROWS


def price(outcome: Outcome | None, best: float | None = None) -> str:
    """An outcome's price for a table: ``*`` the best, ``susp`` suspended, ``-`` not offered."""
    if outcome is None:
        return "-  "
    if not outcome.is_offer:
        return "susp "
    return f"{outcome.odds:.2f}{'*' if outcome.odds == best else ' '}"


async def _require_event(store: OddsStore, event_id: int) -> Event:
    event = await store.get_event(event_id)
    if event is None:
        raise UnknownReferenceError(f"no event with id {event_id}")
    return event


async def event_name(store: OddsStore, event_id: int) -> str:
    """``Home v Away`` (at most 40 characters), or the id of an event that is gone."""
    event = await store.get_event(event_id)
    return f"{event.home_team} v {event.away_team}"[:40] if event else str(event_id)


def _bookmaker_by_slug(books: Iterable[Bookmaker], slug: str) -> Bookmaker:
    known = {b.slug: b for b in books}
    if slug not in known:
        raise InvalidInputError(f"no bookmaker with slug {slug!r}; known: {', '.join(sorted(known))}")
    return known[slug]
