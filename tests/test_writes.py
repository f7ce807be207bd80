"""write_snapshots and the reads over what it wrote: latest_odds, odds_history, snapshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import World, market, on_citus, snapshot

from oddsstore import DuplicateSnapshotError, MarketIn, OddsStore, Outcome, SnapshotIn

pytestmark = on_citus


async def count(store: OddsStore, table: str) -> int:
    return int(await store.pool.fetchval(f"select count(*) from {table}"))


async def test_a_batch_is_stored_and_read_back(store: OddsStore, world: World) -> None:
    event, (betpawa, sporty, _) = world.events[0], world.bookmakers
    at = datetime.now(UTC) - timedelta(minutes=5)
    result = await store.write_snapshots(
        [
            snapshot(event, betpawa, at, [market("3743"), market("5000", line=2.5, odds=(1.9, 1.95))]),
            snapshot(event, sporty, at, [market("3743", odds=(1.8, 3.5, 4.4))]),
        ]
    )
    assert (result.snapshots, result.markets) == (2, 3)
    assert len(set(result.snapshot_ids)) == 2

    latest = await store.latest_odds(event.id)
    assert [(m.bookmaker_id, m.betpawa_market_id, m.line) for m in latest] == [
        (betpawa.id, "3743", None),
        (betpawa.id, "5000", 2.5),
        (sporty.id, "3743", None),
    ]
    assert latest[1].outcomes == [Outcome(name="1", odds=1.9), Outcome(name="X", odds=1.95)]
    assert all(m.captured_at == at and m.event_id == event.id for m in latest)
    assert {m.snapshot_id for m in latest} == set(result.snapshot_ids)


async def test_pydantic_models_are_accepted_too(store: OddsStore, world: World) -> None:
    event, bookmaker = world.events[0], world.bookmakers[0]
    at = datetime.now(UTC)
    model = SnapshotIn(
        event_id=event.id,
        bookmaker_id=bookmaker.id,
        captured_at=at,
        markets=[
            MarketIn(
                betpawa_market_id="4000",
                betpawa_market_name="Asian Handicap - FT",
                line=-0.25,
                handicap_type="asian",
                handicap_home=-0.25,
                handicap_away=0.25,
                outcomes=[Outcome(name="1", odds=1.95), Outcome(name="2", odds=1.9, is_active=False)],
            )
        ],
        raw_response={"source": "api", "markets": 1},
    )
    await store.write_snapshots([model])
    (stored,) = await store.latest_odds(event.id)
    assert (stored.handicap_type, stored.handicap_home, stored.handicap_away, stored.line) == (
        "asian",
        -0.25,
        0.25,
        -0.25,
    )
    assert stored.outcomes[1] == Outcome(name="2", odds=1.9, is_active=False)
    (snap,) = await store.snapshots(event.id)
    assert snap.raw_response == {"source": "api", "markets": 1}


async def test_latest_odds_follow_the_newest_snapshot_even_when_batches_arrive_late(
    store: OddsStore, world: World
) -> None:
    event, bookmaker = world.events[0], world.bookmakers[0]
    now = datetime.now(UTC)
    await store.write_snapshots([snapshot(event, bookmaker, now, [market(odds=(2.0, 3.0, 4.0))])])
    await store.write_snapshots([snapshot(event, bookmaker, now - timedelta(hours=1), [market(odds=(9.0, 9.0, 9.0))])])
    (latest,) = await store.latest_odds(event.id)
    assert latest.captured_at == now
    assert [(o.name, o.odds) for o in latest.outcomes] == [("1", 2.0), ("2", 4.0), ("X", 3.0)]  # by name
    assert await store.latest_odds(world.events[1].id) == []


async def test_odds_history_is_oldest_first_and_filters(store: OddsStore, world: World) -> None:
    event, (betpawa, sporty, _) = world.events[0], world.bookmakers
    start = datetime.now(UTC) - timedelta(hours=2)
    for step in range(4):
        at = start + timedelta(minutes=10 * step)
        await store.write_snapshots(
            [
                snapshot(event, betpawa, at, [market(odds=(1.5 + step / 10, 3.0, 4.0)), market("9", odds=(1.1, 7.0))]),
                snapshot(event, sporty, at, [market("9", odds=(1.2, 6.0))]),
            ]
        )
    history = await store.odds_history(event.id, "3743")
    assert [(h.captured_at, h.outcomes[0].odds) for h in history] == [
        (start + timedelta(minutes=10 * step), 1.5 + step / 10) for step in range(4)
    ]
    only_sporty = await store.odds_history(event.id, "9", bookmaker_id=sporty.id)
    assert {h.bookmaker_id for h in only_sporty} == {sporty.id} and len(only_sporty) == 4
    window = await store.odds_history(
        event.id, "9", since=start + timedelta(minutes=10), until=start + timedelta(minutes=30)
    )
    assert [h.captured_at for h in window] == [start + timedelta(minutes=m) for m in (10, 10, 20, 20)]
    assert await store.odds_history(event.id, "no-such-market") == []


async def test_a_failing_batch_leaves_nothing_behind(store: OddsStore, world: World) -> None:
    event, bookmaker = world.events[0], world.bookmakers[0]
    at = datetime.now(UTC)
    await store.write_snapshots([snapshot(event, bookmaker, at)])
    before = [await count(store, t) for t in ("odds_snapshots", "market_changes", "market_current", "latest_snapshots")]
    # The second snapshot repeats a stored one with other markets: refused, naming it, and the
    # first snapshot is not stored either.
    with pytest.raises(DuplicateSnapshotError, match=r"snapshots\[1\] \(event_id="):
        await store.write_snapshots(
            [
                snapshot(world.events[1], bookmaker, at + timedelta(seconds=1)),
                snapshot(event, bookmaker, at, [market(odds=(2.0, 3.0, 4.0))]),
            ]
        )
    assert [
        await count(store, t) for t in ("odds_snapshots", "market_changes", "market_current", "latest_snapshots")
    ] == before


@pytest.mark.python_checks
async def test_an_empty_batch_writes_nothing(store: OddsStore) -> None:
    result = await store.write_snapshots([])
    assert (result.snapshots, result.markets, result.snapshot_ids) == (0, 0, [])
    assert await store.partitions() == []


async def test_a_snapshot_without_markets_is_a_sighting(store: OddsStore, world: World) -> None:
    event, bookmaker = world.events[0], world.bookmakers[0]
    result = await store.write_snapshots([snapshot(event, bookmaker, datetime.now(UTC), [])])
    assert (result.snapshots, result.markets) == (1, 0)
    assert len(await store.snapshots(event.id)) == 1
    assert await store.latest_odds(event.id) == []


async def test_scrape_run_is_recorded_on_snapshots(store: OddsStore, world: World) -> None:
    run = await store.start_scrape_run("scheduled")
    await store.write_snapshots(
        [snapshot(world.events[0], world.bookmakers[0], datetime.now(UTC))], scrape_run_id=run.id
    )
    (snap,) = await store.snapshots(world.events[0].id)
    assert snap.scrape_run_id == run.id and snap.raw_response is None
