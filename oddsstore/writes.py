"""The snapshot write path: validate a batch, then store it with COPY in a few round trips per chunk.

Between two scrape cycles about 5% of markets change, so a store remembers, per event x
bookmaker pair, the snapshot it last wrote and a fingerprint of each market exactly as it was
given (:class:`Written`). A market of the next snapshot with the same fingerprint is the same
input again: it was validated and stored last time, and is neither validated nor sent again.
Before the memory is used, the database confirms under the merge lock that the pair's latest
snapshot is still the remembered one (``stale_bases`` in ``queries/odds.sql``); a pair written
meanwhile by another process, forgotten by retention, or not remembered is sent whole.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from hashlib import blake2b
from marshal import dumps
from typing import Annotated, Any, NotRequired, cast

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

from oddsstore.errors import DuplicateSnapshotError, InvalidInputError, OutsidePartitionWindowError
from oddsstore.partitions import PartitionWindow
from oddsstore.records import (
    AwareDatetime,
    Flag,
    Id,
    Name,
    Odds,
    OptionalNumber,
    OptionalText,
    ScrapeErrorIn,
    SnapshotIn,
    WriteResult,
    duplicate_market,
    duplicate_outcome,
    unstorable_json,
)
from oddsstore.runner import Queries

STAGE_SNAPSHOT_COLUMNS = (
    "id",
    "event_id",
    "bookmaker_id",
    "captured_at",
    "scrape_run_id",
    "raw_response",
    "base_snapshot_id",
)
STAGE_MARKET_COLUMNS = (
    "snapshot_id",
    "event_id",
    "bookmaker_id",
    "captured_at",
    "line",
    "handicap_home",
    "handicap_away",
    "betpawa_market_id",
    "betpawa_market_name",
    "handicap_type",
    "outcomes",
)


# The write path validates dicts against these TypedDicts rather than building SnapshotIn models:
# the same field types and constraints (shared with records.py), without making model objects.
# tests/test_bad_input.py checks that they have exactly the fields of the models.


@with_config(ConfigDict(extra="forbid"))
class OutcomeDict(TypedDict):
    name: Name
    odds: Odds
    is_active: NotRequired[Flag]


@with_config(ConfigDict(extra="forbid"))
class MarketDict(TypedDict):
    betpawa_market_id: Name
    betpawa_market_name: Name
    line: NotRequired[OptionalNumber]
    handicap_type: NotRequired[OptionalText]
    handicap_home: NotRequired[OptionalNumber]
    handicap_away: NotRequired[OptionalNumber]
    outcomes: Annotated[list[OutcomeDict], Field(min_length=1)]


@with_config(ConfigDict(extra="forbid"))
class SnapshotDict(TypedDict):
    event_id: Id
    bookmaker_id: Id
    captured_at: AwareDatetime
    markets: list[MarketDict]
    raw_response: NotRequired[Any]


@with_config(ConfigDict(extra="forbid"))
class EnvelopeDict(TypedDict):
    """A snapshot with its markets as given: they are validated one by one, unless remembered."""

    event_id: Id
    bookmaker_id: Id
    captured_at: AwareDatetime
    markets: list[Any]
    raw_response: NotRequired[Any]


_SNAPSHOTS = TypeAdapter(list[SnapshotDict])
_ENVELOPES = TypeAdapter(list[EnvelopeDict])
_MARKETS = TypeAdapter(list[MarketDict])
_SCRAPE_ERRORS = TypeAdapter(list[ScrapeErrorIn])


MarketKey = tuple[str, float | None]
Pair = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Written:
    """What a store last wrote for one event x bookmaker pair: the snapshot, and each of its
    markets' fingerprint (see :func:`fingerprint`) with the market's key."""

    snapshot_id: int
    captured_at: datetime
    markets: dict[bytes, MarketKey]


@dataclass(slots=True)
class Checked:
    """One validated snapshot: each market's key and fingerprint, by position, and the validated
    markets by position: all of them, or those whose fingerprint ``base`` does not hold (the
    others are the same input as in the base snapshot)."""

    snapshot: EnvelopeDict
    keys: list[MarketKey]
    fingerprints: list[bytes | None]
    markets: dict[int, MarketDict]
    base: Written | None


def fingerprint(market: Any) -> bytes | None:
    """A 128-bit digest of a market exactly as given (types, values and key order), or ``None``
    when it holds anything but dicts, lists, str, int, float, bool and None (which marshal
    encodes byte for byte, without references)."""
    try:
        encoded = dumps(market, 2)
    except ValueError:
        return None
    return blake2b(encoded, digest_size=16).digest()


@dataclass(frozen=True, slots=True)
class Batch:
    """A batch whose snapshots are validated but whose markets are not yet (see :func:`check_markets`)."""

    items: list[Any]  # as given, for messages naming the first bad item
    snapshots: list[EnvelopeDict]
    written: Mapping[Pair, Written] | None  # what the store remembers; None: it does not
    per_pair: Counter[Pair]  # snapshots per pair in the batch


def validate_snapshots(
    snapshots: Iterable[SnapshotIn | Mapping[str, Any]],
    window: PartitionWindow,
    written: Mapping[Pair, Written] | None,
) -> Batch:
    """Validate the snapshots of a batch but not their markets; raise naming the first bad one.

    Raises :class:`InvalidInputError` (bad field, duplicate snapshot in the batch, raw_response
    not storable) or :class:`OutsidePartitionWindowError`.
    """
    items = [item.model_dump() if isinstance(item, BaseModel) else item for item in snapshots]
    try:
        envelopes = _ENVELOPES.validate_python(items)
    except ValidationError:
        raise _first_problem(items) from None
    first_seen: dict[tuple[int, int, datetime], int] = {}
    for index, snapshot in enumerate(envelopes):
        where = f"snapshots[{index}] ({_name(snapshot)})"
        if snapshot["captured_at"] not in window:
            raise OutsidePartitionWindowError(
                f"{where}: captured_at {snapshot['captured_at'].isoformat()} is outside the partition window {window}"
            )
        identity = (snapshot["event_id"], snapshot["bookmaker_id"], snapshot["captured_at"])
        if identity in first_seen:
            raise DuplicateSnapshotError(f"snapshots[{first_seen[identity]}] and {where} are the same snapshot")
        first_seen[identity] = index
        if problem := unstorable_json(snapshot.get("raw_response")):
            raise InvalidInputError(f"{where}: {problem}")
    per_pair = Counter((snapshot["event_id"], snapshot["bookmaker_id"]) for snapshot in envelopes)
    return Batch(items, envelopes, written, per_pair)


def check_markets(batch: Batch, start: int, stop: int) -> list[Checked]:
    """Validate the markets of ``batch.snapshots[start:stop]``; raise naming the first bad one.

    When the store remembers, each market gets a fingerprint, and one whose fingerprint its
    pair's memory holds is not validated again. A pair's memory is used only for a snapshot
    newer than the remembered one, and not when the batch holds several snapshots of the pair.

    Raises :class:`InvalidInputError` (bad field, duplicate market or outcome).
    """
    checked_snapshots: list[Checked] = []
    unseen: list[tuple[Checked, int, Any]] = []  # markets to validate: where they go, as given
    for snapshot in batch.snapshots[start:stop]:
        markets = snapshot["markets"]
        if batch.written is None:
            checked = Checked(snapshot, [("", None)] * len(markets), [None] * len(markets), {}, None)
            unseen += [(checked, number, market) for number, market in enumerate(markets)]
            checked_snapshots.append(checked)
            continue
        pair = (snapshot["event_id"], snapshot["bookmaker_id"])
        base = batch.written.get(pair) if batch.per_pair[pair] == 1 else None
        if base is not None and base.captured_at >= snapshot["captured_at"]:
            base = None
        known: dict[bytes, MarketKey] = base.markets if base is not None else {}
        try:  # inline, not fingerprint() per market: this loop is most of a remembered write's time
            digests: list[bytes | None] = [blake2b(dumps(market, 2), digest_size=16).digest() for market in markets]
        except ValueError:  # a value marshal cannot encode: fingerprint market by market
            digests = [fingerprint(market) for market in markets]
        found = [known.get(digest) if digest is not None else None for digest in digests]
        keys: list[MarketKey] = [("", None) if key is None else key for key in found]
        checked = Checked(snapshot, keys, digests, {}, base)
        unseen += [(checked, number, markets[number]) for number, key in enumerate(found) if key is None]
        checked_snapshots.append(checked)
    try:
        validated = _MARKETS.validate_python([market for _, _, market in unseen])
    except ValidationError:
        raise _first_problem(batch.items) from None
    for (checked, number, _), market in zip(unseen, validated, strict=True):
        checked.markets[number] = market
        checked.keys[number] = (market["betpawa_market_id"], market.get("line"))
    for index, checked in enumerate(checked_snapshots, start=start):
        context = f" ({_name(checked.snapshot)})"
        if problem := duplicate_market(checked.keys):
            raise InvalidInputError(f"snapshots[{index}]{context}: {problem}")
        for number, market in checked.markets.items():
            if problem := duplicate_outcome([o["name"] for o in market["outcomes"]]):
                raise InvalidInputError(f"snapshots[{index}].markets[{number}]{context}: {problem}")
    return checked_snapshots


def _first_problem(items: list[Any]) -> InvalidInputError:
    """The error validating the whole batch at once reports: its first failing item, by path."""
    try:
        _SNAPSHOTS.validate_python(items)
    except ValidationError as exc:
        return InvalidInputError(_describe(exc, items, "snapshots"))
    raise AssertionError("a snapshot or market failed validation alone but not in its batch")


def validate_scrape_errors(
    errors: Iterable[ScrapeErrorIn | Mapping[str, Any]], window: PartitionWindow
) -> list[ScrapeErrorIn]:
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


def _name(snapshot: EnvelopeDict) -> str:
    return (
        f"event_id={snapshot['event_id']}, bookmaker_id={snapshot['bookmaker_id']}, "
        f"captured_at={snapshot['captured_at'].isoformat()}"
    )


# Pydantic's wording where it would show our patterns instead of saying what is wrong.
_MESSAGES = {"string_pattern_mismatch": "must be text that is not blank and has no NUL characters"}


def _describe(exc: ValidationError, items: Sequence[Any], what: str) -> str:
    """Name the first failing item by its path, e.g. ``snapshots[3].markets[12].outcomes[0].odds``."""
    error = exc.errors(include_url=False)[0]
    path = what
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    message = _MESSAGES.get(error["type"], error["msg"].removeprefix("Value error, "))
    context = ""
    index = error["loc"][0] if error["loc"] else None
    if isinstance(index, int) and index < len(items) and isinstance(items[index], Mapping):
        item = items[index]
        known = {key: item.get(key) for key in ("event_id", "bookmaker_id", "scrape_run_id") if key in item}
        context = " (" + ", ".join(f"{key}={value!r}" for key, value in known.items()) + ")" if known else ""
    more = exc.error_count() - 1
    suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    return f"{path}{context}: {message}, got {error['input']!r:.200}{suffix}"


_KEY = re.compile(r"Key \((?P<columns>[^)]*)\)=\((?P<values>[^)]*)\)")


def locate(batch: Sequence[EnvelopeDict], detail: str) -> str:
    """Name the snapshots a server error's ``Key (columns)=(values)`` detail points at, e.g.
    ``"snapshots[3]: "``; empty when the detail names no snapshot field."""
    match = _KEY.search(detail)
    if match is None:
        return ""
    wanted = dict(zip(match["columns"].split(", "), match["values"].split(", "), strict=False))

    def matches(snapshot: EnvelopeDict) -> bool:
        for column, value in wanted.items():
            if column == "captured_at":
                if snapshot["captured_at"] != datetime.fromisoformat(value):
                    return False
            elif column not in ("event_id", "bookmaker_id") or str(snapshot[column]) != value:  # type: ignore[literal-required]
                return False
        return True

    found = [f"snapshots[{index}]" for index, snapshot in enumerate(batch) if matches(snapshot)]
    return f"{', '.join(found[:3])}{' and more' if len(found) > 3 else ''}: " if found else ""


# A large batch is checked and merged in chunks of contiguous snapshots, so that the server merges
# one chunk while Python checks the next: at least this many markets a chunk, at most 4 chunks.
CHUNK_MARKETS = 20_000
MAX_CHUNKS = 4


async def store_snapshots(
    connection: asyncpg.Connection,
    queries: Queries,
    batch: Batch,
    scrape_run_id: int | None,
) -> tuple[WriteResult, dict[Pair, Written | None]]:
    """Check the markets of a batch and store it inside the caller's transaction.

    Reserve snapshot ids and create the stage tables (dropped when the transaction ends); then
    per chunk of the batch: check its markets (:func:`check_markets`); for snapshots with a
    remembered base, take the merge lock and have the database confirm each base (a pair it does
    not confirm is sent whole); COPY snapshots and markets into the stage tables (only the changed
    and gone markets of a confirmed pair); merge:
    record the snapshots, log what changed, move the current state (``merge_stage`` in
    ``queries/odds.sql``). The merge of a chunk runs on the server while the next chunk is
    checked. A chunk holding several snapshots of one pair is merged in steps, oldest first, one
    per pair each. A few round trips per chunk whatever its size.

    Returns the result and what to remember per pair once the transaction has committed
    (``None``: forget the pair, a market of its snapshot had no fingerprint).
    """
    if not batch.snapshots:
        return WriteResult(snapshots=0, markets=0, snapshot_ids=[]), {}
    ids: list[int] = await queries.reserve_snapshot_ids(connection, count=len(batch.snapshots))
    await queries.create_stage(connection)  # dropped when the caller's transaction ends
    remembered: dict[Pair, Written | None] = {}
    markets = 0
    merging: asyncio.Future[None] | None = None  # the last merge sent, not yet awaited
    try:
        for start, stop in _chunks(batch.snapshots):
            chunk = check_markets(batch, start, stop)  # while the previous chunk merges
            if merging is not None:
                await merging
                merging = None
                await queries.clear_stage(connection)
            steps = _steps(chunk)
            for number, step in enumerate(steps):
                if number:
                    await queries.clear_stage(connection)
                await _confirm_bases(connection, queries, [chunk[index] for index in step])
                snapshot_rows, market_rows = _stage_rows(chunk, ids[start:stop], step, scrape_run_id)
                await connection.copy_records_to_table(
                    "oddsstore_stage_snapshots", records=snapshot_rows, columns=STAGE_SNAPSHOT_COLUMNS
                )
                if market_rows:
                    await connection.copy_records_to_table(
                        "oddsstore_stage_markets", records=market_rows, columns=STAGE_MARKET_COLUMNS
                    )
                merging = asyncio.ensure_future(queries.merge_stage(connection))
                await asyncio.sleep(0)  # let it send the merge before Python goes on
                for index in step:
                    snapshot = chunk[index].snapshot
                    remembered[(snapshot["event_id"], snapshot["bookmaker_id"])] = _written(
                        chunk[index], ids[start + index]
                    )
                if number < len(steps) - 1:
                    await merging
                    merging = None
            markets += sum(len(checked.keys) for checked in chunk)
        if merging is not None:
            await merging
            merging = None
    finally:
        if merging is not None:  # failing: the connection must be idle before the rollback
            await asyncio.wait([merging])
            if not merging.cancelled():
                merging.exception()  # retrieved: the error being raised is the one to report
    return WriteResult(snapshots=len(batch.snapshots), markets=markets, snapshot_ids=ids), remembered


def _written(checked: Checked, snapshot_id: int) -> Written | None:
    """What to remember of a stored snapshot; ``None`` when a market of it had no fingerprint."""
    if None in checked.fingerprints:
        return None
    digests = cast(list[bytes], checked.fingerprints)
    return Written(snapshot_id, checked.snapshot["captured_at"], dict(zip(digests, checked.keys, strict=True)))


def _chunks(snapshots: list[EnvelopeDict]) -> list[tuple[int, int]]:
    """``(start, stop)`` of contiguous snapshots, about equal in markets (see ``CHUNK_MARKETS``)."""
    total = sum(len(snapshot["markets"]) for snapshot in snapshots)
    size = max(CHUNK_MARKETS, -(-total // MAX_CHUNKS))
    chunks, start, count = [], 0, 0
    for index, snapshot in enumerate(snapshots):
        count += len(snapshot["markets"])
        if count >= size:
            chunks.append((start, index + 1))
            start, count = index + 1, 0
    if start < len(snapshots):
        chunks.append((start, len(snapshots)))
    return chunks


async def _confirm_bases(connection: asyncpg.Connection, queries: Queries, step: list[Checked]) -> None:
    """Take the merge lock and drop each base the database does not confirm as its pair's latest."""
    based = [checked for checked in step if checked.base is not None]
    if not based:
        return
    await queries.lock_merges(connection)
    stale: list[int] | None = await queries.stale_bases(
        connection,
        event_ids=[checked.snapshot["event_id"] for checked in based],
        bookmaker_ids=[checked.snapshot["bookmaker_id"] for checked in based],
        snapshot_ids=[checked.base.snapshot_id for checked in based],  # type: ignore[union-attr]
    )
    for position in stale or ():
        based[position - 1].base = None


def _steps(batch: list[Checked]) -> list[list[int]]:
    """Split the batch (by index) so each step holds at most one snapshot per pair, oldest first."""
    by_pair: dict[tuple[int, int], list[int]] = {}
    for index, checked in enumerate(batch):
        by_pair.setdefault((checked.snapshot["event_id"], checked.snapshot["bookmaker_id"]), []).append(index)
    steps: list[list[int]] = []
    for indexes in by_pair.values():
        indexes.sort(key=lambda index: batch[index].snapshot["captured_at"])
        for rank, index in enumerate(indexes):
            if rank == len(steps):
                steps.append([])
            steps[rank].append(index)
    return steps


def _stage_rows(
    batch: list[Checked], ids: list[int], step: list[int], scrape_run_id: int | None
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Rows for the stage tables: a snapshot with a base stages its changed markets and, with
    null outcomes, those of the base it no longer lists; one without stages every market."""
    snapshot_rows: list[tuple[Any, ...]] = []
    market_rows: list[tuple[Any, ...]] = []
    for index in step:
        checked, snapshot_id = batch[index], ids[index]
        snapshot, base = checked.snapshot, checked.base
        captured_at, event_id, bookmaker_id = snapshot["captured_at"], snapshot["event_id"], snapshot["bookmaker_id"]
        snapshot_rows.append(
            (
                snapshot_id,
                event_id,
                bookmaker_id,
                captured_at,
                scrape_run_id,
                snapshot.get("raw_response"),
                base.snapshot_id if base is not None else None,
            )
        )
        if base is None:
            _validate_remembered(checked)
        for market in checked.markets.values():
            get = market.get
            outcomes = market["outcomes"]
            for outcome in outcomes:  # validated copies: filling the default in place is safe
                if "is_active" not in outcome:
                    outcome["is_active"] = True
            market_rows.append(
                (
                    snapshot_id,
                    event_id,
                    bookmaker_id,
                    captured_at,
                    get("line"),
                    get("handicap_home"),
                    get("handicap_away"),
                    market["betpawa_market_id"],
                    market["betpawa_market_name"],
                    get("handicap_type"),
                    outcomes,
                )
            )
        if base is not None and (unmatched := base.markets.keys() - set(checked.fingerprints)):
            # Gone: a base market whose input is not in this snapshot, unless a changed market
            # of this snapshot has its key (keys are unique within each snapshot).
            changed = {checked.keys[number] for number in checked.markets}
            market_rows += [
                (snapshot_id, event_id, bookmaker_id, captured_at, line, None, None, market_id, None, None, None)
                for market_id, line in (base.markets[digest] for digest in unmatched)
                if (market_id, line) not in changed
            ]
    return snapshot_rows, market_rows


def _validate_remembered(checked: Checked) -> None:
    """Validate the markets a snapshot left unvalidated because its base held them, now that the
    base was not confirmed: they are sent whole. They passed before, as the same input."""
    if len(checked.markets) < len(checked.keys):
        remembered = [number for number in range(len(checked.keys)) if number not in checked.markets]
        raw = checked.snapshot["markets"]
        for number, market in zip(remembered, _MARKETS.validate_python([raw[n] for n in remembered]), strict=True):
            checked.markets[number] = market
