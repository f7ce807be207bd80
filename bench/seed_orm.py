"""The baseline oddsstore is measured against: the seed plan's schema, written with SQLAlchemy 2.

``seed/02-02-PLAN.md`` describes what a scraper team would build on SQLAlchemy 2 (async ORM) and
Alembic. This module renders that plan as faithfully as a benchmark allows, and no worse:

* **Models.** ``OddsSnapshot``, ``MarketOdds``, ``ScrapeRun`` and ``ScrapeError`` carry exactly the
  seed's columns, relationships and indexes (``idx_snapshots_event``, ``idx_snapshots_bookmaker``,
  ``idx_snapshots_event_time`` on ``(event_id, captured_at DESC)``, the BRIN on ``captured_at``,
  ``idx_market_odds_snapshot``, ``idx_market_odds_market``, the two scrape indexes each). The
  reference tables of plan 02-01 (sports, tournaments, bookmakers, events, event_bookmakers) are
  kept minimal: plain id keys and foreign keys, which is all the odds tables lean on.
* **Partitioning, as the seed's migration would declare it.** ``odds_snapshots`` is
  ``PARTITION BY RANGE (captured_at)`` and so is ``market_odds`` (the configuration the project
  measured). PostgreSQL requires a partitioned table's primary key to include the partition key,
  so both keys are ``(id, captured_at)``; ``market_odds`` therefore carries ``captured_at`` and its
  foreign key is ``(snapshot_id, captured_at) -> odds_snapshots (id, captured_at)``. The
  relationship fills both columns from the parent, so application code is unchanged.
  :func:`create_seed_schema` makes one daily partition per requested date: the baseline gets its
  partitions made for it (its best case; in production no process made them).
* **Types where the seed's text was wrong for its own intent.** The seed asks for
  ``mapped_column(JSON)`` expecting JSONB; SQLAlchemy's ``JSON`` renders ``json``, so ``JSONB`` is
  used for ``outcomes`` and ``raw_response``. A bare ``Mapped[datetime]`` renders ``timestamp
  without time zone``, which rejects aware datetimes under asyncpg (the naive/aware failures the
  production system reported); timestamps here are ``timestamptz``, the same 8 bytes.
* **Write path.** :func:`write_batch` does what the team would: build ``OddsSnapshot`` objects
  with their ``MarketOdds`` children through the relationship, ``add_all``, one commit per batch.
  SQLAlchemy's defaults are kept, including "insertmanyvalues" batching of ``INSERT ... RETURNING``
  under asyncpg, which is what its users get.
* **Read and retention.** :func:`latest_odds_seed` is the seed-style latest-odds query (a
  ``max(id)`` per bookmaker subquery joined back to snapshots and markets).
  :func:`batched_delete_day` is the retention the production system ran: ``DELETE ... WHERE ctid
  IN (SELECT ctid ... LIMIT n)`` loops, markets before snapshots, one commit per batch.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Row,
    String,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "Base",
    "Sport",
    "Tournament",
    "Bookmaker",
    "Event",
    "EventBookmaker",
    "OddsSnapshot",
    "MarketOdds",
    "ScrapeStatus",
    "ScrapeRun",
    "ScrapeError",
    "async_url",
    "make_engine",
    "make_session_factory",
    "create_seed_schema",
    "insert_reference",
    "create_scrape_run",
    "build_snapshots",
    "write_batch",
    "latest_odds_seed",
    "batched_delete_day",
    "table_bytes",
]

TimestampTZ = DateTime(timezone=True)


class Base(DeclarativeBase):
    """Declarative base of the seed's models."""


# --- reference tables (plan 02-01, minimal) ----------------------------------------------------


class Sport(Base):
    __tablename__ = "sports"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class Tournament(Base):
    __tablename__ = "tournaments"

    id: Mapped[int] = mapped_column(primary_key=True)
    sport_id: Mapped[int] = mapped_column(ForeignKey("sports.id"))
    name: Mapped[str] = mapped_column(String(200))


class Bookmaker(Base):
    __tablename__ = "bookmakers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    tournament_id: Mapped[int] = mapped_column(ForeignKey("tournaments.id"))
    home_team: Mapped[str] = mapped_column(String(200))
    away_team: Mapped[str] = mapped_column(String(200))
    kickoff: Mapped[datetime] = mapped_column(TimestampTZ)


class EventBookmaker(Base):
    """An event as one bookmaker lists it: its own event id and URL."""

    __tablename__ = "event_bookmakers"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    bookmaker_id: Mapped[int] = mapped_column(ForeignKey("bookmakers.id"))
    external_event_id: Mapped[str] = mapped_column(String(100))
    event_url: Mapped[str | None] = mapped_column(String(500))


# --- odds (plan 02-02, task 1) -----------------------------------------------------------------


class OddsSnapshot(Base):
    """Everything one bookmaker showed for one event at ``captured_at`` (partitioned by day)."""

    __tablename__ = "odds_snapshots"
    __table_args__ = (
        Index("idx_snapshots_event", "event_id"),
        Index("idx_snapshots_bookmaker", "bookmaker_id"),
        Index(
            "idx_snapshots_event_time",
            "event_id",
            "captured_at",
            postgresql_ops={"captured_at": "DESC"},
        ),
        Index("idx_snapshots_captured_brin", "captured_at", postgresql_using="brin"),
        {"postgresql_partition_by": "RANGE (captured_at)"},
    )

    # (id, captured_at): a partitioned table's primary key must include the partition key.
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    captured_at: Mapped[datetime] = mapped_column(TimestampTZ, primary_key=True, server_default=func.now())
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    bookmaker_id: Mapped[int] = mapped_column(ForeignKey("bookmakers.id"))
    scrape_run_id: Mapped[int | None] = mapped_column(ForeignKey("scrape_runs.id"))
    raw_response: Mapped[dict[str, Any] | None] = mapped_column(JSONB)

    event: Mapped[Event] = relationship()
    bookmaker: Mapped[Bookmaker] = relationship()
    scrape_run: Mapped[ScrapeRun | None] = relationship(back_populates="snapshots")
    markets: Mapped[list[MarketOdds]] = relationship(back_populates="snapshot")


class MarketOdds(Base):
    """One market of a snapshot, its outcomes as JSONB (partitioned by day like its snapshot)."""

    __tablename__ = "market_odds"
    __table_args__ = (
        ForeignKeyConstraint(
            ["snapshot_id", "captured_at"],
            ["odds_snapshots.id", "odds_snapshots.captured_at"],
        ),
        Index("idx_market_odds_snapshot", "snapshot_id"),
        Index("idx_market_odds_market", "betpawa_market_id"),
        {"postgresql_partition_by": "RANGE (captured_at)"},
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # Copied from the parent snapshot by the relationship; needed for the key and the foreign key.
    captured_at: Mapped[datetime] = mapped_column(TimestampTZ, primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(BigInteger)
    betpawa_market_id: Mapped[str]
    betpawa_market_name: Mapped[str]
    line: Mapped[float | None]
    handicap_type: Mapped[str | None]
    handicap_home: Mapped[float | None]
    handicap_away: Mapped[float | None]
    outcomes: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)

    snapshot: Mapped[OddsSnapshot] = relationship(back_populates="markets")


# --- scrape tracking (plan 02-02, task 2) ------------------------------------------------------


class ScrapeStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    PARTIAL = "partial"
    FAILED = "failed"


class ScrapeRun(Base):
    __tablename__ = "scrape_runs"
    __table_args__ = (
        Index("idx_scrape_runs_status", "status"),
        Index("idx_scrape_runs_started", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[ScrapeStatus] = mapped_column(default=ScrapeStatus.PENDING)
    started_at: Mapped[datetime] = mapped_column(TimestampTZ, server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(TimestampTZ)
    events_scraped: Mapped[int] = mapped_column(default=0)
    events_failed: Mapped[int] = mapped_column(default=0)
    trigger: Mapped[str | None]

    errors: Mapped[list[ScrapeError]] = relationship(back_populates="scrape_run")
    snapshots: Mapped[list[OddsSnapshot]] = relationship(back_populates="scrape_run")


class ScrapeError(Base):
    __tablename__ = "scrape_errors"
    __table_args__ = (
        Index("idx_scrape_errors_run", "scrape_run_id"),
        Index("idx_scrape_errors_bookmaker", "bookmaker_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scrape_run_id: Mapped[int] = mapped_column(ForeignKey("scrape_runs.id"))
    bookmaker_id: Mapped[int | None] = mapped_column(ForeignKey("bookmakers.id"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"))
    error_type: Mapped[str]
    error_message: Mapped[str]
    occurred_at: Mapped[datetime] = mapped_column(TimestampTZ, server_default=func.now())

    scrape_run: Mapped[ScrapeRun] = relationship(back_populates="errors")
    bookmaker: Mapped[Bookmaker | None] = relationship()
    event: Mapped[Event | None] = relationship()


# --- engine helpers ----------------------------------------------------------------------------


def async_url(dsn: str) -> str:
    """Return ``dsn`` (``postgresql://...`` or ``postgres://...``) with the asyncpg driver named.

    A DSN that already names a driver (``postgresql+asyncpg://``) is returned unchanged.
    """
    for prefix in ("postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql+asyncpg://" + dsn[len(prefix) :]
    return dsn


def make_engine(dsn: str) -> AsyncEngine:
    """Create an async engine for ``dsn`` with SQLAlchemy's default settings."""
    return create_async_engine(async_url(dsn))


def make_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The usual async session factory: objects stay readable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def _engine(dsn_or_engine: str | AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """Yield an engine; one made here from a DSN is disposed of on exit."""
    if isinstance(dsn_or_engine, AsyncEngine):
        yield dsn_or_engine
        return
    engine = make_engine(dsn_or_engine)
    try:
        yield engine
    finally:
        await engine.dispose()


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, dtime.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


# --- schema ------------------------------------------------------------------------------------


async def create_seed_schema(dsn: str | AsyncEngine, days: Iterable[date]) -> None:
    """Create the seed's tables, indexes and one daily partition per date in ``days``.

    The DDL is what the seed's Alembic migration would emit: the models' ``create_all`` (the
    partitioned parents with their partitioned indexes and foreign keys), then for each day
    ``odds_snapshots_pYYYYMMDD`` and ``market_odds_pYYYYMMDD`` covering ``[day, day + 1)`` in UTC.
    No DEFAULT partition is made, so a row outside ``days`` fails instead of landing there.
    """
    async with _engine(dsn) as engine, engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        for day in sorted(set(days)):
            start, end = _day_bounds(day)
            for table in ("odds_snapshots", "market_odds"):
                await conn.execute(
                    text(
                        f"CREATE TABLE {table}_p{day:%Y%m%d} PARTITION OF {table} "
                        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
                    )
                )


async def insert_reference(
    dsn_or_engine: str | AsyncEngine,
    event_ids: Sequence[int],
    bookmaker_ids: Sequence[int],
) -> None:
    """Insert the reference rows the odds tables point at: one sport and tournament, the given
    bookmakers and events (with the given ids), and an ``event_bookmakers`` link for each pair.

    Set-up only, not part of any measurement; plain Core ``executemany`` inserts.
    """
    kickoff = datetime(2030, 1, 1, tzinfo=UTC)
    async with _engine(dsn_or_engine) as engine, engine.begin() as conn:
        await conn.execute(insert(Sport), [{"id": 1, "name": "Football"}])
        await conn.execute(insert(Tournament), [{"id": 1, "sport_id": 1, "name": "League"}])
        await conn.execute(insert(Bookmaker), [{"id": b, "name": f"bookmaker {b}"} for b in bookmaker_ids])
        await conn.execute(
            insert(Event),
            [
                {
                    "id": e,
                    "tournament_id": 1,
                    "home_team": f"home {e}",
                    "away_team": f"away {e}",
                    "kickoff": kickoff,
                }
                for e in event_ids
            ],
        )
        await conn.execute(
            insert(EventBookmaker),
            [
                {"event_id": e, "bookmaker_id": b, "external_event_id": f"{b}-{e}"}
                for e in event_ids
                for b in bookmaker_ids
            ],
        )


async def create_scrape_run(session_factory: async_sessionmaker[AsyncSession]) -> int:
    """Start a scrape run the way the seed's scraper would (status ``running``); return its id."""
    async with session_factory() as session:
        run = ScrapeRun(status=ScrapeStatus.RUNNING, trigger="scheduled")
        session.add(run)
        await session.flush()
        run_id = run.id
        await session.commit()
    return run_id


# --- write, read, retention, size --------------------------------------------------------------


def build_snapshots(snapshots: Sequence[dict[str, Any]], scrape_run_id: int | None = None) -> list[OddsSnapshot]:
    """Build ``OddsSnapshot`` objects with their ``MarketOdds`` children (not yet in a session).

    ``snapshots`` has the shape oddsstore's write path takes: dicts with ``event_id``,
    ``bookmaker_id``, ``captured_at`` (aware), optional ``raw_response``, and ``markets``, each
    with ``betpawa_market_id``, ``betpawa_market_name``, ``line``, ``handicap_type``,
    ``handicap_home``, ``handicap_away`` and ``outcomes`` (a list of ``{name, odds, is_active}``).
    """
    objects: list[OddsSnapshot] = []
    for snap in snapshots:
        snapshot = OddsSnapshot(
            event_id=snap["event_id"],
            bookmaker_id=snap["bookmaker_id"],
            captured_at=snap["captured_at"],
            scrape_run_id=scrape_run_id,
            raw_response=snap.get("raw_response"),
        )
        snapshot.markets = [
            MarketOdds(
                betpawa_market_id=m["betpawa_market_id"],
                betpawa_market_name=m["betpawa_market_name"],
                line=m.get("line"),
                handicap_type=m.get("handicap_type"),
                handicap_home=m.get("handicap_home"),
                handicap_away=m.get("handicap_away"),
                outcomes=[dict(o) for o in m["outcomes"]],
            )
            for m in snap["markets"]
        ]
        objects.append(snapshot)
    return objects


async def write_batch(
    session_factory: async_sessionmaker[AsyncSession],
    snapshots: Sequence[dict[str, Any]],
    scrape_run_id: int | None = None,
) -> int:
    """Store one scrape batch through the ORM; return the number of market rows written.

    Builds the objects (:func:`build_snapshots`), then ``add_all`` and one commit in a fresh
    session: the unit of work inserts the snapshots, takes their ids from ``RETURNING`` and
    inserts the markets, each table in pages of "insertmanyvalues" (SQLAlchemy's defaults).
    """
    objects = build_snapshots(snapshots, scrape_run_id)
    market_rows = sum(len(snapshot.markets) for snapshot in objects)
    async with session_factory() as session:
        session.add_all(objects)
        await session.commit()
    return market_rows


async def latest_odds_seed(session_or_conn: AsyncSession | AsyncConnection, event_id: int) -> list[Row[Any]]:
    """Latest odds of one event, seed style: every market of each bookmaker's newest snapshot.

    The newest snapshot is ``max(id)`` per bookmaker (ids grow with time), joined back to
    ``odds_snapshots`` and, through the relationship, to ``market_odds``. Rows are
    ``(bookmaker_id, captured_at, betpawa_market_id, betpawa_market_name, line, handicap_type,
    handicap_home, handicap_away, outcomes)``, ordered by bookmaker and market.
    """
    latest = (
        select(
            OddsSnapshot.bookmaker_id,
            func.max(OddsSnapshot.id).label("snapshot_id"),
        )
        .where(OddsSnapshot.event_id == event_id)
        .group_by(OddsSnapshot.bookmaker_id)
        .subquery("latest")
    )
    stmt = (
        select(
            OddsSnapshot.bookmaker_id,
            OddsSnapshot.captured_at,
            MarketOdds.betpawa_market_id,
            MarketOdds.betpawa_market_name,
            MarketOdds.line,
            MarketOdds.handicap_type,
            MarketOdds.handicap_home,
            MarketOdds.handicap_away,
            MarketOdds.outcomes,
        )
        .join(latest, OddsSnapshot.id == latest.c.snapshot_id)
        .join(OddsSnapshot.markets)
        .order_by(OddsSnapshot.bookmaker_id, MarketOdds.betpawa_market_id, MarketOdds.line)
    )
    result = await session_or_conn.execute(stmt)
    return list(result.all())


async def batched_delete_day(dsn_or_engine: str | AsyncEngine, day: date, batch: int = 1000) -> tuple[int, float]:
    """Delete one UTC day of odds the way the production system did; return (rows, seconds).

    Loops ``DELETE FROM t WHERE <day> AND ctid IN (SELECT ctid FROM t WHERE <day> LIMIT batch)``
    with a commit per batch, first on ``market_odds`` (the foreign key forbids the other order),
    then on ``odds_snapshots``, until a batch deletes nothing. The outer statement repeats the day
    range because a ``ctid`` is unique only within one partition: the range keeps the delete in
    that day's partition (in production everything sat in a single DEFAULT partition).
    """
    start, end = _day_bounds(day)
    deleted = 0
    began = time.perf_counter()
    async with _engine(dsn_or_engine) as engine:
        for table in ("market_odds", "odds_snapshots"):
            stmt = text(
                f"DELETE FROM {table} "
                "WHERE captured_at >= :start AND captured_at < :end "
                f"AND ctid IN (SELECT ctid FROM {table} "
                "WHERE captured_at >= :start AND captured_at < :end LIMIT :batch)"
            )
            while True:
                async with engine.begin() as conn:
                    result = await conn.execute(stmt, {"start": start, "end": end, "batch": batch})
                if result.rowcount == 0:
                    break
                deleted += result.rowcount
    return deleted, time.perf_counter() - began


async def table_bytes(conn: AsyncConnection | AsyncSession) -> int:
    """Bytes on disk of ``odds_snapshots`` and ``market_odds``: heap, indexes and TOAST of every
    partition (``pg_total_relation_size`` summed over each partition tree)."""
    result = await conn.execute(
        text(
            "SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::bigint "
            "FROM (SELECT relid FROM pg_partition_tree('odds_snapshots') "
            "      UNION ALL SELECT relid FROM pg_partition_tree('market_odds')) AS parts"
        )
    )
    return int(result.scalar_one())
