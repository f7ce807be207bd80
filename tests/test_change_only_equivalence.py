"""Change-only storage answers exactly what storing every full snapshot would answer.

A plain Python reference model keeps every snapshot whole. Hypothesis drives both with the same
scrape sequence: batches in and out of order, markets that change, stay, get suspended,
disappear and come back, names that change, snapshots with no markets, outcomes given in another
order and markets given in several rows (as BetPawa lists them), batches holding several
snapshots of a pair (backfills), and retention drops, between writes and while a batch is
written (after which the store refuses the dropped days, as the model does). Then latest_odds,
odds_at at every interesting moment, and odds_history of every market (whole, and from a moment
on) must match the model exactly.

Writes go through two stores on the same database, as two scraper processes would, one after
the other and at the same time: each remembers what it wrote (``remember_writes``) and must
notice when the other wrote since; and through a new store per batch (a restarted or cron-style
scraper), which dedupes from the fingerprints the database keeps. Retention runs by the Python
path (DETACH CONCURRENTLY) or the SQL function (``oddsstore_drop_expired_partitions``).
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, date, datetime, time, timedelta

import pytest
from conftest import Server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_model import Model, Snapshot, line_order, rows, store_rows, unordered

from oddsstore import OddsStore, OutsidePartitionWindowError, writes

MARKET_IDS = ("1x2", "total")
LINES = (None, 2.5)
PRICES = ((1.5, 2.5), (1.5, 2.6), (3.0, 1.4))
DAYS_BACK = 4  # snapshots fall on the days today-4 .. today

# --- the scrape sequence -------------------------------------------------------------------------

states = st.tuples(
    st.sampled_from(["Market", "Market (renamed)"]),
    st.tuples(st.sampled_from(PRICES), st.booleans()).map(
        lambda chosen: (("1", chosen[0][0], chosen[1]), ("2", chosen[0][1], True))
    ),
)
market_sets = st.dictionaries(st.tuples(st.sampled_from(MARKET_IDS), st.sampled_from(LINES)), states, max_size=4)
snapshots = st.tuples(
    st.integers(0, 1),  # event
    st.integers(0, 1),  # bookmaker
    st.integers(-DAYS_BACK, 0),  # day
    st.integers(0, 5),  # ten-minute slot
    market_sets,
    st.integers(0, 3),  # shape: 1 = outcomes reversed, 2 = each market in two rows (as BetPawa lists)
)
batches = st.lists(snapshots, min_size=1, max_size=6)  # several of a pair: a backfill
operations = st.lists(
    st.one_of(
        st.tuples(st.just("write"), batches, st.integers(0, 1)),
        # A new process writes one batch (it remembers nothing).
        st.tuples(st.just("fresh"), batches),
        # Retention by the Python path, or (True) by the SQL function.
        st.tuples(st.just("drop"), st.integers(1, DAYS_BACK), st.booleans()),
        # Both stores write at once (two writer processes), pairs shared or not.
        st.tuples(st.just("together"), batches, batches),
        # Retention drops days while a batch (of the days it keeps) is written.
        st.tuples(st.just("drop_while_writing"), st.integers(1, DAYS_BACK), batches, st.booleans()),
    ),
    min_size=1,
    max_size=10,
)


def moment(today: date, day: int, slot: int) -> datetime:
    return datetime.combine(today + timedelta(days=day), time(1), UTC) + timedelta(minutes=10 * slot)


def as_given(markets: dict, shape: int) -> list[dict]:
    """Market dicts as a scraper hands them over: outcomes in the model's order or reversed (the
    model keeps them by name, as the store returns them), each market in one row or two."""
    given = []
    for (mid, line), (name, outcomes) in markets.items():
        listed = [{"name": n, "odds": o, "is_active": a} for n, o, a in outcomes]
        listed = listed[::-1] if shape & 1 else listed
        rows = [listed[:1], listed[1:]] if shape & 2 else [listed]
        given += [
            {"betpawa_market_id": mid, "betpawa_market_name": f"{name} {mid}", "line": line, "outcomes": part}
            for part in rows
        ]
    return given


async def run(dsn: str, ops: list) -> None:
    today = datetime.now(UTC).date()
    model = Model()
    async with (
        OddsStore.connect(dsn, min_size=1, max_size=2) as store,
        OddsStore.connect(dsn, min_size=1, max_size=1) as other_store,
    ):
        sport = await store.upsert_sport("Football", "football")
        tournament = await store.upsert_tournament(sport.id, "League")
        kickoff = datetime.now(UTC) + timedelta(days=7)
        events = [(await store.upsert_event(tournament.id, f"e{n}", "H", "A", kickoff)).id for n in range(2)]
        bookmakers = [(await store.upsert_bookmaker(f"B{n}", f"b{n}")).id for n in range(2)]
        seen: set[tuple[int, int, datetime]] = set()

        def prepare(chosen: list, cutoff: datetime | None = None) -> tuple[list[dict], list[Snapshot]]:
            """The batch to write and what the model gains, leaving out snapshots already written
            (and, with ``cutoff``, those before it)."""
            batch, written = [], []
            for event, bookmaker, day, slot, markets, *shape in chosen:
                at = moment(today, day, slot)
                if (events[event], bookmakers[bookmaker], at) in seen or (cutoff is not None and at < cutoff):
                    continue
                seen.add((events[event], bookmakers[bookmaker], at))
                written.append(Snapshot(events[event], bookmakers[bookmaker], at, markets))
                batch.append(
                    {
                        "event_id": events[event],
                        "bookmaker_id": bookmakers[bookmaker],
                        "captured_at": at,
                        "markets": as_given(markets, shape[0] if shape else 0),
                    }
                )
            return batch, written

        def stored(written: list[Snapshot]) -> None:
            model.snapshots += [
                Snapshot(s.event, s.bookmaker, s.at, {k: (f"{n} {k[0]}", o) for k, (n, o) in s.markets.items()})
                for s in written
            ]

        def first_kept() -> datetime:
            return datetime.combine(today - timedelta(days=store.retention_days), time(), UTC)

        async def drop(sql: bool) -> None:
            if sql:
                await store.pool.fetch("select oddsstore_drop_expired_partitions($1)", store.retention_days)
            else:
                await store.drop_expired_partitions()

        for kind, argument, *more in ops:
            if kind == "drop":
                store.retention_days = other_store.retention_days = argument
                await drop(sql=more[0] if more else False)
                model.drop_before(first_kept())
                continue
            if kind == "drop_while_writing":
                store.retention_days = other_store.retention_days = argument
                batch, written = prepare(more[0], cutoff=first_kept())
                await asyncio.gather(drop(sql=more[1]), other_store.write_snapshots(batch))
                model.drop_before(first_kept())
                stored(written)
                continue
            if kind == "fresh":
                batch, written = prepare(argument, cutoff=first_kept())
                async with OddsStore.connect(
                    dsn, min_size=1, max_size=1, retention_days=store.retention_days
                ) as fresh_store:
                    await fresh_store.write_snapshots(batch)
                stored(written)
                continue
            if kind == "together":
                first, first_written = prepare(argument, cutoff=first_kept())
                second, second_written = prepare(more[0], cutoff=first_kept())
                await asyncio.gather(store.write_snapshots(first), other_store.write_snapshots(second))
                stored(first_written + second_written)
                continue
            batch, written = prepare(argument)
            writing = (store, other_store)[more[0]]
            if any(s.at < first_kept() for s in written):
                with pytest.raises(OutsidePartitionWindowError):
                    await writing.write_snapshots(batch)
                seen.difference_update((s.event, s.bookmaker, s.at) for s in written)
                continue
            await writing.write_snapshots(batch)
            stored(written)

        moments = sorted({s.at for s in model.snapshots} | {s.at + timedelta(minutes=5) for s in model.snapshots})
        moments.insert(0, moment(today, -DAYS_BACK - 1, 0))
        for event in events:
            expected_latest = rows(model.latest_at_or_before(event, datetime.max.replace(tzinfo=UTC)))
            assert unordered(store_rows(await store.latest_odds(event))) == unordered(expected_latest)
            for at in moments:
                expected = rows(model.latest_at_or_before(event, at))
                assert unordered(store_rows(await store.odds_at(event, at))) == unordered(expected), at
            for market_id in MARKET_IDS:
                expected = sorted(rows(model.kept(event), market_id), key=line_order)
                assert store_rows(await store.odds_history(event, market_id)) == expected
                for since in moments[::4]:
                    later = [row for row in expected if row[1] >= since]
                    assert store_rows(await store.odds_history(event, market_id, since=since)) == later


_databases = itertools.count()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations, chunk_markets=st.sampled_from([writes.CHUNK_MARKETS, 1]))
def test_change_only_storage_answers_like_full_snapshots(
    pg_server: Server, template_db: str, ops: list, chunk_markets: int
) -> None:
    """``chunk_markets`` 1: every snapshot of a batch is checked and merged as its own chunk."""
    name = f"equivalence_{next(_databases)}"
    janitor = pg_server.janitor(name, template_dbname=template_db)
    janitor.init()
    default, writes.CHUNK_MARKETS = writes.CHUNK_MARKETS, chunk_markets
    try:
        asyncio.run(run(pg_server.dsn(name), ops))
    finally:
        writes.CHUNK_MARKETS = default
        janitor.drop()


def test_a_market_unchanged_longer_than_retention_still_answers(pg_server: Server, template_db: str) -> None:
    """The 1X2 is set four days ago and never changes; days before yesterday are dropped."""
    key = ("1x2", None)
    steady = ("Market", (("1", 1.5, True), ("2", 2.5, True)))
    moving = [("Market", (("1", 1.5 + step / 10, True), ("2", 2.5, True))) for step in range(5)]
    ops: list = [
        ("write", [(0, 0, day, 0, {key: steady, ("total", 2.5): moving[day + DAYS_BACK]})], 0)
        for day in range(-DAYS_BACK, 1)
    ]
    ops.append(("drop", 1))
    ops.append(("write", [(0, 0, 0, 3, {key: steady})], 0))
    test_change_only_storage_answers_like_full_snapshots.hypothesis.inner_test(pg_server, template_db, ops, 1)
