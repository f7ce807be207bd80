-- Partition lifecycle as SQL functions: the write path and `oddsstore maintain` call them, and a
-- DBA can schedule them (pg_cron or cron + psql) without Python. docs/operations.md has the lines.
-- depends: 0003_odds
--
-- All three create their partitions and drop expired ones together, one UTC day at a time.
--
-- Migration lint (squawk, tests/test_lint.py), findings reviewed and accepted:
--   * require-lock-timeout, require-statement-timeout: every statement creates an object, or
--     comments on or fills one, created in this migration: nothing to wait for, nothing slow.
-- squawk-ignore-file require-lock-timeout, require-statement-timeout

create table oddsstore_partitioned_tables (
    table_name text not null,
    constraint oddsstore_partitioned_tables_pkey primary key (table_name)
);
comment on table oddsstore_partitioned_tables is 'Tables partitioned by day whose partitions oddsstore_ensure_partitions creates and retention drops, together.';

insert into oddsstore_partitioned_tables (table_name)
values ('odds_snapshots'), ('market_odds'), ('scrape_errors');

create function oddsstore_partitions()
returns table (parent text, name text, day date, rows_estimate bigint, total_bytes bigint, detach_pending boolean)
language sql
stable
set search_path from current
as $$
    /*
     * Lists the daily partitions of the registered tables with their UTC day, the planner's row
     * estimate (null before the first analyse), size on disk (heap, indexes, TOAST), and
     * whether a concurrent detach of it was interrupted (retention finishes those first).
     */
    select t.table_name,
           c.relname::text,
           -- The lower bound is rendered in the session's time zone, with its offset; read it back
           -- as timestamptz and take the UTC date, whatever the session's zone.
           (substring(pg_get_expr(c.relpartbound, c.oid) from $re$FROM \('([^']+)'\)$re$)::timestamptz
               at time zone 'UTC')::date,
           -- reltuples is -1 until the partition is first vacuumed or analysed: unknown.
           nullif(c.reltuples, -1)::bigint,
           pg_total_relation_size(c.oid),
           i.inhdetachpending
    from oddsstore_partitioned_tables as t
    join pg_inherits as i on i.inhparent = to_regclass(format('%I', t.table_name))
    join pg_class as c on c.oid = i.inhrelid
    order by 3, 1;
$$;
comment on function oddsstore_partitions() is 'Daily partitions of the odds and error tables: day, row estimate, bytes, pending detach.';

create function oddsstore_ensure_partitions(p_first_day date, p_last_day date)
returns setof text
language plpgsql
set search_path from current
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
comment on function oddsstore_ensure_partitions(date, date) is 'Creates missing daily partitions for UTC days first..last; idempotent and concurrency-safe.';

create function oddsstore_drop_expired_partitions(p_retention_days integer default 30)
returns setof text
language plpgsql
set search_path from current
-- A plain DETACH needs an ACCESS EXCLUSIVE lock on the parent; give up rather than queue behind
-- a long reader (and make every later reader queue behind us). Retry at the next run.
set lock_timeout = '5s'
as $$
/*
 * Drops the partitions of every registered table whose UTC day is older than
 * today - p_retention_days, and forgets latest_snapshots entries that pointed into them.
 * Returns the dropped partition names. For scheduling from SQL; the Python API and
 * `oddsstore maintain` use DETACH ... CONCURRENTLY instead, which never blocks readers.
 */
declare
    v_cutoff date := (now() at time zone 'UTC')::date - p_retention_days;
    v_part   record;
begin
    if p_retention_days is null or p_retention_days < 1 then
        raise exception 'oddsstore_drop_expired_partitions: retention must be at least 1 day, got %', p_retention_days;
    end if;
    perform pg_advisory_xact_lock(hashtext('oddsstore_partitions'));
    for v_part in
        select p.parent, p.name from oddsstore_partitions() as p where p.day < v_cutoff order by p.day, p.parent
    loop
        execute format('alter table %I detach partition %I', v_part.parent, v_part.name);
        execute format('drop table %I', v_part.name);
        return next v_part.name;
    end loop;
    delete from latest_snapshots where captured_at < v_cutoff::timestamp at time zone 'UTC';
end;
$$;
comment on function oddsstore_drop_expired_partitions(integer) is 'Drops daily partitions older than the retention period (plain DETACH, 5 s lock timeout).';
