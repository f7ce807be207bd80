"""History: days of scrape cycles loaded side by side into oddsstore and the seed schema (untimed).

oddsstore gets every cycle through :meth:`OddsStore.write_snapshots`, as a scraper would hand it
over. The seed schema gets the same rows by COPY, with ids from its own sequences: the rows the
seed's ORM would insert, in the same order, without the hours the ORM would take for a week of
cycles. Storage, reads and retention are measured on these two databases.
"""

from __future__ import annotations

import gc
import time as clock
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from bench import seed_orm
from bench.databases import observations, open_seed, open_store
from bench.scales import Scale
from bench.server import database_dsn, drop_database, relation_bytes
from oddsstore import OddsStore
from oddsstore.migrations import asyncpg_dsn
from oddsstore.synthetic.feed import Feed, FeedIds, FeedSnapshot, to_write

STORE_DATABASE = "bench_history_oddsstore"
SEED_DATABASE = "bench_history_seed"
SEED_COPY_CYCLES = 24  # cycles per COPY into the seed schema (fewer round trips; same rows, same order)
_SEED_SNAPSHOT_COLUMNS = ("id", "captured_at", "event_id", "bookmaker_id")
_SEED_MARKET_COLUMNS = (
    "captured_at",
    "snapshot_id",
    "betpawa_market_id",
    "betpawa_market_name",
    "line",
    "handicap_type",
    "handicap_home",
    "handicap_away",
    "outcomes",
)


@dataclass
class History:
    """The two history databases and how far they are loaded.

    Cycles cover ``scale.history_days`` whole UTC days, starting at midnight of ``first_day``
    (``history_days`` days before today), so that day can be dropped by retention at the end.
    """

    admin_dsn: str
    scale: Scale
    first_day: date
    cycles: list[list[FeedSnapshot]]
    store: OddsStore
    ids: FeedIds
    store_dsn: str
    seed_dsn: str
    seed_engine: AsyncEngine
    seed_connection: asyncpg.Connection
    loaded: int = 0  # cycles loaded
    # what each database took before the first cycle (schema, empty partitions, reference data)
    empty_bytes: dict[str, dict[str, int]] = field(default_factory=dict)
    # seconds each side spent loading each day (oddsstore's write path, the seed's COPY)
    load_seconds: dict[str, list[float]] = field(default_factory=lambda: {"oddsstore": [], "seed": []})

    @classmethod
    async def open(cls, admin_dsn: str, scale: Scale) -> History:
        """Generate the cycles, create both databases with their reference data; load nothing."""
        today = datetime.now(UTC).date()
        first_day = today - timedelta(days=scale.history_days)
        feed = Feed(
            events=scale.history_events,
            bookmakers=scale.bookmakers,
            seed=scale.seed,
            start=datetime.combine(first_day, time(), UTC),
            interval=scale.history_interval,
            markets_per_snapshot=scale.markets_per_snapshot,
        )
        cycles = [feed.cycle(index) for index in range(scale.history_days * scale.cycles_per_day)]
        # A week of feed is millions of objects; keep the garbage collector from scanning them
        # again and again in the middle of the reads measured later.
        gc.collect()
        gc.freeze()
        store, ids = await open_store(admin_dsn, STORE_DATABASE, feed, [s for cycle in cycles for s in cycle])
        # the seed's days include today and tomorrow, for the writer that runs during retention
        days = [first_day + timedelta(days=n) for n in range(scale.history_days + 2)]
        seed_dsn = await open_seed(admin_dsn, SEED_DATABASE, days, ids)
        history = cls(
            admin_dsn,
            scale,
            first_day,
            cycles,
            store,
            ids,
            database_dsn(admin_dsn, STORE_DATABASE),
            seed_dsn,
            seed_orm.make_engine(seed_dsn),
            await asyncpg.connect(asyncpg_dsn(seed_dsn)),
        )
        await history.settle()  # so the maps vacuum adds to reference tables are not counted later
        history.empty_bytes = {
            "oddsstore": await relation_bytes(history.store_dsn),
            "seed": await relation_bytes(seed_dsn),
        }
        return history

    @property
    def days_loaded(self) -> float:
        return self.loaded / self.scale.cycles_per_day

    @property
    def observations(self) -> int:
        """Market observations loaded so far (into each database)."""
        return sum(observations(cycle) for cycle in self.cycles[: self.loaded])

    def batch(self, cycle: list[FeedSnapshot]) -> list[dict[str, Any]]:
        """``cycle`` as the dicts :meth:`OddsStore.write_snapshots` takes (ids valid in both databases)."""
        return to_write(cycle, self.ids)

    def live_events(self) -> list[int]:
        """Ids of the events in the last cycle loaded (the ones a reader would ask about)."""
        return sorted({self.ids.events[s.event_key] for s in self.cycles[self.loaded - 1]})

    async def load_days(self, days: int) -> None:
        """Load the next ``days`` days of cycles into both databases, one day at a time."""
        per_day = self.scale.cycles_per_day
        if self.loaded + days * per_day > len(self.cycles):
            raise ValueError(f"only {(len(self.cycles) - self.loaded) // per_day} days left, asked for {days}")
        for _ in range(days):
            day = [self.batch(cycle) for cycle in self.cycles[self.loaded : self.loaded + per_day]]
            began = clock.perf_counter()
            for batch in day:
                await self.store.write_snapshots(batch)
            middle = clock.perf_counter()
            for first in range(0, per_day, SEED_COPY_CYCLES):
                await self._copy_seed([s for batch in day[first : first + SEED_COPY_CYCLES] for s in batch])
            self.load_seconds["oddsstore"].append(middle - began)
            self.load_seconds["seed"].append(clock.perf_counter() - middle)
            self.loaded += per_day

    async def _copy_seed(self, snapshots: list[dict[str, Any]]) -> None:
        connection = self.seed_connection
        snapshot_ids: list[int] = await connection.fetchval(
            "select array_agg(nextval('odds_snapshots_id_seq')) from generate_series(1, $1)", len(snapshots)
        )
        pairs = list(zip(snapshot_ids, snapshots, strict=True))
        snapshot_rows = [(snapshot_id, s["captured_at"], s["event_id"], s["bookmaker_id"]) for snapshot_id, s in pairs]
        market_rows = [
            (
                s["captured_at"],
                snapshot_id,
                m["betpawa_market_id"],
                m["betpawa_market_name"],
                m["line"],
                m["handicap_type"],
                m["handicap_home"],
                m["handicap_away"],
                orjson.dumps(m["outcomes"]).decode(),
            )
            for snapshot_id, s in pairs
            for m in s["markets"]
        ]
        async with connection.transaction():
            await connection.copy_records_to_table(
                "odds_snapshots", records=snapshot_rows, columns=_SEED_SNAPSHOT_COLUMNS
            )
            await connection.copy_records_to_table("market_odds", records=market_rows, columns=_SEED_MARKET_COLUMNS)

    def summary(self) -> dict[str, Any]:
        """What was loaded, and how long each day took each side. Not a target: the seed side is
        loaded by COPY, not by its ORM, and oddsstore gets one small batch per cycle."""
        per_cycle = [observations(cycle) for cycle in self.cycles[: self.loaded]]
        per_day = self.scale.cycles_per_day
        day_observations = [sum(per_cycle[n : n + per_day]) for n in range(0, len(per_cycle), per_day)]
        return {
            "events": self.scale.history_events,
            "first_day": self.first_day.isoformat(),
            "days": self.days_loaded,
            "observations": sum(per_cycle),
            "oddsstore_per_second_by_day": [
                count / seconds for count, seconds in zip(day_observations, self.load_seconds["oddsstore"], strict=True)
            ],
            "load_seconds": self.load_seconds,
        }

    async def settle(self) -> None:
        """``VACUUM ANALYZE`` both databases, as autovacuum would have by the time anyone reads."""
        async with self.store.pool.acquire() as connection:
            await connection.execute("vacuum analyze")
        await self.seed_connection.execute("vacuum analyze")

    async def close(self) -> None:
        """Close every connection and drop both databases."""
        gc.unfreeze()
        await self.seed_connection.close()
        await self.seed_engine.dispose()
        await self.store.close()
        for name in (STORE_DATABASE, SEED_DATABASE):
            await drop_database(self.admin_dsn, name)
