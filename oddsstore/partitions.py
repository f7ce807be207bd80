"""Daily partitions: the window a write may touch, creating days ahead, retention."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import asyncpg

from oddsstore.errors import OddsStoreError
from oddsstore.records import PartitionInfo
from oddsstore.runner import Queries

# How long a retention run holds its lease without renewing it (it renews before each partition,
# and a DETACH ... CONCURRENTLY waits for the readers of its partition): how long a run that died
# keeps the next one waiting.
RETENTION_LEASE = timedelta(minutes=10)
# A plain DETACH (Citus) that gave up waiting for its lock is tried again after this many
# seconds, this many times in all.
DETACH_PAUSE = 1.0
DETACH_ATTEMPTS = 10


@dataclass(frozen=True)
class PartitionWindow:
    """The UTC days a write may touch: ``[today - retention_days, today + days_ahead]``.

    Older days are (or are about to be) dropped by retention; later days are not scraped odds.
    """

    first_day: date
    last_day: date

    @classmethod
    def at(cls, now: datetime, *, retention_days: int, days_ahead: int) -> PartitionWindow:
        today = now.astimezone(UTC).date()
        return cls(today - timedelta(days=retention_days), today + timedelta(days=days_ahead))

    @property
    def start(self) -> datetime:
        """First instant inside the window."""
        return datetime.combine(self.first_day, time(), UTC)

    @property
    def end(self) -> datetime:
        """First instant after the window."""
        return datetime.combine(self.last_day + timedelta(days=1), time(), UTC)

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


def utc_day(moment: datetime) -> date:
    """The UTC day (= partition) a timestamp falls in."""
    return moment.astimezone(UTC).date()


async def ensure(connection: asyncpg.Connection, queries: Queries, days: Iterable[date]) -> list[str]:
    """Create the missing partitions for ``days``, in the caller's transaction if it has one.

    One call per run of consecutive days (a batch usually spans one or two), so a late batch
    from ten days ago does not create the nine empty days in between. Inside a write's
    transaction, a refused write leaves no partition behind; the creator then holds the
    creation lock until it commits, so others that need a new day wait that long.
    """
    created: list[str] = []
    async with connection.transaction():
        for first, last in _runs(sorted(set(days))):
            created += await queries.ensure_partitions(connection, first_day=first, last_day=last)
    return created


def _runs(days: list[date]) -> list[tuple[date, date]]:
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and day - runs[-1][1] == timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


async def _detach(connection: asyncpg.Connection, queries: Queries, partition: PartitionInfo, mode: str) -> None:
    """Detach ``partition`` from its parent. A plain DETACH (``mode`` empty: Citus) waits at
    most 5 s for its lock, and is tried again after a pause in which the writers it held up go
    on, up to :data:`DETACH_ATTEMPTS` times."""
    # DDL on identifiers read from the catalog, quoted; the one place SQL is built in Python.
    statement = f"alter table {_ident(partition.parent)} detach partition {_ident(partition.name)} {mode}"
    if mode:
        await connection.execute(statement)
        return
    for attempt in range(1, DETACH_ATTEMPTS + 1):
        try:
            async with connection.transaction():
                await queries.retention_lock_timeout(connection)
                await connection.execute(statement)
            return
        except asyncpg.LockNotAvailableError:
            if attempt == DETACH_ATTEMPTS:
                raise
            await asyncio.sleep(DETACH_PAUSE)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def drop_expired(connection: asyncpg.Connection, queries: Queries, cutoff_day: date) -> list[PartitionInfo]:
    """Drop every partition of a day before ``cutoff_day``, all tables together.

    First, in a short transaction, pairs with no snapshot left are forgotten
    (``oddsstore_prepare_retention``, under those pairs' write locks only); every day's first
    snapshot of a pair holds its full state, so nothing is carried forward. Then each partition
    is detached ``CONCURRENTLY``, which never blocks readers or writers of the parent (it waits
    for queries that may still read the partition), and dropped. One caller at a time: a lease
    (``lock_retention`` in ``queries/partitions.sql``) renewed before each partition, which
    works whichever server connection each step runs on (PgBouncer's transaction pooling);
    another run waits for it. What an interrupted run left is finished: a pending detach with
    ``FINALIZE``, a detached partition that was not dropped yet with ``DROP``. Must run outside
    a transaction. With Citus (which refuses ``CONCURRENTLY`` on distributed tables), a plain
    ``DETACH`` that gives up after 5 s waiting for its lock (``citus_installed``), tried again.
    """
    cutoff = datetime.combine(cutoff_day, time(), UTC)
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4()}"
    while not await queries.lock_retention(connection, holder=holder, ttl=RETENTION_LEASE):
        await asyncio.sleep(0.5)
    try:
        async with connection.transaction():
            await queries.prepare_retention(connection, cutoff=cutoff)
        expired: list[PartitionInfo] = await queries.expired_partitions(connection, cutoff_day=cutoff_day)
        concurrently = not await queries.citus_installed(connection)
        for partition in expired:
            if not await queries.lock_retention(connection, holder=holder, ttl=RETENTION_LEASE):
                raise OddsStoreError(f"the retention lease expired before {partition.name} (another run took over)")
            mode = "finalize" if partition.detach_pending else "concurrently" if concurrently else ""
            await _detach(connection, queries, partition, mode)
            await connection.execute(f"drop table {_ident(partition.name)}")
        for leftover in await queries.detached_leftovers(connection, cutoff_day=cutoff_day):
            await connection.execute(f"drop table {_ident(leftover)}")
    finally:
        await queries.unlock_retention(connection, holder=holder)
    return expired
