"""The write memory (``remember_writes``): a store sends only the markets whose input changed
since the snapshot it last wrote for the pair, and answers stay those of full snapshots when
another process writes in between, a write fails, the caller reuses its dicts, or input is bad."""

from __future__ import annotations

import copy
import struct
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from conftest import World, market, snapshot
from hypothesis import given
from hypothesis import strategies as st

from oddsstore import InvalidInputError, OddsStore, UnknownReferenceError, writes


def prices(rows: list) -> dict[tuple[int, str, float | None], tuple[float, ...]]:
    """Prices by outcome name order (1, 2, X: outcomes are stored sorted by name)."""
    return {(m.bookmaker_id, m.betpawa_market_id, m.line): tuple(o.odds for o in m.outcomes) for m in rows}


async def count(store: OddsStore, table: str) -> int:
    return int(await store.pool.fetchval(f"select count(*) from {table}"))


async def test_only_changed_markets_are_logged_and_latest_odds_follow(store: OddsStore, world: World) -> None:
    event, bookmaker = world.events[0], world.bookmakers[0]
    at = datetime.now(UTC) - timedelta(minutes=30)
    steady = [market(str(n)) for n in range(5)]
    await store.write_snapshots([snapshot(event, bookmaker, at, [*steady, market("9", odds=(2.0, 1.8))])])
    await store.write_snapshots(
        [snapshot(event, bookmaker, at + timedelta(minutes=10), [*steady, market("9", odds=(2.1, 1.7))])]
    )
    # Gone: market "4" is no longer listed; "10" is new.
    listed = [*steady[:4], market("9", odds=(2.1, 1.7)), market("10")]
    await store.write_snapshots([snapshot(event, bookmaker, at + timedelta(minutes=20), listed)])
    assert await count(store, "market_changes") == 6 + 1 + 2
    latest = prices(await store.latest_odds(event.id))
    assert sorted(key[1] for key in latest) == ["0", "1", "10", "2", "3", "9"]
    assert latest[(bookmaker.id, "9", None)] == (2.1, 1.7)
    first = prices(await store.odds_at(event.id, at))
    assert first[(bookmaker.id, "9", None)] == (2.0, 1.8) and (bookmaker.id, "4", None) in first


async def test_a_write_by_another_process_in_between_is_noticed(store: OddsStore, world: World, dsn: str) -> None:
    """A writes a price, B changes it, A writes the first price again: A's memory says the market
    has not changed since A's last write, but the pair's latest snapshot is B's now."""
    event, bookmaker = world.events[0], world.bookmakers[0]
    at = datetime.now(UTC) - timedelta(minutes=30)
    first, moved = [market("1", odds=(2.0, 1.8)), market("2")], [market("1", odds=(2.5, 1.5)), market("2", line=2.5)]
    async with OddsStore.connect(dsn, min_size=1, max_size=1) as other:
        await store.write_snapshots([snapshot(event, bookmaker, at, first)])
        await other.write_snapshots([snapshot(event, bookmaker, at + timedelta(minutes=10), moved)])
        await store.write_snapshots([snapshot(event, bookmaker, at + timedelta(minutes=20), first)])
    assert prices(await store.latest_odds(event.id)) == {
        (bookmaker.id, "1", None): (2.0, 1.8),
        (bookmaker.id, "2", None): (1.85, 4.2, 3.4),  # outcomes 1, 2, X: by name
    }


async def test_a_failed_write_is_not_remembered(store: OddsStore, world: World) -> None:
    event, bookmaker = world.events[0], world.bookmakers[0]
    at = datetime.now(UTC) - timedelta(minutes=30)
    await store.write_snapshots([snapshot(event, bookmaker, at, [market("1", odds=(2.0, 1.8))])])
    with pytest.raises(UnknownReferenceError):
        await store.write_snapshots(
            [snapshot(event, bookmaker, at + timedelta(minutes=10), [market("1", odds=(3.0, 1.3))])], scrape_run_id=999
        )
    again = snapshot(event, bookmaker, at + timedelta(minutes=20), [market("1", odds=(2.0, 1.8))])
    await store.write_snapshots([again])
    assert prices(await store.latest_odds(event.id)) == {(bookmaker.id, "1", None): (2.0, 1.8)}
    assert await count(store, "odds_snapshots") == 2


async def test_dicts_the_caller_changes_after_a_write_are_seen_as_changed(store: OddsStore, world: World) -> None:
    event, bookmaker = world.events[0], world.bookmakers[0]
    at = datetime.now(UTC) - timedelta(minutes=30)
    reused = market("1", odds=(2.0, 1.8))
    await store.write_snapshots([snapshot(event, bookmaker, at, [reused])])
    reused["outcomes"][0]["odds"] = 2.2
    await store.write_snapshots([snapshot(event, bookmaker, at + timedelta(minutes=10), [reused])])
    assert prices(await store.latest_odds(event.id)) == {(bookmaker.id, "1", None): (2.2, 1.8)}


async def test_the_same_state_given_in_another_form_is_no_change(store: OddsStore, world: World) -> None:
    """Integers for prices, no is_active, keys in another order: another fingerprint, the same
    market, so nothing is logged."""
    event, bookmaker = world.events[0], world.bookmakers[0]
    at = datetime.now(UTC) - timedelta(minutes=30)
    await store.write_snapshots([snapshot(event, bookmaker, at, [market("1", odds=(2.0, 3.0))])])
    same = {
        "outcomes": [{"odds": 2, "name": "1"}, {"name": "X", "odds": 3}],
        "betpawa_market_name": "Market 1",
        "betpawa_market_id": "1",
    }
    await store.write_snapshots([snapshot(event, bookmaker, at + timedelta(minutes=10), [same])])
    assert await count(store, "market_changes") == 1
    assert prices(await store.latest_odds(event.id)) == {(bookmaker.id, "1", None): (2.0, 3.0)}


async def test_bad_input_next_to_remembered_markets_is_refused_whole(store: OddsStore, world: World) -> None:
    event, bookmaker = world.events[0], world.bookmakers[0]
    at = datetime.now(UTC) - timedelta(minutes=30)
    markets = [market(str(n)) for n in range(3)]
    await store.write_snapshots([snapshot(event, bookmaker, at, markets)])
    before = prices(await store.latest_odds(event.id))
    bad = copy.deepcopy(markets)
    bad[2]["outcomes"][1]["odds"] = -0.5
    with pytest.raises(InvalidInputError, match=r"snapshots\[0\]\.markets\[2\]\.outcomes\[1\]\.odds"):
        await store.write_snapshots([snapshot(event, bookmaker, at + timedelta(minutes=10), bad)])
    twice = [*markets, market("0", odds=(9.5, 3.4, 4.2))]  # market "0" again, another price for "1"
    with pytest.raises(InvalidInputError, match=r"markets\[0\].*'1' is listed twice with different prices"):
        await store.write_snapshots([snapshot(event, bookmaker, at + timedelta(minutes=10), twice)])
    assert prices(await store.latest_odds(event.id)) == before
    assert await count(store, "odds_snapshots") == 1


async def test_a_store_that_does_not_remember_answers_the_same(dsn: str, world: World) -> None:
    event, bookmaker = world.events[0], world.bookmakers[0]
    at = datetime.now(UTC) - timedelta(minutes=30)
    async with OddsStore.connect(dsn, min_size=1, max_size=1, remember_writes=False) as forgetful:
        for step in range(3):
            listed = [market("1", odds=(2.0 + step / 10, 1.8)), market("2")][: 2 - step % 2]
            await forgetful.write_snapshots([snapshot(event, bookmaker, at + timedelta(minutes=10 * step), listed)])
        assert prices(await forgetful.latest_odds(event.id)) == {
            (bookmaker.id, "1", None): (2.2, 1.8),
            (bookmaker.id, "2", None): (1.85, 4.2, 3.4),  # outcomes 1, 2, X: by name
        }
        assert await count(forgetful, "market_changes") == 2 + 2 + 2  # both; one moved, one gone; one moved, one back


async def test_pairs_not_written_for_a_day_are_forgotten(store: OddsStore, world: World) -> None:
    """The memory holds live pairs only: a finished event's pairs go once a day has passed."""
    event, (first, second, _) = world.events[0], world.bookmakers
    now = datetime.now(UTC)
    await store.write_snapshots([snapshot(event, first, now - timedelta(days=2), [market("1")])])
    assert set(store._written) == {(event.id, first.id)}
    await store.write_snapshots([snapshot(event, second, now - timedelta(minutes=5), [market("1")])])
    assert set(store._written) == {(event.id, second.id)}


# --- chunks: a large batch is checked and merged chunk by chunk, the merge of one overlapping
# the check of the next; made small here so that a few snapshots span several chunks.


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writes, "CHUNK_MARKETS", 2)


@pytest.mark.usefixtures("small_chunks")
async def test_a_batch_in_several_chunks_is_stored_whole(store: OddsStore, world: World) -> None:
    at = datetime.now(UTC) - timedelta(minutes=30)
    pairs = [(event, bookmaker) for event in world.events for bookmaker in world.bookmakers]
    for step in range(2):
        batch = [
            snapshot(
                event, bookmaker, at + timedelta(minutes=10 * step), [market("1", odds=(2.0 + step, 1.5)), market("2")]
            )
            for event, bookmaker in pairs
        ]
        result = await store.write_snapshots(batch)
        assert (result.snapshots, result.markets) == (len(pairs), 2 * len(pairs))
    for event in world.events:
        latest = prices(await store.latest_odds(event.id))
        assert latest == {
            **{(bookmaker.id, "1", None): (3.0, 1.5) for bookmaker in world.bookmakers},
            **{(bookmaker.id, "2", None): (1.85, 4.2, 3.4) for bookmaker in world.bookmakers},  # by name
        }
    assert await count(store, "market_changes") == 3 * len(pairs)


@pytest.mark.usefixtures("small_chunks")
async def test_bad_input_in_a_later_chunk_leaves_nothing_behind(store: OddsStore, world: World) -> None:
    at = datetime.now(UTC) - timedelta(minutes=30)
    pairs = [(event, bookmaker) for event in world.events for bookmaker in world.bookmakers]
    batch = [snapshot(event, bookmaker, at, [market("1"), market("2")]) for event, bookmaker in pairs]
    batch[-1]["markets"][1]["outcomes"][0]["odds"] = "cheap"
    with pytest.raises(InvalidInputError, match=rf"snapshots\[{len(pairs) - 1}\]\.markets\[1\]\.outcomes\[0\]\.odds"):
        await store.write_snapshots(batch)
    batch[-1]["markets"][1] = market("1", odds=(2.5, 3.4, 4.2))  # market "1" again, another price
    with pytest.raises(InvalidInputError, match=rf"snapshots\[{len(pairs) - 1}\]\.markets\[0\].*listed twice"):
        await store.write_snapshots(batch)
    assert await count(store, "odds_snapshots") == 0
    assert await count(store, "market_changes") == 0


@pytest.mark.usefixtures("small_chunks")
async def test_a_server_error_in_an_early_chunk_leaves_nothing_behind(store: OddsStore, world: World) -> None:
    at = datetime.now(UTC) - timedelta(minutes=30)
    pairs = [(event, bookmaker) for event in world.events for bookmaker in world.bookmakers]
    batch = [snapshot(event, bookmaker, at, [market("1"), market("2")]) for event, bookmaker in pairs]
    batch[0]["event_id"] = 999_999
    with pytest.raises(UnknownReferenceError, match=r"snapshots\[0\]: .*event_id.*999999"):
        await store.write_snapshots(batch)
    assert await count(store, "odds_snapshots") == 0
    await store.write_snapshots(batch[1:])
    assert await count(store, "odds_snapshots") == len(pairs) - 1


# --- fingerprints: equal only for the same input, types included.

json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=True) | st.sampled_from(["", "1", "X"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["odds", "name", "line"]), inner, max_size=3)
    ),
    max_leaves=8,
)


def typed(value: object) -> object:
    """The value with every leaf's type beside it, containers in order: what a fingerprint keeps."""
    if isinstance(value, dict):
        return ("dict", [(key, typed(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("list", [typed(item) for item in value])
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))  # the bits: -0.0 is not 0.0, a NaN is itself
    return (type(value).__name__, value)


@given(json_like, json_like)
def test_fingerprints_are_equal_exactly_for_the_same_input(first: object, second: object) -> None:
    assert (writes.fingerprint(first) == writes.fingerprint(second)) == (typed(first) == typed(second))
    # The in-process hashes a store remembers its own writes by tell the same rows apart.
    assert (writes.row_hashes([first]) == writes.row_hashes([second])) == (typed(first) == typed(second))


def test_fingerprints_tell_apart_what_compares_equal_in_python() -> None:
    fingerprint = writes.fingerprint
    assert len({fingerprint({"odds": value}) for value in (2, 2.0, True, "2")}) == 4
    assert fingerprint({"odds": 1.5, "name": "1"}) != fingerprint({"name": "1", "odds": 1.5})
    assert fingerprint({"line": None}) != fingerprint({"line": float("nan")})
    assert fingerprint({"line": 0.0}) != fingerprint({"line": -0.0})


def test_values_marshal_cannot_encode_exactly_get_no_fingerprint() -> None:
    class Name(str):
        pass

    assert writes.fingerprint({"name": Name("1")}) is None
    assert writes.fingerprint({"odds": Decimal("1.5")}) is None
    assert writes.row_hashes([{"odds": 1.5}, {"odds": Decimal("1.5")}])[1] is None
