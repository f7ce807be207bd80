"""Citus: ``oddsstore distribute`` (queries/distribute.sql), its refusal where Citus is absent,
migrations after it, and every per-event read as a single-shard router query. The rest of the
suite runs on the cluster too, through conftest's ``on_citus`` (the write path, the reads,
retention and partitions with concurrent writers, roles).
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from conftest import World, market, snapshot

from oddsstore import CitusMissingError, MigrationError, OddsStore, UnknownReferenceError, migrations
from oddsstore.cli import main

only_citus = pytest.mark.parametrize(
    "oddsstore_server", [pytest.param("citus", marks=pytest.mark.citus)], indirect=True, scope="session"
)

REFERENCE = ["bookmakers", "event_bookmakers", "events", "scrape_runs", "sports", "tournaments"]
DISTRIBUTED = ["latest_snapshots", "market_changes", "market_current", "odds_snapshots"]
STAGE = ["oddsstore_stage_markets", "oddsstore_stage_snapshots"]  # the write path's, on Citus


async def layout(store: OddsStore) -> dict[str, tuple[str, str, int]]:
    """Each Citus table: its type, distribution column and co-location group."""
    rows = await store.pool.fetch(
        "select table_name::text as name, citus_table_type::text as kind, distribution_column::text as column,"
        " colocation_id from citus_tables where not exists (select from pg_inherits where inhrelid = table_name)"
    )  # partitions left out: they follow their parent
    return {row["name"]: (row["kind"], row["column"], row["colocation_id"]) for row in rows}


async def write_some(store: OddsStore, world: World) -> datetime:
    event, (betpawa, sporty, _) = world.events[0], world.bookmakers
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    await store.write_snapshots(
        [
            snapshot(event, betpawa, at, [market("3743"), market("5000", line=2.5, odds=(1.9, 1.95))]),
            snapshot(event, sporty, at, [market("3743", odds=(1.8, 3.5, 4.4))]),
        ]
    )
    await store.write_snapshots(
        [snapshot(event, betpawa, at + timedelta(minutes=10), [market("3743", odds=(1.7, 3.6, 5.0))])]
    )
    return at


@only_citus
async def test_distribute_gives_the_layout_and_changes_nothing_when_run_again(store: OddsStore, dsn: str) -> None:
    # The template of every Citus test was distributed by store.distribute() (conftest).
    before = await layout(store)
    assert {name for name, (kind, _, _) in before.items() if kind == "reference"} == set(REFERENCE)
    assert {name: before[name][:2] for name in DISTRIBUTED + STAGE} == {
        name: ("distributed", "event_id") for name in DISTRIBUTED + STAGE
    }
    assert len({before[name][2] for name in DISTRIBUTED + STAGE}) == 1, "the odds tables are not co-located"
    assert "scrape_errors" not in before  # stays a local table of the coordinator

    await store.distribute()
    assert await asyncio.to_thread(main, ["--dsn", dsn, "distribute"]) == 0
    assert await layout(store) == before
    assert await store.migrate() == []  # migrate with nothing pending: a no-op


@only_citus
async def test_writes_stage_on_the_shards_and_leave_no_row_there(store: OddsStore, world: World) -> None:
    # The merge reads the distributed stage (queries/distribute.sql) that every writer shares: a
    # write's rows are deleted before it commits, and a failed write's go with its rollback.
    at = await write_some(store, world)
    event, bookmaker = world.events[0], world.bookmakers[0]
    unknown = {**snapshot(world.events[1], bookmaker, at), "bookmaker_id": 999_999}
    with pytest.raises(UnknownReferenceError):  # raised by the merge, after the rows were staged
        await store.write_snapshots([snapshot(event, bookmaker, at + timedelta(minutes=20)), unknown])
    for table in STAGE:
        assert await store.pool.fetchval(f"select count(*) from {table}") == 0, table
    assert {m.outcomes[0].odds for m in await store.latest_odds(event.id)} == {1.7, 1.8}


STAGE_COLUMNS = """
select c.relname::text, a.attnum, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attgenerated
from pg_attribute as a
join pg_class as c on c.oid = a.attrelid
where c.relname in ('oddsstore_stage_snapshots', 'oddsstore_stage_markets')
  and c.relpersistence::text = $1
  and a.attnum > 0
  and not a.attisdropped
order by 1, 2
"""


@only_citus
async def test_the_distributed_stage_has_the_columns_of_the_temporary_one(store: OddsStore) -> None:
    # Written twice (create_stage in queries/odds.sql, distribute.sql): the merge names both alike.
    async with store.pool.acquire() as connection, connection.transaction():
        distributed = [tuple(row) for row in await connection.fetch(STAGE_COLUMNS, "u")]
        await store.queries.create_stage(connection)
        temporary = [tuple(row) for row in await connection.fetch(STAGE_COLUMNS, "t")]
    assert len(distributed) == 24
    assert distributed == temporary


@only_citus
async def test_distributing_a_database_with_odds_keeps_them(empty_dsn: str) -> None:
    async with OddsStore.connect(empty_dsn) as store:
        await store.migrate()
        sport = await store.upsert_sport("Football", "football")
        tournament = await store.upsert_tournament(sport.id, "Premier League", "England")
        kickoff = datetime.now(UTC) + timedelta(days=1)
        events = [await store.upsert_event(tournament.id, f"bp-{n}", f"H{n}", f"A{n}", kickoff) for n in (1, 2)]
        books = [await store.upsert_bookmaker(name, name.lower()) for name in ("BetPawa", "SportyBet", "Bet9ja")]
        world = World(events, books)
        at = await write_some(store, world)
        latest = await store.latest_odds(events[0].id)
        history = await store.odds_history(events[0].id, "3743")

        await store.distribute()

        assert set(await layout(store)) == set(REFERENCE) | set(DISTRIBUTED) | set(STAGE)
        assert await store.latest_odds(events[0].id) == latest
        assert await store.odds_history(events[0].id, "3743") == history
        # And writes go on, into the distributed tables.
        await store.write_snapshots([snapshot(events[1], books[0], at + timedelta(minutes=20))])
        assert len(await store.latest_odds(events[1].id)) == 1


@only_citus
async def test_migrations_roll_back_and_apply_again_on_the_distributed_database(
    store: OddsStore, world: World, dsn: str
) -> None:
    # The newest migration rolls back and applies again. Further back, 0010's rollback revokes a
    # column privilege, which Citus refuses (docs/scaling.md): the rollback fails, whole.
    await write_some(store, world)
    latest = await store.latest_odds(world.events[0].id)
    ids = migrations.pending([])
    newest, after_0010 = ids[-1], ids[ids.index("0010_production_writes") + 1 :]
    assert await asyncio.to_thread(migrations.rollback, dsn, 1) == [newest]
    assert await asyncio.to_thread(migrations.apply, dsn) == [newest]
    with pytest.raises(MigrationError, match="column list is currently unsupported"):
        await asyncio.to_thread(migrations.rollback, dsn, len(after_0010) + 1)
    # yoyo rolls back one migration per transaction: those after 0010 went, 0010 stayed.
    assert await store.migrate() == after_0010
    async with OddsStore.connect(dsn) as fresh:
        assert await fresh.latest_odds(world.events[0].id) == latest
        await fresh.write_snapshots(
            [snapshot(world.events[0], world.bookmakers[0], datetime.now(UTC), [market("3743", odds=(2.0, 3.0, 4.0))])]
        )
        assert {m.outcomes[0].odds for m in await fresh.latest_odds(world.events[0].id)} == {2.0, 1.8}


async def test_distribute_refuses_without_citus_and_changes_nothing(store: OddsStore, world: World, dsn: str) -> None:
    await write_some(store, world)
    latest = await store.latest_odds(world.events[0].id)
    with pytest.raises(CitusMissingError, match="citus extension is not installed") as raised:
        await store.distribute()
    assert isinstance(raised.value.__cause__, asyncpg.PostgresError)
    assert raised.value.__cause__.sqlstate == "OD001"
    assert await asyncio.to_thread(main, ["--dsn", dsn, "distribute"]) == 1
    assert await store.latest_odds(world.events[0].id) == latest
    await store.write_snapshots([snapshot(world.events[1], world.bookmakers[0], datetime.now(UTC))])


# Every read of one event, with the arguments it is called with: each must run on one shard.
PER_EVENT_READS: dict[str, dict[str, Any]] = {
    "latest_odds": {},
    "odds_at": {"at": datetime.now(UTC)},
    "odds_history": {"market_id": "3743", "bookmaker_id": None, "since": None, "until": None},
    "snapshots_for_event": {"since": None, "until": None},
    "compare_event": {"home_bookmaker_id": None},
    "margins": {"tournament_id": None, "market_id": None, "since": None},
    "opening_closing": {},
    "line_movement": {"market_id": "3743", "line": None},
    "margin_history": {"market_id": "3743", "line": None, "bookmaker_id": None},
    "missing_markets": {},
    "odds_history_page": {
        "market_id": "3743",
        "bookmaker_id": None,
        "since": None,
        "until": None,
        "after_captured_at": None,
        "after_bookmaker_id": None,
        "after_line": None,
        "limit": 100,
    },
    "line_movement_page": {
        "market_id": "3743",
        "line": None,
        "after_captured_at": None,
        "after_bookmaker_id": None,
        "after_line": None,
        "limit": 100,
    },
}


@only_citus
@pytest.mark.parametrize("name", sorted(PER_EVENT_READS))
async def test_every_per_event_read_is_a_router_query(store: OddsStore, world: World, name: str) -> None:
    await write_some(store, world)
    query = store.queries._queries[name]
    params = {"event_id": world.events[0].id, **PER_EVENT_READS[name]}
    assert set(params) == set(query.params), f"{name} takes {query.params}"
    async with store.pool.acquire() as connection:
        plan = "\n".join(
            row[0] for row in await connection.fetch("explain " + query.sql, *(params[p] for p in query.params))
        )
    # The Citus adaptive executor runs a router query as one task, on the event's shard.
    assert re.findall(r"Task Count: (\d+)", plan) == ["1"], plan
    await getattr(store.queries, name)(store.pool, **params)  # and it runs


@only_citus
@pytest.mark.xfail(
    reason="odds_board (queries/board.sql) pages events and reads each page's markets in a lateral subquery with "
    "OFFSET, which Citus cannot push down to the shards",
    raises=asyncpg.FeatureNotSupportedError,
    strict=True,
)
async def test_the_odds_board_is_not_planned_by_citus_yet(store: OddsStore, world: World) -> None:
    await write_some(store, world)
    await store.odds_board(["3743"])
