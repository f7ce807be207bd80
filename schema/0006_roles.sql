-- Roles: oddsstore_reader (reads), oddsstore_writer (writes odds and scrape data, no DDL).
-- depends: 0005_change_only
--
-- Three kinds of user:
--   * the owner: the role that runs these migrations. It owns every table and function, and it
--     alone does DDL and maintenance (retention drops partitions: DETACH and DROP need the
--     owner). Use a dedicated role, not a superuser: the one SECURITY DEFINER function below
--     runs with its rights.
--   * oddsstore_reader: NOLOGIN group role; reads every odds, reference and scrape table.
--   * oddsstore_writer: NOLOGIN group role; what the scraper's write path needs, nothing more:
--     it inserts and upserts rows, and creates day partitions only through
--     oddsstore_ensure_partitions (SECURITY DEFINER). It cannot create, alter, drop or truncate
--     anything, nor delete history.
-- Deployers give them to their login roles:  grant oddsstore_writer to scraper;
-- The writer's rights are granted in full (not by membership of the reader), so the owner needs
-- no ADMIN option on roles a DBA may have created beforehand.
--
-- Roles belong to the whole cluster, not to this database: they are created only if missing, so
-- several databases (staging, per-test clones) share them. Creating them needs CREATEROLE; a DBA
-- can instead create both roles before the first deploy, and this migration then only grants.
--
-- Every table added by a later migration must grant to these roles in that migration. Daily
-- partitions need no grants: a query through the parent table is checked against the parent
-- only, and both roles reach the odds and error tables only through their parents.
--
-- Locks: GRANT and REVOKE on a table take a lock that readers and writers do not conflict with
-- (tests/test_deploy.py checks it with an open reader), but that waits for DDL such as a plain
-- DETACH. Give up after 5 s rather than hold the locks already taken while queueing (retry the
-- deploy); nothing here is slow, so a minute is a generous statement bound.
set local lock_timeout = '5s';
set local statement_timeout = '1min';

do $$
begin
    -- COMMENT ON ROLE needs the rights that created the role, so only a role made here gets one.
    -- Deploys of two databases at once may both find a role missing: the later CREATE ROLE then
    -- fails (duplicate_object, or unique_violation while the other is uncommitted) and is skipped.
    if not exists (select from pg_roles where rolname = 'oddsstore_reader') then
        begin
            create role oddsstore_reader nologin;
            comment on role oddsstore_reader is
                'oddsstore: reads odds, reference and scrape data. Grant it to login roles.';
        exception when duplicate_object or unique_violation then
            raise notice 'oddsstore 0006: oddsstore_reader was created meanwhile by another deploy';
        end;
    end if;
    if not exists (select from pg_roles where rolname = 'oddsstore_writer') then
        begin
            create role oddsstore_writer nologin;
            comment on role oddsstore_writer is
                'oddsstore: the scraper''s write path (inserts, upserts, day partitions through oddsstore_ensure_partitions); no DDL.';
        exception when duplicate_object or unique_violation then
            raise notice 'oddsstore 0006: oddsstore_writer was created meanwhile by another deploy';
        end;
    end if;
end;
$$;

-- The schema and the database. Names are only known at deploy time (dynamic SQL, quoted with
-- %I). CONNECT and TEMPORARY are PUBLIC's by default; granting them here keeps both roles
-- working where a DBA has revoked them from PUBLIC. TEMPORARY: every OddsStore connection
-- creates its own temporary stage tables when it opens (queries/odds.sql, create_stage), the
-- reader's included. An owner without the right to grant these (not the owner of the schema or
-- database) is told so and the grant is left to the DBA. Database-level grants are not copied
-- by CREATE DATABASE ... TEMPLATE: a database cloned from this one has PUBLIC's defaults only.
do $$
begin
    if has_schema_privilege(current_schema(), 'USAGE WITH GRANT OPTION') then
        execute format('grant usage on schema %I to oddsstore_reader, oddsstore_writer', current_schema());
    else
        raise notice 'oddsstore 0006: cannot grant USAGE on schema %; a DBA must grant it to oddsstore_reader and oddsstore_writer', current_schema();
    end if;
    if has_database_privilege(current_database(), 'CONNECT WITH GRANT OPTION')
       and has_database_privilege(current_database(), 'TEMPORARY WITH GRANT OPTION') then
        execute format('grant connect, temporary on database %I to oddsstore_reader, oddsstore_writer', current_database());
    else
        raise notice 'oddsstore 0006: cannot grant CONNECT, TEMPORARY on database %; a DBA must grant them to oddsstore_reader and oddsstore_writer', current_database();
    end if;
end;
$$;

-- Reading: every table of the store. oddsstore_partitioned_tables is read by oddsstore_partitions().
grant select on table
    sports, tournaments, bookmakers, events, event_bookmakers,
    scrape_runs, scrape_errors,
    odds_snapshots, market_changes, market_current, latest_snapshots,
    oddsstore_partitioned_tables
to oddsstore_reader, oddsstore_writer;

-- Writing, table by table: what queries/*.sql do, nothing more.
-- Reference data is upserted (INSERT ... ON CONFLICT DO UPDATE), never deleted.
grant insert, update on table sports, tournaments, bookmakers, events, event_bookmakers to oddsstore_writer;
-- Runs are opened (INSERT) and closed (UPDATE); errors are only appended.
grant insert, update on table scrape_runs to oddsstore_writer;
grant insert on table scrape_errors to oddsstore_writer;
-- History is append-only for the writer: no UPDATE or DELETE on odds_snapshots or
-- market_changes. Retention (the owner) is the only thing that removes history.
grant insert on table odds_snapshots, market_changes to oddsstore_writer;
-- Current state moves with every batch: upserts, and markets that disappear are deleted.
grant insert, update, delete on table market_current, latest_snapshots to oddsstore_writer;
-- Snapshot ids (reserve_snapshot_ids calls nextval). Identity columns need no sequence grant.
grant usage on sequence odds_snapshots_id_seq to oddsstore_writer;

-- Functions are executable by PUBLIC by default; from here on only by who needs them. Retention
-- (oddsstore_drop_expired_partitions, oddsstore_prepare_retention) stays with the owner.
revoke execute on function
    oddsstore_partitions(),
    oddsstore_ensure_partitions(date, date),
    oddsstore_drop_expired_partitions(integer),
    oddsstore_prepare_retention(timestamptz)
from public;
grant execute on function oddsstore_partitions() to oddsstore_reader, oddsstore_writer;

-- oddsstore_ensure_partitions becomes SECURITY DEFINER: the write path calls it inside its
-- transaction when a batch needs a day that has no partition yet, and creating and attaching a
-- partition needs the owner of the parent table. It runs with the owner's rights, so (as the
-- PostgreSQL manual's "Writing SECURITY DEFINER Functions Safely" asks) its search_path is
-- pinned: the schema the tables live in (the first schema of the migration's search_path),
-- then pg_temp last, so a caller's temporary table cannot stand in for the partition registry
-- or a parent table. The function's body stays 0004's; only these two settings change. Its
-- arguments are two dates; every name it builds comes from oddsstore_partitioned_tables, which
-- the writer cannot change. (Dynamic SQL only to name the schema, quoted with %I.)
do $$
begin
    execute format(
        'alter function oddsstore_ensure_partitions(date, date) security definer set search_path = %I, pg_temp',
        current_schema());
end;
$$;
comment on function oddsstore_ensure_partitions(date, date) is 'Creates missing daily partitions for UTC days first..last; idempotent and concurrency-safe. SECURITY DEFINER (runs as the owner) so oddsstore_writer can call it.';

grant execute on function oddsstore_ensure_partitions(date, date) to oddsstore_writer;
