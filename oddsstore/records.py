"""Pydantic models: what the store takes in, and the records its queries return.

Input models (``*In``, :class:`Outcome`) validate strictly, because what they accept is stored for
30 days: odds must be finite numbers above 1.0, names non-empty, datetimes timezone-aware.
Record models mirror the columns a named query returns (``-- record_class:`` in ``queries/*.sql``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from oddsstore import jsonb


def require_aware(value: datetime) -> datetime:
    """Return ``value`` if it carries a UTC offset; raise ``ValueError`` for a naive datetime."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"naive datetime {value.isoformat()} has no timezone; pass an aware datetime, "
            "for example datetime.now(timezone.utc)"
        )
    return value


def _check_optional_text(value: str | None) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError(f"must not contain NUL characters, got {value!r}")
    return value


# Constraints below are checked by pydantic-core without calling Python, which keeps validating a
# 600,000-market batch well under the time its COPY takes.
# Non-blank, no NUL (PostgreSQL text cannot hold it).
Name = Annotated[str, Field(strict=True, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$")]
OptionalText = Annotated[str | None, Field(strict=True, pattern=r"^[^\x00]*$")]
# Decimal odds: a finite number above 1.0 (a price of 1.0 or less pays nothing back). Strings are
# refused rather than parsed: a scraper handing over "1.85" has a parsing bug worth seeing.
Odds = Annotated[float, Field(strict=True, gt=1.0, allow_inf_nan=False)]
OptionalNumber = Annotated[float | None, Field(strict=True, allow_inf_nan=False)]


def _not_a_number(value: Any) -> Any:
    if isinstance(value, (int, float)):
        raise ValueError(f"a number ({value!r}) is not a timestamp here; pass an aware datetime")
    return value


# Datetimes or ISO 8601 strings with an offset; never naive, never a bare Unix number.
AwareDatetime = Annotated[datetime, BeforeValidator(_not_a_number), AfterValidator(require_aware)]
Flag = Annotated[bool, Field(strict=True)]
# Reference ids are PostgreSQL integers; scrape run ids are bigints.
Id = Annotated[int, Field(strict=True, gt=0, le=2**31 - 1)]
BigId = Annotated[int, Field(strict=True, gt=0, le=2**63 - 1)]


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- input -------------------------------------------------------------------------------------


class Outcome(_Input):
    """One selection of a market: its name, decimal price, and whether it can be bet on now."""

    name: Name
    odds: Odds
    is_active: Flag = True


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
    def _check(self) -> MarketIn:
        if problem := duplicate_outcome([outcome.name for outcome in self.outcomes]):
            raise ValueError(problem)
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
        if problem := duplicate_market([(m.betpawa_market_id, m.line) for m in self.markets]):
            raise ValueError(problem)
        if problem := unstorable_json(self.raw_response):
            raise ValueError(problem)
        return self


# Checks that span several fields. The models above run them; the write path runs them on dict
# input too, which it validates without building models (writes.py).


def duplicate_outcome(names: list[str]) -> str | None:
    """Describe the first outcome name listed twice in a market, or return ``None``."""
    if len(set(names)) == len(names):
        return None
    twice = next(name for name in names if names.count(name) > 1)
    return f"outcome name {twice!r} appears twice"


def duplicate_market(keys: list[tuple[str, float | None]]) -> str | None:
    """Describe the first ``(betpawa_market_id, line)`` listed twice in a snapshot, or ``None``."""
    if len(set(keys)) == len(keys):
        return None
    first_seen: dict[tuple[str, float | None], int] = {}
    for index, key in enumerate(keys):
        if key in first_seen:
            return (
                f"duplicate market (betpawa_market_id={key[0]!r}, line={key[1]!r}) "
                f"at markets[{first_seen[key]}] and markets[{index}]"
            )
        first_seen[key] = index
    return None


def unstorable_json(value: Any) -> str | None:
    """Say why ``raw_response`` cannot be stored as jsonb, or return ``None``."""
    problem = jsonb.json_problem(value, "raw_response")
    return None if problem is None else f"not storable as JSON: {problem}"


class ScrapeErrorIn(_Input):
    """One failure seen during a scrape run; ``occurred_at`` defaults to the database's now()."""

    scrape_run_id: BigId
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
    """One daily partition of a partitioned table. ``rows_estimate`` is the planner's estimate,
    ``None`` until the partition is first analysed. ``detach_pending``: a concurrent detach of it
    was interrupted; the next retention run finishes it."""

    parent: str
    name: str
    day: date
    rows_estimate: int | None
    total_bytes: int
    detach_pending: bool


# --- analytics ---------------------------------------------------------------------------------
# Records of queries/analytics.sql. Percentages are plain numbers: 5.2 means 5.2%.


class PriceComparison(_Record):
    """One outcome of one market (and line) of an event, every bookmaker's latest price side by side.

    ``prices`` maps bookmaker id to odds: ``None`` when the bookmaker lists the outcome suspended,
    no key when it does not list it. ``best_odds`` is the highest active price (``None`` if no
    bookmaker offers the outcome now), ``best_bookmaker_ids`` who offers it. With a home
    bookmaker: its active price, the best active price of the others, and
    ``gap_pct = (home_odds / best_competitor_odds - 1) * 100`` (negative: the home bookmaker pays
    less); all three ``None`` when there is no home bookmaker or either side has no active price.
    """

    event_id: int
    betpawa_market_id: str
    betpawa_market_name: str
    line: float | None
    handicap_type: str | None
    outcome: str
    prices: dict[int, float | None]
    best_odds: float | None
    best_bookmaker_ids: list[int]
    home_odds: float | None
    best_competitor_odds: float | None
    gap_pct: float | None


class Margin(_Record):
    """A bookmaker's margin (overround) on one of its current markets:
    ``(sum(1/odds) - 1) * 100`` over the market's ``outcomes`` (all active). ``changed_at``: since
    when the market has had these prices."""

    event_id: int
    tournament_id: int
    bookmaker_id: int
    betpawa_market_id: str
    betpawa_market_name: str
    line: float | None
    handicap_type: str | None
    changed_at: datetime
    outcomes: int
    margin_pct: float


class TournamentMargin(_Record):
    """A bookmaker's margins over the complete current markets of a tournament's events."""

    tournament_id: int
    tournament_name: str
    country: str | None
    bookmaker_id: int
    markets: int
    events: int
    avg_margin_pct: float
    min_margin_pct: float
    max_margin_pct: float


class OpeningClosing(_Record):
    """One outcome of one bookmaker's market (and line): its first listed price (opening) and its
    last listed price at or before kickoff (closing), and the movement between them,
    ``(closing_odds / opening_odds - 1) * 100``. A side is ``None`` when the outcome was not listed
    in that state. ``listed_at_kickoff`` is false when the market had disappeared by kickoff;
    ``confirmed_at`` is the bookmaker's last snapshot of the event at or before kickoff."""

    event_id: int
    bookmaker_id: int
    betpawa_market_id: str
    betpawa_market_name: str
    line: float | None
    outcome: str
    opening_at: datetime
    opening_odds: float | None
    opening_active: bool | None
    closing_at: datetime
    closing_odds: float | None
    closing_active: bool | None
    listed_at_kickoff: bool
    confirmed_at: datetime | None
    movement_pct: float | None


class MarketChange(_Record):
    """One logged change of a market at one bookmaker: the state it took at ``captured_at``.
    ``outcomes`` (and the market name) are ``None`` when the market stopped being listed then."""

    event_id: int
    bookmaker_id: int
    captured_at: datetime
    betpawa_market_id: str
    betpawa_market_name: str | None
    line: float | None
    handicap_type: str | None
    handicap_home: float | None
    handicap_away: float | None
    outcomes: list[Outcome] | None


class SteamMove(_Record):
    """A sharp drop: at ``captured_at`` the bookmaker priced ``outcome`` at ``odds``, ``drop_pct``
    below ``reference_odds``, its highest price for it on offer during the window before.
    ``bookmakers_dropping``: how many bookmakers (this one included) show a drop of the same
    outcome in the same result."""

    event_id: int
    bookmaker_id: int
    betpawa_market_id: str
    betpawa_market_name: str | None
    line: float | None
    outcome: str
    captured_at: datetime
    odds: float
    reference_odds: float
    drop_pct: float
    bookmakers_dropping: int


class ArbitrageLeg(_Record):
    """One outcome of an arbitrage: its best price, who offers it, and the share of the total
    stake to put on it, ``(1/odds) / implied_sum``."""

    outcome: str
    odds: float
    bookmaker_ids: list[int]
    stake_share: float


class Arbitrage(_Record):
    """A market whose best prices across bookmakers sum to ``implied_sum = sum(1/odds) < 1``.
    Staking every leg by its ``stake_share`` returns ``profit_pct = (1/implied_sum - 1) * 100``
    of the total staked, whichever outcome wins. ``confirmed_at``: the oldest snapshot behind
    a best price."""

    event_id: int
    betpawa_market_id: str
    betpawa_market_name: str
    line: float | None
    handicap_type: str | None
    implied_sum: float
    profit_pct: float
    confirmed_at: datetime
    legs: list[ArbitrageLeg]
