"""Migrations as deployments run them: the ``yoyo`` command line in a subprocess.

Applying twice is a no-op; two deploys at once leave one schema; apply, roll back and re-apply
keep a populated database's answers; a failing migration leaves the schema as it was; and with
``lock_timeout = 2s`` and a reader holding an open transaction, only the migrations that drop a
table it reads or alter one (0005_change_only drops market_odds; 0007_real_data adds key columns
and primary keys to the odds tables and moves a column of events) have to wait.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from conftest import Server, market, snapshot

from oddsstore import OddsStore, migrations
from oddsstore.paths import sql_directory

SCHEMA = sql_directory("schema")
MIGRATION_IDS = sorted(path.stem for path in SCHEMA.glob("*.sql") if not path.stem.endswith(".rollback"))

# What a deployer compares between two databases: relations with their definitions and grants,
# constraints, functions with their definitions (SECURITY DEFINER, SET search_path) and grants,
# and types. yoyo's own tables are left out (what yoyo recorded is read by applied()).
# Grants to the roles of one database (oddsstore_writer_<database>, 0008) are named after it: the
# catalog shows them as oddsstore_writer_<database>, so two databases' catalogs compare.
CATALOG = """
select 'rel' as kind, c.relkind::text || ' ' || c.relname as name,
       coalesce(pg_get_indexdef(c.oid), pg_get_expr(c.relpartbound, c.oid), '') || ' ' ||
       regexp_replace(coalesce(c.relacl::text, ''), 'oddsstore_(reader|writer)_\\w+=', 'oddsstore_\\1_<database>=', 'g')
       || ' ' || pg_get_userbyid(c.relowner) as definition
from pg_class as c
where c.relnamespace = current_schema()::regnamespace and c.relkind in ('r', 'p', 'i', 'I', 'S', 'v')
  and c.relname !~ 'yoyo'
union all
select 'constraint', t.relname || '.' || k.conname, pg_get_constraintdef(k.oid)
from pg_constraint as k
join pg_class as t on t.oid = k.conrelid
where t.relnamespace = current_schema()::regnamespace and t.relname !~ 'yoyo'
union all
select 'function', p.proname, pg_get_functiondef(p.oid) ||
       regexp_replace(coalesce(p.proacl::text, ''), 'oddsstore_(reader|writer)_\\w+=', 'oddsstore_\\1_<database>=', 'g')
from pg_proc as p
where p.pronamespace = current_schema()::regnamespace
union all
select 'type', t.typname, coalesce(t.typacl::text, '')
from pg_type as t
where t.typnamespace = current_schema()::regnamespace and t.typtype = 'e'
order by 1, 2
"""


def yoyo(command: str, dsn: str, *options: str, schema: Path = SCHEMA) -> list[str]:
    """The argv of ``yoyo COMMAND --batch --database URL SCHEMA OPTIONS`` as a deployer runs it."""
    executable = shutil.which("yoyo", path=os.path.dirname(sys.executable)) or "yoyo"
    url = migrations.yoyo_url(dsn)
    return [executable, command, "--batch", "--no-config-file", "--database", url, str(schema), *options]


def run_yoyo(
    command: str, dsn: str, *options: str, schema: Path = SCHEMA, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        yoyo(command, dsn, *options, schema=schema),
        capture_output=True,
        text=True,
        timeout=120,
        env=None if env is None else {**os.environ, **env},
    )


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"{result.args}\n{result.stdout}{result.stderr}"
    return result


async def fetch(dsn: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
    connection = await asyncpg.connect(dsn)
    try:
        return [tuple(row) for row in await connection.fetch(query, *args)]
    finally:
        await connection.close()


async def catalog(dsn: str) -> list[tuple[Any, ...]]:
    return await fetch(dsn, CATALOG)


async def applied(dsn: str) -> list[str]:
    """Migration ids yoyo recorded as applied, in order (empty before yoyo's first run)."""
    if not (await fetch(dsn, "select to_regclass('_yoyo_migration') is not null"))[0][0]:
        return []
    rows = await fetch(dsn, "select migration_id from _yoyo_migration order by applied_at_utc, migration_id")
    return [row[0] for row in rows]


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), UTC)


# --- applying ------------------------------------------------------------------------------------


async def test_applying_twice_changes_nothing(empty_dsn: str) -> None:
    ok(run_yoyo("apply", empty_dsn))
    assert await applied(empty_dsn) == MIGRATION_IDS
    first = await catalog(empty_dsn)
    log = await fetch(empty_dsn, "select count(*) from _yoyo_log")

    ok(run_yoyo("apply", empty_dsn))
    assert await applied(empty_dsn) == MIGRATION_IDS
    assert await catalog(empty_dsn) == first
    assert await fetch(empty_dsn, "select count(*) from _yoyo_log") == log  # not even a log line


async def test_two_deploys_at_once_leave_one_schema(pg_server: Server, template_db: str, empty_dsn: str) -> None:
    # Started together: one takes yoyo's lock (a row in yoyo_lock) and applies everything; the
    # other polls for the lock (for up to 10 s, yoyo's default), then finds nothing left to apply.
    command = yoyo("apply", empty_dsn, "-vv")  # -vv: yoyo logs "Applying <id>" for each migration
    deploys = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    logs = []
    for deploy in deploys:
        out, err = deploy.communicate(timeout=120)
        assert deploy.returncode == 0, out + err
        logs.append(err)
    assert sorted(log.count("Applying ") for log in logs) == [0, len(MIGRATION_IDS)]
    assert await applied(empty_dsn) == MIGRATION_IDS  # each once
    assert await fetch(empty_dsn, "select operation, count(*) from _yoyo_log group by 1") == [
        ("apply", len(MIGRATION_IDS))
    ]
    assert await catalog(empty_dsn) == await catalog(pg_server.dsn(template_db))
    assert await fetch(empty_dsn, "select count(*) from yoyo_lock") == [(0,)]


# --- rolling back and forth on a database that holds data ----------------------------------------


async def write_history(dsn: str) -> int:
    """Two days of snapshots through the store: changes, a suspension, a market that goes."""
    async with OddsStore.connect(dsn, min_size=1, max_size=1) as store:
        sport = await store.upsert_sport("Football", "football")
        tournament = await store.upsert_tournament(sport.id, "Premier League", "England")
        event = await store.upsert_event(tournament.id, "bp-1", "Home", "Away", datetime.now(UTC) + timedelta(days=2))
        bookmakers = [await store.upsert_bookmaker(name, name.lower()) for name in ("BetPawa", "SportyBet")]
        run = await store.start_scrape_run("scheduled")
        yesterday = datetime.now(UTC).date() - timedelta(days=1)
        for step in range(4):
            moment = at(yesterday, 22) + timedelta(hours=step)  # across midnight: two day partitions
            markets = [market("3743", odds=(1.85 + step / 100, 3.4, 4.2))]
            if step < 3:
                markets.append(market("18", line=2.5, odds=(1.9, 1.9)))
            await store.write_snapshots(
                [snapshot(event, bookmakers[0], moment, markets), snapshot(event, bookmakers[1], moment)], run.id
            )
        await store.record_scrape_errors(
            [{"scrape_run_id": run.id, "bookmaker_id": bookmakers[1].id, "error_type": "timeout", "error_message": "x"}]
        )
        return event.id


async def answers(dsn: str, event_id: int) -> dict[str, Any]:
    """What a reader gets back, for comparing before and after."""
    async with OddsStore.connect(dsn, min_size=1, max_size=1) as store:
        snapshots = await store.snapshots(event_id)
        moments = sorted({s.captured_at + timedelta(seconds=d) for s in snapshots for d in (-1, 0, 1)})
        return {
            "latest": await store.latest_odds(event_id),
            "at": [await store.odds_at(event_id, moment) for moment in moments],
            "history": [await store.odds_history(event_id, market_id) for market_id in ("3743", "18")],
            "snapshots": snapshots,
            "errors": await store.error_summary(datetime.now(UTC) - timedelta(days=3)),
            "partitions": [(p.parent, p.day) for p in await store.partitions()],
        }


async def test_roll_back_and_reapply_keep_what_a_populated_database_answers(
    pg_server: Server, template_db: str, empty_dsn: str
) -> None:
    ok(run_yoyo("apply", empty_dsn))
    event_id = await write_history(empty_dsn)
    before = await answers(empty_dsn, event_id)
    assert len(before["snapshots"]) == 8

    # Back to 0004 (0006 and 0005 rolled back): the history is in market_odds again, every
    # market of every snapshot.
    ok(run_yoyo("rollback", empty_dsn, "--revision", "0005_change_only"))
    assert await applied(empty_dsn) == MIGRATION_IDS[: MIGRATION_IDS.index("0005_change_only")]
    assert await fetch(empty_dsn, "select count(*), count(distinct snapshot_id) from market_odds") == [((4 + 3) + 4, 8)]

    ok(run_yoyo("apply", empty_dsn))
    assert await answers(empty_dsn, event_id) == before

    # All the way down: nothing of the schema is left (the cluster-wide roles stay: the template
    # database still grants to them), and applying again gives a fresh database's schema.
    ok(run_yoyo("rollback", empty_dsn, "--all"))
    assert await applied(empty_dsn) == []
    assert await catalog(empty_dsn) == []
    shared = "select count(*) from pg_roles where rolname in ('oddsstore_reader', 'oddsstore_writer')"
    assert await fetch(empty_dsn, shared) == [(2,)]
    ok(run_yoyo("apply", empty_dsn))
    assert await catalog(empty_dsn) == await catalog(pg_server.dsn(template_db))


# --- a migration that fails ----------------------------------------------------------------------

BROKEN = """\
-- A migration whose second statement fails (events already has a kickoff column).
-- depends: {last}

create table deploy_probe (id bigint);
alter table events add column kickoff text;
"""


def broken_schema(directory: Path) -> Path:
    shutil.copytree(SCHEMA, directory, ignore=shutil.ignore_patterns("__*"))
    (directory / "0099_broken.sql").write_text(BROKEN.format(last=MIGRATION_IDS[-1]))
    (directory / "0099_broken.rollback.sql").write_text("drop table deploy_probe;\n")
    return directory


async def test_a_failing_migration_leaves_the_schema_as_it_was(dsn: str, tmp_path: Path) -> None:
    schema = broken_schema(tmp_path / "schema")
    before = (await catalog(dsn), await applied(dsn))

    failed = run_yoyo("apply", dsn, schema=schema)
    assert failed.returncode != 0
    assert "DuplicateColumn" in failed.stderr or "already exists" in failed.stderr, failed.stderr

    assert (await catalog(dsn), await applied(dsn)) == before
    assert await fetch(dsn, "select to_regclass('deploy_probe')") == [(None,)]
    assert await fetch(dsn, "select count(*) from yoyo_lock") == [(0,)]  # the next deploy is not blocked
    assert run_yoyo("apply", dsn).returncode == 0


async def test_each_migration_is_all_or_nothing(
    pg_server: Server, template_db: str, empty_dsn: str, tmp_path: Path
) -> None:
    """On an empty database the good migrations are applied, each in its own transaction, and the
    broken one not at all."""
    failed = run_yoyo("apply", empty_dsn, schema=broken_schema(tmp_path / "schema"))
    assert failed.returncode != 0
    assert await applied(empty_dsn) == MIGRATION_IDS
    assert await catalog(empty_dsn) == await catalog(pg_server.dsn(template_db))


# --- locks ---------------------------------------------------------------------------------------

USER_TABLES = """
select format('%I', c.relname)
from pg_class as c
where c.relnamespace = current_schema()::regnamespace and c.relkind in ('r', 'p') and not c.relispartition
  and c.relname !~ 'yoyo'
order by 1
"""


async def populate(connection: asyncpg.Connection, migration: str) -> None:
    """Rows for the tables ``migration`` created, written as that version of the store would."""
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    if migration == "0001_reference":
        await connection.execute(
            "insert into sports (name, slug) values ('Football', 'football');"
            "insert into tournaments (sport_id, name) values (1, 'League');"
            "insert into events (tournament_id, betpawa_event_id, home_team, away_team, kickoff)"
            "  values (1, 'e1', 'H', 'A', now() + interval '1 day');"
            "insert into bookmakers (name, slug) values ('A', 'a'), ('B', 'b');"
            "insert into event_bookmakers (event_id, bookmaker_id) values (1, 1), (1, 2)"
        )
    elif migration == "0002_scrape":
        await connection.execute("insert into scrape_runs (status) values ('completed')")
    elif migration == "0004_partitions":
        await connection.execute("select oddsstore_ensure_partitions($1::date, $1::date + 1)", yesterday)
        for number, moment in enumerate((at(yesterday, 23), at(yesterday + timedelta(days=1), 0, 30)), start=1):
            for bookmaker in (1, 2):
                snapshot_id = await connection.fetchval(
                    "insert into odds_snapshots (event_id, bookmaker_id, captured_at, scrape_run_id)"
                    " values (1, $1, $2, 1) returning id",
                    bookmaker,
                    moment,
                )
                await connection.execute(
                    "insert into market_odds (snapshot_id, captured_at, event_id, betpawa_market_id,"
                    " betpawa_market_name, outcomes) values ($1, $2, 1, '3743', '1X2', $3::jsonb)",
                    snapshot_id,
                    moment,
                    f'[{{"name": "1", "odds": {1.5 + number / 10}, "is_active": true}}]',
                )
                await connection.execute(
                    "insert into latest_snapshots values (1, $1, $2, $3) on conflict (event_id, bookmaker_id)"
                    " do update set snapshot_id = excluded.snapshot_id, captured_at = excluded.captured_at",
                    bookmaker,
                    snapshot_id,
                    moment,
                )
        await connection.execute(
            "insert into scrape_errors (scrape_run_id, error_type, error_message, occurred_at)"
            " values (1, 'timeout', 'slow', $1)",
            at(yesterday, 23),
        )


async def test_only_the_migrations_that_drop_or_alter_a_table_or_drop_an_index_wait_for_an_open_reader(
    empty_dsn: str,
) -> None:
    """Each migration in turn, applied with lock_timeout = 2s (0007 sets its own 10 s, 0010 5 s)
    while another session holds a transaction that has read every table of the (populated)
    database. A migration that only creates objects, grants, replaces functions or sets storage
    parameters takes no lock a reader conflicts with; 0005 drops market_odds, 0007 alters events,
    market_current and market_changes, 0008 drops two unused indexes, 0010 adds a column to
    market_current and market_changes (ACCESS EXCLUSIVE on their tables): they wait for the
    reader, as documented there, and give up rather than queue."""
    reader = await asyncpg.connect(empty_dsn)
    writer = await asyncpg.connect(empty_dsn)
    waited: list[str] = []
    try:
        for migration in MIGRATION_IDS:
            transaction = reader.transaction()
            await transaction.start()
            for (table,) in await reader.fetch(USER_TABLES):
                await reader.fetchval(f"select count(*) from {table}")
            attempt = run_yoyo("apply", empty_dsn, "--revision", migration, env={"PGOPTIONS": "-c lock_timeout=2s"})
            if attempt.returncode != 0:
                assert "lock timeout" in attempt.stderr, attempt.stderr
                assert migration not in await applied(empty_dsn)  # and nothing of it was kept
                waited.append(migration)
            await transaction.rollback()
            if attempt.returncode != 0:
                ok(run_yoyo("apply", empty_dsn, "--revision", migration))
            assert (await applied(empty_dsn))[-1] == migration
            await populate(writer, migration)
    finally:
        await reader.close()
        await writer.close()
    assert waited == [
        "0005_change_only",
        "0007_real_data",
        "0008_production",
        "0010_production_writes",
    ]
    # The data came through: 0005 turned market_odds into changes and current state.
    assert await fetch(empty_dsn, "select count(*) from market_changes") == [(4,)]
    assert await fetch(empty_dsn, "select count(*) from market_current") == [(2,)]
