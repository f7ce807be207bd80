"""The snapshot write path: validate a batch, then store it with COPY in a few round trips."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import TypeAdapter, ValidationError

from oddsstore.errors import DuplicateSnapshotError, InvalidInputError, OutsidePartitionWindowError
from oddsstore.partitions import PartitionWindow
from oddsstore.records import ScrapeErrorIn, SnapshotIn, WriteResult
from oddsstore.runner import Queries

SNAPSHOT_COLUMNS = ("id", "event_id", "bookmaker_id", "captured_at", "scrape_run_id", "raw_response")
MARKET_COLUMNS = (
    "snapshot_id",
    "captured_at",
    "event_id",
    "line",
    "handicap_home",
    "handicap_away",
    "betpawa_market_id",
    "betpawa_market_name",
    "handicap_type",
    "outcomes",
)

_SNAPSHOTS = TypeAdapter(list[SnapshotIn])
_SCRAPE_ERRORS = TypeAdapter(list[ScrapeErrorIn])


def validate_snapshots(snapshots: Iterable[SnapshotIn | Mapping[str, Any]], window: PartitionWindow) -> list[SnapshotIn]:
    """Return the batch as validated :class:`SnapshotIn`; raise naming the first bad item.

    Raises :class:`InvalidInputError` (bad field, duplicate market, duplicate snapshot in the batch)
    or :class:`OutsidePartitionWindowError`.
    """
    items = list(snapshots)
    try:
        batch = _SNAPSHOTS.validate_python(items)
    except ValidationError as exc:
        raise InvalidInputError(_describe(exc, items, "snapshots")) from None
    first_seen: dict[tuple[int, int, datetime], int] = {}
    for index, snapshot in enumerate(batch):
        if snapshot.captured_at not in window:
            raise OutsidePartitionWindowError(
                f"snapshots[{index}] ({_name(snapshot)}): captured_at {snapshot.captured_at.isoformat()} "
                f"is outside the partition window {window}"
            )
        key = (snapshot.event_id, snapshot.bookmaker_id, snapshot.captured_at)
        if key in first_seen:
            raise DuplicateSnapshotError(
                f"snapshots[{first_seen[key]}] and snapshots[{index}] are both {_name(snapshot)}"
            )
        first_seen[key] = index
    return batch


def validate_scrape_errors(errors: Iterable[ScrapeErrorIn | Mapping[str, Any]], window: PartitionWindow) -> list[ScrapeErrorIn]:
    """Return the errors as validated :class:`ScrapeErrorIn`; raise naming the first bad item."""
    items = list(errors)
    try:
        batch = _SCRAPE_ERRORS.validate_python(items)
    except ValidationError as exc:
        raise InvalidInputError(_describe(exc, items, "errors")) from None
    for index, error in enumerate(batch):
        if error.occurred_at is not None and error.occurred_at not in window:
            raise OutsidePartitionWindowError(
                f"errors[{index}]: occurred_at {error.occurred_at.isoformat()} is outside the partition window {window}"
            )
    return batch


def _name(snapshot: SnapshotIn) -> str:
    return (
        f"event_id={snapshot.event_id}, bookmaker_id={snapshot.bookmaker_id}, "
        f"captured_at={snapshot.captured_at.isoformat()}"
    )


def _describe(exc: ValidationError, items: Sequence[Any], what: str) -> str:
    """Name the first failing item by its path, e.g. ``snapshots[3].markets[12].outcomes[0].odds``."""
    error = exc.errors(include_url=False)[0]
    path = what
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    message = error["msg"].removeprefix("Value error, ")
    context = ""
    index = error["loc"][0] if error["loc"] else None
    if isinstance(index, int) and index < len(items) and isinstance(items[index], Mapping):
        item = items[index]
        known = {key: item.get(key) for key in ("event_id", "bookmaker_id", "scrape_run_id") if key in item}
        context = " (" + ", ".join(f"{key}={value!r}" for key, value in known.items()) + ")" if known else ""
    more = exc.error_count() - 1
    suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    return f"{path}{context}: {message}, got {error['input']!r:.200}{suffix}"


async def copy_snapshots(
    connection: asyncpg.Connection,
    queries: Queries,
    batch: list[SnapshotIn],
    scrape_run_id: int | None,
) -> WriteResult:
    """Store a validated batch inside the caller's transaction: reserve ids, COPY snapshots, COPY
    markets, move latest_snapshots. Four round trips, whatever the batch size."""
    if not batch:
        return WriteResult(snapshots=0, markets=0, snapshot_ids=[])
    ids: list[int] = await queries.reserve_snapshot_ids(connection, count=len(batch))
    snapshot_rows = []
    market_rows = []
    for snapshot_id, snapshot in zip(ids, batch):
        captured_at, event_id = snapshot.captured_at, snapshot.event_id
        snapshot_rows.append(
            (snapshot_id, event_id, snapshot.bookmaker_id, captured_at, scrape_run_id, snapshot.raw_response)
        )
        for market in snapshot.markets:
            market_rows.append(
                (
                    snapshot_id,
                    captured_at,
                    event_id,
                    market.line,
                    market.handicap_home,
                    market.handicap_away,
                    market.betpawa_market_id,
                    market.betpawa_market_name,
                    market.handicap_type,
                    [{"name": o.name, "odds": o.odds, "is_active": o.is_active} for o in market.outcomes],
                )
            )
    await connection.copy_records_to_table("odds_snapshots", records=snapshot_rows, columns=SNAPSHOT_COLUMNS)
    if market_rows:
        await connection.copy_records_to_table("market_odds", records=market_rows, columns=MARKET_COLUMNS)
    await queries.upsert_latest_snapshots(
        connection,
        event_ids=[s.event_id for s in batch],
        bookmaker_ids=[s.bookmaker_id for s in batch],
        snapshot_ids=ids,
        captured_ats=[s.captured_at for s in batch],
    )
    return WriteResult(snapshots=len(batch), markets=len(market_rows), snapshot_ids=ids)
