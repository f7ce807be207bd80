"""The odds board as a plain text table: what ``oddsstore board`` prints.

One block per event (a title line: teams, tournament, kickoff), one row per outcome of each market
with every bookmaker's price, the best fresh price and the home bookmaker's gap, then a margin
row per market and a ``seen`` row with how old each bookmaker's prices are. Marks: ``*`` the best
fresh price, ``~`` a stale price, ``susp`` suspended, ``-`` not listed by that bookmaker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, timedelta

from oddsstore.records import BoardMarket, BoardPage, BoardQuote


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
