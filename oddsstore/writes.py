"""The snapshot write path: validate a batch, then store it with COPY in a few round trips per chunk.

Between two scrape cycles about 5% of markets change. The database keeps, with each market's
current state, a fingerprint of the market exactly as the writer was given it
(``market_current.fingerprint``). A writer locks its batch's event x bookmaker pairs, loads the
fingerprints of the pairs it does not remember (one query, ``pair_states``), and then neither
validates nor sends a market whose fingerprint is its pair's previous one: a new process dedupes
as a long-running one does. A store also remembers what it wrote itself (:class:`Written`), so
that for the pairs whose latest snapshot is still its own it loads nothing. Several snapshots
of one pair in a batch (a backfill) are each compared with the one before, in Python and in
one set-based merge.
"""

from __future__ import annotations

import asyncio
import re
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
    StoredPairs,
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
    "fingerprint",
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

# The fingerprint's version, mixed into every digest: a change to what is fingerprinted, or to
# how input is normalised before it is stored, must change it, so that no writer trusts a
# fingerprint the database kept from before.
FINGERPRINT_VERSION = b"oddsstore-fp-1"


@dataclass(frozen=True, slots=True)
class Written:
    """A pair's snapshot as a writer sees it: its id and time, and each of its markets'
    fingerprint (see :func:`fingerprint`) with the market's key."""

    snapshot_id: int
    captured_at: datetime
    markets: dict[bytes, MarketKey]


@dataclass(slots=True)
class Checked:
    """One validated snapshot: each market's key and fingerprint, by position, and the validated
    markets by position: all of them, or those whose fingerprint ``base`` does not hold (the
    others are the same input as in the base snapshot, the pair's previous one). ``late``: older
    than its pair's latest snapshot, staged whole."""

    snapshot: EnvelopeDict
    keys: list[MarketKey]
    fingerprints: list[bytes | None]
    markets: dict[int, MarketDict]
    base: Written | None
    late: bool


def fingerprint(market: Any) -> bytes | None:
    """A 128-bit digest of a market exactly as given (types, values and key order) and of
    :data:`FINGERPRINT_VERSION`, or ``None`` when it holds anything but dicts, lists, str, int,
    float, bool and None (which marshal encodes byte for byte, without references)."""
    try:
        encoded = dumps(market, 2)
    except ValueError:
        return None
    return blake2b(encoded, digest_size=16, person=FINGERPRINT_VERSION).digest()


@dataclass(frozen=True, slots=True)
class Batch:
    """A batch whose snapshots are validated but whose markets are not yet (see :func:`check_markets`)."""

    items: list[Any]  # as given, for messages naming the first bad item
    snapshots: list[EnvelopeDict]
    written: Mapping[Pair, Written] | None  # what the store remembers; None: it does not


@dataclass(slots=True)
class PairStates:
    """Per pair of a batch, as the write goes on: the snapshot its next in-order snapshot is
    compared with (``None``: unknown, stage it whole), and its latest snapshot's time."""

    bases: dict[Pair, Written | None]
    latest: dict[Pair, datetime | None]


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
    return Batch(items, envelopes, written)


def check_markets(batch: Batch, start: int, stop: int, states: PairStates, ids: Sequence[int]) -> list[Checked]:
    """Validate the markets of ``batch.snapshots[start:stop]``; raise naming the first bad one.

    Each market gets a fingerprint. A snapshot newer than its pair's latest (in order) is
    compared with the pair's previous snapshot: ``states.bases`` for the first, then the one
    before it in the batch; a market whose fingerprint that snapshot holds is the same input and
    is not validated again. ``states`` moves on to this chunk's last in-order snapshot of each
    pair (``ids``: the batch's snapshot ids). Late snapshots are validated whole.

    Raises :class:`InvalidInputError` (bad field, duplicate market or outcome).
    """
    chunk = batch.snapshots[start:stop]
    order = sorted(
        range(len(chunk)),
        key=lambda n: (chunk[n]["event_id"], chunk[n]["bookmaker_id"], chunk[n]["captured_at"]),
    )
    checked_snapshots: list[Checked | None] = [None] * len(chunk)
    unseen: list[tuple[Checked, int, Any]] = []  # markets to validate: where they go, as given
    chains: list[tuple[Checked, Pair, int]] = []  # in-order snapshots (and position), by pair and time
    digests_of: dict[Pair, set[bytes] | None] = {}  # the previous snapshot's fingerprints
    for number in order:
        snapshot = chunk[number]
        markets = snapshot["markets"]
        pair = (snapshot["event_id"], snapshot["bookmaker_id"])
        latest = states.latest.get(pair)
        late = latest is not None and snapshot["captured_at"] <= latest
        try:  # inline, not fingerprint() per market: this loop is most of a remembered write's time
            digests: list[bytes | None] = [
                blake2b(dumps(market, 2), digest_size=16, person=FINGERPRINT_VERSION).digest() for market in markets
            ]
        except ValueError:  # a value marshal cannot encode: fingerprint market by market
            digests = [fingerprint(market) for market in markets]
        if late:
            known: set[bytes] | None = None
        elif pair in digests_of:
            known = digests_of[pair]
        else:
            base = states.bases.get(pair)
            known = set(base.markets) if base is not None else None
        checked = Checked(snapshot, [("", None)] * len(markets), digests, {}, None, late)
        found = [known is not None and digest is not None and digest in known for digest in digests]
        unseen += [(checked, n, markets[n]) for n, seen in enumerate(found) if not seen]
        if not late:
            chains.append((checked, pair, number))
            digests_of[pair] = None if None in digests else set(cast(list[bytes], digests))
        checked_snapshots[number] = checked
    try:
        validated = _MARKETS.validate_python([market for _, _, market in unseen])
    except ValidationError:
        raise _first_problem(batch.items) from None
    for (checked, number, _), market in zip(unseen, validated, strict=True):
        checked.markets[number] = market
        checked.keys[number] = (market["betpawa_market_id"], market.get("line"))
    # In pair and time order: each in-order snapshot takes its unvalidated markets' keys from
    # its base, and becomes the next one's base.
    for checked, pair, number in chains:
        base = states.bases.get(pair)
        if base is not None and len(checked.markets) < len(checked.keys):
            for position, digest in enumerate(checked.fingerprints):
                if position not in checked.markets:
                    checked.keys[position] = base.markets[cast(bytes, digest)]
        checked.base = base
        states.bases[pair] = _written(checked, ids[start + number])
        states.latest[pair] = checked.snapshot["captured_at"]
    found_snapshots = cast(list[Checked], checked_snapshots)
    for index, checked in enumerate(found_snapshots, start=start):
        context = f" ({_name(checked.snapshot)})"
        if problem := duplicate_market(checked.keys):
            raise InvalidInputError(f"snapshots[{index}]{context}: {problem}")
        for number, market in checked.markets.items():
            if problem := duplicate_outcome([o["name"] for o in market["outcomes"]]):
                raise InvalidInputError(f"snapshots[{index}].markets[{number}]{context}: {problem}")
    return found_snapshots


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

    Reserve snapshot ids; lock the batch's pairs (``lock_pairs``: writers of other pairs do not
    wait) and load what the database holds for the pairs whose latest snapshot is not the one
    the store remembers (``pair_states``: their fingerprints). Then per chunk of the batch:
    check its markets (:func:`check_markets`); COPY snapshots and markets into the connection's
    stage tables (of an in-order snapshot with a base, only the markets whose input changed and
    those gone); merge: record the snapshots, log what changed, move the current state
    (``merge_stage`` in ``queries/odds.sql``). Late snapshots are merged first, one per pair at a
    time; then every in-order snapshot of the chunk at once, however many a pair has. The merge
    of a chunk runs on the server while the next chunk is checked.

    Returns the result and what to remember per pair once the transaction has committed
    (``None``: forget the pair, a market of its last snapshot had no fingerprint).
    """
    if not batch.snapshots:
        return WriteResult(snapshots=0, markets=0, snapshot_ids=[]), {}
    ids: list[int] = await queries.reserve_snapshot_ids(connection, count=len(batch.snapshots))
    pairs = sorted({(snapshot["event_id"], snapshot["bookmaker_id"]) for snapshot in batch.snapshots})
    await queries.lock_pairs(
        connection, event_ids=[pair[0] for pair in pairs], bookmaker_ids=[pair[1] for pair in pairs]
    )
    states = await load_pair_states(connection, queries, pairs, batch.written or {})
    remembered: dict[Pair, Written | None] = {}
    markets = 0
    merging: asyncio.Future[None] | None = None  # the last merge sent, not yet awaited
    try:
        for start, stop in _chunks(batch.snapshots):
            chunk = check_markets(batch, start, stop, states, ids)  # while the previous chunk merges
            if merging is not None:
                await merging
                merging = None
                await queries.clear_stage(connection)
            steps = _steps(chunk)
            for number, step in enumerate(steps):
                if number:
                    await queries.clear_stage(connection)
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
                if number < len(steps) - 1:
                    await merging
                    merging = None
            for checked in chunk:
                if not checked.late:
                    remembered[(checked.snapshot["event_id"], checked.snapshot["bookmaker_id"])] = None
            markets += sum(len(checked.keys) for checked in chunk)
        if merging is not None:
            await merging
            merging = None
    finally:
        if merging is not None:  # failing: the connection must be idle before the rollback
            await asyncio.wait([merging])
            if not merging.cancelled():
                merging.exception()  # retrieved: the error being raised is the one to report
    for pair in remembered:
        remembered[pair] = states.bases.get(pair)
    return WriteResult(snapshots=len(batch.snapshots), markets=markets, snapshot_ids=ids), remembered


async def load_pair_states(
    connection: asyncpg.Connection, queries: Queries, pairs: list[Pair], written: Mapping[Pair, Written]
) -> PairStates:
    """What each pair's next in-order snapshot is compared with, and its latest snapshot's time:
    the store's memory where the database confirms it (the pair's latest snapshot is the
    remembered one), else the database's current state with its fingerprints (none when a
    market has no fingerprint). Call with the pairs locked."""
    remembered = [written.get(pair) for pair in pairs]
    found: StoredPairs = await queries.pair_states(
        connection,
        event_ids=[pair[0] for pair in pairs],
        bookmaker_ids=[pair[1] for pair in pairs],
        snapshot_ids=[last.snapshot_id if last is not None else None for last in remembered],
    )
    states = PairStates(
        {pair: last for pair, last in zip(pairs, remembered, strict=True)},
        {pair: last.captured_at if last is not None else None for pair, last in zip(pairs, remembered, strict=True)},
    )
    current: dict[int, dict[bytes, MarketKey]] = {}
    unknown: set[int] = set()
    for position, digest, market_id, line in zip(
        found.market_positions, found.fingerprints, found.market_ids, found.lines, strict=True
    ):
        if digest is None:
            unknown.add(position)
        else:
            current.setdefault(position, {})[digest] = (market_id, line)
    for position, snapshot_id, captured_at in zip(found.positions, found.snapshot_ids, found.captured_at, strict=True):
        pair = pairs[position - 1]
        states.latest[pair] = captured_at
        states.bases[pair] = (
            None
            if snapshot_id is None or captured_at is None or position in unknown
            else Written(snapshot_id, captured_at, current.get(position, {}))
        )
    return states


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


def _steps(chunk: list[Checked]) -> list[list[int]]:
    """Split a chunk (by index) into merges: late snapshots first, at most one per pair in each,
    oldest first; then the in-order ones, all of a pair in one merge, except that a snapshot
    staged whole (no base) after another of its pair starts the pair's next merge."""
    late: dict[Pair, list[int]] = {}
    in_order: dict[Pair, list[int]] = {}
    for index, checked in enumerate(chunk):
        pair = (checked.snapshot["event_id"], checked.snapshot["bookmaker_id"])
        (late if checked.late else in_order).setdefault(pair, []).append(index)
    late_steps: list[list[int]] = []
    ordered_steps: list[list[int]] = []
    for group, steps, whole_splits in ((late, late_steps, False), (in_order, ordered_steps, True)):
        for indexes in group.values():
            indexes.sort(key=lambda index: chunk[index].snapshot["captured_at"])
            rank = 0
            for position, index in enumerate(indexes):
                if position and (not whole_splits or chunk[index].base is None):
                    rank += 1
                if rank == len(steps):
                    steps.append([])
                steps[rank].append(index)
    return late_steps + ordered_steps


def _stage_rows(
    chunk: list[Checked], ids: list[int], step: list[int], scrape_run_id: int | None
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Rows for the stage tables: a snapshot with a base stages its changed markets and, with
    null outcomes, those of the base it no longer lists; one without stages every market."""
    snapshot_rows: list[tuple[Any, ...]] = []
    market_rows: list[tuple[Any, ...]] = []
    for index in step:
        checked, snapshot_id = chunk[index], ids[index]
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
        digests = checked.fingerprints
        for number, market in checked.markets.items():
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
                    digests[number],
                )
            )
        if base is not None and (unmatched := base.markets.keys() - set(digests)):
            # Gone: a base market whose input is not in this snapshot, unless a changed market
            # of this snapshot has its key (keys are unique within each snapshot).
            changed = {checked.keys[number] for number in checked.markets}
            market_rows += [
                (snapshot_id, event_id, bookmaker_id, captured_at, line, None, None, market_id, None, None, None, None)
                for market_id, line in (base.markets[digest] for digest in unmatched)
                if (market_id, line) not in changed
            ]
    return snapshot_rows, market_rows
