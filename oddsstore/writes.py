"""The snapshot write path: validate a batch, then store it with COPY in a few round trips per chunk.

Scrapers hand over what bookmakers list: one market may come in several rows (BetPawa's correct
score in 15), with outcomes in any order, placeholders for suspended prices and keys the store
does not model. Rows of a snapshot with the same market key are merged into one market, outcomes
sorted by name (:func:`merge_rows`), so a reorder is no change.

Between two scrape cycles about 5% of markets change. The database keeps, with each market's
current state, the fingerprints of the rows it was given in (``market_current.fingerprint``). A
writer locks its batch's event x bookmaker pairs (writers of other pairs never wait), loads the
fingerprints of the pairs it does not remember (one query, ``pair_states``), and then neither
validates nor sends a market whose rows all have fingerprints of its pair's previous snapshot:
a new process dedupes as a long-running one does. A store also remembers what it wrote itself
(:class:`Written`), so that for pairs whose latest snapshot is still its own it loads nothing;
it remembers each row by a cheaper in-process hash (:func:`row_hashes`) and computes
fingerprints only for the markets it sends.
Several snapshots of one pair in a batch (a backfill) are each compared with the one before, in
Python and in one set-based merge.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from hashlib import blake2b
from itertools import compress, repeat
from marshal import dumps
from typing import Annotated, Any, NotRequired, cast

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

from oddsstore.errors import (
    DuplicateSnapshotError,
    InvalidInputError,
    LockTableFullError,
    OutsidePartitionWindowError,
    UnknownReferenceError,
)
from oddsstore.partitions import PartitionWindow
from oddsstore.records import (
    AwareDatetime,
    EventIn,
    Flag,
    Id,
    MarketOdds,
    Name,
    Odds,
    OptionalNumber,
    OptionalText,
    ScrapeErrorIn,
    SkippedSnapshot,
    SnapshotIn,
    StoredPairs,
    WriteResult,
    conflicting_outcome,
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
# Each exists twice: keys the store does not model (a scraper's market_groups, unavailable_at)
# are ignored (dropped, not stored) by default, and refused with unknown_keys="reject".
# tests/test_bad_input.py checks that they have exactly the fields of the models.


@with_config(ConfigDict(extra="ignore"))
class OutcomeDict(TypedDict):
    name: Name
    odds: Odds
    is_active: NotRequired[Flag]


@with_config(ConfigDict(extra="ignore"))
class MarketDict(TypedDict):
    betpawa_market_id: Name
    betpawa_market_name: Name
    line: NotRequired[OptionalNumber]
    handicap_type: NotRequired[OptionalText]
    handicap_home: NotRequired[OptionalNumber]
    handicap_away: NotRequired[OptionalNumber]
    outcomes: Annotated[list[OutcomeDict], Field(min_length=1)]


@with_config(ConfigDict(extra="ignore"))
class EnvelopeDict(TypedDict):
    """A snapshot with its markets as given: they are validated one by one, unless remembered."""

    event_id: Id
    bookmaker_id: Id
    captured_at: AwareDatetime
    markets: list[Any]
    raw_response: NotRequired[Any]


@with_config(ConfigDict(extra="forbid"))
class StrictOutcomeDict(TypedDict):
    name: Name
    odds: Odds
    is_active: NotRequired[Flag]


@with_config(ConfigDict(extra="forbid"))
class StrictMarketDict(TypedDict):
    betpawa_market_id: Name
    betpawa_market_name: Name
    line: NotRequired[OptionalNumber]
    handicap_type: NotRequired[OptionalText]
    handicap_home: NotRequired[OptionalNumber]
    handicap_away: NotRequired[OptionalNumber]
    outcomes: Annotated[list[StrictOutcomeDict], Field(min_length=1)]


@with_config(ConfigDict(extra="forbid"))
class StrictEnvelopeDict(TypedDict):
    event_id: Id
    bookmaker_id: Id
    captured_at: AwareDatetime
    markets: list[Any]
    raw_response: NotRequired[Any]


# By unknown_keys == "reject": the adapters for a list and for one item.
_ENVELOPES = {False: TypeAdapter(list[EnvelopeDict]), True: TypeAdapter(list[StrictEnvelopeDict])}
_ENVELOPE = {False: TypeAdapter(EnvelopeDict), True: TypeAdapter(StrictEnvelopeDict)}
_MARKETS = {False: TypeAdapter(list[MarketDict]), True: TypeAdapter(list[StrictMarketDict])}
_MARKET = {False: TypeAdapter(MarketDict), True: TypeAdapter(StrictMarketDict)}
_SCRAPE_ERRORS = TypeAdapter(list[ScrapeErrorIn])
_EVENTS = TypeAdapter(list[EventIn])


MarketKey = tuple[str, float | None]
Pair = tuple[int, int]

# The fingerprint's version, mixed into every digest: a change to what is fingerprinted, or to
# how rows are merged and normalised before they are stored, must change it, so that no writer
# trusts a fingerprint the database kept from before.
FINGERPRINT_VERSION = b"oddsstore-fp-1"
DIGEST_SIZE = 16


@dataclass(frozen=True, slots=True)
class Written:
    """A pair's snapshot as a writer sees it: its id and time, and each of its market rows'
    identity with the row's market key. ``stable``: the identities are fingerprints (see
    :func:`fingerprint`), as the database keeps them; otherwise this process's cheaper
    :func:`row_hashes`, for what a store remembers of its own writes."""

    snapshot_id: int
    captured_at: datetime
    markets: dict[Any, MarketKey]
    stable: bool = False


@dataclass(slots=True)
class Checked:
    """One validated snapshot of a batch.

    Per row as given: its market key, its hash (:func:`row_hashes`, ``None``: not hashable)
    and its fingerprint once computed (by row number: the rows of ``base`` markets of a stable
    base, and the rows of the markets to stage). ``rows``: the rows validated so far, by
    number. ``markets``: the merged markets to stage, by key: all of them, or with a ``base``
    those whose rows differ from the base's (the others are the same input as in the base
    snapshot, the pair's previous one); ``staged``: the numbers of their rows; ``gone``: the
    keys of the base the snapshot no longer lists. ``stored``: the database holds a snapshot
    with this event, bookmaker and time already. ``late``: older than its pair's latest snapshot (staged whole)."""

    position: int
    snapshot: EnvelopeDict
    snapshot_id: int
    keys: list[MarketKey]
    hashes: list[int | None]
    fingerprints: dict[int, bytes | None]
    rows: dict[int, MarketDict]
    markets: dict[MarketKey, MarketDict]
    staged: Sequence[int]
    gone: list[MarketKey]
    base: Written | None
    stored: bool = False
    late: bool = False


def fingerprint(market: Any) -> bytes | None:
    """A 128-bit digest of a market row exactly as given (types, values and key order) and of
    :data:`FINGERPRINT_VERSION`, or ``None`` when it holds anything but dicts, lists, str, int,
    float, bool and None (which marshal encodes byte for byte, without references)."""
    try:
        encoded = dumps(market, 2)
    except ValueError:
        return None
    return _digest(encoded)


# The digest with its parameters set once: copying it costs less than passing them every time.
_FINGERPRINT = blake2b(digest_size=DIGEST_SIZE, person=FINGERPRINT_VERSION)


def _digest(encoded: bytes) -> bytes:
    digest = _FINGERPRINT.copy()
    digest.update(encoded)
    return digest.digest()


def row_hashes(rows: list[Any]) -> list[int | None]:
    """Each row's ``hash()`` of the bytes :func:`fingerprint` digests: as exact, but 64 bits
    and keyed per process (SipHash with Python's random seed), so never stored; about half the
    cost of a fingerprint. ``None`` where :func:`fingerprint` gives ``None``."""
    try:  # maps, no Python code per row: this is most of a remembered write's time
        return list(map(hash, map(dumps, rows, repeat(2))))
    except ValueError:  # a value marshal cannot encode: row by row
        return [_row_hash(row) for row in rows]


def _row_hash(row: Any) -> int | None:
    try:
        return hash(dumps(row, 2))
    except ValueError:
        return None


def hashes_and_fingerprints(rows: list[Any]) -> tuple[list[int | None], list[bytes | None]]:
    """:func:`row_hashes` and each row's :func:`fingerprint`, encoding each row once."""
    try:
        encoded = list(map(dumps, rows, repeat(2)))
    except ValueError:  # a value marshal cannot encode: row by row
        return [_row_hash(row) for row in rows], [fingerprint(row) for row in rows]
    digests: list[bytes | None] = list(map(_digest, encoded))
    return list(map(hash, encoded)), digests


class Invalid(Exception):
    """One snapshot cannot be stored: ``path`` names the item, ``reason`` says why; ``context``
    names the snapshot in the message (`` (event_id=1, bookmaker_id=2)``)."""

    def __init__(self, path: str, reason: str, context: str = "") -> None:
        super().__init__(f"{path}{context}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(slots=True)
class Batch:
    """A batch whose snapshots are validated but whose markets are not yet (see :func:`check_markets`)."""

    items: list[Any]  # as given
    snapshots: list[EnvelopeDict]  # the valid ones
    positions: list[int]  # each valid snapshot's index in items
    written: Mapping[Pair, Written] | None  # what the store remembers; None: it does not
    reject_unknown_keys: bool
    skip_invalid: bool
    skipped: list[SkippedSnapshot]
    already_stored: list[int]

    def invalid(self, position: int, problem: Invalid) -> None:
        """Skip the snapshot at ``position`` (``on_invalid="skip"``), or raise the problem."""
        if not self.skip_invalid:
            raise InvalidInputError(str(problem))
        item = self.items[position]
        known = item if isinstance(item, Mapping) else {}
        captured_at = known.get("captured_at")
        self.skipped.append(
            SkippedSnapshot(
                position=position,
                path=problem.path,
                reason=problem.reason,
                event_id=_id(known.get("event_id")),
                bookmaker_id=_id(known.get("bookmaker_id")),
                captured_at=captured_at if isinstance(captured_at, datetime) and captured_at.tzinfo else None,
            )
        )


def _id(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**31 else None


def validate_snapshots(
    snapshots: Iterable[SnapshotIn | Mapping[str, Any]],
    window: PartitionWindow,
    written: Mapping[Pair, Written] | None,
    *,
    reject_unknown_keys: bool = False,
    skip_invalid: bool = False,
) -> Batch:
    """Validate the snapshots of a batch but not their markets.

    A bad field, a snapshot repeated in the batch, a raw_response that is not storable, or a
    ``captured_at`` outside the window makes a snapshot invalid: raised as
    :class:`InvalidInputError` (:class:`DuplicateSnapshotError`,
    :class:`OutsidePartitionWindowError`) naming the first, or with ``skip_invalid`` left out
    and listed in ``Batch.skipped``.
    """
    items = [item.model_dump() if isinstance(item, BaseModel) else item for item in snapshots]
    batch = Batch(items, [], [], written, reject_unknown_keys, skip_invalid, [], [])
    try:
        envelopes: list[EnvelopeDict | None] = list(_ENVELOPES[reject_unknown_keys].validate_python(items))
    except ValidationError:
        envelopes = []
        for position, item in enumerate(items):
            try:
                envelopes.append(_ENVELOPE[reject_unknown_keys].validate_python(item))
            except ValidationError as exc:
                batch.invalid(position, _describe(exc, f"snapshots[{position}]", item))
                envelopes.append(None)
    first_seen: dict[tuple[int, int, datetime], int] = {}
    for position, snapshot in enumerate(envelopes):
        if snapshot is None:
            continue
        where = f"snapshots[{position}] ({_name(snapshot)})"
        if snapshot["captured_at"] not in window:
            outside = f"captured_at {snapshot['captured_at'].isoformat()} is outside the partition window {window}"
            if not skip_invalid:
                raise OutsidePartitionWindowError(f"{where}: {outside}")
            batch.invalid(position, Invalid(f"snapshots[{position}].captured_at", outside))
            continue
        identity = (snapshot["event_id"], snapshot["bookmaker_id"], snapshot["captured_at"])
        if identity in first_seen:
            if not skip_invalid:
                raise DuplicateSnapshotError(f"snapshots[{first_seen[identity]}] and {where} are the same snapshot")
            same = f"the same snapshot as snapshots[{first_seen[identity]}]"
            batch.invalid(position, Invalid(f"snapshots[{position}]", same))
            continue
        if problem := unstorable_json(snapshot.get("raw_response")):
            batch.invalid(position, Invalid(f"snapshots[{position}].raw_response", problem, f" ({_name(snapshot)})"))
            continue
        first_seen[identity] = position
        batch.snapshots.append(snapshot)
        batch.positions.append(position)
    return batch


@dataclass(slots=True)
class PairStates:
    """Per pair of a batch, as the write goes on: the snapshot its next in-order snapshot is
    compared with (``None``: unknown, stage it whole), and its latest snapshot's time."""

    bases: dict[Pair, Written | None]
    latest: dict[Pair, datetime | None]


def check_markets(
    batch: Batch, start: int, stop: int, ids: Sequence[int], stored: set[int], states: PairStates
) -> list[Checked]:
    """Validate and merge the markets of ``batch.snapshots[start:stop]``.

    Rows of a snapshot with the same market key are one market (:func:`merge_rows`). Each row
    gets a fingerprint. A snapshot newer than its pair's latest (in order) is compared with the
    pair's previous snapshot: ``states.bases`` for the first, then the one before it in the
    batch; a row whose fingerprint that snapshot holds is not validated again, and only markets
    with a row that differs from the base's are merged and staged. ``states`` moves on to the
    last valid in-order snapshot of each pair. A late snapshot, and one the database holds
    already (``stored``: indexes into ``batch.snapshots``), is validated whole.

    ``ids``: the snapshot ids reserved for ``batch.snapshots``. Returns the valid snapshots; an
    invalid one is raised or skipped (:meth:`Batch.invalid`).
    """
    # Rank 0: each pair's first in-order snapshot, and every late or stored one; rank n: each
    # pair's n-th in-order snapshot after that, compared with the one before it.
    ranks: list[list[int]] = []
    in_order: dict[Pair, list[int]] = {}
    for index in range(start, stop):
        snapshot = batch.snapshots[index]
        pair = (snapshot["event_id"], snapshot["bookmaker_id"])
        latest = states.latest.get(pair)
        if index in stored or (latest is not None and snapshot["captured_at"] <= latest):
            if not ranks:
                ranks.append([])
            ranks[0].append(index)
        else:
            in_order.setdefault(pair, []).append(index)
    for indexes in in_order.values():
        indexes.sort(key=lambda index: batch.snapshots[index]["captured_at"])
        for rank, index in enumerate(indexes):
            if rank == len(ranks):
                ranks.append([])
            ranks[rank].append(index)
    valid: dict[int, Checked] = {}
    for group in ranks:
        for checked in _check_rank(batch, group, ids, stored, states):
            valid[checked.position] = checked
    return [valid[position] for position in sorted(valid)]


def _check_rank(
    batch: Batch, indexes: list[int], ids: Sequence[int], stored: set[int], states: PairStates
) -> list[Checked]:
    """:func:`check_markets` for snapshots of which no two are in order for the same pair."""
    checked_snapshots: list[Checked] = []
    unseen: list[tuple[Checked, int, Any]] = []  # rows to validate: where they go, as given
    for index in indexes:
        snapshot = batch.snapshots[index]
        rows = snapshot["markets"]
        position = batch.positions[index]
        pair = (snapshot["event_id"], snapshot["bookmaker_id"])
        latest = states.latest.get(pair)
        late = index in stored or (latest is not None and snapshot["captured_at"] <= latest)
        base = None if late else states.bases.get(pair)
        known: dict[Any, MarketKey] = base.markets if base is not None else {}
        fingerprints: dict[int, bytes | None] = {}
        if base is not None and base.stable:  # loaded from the database: compare fingerprints
            hashes, digests = hashes_and_fingerprints(rows)
            fingerprints = dict(enumerate(digests))
            found = list(map(known.get, digests))
        else:
            hashes = row_hashes(rows)
            found = list(map(known.get, hashes))  # a None identity is never known
        # None until the row is validated (_validate_rows sets it): a row the base does not hold.
        keys = cast(list[MarketKey], found)
        checked = Checked(
            position, snapshot, ids[index], keys, hashes, fingerprints, {}, {}, (), [], base, index in stored, late
        )
        unseen += [(checked, number, rows[number]) for number, key in enumerate(found) if key is None]
        checked_snapshots.append(checked)
    invalid = _validate_rows(batch, unseen)
    valid: list[Checked] = []
    for checked in checked_snapshots:
        try:
            if checked.position in invalid:
                raise invalid[checked.position]
            if checked.base is None:
                checked.staged = range(len(checked.keys))
                checked.markets = merge_rows(checked, checked.staged)
            else:
                _merge_changed(batch, checked)
        except Invalid as problem:
            batch.invalid(checked.position, problem)
            continue
        valid.append(checked)
        if not checked.late:
            pair = (checked.snapshot["event_id"], checked.snapshot["bookmaker_id"])
            states.bases[pair] = _written(checked)
            states.latest[pair] = checked.snapshot["captured_at"]
    return valid


def _validate_rows(batch: Batch, rows: list[tuple[Checked, int, Any]]) -> dict[int, Invalid]:
    """Validate market rows (at once; one by one only when that fails) into their snapshots'
    ``rows`` and ``keys``; return the first problem of each snapshot that has one, by position."""
    adapter = _MARKETS[batch.reject_unknown_keys]
    try:
        validated = adapter.validate_python([row for _, _, row in rows])
    except ValidationError:
        problems: dict[int, Invalid] = {}
        for checked, number, row in rows:
            if checked.position in problems:
                continue
            try:
                market = _MARKET[batch.reject_unknown_keys].validate_python(row)
            except ValidationError as exc:
                where = f"snapshots[{checked.position}].markets[{number}]"
                problems[checked.position] = _describe(exc, where, checked.snapshot)
                continue
            checked.rows[number] = market
            checked.keys[number] = (market["betpawa_market_id"], market.get("line"))
        return problems
    for (checked, number, _), market in zip(rows, validated, strict=True):
        checked.rows[number] = market
        checked.keys[number] = (market["betpawa_market_id"], market.get("line"))
    return {}


def _merge_changed(batch: Batch, checked: Checked) -> None:
    """With a base: merge the markets that have a row the base does not hold or lost one it
    held, validating their remembered rows too; note the base's markets no longer listed."""
    base = checked.base
    assert base is not None
    present = set(checked.keys)
    changed = {checked.keys[number] for number in checked.rows}
    given = checked.fingerprints.values() if base.stable else checked.hashes
    for identity in base.markets.keys() - set(given):
        key = base.markets[identity]
        if key in present:
            changed.add(key)
        else:
            checked.gone.append(key)
    checked.gone = sorted(set(checked.gone), key=_key_order)
    numbers = list(compress(range(len(checked.keys)), map(changed.__contains__, checked.keys)))
    remembered = [
        (checked, number, checked.snapshot["markets"][number]) for number in numbers if number not in checked.rows
    ]
    if remembered and (problems := _validate_rows(batch, remembered)):
        raise problems[checked.position]
    checked.staged = numbers
    checked.markets = merge_rows(checked, numbers)


def _key_order(key: MarketKey) -> tuple[str, bool, float]:
    return (key[0], key[1] is not None, key[1] or 0.0)


def merge_rows(checked: Checked, numbers: Iterable[int]) -> dict[MarketKey, MarketDict]:
    """Merge the validated rows ``numbers`` of a snapshot into one market per key.

    Rows of one key must agree on name and handicap; their outcomes are taken in the order
    given, the same outcome (name, price, active flag) listed twice is kept once, and one name
    with two different prices or flags makes the snapshot invalid. Outcomes are stored sorted by
    name (code point order), so the same outcomes in another order are the same market.
    """
    merged: dict[MarketKey, MarketDict] = {}
    first_row: dict[MarketKey, int] = {}
    for number in numbers:
        row = checked.rows[number]
        key = checked.keys[number]
        first = merged.get(key)
        if first is None:  # validated copies: merged and sorted in place when alone
            merged[key] = row
            first_row[key] = number
            continue
        if first is checked.rows[first_row[key]]:  # a second row: merge into a copy
            first = merged[key] = {**first, "outcomes": list(first["outcomes"])}
        if _header(first) != _header(row):
            raise Invalid(
                f"snapshots[{checked.position}].markets[{number}]",
                f"market (betpawa_market_id={key[0]!r}, line={key[1]!r}) is listed again with another name or "
                f"handicap than at markets[{first_row[key]}]: {_header(row)} against {_header(first)}",
            )
        first["outcomes"].extend(row["outcomes"])
    for key, market in merged.items():
        outcomes = market["outcomes"]
        for outcome in outcomes:  # validated copies: filling the default in place is safe
            if "is_active" not in outcome:
                outcome["is_active"] = True
        by_name = {outcome["name"]: outcome for outcome in outcomes} if len(outcomes) > 1 else {}
        if len(by_name) < len(outcomes) > 1:
            if problem := conflicting_outcome(outcomes):  # type: ignore[arg-type]
                raise Invalid(f"snapshots[{checked.position}].markets[{first_row[key]}]", problem)
            outcomes = list(by_name.values())
        market["outcomes"] = sorted(outcomes, key=_outcome_name)
    return merged


def _outcome_name(outcome: OutcomeDict) -> str:
    return outcome["name"]


def _header(market: MarketDict) -> tuple[Any, ...]:
    get = market.get
    return (market["betpawa_market_name"], get("handicap_type"), get("handicap_home"), get("handicap_away"))


def validate_scrape_errors(
    errors: Iterable[ScrapeErrorIn | Mapping[str, Any]], window: PartitionWindow
) -> list[ScrapeErrorIn]:
    """Return the errors as validated :class:`ScrapeErrorIn`; raise naming the first bad item."""
    items = list(errors)
    try:
        batch = _SCRAPE_ERRORS.validate_python(items)
    except ValidationError as exc:
        raise InvalidInputError(_describe_batch(exc, items, "errors")) from None
    for index, error in enumerate(batch):
        if error.occurred_at is not None and error.occurred_at not in window:
            raise OutsidePartitionWindowError(
                f"errors[{index}]: occurred_at {error.occurred_at.isoformat()} is outside the partition window {window}"
            )
    return batch


def validate_events(events: Iterable[EventIn | Mapping[str, Any]]) -> list[EventIn]:
    """Return the events as validated :class:`EventIn`; raise naming the first bad item, or an
    event key (SportRadar id, bookmaker event id) given twice."""
    items = list(events)
    try:
        batch = _EVENTS.validate_python(items)
    except ValidationError as exc:
        raise InvalidInputError(_describe_batch(exc, items, "events")) from None
    seen: dict[tuple[Any, ...], int] = {}
    for index, event in enumerate(batch):
        keys: list[tuple[Any, ...]] = [("sportradar_id", event.sportradar_id)] if event.sportradar_id else []
        keys += [("bookmaker", link.bookmaker_id, link.bookmaker_event_id) for link in event.bookmakers]
        for key in keys:
            if key in seen and seen[key] != index:
                raise InvalidInputError(f"events[{seen[key]}] and events[{index}] both have {key[0]} {key[1:]!r}")
            seen[key] = index
    return batch


def _name(snapshot: EnvelopeDict) -> str:
    return (
        f"event_id={snapshot['event_id']}, bookmaker_id={snapshot['bookmaker_id']}, "
        f"captured_at={snapshot['captured_at'].isoformat()}"
    )


# Pydantic's wording where it would show our patterns instead of saying what is wrong.
_MESSAGES = {"string_pattern_mismatch": "must be text that is not blank and has no NUL characters"}


def _describe(exc: ValidationError, where: str, item: Any) -> Invalid:
    """The first problem of one item (a snapshot or a market row of one) by its path, e.g.
    ``snapshots[3].markets[12].outcomes[0].odds``, naming its snapshot's ids."""
    error = exc.errors(include_url=False)[0]
    path = where
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    message = _MESSAGES.get(error["type"], error["msg"].removeprefix("Value error, "))
    context = ""
    if isinstance(item, Mapping):
        known = {key: item.get(key) for key in ("event_id", "bookmaker_id") if key in item}
        context = " (" + ", ".join(f"{key}={value!r}" for key, value in known.items()) + ")" if known else ""
    more = exc.error_count() - 1
    suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    return Invalid(path, f"{message}, got {error['input']!r:.200}{suffix}", context)


def _describe_batch(exc: ValidationError, items: Sequence[Any], what: str) -> str:
    """Name the first failing item by its path, e.g. ``errors[3].occurred_at``."""
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


def locate(batch: Batch, detail: str) -> str:
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

    found = [
        f"snapshots[{position}]"
        for position, snapshot in zip(batch.positions, batch.snapshots, strict=True)
        if matches(snapshot)
    ]
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
    distributed_stage: bool = False,
) -> tuple[WriteResult, dict[Pair, Written | None]]:
    """Check the markets of a batch and store it inside the caller's transaction.

    Reserve snapshot ids and create the stage tables (dropped when the transaction ends); lock
    the batch's pairs (``lock_pairs``: writers of other pairs never wait); find the snapshots the
    database holds already; load what it holds for the pairs whose latest snapshot is not the
    one the store remembers (``pair_states``: their fingerprints).
    Then per chunk of the batch: check its markets (:func:`check_markets`); compare the snapshots
    stored already with what they hold (the same markets: left out and reported; others: an
    error); COPY snapshots and markets into the stage tables (of an in-order
    snapshot with a base, only its changed and gone markets); merge: record the snapshots, log
    what changed, move the current state (``merge_stage`` in ``queries/odds.sql``). Late
    snapshots are merged first, one per pair at a time; then every in-order snapshot of the
    chunk at once, however many a pair has (a backfill). The merge of a chunk runs on the
    server while the next chunk is checked. A few round trips per chunk whatever its size. With
    ``on_invalid="skip"``, the skipped snapshots are recorded in ``scrape_errors`` under
    ``scrape_run_id``.

    ``distributed_stage`` (on Citus): the stage is the distributed tables ``oddsstore distribute``
    made, not temporary tables; a write empties its rows from them between merges and before it
    returns (``clear_distributed_stage``, ``queries/distribute.sql``).

    Returns the result and what to remember per pair once the transaction has committed
    (``None``: forget the pair, a row of its last snapshot had no fingerprint).
    """
    remembered: dict[Pair, Written | None] = {}
    states = PairStates({}, {})
    stored_ids: dict[int, int] = {}  # position -> new snapshot id
    markets = 0
    merging: asyncio.Future[None] | None = None  # the last merge sent, not yet awaited
    ids: list[int] = []
    stored: set[int] = set()
    clear = queries.clear_distributed_stage if distributed_stage else queries.clear_stage
    if batch.snapshots:
        ids = await queries.reserve_snapshot_ids(connection, count=len(batch.snapshots))
        if not distributed_stage:
            await queries.create_stage(connection)  # dropped when the caller's transaction ends
        pairs = sorted({(snapshot["event_id"], snapshot["bookmaker_id"]) for snapshot in batch.snapshots})
        try:
            await queries.lock_pairs(
                connection, event_ids=[pair[0] for pair in pairs], bookmaker_ids=[pair[1] for pair in pairs]
            )
        except asyncpg.OutOfMemoryError as exc:  # "out of shared memory": the lock table is full
            raise LockTableFullError(
                f"the server's lock table has no room for the write locks of this batch's {len(pairs)} event x "
                f"bookmaker pairs (one lock per pair until the write commits): write fewer pairs per call, "
                f"or raise max_locks_per_transaction (docs/operations.md, Writers); {exc}"
            ) from exc
        states = await load_pair_states(connection, queries, pairs, batch.written or {})
        found: list[int] | None = await queries.stored_snapshots(
            connection,
            event_ids=[snapshot["event_id"] for snapshot in batch.snapshots],
            bookmaker_ids=[snapshot["bookmaker_id"] for snapshot in batch.snapshots],
            captured_ats=[snapshot["captured_at"] for snapshot in batch.snapshots],
        )
        stored = {position - 1 for position in found or ()}
    try:
        for start, stop in _chunks(batch.snapshots):
            chunk = check_markets(batch, start, stop, ids, stored, states)  # while the previous chunk merges
            if merging is not None:
                await merging
                merging = None
                await clear(connection)
            chunk = await _leave_out_stored(connection, queries, batch, chunk)
            steps = _steps(chunk)
            for number, step in enumerate(steps):
                if number:
                    await clear(connection)
                snapshot_rows, market_rows = _stage_rows(step, scrape_run_id)
                await connection.copy_records_to_table(
                    "oddsstore_stage_snapshots", records=snapshot_rows, columns=STAGE_SNAPSHOT_COLUMNS
                )
                if market_rows:
                    await connection.copy_records_to_table(
                        "oddsstore_stage_markets", records=market_rows, columns=STAGE_MARKET_COLUMNS
                    )
                merging = asyncio.ensure_future(queries.merge_stage(connection))
                await asyncio.sleep(0)  # let it send the merge before Python goes on
                for checked in step:
                    stored_ids[checked.position] = checked.snapshot_id
                    if not checked.late:
                        remembered[(checked.snapshot["event_id"], checked.snapshot["bookmaker_id"])] = None
                if number < len(steps) - 1:
                    await merging
                    merging = None
            markets += sum(len(set(checked.keys)) for checked in chunk)
        if merging is not None:
            await merging
            merging = None
        if distributed_stage and batch.snapshots:
            await clear(connection)  # before the commit: no other writer may see this write's rows
    finally:
        if merging is not None:  # failing: the connection must be idle before the rollback
            await asyncio.wait([merging])
            if not merging.cancelled():
                merging.exception()  # retrieved: the error being raised is the one to report
    for pair in remembered:
        remembered[pair] = states.bases.get(pair)
    if batch.skipped and scrape_run_id is not None:
        await _record_skipped(connection, queries, batch, scrape_run_id)
    result = WriteResult(
        snapshots=len(stored_ids),
        markets=markets,
        snapshot_ids=[stored_ids[position] for position in sorted(stored_ids)],
        already_stored=sorted(batch.already_stored),
        skipped=sorted(batch.skipped, key=lambda skipped: skipped.position),
    )
    return result, remembered


async def load_pair_states(
    connection: asyncpg.Connection, queries: Queries, pairs: list[Pair], written: Mapping[Pair, Written]
) -> PairStates:
    """What each pair's next in-order snapshot is compared with, and its latest snapshot's time:
    the store's memory where the database confirms it (the pair's latest snapshot is the
    remembered one), else the database's current state with its rows' fingerprints (none when
    a market has no fingerprint). Call with the pairs locked."""
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
    for position, digests, market_id, line in zip(
        found.market_positions, found.fingerprints, found.market_ids, found.lines, strict=True
    ):
        if digests is None:
            unknown.add(position)
            continue
        markets = current.setdefault(position, {})
        for offset in range(0, len(digests), DIGEST_SIZE):
            markets[digests[offset : offset + DIGEST_SIZE]] = (market_id, line)
    for position, snapshot_id, captured_at in zip(found.positions, found.snapshot_ids, found.captured_at, strict=True):
        pair = pairs[position - 1]
        states.latest[pair] = captured_at
        states.bases[pair] = (
            None
            if snapshot_id is None or captured_at is None or position in unknown
            else Written(snapshot_id, captured_at, current.get(position, {}), stable=True)
        )
    return states


async def _leave_out_stored(
    connection: asyncpg.Connection, queries: Queries, batch: Batch, chunk: list[Checked]
) -> list[Checked]:
    """Compare the snapshots of a chunk the database holds already with what it holds: the same
    markets are a retry (left out, listed in ``batch.already_stored``); others raise
    :class:`DuplicateSnapshotError` naming the snapshot."""
    again = [checked for checked in chunk if checked.stored]
    if not again:
        return chunk
    rows: list[MarketOdds] = await queries.stored_markets(
        connection,
        event_ids=[checked.snapshot["event_id"] for checked in again],
        bookmaker_ids=[checked.snapshot["bookmaker_id"] for checked in again],
        captured_ats=[checked.snapshot["captured_at"] for checked in again],
    )
    held: dict[tuple[int, int, datetime], dict[MarketKey, tuple[Any, ...]]] = {}
    for row in rows:
        state = (
            (row.betpawa_market_name, row.handicap_type, row.handicap_home, row.handicap_away),
            sorted((o.name, o.odds, o.is_active) for o in row.outcomes),
        )
        held.setdefault((row.event_id, row.bookmaker_id, row.captured_at), {})[(row.betpawa_market_id, row.line)] = (
            state
        )
    for checked in again:
        snapshot = checked.snapshot
        given = {
            key: (_header(market), sorted((o["name"], o["odds"], o.get("is_active", True)) for o in market["outcomes"]))
            for key, market in checked.markets.items()
        }
        if given != held.get((snapshot["event_id"], snapshot["bookmaker_id"], snapshot["captured_at"]), {}):
            raise DuplicateSnapshotError(
                f"snapshots[{checked.position}] ({_name(snapshot)}): a snapshot with this event, bookmaker and "
                "captured_at is already stored with other markets"
            )
        batch.already_stored.append(checked.position)
    return [checked for checked in chunk if not checked.stored]


async def _record_skipped(connection: asyncpg.Connection, queries: Queries, batch: Batch, scrape_run_id: int) -> None:
    """Record each skipped snapshot as a ``parse_error`` of the run, with its event and bookmaker."""
    skipped = batch.skipped
    missing: str | None = await queries.unknown_scrape_error_reference(
        connection,
        scrape_run_ids=[scrape_run_id] * len(skipped),
        bookmaker_ids=[s.bookmaker_id for s in skipped],
        event_ids=[s.event_id for s in skipped],
    )
    if missing is not None:
        raise UnknownReferenceError(missing)
    await queries.insert_scrape_errors(
        connection,
        scrape_run_ids=[scrape_run_id] * len(skipped),
        bookmaker_ids=[s.bookmaker_id for s in skipped],
        event_ids=[s.event_id for s in skipped],
        error_types=["parse_error"] * len(skipped),
        error_messages=[f"{s.path}: {s.reason}" for s in skipped],
        occurred_ats=[None] * len(skipped),
    )


def _written(checked: Checked) -> Written | None:
    """What to remember of a stored snapshot (its rows' hashes); ``None`` when a row of it had
    none (nor a fingerprint)."""
    if None in checked.hashes:
        return None
    return Written(
        checked.snapshot_id, checked.snapshot["captured_at"], dict(zip(checked.hashes, checked.keys, strict=True))
    )


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


def _steps(chunk: list[Checked]) -> list[list[Checked]]:
    """Split a chunk into merges: late snapshots first, at most one per pair in each, oldest
    first; then the in-order ones, all of a pair in one merge, except that a snapshot staged
    whole (no base) after another of its pair starts the pair's next merge."""
    late: dict[Pair, list[Checked]] = {}
    in_order: dict[Pair, list[Checked]] = {}
    for checked in chunk:
        pair = (checked.snapshot["event_id"], checked.snapshot["bookmaker_id"])
        (late if checked.late else in_order).setdefault(pair, []).append(checked)
    late_steps: list[list[Checked]] = []
    ordered_steps: list[list[Checked]] = []
    for group, steps, whole_splits in ((late, late_steps, False), (in_order, ordered_steps, True)):
        for snapshots in group.values():
            snapshots.sort(key=lambda checked: checked.snapshot["captured_at"])
            rank = 0
            for number, checked in enumerate(snapshots):
                if number and (not whole_splits or checked.base is None):
                    rank += 1
                if rank == len(steps):
                    steps.append([])
                steps[rank].append(checked)
    return late_steps + ordered_steps


def _stage_rows(step: list[Checked], scrape_run_id: int | None) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Rows for the stage tables: a snapshot with a base stages its changed markets and, with
    null outcomes, those of the base it no longer lists; one without stages every market."""
    snapshot_rows: list[tuple[Any, ...]] = []
    market_rows: list[tuple[Any, ...]] = []
    for checked in step:
        snapshot, base, snapshot_id = checked.snapshot, checked.base, checked.snapshot_id
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
        rows_of: dict[MarketKey, list[bytes | None]] = {}
        fingerprints, given = checked.fingerprints, snapshot["markets"]
        for number in checked.staged:
            digest = fingerprints[number] if number in fingerprints else fingerprint(given[number])
            rows_of.setdefault(checked.keys[number], []).append(digest)
        for key, market in checked.markets.items():
            get = market.get
            digests = rows_of[key]
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
                    market["outcomes"],
                    None if None in digests else b"".join(cast(list[bytes], digests)),
                )
            )
        market_rows += [
            (snapshot_id, event_id, bookmaker_id, captured_at, line, None, None, market_id, None, None, None, None)
            for market_id, line in checked.gone
        ]
    return snapshot_rows, market_rows
