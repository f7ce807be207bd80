"""0007_real_data on a database that already holds events and odds: BetPawa event ids move into
event_bookmakers, every market row gets its line key and the tables their primary keys, nothing
else changes; rolling back gives back 0006's tables row for row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from test_migration_0005 import migrate_to, rollback_to
from yoyo import get_backend, read_migrations

from oddsstore import OddsStore, jsonb, migrations
from oddsstore.paths import sql_directory

CHANGES = """
select event_id, bookmaker_id, captured_at, line, handicap_home, handicap_away, betpawa_market_id,
       betpawa_market_name, handicap_type, outcomes::text
from market_changes order by 1, 2, 3, 7, 4 nulls first
"""
CURRENT = """
select event_id, bookmaker_id, changed_at, line, betpawa_market_id, betpawa_market_name, outcomes::text
from market_current order by 1, 2, 5, 4 nulls first
"""
EVENTS = "select id, tournament_id, betpawa_event_id, home_team, away_team, kickoff from events order by id"
LINKS = "select event_id, bookmaker_id, bookmaker_event_id, event_url from event_bookmakers order by 1, 2"


async def load_0006(dsn: str, *, with_betpawa: bool) -> datetime:
    """Two events and their odds as 0006's schema holds them; returns the snapshot time."""
    connection = await asyncpg.connect(dsn)
    await jsonb.register(connection)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    try:
        await connection.execute("insert into sports (name, slug) values ('Football', 'football')")
        await connection.execute("insert into tournaments (sport_id, name) values (1, 'League')")
        await connection.execute(
            "insert into events (tournament_id, betpawa_event_id, home_team, away_team, kickoff) values "
            "(1, 'bp-1', 'H1', 'A1', $1), (1, 'bp-2', 'H2', 'A2', $1)",
            at + timedelta(days=1),
        )
        slugs = ["sportybet", "betpawa"] if with_betpawa else ["sportybet"]
        for slug in slugs:
            await connection.execute("insert into bookmakers (name, slug) values ($1, $1)", slug)
        # SportyBet's link with its own id; with BetPawa, a link that already names bp-1.
        await connection.execute(
            "insert into event_bookmakers values (1, 1, 'sb-1', 'https://sportybet/1'), (2, 1, null, null)"
        )
        if with_betpawa:
            await connection.execute("insert into event_bookmakers values (1, 2, 'bp-1', 'https://betpawa/1')")
        await connection.execute("select oddsstore_ensure_partitions($1, $1)", at.date())
        outcomes = [{"name": "Over", "odds": 1.9, "is_active": True}, {"name": "Under", "odds": 1.9, "is_active": True}]
        for event in (1, 2):
            await connection.execute(
                "insert into odds_snapshots (event_id, bookmaker_id, captured_at) values ($1, 1, $2)", event, at
            )
            await connection.execute("insert into latest_snapshots values ($1, 1, $2, $3)", event, event, at)
            for market_id, line in (("3743", None), ("5000", 2.5), ("5000", 3.5)):
                for table, time_column in (("market_changes", "captured_at"), ("market_current", "changed_at")):
                    await connection.execute(
                        f"insert into {table} (event_id, bookmaker_id, {time_column}, line, betpawa_market_id, "
                        "betpawa_market_name, outcomes) values ($1, 1, $2, $3, $4, 'M', $5)",
                        event,
                        at,
                        line,
                        market_id,
                        outcomes,
                    )
    finally:
        await connection.close()
    return at


async def fetch(dsn: str, query: str) -> list[tuple]:
    connection = await asyncpg.connect(dsn)
    try:
        return [tuple(row) for row in await connection.fetch(query)]
    finally:
        await connection.close()


def applied(dsn: str) -> list[str]:
    with get_backend(migrations.yoyo_url(dsn)) as backend:
        return [m.id for m in backend.to_rollback(read_migrations(str(sql_directory("schema"))))]


async def test_0007_moves_betpawa_ids_keys_lines_and_rolls_back(empty_dsn: str) -> None:
    migrate_to(empty_dsn, "0006_roles")
    at = await load_0006(empty_dsn, with_betpawa=False)
    events, links = await fetch(empty_dsn, EVENTS), await fetch(empty_dsn, LINKS)
    changes, current = await fetch(empty_dsn, CHANGES), await fetch(empty_dsn, CURRENT)

    migrate_to(empty_dsn, "0007_real_data")
    assert await fetch(empty_dsn, CHANGES) == changes
    assert await fetch(empty_dsn, CURRENT) == current
    # BetPawa (created: the ids were its) links every event with its old id.
    assert await fetch(empty_dsn, "select id, name from bookmakers where slug = 'betpawa'") == [(2, "BetPawa")]
    assert await fetch(empty_dsn, LINKS) == [*links[:1], (1, 2, "bp-1", None), *links[1:], (2, 2, "bp-2", None)]
    keys = await fetch(
        empty_dsn,
        "select count(*) filter (where line_key = coalesce(line, 'NaN')), count(*) from market_changes "
        "union all select count(*) filter (where line_key = coalesce(line, 'NaN')), count(*) from market_current",
    )
    assert keys == [(6, 6), (6, 6)]
    primary_keys = await fetch(
        empty_dsn,
        "select conrelid::regclass::text, pg_get_constraintdef(oid) from pg_constraint "
        "where contype = 'p' and conrelid in ('market_changes'::regclass, 'market_current'::regclass) order by 1",
    )
    assert primary_keys == [
        ("market_changes", "PRIMARY KEY (event_id, betpawa_market_id, bookmaker_id, line_key, captured_at)"),
        ("market_current", "PRIMARY KEY (event_id, bookmaker_id, betpawa_market_id, line_key)"),
    ]
    # A NaN line would collide with "no line": refused by the CHECK.
    with pytest.raises(asyncpg.CheckViolationError):
        await fetch(
            empty_dsn,
            "insert into market_current (event_id, bookmaker_id, changed_at, line, line_key, betpawa_market_id, "
            "betpawa_market_name, outcomes) values (1, 1, now(), 'NaN', 'NaN', 'x', 'x', '[]')",
        )

    # The store reads the migrated odds and writes on top of them.
    async with OddsStore.connect(empty_dsn, min_size=1, max_size=1) as store:
        assert [(m.betpawa_market_id, m.line) for m in await store.latest_odds(1)] == [
            ("3743", None),
            ("5000", 2.5),
            ("5000", 3.5),
        ]
        event = await store.find_event(bookmaker_id=2, bookmaker_event_id="bp-2")
        assert event is not None and (event.id, event.betpawa_event_id) == (2, "bp-2")
        await store.write_snapshots(
            [
                {
                    "event_id": 1,
                    "bookmaker_id": 1,
                    "captured_at": at + timedelta(minutes=5),
                    "markets": [
                        {
                            "betpawa_market_id": "5000",
                            "betpawa_market_name": "M",
                            "line": 2.5,
                            "outcomes": [{"name": "Over", "odds": 2.0}, {"name": "Under", "odds": 1.8}],
                        }
                    ],
                }
            ]
        )
        assert [(m.line, m.outcomes[0].odds) for m in await store.latest_odds(1)] == [(2.5, 2.0)]

    rollback_to(empty_dsn, "0006_roles")
    assert applied(empty_dsn)[0] == "0006_roles"
    assert await fetch(empty_dsn, EVENTS) == events
    columns = await fetch(
        empty_dsn,
        "select table_name::text, column_name::text from information_schema.columns "
        "where column_name in ('line_key', 'sportradar_id') order by 1",
    )
    assert columns == []


async def test_0007_refuses_a_betpawa_link_that_names_another_id(empty_dsn: str) -> None:
    migrate_to(empty_dsn, "0006_roles")
    await load_0006(empty_dsn, with_betpawa=True)
    await fetch(empty_dsn, "update event_bookmakers set bookmaker_event_id = 'other' where bookmaker_id = 2")
    with pytest.raises(Exception, match="event 1 has betpawa_event_id 'bp-1', but its BetPawa link names 'other'"):
        migrate_to(empty_dsn, "0007_real_data")
    assert applied(empty_dsn)[0] == "0006_roles"


async def test_rolling_back_0007_refuses_events_without_a_betpawa_id(empty_dsn: str) -> None:
    migrate_to(empty_dsn, "0006_roles")
    await load_0006(empty_dsn, with_betpawa=True)
    links = await fetch(empty_dsn, LINKS)
    migrate_to(empty_dsn, "0007_real_data")
    assert await fetch(empty_dsn, LINKS) == [*links[:2], links[2], (2, 2, "bp-2", None)]
    async with OddsStore.connect(empty_dsn, min_size=1, max_size=1) as store:
        await store.upsert_events(
            [
                {
                    "tournament_id": 1,
                    "sportradar_id": "sr:match:3",
                    "home_team": "H3",
                    "away_team": "A3",
                    "kickoff": datetime.now(UTC) + timedelta(days=1),
                    "bookmakers": [{"bookmaker_id": 1, "bookmaker_event_id": "sb-3"}],
                }
            ]
        )
    with pytest.raises(Exception, match=r"event 3 \(H3 v A3, sportradar_id 'sr:match:3'\) has no BetPawa event id"):
        rollback_to(empty_dsn, "0006_roles")
    assert applied(empty_dsn)[0] == "0007_real_data"
