"""The public entry point: :class:`OddsStore`, a pool plus the named queries."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal

import asyncpg

from oddsstore import jsonb, migrations, partitions, writes
from oddsstore.errors import (
    CitusMissingError,
    ConnectError,
    ConnectionLostError,
    DuplicateSnapshotError,
    InvalidInputError,
    LockTableFullError,
    MigrationError,
    OutsidePartitionWindowError,
    PermissionDeniedError,
    QueryTimeoutError,
    StoreClosedError,
    UnknownReferenceError,
)
from oddsstore.partitions import PartitionWindow
from oddsstore.paths import sql_directory
from oddsstore.records import (
    Arbitrage,
    BoardEvent,
    BoardPage,
    Bookmaker,
    ErrorSummary,
    Event,
    EventBookmaker,
    EventIn,
    EventListing,
    EventPage,
    HistoryCursor,
    LineMovementPage,
    MaintenanceReport,
    Margin,
    MarginPoint,
    MarketChange,
    MarketOdds,
    MissingMarket,
    OddsHistoryPage,
    OddsSnapshot,
    OpeningClosing,
    PageCursor,
    PartitionInfo,
    PartitionWindowSetting,
    PriceComparison,
    ScrapeError,
    ScrapeErrorIn,
    ScrapeRun,
    ScrapeStatus,
    SnapshotIn,
    Sport,
    StaleOdds,
    SteamMove,
    Tournament,
    TournamentMargin,
    WriteResult,
    require_aware,
)
from oddsstore.runner import Queries

DEFAULT_RETENTION_DAYS = 30
DEFAULT_DAYS_AHEAD = 3
# The odds board's default for stale prices: three missed scrapes at a 10-minute cadence.
DEFAULT_STALE_AFTER = timedelta(minutes=30)
DEFAULT_CONNECT_TIMEOUT = 10.0


class OddsStore:
    """Odds history in PostgreSQL: write scrape results, read prices, keep partitions in shape.

    Create one with :meth:`connect`; it owns an asyncpg pool and is safe to share between tasks.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        *,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        days_ahead: int = DEFAULT_DAYS_AHEAD,
        remember_writes: bool = True,
        queries: Queries | None = None,
    ) -> None:
        if retention_days < 1 or days_ahead < 0:
            raise ValueError(f"retention_days must be >= 1 and days_ahead >= 0, got {retention_days}, {days_ahead}")
        self._pool = pool
        self._dsn = dsn
        self.retention_days = retention_days
        self.days_ahead = days_ahead
        self.remember_writes = remember_writes
        self.queries = queries or Queries.from_directory(sql_directory("queries"))
        # Per event x bookmaker pair, what this store last wrote (writes.py explains the use).
        self._written: dict[writes.Pair, writes.Written] = {}
        self._swept_at: datetime | None = None
        self._citus: bool | None = None  # the database has the citus extension (_on_citus)
        self._distributed_stage: bool | None = None  # distribute made the write path's stage (_stage_distributed)

    @classmethod
    def connect(
        cls,
        dsn: str,
        *,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        days_ahead: int = DEFAULT_DAYS_AHEAD,
        remember_writes: bool = True,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        **pool_options: Any,
    ) -> _Connecting:
        """Open a store on ``dsn``; use as ``store = await OddsStore.connect(dsn)`` or
        ``async with OddsStore.connect(dsn) as store:`` (closed on exit).

        :param dsn: a ``postgresql://`` URL (``postgresql+psycopg://`` is accepted too).
        :param retention_days: days of history kept; writes older than this are refused, and
            :meth:`drop_expired_partitions` drops days before it.
        :param days_ahead: how many UTC days after today may be written and are created ahead.
        :param remember_writes: remember, per event x bookmaker pair, the markets last written
            (an in-process hash and the key of each, about 110 bytes a market), so that a
            write of pairs this store wrote last loads nothing from the database first.
            ``False``: every write loads its pairs' fingerprints from the database (one query);
            either way only the markets that changed are validated and sent.
        :param connect_timeout: seconds to wait for each connection to open (TCP, TLS and
            authentication) before giving up.
        :param pool_options: passed to :func:`asyncpg.create_pool` (``min_size``, ``max_size``, ...).
            An ``init`` callback runs after oddsstore's own connection setup, which only
            registers codecs (json and jsonb values arrive decoded, as Python lists, dicts and
            scalars, on ``store.pool`` too): a connection opened by the store creates nothing, so it works on a
            read-only hot standby and behind PgBouncer (there pass ``statement_cache_size=0``
            unless PgBouncer supports prepared statements; docs/operations.md).
        :raises ConnectError: the first connections could not be opened or authenticated (the
            message names the reason).
        """

        async def open_store() -> OddsStore:
            queries = Queries.from_directory(sql_directory("queries"))
            user_init: Callable[[asyncpg.Connection], Awaitable[None]] | None = pool_options.pop("init", None)

            async def init(connection: asyncpg.Connection) -> None:
                await jsonb.register(connection)
                if user_init is not None:
                    await user_init(connection)

            # Plans made for each call's parameters. The named queries filter on optional
            # parameters (":x is null or ..."), and after five executions of a prepared statement
            # PostgreSQL may switch to a generic plan that cannot see which filters are off: the
            # odds board's pages went from ~0.3 s to ~2 s each on a loaded machine (and the whole
            # board ran for minutes). Planning each call costs a few milliseconds at most. Only
            # with asyncpg's statement cache on: without it (statement_cache_size=0, as behind
            # PgBouncer, which refuses this startup parameter) no prepared statement is reused.
            settings = dict(pool_options.pop("server_settings", {}))
            if pool_options.get("statement_cache_size") != 0:
                settings.setdefault("plan_cache_mode", "force_custom_plan")
            try:
                pool = await asyncpg.create_pool(
                    migrations.asyncpg_dsn(dsn),
                    init=init,
                    timeout=connect_timeout,
                    server_settings=settings,
                    **pool_options,
                )
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise ConnectError(f"cannot connect to PostgreSQL: {_reason(exc, connect_timeout)}") from exc
            return cls(
                pool,
                dsn,
                retention_days=retention_days,
                days_ahead=days_ahead,
                remember_writes=remember_writes,
                queries=queries,
            )

        return _Connecting(open_store)

    async def close(self) -> None:
        """Close the pool, waiting for connections in use to be released."""
        await self._pool.close()

    async def __aenter__(self) -> OddsStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def pool(self) -> asyncpg.Pool:
        """The asyncpg pool, for queries of your own."""
        return self._pool

    # --- schema --------------------------------------------------------------------------------

    async def migrate(self) -> list[str]:
        """Apply pending schema migrations, as ``yoyo apply --database DSN schema/`` does.

        Returns the ids of the migrations applied (empty when the schema is current). It first
        reads which migrations are applied; with none pending it stops there, taking no lock and
        writing nothing, so any role of the store (the writer, the reader, a replica) can run it.
        """
        try:
            applied: list[str] = await self._query("applied_migrations")
        except (MigrationError, PermissionDeniedError):  # no schema yet, or a role that may not read it
            applied = []
        if applied and not migrations.pending(applied):
            return []
        return await asyncio.to_thread(migrations.apply, self._dsn)

    async def distribute(self) -> None:
        """Turn a migrated database on a Citus coordinator into the distributed layout
        (``queries/distribute.sql``, docs/scaling.md): the reference data as reference tables, the
        odds tables distributed by ``event_id`` and co-located, with the write path's stage tables
        (a write on Citus stages there: docs/scaling.md). Idempotent: run again (after a
        migration, say), it changes nothing already distributed. One transaction: all or nothing.

        :raises CitusMissingError: the database has no citus extension; nothing was changed.
        """
        try:
            await self._query("distribute")
            await self._query("grant_on_shards")
            self._distributed_stage = None  # made now: asked again on the next write
        except asyncpg.PostgresError as exc:
            if exc.sqlstate == CITUS_MISSING:
                raise CitusMissingError(f"{exc}; {exc.hint}") from exc
            raise

    # --- reference data ------------------------------------------------------------------------

    async def upsert_sport(self, name: str, slug: str) -> Sport:
        """Insert a sport or rename the one with ``slug``; returns the stored row."""
        _text("name", name)
        _text("slug", slug)
        sport: Sport = await self._query("upsert_sport", name=name, slug=slug)
        return sport

    async def upsert_tournament(self, sport_id: int, name: str, country: str | None = None) -> Tournament:
        """Insert a tournament or return the one with this sport, name and country."""
        _text("name", name)
        _text("country", country, optional=True)
        tournament: Tournament = await self._query("upsert_tournament", sport_id=sport_id, name=name, country=country)
        return tournament

    async def upsert_bookmaker(self, name: str, slug: str, base_url: str | None = None) -> Bookmaker:
        """Insert a bookmaker or update the one with ``slug``; returns the stored row."""
        _text("name", name)
        _text("slug", slug)
        _text("base_url", base_url, optional=True)
        bookmaker: Bookmaker = await self._query("upsert_bookmaker", name=name, slug=slug, base_url=base_url)
        return bookmaker

    async def upsert_event(
        self,
        tournament_id: int,
        betpawa_event_id: str | None,
        home_team: str,
        away_team: str,
        kickoff: datetime,
        *,
        sportradar_id: str | None = None,
    ) -> Event:
        """Insert or update one event (see :meth:`upsert_events`, which registers many at once).

        :param betpawa_event_id: the event's id at the bookmaker with slug ``betpawa`` (inserted,
            named BetPawa, if missing); ``None`` for an event BetPawa does not list, which then
            needs ``sportradar_id``.
        :param kickoff: aware.
        :param sportradar_id: the cross-bookmaker key; the event is matched by it when given.
        :raises InvalidInputError: a bad field, or neither key given.
        """
        links: list[dict[str, Any]] = []
        if betpawa_event_id is not None:
            _text("betpawa_event_id", betpawa_event_id)
            async with _server_errors():
                betpawa: int = await self.queries.betpawa_bookmaker(self._pool)
            links.append({"bookmaker_id": betpawa, "bookmaker_event_id": betpawa_event_id})
        (event,) = await self.upsert_events(
            [
                {
                    "tournament_id": tournament_id,
                    "home_team": home_team,
                    "away_team": away_team,
                    "kickoff": kickoff,
                    "sportradar_id": sportradar_id,
                    "bookmakers": links,
                }
            ]
        )
        return event

    async def upsert_events(self, events: Iterable[EventIn | Mapping[str, Any]]) -> list[Event]:
        """Register a batch of events with their bookmaker links in one statement (one round trip).

        Each event is matched by its ``sportradar_id`` when given (and stored under it), else by
        any of its links ``(bookmaker_id, bookmaker_event_id)`` to an event without another
        SportRadar id; an event matching neither is inserted, so one listed only at a
        competitor is stored like any other. A matched event is written only where something
        changed (a rescheduled kickoff, a SportRadar id learnt later); a scraper can send the
        same events every cycle.

        :param events: :class:`EventIn` objects or dicts of that shape.
        :returns: the stored events, in input order.
        :raises InvalidInputError: a bad field (naming the item), an event with neither key, the
            same SportRadar id or bookmaker event id twice in the call, or a bookmaker event id
            linked to another event already.
        :raises UnknownReferenceError: a tournament or bookmaker that does not exist.
        """
        batch = writes.validate_events(events)
        if not batch:
            return []
        links = [(position, link) for position, event in enumerate(batch, start=1) for link in event.bookmakers]
        found: list[Event] = await self._query(
            "upsert_events",
            tournament_ids=[event.tournament_id for event in batch],
            sportradar_ids=[event.sportradar_id for event in batch],
            home_teams=[event.home_team for event in batch],
            away_teams=[event.away_team for event in batch],
            kickoffs=[event.kickoff for event in batch],
            positions=[position for position, _ in links],
            bookmaker_ids=[link.bookmaker_id for _, link in links],
            bookmaker_event_ids=[link.bookmaker_event_id for _, link in links],
            event_urls=[link.event_url for _, link in links],
        )
        return found

    async def find_event(
        self,
        *,
        sportradar_id: str | None = None,
        bookmaker_id: int | None = None,
        bookmaker_event_id: str | None = None,
    ) -> Event | None:
        """One event by its SportRadar id, or by a bookmaker's own id for it; ``None`` if unknown.

        Pass either ``sportradar_id`` or both ``bookmaker_id`` and ``bookmaker_event_id``.
        """
        by_bookmaker = bookmaker_id is not None and bookmaker_event_id is not None
        if (sportradar_id is None) == (not by_bookmaker) or (bookmaker_id is None) != (bookmaker_event_id is None):
            raise InvalidInputError(
                "find_event takes sportradar_id, or bookmaker_id with bookmaker_event_id, "
                f"got sportradar_id={sportradar_id!r}, bookmaker_id={bookmaker_id!r}, "
                f"bookmaker_event_id={bookmaker_event_id!r}"
            )
        event: Event | None = await self._query(
            "find_event",
            sportradar_id=sportradar_id,
            bookmaker_id=bookmaker_id,
            bookmaker_event_id=bookmaker_event_id,
        )
        return event

    async def link_event_bookmaker(
        self,
        event_id: int,
        bookmaker_id: int,
        bookmaker_event_id: str | None = None,
        event_url: str | None = None,
    ) -> EventBookmaker:
        """Record that a bookmaker offers an event, with its own event id and page if known."""
        _text("bookmaker_event_id", bookmaker_event_id, optional=True)
        _text("event_url", event_url, optional=True)
        link: EventBookmaker = await self._query(
            "link_event_bookmaker",
            event_id=event_id,
            bookmaker_id=bookmaker_id,
            bookmaker_event_id=bookmaker_event_id,
            event_url=event_url,
        )
        return link

    async def get_event(self, event_id: int) -> Event | None:
        """One event by id, or ``None``."""
        event: Event | None = await self._query("get_event", event_id=event_id)
        return event

    async def bookmakers(self) -> list[Bookmaker]:
        """All bookmakers, by id."""
        found: list[Bookmaker] = await self._query("list_bookmakers")
        return found

    # --- scrape runs ---------------------------------------------------------------------------

    async def start_scrape_run(self, trigger: str | None = None, started_at: datetime | None = None) -> ScrapeRun:
        """Open a scrape run (state ``running``).

        :param trigger: what started it (scheduled, manual, ...).
        :param started_at: when it started (aware); the database's now() when ``None``. Pass it
            when replaying or backfilling, so stale_odds compares runs and snapshots rightly.
        """
        _aware("started_at", started_at)
        _text("trigger", trigger, optional=True)
        run: ScrapeRun = await self._query("start_scrape_run", trigger=trigger, started_at=started_at)
        return run

    async def finish_scrape_run(
        self,
        run_id: int,
        status: ScrapeStatus | str,
        events_scraped: int = 0,
        events_failed: int = 0,
        completed_at: datetime | None = None,
    ) -> ScrapeRun:
        """Close a run with its final ``status`` (completed, partial or failed) and counts.

        :param completed_at: when it ended (aware); the database's now() when ``None``.
        :raises InvalidInputError: a status that is not final, or a negative count.
        :raises UnknownReferenceError: there is no such run.
        """
        final = (ScrapeStatus.COMPLETED, ScrapeStatus.PARTIAL, ScrapeStatus.FAILED)
        if status not in final:
            raise InvalidInputError(f"status must be one of {', '.join(final)}, got {status!r}")
        if events_scraped < 0 or events_failed < 0:
            raise InvalidInputError(f"event counts must be >= 0, got {events_scraped}, {events_failed}")
        _aware("completed_at", completed_at)
        run: ScrapeRun | None = await self._query(
            "finish_scrape_run",
            run_id=run_id,
            status=ScrapeStatus(status).value,
            events_scraped=events_scraped,
            events_failed=events_failed,
            completed_at=completed_at,
        )
        if run is None:
            raise UnknownReferenceError(f"no scrape run with id {run_id}")
        return run

    async def record_scrape_errors(self, errors: Iterable[ScrapeErrorIn | Mapping[str, Any]]) -> int:
        """Store a batch of :class:`ScrapeErrorIn` (or dicts of that shape) in one statement.

        All or nothing; returns how many were stored.
        """
        batch = writes.validate_scrape_errors(errors, self._window())
        if not batch:
            return 0
        days = [partitions.utc_day(e.occurred_at or datetime.now(UTC)) for e in batch]
        async with _server_errors(), self._pool.acquire() as connection, connection.transaction():
            missing: str | None = await self.queries.unknown_scrape_error_reference(
                connection,
                scrape_run_ids=[e.scrape_run_id for e in batch],
                bookmaker_ids=[e.bookmaker_id for e in batch],
                event_ids=[e.event_id for e in batch],
            )
            if missing is not None:
                raise UnknownReferenceError(missing)
            await partitions.ensure(connection, self.queries, days)
            stored: int = await self.queries.insert_scrape_errors(
                connection,
                scrape_run_ids=[e.scrape_run_id for e in batch],
                bookmaker_ids=[e.bookmaker_id for e in batch],
                event_ids=[e.event_id for e in batch],
                error_types=[e.error_type for e in batch],
                error_messages=[e.error_message for e in batch],
                occurred_ats=[e.occurred_at for e in batch],
            )
        return stored

    async def recent_scrape_runs(self, limit: int = 20) -> list[ScrapeRun]:
        """The most recent scrape runs, newest first."""
        runs: list[ScrapeRun] = await self._query("recent_scrape_runs", limit=limit)
        return runs

    async def abandon_limit(self) -> timedelta:
        """How long a run may stay ``running`` before :meth:`close_abandoned_scrape_runs` closes it:
        an hour, or three times the longest run that ended in the last 7 days if that is longer."""
        limit: timedelta = await self._query("abandon_limit")
        return limit

    async def close_abandoned_scrape_runs(self, older_than: timedelta | None = None) -> list[ScrapeRun]:
        """Close as ``failed`` every run still ``running`` longer than ``older_than`` after it
        started (default :meth:`abandon_limit`): runs whose scraper was stopped before it could
        close them. Each gets a scrape error of type ``abandoned`` saying why. Returns the runs
        closed, by id.

        :raises InvalidInputError: ``older_than`` is not positive.
        """
        limit = await self.abandon_limit() if older_than is None else older_than
        if limit <= timedelta(0):
            raise InvalidInputError(f"older_than must be positive, got {limit}")
        async with self._pool.acquire() as connection, _server_errors(), connection.transaction():
            await partitions.ensure(connection, self.queries, [partitions.utc_day(datetime.now(UTC))])
            closed: list[ScrapeRun] = await self.queries.close_abandoned_scrape_runs(connection, older_than=limit)
        return closed

    async def scrape_errors(self, run_id: int) -> list[ScrapeError]:
        """The errors one run recorded, oldest first."""
        found: list[ScrapeError] = await self._query("scrape_errors_of_run", run_id=run_id)
        return found

    # --- odds ----------------------------------------------------------------------------------

    async def write_snapshots(
        self,
        snapshots: Iterable[SnapshotIn | Mapping[str, Any]],
        scrape_run_id: int | None = None,
        *,
        on_invalid: Literal["raise", "skip"] = "raise",
        unknown_keys: Literal["ignore", "reject"] = "ignore",
    ) -> WriteResult:
        """Store a batch of snapshots in one transaction.

        Markets listed in several rows (same ``betpawa_market_id`` and ``line``) are one market,
        their outcomes merged; outcomes are stored sorted by name, so a reorder is no change.
        Placeholder prices (None, 0, 1.0, a suspended 100.0) are stored as given and never
        judged as prices (docs/schema.md). A snapshot the database holds already with the same
        markets (a batch re-sent after a lost connection) is not stored again and is listed in
        ``already_stored``.

        :param snapshots: :class:`SnapshotIn` objects or dicts of that shape.
        :param scrape_run_id: the run that produced them, recorded on every snapshot.
        :param on_invalid: ``"raise"`` (all or nothing: the first invalid snapshot raises and
            nothing is stored) or ``"skip"``: every valid snapshot is stored, each invalid one
            is left out whole, listed in the result's ``skipped`` with its path and reason, and
            recorded in ``scrape_errors`` (``parse_error``, with its event and bookmaker) under
            ``scrape_run_id`` when given, in the same transaction.
        :param unknown_keys: keys of a snapshot, market or outcome dict that the store does not
            model (a scraper's ``market_groups``, ``unavailable_at``): ``"ignore"`` drops them
            (they are not stored); ``"reject"`` makes the snapshot invalid, to catch typos.
        :returns: counts, the new snapshot ids in input order, the snapshots already stored and
            those skipped.
        :raises InvalidInputError: a bad field (the message names the item), a market whose rows
            disagree on its name or handicap, an outcome listed twice with different prices, or
            a snapshot repeated in the batch (with ``on_invalid="raise"``).
        :raises OutsidePartitionWindowError: a ``captured_at`` older than the retention period or
            more than ``days_ahead`` days ahead (with ``on_invalid="raise"``).
        :raises UnknownReferenceError: an event, bookmaker or scrape run that does not exist.
        :raises DuplicateSnapshotError: a snapshot with the same event, bookmaker and time is
            already stored with other markets.

        All in one transaction, the partitions it needs included: one call creates missing
        partitions (none on most writes), one reserves snapshot ids, one locks the batch's event
        x bookmaker pairs (writers of other pairs never wait), one loads the fingerprints of the
        pairs whose latest snapshot this store did not write (see ``remember_writes``); then per
        chunk (one, or up to 4 for a batch of more than 20,000 markets, the server merging one
        while the next is checked): two COPYs fill stage tables created for this transaction with the
        markets whose input changed, and one round trip of set-based statements records the
        snapshots and logs the markets that changed since each pair's previous snapshot. Batches
        may arrive out of order and hold many snapshots of a pair (a backfill). Bad markets are
        found chunk by chunk, so one can be reported after the transaction began; it is rolled
        back whole. On Citus, the missing partitions are created (and committed) first, in a
        transaction of their own (docs/scaling.md).
        """
        if scrape_run_id is not None and (
            not isinstance(scrape_run_id, int) or isinstance(scrape_run_id, bool) or not 0 < scrape_run_id < 2**63
        ):
            raise InvalidInputError(f"scrape_run_id must be a positive integer or None, got {scrape_run_id!r}")
        if on_invalid not in ("raise", "skip") or unknown_keys not in ("ignore", "reject"):
            raise InvalidInputError(
                f"on_invalid must be 'raise' or 'skip' and unknown_keys 'ignore' or 'reject', "
                f"got {on_invalid!r} and {unknown_keys!r}"
            )
        batch = writes.validate_snapshots(
            snapshots,
            self._window(),
            self._written if self.remember_writes else None,
            reject_unknown_keys=unknown_keys == "reject",
            skip_invalid=on_invalid == "skip",
        )
        if not batch.snapshots and not batch.skipped:
            return WriteResult(snapshots=0, markets=0, snapshot_ids=[])
        days = [partitions.utc_day(snapshot["captured_at"]) for snapshot in batch.snapshots]
        if batch.skipped and scrape_run_id is not None:
            days.append(partitions.utc_day(datetime.now(UTC)))  # their scrape_errors rows
        try:
            async with _server_errors(), self._pool.acquire() as connection:
                citus = await self._on_citus(connection)
                if citus:
                    # Committed before the write's transaction (queries/distribute.sql says why).
                    await partitions.ensure(connection, self.queries, days)
                async with connection.transaction():
                    await partitions.ensure(connection, self.queries, days)
                    result, written = await writes.store_snapshots(
                        connection,
                        self.queries,
                        batch,
                        scrape_run_id,
                        distributed_stage=citus and await self._stage_distributed(connection),
                    )
        except (UnknownReferenceError, DuplicateSnapshotError) as exc:
            if exc.__cause__ is None:  # raised by the write path, naming the snapshot already
                raise
            raise type(exc)(f"{writes.locate(batch, str(exc))}{exc}") from exc.__cause__
        if self.remember_writes:
            self._remember(written)
        return result

    async def _on_citus(self, connection: asyncpg.Connection) -> bool:
        """Whether the database has the citus extension (``citus_installed``), asked once."""
        if self._citus is None:
            self._citus = bool(await self.queries.citus_installed(connection))
        return self._citus

    async def _stage_distributed(self, connection: asyncpg.Connection) -> bool:
        """On Citus, whether ``distribute`` made the write path's distributed stage
        (``distributed_stage``), asked once (again after :meth:`distribute`)."""
        if self._distributed_stage is None:
            self._distributed_stage = bool(await self.queries.distributed_stage(connection))
        return self._distributed_stage

    def _remember(self, written: Mapping[writes.Pair, writes.Written | None]) -> None:
        """Keep what a committed write wrote per pair; forget pairs not written for a day (by
        captured_at: finished events), looking at most once an hour."""
        for pair, last in written.items():
            if last is None:
                self._written.pop(pair, None)
            else:
                self._written[pair] = last
        newest = max((last.captured_at for last in written.values() if last is not None), default=None)
        if newest is None:
            return
        if self._swept_at is None or newest - self._swept_at >= timedelta(hours=1):
            self._swept_at = newest
            cutoff = newest - timedelta(days=1)
            for pair in [pair for pair, last in self._written.items() if last.captured_at < cutoff]:
                del self._written[pair]

    async def latest_odds(self, event_id: int) -> list[MarketOdds]:
        """Each bookmaker's latest markets for an event (by bookmaker, market, line).

        Reads only the newest snapshot per bookmaker; its cost does not grow with history.
        """
        found: list[MarketOdds] = await self._query("latest_odds", event_id=event_id)
        return found

    async def odds_at(self, event_id: int, at: datetime) -> list[MarketOdds]:
        """Each bookmaker's markets for an event as they stood at ``at`` (aware): the markets of
        its latest snapshot at or before ``at``, exactly as that snapshot listed them."""
        _aware("at", at)
        found: list[MarketOdds] = await self._query("odds_at", event_id=event_id, at=at)
        return found

    async def odds_history(
        self,
        event_id: int,
        market_id: str,
        bookmaker_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[MarketOdds]:
        """One market of an event (every line) over time, oldest first.

        :param market_id: the ``betpawa_market_id``.
        :param bookmaker_id: only this bookmaker's snapshots; all when ``None``.
        :param since: first instant included (aware); :param until: first instant excluded.
        """
        _aware("since", since)
        _aware("until", until)
        found: list[MarketOdds] = await self._query(
            "odds_history", event_id=event_id, market_id=market_id, bookmaker_id=bookmaker_id, since=since, until=until
        )
        return found

    async def odds_history_page(
        self,
        event_id: int,
        market_id: str,
        bookmaker_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        limit: int = 1000,
        after: HistoryCursor | None = None,
    ) -> OddsHistoryPage:
        """:meth:`odds_history` a page at a time: the same rows in the same order, at most
        ``limit`` of them after ``after``. A page costs about the same wherever it is in a long
        history (each snapshot's state is read from its own day of the log).

        :param limit: rows per page, 1 to 10,000.
        :param after: the ``next_cursor`` of the previous page; ``None`` for the first page.
        :returns: an :class:`OddsHistoryPage`; its ``next_cursor`` is ``None`` on the last page.
        """
        _aware("since", since)
        _aware("until", until)
        _page_size(limit, 10_000)
        found: list[MarketOdds] = await self._query(
            "odds_history_page",
            event_id=event_id,
            market_id=market_id,
            bookmaker_id=bookmaker_id,
            since=since,
            until=until,
            limit=limit,
            **_history_cursor(after),
        )
        rows = found[:limit]
        return OddsHistoryPage(rows=rows, next_cursor=_next_history_cursor(rows[-1]) if len(found) > limit else None)

    async def snapshots(
        self, event_id: int, since: datetime | None = None, until: datetime | None = None
    ) -> list[OddsSnapshot]:
        """The snapshots of an event in ``[since, until)``, oldest first, with raw responses."""
        _aware("since", since)
        _aware("until", until)
        found: list[OddsSnapshot] = await self._query(
            "snapshots_for_event", event_id=event_id, since=since, until=until
        )
        return found

    # --- the odds board, events, event detail --------------------------------------------------
    # queries/board.sql, queries/events.sql, queries/event_detail.sql. An outcome is an offer only
    # when it is active and its odds are above 1.0; anything else is suspended: shown, never a
    # best price, never in a margin or a gap.

    async def odds_board(
        self,
        markets: Sequence[str] | Mapping[str, Sequence[float | None] | None],
        *,
        kickoff_from: datetime | None = None,
        kickoff_to: datetime | None = None,
        sport_id: int | None = None,
        tournament_id: int | None = None,
        event_ids: Sequence[int] | None = None,
        bookmaker_ids: Sequence[int] | None = None,
        home_bookmaker_id: int | None = None,
        stale_after: timedelta = DEFAULT_STALE_AFTER,
        limit: int = 50,
        after: PageCursor | None = None,
    ) -> BoardPage:
        """One page of the odds board: events in kickoff order, a few markets of each, every
        bookmaker's prices side by side. One round trip per page.

        :param markets: market ids (``betpawa_market_id``), each shown at its main line; or a
            mapping from market id to the lines to show (``None`` in the list: the market
            without a line), or to ``None`` for its main line. The **main line** of a market of
            an event is one line for every bookmaker, so their prices compare: the line the most
            bookmakers offer complete (every outcome an offer), then the one whose implied
            probabilities are closest (``max(1/odds) - min(1/odds)``, averaged over them: the
            even line, 2.5 goals for a typical football total), then the lowest. Markets in the
            order given.
        :param kickoff_from: first kickoff included (aware); default now, or no bound when
            ``event_ids`` are given. :param kickoff_to: first kickoff excluded (aware).
        :param sport_id: events of this sport. :param tournament_id: of this tournament.
        :param event_ids: only these events.
        :param bookmaker_ids: only these bookmakers' prices; every bookmaker when ``None``.
        :param home_bookmaker_id: the bookmaker compared with the rest: each outcome then carries
            its fresh offer, the best fresh competitor offer and the gap between them.
        :param stale_after: a price whose bookmaker last showed the event longer ago than this
            is stale: shown with its age, never a best price nor in a gap. Positive.
        :param limit: events per page, 1 to 10,000.
        :param after: the ``next_cursor`` of the previous page (keyset on kickoff and event id).
        :returns: a :class:`BoardPage`: its events (each market with its outcomes, best offers
            and each bookmaker's quote, margin, age and stale flag) and the cursor of the next
            page, ``None`` on the last one.
        """
        market_ids, market_lines = _board_markets(markets)
        for name, moment in (("kickoff_from", kickoff_from), ("kickoff_to", kickoff_to)):
            _aware(name, moment)
        _page_size(limit, 10_000)
        if stale_after <= timedelta(0):
            raise InvalidInputError(f"stale_after must be positive, got {stale_after}")
        found: list[BoardEvent] = await self._query(
            "odds_board",
            kickoff_from=kickoff_from,
            kickoff_to=kickoff_to,
            sport_id=sport_id,
            tournament_id=tournament_id,
            event_ids=None if event_ids is None else list(event_ids),
            after_kickoff=None if after is None else after.kickoff,
            after_event_id=None if after is None else after.event_id,
            limit=limit,
            market_ids=market_ids,
            market_lines=market_lines,
            bookmaker_ids=None if bookmaker_ids is None else list(bookmaker_ids),
            home_bookmaker_id=home_bookmaker_id,
            stale_after=stale_after,
        )
        page = found[:limit]
        more = len(found) > limit
        return BoardPage(
            events=page, next_cursor=PageCursor(kickoff=page[-1].kickoff, event_id=page[-1].event_id) if more else None
        )

    async def events(
        self,
        *,
        kickoff_from: datetime | None = None,
        kickoff_to: datetime | None = None,
        sport_id: int | None = None,
        tournament_id: int | None = None,
        search: str | None = None,
        limit: int = 100,
        after: PageCursor | None = None,
    ) -> EventPage:
        """A page of events in kickoff order, with their tournament and linked bookmakers.

        :param kickoff_from: first kickoff included; :param kickoff_to: first excluded (aware;
            no bound when ``None``).
        :param sport_id: events of this sport. :param tournament_id: of this tournament.
        :param search: text found in the home or the away team's name, ignoring case.
        :param limit: events per page, 1 to 10,000.
        :param after: the ``next_cursor`` of the previous page (keyset on kickoff and event id).
        :returns: an :class:`EventPage`; ``next_cursor`` is ``None`` on the last page.
        """
        for name, moment in (("kickoff_from", kickoff_from), ("kickoff_to", kickoff_to)):
            _aware(name, moment)
        _page_size(limit, 10_000)
        if search is not None:
            _text("search", search)
        found: list[EventListing] = await self._query(
            "list_events",
            kickoff_from=kickoff_from,
            kickoff_to=kickoff_to,
            sport_id=sport_id,
            tournament_id=tournament_id,
            search=search,
            after_kickoff=None if after is None else after.kickoff,
            after_event_id=None if after is None else after.event_id,
            limit=limit,
        )
        page = found[:limit]
        more = len(found) > limit
        return EventPage(
            events=page, next_cursor=PageCursor(kickoff=page[-1].kickoff, event_id=page[-1].id) if more else None
        )

    async def margin_history(
        self, event_id: int, market_id: str, line: float | None = None, bookmaker_id: int | None = None
    ) -> list[MarginPoint]:
        """The margin of one market of an event over time, per bookmaker and line, oldest first:
        a :class:`MarginPoint` per logged change, ``(sum(1/odds) - 1) * 100`` while every outcome
        was an offer, ``None`` while one was suspended or the market was not listed.

        :param market_id: the ``betpawa_market_id``.
        :param line: only this line; every line when ``None``.
        :param bookmaker_id: only this bookmaker; every one when ``None``.
        """
        if line is not None and not math.isfinite(line):
            raise InvalidInputError(f"line must be a finite number or None, got {line!r}")
        found: list[MarginPoint] = await self._query(
            "margin_history", event_id=event_id, market_id=market_id, line=line, bookmaker_id=bookmaker_id
        )
        return found

    async def missing_markets(self, event_id: int) -> list[MissingMarket]:
        """Markets of an event that a bookmaker listed before and lists no more, each with the
        moment it went missing, when and under what name it was last listed, and which
        bookmakers list it now. By market, line and bookmaker.

        A bookmaker that stopped showing the whole event is not here: :meth:`stale_odds` reports it.
        """
        found: list[MissingMarket] = await self._query("missing_markets", event_id=event_id)
        return found

    # --- health --------------------------------------------------------------------------------

    async def stale_odds(self, max_age: timedelta) -> list[StaleOdds]:
        """Event x bookmaker pairs of upcoming events whose odds may be stale, with reasons.

        Reasons: ``no_snapshot``, ``older_than_max_age``, ``latest_run_failed`` (the most recent
        run failed after the snapshot), ``errors_since_snapshot`` (the most recent run recorded an
        error for the bookmaker, the event, or everything, after the snapshot).
        """
        if max_age <= timedelta(0):
            raise InvalidInputError(f"max_age must be positive, got {max_age}")
        found: list[StaleOdds] = await self._query("stale_odds", max_age=max_age)
        return found

    async def error_summary(self, since: datetime) -> list[ErrorSummary]:
        """Failure history since ``since`` per bookmaker and error type, longest streak first."""
        _aware("since", since)
        found: list[ErrorSummary] = await self._query("error_summary", since=since)
        return found

    # --- analytics -----------------------------------------------------------------------------
    # Set-based reads of queries/analytics.sql. Latest-state questions read market_current (no
    # history); history questions read market_changes by its key. Percentages are plain numbers.

    async def compare_event(self, event_id: int, home_bookmaker_id: int | None = None) -> list[PriceComparison]:
        """Every bookmaker's latest price for each outcome of an event, side by side, with the best
        active price and who offers it.

        :param event_id: the event.
        :param home_bookmaker_id: the bookmaker to compare with the rest (BetPawa, say): each row
            then carries its price, the best competitor's and the gap between them
            (``(home / best competitor - 1) * 100``).
        :returns: one :class:`PriceComparison` per market, line and outcome, by market id, line
            and the bookmakers' listing order; empty for an event with no odds.
        """
        found: list[PriceComparison] = await self._query(
            "compare_event", event_id=event_id, home_bookmaker_id=home_bookmaker_id
        )
        return found

    async def margins(
        self,
        event_id: int | None = None,
        tournament_id: int | None = None,
        since: datetime | None = None,
        market_id: str | None = None,
    ) -> list[Margin]:
        """Each bookmaker's margin (overround, ``(sum(1/odds) - 1) * 100``) on its current markets.

        Only complete markets count: at least two outcomes, every one active (a market with a
        suspended outcome is skipped). Every filter is optional; with none, every current market.
        The formula assumes outcomes that exclude each other and cover every result (1X2,
        over/under); a market with overlapping outcomes (double chance) shows about 100%.

        :param event_id: one event's markets.
        :param tournament_id: the markets of one tournament's events.
        :param since: markets whose current prices were set at or after this moment (aware).
        :param market_id: one market type (``betpawa_market_id``).
        :returns: :class:`Margin` rows by event, market, line and bookmaker.
        """
        _aware("since", since)
        found: list[Margin] = await self._query(
            "margins", event_id=event_id, tournament_id=tournament_id, since=since, market_id=market_id
        )
        return found

    async def tournament_margins(
        self, tournament_id: int | None = None, since: datetime | None = None, market_id: str | None = None
    ) -> list[TournamentMargin]:
        """:meth:`margins` aggregated per tournament and bookmaker: market and event counts, and the
        average, lowest and highest margin. Same filters as :meth:`margins` (without the event).

        Margins differ a lot between market types; pass ``market_id`` to compare like with like.
        """
        _aware("since", since)
        found: list[TournamentMargin] = await self._query(
            "tournament_margins", tournament_id=tournament_id, since=since, market_id=market_id
        )
        return found

    async def opening_closing(self, event_id: int) -> list[OpeningClosing]:
        """Opening and closing odds of an event, per bookmaker, market, line and outcome.

        Opening: the market's first listed state. Closing: its last listed state at or before
        kickoff (changes after kickoff are ignored; for an event yet to start, the current
        state). Each row also says whether the market was still listed at kickoff, when the
        bookmaker was last seen before it, and the movement ``(closing / opening - 1) * 100``.

        :returns: :class:`OpeningClosing` rows by market, line, bookmaker and outcome order; empty
            for an unknown event or one with no history.
        """
        found: list[OpeningClosing] = await self._query("opening_closing", event_id=event_id)
        return found

    async def line_movement(self, event_id: int, market_id: str, line: float | None = None) -> list[MarketChange]:
        """Every logged change of one market of an event, every bookmaker, oldest first: new prices,
        suspensions, and disappearances (rows with ``outcomes`` ``None``).

        :param market_id: the ``betpawa_market_id``.
        :param line: only this line; every line when ``None`` (markets without lines have only
            the ``None`` line, so they need none).
        """
        if line is not None and not math.isfinite(line):
            raise InvalidInputError(f"line must be a finite number or None, got {line!r}")
        found: list[MarketChange] = await self._query(
            "line_movement", event_id=event_id, market_id=market_id, line=line
        )
        return found

    async def line_movement_page(
        self,
        event_id: int,
        market_id: str,
        line: float | None = None,
        *,
        limit: int = 1000,
        after: HistoryCursor | None = None,
    ) -> LineMovementPage:
        """:meth:`line_movement` a page at a time: the same changes in the same order, at most
        ``limit`` of them after ``after``.

        :param limit: changes per page, 1 to 10,000.
        :param after: the ``next_cursor`` of the previous page; ``None`` for the first page.
        :returns: a :class:`LineMovementPage`; its ``next_cursor`` is ``None`` on the last page.
        """
        if line is not None and not math.isfinite(line):
            raise InvalidInputError(f"line must be a finite number or None, got {line!r}")
        _page_size(limit, 10_000)
        found: list[MarketChange] = await self._query(
            "line_movement_page",
            event_id=event_id,
            market_id=market_id,
            line=line,
            limit=limit,
            **_history_cursor(after),
        )
        changes = found[:limit]
        more = len(found) > limit
        return LineMovementPage(changes=changes, next_cursor=_next_history_cursor(changes[-1]) if more else None)

    async def steam_moves(self, since: datetime, min_drop_pct: float, window: timedelta) -> list[SteamMove]:
        """Sharp drops: every change at or after ``since`` at which an outcome's active price is at
        least ``min_drop_pct`` below the highest active price the same bookmaker offered for it
        during the ``window`` before (the state in force when the window opened included).

        :param since: first change examined (aware).
        :param min_drop_pct: the drop that counts, in percent (``10`` for 2.00 -> 1.80); above 0
            and below 100.
        :param window: how far back the reference price is looked for; positive.
        :returns: :class:`SteamMove` rows, oldest first, each with how many bookmakers show such a
            drop of the same outcome within the window (two or more: a move across the market).
        """
        _aware("since", since)
        if not 0 < min_drop_pct < 100:
            raise InvalidInputError(f"min_drop_pct must be above 0 and below 100, got {min_drop_pct!r}")
        if window <= timedelta(0):
            raise InvalidInputError(f"window must be positive, got {window}")
        found: list[SteamMove] = await self._query(
            "steam_moves", since=since, min_drop_pct=float(min_drop_pct), window=window
        )
        return found

    async def arbitrage(self, max_age: timedelta) -> list[Arbitrage]:
        """Markets whose best active prices across bookmakers imply a total probability below 1.

        Only odds confirmed within ``max_age`` count (the pair's latest snapshot at most that
        old: stale odds never make an arbitrage), and only markets every such bookmaker lists
        with the same outcome names, each outcome with an active price somewhere.

        :param max_age: how recent the latest snapshot of a pair must be; positive.
        :returns: :class:`Arbitrage` rows, most profitable first, each with its legs: the best
            price per outcome, who offers it, and the share of the total stake to put on it.
        """
        if max_age <= timedelta(0):
            raise InvalidInputError(f"max_age must be positive, got {max_age}")
        found: list[Arbitrage] = await self._query("arbitrage", max_age=max_age)
        return found

    # --- partitions ----------------------------------------------------------------------------

    async def ensure_partitions(self, days_ahead: int | None = None) -> list[str]:
        """Create the partitions for today .. today + ``days_ahead`` (UTC); returns those created."""
        ahead = self.days_ahead if days_ahead is None else days_ahead
        if ahead < 0:
            raise InvalidInputError(f"days_ahead must be >= 0, got {ahead}")
        today = partitions.utc_day(datetime.now(UTC))
        async with _server_errors(), self._pool.acquire() as connection:
            return await partitions.ensure(
                connection, self.queries, (today + timedelta(days=n) for n in range(ahead + 1))
            )

    async def drop_expired_partitions(self, retention_days: int | None = None) -> list[str]:
        """Drop the partitions of days before today - ``retention_days`` (UTC), all tables
        together, with ``DETACH PARTITION ... CONCURRENTLY``. Returns the dropped names."""
        keep = self.retention_days if retention_days is None else retention_days
        if keep < 1:
            raise InvalidInputError(f"retention_days must be >= 1, got {keep}")
        cutoff = partitions.utc_day(datetime.now(UTC)) - timedelta(days=keep)
        async with _server_errors(), self._pool.acquire() as connection:
            dropped = await partitions.drop_expired(connection, self.queries, cutoff)
        return [p.name for p in dropped]

    async def maintain(self, days_ahead: int | None = None, retention_days: int | None = None) -> MaintenanceReport:
        """The daily maintenance: :meth:`ensure_partitions`, then :meth:`drop_expired_partitions`.

        A step the database role may not do is reported, not raised: the writer role creates
        partitions (only within the database's window, ``oddsstore_settings``) but may not run
        retention, which needs the owner; the report then lists what was created and says what
        was refused and why. Other errors raise as the two methods do.
        """
        ahead = self.days_ahead if days_ahead is None else days_ahead
        window: PartitionWindowSetting = await self._query("partition_window")
        created: list[str] = []
        dropped: list[str] = []
        not_allowed: list[str] = []
        try:
            created = await self.ensure_partitions(ahead)
        except PermissionDeniedError as exc:
            not_allowed.append(f"creating partitions: {exc}")
        else:
            last = partitions.utc_day(datetime.now(UTC)) + timedelta(days=ahead)
            if not window.unbounded and last > window.last_day:
                not_allowed.append(
                    f"creating partitions after {window.last_day}: outside the database's window "
                    "(oddsstore_settings.days_ahead, which only the owner changes)"
                )
        try:
            dropped = await self.drop_expired_partitions(retention_days)
        except PermissionDeniedError as exc:
            not_allowed.append(f"dropping expired partitions: {exc}")
        return MaintenanceReport(created=created, dropped=dropped, not_allowed=not_allowed)

    async def partitions(self) -> list[PartitionInfo]:
        """Every daily partition with its day, row estimate and size, oldest first."""
        found: list[PartitionInfo] = await self._query("partitions")
        return found

    async def _query(self, query: str, /, **params: Any) -> Any:
        """Run a named query on the pool, with server errors turned into oddsstore errors."""
        async with _server_errors():
            return await getattr(self.queries, query)(self._pool, **params)

    def _window(self) -> PartitionWindow:
        return PartitionWindow.at(datetime.now(UTC), retention_days=self.retention_days, days_ahead=self.days_ahead)


# queries/distribute.sql raises it where the citus extension is absent.
CITUS_MISSING = "OD001"


class _Connecting:
    """What :meth:`OddsStore.connect` returns: awaitable, and an async context manager."""

    def __init__(self, open_store: Callable[[], Awaitable[OddsStore]]) -> None:
        self._open = open_store
        self._store: OddsStore | None = None

    def __await__(self) -> Generator[Any, None, OddsStore]:
        return self._open().__await__()

    async def __aenter__(self) -> OddsStore:
        self._store = await self._open()
        return self._store

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._store is not None:
            await self._store.close()


def _reason(exc: BaseException, timeout: float) -> str:
    """Why a connection failed, in words: the driver's message, or what an empty one means."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s (connect_timeout)"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _aware(name: str, value: datetime | None) -> None:
    if value is not None:
        try:
            require_aware(value)
        except ValueError as exc:
            raise InvalidInputError(f"{name}: {exc}") from None


def _text(name: str, value: object, *, optional: bool = False) -> None:
    """Refuse what PostgreSQL text cannot hold or a name cannot be: non-strings, blanks, NUL."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a string, got {value!r}")
    if not optional and not value.strip():
        raise InvalidInputError(f"{name} must not be blank, got {value!r}")
    if "\x00" in value:
        raise InvalidInputError(f"{name} must not contain NUL characters, got {value!r}")


@asynccontextmanager
async def _server_errors() -> AsyncIterator[None]:
    """Turn the server errors bad input causes into oddsstore errors (asyncpg's as ``__cause__``)."""
    try:
        yield
    except asyncpg.ForeignKeyViolationError as exc:
        raise UnknownReferenceError(exc.detail or str(exc)) from exc
    except asyncpg.UniqueViolationError as exc:
        if (exc.table_name or "").startswith("odds_snapshots"):
            # The detail is hidden from roles that cannot read every key column (the writer).
            key = exc.detail or "Key (event_id, bookmaker_id, captured_at) already present"
            raise DuplicateSnapshotError(
                f"snapshot already stored (written meanwhile by another writer?): {key}"
            ) from exc
        raise InvalidInputError(exc.detail or str(exc)) from exc
    except asyncpg.CheckViolationError as exc:
        if "no partition" in str(exc):
            raise OutsidePartitionWindowError(f"{exc}; its day has no partition (dropped by retention?)") from exc
        raise InvalidInputError(str(exc)) from exc
    except (asyncpg.DataError, asyncpg.NotNullViolationError) as exc:
        raise InvalidInputError(str(exc)) from exc
    except asyncpg.OutOfMemoryError as exc:
        if "max_locks_per_transaction" not in (exc.hint or ""):
            raise
        raise LockTableFullError(f"{exc} ({exc.hint}; docs/operations.md, Writers)") from exc
    except (asyncpg.QueryCanceledError, asyncpg.LockNotAvailableError) as exc:
        raise QueryTimeoutError(str(exc)) from exc
    except (asyncpg.PostgresConnectionError, asyncpg.AdminShutdownError, ConnectionError) as exc:
        raise ConnectionLostError(str(exc)) from exc
    except asyncpg.InterfaceError as exc:
        if str(exc) in ("pool is closed", "pool is closing"):
            raise StoreClosedError("the store is closed (OddsStore.close() was called)") from exc
        # asyncpg reports a connection that died under an open transaction as an InterfaceError
        # ("the underlying connection is closed") over ConnectionDoesNotExistError.
        if isinstance(exc, asyncpg.ConnectionDoesNotExistError) or "connection is closed" in str(exc):
            raise ConnectionLostError(str(exc)) from exc
        raise
    except asyncpg.InsufficientPrivilegeError as exc:
        raise PermissionDeniedError(f"{exc} (this database role may not do that; docs/operations.md: roles)") from exc
    except (asyncpg.UndefinedTableError, asyncpg.UndefinedFunctionError) as exc:
        raise MigrationError(f"{exc}: the database lacks the oddsstore schema; run `oddsstore migrate`") from exc


def _board_markets(
    markets: Sequence[str] | Mapping[str, Sequence[float | None] | None],
) -> tuple[list[str], list[float | None]]:
    """The board's markets as the two parallel arrays queries/board.sql takes: market ids, and per
    id a line (``None``: its main line; NaN: the market without a line)."""
    if isinstance(markets, str):
        raise InvalidInputError(f"markets must be a list of market ids or a mapping, got the string {markets!r}")
    asked = markets.items() if isinstance(markets, Mapping) else [(market_id, None) for market_id in markets]
    ids: list[str] = []
    lines: list[float | None] = []
    seen: set[tuple[str, str | float | None]] = set()
    for market_id, wanted in asked:
        _text("market id", market_id)
        for line in ["main"] if wanted is None else wanted:
            if isinstance(line, float | int) and not math.isfinite(line):
                raise InvalidInputError(f"market {market_id!r}: a line must be a finite number or None, got {line!r}")
            if (market_id, line) in seen:
                raise InvalidInputError(f"market {market_id!r} at line {line!r} is asked for twice")
            seen.add((market_id, line))
            ids.append(market_id)
            lines.append(None if line == "main" else math.nan if line is None else float(line))
    if not ids:
        raise InvalidInputError("markets must name at least one market")
    return ids, lines


def _history_cursor(after: HistoryCursor | None) -> dict[str, Any]:
    """The keyset parameters of queries/history.sql for ``after`` (all null: the first page)."""
    if after is None:
        return {"after_captured_at": None, "after_bookmaker_id": None, "after_line": None}
    return {"after_captured_at": after.captured_at, "after_bookmaker_id": after.bookmaker_id, "after_line": after.line}


def _next_history_cursor(last: MarketOdds | MarketChange) -> HistoryCursor:
    return HistoryCursor(captured_at=last.captured_at, bookmaker_id=last.bookmaker_id, line=last.line)


def _page_size(limit: int, most: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= most:
        raise InvalidInputError(f"limit must be an integer from 1 to {most}, got {limit!r}")
