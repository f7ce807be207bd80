"""0005_change_only on a database that already holds odds: every answer stays the same, and
rolling back gives back market_odds row for row."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import asyncpg
from reference_model import Model, Snapshot, line_order, rows, store_rows, unordered
from yoyo import get_backend, read_migrations

from oddsstore import OddsStore, jsonb, migrations
from oddsstore.paths import sql_directory

MARKET_ODDS = """
select snapshot_id, captured_at, event_id, line, handicap_home, handicap_away,
       betpawa_market_id, betpawa_market_name, handicap_type, outcomes::text
from market_odds order by 1, 7, 4
"""


def migrate_to(dsn: str, last: str) -> None:
    with get_backend(migrations.yoyo_url(dsn)) as backend:
        chosen = read_migrations(str(sql_directory("schema"))).filter(lambda m: m.id <= last)
        backend.apply_migrations(backend.to_apply(chosen))


def rollback_to(dsn: str, last: str) -> None:
    with get_backend(migrations.yoyo_url(dsn)) as backend:
        chosen = read_migrations(str(sql_directory("schema"))).filter(lambda m: m.id > last)
        backend.rollback_migrations(backend.to_rollback(chosen))


def history() -> Model:
    """Two pairs over two days: changes, an unchanged market, a suspension, a market that
    disappears and comes back, a snapshot with no markets."""
    yesterday = datetime.combine(datetime.now(UTC).date() - timedelta(days=1), time(22), UTC)
    steady = ("1X2", (("1", 1.9, True), ("X", 3.3, True), ("2", 4.0, True)))
    model = Model()
    for step in range(6):
        at = yesterday + timedelta(hours=step)
        total = ("Over/Under", (("Over", 1.8 + step / 100, step != 2), ("Under", 2.0, step != 2)))
        markets = {("3743", None): steady}
        if step not in (3, 4):
            markets[("18", 2.5)] = total
        model.snapshots.append(Snapshot(1, 1, at, markets if step != 5 else {}))
        model.snapshots.append(Snapshot(1, 2, at + timedelta(minutes=1), {("3743", None): steady}))
    return model


async def load_old_schema(dsn: str, model: Model) -> None:
    """Write the model as the 0001-0004 schema's write path did: full snapshots in market_odds."""
    connection = await asyncpg.connect(dsn)
    await jsonb.register(connection)
    try:
        sport = await connection.fetchval("insert into sports (name, slug) values ('Football', 'f') returning id")
        tournament = await connection.fetchval(
            "insert into tournaments (sport_id, name) values ($1, 'League') returning id", sport
        )
        await connection.execute(
            "insert into events (tournament_id, betpawa_event_id, home_team, away_team, kickoff) "
            "values ($1, 'e1', 'H', 'A', now() + interval '1 day')",
            tournament,
        )
        await connection.execute("insert into bookmakers (name, slug) values ('A', 'a'), ('B', 'b')")
        for snapshot in model.snapshots:
            day = snapshot.at.date()
            await connection.execute("select oddsstore_ensure_partitions($1, $1)", day)
            snapshot_id = await connection.fetchval(
                "insert into odds_snapshots (event_id, bookmaker_id, captured_at) values ($1, $2, $3) returning id",
                snapshot.event,
                snapshot.bookmaker,
                snapshot.at,
            )
            for (market_id, line), (name, outcomes) in snapshot.markets.items():
                await connection.execute(
                    "insert into market_odds (snapshot_id, captured_at, event_id, line, betpawa_market_id, "
                    "betpawa_market_name, outcomes) values ($1, $2, $3, $4, $5, $6, $7)",
                    snapshot_id,
                    snapshot.at,
                    snapshot.event,
                    line,
                    market_id,
                    name,
                    [{"name": n, "odds": o, "is_active": a} for n, o, a in outcomes],
                )
            await connection.execute(
                "insert into latest_snapshots values ($1, $2, $3, $4) on conflict (event_id, bookmaker_id) "
                "do update set snapshot_id = excluded.snapshot_id, captured_at = excluded.captured_at",
                snapshot.event,
                snapshot.bookmaker,
                snapshot_id,
                snapshot.at,
            )
    finally:
        await connection.close()


async def market_odds_rows(dsn: str) -> list[tuple]:
    connection = await asyncpg.connect(dsn)
    try:
        return [tuple(row) for row in await connection.fetch(MARKET_ODDS)]
    finally:
        await connection.close()


async def test_migrating_live_data_keeps_every_answer(empty_dsn: str) -> None:
    model = history()
    migrate_to(empty_dsn, "0004_partitions")
    await load_old_schema(empty_dsn, model)
    before = await market_odds_rows(empty_dsn)

    migrations.apply(empty_dsn)

    async with OddsStore.connect(empty_dsn, min_size=1, max_size=1) as store:
        assert unordered(store_rows(await store.latest_odds(1))) == unordered(
            rows(model.latest_at_or_before(1, datetime.max.replace(tzinfo=UTC)))
        )
        moments = sorted({s.at + timedelta(seconds=d) for s in model.snapshots for d in (-1, 0, 30)})
        for at in moments:
            assert unordered(store_rows(await store.odds_at(1, at))) == unordered(
                rows(model.latest_at_or_before(1, at))
            ), at
        for market_id in ("3743", "18"):
            expected = sorted(rows(model.kept(1), market_id), key=line_order)
            assert store_rows(await store.odds_history(1, market_id)) == expected
        changes = await store.pool.fetchval("select count(*) from market_changes")
        # Bookmaker 1: 1X2 five times, the total three; bookmaker 2: 1X2 six times. Changes: 1X2
        # listed and gone (bookmaker 1), listed (bookmaker 2); the total listed, repriced,
        # suspended, gone. 0011 adds a checkpoint of the unchanged 1X2 at each pair's first
        # snapshot of today.
        assert (len(before), changes) == (5 + 3 + 6, 2 + 1 + 4 + 2)

    rollback_to(empty_dsn, "0004_partitions")
    assert await market_odds_rows(empty_dsn) == before
