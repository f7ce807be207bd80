"""Ingest: market observations per second through three write paths, on the same feed and server.

* ``oddsstore``: :meth:`OddsStore.write_snapshots` with the dicts a scraper would pass, from a
  store that remembers what it wrote (the default), as a scraper process running for a while.
* ``oddsstore_cold``: the same from a store opened with ``remember_writes=False``, which loads
  the fingerprints the database keeps for each write's pairs (what a new process does).
* ``seed_orm``: the seed plan's SQLAlchemy models (:func:`bench.seed_orm.write_batch`).
* ``copy_floor``: server-side COPY of every observation into oddsstore's own tables (snapshots,
  and every market row into the market table), encoded in binary before the clock starts: what
  PostgreSQL itself takes for the schema when nothing is left out.

Each path has its own database. Cycle 0 warms every path up (first connections, prepared
statements, an empty store) and is not timed; the figures are over the cycles after it. Cycles
are written in turn by each path, so all three see the same machine.
"""

from __future__ import annotations

import gc
import io
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import asyncpg

from bench import seed_orm
from bench.copy_binary import BinaryCopy, table_columns
from bench.databases import observations, open_seed, open_store
from bench.scales import TEN_MINUTES, Scale
from bench.server import database_dsn, drop_database
from oddsstore import OddsStore
from oddsstore.migrations import asyncpg_dsn
from oddsstore.partitions import utc_day
from oddsstore.synthetic.feed import Feed, FeedIds, FeedSnapshot, to_write
from oddsstore.writes import STAGE_MARKET_COLUMNS, STAGE_SNAPSHOT_COLUMNS

PATHS = ("copy_floor", "oddsstore", "oddsstore_cold", "seed_orm")
# copy_floor's targets: the snapshot table, and the table that holds market rows.
SNAPSHOT_TABLE = "odds_snapshots"
MARKET_TABLE = "market_changes"
_DATABASES = {path: f"bench_ingest_{path}" for path in PATHS}


class WritePath(Protocol):
    """One way of storing a cycle: untimed preparation, then the timed write."""

    name: str

    async def prepare(self, cycle: Sequence[FeedSnapshot]) -> Any: ...

    async def write(self, prepared: Any) -> None: ...

    async def close(self) -> None: ...


@dataclass
class StorePath:
    """oddsstore's public write path, fed the dicts a scraper would build."""

    store: OddsStore
    ids: FeedIds
    name: str = "oddsstore"

    async def prepare(self, cycle: Sequence[FeedSnapshot]) -> list[dict[str, Any]]:
        return to_write(cycle, self.ids)

    async def write(self, prepared: list[dict[str, Any]]) -> None:
        await self.store.write_snapshots(prepared)

    async def close(self) -> None:
        await self.store.close()


@dataclass
class SeedOrmPath:
    """The seed plan's ORM write: objects through the relationship, ``add_all``, one commit."""

    engine: Any
    ids: FeedIds
    name: str = "seed_orm"

    def __post_init__(self) -> None:
        self.sessions = seed_orm.make_session_factory(self.engine)

    async def prepare(self, cycle: Sequence[FeedSnapshot]) -> list[dict[str, Any]]:
        return to_write(cycle, self.ids)

    async def write(self, prepared: list[dict[str, Any]]) -> None:
        await seed_orm.write_batch(self.sessions, prepared)

    async def close(self) -> None:
        await self.engine.dispose()


@dataclass
class CopyFloorPath:
    """COPY of pre-encoded binary rows into oddsstore's tables, in one transaction per cycle."""

    connection: asyncpg.Connection
    ids: FeedIds
    snapshots: BinaryCopy
    markets: BinaryCopy
    name: str = "copy_floor"

    @classmethod
    async def open(cls, dsn: str, ids: FeedIds) -> CopyFloorPath:
        connection = await asyncpg.connect(asyncpg_dsn(dsn))
        # The fields the write path stages, so the floor encodes what oddsstore receives.
        snapshots = BinaryCopy(SNAPSHOT_TABLE, await table_columns(connection, SNAPSHOT_TABLE), STAGE_SNAPSHOT_COLUMNS)
        # line_key: the stage table computes it (a generated column); the floor encodes it.
        market_columns = (*STAGE_MARKET_COLUMNS, "line_key")
        markets = BinaryCopy(MARKET_TABLE, await table_columns(connection, MARKET_TABLE), market_columns)
        return cls(connection, ids, snapshots, markets)

    async def prepare(self, cycle: Sequence[FeedSnapshot]) -> tuple[bytes, bytes]:
        batch = to_write(cycle, self.ids)
        days = sorted({utc_day(s["captured_at"]) for s in batch})
        await self.connection.execute("select oddsstore_ensure_partitions($1, $2)", days[0], days[-1])
        snapshot_ids: list[int] = await self.connection.fetchval(
            "select array_agg(nextval('odds_snapshots_id_seq')) from generate_series(1, $1)", len(batch)
        )
        snapshot_rows = []
        market_rows = []
        for snapshot_id, snapshot in zip(snapshot_ids, batch, strict=True):
            key = {
                "snapshot_id": snapshot_id,
                "event_id": snapshot["event_id"],
                "bookmaker_id": snapshot["bookmaker_id"],
                "captured_at": snapshot["captured_at"],
            }
            snapshot_rows.append({**key, "id": snapshot_id, "scrape_run_id": None, "raw_response": None})
            market_rows += [
                {**key, **market, "line_key": math.nan if market.get("line") is None else market["line"]}
                for market in snapshot["markets"]
            ]
        return self.snapshots.encode(snapshot_rows), self.markets.encode(market_rows)

    async def write(self, prepared: tuple[bytes, bytes]) -> None:
        snapshot_bytes, market_bytes = prepared
        async with self.connection.transaction():
            for target, data in ((self.snapshots, snapshot_bytes), (self.markets, market_bytes)):
                await self.connection.copy_to_table(
                    target.table, source=io.BytesIO(data), columns=target.columns, format="binary"
                )

    async def close(self) -> None:
        await self.connection.close()


async def run(admin_dsn: str, scale: Scale) -> dict[str, Any]:
    """Write ``scale.ingest_cycles`` cycles of ``scale.ingest_events`` events through each path."""
    now = datetime.now(UTC)
    start = (
        now.replace(second=0, microsecond=0) - timedelta(minutes=now.minute % 10) - scale.ingest_cycles * TEN_MINUTES
    )
    feed = Feed(
        events=scale.ingest_events,
        bookmakers=scale.bookmakers,
        seed=scale.seed,
        start=start,
        markets_per_snapshot=scale.markets_per_snapshot,
    )
    cycles = [feed.cycle(index) for index in range(scale.ingest_cycles)]
    gc.collect()
    gc.freeze()  # the feed's objects are not the write paths' garbage: keep collections off them
    everything = [snapshot for cycle in cycles for snapshot in cycle]
    days = {utc_day(snapshot.captured_at) for snapshot in everything}

    paths: list[WritePath] = []
    try:
        copy_store, copy_ids = await open_store(admin_dsn, _DATABASES["copy_floor"], feed, everything)
        await copy_store.close()
        paths.append(await CopyFloorPath.open(database_dsn(admin_dsn, _DATABASES["copy_floor"]), copy_ids))
        store, ids = await open_store(admin_dsn, _DATABASES["oddsstore"], feed, everything)
        paths.append(StorePath(store, ids))
        cold, cold_ids = await open_store(
            admin_dsn, _DATABASES["oddsstore_cold"], feed, everything, remember_writes=False
        )
        paths.append(StorePath(cold, cold_ids, name="oddsstore_cold"))
        seed_dsn = await open_seed(admin_dsn, _DATABASES["seed_orm"], days, ids)
        paths.append(SeedOrmPath(seed_orm.make_engine(seed_dsn), ids))

        seconds: dict[str, list[float]] = {path.name: [] for path in paths}
        for cycle in cycles:
            for path in paths:
                prepared = await path.prepare(cycle)
                gc.collect()
                began = time.perf_counter()
                await path.write(prepared)
                seconds[path.name].append(time.perf_counter() - began)
    finally:
        gc.unfreeze()
        for path in paths:
            await path.close()
        for name in _DATABASES.values():
            await drop_database(admin_dsn, name)

    per_cycle = [observations(cycle) for cycle in cycles]
    timed = sum(per_cycle[1:])
    return {
        "events": scale.ingest_events,
        "bookmakers": scale.bookmakers,
        "cycles_timed": len(cycles) - 1,
        "observations_per_cycle": per_cycle,
        "paths": {
            name: {
                "observations": timed,
                "seconds": sum(times[1:]),
                "per_second": timed / sum(times[1:]),
                "cycle_seconds": times,
            }
            for name, times in seconds.items()
        },
    }
