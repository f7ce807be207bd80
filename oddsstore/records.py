"""Pydantic models: what the store takes in, and the records its queries return.

Input models (``*In``, :class:`Outcome`) validate strictly, because what they accept is stored for
30 days: odds finite and not negative (or null), names non-empty, datetimes timezone-aware.
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
            f"naive datetime {value.isoformat()} has no timezone; pass an aware datetime: "
            "datetime.now(UTC), or value.replace(tzinfo=UTC) for a UTC time such as datetime.utcnow() gives"
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
# Decimal odds as the bookmaker showed them: a finite number, not negative, or None. Real feeds
# send placeholders for suspended outcomes (null, 0, 1.0, in-play 100.0 flagged inactive): they
# are stored as given, and only a price above 1.0 on an active outcome is an offer (see
# oddsstore_offer in schema/0007_real_data.sql). Strings are refused rather than parsed: a scraper
# handing over "1.85" has a parsing bug worth seeing.
Odds = Annotated[float | None, Field(strict=True, ge=0, allow_inf_nan=False)]
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
    """One selection of a market: its name, decimal price, and whether it can be bet on now.

    It is on offer only when ``is_active`` and ``odds`` is above 1.0; any other price (None, 0,
    1.0, a suspended 100.0) is a placeholder, stored as given and judged as suspended."""

    name: Name
    odds: Odds
    is_active: Flag = True

    @property
    def is_offer(self) -> bool:
        """On offer: active, with a price above 1.0 (``oddsstore_offer`` in SQL)."""
        return self.is_active and self.odds is not None and self.odds > 1.0


class MarketIn(_Input):
    """One market (or one row of it) as a bookmaker showed it. ``(betpawa_market_id, line)``
    identifies it within a snapshot; handicap markets carry their handicap in ``line`` too.
    Rows of a snapshot with the same key are one market, their outcomes merged (docs/schema.md)."""

    betpawa_market_id: Name
    betpawa_market_name: Name
    line: OptionalNumber = None
    handicap_type: OptionalText = None
    handicap_home: OptionalNumber = None
    handicap_away: OptionalNumber = None
    outcomes: list[Outcome] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> MarketIn:
        if problem := conflicting_outcome([outcome.model_dump() for outcome in self.outcomes]):
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
        if problem := unstorable_json(self.raw_response):
            raise ValueError(problem)
        return self


# Checks that span several fields. The models above run them; the write path runs them on dict
# input too, which it validates without building models (writes.py).


def conflicting_outcome(outcomes: list[dict[str, Any]]) -> str | None:
    """Describe the first outcome name listed twice with different prices (or active flags) in a
    market, or return ``None``. The same outcome listed twice is one outcome."""
    seen: dict[str, dict[str, Any]] = {}
    for outcome in outcomes:
        first = seen.setdefault(outcome["name"], outcome)
        if (first.get("odds"), first.get("is_active", True)) != (outcome.get("odds"), outcome.get("is_active", True)):
            return (
                f"outcome {outcome['name']!r} is listed twice with different prices: "
                f"odds {first.get('odds')!r} (is_active={first.get('is_active', True)}) and "
                f"odds {outcome.get('odds')!r} (is_active={outcome.get('is_active', True)})"
            )
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


class SkippedSnapshot(_Record):
    """A snapshot ``write_snapshots(..., on_invalid="skip")`` did not store, and why.

    ``position`` is its index in the batch; ``path`` names the offending item
    (``snapshots[3].markets[12].outcomes[0].odds``); the ids are those it gave, when valid."""

    position: int
    path: str
    reason: str
    event_id: int | None
    bookmaker_id: int | None
    captured_at: datetime | None


class WriteResult(_Record):
    """What one ``write_snapshots`` call stored.

    ``snapshots``, ``markets`` and ``snapshot_ids`` (input order) count the snapshots stored by
    this call; ``markets`` counts merged markets (rows of one key are one market).
    ``already_stored``: positions in the batch of snapshots the database held already with the
    same markets (a retried batch), not stored again. ``skipped``: with ``on_invalid="skip"``,
    the invalid snapshots left out."""

    snapshots: int
    markets: int
    snapshot_ids: list[int]
    already_stored: list[int] = []
    skipped: list[SkippedSnapshot] = []


# --- records -----------------------------------------------------------------------------------


class StoredPairs(_Record):
    """What the database holds for a batch's event x bookmaker pairs, as parallel lists
    (``pair_states`` in queries/odds.sql): the write path's, not part of the public API."""

    positions: list[int]
    snapshot_ids: list[int | None]
    captured_at: list[datetime | None]
    market_positions: list[int]
    fingerprints: list[bytes | None]
    market_ids: list[str]
    lines: list[float | None]


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


class EventLinkIn(_Input):
    """A bookmaker's listing of an event: its own id for it, and its page when known."""

    bookmaker_id: Id
    bookmaker_event_id: Name
    event_url: OptionalText = None


class EventIn(_Input):
    """An event as a scraper registers it (:meth:`OddsStore.upsert_events`).

    It is matched by ``sportradar_id`` when given, else by any of its ``bookmakers`` links
    ``(bookmaker_id, bookmaker_event_id)``; an event matching neither is inserted. At least one
    of the two keys is required."""

    tournament_id: Id
    home_team: Name
    away_team: Name
    kickoff: AwareDatetime
    sportradar_id: Name | None = None
    bookmakers: list[EventLinkIn] = []

    @model_validator(mode="after")
    def _check(self) -> EventIn:
        if self.sportradar_id is None and not self.bookmakers:
            raise ValueError("an event needs a sportradar_id or at least one bookmaker link to be matched by")
        ids = [link.bookmaker_id for link in self.bookmakers]
        if len(set(ids)) < len(ids):
            raise ValueError(f"bookmaker {next(i for i in ids if ids.count(i) > 1)} is linked twice")
        return self


class Event(_Record):
    """An event. ``betpawa_event_id``: its id at the bookmaker with slug ``betpawa``, if linked."""

    id: int
    tournament_id: int
    sportradar_id: str | None = None
    betpawa_event_id: str | None = None
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


# --- the odds board, events, event detail -------------------------------------------------------
# Records of queries/board.sql, queries/events.sql and queries/event_detail.sql. An outcome is an
# offer only when it is active and its odds are above 1.0; anything else is suspended.


class BoardOutcome(_Record):
    """One outcome of a board market: the best fresh offer for it (``None`` if nobody offers it
    now) and who offers it; with a home bookmaker, its fresh offer, the best fresh offer of the
    others, and ``gap_pct = (home_odds / best_competitor_odds - 1) * 100`` (negative: the home
    bookmaker pays less)."""

    outcome: str
    best_odds: float | None
    best_bookmaker_ids: list[int]
    home_odds: float | None
    best_competitor_odds: float | None
    gap_pct: float | None


class BoardQuote(_Record):
    """One bookmaker's prices of a board market. ``odds`` maps each outcome it lists to its
    offer, ``None`` when suspended (no key: not listed by this bookmaker). ``margin_pct`` is
    ``(sum(1/odds) - 1) * 100`` when every outcome is an offer, else ``None``. ``changed_at``:
    since when these prices hold; ``seen_at``: the bookmaker's latest snapshot of the event,
    ``age`` how long ago that was; ``stale``: older than the board's ``stale_after`` (stale
    prices are never a best price nor in a gap)."""

    bookmaker_id: int
    odds: dict[str, float | None]
    margin_pct: float | None
    changed_at: datetime
    seen_at: datetime
    age: timedelta
    stale: bool


class BoardMarket(_Record):
    """One market (at one line) of a board event. ``main_line``: this line was chosen as the
    market's main line (``OddsStore.odds_board`` defines it) rather than asked for by number."""

    betpawa_market_id: str
    betpawa_market_name: str
    line: float | None
    main_line: bool
    outcomes: list[BoardOutcome]
    quotes: list[BoardQuote]


class BoardEvent(_Record):
    """One event of a board page, with its chosen markets in the order asked for (a market no
    chosen bookmaker lists is left out)."""

    event_id: int
    sport_id: int
    tournament_id: int
    tournament_name: str
    country: str | None
    home_team: str
    away_team: str
    kickoff: datetime
    markets: list[BoardMarket]


class PageCursor(_Record):
    """Where a page ended: pass it as ``after`` to get the next page (keyset on kickoff, id)."""

    kickoff: datetime
    event_id: int


class BoardPage(_Record):
    """A page of the odds board; ``next_cursor`` is ``None`` on the last page."""

    events: list[BoardEvent]
    next_cursor: PageCursor | None


class HistoryCursor(_Record):
    """Where a page of history ended (its last row): pass it as ``after`` to get the next page
    (keyset on capture time, bookmaker and line, "no line" first)."""

    captured_at: datetime
    bookmaker_id: int
    line: float | None


class OddsHistoryPage(_Record):
    """A page of :meth:`OddsStore.odds_history_page`; ``next_cursor`` is ``None`` on the last page."""

    rows: list[MarketOdds]
    next_cursor: HistoryCursor | None


class LineMovementPage(_Record):
    """A page of :meth:`OddsStore.line_movement_page`; ``next_cursor`` is ``None`` on the last page."""

    changes: list[MarketChange]
    next_cursor: HistoryCursor | None


class EventListing(_Record):
    """An event with its tournament, its SportRadar id and BetPawa event id (when known, as in
    :class:`Event`) and the bookmakers linked to it (``event_bookmakers``)."""

    id: int
    sport_id: int
    tournament_id: int
    tournament_name: str
    country: str | None
    sportradar_id: str | None
    betpawa_event_id: str | None
    home_team: str
    away_team: str
    kickoff: datetime
    bookmaker_ids: list[int]


class EventPage(_Record):
    """A page of the events list; ``next_cursor`` is ``None`` on the last page."""

    events: list[EventListing]
    next_cursor: PageCursor | None


class MarginPoint(_Record):
    """A bookmaker's margin on one market (and line) from ``captured_at`` until its next point:
    ``None`` when not every outcome was an offer; ``listed`` is false when the market stopped
    being listed then."""

    event_id: int
    bookmaker_id: int
    betpawa_market_id: str
    line: float | None
    captured_at: datetime
    listed: bool
    margin_pct: float | None


class MissingMarket(_Record):
    """A market (and line) of an event that a bookmaker listed before and lists no more:
    ``missing_since`` the snapshot that no longer listed it, last listed at ``last_listed_at``
    under ``betpawa_market_name`` (both ``None`` when retention dropped that state), and the
    bookmakers that list it now."""

    event_id: int
    bookmaker_id: int
    betpawa_market_id: str
    betpawa_market_name: str | None
    line: float | None
    missing_since: datetime
    last_listed_at: datetime | None
    listed_by: list[int]


class MaintenanceReport(_Record):
    """What :meth:`~oddsstore.OddsStore.maintain` did, and what the role it ran as may not do.

    ``created`` and ``dropped`` list partitions by name. ``not_allowed`` says, one message per
    step, what was refused and why (for the writer role: retention, which only the owner may
    run, and days outside the database's window, ``oddsstore_settings``); empty when all of it
    was done.
    """

    created: list[str]
    dropped: list[str]
    not_allowed: list[str]


class PartitionWindowSetting(_Record):
    """The days the database lets this role have partitions created for (``oddsstore_settings``);
    ``unbounded``: this role is (a member of) the owner, whom the window does not bind."""

    first_day: date
    last_day: date
    unbounded: bool
