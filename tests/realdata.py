"""Snapshots shaped like what real scrapers hand over, built from the facts in
/work/shared/REALDATA.md (no real response is copied): BetPawa, SportyBet and Bet9ja as the
open-source comparison tool's mappers turn them into ``write_snapshots`` dicts.

- BetPawa lists one market in several rows with the same id and line: correct score in 15 rows
  of 3 outcomes, anytime goalscorer in 49 rows of one, the 1X2 & over/under combination as one
  row per side. Its handicap lines come only in ``line``; its display names differ from the
  competitors' ("1X2 | Full Time" against "1X2 - Full Time"). In play it shows a suspended
  price as 100.0, flagged inactive.
- SportyBet and Bet9ja set ``line`` and ``handicap_*`` (a European "0:1": home -1, away +1,
  line -1). SportyBet marks a suspended outcome inactive with "1.00" or "0.00" (mapped to
  floats). Bet9ja has no flag: a suspended selection is the price 1.0, active; its outcomes come
  from a dict, in any order.
- Every mapper's market dict carries ``market_groups`` and ``unavailable_at``, keys the store
  does not model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

ONE_X_TWO = "3743"
OVER_UNDER = "5000"
DOUBLE_CHANCE = "4693"
CORRECT_SCORE = "4706"
GOALSCORER = "4777"
COMBO = "4999"  # 1X2 & over/under
ASIAN_HANDICAP = "3774"
EURO_HANDICAP = "4724"
FIRST_HALF_SCORE = "4710"
TEAM_TO_SCORE = "4800"

SCORES = [f"{home}-{away}" for home in range(7) for away in range(7)][:45]
PLAYERS = [f"Player {number:02d}" for number in range(49)]


def _market(market_id: str, name: str, outcomes: list[tuple[str, float | None, bool]], **fields: Any) -> dict:
    return {
        "betpawa_market_id": market_id,
        "betpawa_market_name": name,
        "line": fields.pop("line", None),
        "outcomes": [{"name": n, "odds": odds, "is_active": active} for n, odds, active in outcomes],
        "market_groups": ["popular"],
        "unavailable_at": None,
        **fields,
    }


def snapshot(event_id: int, bookmaker_id: int, at: datetime, markets: list[dict]) -> dict:
    return {"event_id": event_id, "bookmaker_id": bookmaker_id, "captured_at": at, "markets": markets}


def betpawa(event_id: int, bookmaker_id: int, at: datetime, home: float = 2.1, move: float = 0.0) -> dict:
    """A BetPawa pre-match snapshot: 1X2, over/under 2.5, Asian handicap -1.5 (line only), and
    the multi-row markets: correct score (15 rows), goalscorer (49 rows), combo (2 rows)."""
    rows = [
        _market(ONE_X_TWO, "1X2 | Full Time", [("1", home, True), ("X", 3.3, True), ("2", 3.6 + move, True)]),
        _market(OVER_UNDER, "Over/Under | Full Time", [("Over", 1.85, True), ("Under", 1.95, True)], line=2.5),
        _market(ASIAN_HANDICAP, "Asian Handicap | Full Time", [("1", 2.9, True), ("2", 1.4, True)], line=-1.5),
    ]
    for start in range(0, 45, 3):
        scores = SCORES[start : start + 3]
        rows.append(
            _market(
                CORRECT_SCORE, "Correct Score | Full Time", [(s, 6.0 + i + start, True) for i, s in enumerate(scores)]
            )
        )
    rows += [
        _market(GOALSCORER, "Anytime Goalscorer", [(player, 3.0 + number / 10, True)])
        for number, player in enumerate(PLAYERS)
    ]
    rows.append(_market(COMBO, "1X2 & Over/Under", [("1 & Over", 3.9, True), ("X & Over", 9.5, True)], line=2.5))
    rows.append(_market(COMBO, "1X2 & Over/Under", [("1 & Under", 5.2, True), ("X & Under", 4.6, True)], line=2.5))
    return snapshot(event_id, bookmaker_id, at, rows)


def betpawa_in_play(event_id: int, bookmaker_id: int, at: datetime) -> dict:
    """BetPawa in play: the 1X2 suspended, shown as 100.0 flagged inactive."""
    return snapshot(
        event_id,
        bookmaker_id,
        at,
        [_market(ONE_X_TWO, "1X2 | Full Time", [("1", 100.0, False), ("X", 100.0, False), ("2", 100.0, False)])],
    )


def sportybet(event_id: int, bookmaker_id: int, at: datetime, home: float = 2.05, suspended: str | None = None) -> dict:
    """A SportyBet snapshot: 1X2, over/under 2.5, a European handicap 0:1 with line and
    handicap_*. ``suspended``: "1.00" or "0.00", the away outcome of the 1X2 inactive at that
    price (as the mapper turns the string into a float)."""
    away: tuple[str, float | None, bool] = ("2", 3.7, True) if suspended is None else ("2", float(suspended), False)
    return snapshot(
        event_id,
        bookmaker_id,
        at,
        [
            _market(ONE_X_TWO, "1X2 - Full Time", [("1", home, True), ("X", 3.25, True), away]),
            _market(OVER_UNDER, "Over/Under - Full Time", [("Over", 1.8, True), ("Under", 2.0, True)], line=2.5),
            _market(
                EURO_HANDICAP,
                "Handicap - Full Time",
                [("1", 4.1, True), ("X", 3.9, True), ("2", 1.6, True)],
                line=-1.0,
                handicap_type="european",
                handicap_home=-1.0,
                handicap_away=1.0,
            ),
        ],
    )


def bet9ja(event_id: int, bookmaker_id: int, at: datetime, reverse: bool = False, suspended_home: bool = False) -> dict:
    """A Bet9ja snapshot: 1X2 (home "1" when ``suspended_home``: a suspended selection, active),
    double chance with its outcomes in dict order (12/1X/X2, or X2/1X/12 when ``reverse``)."""
    chances = [("12", 1.3, True), ("1X", 1.25, True), ("X2", 1.75, True)]
    home = 1.0 if suspended_home else 2.0
    return snapshot(
        event_id,
        bookmaker_id,
        at,
        [
            _market(ONE_X_TWO, "1X2 - Full Time", [("1", home, True), ("X", 3.4, True), ("2", 3.5, True)]),
            _market(DOUBLE_CHANCE, "Double Chance - Full Time", chances[::-1] if reverse else chances),
        ],
    )


def repeated_names(event_id: int, bookmaker_id: int, at: datetime) -> dict:
    """A mapper's positional fallback: "Both Teams" listed twice at one price (one outcome), and
    a first-half "2:2" at 90.0 stored as a second "0-1" next to the real "0-1" at 5.0 (a
    conflict: the market, so the snapshot, is invalid)."""
    return snapshot(
        event_id,
        bookmaker_id,
        at,
        [
            _market(TEAM_TO_SCORE, "Which team to score", [("Home", 1.7, True), ("Both Teams", 2.2, True)])
            | {
                "outcomes": [
                    {"name": n, "odds": o} for n, o in (("Home", 1.7), ("Both Teams", 2.2), ("Both Teams", 2.2))
                ]
            },
            _market(
                FIRST_HALF_SCORE,
                "1st Half Correct Score",
                [("0-0", 3.1, True), ("0-1", 5.0, True), ("0-1", 90.0, True)],
            ),
        ],
    )
