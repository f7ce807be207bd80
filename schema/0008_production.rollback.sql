-- Rolls back 0008_production: the outcomes function, the SQL window on partition creation (0004's
-- function body again, SECURITY DEFINER as 0006 left it), the grant on yoyo's table, the storage
-- settings, and the two indexes.
--
-- Migration lint (squawk, tests/test_lint.py), findings reviewed and accepted:
--   * ban-drop-function, ban-drop-table: dropping what 0008 created; a rollback is run on
--     purpose, with this version's stores stopped (their analytics call oddsstore_outcomes).
--   * require-concurrent-index-creation: the indexes are rebuilt in the rollback's transaction
--     (CREATE INDEX CONCURRENTLY cannot run in one, nor on a partitioned table); it blocks writes
--     to scrape_runs and scrape_errors for the time of the build, bounded by the timeouts below.
-- squawk-ignore-file ban-drop-function, ban-drop-table, require-concurrent-index-creation
set local lock_timeout = '5s';
set local statement_timeout = '1min';

-- The roles of this database: their privileges here go; the roles themselves only if nothing
-- else depends on them (another database, e.g. a clone, may still grant to them).
do $$
declare
    v_own text;
begin
    foreach v_own in array array[left('oddsstore_reader_' || current_database(), 63),
                                 left('oddsstore_writer_' || current_database(), 63)] loop
        continue when not exists (select from pg_roles where rolname = v_own);
        begin
            execute format('drop owned by %I', v_own);
            execute format('drop role %I', v_own);
        exception when dependent_objects_still_exist or insufficient_privilege then
            raise notice 'oddsstore 0008 rollback: role % kept: %', v_own, sqlerrm;
        end;
    end loop;
end;
$$;

drop function oddsstore_outcomes(jsonb);

create or replace function oddsstore_ensure_partitions(p_first_day date, p_last_day date)
returns setof text
language plpgsql
as $$
/*
 * Creates the missing daily partitions of every registered table for the UTC days
 * p_first_day .. p_last_day and returns the names it created. Idempotent, and safe when several
 * sessions call it at once: they queue on one advisory lock and the later ones find the work done.
 */
declare
    v_table     text;
    v_day       date;
    v_partition text;
    v_from      timestamptz;
begin
    if p_first_day is null or p_last_day is null or p_last_day < p_first_day then
        raise exception 'oddsstore_ensure_partitions: bad day range % .. %', p_first_day, p_last_day
            using hint = 'Pass the first and last UTC day, first <= last.';
    end if;
    if p_last_day - p_first_day > 400 then
        raise exception 'oddsstore_ensure_partitions: % days requested (% .. %), at most 401 at a time',
            p_last_day - p_first_day + 1, p_first_day, p_last_day;
    end if;

    -- Fast path, no lock: on almost every write the partitions exist already.
    if not exists (
        select
        from oddsstore_partitioned_tables as t
        cross join generate_series(p_first_day, p_last_day, interval '1 day') as d (day)
        where to_regclass(format('%I', t.table_name || '_p' || to_char(d.day, 'YYYYMMDD'))) is null
    ) then
        return;
    end if;

    -- Held to the end of the caller's transaction; callers run this in a short transaction of
    -- its own (the write path does), never inside a long one.
    perform pg_advisory_xact_lock(hashtext('oddsstore_partitions'));

    for v_table, v_day in
        select t.table_name, d.day::date
        from oddsstore_partitioned_tables as t
        cross join generate_series(p_first_day, p_last_day, interval '1 day') as d (day)
        order by 2, 1
    loop
        v_partition := v_table || '_p' || to_char(v_day, 'YYYYMMDD');
        continue when to_regclass(format('%I', v_partition)) is not null;
        v_from := v_day::timestamp at time zone 'UTC';
        -- CREATE TABLE ... PARTITION OF would take an ACCESS EXCLUSIVE lock on the parent and
        -- stall every reader; an empty table attached afterwards needs only SHARE UPDATE
        -- EXCLUSIVE on the parent, which readers and writers do not conflict with. The parent's
        -- indexes and foreign keys are created on the attached (empty) table by ATTACH.
        execute format(
            'create table %I (like %I including defaults including constraints including storage including compression)',
            v_partition, v_table);
        execute format('alter table %I attach partition %I for values from (%L) to (%L)',
            v_table, v_partition, v_from, v_from + interval '1 day');
        return next v_partition;
    end loop;
end;
$$;
do $$
begin
    execute format(
        'alter function oddsstore_ensure_partitions(date, date) security definer set search_path = %I, pg_temp',
        current_schema());
end;
$$;
comment on function oddsstore_ensure_partitions(date, date) is 'Creates missing daily partitions for UTC days first..last; idempotent and concurrency-safe. SECURITY DEFINER (runs as the owner) so oddsstore_writer can call it.';

drop table oddsstore_settings;
drop table oddsstore_retention_lease;

do $$
begin
    if to_regclass('_yoyo_migration') is not null then
        revoke select on table _yoyo_migration from oddsstore_reader, oddsstore_writer;
    end if;
end;
$$;

alter table latest_snapshots reset (fillfactor, autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor);
alter table market_current reset (fillfactor, autovacuum_vacuum_scale_factor, autovacuum_analyze_scale_factor);

-- 0002's indexes and comments.
create index scrape_runs_status_idx on scrape_runs (status);
comment on index scrape_runs_status_idx is 'Runs in a given state (the seed''s idx_scrape_runs_status).';
create index scrape_errors_bookmaker_id_idx on scrape_errors (bookmaker_id);
comment on index scrape_errors_bookmaker_id_idx is 'Errors of one bookmaker (the seed''s idx_scrape_errors_bookmaker).';

comment on column odds_snapshots.id is 'Surrogate id (odds_snapshots_id_seq); market_odds.snapshot_id points here. Unique by construction, not by index.';
