"""What real scrapers hand over (tests/realdata.py, from REALDATA.md) is stored, and every read
answers what a person reading those feeds would expect: multi-row markets are one market,
placeholder prices are never offers, a reorder is no change, one bad snapshot does not sink a
cycle, events are matched across bookmakers, retries are idempotent."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import realdata as rd
from conftest import Server
from test_roles import login_roles

from oddsstore import (
    Bookmaker,
    DuplicateSnapshotError,
    Event,
    InvalidInputError,
    OddsStore,
    Outcome,
)


@dataclass
class Scene:
    store: OddsStore
    tournament_id: int
    betpawa: Bookmaker
    sporty: Bookmaker
    bet9ja: Bookmaker
    events: list[Event]  # both listed everywhere; the third only at SportyBet and Bet9ja


@pytest.fixture
async def scene(store: OddsStore) -> Scene:
    sport = await store.upsert_sport("Football", "football")
    tournament = await store.upsert_tournament(sport.id, "Premier League", "England")
    betpawa, sporty, bet9ja = [await store.upsert_bookmaker(n, n.lower()) for n in ("BetPawa", "SportyBet", "Bet9ja")]
    kickoff = datetime.now(UTC) + timedelta(days=1)
    events = await store.upsert_events(
        [
            {
                "tournament_id": tournament.id,
                "sportradar_id": f"sr:match:{n}",
                "home_team": f"Home {n}",
                "away_team": f"Away {n}",
                "kickoff": kickoff,
                "bookmakers": [
                    {"bookmaker_id": b.id, "bookmaker_event_id": f"{b.slug}-{n}", "event_url": f"https://{b.slug}/{n}"}
                    for b in ((betpawa, sporty, bet9ja) if n < 3 else (sporty, bet9ja))
                ],
            }
            for n in (1, 2, 3)
        ]
    )
    return Scene(store, tournament.id, betpawa, sporty, bet9ja, events)


def ago(minutes: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes)


async def count(store: OddsStore, table: str) -> int:
    return int(await store.pool.fetchval(f"select count(*) from {table}"))


def by_key(markets: list[Any]) -> dict[tuple[int, str, float | None], Any]:
    return {(m.bookmaker_id, m.betpawa_market_id, m.line): m for m in markets}


# --- market rows ---------------------------------------------------------------------------------


async def test_betpawa_markets_listed_in_several_rows_are_one_market(scene: Scene) -> None:
    event = scene.events[0]
    snapshot = rd.betpawa(event.id, scene.betpawa.id, ago(5))
    assert len(snapshot["markets"]) == 3 + 15 + 49 + 2
    result = await scene.store.write_snapshots([snapshot])
    assert (result.snapshots, result.markets) == (1, 6)

    latest = by_key(await scene.store.latest_odds(event.id))
    assert len(latest) == 6
    score = latest[(scene.betpawa.id, rd.CORRECT_SCORE, None)]
    assert [o.name for o in score.outcomes] == sorted(rd.SCORES)
    assert len(latest[(scene.betpawa.id, rd.GOALSCORER, None)].outcomes) == 49
    combo = latest[(scene.betpawa.id, rd.COMBO, 2.5)]
    assert [o.name for o in combo.outcomes] == ["1 & Over", "1 & Under", "X & Over", "X & Under"]
    # BetPawa's handicap is its line only.
    handicap = latest[(scene.betpawa.id, rd.ASIAN_HANDICAP, -1.5)]
    assert (handicap.handicap_type, handicap.handicap_home, handicap.handicap_away) == (None, None, None)
    # One change row per market, not per row.
    assert await count(scene.store, "market_changes") == 6


async def test_rows_of_one_market_that_disagree_on_its_name_make_the_snapshot_invalid(scene: Scene) -> None:
    snapshot = rd.betpawa(scene.events[0].id, scene.betpawa.id, ago(5))
    snapshot["markets"][-1]["betpawa_market_name"] = "Something else"
    with pytest.raises(InvalidInputError, match=r"snapshots\[0\]\.markets\[68\].*another name or handicap"):
        await scene.store.write_snapshots([snapshot])
    assert await count(scene.store, "odds_snapshots") == 0


async def test_a_row_that_changes_in_a_multi_row_market_changes_that_market_only(scene: Scene) -> None:
    """Through the write memory: one goalscorer row of 49 moves, one correct-score row goes."""
    event = scene.events[0]
    first = rd.betpawa(event.id, scene.betpawa.id, ago(10))
    await scene.store.write_snapshots([first])
    second = rd.betpawa(event.id, scene.betpawa.id, ago(5))
    second["markets"][20]["outcomes"][0]["odds"] = 9.5  # a goalscorer row
    del second["markets"][5]  # a correct-score row (3 scores) disappears
    await scene.store.write_snapshots([second])
    changes = await scene.store.pool.fetch(
        "select betpawa_market_id, jsonb_array_length(outcomes) as n from market_changes where captured_at = $1 "
        "order by 1",
        second["captured_at"],
    )
    assert [(r["betpawa_market_id"], r["n"]) for r in changes] == [(rd.CORRECT_SCORE, 42), (rd.GOALSCORER, 49)]
    latest = by_key(await scene.store.latest_odds(event.id))
    scorer = {o.name: o.odds for o in latest[(scene.betpawa.id, rd.GOALSCORER, None)].outcomes}
    assert scorer["Player 02"] == 9.5
    # A fresh store (no memory) sends the snapshot whole and agrees.
    async with OddsStore.connect(scene.store._dsn, min_size=1, max_size=1) as fresh:
        again = rd.betpawa(event.id, scene.betpawa.id, ago(1))
        again["markets"][20]["outcomes"][0]["odds"] = 9.5
        del again["markets"][5]
        await fresh.write_snapshots([again])
    assert await count(scene.store, "market_changes") == 6 + 2


# --- prices and suspensions ----------------------------------------------------------------------


async def test_placeholder_prices_are_stored_as_given_and_never_offers(scene: Scene) -> None:
    event = scene.events[0]
    at = ago(2)
    result = await scene.store.write_snapshots(
        [
            rd.betpawa_in_play(event.id, scene.betpawa.id, at),
            rd.sportybet(event.id, scene.sporty.id, at, suspended="0.00"),
            rd.bet9ja(event.id, scene.bet9ja.id, at, suspended_home=True),
        ]
    )
    assert result.snapshots == 3
    latest = by_key(await scene.store.latest_odds(event.id))
    assert latest[(scene.betpawa.id, rd.ONE_X_TWO, None)].outcomes[0] == Outcome(name="1", odds=100.0, is_active=False)
    assert latest[(scene.sporty.id, rd.ONE_X_TWO, None)].outcomes[1] == Outcome(name="2", odds=0.0, is_active=False)
    bet9ja_home = latest[(scene.bet9ja.id, rd.ONE_X_TWO, None)].outcomes[0]
    assert bet9ja_home == Outcome(name="1", odds=1.0, is_active=True) and not bet9ja_home.is_offer

    compared = {
        row.outcome: row
        for row in await scene.store.compare_event(event.id, home_bookmaker_id=scene.betpawa.id)
        if row.betpawa_market_id == rd.ONE_X_TWO
    }
    # Home: Bet9ja's "1" and BetPawa's 100.0 are placeholders: SportyBet's 2.05 is the best.
    assert compared["1"].best_odds == 2.05 and compared["1"].best_bookmaker_ids == [scene.sporty.id]
    assert compared["1"].prices == {scene.betpawa.id: None, scene.sporty.id: 2.05, scene.bet9ja.id: None}
    assert compared["1"].home_odds is None and compared["1"].gap_pct is None
    assert compared["2"].best_bookmaker_ids == [scene.bet9ja.id]  # SportyBet's 0.00 is suspended
    # Margins: no market with a placeholder is counted.
    margins = {(m.bookmaker_id, m.betpawa_market_id) for m in await scene.store.margins(event_id=event.id)}
    assert (scene.betpawa.id, rd.ONE_X_TWO) not in margins
    assert (scene.sporty.id, rd.ONE_X_TWO) not in margins
    assert (scene.bet9ja.id, rd.ONE_X_TWO) not in margins
    assert (scene.bet9ja.id, rd.DOUBLE_CHANCE) in margins
    assert await scene.store.arbitrage(timedelta(hours=1)) == []


async def test_a_placeholder_never_makes_an_arbitrage_or_a_steam_move(scene: Scene) -> None:
    """Bet9ja's suspended "1" and a null price between real prices: no arbitrage from the
    placeholder, and going from 2.0 to a placeholder and back is no drop."""
    event = scene.events[1]
    start = ago(30)
    for step, home in enumerate((2.0, 1.0, None, 2.0)):
        snapshot = rd.bet9ja(event.id, scene.bet9ja.id, start + timedelta(minutes=5 * step))
        snapshot["markets"][0]["outcomes"][0]["odds"] = home
        await scene.store.write_snapshots([snapshot])
    # A competitor with a generous price on the other outcomes: with the placeholder counted,
    # 1/1.0 would already make the sum above 1; with it ignored there is no complete set.
    assert await scene.store.arbitrage(timedelta(hours=1)) == []
    moves = await scene.store.steam_moves(start, min_drop_pct=10, window=timedelta(hours=1))
    assert moves == []
    opening = {
        row.outcome: row for row in await scene.store.opening_closing(event.id) if row.betpawa_market_id == rd.ONE_X_TWO
    }
    assert opening["1"].opening_odds == 2.0 and opening["1"].closing_odds == 2.0
    history = await scene.store.line_movement(event.id, rd.ONE_X_TWO)
    assert [m.outcomes[0].odds for m in history if m.outcomes] == [2.0, 1.0, None, 2.0]


@pytest.mark.parametrize(
    ("odds", "message"),
    [
        (-1.85, "greater than or equal to 0"),
        (math.nan, "finite number"),
        (math.inf, "finite number"),
        ("1.85", "valid number"),
    ],
)
async def test_negative_nan_infinite_and_text_prices_stay_invalid(scene: Scene, odds: Any, message: str) -> None:
    snapshot = rd.bet9ja(scene.events[0].id, scene.bet9ja.id, ago(1))
    snapshot["markets"][1]["outcomes"][2]["odds"] = odds
    with pytest.raises(InvalidInputError, match=rf"snapshots\[0\]\.markets\[1\]\.outcomes\[2\]\.odds.*{message}"):
        await scene.store.write_snapshots([snapshot])
    assert await count(scene.store, "odds_snapshots") == 0


async def test_reordered_outcomes_are_no_change(scene: Scene) -> None:
    event = scene.events[0]
    await scene.store.write_snapshots([rd.bet9ja(event.id, scene.bet9ja.id, ago(10))])
    before = await count(scene.store, "market_changes")
    await scene.store.write_snapshots([rd.bet9ja(event.id, scene.bet9ja.id, ago(5), reverse=True)])
    await scene.store.write_snapshots([rd.bet9ja(event.id, scene.bet9ja.id, ago(1))])
    assert await count(scene.store, "market_changes") == before
    (chance,) = [m for m in await scene.store.latest_odds(event.id) if m.betpawa_market_id == rd.DOUBLE_CHANCE]
    assert [o.name for o in chance.outcomes] == ["12", "1X", "X2"]  # by name, whatever the order given
    assert len(await scene.store.line_movement(event.id, rd.DOUBLE_CHANCE)) == 1


async def test_an_outcome_listed_twice_at_one_price_is_one_and_at_two_prices_is_invalid(scene: Scene) -> None:
    event = scene.events[0]
    snapshot = rd.repeated_names(event.id, scene.betpawa.id, ago(1))
    with pytest.raises(InvalidInputError, match=r"snapshots\[0\]\.markets\[1\].*'0-1' is listed twice"):
        await scene.store.write_snapshots([snapshot])
    del snapshot["markets"][1]
    await scene.store.write_snapshots([snapshot])
    (scorer,) = await scene.store.latest_odds(event.id)
    assert [o.name for o in scorer.outcomes] == ["Both Teams", "Home"]


async def test_keys_the_store_does_not_model_are_ignored_or_rejected(scene: Scene) -> None:
    event = scene.events[0]
    snapshot = rd.sportybet(event.id, scene.sporty.id, ago(3))
    snapshot["markets"][0]["outcomes"][0]["display_order"] = 1
    with pytest.raises(InvalidInputError, match=r"snapshots\[0\]\.markets\[0\].*Extra inputs are not permitted"):
        await scene.store.write_snapshots([snapshot], unknown_keys="reject")
    assert await count(scene.store, "odds_snapshots") == 0
    await scene.store.write_snapshots([snapshot])
    stored = await scene.store.pool.fetchval("select outcomes::text from market_current limit 1")
    assert "display_order" not in stored and "market_groups" not in stored


# --- one bad snapshot does not sink a cycle -------------------------------------------------------


def cycle(scene: Scene, at: datetime) -> list[dict[str, Any]]:
    """Seven snapshots of a cycle; the fifth (Bet9ja, event 2) has an outcome listed twice with
    two prices."""
    snapshots = [
        rd.betpawa(scene.events[0].id, scene.betpawa.id, at),
        rd.sportybet(scene.events[0].id, scene.sporty.id, at),
        rd.bet9ja(scene.events[0].id, scene.bet9ja.id, at),
        rd.sportybet(scene.events[1].id, scene.sporty.id, at),
        rd.bet9ja(scene.events[1].id, scene.bet9ja.id, at),
        rd.sportybet(scene.events[2].id, scene.sporty.id, at),
        rd.bet9ja(scene.events[2].id, scene.bet9ja.id, at),
    ]
    snapshots[4]["markets"][1]["outcomes"].append({"name": "12", "odds": 1.4, "is_active": True})
    return snapshots


async def test_one_bad_snapshot_sinks_the_cycle_by_default(scene: Scene) -> None:
    with pytest.raises(InvalidInputError, match=r"snapshots\[4\]\.markets\[1\].*'12' is listed twice"):
        await scene.store.write_snapshots(cycle(scene, ago(1)))
    assert await count(scene.store, "odds_snapshots") == 0


async def test_skip_stores_every_valid_snapshot_and_records_the_bad_one(scene: Scene) -> None:
    store, bad_event = scene.store, scene.events[1]
    await store.write_snapshots([rd.bet9ja(bad_event.id, scene.bet9ja.id, ago(20))])
    run = await store.start_scrape_run("scheduled")
    at = ago(1)
    result = await store.write_snapshots(cycle(scene, at), scrape_run_id=run.id, on_invalid="skip")
    assert result.snapshots == 6 and len(result.snapshot_ids) == 6
    (skipped,) = result.skipped
    assert (skipped.position, skipped.path) == (4, "snapshots[4].markets[1]")
    assert "'12' is listed twice" in skipped.reason
    assert (skipped.event_id, skipped.bookmaker_id, skipped.captured_at) == (bad_event.id, scene.bet9ja.id, at)
    (error,) = await store.scrape_errors(run.id)
    assert (error.error_type, error.event_id, error.bookmaker_id) == ("parse_error", bad_event.id, scene.bet9ja.id)
    assert "snapshots[4].markets[1]" in error.error_message
    # The pair keeps its state from before, and stale_odds says why it may be stale.
    latest = [m for m in await store.latest_odds(bad_event.id) if m.bookmaker_id == scene.bet9ja.id]
    assert {m.captured_at for m in latest} == {ago(20)} or all(m.captured_at < at for m in latest)
    stale = {(s.event_id, s.bookmaker_id): s.reasons for s in await store.stale_odds(timedelta(hours=1))}
    assert stale == {
        (bad_event.id, scene.bet9ja.id): ["errors_since_snapshot"],
        (bad_event.id, scene.betpawa.id): ["no_snapshot"],  # not in the cycle at all
    }


async def test_skip_covers_bad_snapshot_fields_too(scene: Scene) -> None:
    good = rd.sportybet(scene.events[0].id, scene.sporty.id, ago(1))
    naive = rd.bet9ja(scene.events[0].id, scene.bet9ja.id, ago(1).replace(tzinfo=None))
    result = await scene.store.write_snapshots([naive, good], on_invalid="skip")
    assert result.snapshots == 1
    (skipped,) = result.skipped
    assert skipped.path == "snapshots[0].captured_at" and "tzinfo=UTC" in skipped.reason
    assert (skipped.event_id, skipped.captured_at) == (scene.events[0].id, None)


# --- events across bookmakers --------------------------------------------------------------------


async def test_events_are_matched_by_sportradar_id_or_by_a_bookmakers_own_id(scene: Scene) -> None:
    store, (first, second, competitor_only) = scene.store, scene.events
    assert (first.sportradar_id, first.betpawa_event_id) == ("sr:match:1", "betpawa-1")
    assert competitor_only.betpawa_event_id is None
    assert await store.find_event(sportradar_id="sr:match:3") == competitor_only
    assert await store.find_event(bookmaker_id=scene.bet9ja.id, bookmaker_event_id="bet9ja-2") == second
    assert await store.find_event(sportradar_id="sr:match:404") is None
    with pytest.raises(InvalidInputError, match="find_event takes"):
        await store.find_event(sportradar_id="sr:match:1", bookmaker_id=scene.bet9ja.id, bookmaker_event_id="x")

    # A competitor-only event is written like any other.
    await store.write_snapshots([rd.sportybet(competitor_only.id, scene.sporty.id, ago(1))])
    assert {m.bookmaker_id for m in await store.latest_odds(competitor_only.id)} == {scene.sporty.id}

    # An event first seen without a SportRadar id is found by its link, and learns the id later.
    kickoff = first.kickoff
    (lone,) = await store.upsert_events(
        [
            {
                "tournament_id": scene.tournament_id,
                "home_team": "Lone",
                "away_team": "Star",
                "kickoff": kickoff,
                "bookmakers": [{"bookmaker_id": scene.sporty.id, "bookmaker_event_id": "sporty-lone"}],
            }
        ]
    )
    assert lone.sportradar_id is None
    (learnt,) = await store.upsert_events(
        [
            {
                "tournament_id": scene.tournament_id,
                "sportradar_id": "sr:match:77",
                "home_team": "Lone",
                "away_team": "Star",
                "kickoff": kickoff,
                "bookmakers": [
                    {"bookmaker_id": scene.sporty.id, "bookmaker_event_id": "sporty-lone"},
                    {"bookmaker_id": scene.betpawa.id, "bookmaker_event_id": "bp-lone"},
                ],
            }
        ]
    )
    assert (learnt.id, learnt.sportradar_id, learnt.betpawa_event_id) == (lone.id, "sr:match:77", "bp-lone")
    assert await count(store, "events") == 4


async def test_re_registering_the_same_events_writes_nothing(scene: Scene) -> None:
    store = scene.store
    versions = "select array_agg(xmin::text order by id) from {}"
    events_before = await store.pool.fetchval(versions.format("events"))
    links_before = await store.pool.fetchval(
        "select array_agg(xmin::text order by event_id, bookmaker_id) from event_bookmakers"
    )
    given = [
        {
            "tournament_id": e.tournament_id,
            "sportradar_id": e.sportradar_id,
            "home_team": e.home_team,
            "away_team": e.away_team,
            "kickoff": e.kickoff,
        }
        for e in scene.events
    ]
    assert await store.upsert_events(given) == scene.events
    again = await store.upsert_event(
        scene.events[0].tournament_id, "betpawa-1", "Home 1", "Away 1", scene.events[0].kickoff
    )
    assert again == scene.events[0]
    assert await store.pool.fetchval(versions.format("events")) == events_before
    assert (
        await store.pool.fetchval("select array_agg(xmin::text order by event_id, bookmaker_id) from event_bookmakers")
        == links_before
    )
    # A rescheduled match moves its kickoff (one row version, the same event).
    moved = await store.upsert_events([given[1] | {"kickoff": scene.events[1].kickoff + timedelta(hours=2)}])
    assert moved[0].id == scene.events[1].id and moved[0].kickoff == scene.events[1].kickoff + timedelta(hours=2)


async def test_event_keys_given_twice_or_linked_elsewhere_are_refused(scene: Scene) -> None:
    event = {"tournament_id": scene.tournament_id, "home_team": "H", "away_team": "A", "kickoff": ago(-60)}
    with pytest.raises(InvalidInputError, match=r"events\[0\] and events\[1\] both have sportradar_id"):
        await scene.store.upsert_events([event | {"sportradar_id": "x"}, event | {"sportradar_id": "x"}])
    with pytest.raises(InvalidInputError, match=r"events\[0\].*sportradar_id or at least one bookmaker link"):
        await scene.store.upsert_events([event])
    with pytest.raises(InvalidInputError, match="naive datetime"):
        await scene.store.upsert_events([event | {"sportradar_id": "y", "kickoff": datetime(2030, 1, 1)}])
    # BetPawa's "betpawa-1" belongs to event 1: another event cannot claim it.
    taken = {"bookmaker_id": scene.betpawa.id, "bookmaker_event_id": "betpawa-1"}
    with pytest.raises(InvalidInputError, match="betpawa-1"):
        await scene.store.upsert_events([event | {"sportradar_id": "sr:match:9", "bookmakers": [taken]}])
    assert await count(scene.store, "events") == 3


# --- idempotent retries --------------------------------------------------------------------------


async def test_a_retried_batch_is_a_no_op_and_a_different_one_an_error(scene: Scene) -> None:
    store, at = scene.store, ago(3)
    batch = [
        rd.betpawa(scene.events[0].id, scene.betpawa.id, at),
        rd.bet9ja(scene.events[0].id, scene.bet9ja.id, at),
    ]
    first = await store.write_snapshots(batch)
    rows = await count(store, "market_changes")
    # Re-sent after a lost connection: by the same store (it remembers) and by a new process.
    again = await store.write_snapshots(batch)
    assert (again.snapshots, again.already_stored, again.snapshot_ids) == (0, [0, 1], [])
    async with OddsStore.connect(store._dsn, min_size=1, max_size=1) as fresh:
        reordered = [batch[1], rd.bet9ja(scene.events[1].id, scene.bet9ja.id, at), batch[0]]
        reordered[0] = rd.bet9ja(scene.events[0].id, scene.bet9ja.id, at, reverse=True)
        result = await fresh.write_snapshots(reordered)
        assert (result.snapshots, result.already_stored) == (1, [0, 2])
        changed = rd.bet9ja(scene.events[0].id, scene.bet9ja.id, at, suspended_home=True)
        with pytest.raises(DuplicateSnapshotError, match=r"snapshots\[1\] \(event_id=.*already stored with other"):
            await fresh.write_snapshots([rd.sportybet(scene.events[1].id, scene.sporty.id, at), changed])
    assert await count(store, "market_changes") == rows + 2
    assert await count(store, "odds_snapshots") == 3
    assert first.snapshot_ids[0] == (await store.latest_odds(scene.events[0].id))[0].snapshot_id


async def test_a_different_retry_is_named_for_the_writer_role_too(pg_server: Server, dsn: str, scene: Scene) -> None:
    at = ago(3)
    await scene.store.write_snapshots([rd.bet9ja(scene.events[0].id, scene.bet9ja.id, at)])
    async with (
        login_roles(pg_server, dsn) as logins,
        OddsStore.connect(logins.writer, min_size=1, max_size=1) as writer,
    ):
        assert (await writer.write_snapshots([rd.bet9ja(scene.events[0].id, scene.bet9ja.id, at)])).already_stored == [
            0
        ]
        changed = rd.bet9ja(scene.events[0].id, scene.bet9ja.id, at, suspended_home=True)
        with pytest.raises(
            DuplicateSnapshotError, match=r"snapshots\[0\] \(event_id=\d+, bookmaker_id=\d+, captured_at="
        ):
            await writer.write_snapshots([changed])
        # The writer registers events in bulk too (it draws event ids itself).
        (event,) = await writer.upsert_events(
            [
                {
                    "tournament_id": scene.tournament_id,
                    "sportradar_id": "sr:match:writer",
                    "home_team": "H",
                    "away_team": "A",
                    "kickoff": ago(-60),
                    "bookmakers": [{"bookmaker_id": scene.sporty.id, "bookmaker_event_id": "w-1"}],
                }
            ]
        )
        assert event.id > scene.events[-1].id


async def test_naive_datetimes_are_refused_with_how_to_fix_it(scene: Scene) -> None:
    snapshot = rd.bet9ja(scene.events[0].id, scene.bet9ja.id, datetime.utcnow())  # noqa: DTZ003 (the scrapers' clock)
    with pytest.raises(InvalidInputError, match=r"snapshots\[0\]\.captured_at.*replace\(tzinfo=UTC\)"):
        await scene.store.write_snapshots([snapshot])


# --- several cycles ------------------------------------------------------------------------------


async def test_several_cycles_with_moves_suspensions_and_disappearing_markets(scene: Scene) -> None:
    """Four cycles, ten minutes apart, of event 1 at all three bookmakers: BetPawa's home price
    drops 2.10 -> 1.80 (a steam move, SportyBet following from 2.05), SportyBet suspends its away outcome at
    "1.00" in cycle 3, Bet9ja's double chance disappears in cycle 3 and comes back reordered."""
    store, event = scene.store, scene.events[0]
    start = ago(45)
    times = [start + timedelta(minutes=10 * n) for n in range(4)]
    for n, at in enumerate(times):
        pawa = rd.betpawa(event.id, scene.betpawa.id, at, home=2.1 if n < 2 else 1.8)
        sporty = rd.sportybet(
            event.id, scene.sporty.id, at, home=2.05 if n < 2 else 1.8, suspended="1.00" if n == 2 else None
        )
        nine = rd.bet9ja(event.id, scene.bet9ja.id, at, reverse=n == 3)
        if n == 2:
            del nine["markets"][1]
        await store.write_snapshots([pawa, sporty, nine])

    history = await store.odds_history(event.id, rd.ONE_X_TWO, bookmaker_id=scene.sporty.id)
    assert [(m.captured_at, m.outcomes[0].odds, m.outcomes[1].is_active) for m in history] == [  # 1, 2, X
        (times[0], 2.05, True),
        (times[1], 2.05, True),
        (times[2], 1.8, False),
        (times[3], 1.8, True),
    ]
    at_cycle_3 = by_key(await store.odds_at(event.id, times[2] + timedelta(minutes=1)))
    assert (scene.bet9ja.id, rd.DOUBLE_CHANCE, None) not in at_cycle_3
    assert (scene.bet9ja.id, rd.DOUBLE_CHANCE, None) in by_key(await store.latest_odds(event.id))
    # The double chance: listed, gone, back (reordered but the same): three changes.
    assert [m.outcomes is None for m in await store.line_movement(event.id, rd.DOUBLE_CHANCE)] == [False, True, False]

    moves = await store.steam_moves(times[1], min_drop_pct=10, window=timedelta(minutes=30))
    assert {(m.bookmaker_id, m.outcome, m.odds) for m in moves} == {
        (scene.betpawa.id, "1", 1.8),
        (scene.sporty.id, "1", 1.8),
    }
    assert {m.bookmakers_dropping for m in moves} == {2}
    opening = {
        (row.bookmaker_id, row.outcome): row
        for row in await store.opening_closing(event.id)
        if row.betpawa_market_id == rd.ONE_X_TWO
    }
    assert opening[(scene.sporty.id, "2")].closing_active is True
    assert round(opening[(scene.betpawa.id, "1")].movement_pct or 0, 2) == round((1.8 / 2.1 - 1) * 100, 2)
    # BetPawa and SportyBet name the 1X2 differently; compare_event lines them up by market id.
    compared = [r for r in await store.compare_event(event.id) if r.betpawa_market_id == rd.ONE_X_TWO]
    assert [r.outcome for r in compared] == ["1", "2", "X"]
    assert compared[0].best_odds == 2.0 and compared[0].best_bookmaker_ids == [scene.bet9ja.id]
