"""One event's markets over time (queries/event_detail.sql): margin history per bookmaker and
line, and the markets a bookmaker no longer lists, since when. Answers worked out by hand on a
small feed written through write_snapshots.

The feed, minute by minute (BetPawa, SportyBet):
  0: BP 1X2, O/U 2.5, BTTS;                SB 1X2, BTTS
 10: BP 1X2 moves, O/U 2.5 "Under" suspended, BTTS unchanged
 20: BP 1X2, O/U and BTTS gone;            SB 1X2 gone, BTTS unchanged
 30: BP 1X2, O/U 2.5 back (BTTS still gone)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import World, on_citus

from oddsstore import InvalidInputError, OddsStore

X12, TOTALS, BTTS = "3743", "3752", "3764"
NAMES = {X12: "1X2 - FT", TOTALS: "Over/Under - FT", BTTS: "Both Teams To Score - FT"}
OUTCOMES = {X12: ("1", "X", "2"), TOTALS: ("Over", "Under"), BTTS: ("Yes", "No")}

pytestmark = on_citus


def market(market_id: str, spec: str, line: float | None = None) -> dict[str, Any]:
    outcomes = [
        {"name": name, "odds": float(price.rstrip("s")), "is_active": not price.endswith("s")}
        for name, price in zip(OUTCOMES[market_id], spec.split(), strict=True)
    ]
    return {"betpawa_market_id": market_id, "betpawa_market_name": NAMES[market_id], "line": line,
            "outcomes": outcomes}  # fmt: skip


def margin(*prices: float) -> float:
    return (sum(1 / p for p in prices) - 1) * 100


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


FEED = {
    0: {
        0: [market(X12, "2.00 3.40 4.00"), market(TOTALS, "1.90 1.90", 2.5), market(BTTS, "1.80 1.95")],
        1: [market(X12, "2.10 3.30 3.80"), market(BTTS, "1.75 2.00")],
    },
    10: {0: [market(X12, "1.90 3.50 4.20"), market(TOTALS, "1.90 1.90s", 2.5), market(BTTS, "1.80 1.95")]},
    20: {0: [market(X12, "1.90 3.50 4.20")], 1: [market(BTTS, "1.75 2.00")]},
    30: {0: [market(X12, "1.90 3.50 4.20"), market(TOTALS, "1.85 1.95", 2.5)]},
}


@dataclass(frozen=True)
class Detail:
    event: int
    books: list[int]
    start: datetime

    def at(self, minute: int) -> datetime:
        return self.start + timedelta(minutes=minute)


@pytest.fixture
async def detail(store: OddsStore, world: World) -> Detail:
    start = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    feed = Detail(world.events[0].id, [world.bookmakers[0].id, world.bookmakers[1].id], start)
    for minute, books in FEED.items():
        await store.write_snapshots(
            [
                {"event_id": feed.event, "bookmaker_id": feed.books[book], "captured_at": feed.at(minute),
                 "markets": markets}
                for book, markets in books.items()
            ]
        )  # fmt: skip
    return feed


async def test_margin_history_has_a_point_per_change_per_bookmaker(store: OddsStore, detail: Detail) -> None:
    bp, sb = detail.books

    points = await store.margin_history(detail.event, X12)

    got = [(p.captured_at, p.bookmaker_id, p.line, p.listed) for p in points]
    assert got == [
        (detail.at(0), bp, None, True),
        (detail.at(0), sb, None, True),
        (detail.at(10), bp, None, True),
        (detail.at(20), sb, None, False),  # SportyBet stopped listing it
    ]
    expected = [margin(2.00, 3.40, 4.00), margin(2.10, 3.30, 3.80), margin(1.90, 3.50, 4.20), None]
    assert all(close(p.margin_pct, e) for p, e in zip(points, expected, strict=True)), points
    assert {(p.event_id, p.betpawa_market_id) for p in points} == {(detail.event, X12)}


async def test_margin_history_of_a_line_is_none_while_suspended_or_gone(store: OddsStore, detail: Detail) -> None:
    bp, sb = detail.books

    points = await store.margin_history(detail.event, TOTALS, line=2.5)

    assert [(p.captured_at, p.listed) for p in points] == [
        (detail.at(0), True), (detail.at(10), True), (detail.at(20), False), (detail.at(30), True),
    ]  # fmt: skip
    expected = [margin(1.90, 1.90), None, None, margin(1.85, 1.95)]
    assert all(close(p.margin_pct, e) for p, e in zip(points, expected, strict=True)), points
    assert await store.margin_history(detail.event, TOTALS, line=3.5) == []
    assert await store.margin_history(detail.event, TOTALS, bookmaker_id=sb) == []
    assert len(await store.margin_history(detail.event, TOTALS, bookmaker_id=bp)) == 4


async def test_placeholder_prices_never_count_in_a_margin(store: OddsStore, detail: Detail) -> None:
    """Bet9ja's suspended "1" and a 0 placeholder, flagged active: stored as given (here written
    into the log directly, as the write path stores them), never a margin."""
    bp = detail.books[0]
    await store.pool.execute(
        """insert into market_changes (event_id, bookmaker_id, captured_at, line_key, betpawa_market_id,
                                       betpawa_market_name, outcomes)
           values ($1, $2, $3, 'NaN', $4, $5, $6)""",
        detail.event, bp, detail.at(40), X12, NAMES[X12],
        [{"name": "1", "odds": 1.0, "is_active": True}, {"name": "X", "odds": 0, "is_active": True},
         {"name": "2", "odds": 5.0, "is_active": True}],
    )  # fmt: skip

    last = (await store.margin_history(detail.event, X12, bookmaker_id=bp))[-1]

    assert (last.captured_at, last.listed, last.margin_pct) == (detail.at(40), True, None)


async def test_missing_markets_say_since_when_and_who_still_lists_them(store: OddsStore, detail: Detail) -> None:
    bp, sb = detail.books

    missing = await store.missing_markets(detail.event)

    got = [(m.betpawa_market_id, m.line, m.bookmaker_id, m.betpawa_market_name, m.missing_since, m.last_listed_at,
            m.listed_by) for m in missing]  # fmt: skip
    assert got == [
        # SportyBet's 1X2, gone at 20; BetPawa still lists it.
        (X12, None, sb, NAMES[X12], detail.at(20), detail.at(0), [bp]),
        # BetPawa's BTTS, listed unchanged from 0 to 10, gone at 20; SportyBet still lists it.
        (BTTS, None, bp, NAMES[BTTS], detail.at(20), detail.at(0), [sb]),
    ]
    # Over/under 2.5 went missing at 20 and came back at 30: not missing.
    assert all(m.event_id == detail.event for m in missing)
    assert await store.missing_markets(detail.event + 1000) == []


@pytest.mark.python_checks
async def test_bad_margin_history_line_is_refused(store: OddsStore, detail: Detail) -> None:
    with pytest.raises(InvalidInputError, match="finite"):
        await store.margin_history(detail.event, TOTALS, line=math.inf)
    assert len(await store.margin_history(detail.event, TOTALS)) == 4
