"""Production PostgreSQL (schema/0008_production.sql and the store around it): connections that
create nothing, the writer role following the README (migrate with nothing pending, maintain that
reports what it may not do), partition creation bounded in SQL, connect and closed-store errors,
the outcomes function's row estimate, and the storage settings.

Login roles come from test_roles.py's helpers (made per test, dropped at the end). Errors are
checked by type and by the cause's class, not by wording, except where the words are the point
(a message must name the reason).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from conftest import Server, World, snapshot
from test_roles import Logins, connect, login_roles, partition_names, permission_denied, today

from oddsstore import ConnectError, OddsStore, OddsStoreError, StoreClosedError, migrations


@pytest.fixture
async def logins(pg_server: Server, dsn: str) -> AsyncIterator[Logins]:
    async with login_roles(pg_server, dsn) as made:
        yield made


async def temporary_tables(store: OddsStore) -> int:
    """Temporary tables of the store's one connection."""
    found: int = await store.pool.fetchval("select count(*) from pg_class where relnamespace = pg_my_temp_schema()")
    return found


# --- connections create nothing --------------------------------------------------------------


async def test_a_connection_creates_nothing_and_a_write_leaves_nothing(dsn: str) -> None:
    async with OddsStore.connect(dsn, min_size=1, max_size=1) as store:
        assert await temporary_tables(store) == 0  # opening the store created nothing
        sport = await store.upsert_sport("Football", "football")
        tournament = await store.upsert_tournament(sport.id, "Premier League", "England")
        event = await store.upsert_event(tournament.id, "bp-1", "H", "A", datetime.now(UTC) + timedelta(days=1))
        bookmaker = await store.upsert_bookmaker("BetPawa", "betpawa")
        for minutes in (10, 5):  # twice on the same connection: the stage is made afresh each time
            await store.write_snapshots([snapshot(event, bookmaker, datetime.now(UTC) - timedelta(minutes=minutes))])
            assert await temporary_tables(store) == 0
        assert len(await store.latest_odds(event.id)) == 1


async def test_a_read_only_session_reads_and_migrates_when_current(dsn: str, store: OddsStore, world: World) -> None:
    """What a hot standby allows (test_infra.py runs the same on a real replica)."""
    await store.write_snapshots([snapshot(world.events[0], world.bookmakers[0], datetime.now(UTC))])
    options = {"server_settings": {"default_transaction_read_only": "on"}}
    async with OddsStore.connect(dsn, min_size=1, max_size=1, **options) as reader:
        assert await reader.migrate() == []
        assert await reader.latest_odds(world.events[0].id) == await store.latest_odds(world.events[0].id)


# --- the writer role follows the README ------------------------------------------------------


async def test_the_writer_migrates_when_nothing_is_pending_without_a_lock_or_a_change(logins: Logins) -> None:
    log = "select count(*) from _yoyo_log"
    owner = await asyncpg.connect(logins.owner)
    try:
        before = await owner.fetchval(log)
        async with connect(logins.writer) as writer, connect(logins.reader) as reader:
            assert await writer.migrate() == []
            assert await reader.migrate() == []
        assert await owner.fetchval(log) == before
        assert await owner.fetchval("select count(*) from yoyo_lock") == 0
    finally:
        await owner.close()


async def test_a_pending_migration_still_needs_the_owner(logins: Logins) -> None:
    migrations.rollback(logins.owner, 1)
    async with connect(logins.writer) as writer:
        with pytest.raises(OddsStoreError):
            await writer.migrate()
    assert migrations.apply(logins.owner) == [max(m for m in migrations.pending([]))]


async def test_the_writer_creates_partitions_only_within_the_database_window(logins: Logins) -> None:
    far, old = today() + timedelta(days=400), today() - timedelta(days=40)
    create = "select coalesce(array_agg(name), '{}') from oddsstore_ensure_partitions($1, $2) as name"
    writer = await asyncpg.connect(logins.writer)
    owner = await asyncpg.connect(logins.owner)
    try:
        assert await writer.fetchval(create, far, far + timedelta(days=365)) == []
        assert await writer.fetchval(create, old, old) == []
        # Clamped, not refused: the days inside the window are created.
        created = await writer.fetchval(create, today() + timedelta(days=6), today() + timedelta(days=9))
        assert set(created) == partition_names(today() + timedelta(days=6)) | partition_names(
            today() + timedelta(days=7)
        )
        # The window is the owner's to change, not the writer's.
        with permission_denied():
            await writer.execute("update oddsstore_settings set days_ahead = 400")
        await owner.execute("update oddsstore_settings set days_ahead = 8")
        assert set(await writer.fetchval(create, today() + timedelta(days=8), today() + timedelta(days=9))) == (
            partition_names(today() + timedelta(days=8))
        )
        # The owner is not bound by it (backfills need old days).
        assert set(await owner.fetchval(create, old, old)) == partition_names(old)
    finally:
        await writer.close()
        await owner.close()


async def test_maintain_as_the_writer_reports_what_it_did_and_what_it_may_not_do(logins: Logins) -> None:
    async with connect(logins.writer) as writer:
        report = await writer.maintain(days_ahead=9)
    assert set(report.created) == set().union(*(partition_names(today() + timedelta(days=n)) for n in range(8)))
    assert report.dropped == []
    assert [message.split(":")[0] for message in report.not_allowed] == [
        f"creating partitions after {today() + timedelta(days=7)}",
        "dropping expired partitions",
    ]
    async with OddsStore.connect(logins.owner, min_size=1, max_size=1) as owner:
        report = await owner.maintain(days_ahead=9)
    assert set(report.created) == partition_names(today() + timedelta(days=8)) | partition_names(
        today() + timedelta(days=9)
    )
    assert report.not_allowed == []


def test_the_maintain_command_as_the_writer_prints_both_and_fails(logins: Logins) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "oddsstore", "--dsn", logins.writer, "maintain", "--days-ahead", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"created {2 * len(partition_names(today()))} partitions" in run.stdout
    assert "not allowed: dropping expired partitions" in run.stderr
    assert "Traceback" not in run.stderr


# --- honest errors ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_refused_connection_is_a_connect_error_with_the_reason() -> None:
    with pytest.raises(ConnectError) as caught:
        await OddsStore.connect(f"postgresql://nobody@127.0.0.1:{free_port()}/none", min_size=1)
    assert isinstance(caught.value.__cause__, OSError)
    assert "ConnectionRefusedError" in str(caught.value) or "Connect call failed" in str(caught.value)


async def test_a_server_that_never_answers_times_out_as_a_connect_error() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts TCP connections (the kernel does), never says a word
    try:
        began = asyncio.get_running_loop().time()
        with pytest.raises(ConnectError, match="no answer within 0.5 s"):
            await OddsStore.connect(
                f"postgresql://nobody@127.0.0.1:{silent.getsockname()[1]}/none", min_size=1, connect_timeout=0.5
            )
        assert asyncio.get_running_loop().time() - began < 5
    finally:
        silent.close()


async def test_an_unknown_database_or_role_is_a_connect_error(pg_server: Server) -> None:
    for dsn in (pg_server.dsn("no_such_database"), pg_server.dsn("postgres").replace("postgres@", "no_such_role@")):
        with pytest.raises(ConnectError) as caught:
            await OddsStore.connect(dsn, min_size=1)
        assert isinstance(caught.value.__cause__, asyncpg.PostgresError)
        assert str(caught.value.__cause__) in str(caught.value)


async def test_a_closed_store_says_so(dsn: str) -> None:
    store = await OddsStore.connect(dsn, min_size=1, max_size=1)
    await store.close()
    for call in (store.bookmakers, store.ensure_partitions, store.migrate):
        with pytest.raises(StoreClosedError) as caught:
            await call()
        assert isinstance(caught.value.__cause__, asyncpg.InterfaceError)


# --- the planner's view of outcomes, and the storage settings --------------------------------


async def test_outcomes_are_estimated_at_three_rows_a_market(store: OddsStore, world: World) -> None:
    await store.write_snapshots([snapshot(world.events[0], world.bookmakers[0], datetime.now(UTC))])
    plan = await store.pool.fetchval(
        "explain (format json) "
        "select o.* from market_current as c cross join lateral oddsstore_outcomes(c.outcomes) as o"
    )
    nodes = [plan[0]["Plan"]]  # the store's connections decode json (oddsstore/jsonb.py)
    scans = []
    while nodes:
        node = nodes.pop()
        nodes += node.get("Plans", [])
        if node["Node Type"] == "Function Scan":
            scans.append(node["Plan Rows"])
    assert scans == [3]  # not inlined into jsonb_to_recordset's 100
    rows = await store.pool.fetch(
        "select o.* from market_current as c cross join lateral oddsstore_outcomes(c.outcomes) as o order by position"
    )
    assert [(r["name"], r["odds"], r["is_active"], r["position"]) for r in rows] == [  # stored by name
        ("1", 1.85, True, 1),
        ("2", 4.2, True, 2),
        ("X", 3.4, True, 3),
    ]
    assert await store.pool.fetchval("select count(*) from oddsstore_outcomes(null)") == 0


async def test_hot_tables_keep_room_for_updates_and_unused_indexes_are_gone(store: OddsStore) -> None:
    options = dict(
        await store.pool.fetch(
            "select relname, reloptions from pg_class where relname in ('latest_snapshots', 'market_current')"
        )
    )
    assert "fillfactor=50" in options["latest_snapshots"]
    assert "fillfactor=80" in options["market_current"]
    indexes = await store.pool.fetchval(
        "select array_agg(indexname::text) from pg_indexes "
        "where indexname in ('scrape_runs_status_idx', 'scrape_errors_bookmaker_id_idx')"
    )
    assert indexes is None


# --- roles of one database -----------------------------------------------------------------


async def test_roles_of_one_database_reach_only_that_database(pg_server: Server) -> None:
    """Two databases migrated side by side in one cluster (staging and production): a login given
    one database's writer role writes there and nowhere else; the shared roles still reach both."""
    names = [f"roles_{n}_{os.getpid()}_{pg_server.name}" for n in ("staging", "production")]
    logins = [f"{name}_scraper" for name in names]
    admin = await asyncpg.connect(pg_server.dsn("postgres"))
    try:
        for name, login in zip(names, logins, strict=True):
            await admin.execute(f'drop database if exists "{name}"')
            await admin.execute(f'create database "{name}"')
            migrations.apply(pg_server.dsn(name))
            await admin.execute(f'create role "{login}" login in role "oddsstore_writer_{name}"')
        staging, production = (
            pg_server.dsn(name).replace("postgres@", f"{login}@") for name, login in zip(names, logins, strict=True)
        )
        async with connect(staging) as store:
            sport = await store.upsert_sport("Football", "football")
            await store.maintain(days_ahead=1)  # creates the days ahead; retention not allowed
        assert sport.id == 1
        # The staging scraper on the production database: it may connect (PUBLIC may), nothing more.
        async with connect(pg_server.dsn(names[1]).replace("postgres@", f"{logins[0]}@")) as intruder:
            with permission_denied():
                await intruder.upsert_sport("Football", "football")
            with permission_denied():
                await intruder.bookmakers()
        async with connect(production) as store:
            assert (await store.upsert_sport("Tennis", "tennis")).id == 1
    finally:
        for name in names:
            await admin.execute(f'drop database if exists "{name}" with (force)')
        for login in logins:
            await admin.execute(f'drop role if exists "{login}"')
        for name in names:
            for kind in ("reader", "writer"):
                await admin.execute(f'drop role if exists "oddsstore_{kind}_{name}"')
        await admin.close()
