-- Citus (docs/scaling.md): the distributed layout `oddsstore distribute` makes on a migrated
-- database on a Citus coordinator (a DBA can run the same statements with psql), and how the
-- store finds out that it runs on Citus.

-- name: citus_installed$
-- Whether the database has the citus extension. Where it has, the store (1) creates a write's
-- missing partitions in a transaction of its own before the write's transaction (ATTACH
-- PARTITION of a distributed table locks its shards until commit: held while the write waits for
-- its pairs' locks, that is a distributed deadlock with the writer holding them), and (2) detaches
-- expired partitions with a plain DETACH (Citus 13 refuses DETACH ... CONCURRENTLY).
select exists (select from pg_extension where extname = 'citus');

-- name: distributed_stage$
-- On Citus: whether distribute made the write path's distributed stage (step 5 below). Where
-- it has, a write stages its rows there, not in temporary tables (oddsstore/writes.py); a
-- database with the extension but not distributed yet writes as one server does.
select exists (
    select
    from citus_tables
    where table_name = to_regclass('oddsstore_stage_snapshots')
      and citus_table_type = 'distributed'
);

-- name: distribute!
-- Turn the store's tables into Citus tables, once; run again, it does nothing. Several
-- statements, one transaction (sent as one simple query).
--
-- 1. Refuse where Citus is absent: there create_reference_table does not exist, and the error
--    would not say why. SQLSTATE OD001 (oddsstore's own), turned into CitusMissingError.
do $$
begin
    if not exists (select from pg_extension where extname = 'citus') then
        raise exception 'the citus extension is not installed in database %', current_database()
            using errcode = 'OD001',
                  hint = 'On a Citus coordinator (shared_preload_libraries = ''citus''): create extension citus; '
                         'then add the workers with citus_add_node (docs/scaling.md).';
    end if;
end;
$$;

-- 2. Reference tables: small, read by every query, joined to everything, written rarely: a copy
--    on every node, so a join of an odds table with them stays on the odds table's node.
--    In foreign-key order (a reference table may only point at reference tables).
--    event_bookmakers too: its unique key (bookmaker_id, bookmaker_event_id), how a scraper
--    finds an event by a bookmaker's own id, does not contain event_id, which a distributed
--    table's unique keys must. scrape_runs: read with the odds of every pair.
select create_reference_table(t.name)
from unnest(array['sports', 'tournaments', 'bookmakers', 'events', 'event_bookmakers', 'scrape_runs'])
    with ordinality as t (name, position)
where not exists (
    select
    from citus_tables as c
    where c.table_name = t.name::regclass
      and c.citus_table_type = 'reference'
)
order by t.position;

-- 3. The odds, distributed by event_id and co-located: every key contains event_id, every read
--    is about one event (a single-shard router query) and every join between them is on
--    event_id (done on the shard, never across nodes). Partitioned tables are distributed with
--    their partitions; later partitions, attached by oddsstore_ensure_partitions, follow.
--    scrape_errors stays on the coordinator (a local table): it has no event to distribute by
--    (event_id is null for errors about a whole run) and is read per run.
select create_distributed_table(t.name, 'event_id',
                                colocate_with => case when t.position = 1 then 'none' else 'odds_snapshots' end)
from unnest(array['odds_snapshots', 'market_changes', 'market_current', 'latest_snapshots'])
    with ordinality as t (name, position)
where not exists (
    select
    from citus_tables as c
    where c.table_name = t.name::regclass
      and c.citus_table_type = 'distributed'
)
order by t.position;

-- 4. Partition creation one shard at a time: attaching a day to a distributed table in
--    Citus' default parallel mode (several connections per worker) deadlocked with concurrent
--    writers ("canceling the transaction since it was involved in a distributed deadlock",
--    tests/test_concurrency.py with four writers); in sequential mode the shards are locked in
--    one order. A function setting: run distribute again after a migration that replaces
--    oddsstore_ensure_partitions (CREATE OR REPLACE drops it).
alter function oddsstore_ensure_partitions(date, date) set citus.multi_shard_modify_mode = 'sequential';

-- 5. The write path's stage, distributed by event_id and co-located with the odds, so that
--    every statement of the merge (merge_stage in queries/odds.sql, which joins on event_id
--    throughout) runs on the shards, one task per shard, instead of shipping the rows of a
--    coordinator-local temporary stage to the workers statement by statement (the merge took
--    5-6 s a chunk that way: docs/scaling.md). The same columns as the temporary stage
--    (create_stage in queries/odds.sql), which a write on Citus does not create, so these are
--    the tables its statements name. Shared by every writer, and never holding a committed
--    row: a write's rows are visible to its own transaction only and are deleted before it
--    commits (clear_distributed_stage), so writers never see each other's. Unlogged: nothing in
--    them outlives a transaction, so there is nothing to recover. After step 4: run again,
--    the grant below is an operation on the shards, after which Citus refuses ALTER FUNCTION
--    in the same transaction.
create unlogged table if not exists oddsstore_stage_snapshots (
    id               bigint      not null,
    event_id         integer     not null,
    bookmaker_id     integer     not null,
    captured_at      timestamptz not null,
    scrape_run_id    bigint,
    raw_response     jsonb,
    base_snapshot_id bigint,
    next_at          timestamptz,
    previous_at      timestamptz,
    opens_day        boolean,
    latest_at        timestamptz
);
create unlogged table if not exists oddsstore_stage_markets (
    snapshot_id         bigint           not null,
    event_id            integer          not null,
    bookmaker_id        integer          not null,
    captured_at         timestamptz      not null,
    line                double precision,
    line_key            double precision generated always as (coalesce(line, 'NaN'::double precision)) stored,
    handicap_home       double precision,
    handicap_away       double precision,
    betpawa_market_id   text             not null,
    betpawa_market_name text,
    handicap_type       text,
    outcomes            jsonb,
    fingerprint         bytea
);
comment on table oddsstore_stage_snapshots is
    'Citus only: the snapshots of a write being merged, visible to that write''s transaction only (deleted before it commits). See queries/distribute.sql.';
comment on table oddsstore_stage_markets is
    'Citus only: the markets of a write being merged, visible to that write''s transaction only (deleted before it commits). See queries/distribute.sql.';
select create_distributed_table(t.name, 'event_id', colocate_with => 'odds_snapshots')
from unnest(array['oddsstore_stage_snapshots', 'oddsstore_stage_markets']) with ordinality as t (name, position)
where not exists (
    select
    from citus_tables as c
    where c.table_name = t.name::regclass
      and c.citus_table_type = 'distributed'
)
order by t.position;
grant select, insert, update, delete on oddsstore_stage_snapshots, oddsstore_stage_markets to oddsstore_writer;

-- 6. Citus runs an insert into a reference table with an identity column as an explicit
--    nextval() on the coordinator, which checks USAGE on the sequence (PostgreSQL does not, for
--    identity columns: schema/0006_roles.sql grants none): the writer's upserts need it.
grant usage on sequence sports_id_seq, tournaments_id_seq, bookmakers_id_seq, events_id_seq, scrape_runs_id_seq
    to oddsstore_writer;

-- name: grant_on_shards!
-- After distribute, committed (run_command_on_shards works on connections of its own, which do
-- not see shards created by a transaction still open). Column privileges: Citus 13 neither
-- copies them to the shards nor propagates them ("grant/revoke on column list is currently
-- unsupported"), and on the workers the writer's statements run against the shards. The
-- writer's one column grant (schema/0010_production_writes.sql: update of
-- market_changes.checkpoint, when a late snapshot turns a checkpoint into a change) is granted on
-- each shard of the parent (its partitions are reached through it). Run again after shards are
-- moved or split.
do $$
declare
    v_failed text;
begin
    select string_agg(format('shard %s: %s', r.shardid, r.result), '; ')
    into v_failed
    from run_command_on_shards('market_changes',
                               $command$grant update (checkpoint) on table %s to oddsstore_writer$command$) as r
    where not r.success;
    if v_failed is not null then
        raise exception 'granting update (checkpoint) on the shards of market_changes failed: %', v_failed;
    end if;
end;
$$;

-- name: clear_distributed_stage!
-- On Citus, instead of clear_stage: empty this write's rows out of the distributed stage
-- (queries/distribute.sql, step 5) between two merges and before the write commits. A delete
-- sees only this transaction's rows (the other writers' are uncommitted); TRUNCATE would lock
-- the stage, and every writer with it, until commit.
delete from oddsstore_stage_snapshots;
delete from oddsstore_stage_markets;
