"""A reference model of odds storage: every snapshot kept whole, as the seed plan's market_odds
would keep it. Tests compare the store's answers with it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from oddsstore import MarketOdds

Key = tuple[str, float | None]
State = tuple[str, tuple[tuple[str, float, bool], ...]]  # (market name, outcomes)


@dataclass
class Snapshot:
    event: int
    bookmaker: int
    at: datetime
    markets: dict[Key, State]


@dataclass
class Model:
    """Every snapshot kept whole, as the seed plan's market_odds would keep it."""

    snapshots: list[Snapshot] = field(default_factory=list)

    def kept(self, event: int) -> list[Snapshot]:
        return sorted((s for s in self.snapshots if s.event == event), key=lambda s: (s.at, s.bookmaker))

    def latest_at_or_before(self, event: int, moment: datetime) -> list[Snapshot]:
        latest: dict[int, Snapshot] = {}
        for s in self.kept(event):
            if s.at <= moment:
                latest[s.bookmaker] = s
        return [latest[b] for b in sorted(latest)]

    def drop_before(self, cutoff: datetime) -> None:
        self.snapshots = [s for s in self.snapshots if s.at >= cutoff]


def rows(snapshots: list[Snapshot], market_id: str | None = None) -> list[tuple]:
    found = []
    for s in snapshots:
        for (mid, line), (name, outcomes) in s.markets.items():
            if market_id is None or mid == market_id:
                found.append((s.bookmaker, s.at, mid, line, name, outcomes))
    return found


def store_rows(markets: list[MarketOdds]) -> list[tuple]:
    return [
        (
            m.bookmaker_id,
            m.captured_at,
            m.betpawa_market_id,
            m.line,
            m.betpawa_market_name,
            tuple((o.name, o.odds, o.is_active) for o in m.outcomes),
        )
        for m in markets
    ]


def line_order(row: tuple) -> tuple:
    """The store's order: time, bookmaker, line (no line first)."""
    return (row[1], row[0], row[3] is not None, row[3] or 0.0)


def unordered(found: list[tuple]) -> list[tuple]:
    return sorted(found, key=lambda row: (row[0], row[2], *line_order(row)))
