"""Margin and arbitrage arithmetic, property-based: ``margins`` and ``arbitrage`` agree with a plain
Python reference.

Hypothesis draws a board: 1-4 markets of 2-3 outcomes, priced by 2-3 bookmakers (random prices,
or a few round ones that tie), some outcomes suspended, some markets not listed or listed with an
outcome fewer by a bookmaker, and each bookmaker's snapshot either fresh (a minute old) or stale
(two hours old). Every example is a new event in the test's database. Numbers must match to 1e-9,
relative (absolute near zero: a margin of about 0 is a difference of two sums); prices and
bookmaker ids exactly.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oddsstore import OddsStore

MAX_AGE = timedelta(minutes=30)
NAMES = ("A", "B", "C")
# Implied sums closer to 1 than this may fall either way: SQL and Python may add in another order.
BOUNDARY = 1e-12

# Real prices, and the placeholders feeds send for suspended outcomes (never offers).
prices = st.floats(min_value=1.01, max_value=10.0) | st.sampled_from([1.5, 1.9, 2.0, 2.1, 3.0, None, 0.0, 1.0])
actives = st.sampled_from([True, True, True, False])


@dataclass(frozen=True)
class Board:
    """``markets[m][b]``: bookmaker b's outcomes of market m, ``(name, odds, active)``; ``None``:
    not listed. ``fresh[b]``: whether bookmaker b's snapshot is recent."""

    fresh: list[bool]
    markets: list[list[list[tuple[str, float | None, bool]] | None]]


def on_offer(odds: float | None, active: bool) -> bool:
    """oddsstore_offer: active, and a price above 1.0."""
    return active and odds is not None and odds > 1.0


@st.composite
def boards(draw: st.DrawFn) -> Board:
    books = draw(st.integers(2, 3))
    markets = []
    for _ in range(draw(st.integers(1, 4))):
        names = NAMES[: draw(st.integers(2, 3))]
        offers: list[list[tuple[str, float | None, bool]] | None] = []
        for _ in range(books):
            listing = draw(st.sampled_from(["all", "all", "all", "all", "none", "fewer"]))
            shown = names if listing == "all" else names[:-1] if listing == "fewer" else None
            offers.append(None if shown is None else [(name, draw(prices), draw(actives)) for name in shown])
        markets.append(offers)
    return Board(fresh=[draw(st.sampled_from([True, True, False])) for _ in range(books)], markets=markets)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


# --- the reference ---------------------------------------------------------------------------------


def reference_margins(board: Board) -> dict[tuple[int, int], float]:
    """(bookmaker, market) -> margin %, for complete markets: 2+ outcomes, all on offer."""
    return {
        (b, m): (sum(1 / odds for _, odds, _ in offer if odds) - 1) * 100
        for m, offers in enumerate(board.markets)
        for b, offer in enumerate(offers)
        if offer is not None and len(offer) >= 2 and all(on_offer(odds, active) for _, odds, active in offer)
    }


@dataclass(frozen=True)
class Arb:
    implied: float
    legs: list[tuple[str, float, list[int], float]]  # outcome, best odds, bookmakers, stake share


def reference_arbitrage(board: Board) -> dict[int, Arb | None]:
    """market -> its arbitrage, or ``None`` when its implied sum is too close to 1 to call."""
    found: dict[int, Arb | None] = {}
    for m, offers in enumerate(board.markets):
        listed = {b: offer for b, offer in enumerate(offers) if offer is not None and board.fresh[b]}
        if not listed or len({tuple(name for name, _, _ in offer) for offer in listed.values()}) != 1:
            continue
        names = [name for name, _, _ in next(iter(listed.values()))]
        best = {}
        for name in names:
            active = [(o, b) for b, offer in listed.items() for n, o, a in offer if n == name and o and on_offer(o, a)]
            if active:
                best[name] = (max(odds for odds, _ in active), active)
        if len(best) < len(names) or len(names) < 2:
            continue
        implied = sum(1 / odds for odds, _ in best.values())
        if implied >= 1 + BOUNDARY:
            continue
        legs = [
            (name, odds, sorted(b for o, b in active if o == odds), (1 / odds) / implied)
            for name, (odds, active) in best.items()
        ]
        found[m] = Arb(implied, legs) if implied < 1 - BOUNDARY else None
    return found


# --- the property ----------------------------------------------------------------------------------

_events = itertools.count()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(board=boards())
def test_margins_and_arbitrage_match_the_reference(dsn: str, board: Board) -> None:
    asyncio.run(check(dsn, board, next(_events)))


async def check(dsn: str, board: Board, number: int) -> None:
    async with OddsStore.connect(dsn, min_size=1, max_size=1) as store:
        sport = await store.upsert_sport("Football", "football")
        tournament = await store.upsert_tournament(sport.id, "Cup", None)
        now = datetime.now(UTC)
        event = await store.upsert_event(tournament.id, f"bp-{number}", "H", "A", now + timedelta(days=1))
        books = [(await store.upsert_bookmaker(f"Book {b}", f"book-{b}")).id for b in range(len(board.fresh))]
        snapshots: list[dict[str, Any]] = [
            {
                "event_id": event.id,
                "bookmaker_id": book,
                "captured_at": now - (timedelta(minutes=1) if fresh else timedelta(hours=2)),
                "markets": [
                    {"betpawa_market_id": f"m{m}", "betpawa_market_name": f"Market {m}",
                     "outcomes": [{"name": n, "odds": o, "is_active": a} for n, o, a in offers[b]]}
                    for m, offers in enumerate(board.markets)
                    if offers[b] is not None
                ],
            }
            for b, (book, fresh) in enumerate(zip(books, board.fresh, strict=True))
        ]  # fmt: skip
        await store.write_snapshots(snapshots)

        margins = {(books.index(r.bookmaker_id), int(r.betpawa_market_id[1:])): r for r in
                   await store.margins(event_id=event.id)}  # fmt: skip
        expected_margins = reference_margins(board)
        assert margins.keys() == expected_margins.keys()
        for key, expected in expected_margins.items():
            assert close(margins[key].margin_pct, expected), (key, margins[key].margin_pct, expected)

        arbitrages = {int(a.betpawa_market_id[1:]): a for a in await store.arbitrage(MAX_AGE) if a.event_id == event.id}
        expected_arbitrages = reference_arbitrage(board)
        assert arbitrages.keys() <= expected_arbitrages.keys()
        for m, arb in expected_arbitrages.items():
            if arb is None:  # on the boundary: either answer is right
                continue
            found = arbitrages[m]
            assert close(found.implied_sum, arb.implied)
            assert close(found.profit_pct, (1 / arb.implied - 1) * 100)
            assert [(leg.outcome, leg.odds, leg.bookmaker_ids) for leg in found.legs] == [
                (name, odds, [books[b] for b in ids]) for name, odds, ids, _ in arb.legs
            ]
            assert all(close(leg.stake_share, share) for leg, (*_, share) in zip(found.legs, arb.legs, strict=True))
