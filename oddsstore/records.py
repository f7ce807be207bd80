"""Pydantic models: what the store takes in, and the records its queries return.

Input models (``*In``, :class:`Outcome`) validate strictly, because what they accept is stored for
30 days: odds must be finite numbers above 1.0, names non-empty, datetimes timezone-aware.
Record models mirror the columns a named query returns (``-- record:`` in ``queries/*.sql``).
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


def require_aware(value: datetime) -> datetime:
    """Return ``value`` if it carries a UTC offset; raise ``ValueError`` for a naive datetime."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"naive datetime {value.isoformat()} has no timezone; pass an aware datetime, "
            "for example datetime.now(timezone.utc)"
        )
    return value


def _check_text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or blank")
    if "\x00" in value:
        raise ValueError(f"must not contain NUL characters, got {value!r}")
    return value


def _check_optional_text(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError(f"must not contain NUL characters, got {value!r}")
    return value


def _check_odds(value: float) -> float:
    if not math.isfinite(value) or value <= 1.0:
        raise ValueError(f"odds must be a finite decimal price above 1.0, got {value!r}")
    return value


def _check_finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value!r}")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(require_aware)]
Name = Annotated[str, Field(strict=True), AfterValidator(_check_text)]
OptionalText = Annotated[str | None, Field(strict=True), AfterValidator(_check_optional_text)]
Odds = Annotated[float, Field(strict=True), AfterValidator(_check_odds)]
OptionalNumber = Annotated[float | None, Field(strict=True), AfterValidator(_check_finite)]
Id = Annotated[int, Field(strict=True, gt=0, le=2**63 - 1)]


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- input -------------------------------------------------------------------------------------


class Outcome(_Input):
    """One selection of a market: its name, decimal price, and whether it can be bet on now."""

    name: Name
    odds: Odds
    is_active: bool = True


class MarketIn(_Input):
    """One market as a bookmaker showed it. ``(betpawa_market_id, line)`` identifies it within a
    snapshot; handicap markets carry their handicap in ``line`` too."""

    betpawa_market_id: Name
    betpawa_market_name: Name
    line: OptionalNumber = None
    handicap_type: OptionalText = None
    handicap_home: OptionalNumber = None
    handicap_away: OptionalNumber = None
    outcomes: list[Outcome] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_outcome_names(self) -> MarketIn:
        seen: set[str] = set()
        for outcome in self.outcomes:
            if outcome.name in seen:
                raise ValueError(f"outcome name {outcome.name!r} appears twice")
            seen.add(outcome.name)
        return self


class SnapshotIn(_Input):
    """Everything one bookmaker showed for one event at ``captured_at``."""

    event_id: Id
    bookmaker_id: Id
    captured_at: AwareDatetime
    markets: list[MarketIn]
    raw_response: Any = None

    @model_validator(mode="after")
    def _check(self) -> SnapshotIn:
        first_seen: dict[tuple[str, float | None], int] = {}
        for index, market in enumerate(self.markets):
            key = (market.betpawa_market_id, market.line)
            if key in first_seen:
                raise ValueError(
                    f"duplicate market (betpawa_market_id={key[0]!r}, line={key[1]!r}) "
                    f"at markets[{first_seen[key]}] and markets[{index}]"
                )
            first_seen[key] = index
        if self.raw_response is not None:
            try:
                text = json.dumps(self.raw_response, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"raw_response is not JSON-serialisable: {exc}") from None
            if "\\u0000" in text:
                raise ValueError("raw_response contains a NUL character, which jsonb cannot store")
        return self


class ScrapeErrorIn(_Input):
    """One failure seen during a scrape run; ``occurred_at`` defaults to the database's now()."""

    scrape_run_id: Id
    error_type: Name
    error_message: Annotated[str, Field(strict=True), AfterValidator(_check_optional_text)]
    bookmaker_id: Id | None = None
    event_id: Id | None = None
    occurred_at: AwareDatetime | None = None


class WriteResult(_Record):
    """What one ``write_snapshots`` call stored."""

    snapshots: int
    markets: int
    snapshot_ids: list[int]


# --- records -----------------------------------------------------------------------------------


class ScrapeStatus(StrEnum):
    """State of a scrape run (the ``scrape_status`` enum in the database)."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    PARTIAL = "partial"
    FAILED = "failed"


class Sport(_Record):
    id: int
    name: str
    slug: str


class Tournament(_Record):
    id: int
    sport_id: int
    name: str
    country: str | None


class Bookmaker(_Record):
    id: int
    name: str
    slug: str
    base_url: str | None


class Event(_Record):
    id: int
    tournament_id: int
    betpawa_event_id: str
    home_team: str
    away_team: str
    kickoff: datetime


class EventBookmaker(_Record):
    event_id: int
    bookmaker_id: int
    bookmaker_event_id: str | None
    event_url: str | None


class OddsSnapshot(_Record):
    id: int
    event_id: int
    bookmaker_id: int
    captured_at: datetime
    scrape_run_id: int | None
    raw_response: Any = None


class MarketOdds(_Record):
    """One market of one snapshot, with the snapshot's event, bookmaker and time."""

    snapshot_id: int
    event_id: int
    bookmaker_id: int
    captured_at: datetime
    betpawa_market_id: str
    betpawa_market_name: str
    line: float | None
    handicap_type: str | None
    handicap_home: float | None
    handicap_away: float | None
    outcomes: list[Outcome]


class ScrapeRun(_Record):
    id: int
    status: ScrapeStatus
    started_at: datetime
    completed_at: datetime | None
    events_scraped: int
    events_failed: int
    trigger: str | None


class ScrapeError(_Record):
    id: int
    scrape_run_id: int
    bookmaker_id: int | None
    event_id: int | None
    error_type: str
    error_message: str
    occurred_at: datetime


class StaleOdds(_Record):
    """An event x bookmaker pair whose odds may be out of date, and why."""

    event_id: int
    bookmaker_id: int
    captured_at: datetime | None
    age: timedelta | None
    reasons: list[str]


class ErrorSummary(_Record):
    """Failure history of one error type at one bookmaker (``None``: not bookmaker-specific)."""

    bookmaker_id: int | None
    error_type: str
    occurrences: int
    runs_affected: int
    first_seen: datetime
    last_seen: datetime
    consecutive_runs: int


class PartitionInfo(_Record):
    """One daily partition of a partitioned table. ``detach_pending``: a concurrent detach of it
    was interrupted; the next retention run finishes it."""

    parent: str
    name: str
    day: date
    rows_estimate: int
    total_bytes: int
    detach_pending: bool
