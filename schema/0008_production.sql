-- Production PostgreSQL: row estimates that keep JIT off small reads, partition creation
-- bounded in SQL, a migrate with nothing to do that needs no lock, room for HOT updates, and no
-- index without a query.
-- depends: 0007_real_data
--
-- Locks: every statement here either creates an object, changes a function, takes SHARE UPDATE
-- EXCLUSIVE (ALTER TABLE ... SET storage parameters: readers and writers go on), or drops an
-- index no query uses (ACCESS EXCLUSIVE on scrape_runs and scrape_errors, held for the
-- milliseconds of the drop). Give up after 5 s rather than queue behind a long transaction while
-- holding the locks already taken (retry the deploy); nothing here is slow.
--
-- Migration lint (squawk, tests/test_lint.py), findings reviewed and accepted:
--   * prefer-bigint-over-int: oddsstore_settings holds two day counts.
--   * require-concurrent-index-deletion: the two indexes are dropped without CONCURRENTLY, which
--     cannot run in a transaction (yoyo runs each migration in one) nor on the partitioned
--     scrape_errors_bookmaker_id_idx. Both drops are catalog changes bounded by the lock timeout
--     below; scrape_runs holds a few hundred rows a day.
-- squawk-ignore-file prefer-bigint-over-int, require-concurrent-index-deletion
set local lock_timeout = '5s';
set local statement_timeout = '1min';

-- --- outcomes as rows, with an estimate the planner can use ---------------------------------

-- The analytics (queries/analytics.sql) turn each market's outcomes array into rows.
-- jsonb_to_recordset is estimated at 100 rows per call while a market lists ~3 outcomes (up to
-- ~50); over thousands of markets the inflated cost crosses jit_above_cost and
-- jit_optimize_above_cost, and on a server built with LLVM (Debian's) a 100 ms query spent
-- seconds compiling. This wrapper declares ROWS 3. STRICT is what makes that estimate stick: a
-- plain SQL set-returning function is inlined into the calling query, and the planner then sees
-- jsonb_to_recordset's 100 again. (A null array yields no rows, as jsonb_to_recordset's does.)
create function oddsstore_outcomes(p_outcomes jsonb)
returns table (name text, odds double precision, is_active boolean, "position" bigint)
language sql
immutable
strict
parallel safe
rows 3
as $$
    select o.name, o.odds, o.is_active, o."position"
    from rows from (
        jsonb_to_recordset(p_outcomes) as (name text, odds double precision, is_active boolean)
    ) with ordinality as o (name, odds, is_active, "position");
$$;
comment on function oddsstore_outcomes(jsonb) is 'A market''s outcomes array as rows (name, odds, is_active, position from 1); ROWS 3 so that analytics are planned, and JIT-compiled, for what a market holds.';

-- --- the partition window, in SQL ----------------------------------------------------------

-- The days a writer may have partitions created for. oddsstore_ensure_partitions runs with the
-- owner's rights; without a bound in SQL, any login granted oddsstore_writer could create a
-- partition for every day of 2030 (a planner cost on every read) or re-create days retention
-- dropped. The store's own window (retention_days, days_ahead in Python) is checked before a
-- write; this is the bound the database keeps whatever the client. Only the owner may change it.
create table oddsstore_settings (
    singleton      boolean not null default true,
    retention_days integer not null default 30,
    days_ahead     integer not null default 7,
    constraint oddsstore_settings_pkey primary key (singleton),
    constraint oddsstore_settings_singleton_chk check (singleton),
    constraint oddsstore_settings_retention_days_chk check (retention_days >= 1),
    constraint oddsstore_settings_days_ahead_chk check (days_ahead >= 0)
);
comment on table oddsstore_settings is 'One row: the UTC days [today - retention_days, today + days_ahead] for which oddsstore_ensure_partitions creates partitions when a role other than the owner calls it. Changed by the owner only.';
comment on column oddsstore_settings.retention_days is 'Days back a writer may have partitions created for; keep it at least the stores'' retention_days.';
comment on column oddsstore_settings.days_ahead is 'Days after today a writer may have partitions created for; keep it at least the stores'' and maintain''s days_ahead.';
insert into oddsstore_settings default values;
grant select on table oddsstore_settings to oddsstore_reader, oddsstore_writer;

-- 0004's function with the window applied to callers that are not the owner. The owner (and a
-- superuser) may still create any day: it can run DDL anyway, and backfills need old days.
-- CREATE OR REPLACE keeps the grants; SECURITY DEFINER and the pinned search_path are set again
-- below, as 0006 set them.
create or replace function oddsstore_ensure_partitions(p_first_day date, p_last_day date)
returns setof text
language plpgsql
as $$
/*
 * Creates the missing daily partitions of every registered table for the UTC days
 * p_first_day .. p_last_day and returns the names it created. Idempotent, and safe when several
 * sessions call it at once: they queue on one advisory lock and the later ones find the work done.
 * For a caller that is not a member of the owner's role, days outside oddsstore_settings' window
 * are skipped (nothing is created for them, and no error is raised: the write that needed such a
 * day then fails for want of a partition).
 */
declare
    v_table     text;
    v_day       date;
    v_partition text;
    v_from      timestamptz;
    v_today     date := (now() at time zone 'UTC')::date;
    v_settings  oddsstore_settings;
begin
    if p_first_day is null or p_last_day is null or p_last_day < p_first_day then
        raise exception 'oddsstore_ensure_partitions: bad day range % .. %', p_first_day, p_last_day
            using hint = 'Pass the first and last UTC day, first <= last.';
    end if;
    if p_last_day - p_first_day > 400 then
        raise exception 'oddsstore_ensure_partitions: % days requested (% .. %), at most 401 at a time',
            p_last_day - p_first_day + 1, p_first_day, p_last_day;
    end if;

    -- SECURITY DEFINER: current_user is the owner, session_user the login that called.
    if not pg_has_role(session_user, current_user, 'MEMBER') then
        select * into strict v_settings from oddsstore_settings;
        p_first_day := greatest(p_first_day, v_today - v_settings.retention_days);
        p_last_day := least(p_last_day, v_today + v_settings.days_ahead);
        if p_last_day < p_first_day then
            return;
        end if;
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
        -- As in 0004: an empty table attached afterwards needs only SHARE UPDATE EXCLUSIVE on
        -- the parent, where CREATE TABLE ... PARTITION OF would take ACCESS EXCLUSIVE.
        execute format(
            'create table %I (like %I including defaults including constraints including storage including compression)',
            v_partition, v_table);
        execute format('alter table %I attach partition %I for values from (%L) to (%L)',
            v_table, v_partition, v_from, v_from + interval '1 day');
        return next v_partition;
    end loop;
end;
$$;

-- As 0006: runs as the owner, search_path pinned to the tables' schema with pg_temp last.
do $$
begin
    execute format(
        'alter function oddsstore_ensure_partitions(date, date) security definer set search_path = %I, pg_temp',
        current_schema());
end;
$$;
comment on function oddsstore_ensure_partitions(date, date) is 'Creates missing daily partitions for UTC days first..last; idempotent and concurrency-safe. SECURITY DEFINER (runs as the owner) so oddsstore_writer can call it; other callers than the owner only within oddsstore_settings'' window.';

-- --- one retention run at a time, whatever the connection pooling --------------------------

-- The Python retention path (oddsstore/partitions.py, drop_expired) held a session advisory lock
-- across its steps. DETACH ... CONCURRENTLY must run outside a transaction, so those steps are
-- separate transactions, and behind PgBouncer's transaction pooling each may run on a different
-- server connection: the lock would be taken on one and never released. A lease row does not
-- care which connection renews it (queries/partitions.sql, lock_retention). The owner's only.
create table oddsstore_retention_lease (
    singleton  boolean     not null default true,
    holder     text,
    expires_at timestamptz not null default '-infinity',
    constraint oddsstore_retention_lease_pkey primary key (singleton),
    constraint oddsstore_retention_lease_singleton_chk check (singleton)
);
comment on table oddsstore_retention_lease is 'One row: which retention run may detach and drop partitions (holder) until when (expires_at). Renewed by the run before each partition; a run that died is replaced once its lease expires.';
insert into oddsstore_retention_lease default values;

-- --- migrate with nothing pending ----------------------------------------------------------

-- OddsStore.migrate() first reads which migrations are applied (queries/schema.sql) and does
-- nothing more when none is pending, so the reader and writer roles can run it (the README's
-- tour does) without yoyo's lock table, which only the owner may write. yoyo's own table, so
-- only if this deploy went through yoyo (it always does; the check keeps a hand-run file safe).
do $$
begin
    if to_regclass('_yoyo_migration') is not null then
        grant select on table _yoyo_migration to oddsstore_reader, oddsstore_writer;
    end if;
end;
$$;

-- --- room for HOT updates --------------------------------------------------------------------

-- Every write updates the row of each pair it wrote (latest_snapshots) and the markets that
-- changed (market_current). Updated rows that fit on their page are HOT updates: no index entry,
-- no index bloat. With full pages 42% (latest_snapshots) and 9% (market_current) of updates were
-- not HOT. Free space on each page, and vacuum sooner than the 20% default so it is reused.
-- Applies to pages written from now on; a VACUUM FULL or pg_repack applies it to existing ones.
alter table latest_snapshots set (
    fillfactor = 50, autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05
);
alter table market_current set (
    fillfactor = 80, autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05
);

-- --- indexes no query uses -----------------------------------------------------------------

-- The seed plan's status and bookmaker indexes: no query of queries/ filters scrape runs by
-- status or errors by bookmaker alone (error_summary reads errors by time), so they only cost
-- writes and space.
drop index scrape_runs_status_idx;
drop index scrape_errors_bookmaker_id_idx;

-- --- roles of this database only ------------------------------------------------------------

-- oddsstore_reader and oddsstore_writer (0006) belong to the whole cluster: a login granted
-- oddsstore_writer for staging may also write production when both databases live in one
-- cluster. So each database also gets roles of its own, oddsstore_reader_<database> and
-- oddsstore_writer_<database> (NOLOGIN; the name cut at PostgreSQL's 63 bytes), granted here
-- exactly what the shared roles are granted in this database. Grant those to logins to confine
-- them to one database; the shared roles keep working as before. A later migration that grants
-- to the shared roles must grant the same to these. Creating roles needs CREATEROLE: without
-- it, a notice says which roles a DBA must create, and the grants are made if they exist.
-- Object grants are copied by CREATE DATABASE ... TEMPLATE, so a clone answers to its
-- template's roles until it is migrated as a database of its own.
do $$
declare
    v_shared text;
    v_own    text;
    v_grant  record;
begin
    foreach v_shared in array array['oddsstore_reader', 'oddsstore_writer'] loop
        v_own := left(v_shared || '_' || current_database(), 63);
        if not exists (select from pg_roles where rolname = v_own) then
            begin
                execute format('create role %I nologin', v_own);
                execute format('comment on role %I is %L', v_own,
                    format('oddsstore: %s for database %s only. Grant it to login roles.', v_shared, current_database()));
            exception when insufficient_privilege then
                raise notice 'oddsstore 0008: cannot create role %; a DBA must create it (NOLOGIN) and re-run the grants', v_own;
                continue;
            end;
        end if;
        -- Every privilege the shared role holds in this database, on the database, the schema,
        -- tables, sequences and functions, read from the catalog's ACLs.
        for v_grant in
            select format('grant %s on database %I to %I', a.privilege_type, d.datname, v_own) as statement
            from pg_database as d, aclexplode(d.datacl) as a
            where d.datname = current_database() and a.grantee = v_shared::regrole
            union all
            select format('grant %s on schema %I to %I', a.privilege_type, n.nspname, v_own)
            from pg_namespace as n, aclexplode(n.nspacl) as a
            where n.oid = current_schema()::regnamespace and a.grantee = v_shared::regrole
            union all
            select format('grant %s on %s %s to %I', a.privilege_type,
                          case when c.relkind = 'S' then 'sequence' else 'table' end, c.oid::regclass, v_own)
            from pg_class as c, aclexplode(c.relacl) as a
            where c.relnamespace = current_schema()::regnamespace and a.grantee = v_shared::regrole
            union all
            select format('grant execute on function %s to %I', p.oid::regprocedure, v_own)
            from pg_proc as p, aclexplode(p.proacl) as a
            where p.pronamespace = current_schema()::regnamespace and a.grantee = v_shared::regrole
        loop
            execute v_grant.statement;
        end loop;
    end loop;
end;
$$;

-- --- comments that outlived what they described --------------------------------------------

-- 0003's comment named market_odds, which 0005 dropped.
comment on column odds_snapshots.id is 'Surrogate id (odds_snapshots_id_seq, reserved by the write path); latest_snapshots.snapshot_id points here. Unique by construction, not by index.';
