"""Retention: dropping the oldest day of the history, oddsstore's partition drop against the
seed's batched ``DELETE``, each while a writer keeps inserting today's snapshots."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import seed_orm
from bench.history import History

# An insert that takes this long while the day is dropped counts as a blocked writer.
BLOCKED_AFTER = 1.0
WRITER_PAUSE = 0.02  # between two inserts, as a scraper handing over one snapshot at a time
WARMUP = 1.0  # seconds the writer runs before the operation starts (its baseline latency)


async def measure(history: History) -> dict[str, Any]:
    """Drop ``history.first_day`` from both databases, each with a concurrent writer.

    oddsstore: :meth:`OddsStore.drop_expired_partitions` with the retention that makes that day
    the only expired one. Seed: :func:`bench.seed_orm.batched_delete_day` of the same day. The
    writer inserts one snapshot (~170 markets) at a time into today's partitions, through the
    same write path as the side it runs beside.

    A failed drop or delete, or a failed insert of the writer, is recorded (``error``,
    ``failed_inserts``) rather than raised; a failed insert counts as a blocked writer.
    """
    store, day = history.store, history.first_day
    keep = (datetime.now(UTC).date() - day).days - 1
    expiring = [p for p in await store.partitions() if p.day == day]
    snapshots = history.batch(history.cycles[history.loaded - 1])
    now = datetime.now(UTC)

    async def store_insert(number: int) -> None:
        snapshot = snapshots[number % len(snapshots)]
        await store.write_snapshots([{**snapshot, "captured_at": now + timedelta(milliseconds=number)}])

    drop = await _with_writer(lambda: store.drop_expired_partitions(retention_days=keep), store_insert)

    sessions = seed_orm.make_session_factory(history.seed_engine)

    async def seed_insert(number: int) -> None:
        snapshot = snapshots[number % len(snapshots)]
        await seed_orm.write_batch(sessions, [{**snapshot, "captured_at": now + timedelta(milliseconds=number)}])

    delete = await _with_writer(lambda: seed_orm.batched_delete_day(history.seed_engine, day), seed_insert)
    return {
        "day": day.isoformat(),
        "blocked_after_s": BLOCKED_AFTER,
        "oddsstore": {
            "seconds": drop.seconds,
            "error": drop.error,
            "partitions": drop.result or [],
            "rows": sum(p.rows_estimate for p in expiring),
            "bytes": sum(p.total_bytes for p in expiring),
            "writer": drop.writer,
        },
        "seed": {
            "seconds": delete.seconds,
            "error": delete.error,
            "rows": None if delete.result is None else delete.result[0],
            "writer": delete.writer,
        },
    }


@dataclass
class _Run:
    """An operation run beside the writer: its result (``None`` if it failed), error, seconds,
    and what the writer saw."""

    result: Any
    error: str | None
    seconds: float
    writer: dict[str, Any]


async def _with_writer(operation: Callable[[], Awaitable[Any]], insert: Callable[[int], Awaitable[None]]) -> _Run:
    """Run ``operation`` while a task calls ``insert`` in a loop. The writer's figures: its
    median latency before the operation, the longest insert that overlapped it, and the inserts
    that failed."""
    spans: list[tuple[float, float]] = []
    failures: list[str] = []
    stop = asyncio.Event()

    async def writer() -> None:
        number = 0
        while not stop.is_set():
            began = time.perf_counter()
            try:
                await insert(number)
            except Exception as exc:  # a failed write is a finding, not a crash of the run
                failures.append(f"{type(exc).__name__}: {exc}")
            spans.append((began, time.perf_counter()))
            number += 1
            await asyncio.sleep(WRITER_PAUSE)

    task = asyncio.create_task(writer())
    result, error = None, None
    try:
        await asyncio.sleep(WARMUP)
        started = time.perf_counter()
        try:
            result = await operation()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        ended = time.perf_counter()
    finally:
        stop.set()
        await task
    before = [end - begin for begin, end in spans if end <= started]
    during = [end - begin for begin, end in spans if begin < ended and end > started]
    longest = max(during, default=0.0)
    writer_figures = {
        "baseline_p50_s": statistics.median(before) if before else None,
        "inserts_during": len(during),
        "longest_stall_s": longest,
        "failed_inserts": failures,
        "blocked": longest >= BLOCKED_AFTER or bool(failures),
    }
    return _Run(result, error, ended - started, writer_figures)
