"""The odds board (OddsStore.odds_board, queries/board.sql): a small fixed feed whose answers are
worked out by hand, paging, filters, placeholders, bad input, and its table (oddsstore.cli.board).

The feed: four upcoming events and one that has started, three bookmakers. The first event is
priced by all three: BetPawa and SportyBet fresh, Bet9ja two hours old (stale); over/under at
three lines (2.5 offered complete by all three: the main line), a suspended BTTS outcome at
SportyBet. The second event's over/under has two lines at BetPawa alone, 3.5 priced closer to
even than 2.5. The third event has no odds; the fourth is basketball; the world fixture's two
events, two days ahead, have no odds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import Server, World

from bench import board as board_bench
from oddsstore import BoardEvent, BoardMarket, InvalidInputError, OddsStore
from oddsstore.cli.board import render_board

X12, TOTALS, BTTS, DOUBLE = "3743", "3752", "3764", "3746"
NAMES = {X12: "1X2 - FT", TOTALS: "Over/Under - FT", BTTS: "Both Teams To Score - FT", DOUBLE: "Double Chance - FT"}
OUTCOMES = {X12: ("1", "X", "2"), TOTALS: ("Over", "Under"), BTTS: ("Yes", "No"), DOUBLE: ("1X", "12", "X2")}
BOARD_MARKETS = [X12, TOTALS, BTTS, DOUBLE]


def market(market_id: str, spec: str, line: float | None = None) -> dict[str, Any]:
    """A market dict from prices in outcome order, e.g. ``"2.00 3.40s 4.00"`` (``s``: suspended)."""
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


@dataclass(frozen=True)
class Board:
    events: list[int]  # the upcoming events in kickoff order (the 2nd and 3rd tie; the last two: world's)
    started: int
    books: list[int]  # BetPawa, SportyBet, Bet9ja
    football: int
    basketball: int
    laliga: int
    now: datetime


@pytest.fixture
async def board(store: OddsStore, world: World) -> Board:
    now = datetime.now(UTC).replace(microsecond=0)
    football = (await store.upsert_sport("Football", "football")).id
    basketball = (await store.upsert_sport("Basketball", "basketball")).id
    premier = world.events[0].tournament_id
    laliga = (await store.upsert_tournament(football, "LaLiga", "Spain")).id
    nba = (await store.upsert_tournament(basketball, "NBA", "USA")).id
    hour = timedelta(hours=1)
    made = [
        await store.upsert_event(tournament, f"bp-board-{n}", home, away, now + kickoff)
        for n, (tournament, home, away, kickoff) in enumerate(
            [
                (premier, "Arsenal", "Chelsea", hour),
                (premier, "Everton", "Fulham", 2 * hour),
                (laliga, "Getafe", "Sevilla", 2 * hour),
                (nba, "Celtics", "Lakers", 3 * hour),
                (premier, "Leeds", "Burnley", -hour),
            ]
        )
    ]
    books = [b.id for b in world.bookmakers]
    first, second = made[0].id, made[1].id
    fresh, old = now - timedelta(minutes=5), now - timedelta(hours=2)
    await store.write_snapshots(
        [
            {"event_id": first, "bookmaker_id": books[0], "captured_at": fresh, "markets": [
                market(X12, "2.00 3.40 4.00"), market(TOTALS, "1.30 3.40", 1.5), market(TOTALS, "1.90 1.90", 2.5),
                market(TOTALS, "2.80 1.40", 3.5), market(BTTS, "1.80 1.95"), market(DOUBLE, "1.25 1.30 1.80"),
                {**market(X12, "9.00 9.00 9.00"), "betpawa_market_id": "9999"},  # not asked for
            ]},
            {"event_id": first, "bookmaker_id": books[1], "captured_at": fresh, "markets": [
                market(X12, "2.10 3.30 3.80"), market(TOTALS, "1.95 1.85", 2.5), market(TOTALS, "2.90 1.38", 3.5),
                market(BTTS, "1.70s 2.00"),
            ]},
            {"event_id": first, "bookmaker_id": books[2], "captured_at": old, "markets": [
                market(X12, "2.50 3.60 4.50"), market(TOTALS, "2.00 1.80", 2.5),
            ]},
            {"event_id": second, "bookmaker_id": books[0], "captured_at": fresh, "markets": [
                market(X12, "1.50 4.00 6.00"), market(TOTALS, "1.70 2.10", 2.5), market(TOTALS, "2.00 1.80", 3.5),
            ]},
            {"event_id": made[4].id, "bookmaker_id": books[0], "captured_at": fresh, "markets": [
                market(X12, "1.20 6.00 12.00"),
            ]},
        ]
    )  # fmt: skip
    upcoming = [e.id for e in made[:4]] + [e.id for e in world.events]
    return Board(upcoming, made[4].id, books, football, basketball, laliga, now)


def by_id(event: BoardEvent, market_id: str, line: float | None = None) -> BoardMarket:
    return next(m for m in event.markets if m.betpawa_market_id == market_id and (line is None or m.line == line))


async def test_board_shows_each_bookmakers_prices_the_best_fresh_offer_and_the_home_gap(
    store: OddsStore, board: Board
) -> None:
    bp, sb, b9 = board.books

    page = await store.odds_board(BOARD_MARKETS, home_bookmaker_id=bp)

    # Upcoming events only (the one that started is not on the board), in kickoff order.
    assert [e.event_id for e in page.events] == board.events
    assert page.next_cursor is None
    first = page.events[0]
    assert (first.home_team, first.away_team, first.tournament_name, first.country, first.sport_id) == (
        "Arsenal", "Chelsea", "Premier League", "England", board.football,
    )  # fmt: skip
    # Markets in the order asked for, each at one line; double chance at BetPawa only.
    assert [(m.betpawa_market_id, m.line, m.main_line) for m in first.markets] == [
        (X12, None, True), (TOTALS, 2.5, True), (BTTS, None, True), (DOUBLE, None, True),
    ]  # fmt: skip

    x12 = by_id(first, X12)
    assert x12.betpawa_market_name == "1X2 - FT"
    assert [q.bookmaker_id for q in x12.quotes] == [bp, sb, b9]
    assert [q.odds for q in x12.quotes] == [
        {"1": 2.00, "X": 3.40, "2": 4.00}, {"1": 2.10, "X": 3.30, "2": 3.80}, {"1": 2.50, "X": 3.60, "2": 4.50},
    ]  # fmt: skip
    # Bet9ja pays most on every outcome, but its prices are two hours old: stale, never the best.
    assert [q.stale for q in x12.quotes] == [False, False, True]
    best = [(o.outcome, o.best_odds, o.best_bookmaker_ids, o.home_odds, o.best_competitor_odds) for o in x12.outcomes]
    # Outcomes in the store's order (by name: schema.md).
    assert best == [("1", 2.10, [sb], 2.00, 2.10), ("2", 4.00, [bp], 4.00, 3.80), ("X", 3.40, [bp], 3.40, 3.30)]
    gaps = [o.gap_pct for o in x12.outcomes]
    expected = [(2.00 / 2.10 - 1) * 100, (4.00 / 3.80 - 1) * 100, (3.40 / 3.30 - 1) * 100]
    assert all(close(g, e) for g, e in zip(gaps, expected, strict=True)), gaps
    margins = [q.margin_pct for q in x12.quotes]
    expected = [margin(2.00, 3.40, 4.00), margin(2.10, 3.30, 3.80), margin(2.50, 3.60, 4.50)]
    assert all(close(g, e) for g, e in zip(margins, expected, strict=True)), margins

    # Ages: when each bookmaker last showed the event.
    ages = [q.age for q in x12.quotes]
    assert timedelta(minutes=5) <= ages[0] < timedelta(minutes=10) and ages[0] == ages[1]
    assert timedelta(hours=2) <= ages[2] < timedelta(hours=2, minutes=5)
    assert [q.seen_at for q in x12.quotes] == [board.now - timedelta(minutes=5)] * 2 + [board.now - timedelta(hours=2)]

    # A suspended outcome: shown as None, never the best, no margin for that market.
    btts = by_id(first, BTTS)
    assert [q.odds for q in btts.quotes] == [{"Yes": 1.80, "No": 1.95}, {"Yes": None, "No": 2.00}]
    assert [(o.outcome, o.best_odds, o.best_bookmaker_ids) for o in btts.outcomes] == [
        ("No", 2.00, [sb]), ("Yes", 1.80, [bp]),
    ]  # fmt: skip
    assert btts.quotes[1].margin_pct is None
    assert close(btts.quotes[0].margin_pct, margin(1.80, 1.95))
    # Only BetPawa lists double chance: the best is its own, no competitor, no gap.
    double = by_id(first, DOUBLE)
    assert [(o.best_bookmaker_ids, o.best_competitor_odds, o.gap_pct) for o in double.outcomes] == [
        ([bp], None, None)
    ] * 3

    # An event with no odds is listed without markets.
    assert page.events[2].markets == []


async def test_main_line_is_the_line_most_bookmakers_offer_then_the_closest_to_even(
    store: OddsStore, board: Board
) -> None:
    page = await store.odds_board([TOTALS])

    first, second = page.events[0], page.events[1]
    # 2.5 is offered complete by three bookmakers, 3.5 by two, 1.5 by one.
    assert [(m.line, [list(q.odds.values()) for q in m.quotes]) for m in first.markets] == [
        (2.5, [[1.90, 1.90], [1.95, 1.85], [2.00, 1.80]]),
    ]
    # One bookmaker offers 2.5 (1.70/2.10) and 3.5 (2.00/1.80): 3.5's prices are closer to even.
    assert [(m.line, m.main_line) for m in second.markets] == [(3.5, True)]


async def test_lines_can_be_asked_for_by_number_next_to_the_main_line(store: OddsStore, board: Board) -> None:
    page = await store.odds_board({X12: [None], TOTALS: [3.5, 1.5]}, event_ids=[board.events[0]])

    # In the order asked for.
    (first,) = page.events
    assert [(m.betpawa_market_id, m.line, m.main_line, len(m.quotes)) for m in first.markets] == [
        (X12, None, False, 3), (TOTALS, 3.5, False, 2), (TOTALS, 1.5, False, 1),
    ]  # fmt: skip
    page = await store.odds_board({TOTALS: None, "3743": None}, event_ids=[board.events[0]])
    assert [(m.betpawa_market_id, m.line, m.main_line) for m in page.events[0].markets] == [
        (TOTALS, 2.5, True), (X12, None, True),
    ]  # fmt: skip


async def test_board_pages_by_kickoff_with_a_cursor(store: OddsStore, board: Board) -> None:
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        page = await store.odds_board([X12], limit=1, after=cursor)
        pages += 1
        seen += [e.event_id for e in page.events]
        if page.next_cursor is None:
            break
        assert page.next_cursor.event_id == page.events[-1].event_id
        cursor = page.next_cursor
    # Events 2 and 3 kick off at the same moment: the cursor's event id settles the tie.
    assert seen == board.events and pages == 6
    three = await store.odds_board([X12], limit=3)
    assert [e.event_id for e in three.events] == board.events[:3] and three.next_cursor is not None
    rest = await store.odds_board([X12], limit=3, after=three.next_cursor)
    assert [e.event_id for e in rest.events] == board.events[3:] and rest.next_cursor is None


async def test_board_filters_events_and_bookmakers(store: OddsStore, board: Board) -> None:
    bp, sb, b9 = board.books

    async def ids(**filters: Any) -> list[int]:
        return [e.event_id for e in (await store.odds_board([X12], **filters)).events]

    assert await ids(sport_id=board.basketball) == [board.events[3]]
    assert await ids(tournament_id=board.laliga) == [board.events[2]]
    assert await ids(kickoff_to=board.now + timedelta(hours=2)) == [board.events[0]]
    assert (
        await ids(kickoff_from=board.now + timedelta(hours=2), kickoff_to=board.now + timedelta(days=1))
        == (board.events[1:4])
    )
    # Asked for by id, an event that has started is there too.
    assert await ids(event_ids=[board.started, board.events[1]]) == [board.started, board.events[1]]
    assert await ids(kickoff_from=board.now - timedelta(days=1), kickoff_to=board.now) == [board.started]

    page = await store.odds_board([X12], bookmaker_ids=[sb, b9], home_bookmaker_id=sb, event_ids=[board.events[0]])
    x12 = page.events[0].markets[0]
    assert [q.bookmaker_id for q in x12.quotes] == [sb, b9]
    # Bet9ja is stale and BetPawa not chosen: SportyBet has no fresh competitor.
    assert [(o.best_bookmaker_ids, o.home_odds, o.best_competitor_odds) for o in x12.outcomes] == [
        ([sb], 2.10, None), ([sb], 3.80, None), ([sb], 3.30, None),
    ]  # fmt: skip
    # With a longer stale_after, Bet9ja's prices count.
    page = await store.odds_board([X12], stale_after=timedelta(hours=3), event_ids=[board.events[0]])
    assert [o.best_bookmaker_ids for o in page.events[0].markets[0].outcomes] == [[b9], [b9], [b9]]


async def test_placeholder_prices_are_never_a_best_price_nor_in_a_margin(store: OddsStore, board: Board) -> None:
    """Feeds send 1.0 (Bet9ja), 0 or null for suspended prices, flagged active or not; the store
    keeps them as given. Written into market_current directly: what the write path stores for them."""
    bp, sb, _ = board.books
    await store.pool.execute(
        """update market_current set outcomes = $1
           where event_id = $2 and bookmaker_id = $3 and betpawa_market_id = $4""",
        [{"name": "1", "odds": 1.0, "is_active": True}, {"name": "X", "odds": 0.0, "is_active": True},
         {"name": "2", "odds": None, "is_active": True}],
        board.events[0], sb, X12,
    )  # fmt: skip

    page = await store.odds_board([X12], home_bookmaker_id=bp, event_ids=[board.events[0]])

    x12 = page.events[0].markets[0]
    assert x12.quotes[1].odds == {"1": None, "X": None, "2": None}
    assert x12.quotes[1].margin_pct is None
    assert [(o.best_odds, o.best_bookmaker_ids, o.best_competitor_odds, o.gap_pct) for o in x12.outcomes] == [
        (2.00, [bp], None, None), (4.00, [bp], None, None), (3.40, [bp], None, None),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"markets": []}, "at least one market"),
        ({"markets": "3743"}, "the string"),
        ({"markets": {X12: [2.5, 2.5]}}, "asked for twice"),
        ({"markets": {TOTALS: [math.nan]}}, "finite"),
        ({"markets": [" "]}, "blank"),
        ({"markets": [X12], "limit": 0}, "limit"),
        ({"markets": [X12], "limit": 10_001}, "limit"),
        ({"markets": [X12], "stale_after": timedelta(0)}, "stale_after"),
        ({"markets": [X12], "kickoff_from": datetime(2026, 1, 1)}, "kickoff_from"),
    ],
)
async def test_bad_board_arguments_are_refused_clearly(
    store: OddsStore, board: Board, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        await store.odds_board(**arguments)
    # Nothing stored was touched: the board still reads the same.
    assert [e.event_id for e in (await store.odds_board([X12])).events] == board.events


async def test_board_table_marks_the_best_and_stale_prices(store: OddsStore, board: Board) -> None:
    bp, sb, b9 = board.books
    page = await store.odds_board(BOARD_MARKETS, home_bookmaker_id=bp, limit=2)

    table = render_board(page, {bp: "BetPawa", sb: "SportyBet", b9: "Bet9ja"}, home_bookmaker_id=bp)

    lines = table.splitlines()
    assert lines[0].split() == ["market", "outcome", "BetPawa", "SportyBet", "Bet9ja", "best", "gap"]
    assert lines[2].split()[:5] == ["Arsenal", "v", "Chelsea", "Premier", "League"]
    # The best fresh price starred, Bet9ja's stale prices marked ~, the home gap signed.
    assert lines[3].split() == ["1X2", "-", "FT", "1", "2.00", "2.10*", "2.50~", "2.10", "-4.8%"]
    assert lines[4].split() == ["2", "4.00*", "3.80", "4.50~", "4.00", "+5.3%"]
    assert lines[6].split() == ["margin", "4.4%", "4.2%", "-10.0%"]
    assert lines[7].split()[:6] == ["Over/Under", "-", "FT", "2.5", "Over", "1.90"]
    # SportyBet's suspended "Yes"; Bet9ja does not list the market.
    assert lines[10].split() == ["Both", "Teams", "To", "Score", "-", "FT", "No", "1.95", "2.00*", "-", "2.00", "-2.5%"]
    assert lines[11].split() == ["Yes", "1.80*", "susp", "-", "1.80", "-"]
    assert lines[17].split() == ["seen", "5m", "5m", "2h00m", "stale"]
    assert lines[-1] == f"more events: after {page.next_cursor.kickoff.isoformat()} #{board.events[1]}"


async def test_board_benchmark_runs_end_to_end(pg_server: Server) -> None:
    """bench/board.py at a few events: every figure is there (no timing assertion: a smoke test on
    a shared machine proves nothing about speed; ``python -m bench.board`` measures)."""
    results = await board_bench.measure(pg_server.dsn("postgres"), events=4, rounds=1, baseline="HEAD")

    assert results["events"] == 4 and results["market_current_rows"] > 0
    for side in ("with_indexes", "without_indexes"):
        for read in ("page", "whole", "events_page"):
            assert results[side][read]["calls"] >= 1 and results[side][read]["p50_ms"] > 0
    assert set(results["index_build_s"]) == set(board_bench.INDEX_DDL)
    assert results["versus_baseline"]["page_this_over_baseline"] > 0
    assert board_bench.table({"servers": {"here": results}}).startswith("| figure | here |")
