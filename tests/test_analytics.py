"""Odds analytics (queries/analytics.sql): each query against answers worked out by hand on a small
fixed feed, and the commands that print them.

Two feeds, each written through ``write_snapshots``:

* ``history``: one event whose kickoff was 2h20m ago, scraped every 10 minutes from 3 hours ago
  (minutes 0-50, kickoff at minute 40) by three bookmakers that skip some cycles. It has price
  drops, a suspended outcome, a fully suspended market, an over/under line that disappears,
  comes back and disappears again, and live prices after kickoff.
* ``board``: the latest odds of an upcoming event (BetPawa and SportyBet fresh, Bet9ja two hours
  old), with a suspended outcome, a market only some bookmakers list and one whose bookmakers list
  different outcomes; plus one event of another tournament.
"""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import World, on_citus

from oddsstore import Event, InvalidInputError, OddsStore
from oddsstore.cli import DSN_VARIABLES

MATCH_ODDS, TOTALS, BOTH_SCORE, ODD_ONE = "3743", "5000", "6000", "7000"
MARKET_NAMES = {
    MATCH_ODDS: "1X2 - FT",
    TOTALS: "Over/Under - FT",
    BOTH_SCORE: "Both Teams To Score - FT",
    ODD_ONE: "Odd Market",
}

pytestmark = on_citus
STEAM_ON_CITUS = (
    "steam_moves (queries/analytics.sql) reads every event: a lateral subquery with LIMIT over a CTE, which Citus "
    "cannot push down to the shards"
)


def close(a: float | None, b: float | None) -> bool:
    """Equal up to float rounding (both ``None`` counts as equal)."""
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def market(market_id: str, line: float | None, spec: str, names: tuple[str, ...] = ()) -> dict[str, Any]:
    """A market dict from a spec like ``"2.00 3.40s 4.00"`` (prices in the order of ``names``) or
    ``"1=2.50 X=3.00"``; a trailing ``s`` marks a suspended outcome."""
    outcomes = []
    for number, item in enumerate(spec.split()):
        name, _, price = item.rpartition("=") if "=" in item else (names[number], "", item)
        outcomes.append({"name": name, "odds": float(price.rstrip("s")), "is_active": not price.endswith("s")})
    return {"betpawa_market_id": market_id, "betpawa_market_name": MARKET_NAMES[market_id], "line": line,
            "outcomes": outcomes}  # fmt: skip


def x12(spec: str) -> dict[str, Any]:
    return market(MATCH_ODDS, None, spec, ("1", "X", "2"))


def totals(line: float, spec: str) -> dict[str, Any]:
    return market(TOTALS, line, spec, ("Over", "Under"))


def both_score(spec: str) -> dict[str, Any]:
    return market(BOTH_SCORE, None, spec, ("Yes", "No"))


def odd_one(spec: str) -> dict[str, Any]:
    """A market whose bookmakers list different outcomes."""
    return market(ODD_ONE, None, spec)


# --- the history feed ------------------------------------------------------------------------------

KICKOFF_MINUTE = 40
# minute -> bookmaker (0 BetPawa, 1 SportyBet, 2 Bet9ja) -> markets it listed then.
HISTORY = {
    0: {
        0: [x12("2.00 3.40 4.00"), totals(2.5, "1.90 1.90"), totals(3.5, "2.80 1.40")],
        1: [x12("2.10 3.30 3.80"), totals(2.5, "1.95 1.85")],
        2: [x12("1.95 3.50 4.20"), totals(2.5, "1.85 2.00")],
    },
    10: {
        0: [x12("1.80 3.40 4.50"), totals(2.5, "1.90 1.90"), totals(3.5, "2.80 1.40")],
        1: [x12("2.10 3.30 3.80"), totals(2.5, "1.95 1.85s")],
        2: [x12("1.95 3.50 4.20"), totals(2.5, "1.85 2.00")],
    },
    20: {
        0: [x12("1.80 3.40 4.50"), totals(2.5, "1.90 1.90")],  # 3.5 gone
        1: [x12("1.85 3.40 4.40"), totals(2.5, "1.95 1.85")],
    },
    30: {
        0: [x12("1.80 3.40 4.50"), totals(2.5, "1.90 1.90"), totals(3.5, "2.60 1.45")],  # 3.5 back
        2: [x12("1.95 3.50 4.20"), totals(2.5, "1.85s 2.00s")],
    },
    40: {0: [x12("1.75 3.50 4.60"), totals(2.5, "1.90 1.90")]},  # at kickoff; 3.5 gone again
    50: {  # live
        0: [x12("1.20 6.00 12.00"), totals(2.5, "1.90 1.90")],
        1: [x12("1.85 3.40 4.40"), totals(2.5, "2.05 1.75")],
    },
}


@dataclass(frozen=True)
class History:
    event: Event
    start: datetime
    books: list[int]

    def at(self, minute: int) -> datetime:
        return self.start + timedelta(minutes=minute)


@pytest.fixture
async def history(store: OddsStore, world: World) -> History:
    start = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)
    event = await store.upsert_event(
        world.events[0].tournament_id, "bp-history", "Home H", "Away H", start + timedelta(minutes=KICKOFF_MINUTE)
    )
    feed = History(event, start, [b.id for b in world.bookmakers])
    for minute, books in HISTORY.items():
        await store.write_snapshots(
            [
                {"event_id": event.id, "bookmaker_id": feed.books[book], "captured_at": feed.at(minute),
                 "markets": markets}
                for book, markets in books.items()
            ]
        )  # fmt: skip
    return feed


# --- the board feed --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Board:
    event: Event
    other: Event  # in another tournament
    books: list[int]
    seen: list[datetime]  # when each bookmaker last scraped the event


@pytest.fixture
async def board(store: OddsStore, world: World) -> Board:
    now = datetime.now(UTC)
    event, books = world.events[0], [b.id for b in world.bookmakers]
    seen = [now - timedelta(minutes=5), now - timedelta(minutes=4), now - timedelta(hours=2)]
    listed = [
        [x12("2.00 3.60 3.60"), totals(2.5, "2.10 1.80"), both_score("1.70 2.05s"), odd_one("1=2.50 2=2.50")],
        [x12("2.05 3.40 3.70"), totals(2.5, "2.00 1.95"), odd_one("1=2.00 X=3.00 2=2.00")],
        [x12("2.20 3.60 3.90"), totals(2.5, "2.30 1.70"), both_score("1.75 2.00")],
    ]
    sport_id = (await store.upsert_sport("Football", "football")).id
    laliga = await store.upsert_tournament(sport_id, "LaLiga", "Spain")
    other = await store.upsert_event(laliga.id, "bp-laliga", "Home L", "Away L", event.kickoff)
    await store.write_snapshots(
        [{"event_id": event.id, "bookmaker_id": b, "captured_at": at, "markets": m}
         for b, at, m in zip(books, seen, listed, strict=True)]
        + [{"event_id": other.id, "bookmaker_id": books[0], "captured_at": seen[0], "markets": [x12("1.50 4.00 6.00")]}]
    )  # fmt: skip
    return Board(event, other, books, seen)


def margin(*prices: float) -> float:
    return (sum(1 / p for p in prices) - 1) * 100


# --- compare_event ---------------------------------------------------------------------------------


async def test_compare_puts_every_bookmakers_latest_prices_side_by_side(store: OddsStore, board: Board) -> None:
    b1, b2, b3 = board.books

    rows = await store.compare_event(board.event.id, home_bookmaker_id=b1)

    got = [(r.betpawa_market_id, r.line, r.outcome, r.prices, r.best_odds, r.best_bookmaker_ids, r.home_odds,
            r.best_competitor_odds) for r in rows]  # fmt: skip
    assert got == [
        # Outcomes in the stored order: by name (docs/schema.md).
        (MATCH_ODDS, None, "1", {b1: 2.00, b2: 2.05, b3: 2.20}, 2.20, [b3], 2.00, 2.20),
        (MATCH_ODDS, None, "2", {b1: 3.60, b2: 3.70, b3: 3.90}, 3.90, [b3], 3.60, 3.90),
        (MATCH_ODDS, None, "X", {b1: 3.60, b2: 3.40, b3: 3.60}, 3.60, [b1, b3], 3.60, 3.60),
        (TOTALS, 2.5, "Over", {b1: 2.10, b2: 2.00, b3: 2.30}, 2.30, [b3], 2.10, 2.30),
        (TOTALS, 2.5, "Under", {b1: 1.80, b2: 1.95, b3: 1.70}, 1.95, [b2], 1.80, 1.95),
        # SportyBet does not list it; BetPawa's "No" is suspended: no home price, not the best.
        (BOTH_SCORE, None, "No", {b1: None, b3: 2.00}, 2.00, [b3], None, 2.00),
        (BOTH_SCORE, None, "Yes", {b1: 1.70, b3: 1.75}, 1.75, [b3], 1.70, 1.75),
        (ODD_ONE, None, "1", {b1: 2.50, b2: 2.00}, 2.50, [b1], 2.50, 2.00),
        (ODD_ONE, None, "2", {b1: 2.50, b2: 2.00}, 2.50, [b1], 2.50, 2.00),
        (ODD_ONE, None, "X", {b2: 3.00}, 3.00, [b2], None, 3.00),
    ]
    gaps = [r.gap_pct for r in rows]
    expected = [2.00 / 2.20 - 1, 3.60 / 3.90 - 1, 0, 2.10 / 2.30 - 1, 1.80 / 1.95 - 1, None, 1.70 / 1.75 - 1, 0.25,
                0.25, None]  # fmt: skip
    assert all(close(g, None if e is None else e * 100) for g, e in zip(gaps, expected, strict=True)), gaps
    assert rows[0].betpawa_market_name == "1X2 - FT" and rows[0].event_id == board.event.id


async def test_compare_without_a_home_bookmaker_leaves_the_gap_out(store: OddsStore, board: Board) -> None:
    rows = await store.compare_event(board.event.id)

    assert len(rows) == 10
    assert all(r.home_odds is None and r.best_competitor_odds is None and r.gap_pct is None for r in rows)
    assert await store.compare_event(424242) == []


# --- margins ---------------------------------------------------------------------------------------


async def test_margins_cover_complete_current_markets_only(store: OddsStore, board: Board) -> None:
    b1, b2, b3 = board.books

    rows = await store.margins(event_id=board.event.id)

    got = [(r.betpawa_market_id, r.line, r.bookmaker_id, r.outcomes) for r in rows]
    # BetPawa's both-teams-to-score has a suspended outcome: not a complete market.
    assert got == [
        (MATCH_ODDS, None, b1, 3), (MATCH_ODDS, None, b2, 3), (MATCH_ODDS, None, b3, 3),
        (TOTALS, 2.5, b1, 2), (TOTALS, 2.5, b2, 2), (TOTALS, 2.5, b3, 2),
        (BOTH_SCORE, None, b3, 2),
        (ODD_ONE, None, b1, 2), (ODD_ONE, None, b2, 3),
    ]  # fmt: skip
    expected = [margin(2.00, 3.60, 3.60), margin(2.05, 3.40, 3.70), margin(2.20, 3.60, 3.90),
                margin(2.10, 1.80), margin(2.00, 1.95), margin(2.30, 1.70),
                margin(1.75, 2.00),
                -20.0, 100 / 3]  # fmt: skip
    assert all(close(r.margin_pct, e) for r, e in zip(rows, expected, strict=True)), [r.margin_pct for r in rows]
    assert rows[0].changed_at == board.seen[0] and rows[2].changed_at == board.seen[2]
    assert {r.tournament_id for r in rows} == {board.event.tournament_id}


async def test_margins_filter_by_tournament_market_and_time(store: OddsStore, board: Board) -> None:
    laliga = await store.margins(tournament_id=board.other.tournament_id)
    assert [(r.event_id, r.betpawa_market_id) for r in laliga] == [(board.other.id, MATCH_ODDS)]
    assert close(laliga[0].margin_pct, margin(1.50, 4.00, 6.00))

    totals_only = await store.margins(market_id=TOTALS)
    assert [r.bookmaker_id for r in totals_only] == board.books

    recent = await store.margins(since=datetime.now(UTC) - timedelta(minutes=30))
    assert board.books[2] not in {r.bookmaker_id for r in recent}  # Bet9ja's prices are two hours old
    assert {r.event_id for r in recent} == {board.event.id, board.other.id}
    assert len(await store.margins()) == 10


async def test_tournament_margins_aggregate_per_tournament_and_bookmaker(store: OddsStore, board: Board) -> None:
    b1, b2, b3 = board.books

    rows = await store.tournament_margins()

    per_book = {
        b1: [margin(2.00, 3.60, 3.60), margin(2.10, 1.80), -20.0],
        b2: [margin(2.05, 3.40, 3.70), margin(2.00, 1.95), 100 / 3],
        b3: [margin(2.20, 3.60, 3.90), margin(2.30, 1.70), margin(1.75, 2.00)],
    }
    assert [(r.tournament_name, r.country, r.bookmaker_id, r.markets, r.events) for r in rows] == [
        ("LaLiga", "Spain", b1, 1, 1),
        ("Premier League", "England", b1, 3, 1),
        ("Premier League", "England", b2, 3, 1),
        ("Premier League", "England", b3, 3, 1),
    ]
    assert close(rows[0].avg_margin_pct, margin(1.50, 4.00, 6.00))
    for r in rows[1:]:
        values = per_book[r.bookmaker_id]
        assert close(r.avg_margin_pct, sum(values) / 3)
        assert close(r.min_margin_pct, min(values)) and close(r.max_margin_pct, max(values))

    match_odds = await store.tournament_margins(tournament_id=board.event.tournament_id, market_id=MATCH_ODDS)
    assert [(r.bookmaker_id, r.markets) for r in match_odds] == [(b1, 1), (b2, 1), (b3, 1)]
    later = await store.tournament_margins(since=datetime.now(UTC) + timedelta(minutes=1))
    assert later == []


# --- arbitrage -------------------------------------------------------------------------------------


async def test_arbitrage_uses_only_fresh_active_prices(store: OddsStore, board: Board) -> None:
    b1, b2, _ = board.books

    (found,) = await store.arbitrage(timedelta(minutes=30))

    # Bet9ja's two-hour-old prices are left out: only the totals line is an arbitrage then.
    implied = 1 / 2.10 + 1 / 1.95
    assert (found.event_id, found.betpawa_market_id, found.line) == (board.event.id, TOTALS, 2.5)
    assert close(found.implied_sum, implied) and close(found.profit_pct, (1 / implied - 1) * 100)
    assert [(leg.outcome, leg.odds, leg.bookmaker_ids) for leg in found.legs] == [
        ("Over", 2.10, [b1]),
        ("Under", 1.95, [b2]),
    ]
    assert close(found.legs[0].stake_share, (1 / 2.10) / implied)
    assert close(found.legs[1].stake_share, (1 / 1.95) / implied)
    assert found.confirmed_at == board.seen[0]
    assert found.betpawa_market_name == "Over/Under - FT"


async def test_arbitrage_with_older_odds_and_the_same_outcomes_only(store: OddsStore, board: Board) -> None:
    b1, b2, b3 = board.books

    found = await store.arbitrage(timedelta(hours=3))

    # Most profitable first. BetPawa's own "odd" market sums to 0.8, but SportyBet lists other
    # outcomes for it: never an arbitrage. Both-teams-to-score: 1/1.75 + 1/2.00 > 1.
    assert [(a.betpawa_market_id, a.line) for a in found] == [(TOTALS, 2.5), (MATCH_ODDS, None)]
    totals_arb, match_arb = found
    assert [(leg.outcome, leg.odds, leg.bookmaker_ids) for leg in totals_arb.legs] == [
        ("Over", 2.30, [b3]),
        ("Under", 1.95, [b2]),
    ]
    assert [(leg.outcome, leg.odds, leg.bookmaker_ids) for leg in match_arb.legs] == [
        ("1", 2.20, [b3]),
        ("2", 3.90, [b3]),
        ("X", 3.60, [b1, b3]),
    ]
    implied = 1 / 2.20 + 1 / 3.60 + 1 / 3.90
    assert close(match_arb.profit_pct, (1 / implied - 1) * 100)
    assert close(sum(leg.stake_share for leg in match_arb.legs), 1.0)
    assert match_arb.confirmed_at == board.seen[2]
    assert await store.arbitrage(timedelta(minutes=1)) == []


# --- opening and closing odds ----------------------------------------------------------------------


async def test_opening_and_closing_odds_stop_at_kickoff(store: OddsStore, history: History) -> None:
    b1, b2, b3 = history.books

    rows = await store.opening_closing(history.event.id)

    got = [(r.betpawa_market_id, r.line, r.bookmaker_id, r.outcome, r.opening_odds, r.closing_odds,
            r.closing_at, r.closing_active, r.listed_at_kickoff, r.confirmed_at) for r in rows]  # fmt: skip
    at = history.at
    assert got == [
        # BetPawa's last change at or before kickoff is at kickoff itself; the live one is not used.
        (MATCH_ODDS, None, b1, "1", 2.00, 1.75, at(40), True, True, at(40)),
        (MATCH_ODDS, None, b1, "2", 4.00, 4.60, at(40), True, True, at(40)),
        (MATCH_ODDS, None, b1, "X", 3.40, 3.50, at(40), True, True, at(40)),
        # SportyBet was last seen before kickoff at minute 20.
        (MATCH_ODDS, None, b2, "1", 2.10, 1.85, at(20), True, True, at(20)),
        (MATCH_ODDS, None, b2, "2", 3.80, 4.40, at(20), True, True, at(20)),
        (MATCH_ODDS, None, b2, "X", 3.30, 3.40, at(20), True, True, at(20)),
        # Bet9ja never changed it: the closing state is the opening one.
        (MATCH_ODDS, None, b3, "1", 1.95, 1.95, at(0), True, True, at(30)),
        (MATCH_ODDS, None, b3, "2", 4.20, 4.20, at(0), True, True, at(30)),
        (MATCH_ODDS, None, b3, "X", 3.50, 3.50, at(0), True, True, at(30)),
        (TOTALS, 2.5, b1, "Over", 1.90, 1.90, at(0), True, True, at(40)),
        (TOTALS, 2.5, b1, "Under", 1.90, 1.90, at(0), True, True, at(40)),
        (TOTALS, 2.5, b2, "Over", 1.95, 1.95, at(20), True, True, at(20)),
        (TOTALS, 2.5, b2, "Under", 1.85, 1.85, at(20), True, True, at(20)),
        # Suspended at its closing state: reported as stored, with no movement.
        (TOTALS, 2.5, b3, "Over", 1.85, 1.85, at(30), False, True, at(30)),
        (TOTALS, 2.5, b3, "Under", 2.00, 2.00, at(30), False, True, at(30)),
        # Gone at kickoff: the closing odds are the last ones it was listed with (minute 30).
        (TOTALS, 3.5, b1, "Over", 2.80, 2.60, at(30), True, False, at(40)),
        (TOTALS, 3.5, b1, "Under", 1.40, 1.45, at(30), True, False, at(40)),
    ]
    assert all(r.opening_at == at(0) and r.opening_active for r in rows)
    movements = [r.movement_pct for r in rows]
    expected = [1.75 / 2.00, 4.60 / 4.00, 3.50 / 3.40, 1.85 / 2.10, 4.40 / 3.80, 3.40 / 3.30] + [1.0] * 7 + [
        None, None, 2.60 / 2.80, 1.45 / 1.40]  # fmt: skip
    assert all(close(m, None if e is None else (e - 1) * 100) for m, e in zip(movements, expected, strict=True)), (
        movements
    )
    assert rows[-1].betpawa_market_name == "Over/Under - FT"
    assert await store.opening_closing(424242) == []


async def test_an_event_yet_to_start_closes_at_its_current_prices(store: OddsStore, board: Board) -> None:
    rows = await store.opening_closing(board.event.id)

    assert len(rows) == 9 + 8 + 7  # outcomes listed by BetPawa, SportyBet, Bet9ja
    assert all(r.opening_odds == r.closing_odds and r.listed_at_kickoff for r in rows)
    # A move between prices on offer only: suspended outcomes have none.
    assert all(r.movement_pct == (0 if r.opening_active and r.closing_active else None) for r in rows)


# --- line movement ---------------------------------------------------------------------------------


async def test_line_movement_lists_every_change_oldest_first(store: OddsStore, history: History) -> None:
    b1, b2, b3 = history.books
    at = history.at

    changes = await store.line_movement(history.event.id, TOTALS)

    def prices(outcomes: list[Any] | None) -> list[tuple[float, bool]] | None:
        return None if outcomes is None else [(o.odds, o.is_active) for o in outcomes]

    got = [(c.captured_at, c.bookmaker_id, c.line, prices(c.outcomes)) for c in changes]
    assert got == [
        (at(0), b1, 2.5, [(1.90, True), (1.90, True)]),
        (at(0), b1, 3.5, [(2.80, True), (1.40, True)]),
        (at(0), b2, 2.5, [(1.95, True), (1.85, True)]),
        (at(0), b3, 2.5, [(1.85, True), (2.00, True)]),
        (at(10), b2, 2.5, [(1.95, True), (1.85, False)]),  # suspended
        (at(20), b1, 3.5, None),  # gone
        (at(20), b2, 2.5, [(1.95, True), (1.85, True)]),
        (at(30), b1, 3.5, [(2.60, True), (1.45, True)]),  # back
        (at(30), b3, 2.5, [(1.85, False), (2.00, False)]),
        (at(40), b1, 3.5, None),
        (at(50), b2, 2.5, [(2.05, True), (1.75, True)]),
    ]
    assert [c.betpawa_market_name for c in changes if c.line == 3.5] == [MARKET_NAMES[TOTALS], None] * 2

    one_line = await store.line_movement(history.event.id, TOTALS, line=3.5)
    assert [(c.captured_at, c.outcomes is None) for c in one_line] == [
        (at(0), False), (at(20), True), (at(30), False), (at(40), True)
    ]  # fmt: skip
    match_odds = await store.line_movement(history.event.id, MATCH_ODDS)
    assert [(c.captured_at, c.bookmaker_id) for c in match_odds] == [
        (at(0), b1), (at(0), b2), (at(0), b3), (at(10), b1), (at(20), b2), (at(40), b1), (at(50), b1)
    ]  # fmt: skip
    assert await store.line_movement(history.event.id, TOTALS, line=4.5) == []


async def test_a_disappeared_line_is_not_compared(store: OddsStore, history: History) -> None:
    rows = await store.compare_event(history.event.id)
    assert {(r.betpawa_market_id, r.line) for r in rows} == {(MATCH_ODDS, None), (TOTALS, 2.5)}


# --- steam moves -----------------------------------------------------------------------------------


@pytest.mark.citus_unsupported(STEAM_ON_CITUS)
async def test_steam_moves_compare_with_the_highest_price_in_the_window(store: OddsStore, history: History) -> None:
    b1, b2, _ = history.books
    at = history.at

    moves = await store.steam_moves(since=at(15), min_drop_pct=5, window=timedelta(minutes=10))

    got = [(m.captured_at, m.bookmaker_id, m.betpawa_market_id, m.line, m.outcome, m.odds, m.reference_odds,
            m.bookmakers_dropping) for m in moves]  # fmt: skip
    assert got == [
        # 2.10 since minute 0, long before the window opened at minute 10: still the reference.
        (at(20), b2, MATCH_ODDS, None, "1", 1.85, 2.10, 2),
        # Gone at 20, back at 30 lower: the price the disappearance replaced counts.
        (at(30), b1, TOTALS, 3.5, "Over", 2.60, 2.80, 1),
        # The window [40, 50] includes the 1.80 replaced at minute 40 (1.75 was only 2.8% lower).
        (at(50), b1, MATCH_ODDS, None, "1", 1.20, 1.80, 2),
        # 1.85 again after a suspension; the drop to 1.75 is measured from it.
        (at(50), b2, TOTALS, 2.5, "Under", 1.75, 1.85, 1),
    ]
    expected = [1 - 1.85 / 2.10, 1 - 2.60 / 2.80, 1 - 1.20 / 1.80, 1 - 1.75 / 1.85]
    assert all(close(m.drop_pct, e * 100) for m, e in zip(moves, expected, strict=True))
    assert moves[0].betpawa_market_name == "1X2 - FT"


@pytest.mark.citus_unsupported(STEAM_ON_CITUS)
async def test_steam_moves_threshold_and_since(store: OddsStore, history: History) -> None:
    b1, b2, _ = history.books
    at = history.at

    moves = await store.steam_moves(since=at(0), min_drop_pct=8, window=timedelta(minutes=10))

    assert [(m.captured_at, m.bookmaker_id, m.outcome, m.reference_odds) for m in moves] == [
        (at(10), b1, "1", 2.00),
        (at(20), b2, "1", 2.10),
        (at(50), b1, "1", 1.80),
    ]
    assert await store.steam_moves(since=at(55), min_drop_pct=1, window=timedelta(hours=1)) == []


@pytest.mark.citus_unsupported(STEAM_ON_CITUS)
async def test_steam_moves_find_the_price_set_days_before_the_window(store: OddsStore, world: World) -> None:
    """A pair last scraped two days ago, then again now with a lower price: the price in force
    when the window opened was set two days ago, in another day's partition (nothing of the
    pair was logged yesterday), and is the reference."""
    now = datetime.now(UTC).replace(microsecond=0)
    event = await store.upsert_event(
        world.events[0].tournament_id, "bp-days", "Home D", "Away D", now + timedelta(days=1)
    )
    book = world.bookmakers[0].id
    for captured_at, spec in (
        (now - timedelta(days=2), "2.00 3.40 4.00"),
        (now - timedelta(minutes=5), "1.80 3.40 4.00"),
    ):
        await store.write_snapshots(
            [{"event_id": event.id, "bookmaker_id": book, "captured_at": captured_at, "markets": [x12(spec)]}]
        )

    moves = await store.steam_moves(since=now - timedelta(minutes=30), min_drop_pct=5, window=timedelta(hours=1))

    assert [(m.event_id, m.outcome, m.odds, m.reference_odds) for m in moves] == [(event.id, "1", 1.80, 2.00)]


@pytest.mark.python_checks
@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.steam_moves(datetime(2026, 1, 1), 5, timedelta(minutes=5)),
        lambda s: s.steam_moves(datetime.now(UTC), 0, timedelta(minutes=5)),
        lambda s: s.steam_moves(datetime.now(UTC), 100, timedelta(minutes=5)),
        lambda s: s.steam_moves(datetime.now(UTC), float("nan"), timedelta(minutes=5)),
        lambda s: s.steam_moves(datetime.now(UTC), 5, timedelta(0)),
        lambda s: s.arbitrage(timedelta(seconds=-1)),
        lambda s: s.margins(since=datetime(2026, 1, 1)),
        lambda s: s.tournament_margins(since=datetime(2026, 1, 1)),
        lambda s: s.line_movement(1, TOTALS, line=float("nan")),
    ],
    ids=[
        "naive-since",
        "zero-drop",
        "full-drop",
        "nan-drop",
        "empty-window",
        "negative-age",
        "naive-margins",
        "naive-tournament",
        "nan-line",
    ],
)
async def test_bad_arguments_are_refused(store: OddsStore, call: Any) -> None:
    with pytest.raises(InvalidInputError):
        await call(store)


# --- the commands ----------------------------------------------------------------------------------


def oddsstore(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m oddsstore ARGS`` (or ``python -c CODE ARGS``) with no DSN in the environment."""
    command = ["-c", code] if code else ["-m", "oddsstore"]
    env = {name: value for name, value in os.environ.items() if name not in DSN_VARIABLES}
    return subprocess.run([sys.executable, *command, *args], capture_output=True, text=True, env=env, timeout=120)


def succeeded(run: subprocess.CompletedProcess[str]) -> list[str]:
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()


def failed(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    return run.stderr.strip().splitlines()[-1]


async def test_compare_margins_and_arbitrage_commands(dsn: str, board: Board) -> None:
    event = str(board.event.id)

    def run() -> dict[str, list[str]]:
        return {
            "compare": succeeded(oddsstore("--dsn", dsn, "compare", event, "--home", "betpawa")),
            "plain": succeeded(oddsstore("--dsn", dsn, "compare", event, "--market", TOTALS)),
            "margins": succeeded(oddsstore("--dsn", dsn, "margins")),
            "event margins": succeeded(oddsstore("--dsn", dsn, "margins", "--event", event)),
            "arbitrage": succeeded(oddsstore("--dsn", dsn, "arbitrage", "--max-age", "30")),
        }

    out = await asyncio.to_thread(run)

    compare = out["compare"]
    assert compare[0].startswith("Home 1 v Away 1 (event ")
    assert compare[1].split() == ["id", "market", "outcome", "BetPawa", "SportyBet", "Bet9ja", "BetPawa", "gap"]
    assert compare[3].split() == [MATCH_ODDS, "1X2", "-", "FT", "1", "2.00", "2.05", "2.20*", "-9.1%"]
    assert compare[5].split() == ["X", "3.60*", "3.40", "3.60*", "+0.0%"]
    assert compare[6].split() == [TOTALS, "Over/Under", "-", "FT", "2.5", "Over", "2.10", "2.00", "2.30*", "-8.7%"]
    assert compare[8].split()[-5:] == ["No", "susp", "-", "2.00*", "-"]
    assert compare[-1].startswith("* best price")
    plain = out["plain"]
    assert plain[1].split()[-1] == "Bet9ja" and len(plain) == 6
    assert any(line.split()[:3] == ["LaLiga", "(Spain)", "BetPawa"] for line in out["margins"])
    odd_market = next(line for line in out["event margins"] if line.startswith(ODD_ONE))
    assert odd_market.split()[-3:] == ["-20.0%", "33.3%", "-"]
    arbitrage = out["arbitrage"]
    assert arbitrage[1] == "Arbitrage (odds confirmed within 30 min): 1 markets"
    assert arbitrage[4].split() == ["Home", "1", "v", "Away", "1", "Over/Under", "-", "FT", "2.5", "1.1%", "Over",
                                    "2.10", "BetPawa", "48.1%"]  # fmt: skip
    assert arbitrage[5].split() == ["Under", "1.95", "SportyBet", "51.9%"]


async def test_movement_command_prints_changes_and_plots_them(dsn: str, history: History, tmp_path: Path) -> None:
    png = tmp_path / "movement.png"
    event = str(history.event.id)

    run = await asyncio.to_thread(
        oddsstore, "--dsn", dsn, "movement", event, TOTALS, "--line", "3.5", "--plot", str(png)
    )
    lines = succeeded(run)

    assert lines[0] == "Home H v Away H: Over/Under - FT (5000) at line 3.5, 4 changes, oldest first"
    assert lines[1].split() == ["time", "(UTC)", "bookmaker", "Over", "Under", "note"]
    assert lines[3].split()[2:] == ["BetPawa", "2.80", "1.40", "opened"]
    assert lines[4].split()[2:] == ["BetPawa", "gone"]
    assert lines[5].split()[2:] == ["BetPawa", "2.60", "1.45", "back"]
    assert f"plot: {png}" in run.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


async def test_command_errors_are_one_line(dsn: str, history: History, tmp_path: Path) -> None:
    event, png = str(history.event.id), str(tmp_path / "x.png")
    without_matplotlib = (
        "import sys; sys.modules['matplotlib'] = None; from oddsstore.cli import main; sys.exit(main())"
    )

    def run() -> list[str]:
        return [
            failed(oddsstore("--dsn", dsn, "movement", event, TOTALS, "--plot", png)),
            failed(oddsstore("--dsn", dsn, "movement", event, TOTALS, "--plot", png, code=without_matplotlib)),
            failed(oddsstore("--dsn", dsn, "movement", event, "nope")),
            failed(oddsstore("--dsn", dsn, "compare", "424242")),
            failed(oddsstore("--dsn", dsn, "compare", event, "--home", "nobody")),
        ]

    lines, no_matplotlib, no_market, no_event, no_home = await asyncio.to_thread(run)

    assert "has 2 lines (2.5, 3.5); choose one to plot with --line" in lines
    assert "pip install 'oddsstore[plot]'" in no_matplotlib
    assert "has no history of market 'nope'" in no_market
    assert "no event with id 424242" in no_event
    assert "no bookmaker with slug 'nobody'" in no_home and "betpawa" in no_home
    assert not Path(png).exists()
    usage = oddsstore("movement", event)
    assert usage.returncode == 2 and "usage: oddsstore" in usage.stderr
