-- Rolls back 0006_roles: takes back what 0006 granted, makes oddsstore_ensure_partitions
-- SECURITY INVOKER again (0004's definition), and drops the two roles only where that is safe.
--
-- Roles are cluster-wide: other databases of the cluster (another environment, clones made
-- from this one) may still grant to them, and login roles may be members. A role is dropped
-- only if nothing in any database depends on it (pg_shdepend: no grants, owns nothing) and no
-- other role is a member of it; otherwise it is left for a DBA (a notice says why).

-- As in 0006: give up on a lock after 5 s rather than queue behind DDL; nothing here is slow.
set local lock_timeout = '5s';
set local statement_timeout = '1min';

-- 0004's settings again: SECURITY INVOKER, and the deploying session's search_path, which is
-- what 0004's "set search_path from current" captured.
alter function oddsstore_ensure_partitions(date, date) security invoker set search_path from current;
comment on function oddsstore_ensure_partitions(date, date) is 'Creates missing daily partitions for UTC days first..last; idempotent and concurrency-safe.';

-- Functions: back to PUBLIC's default EXECUTE.
revoke execute on function oddsstore_partitions(), oddsstore_ensure_partitions(date, date)
from oddsstore_reader, oddsstore_writer;
grant execute on function
    oddsstore_partitions(),
    oddsstore_ensure_partitions(date, date),
    oddsstore_drop_expired_partitions(integer),
    oddsstore_prepare_retention(timestamptz)
to public;

revoke usage on sequence odds_snapshots_id_seq from oddsstore_writer;
revoke all on table
    sports, tournaments, bookmakers, events, event_bookmakers,
    scrape_runs, scrape_errors,
    odds_snapshots, market_changes, market_current, latest_snapshots,
    oddsstore_partitioned_tables
from oddsstore_reader, oddsstore_writer;

do $$
declare
    v_role text;
begin
    -- Revoking what was never granted (a grant 0006 left to the DBA) is a no-op.
    if has_schema_privilege(current_schema(), 'USAGE WITH GRANT OPTION') then
        execute format('revoke usage on schema %I from oddsstore_reader, oddsstore_writer', current_schema());
    end if;
    if has_database_privilege(current_database(), 'CONNECT WITH GRANT OPTION')
       and has_database_privilege(current_database(), 'TEMPORARY WITH GRANT OPTION') then
        execute format('revoke connect, temporary on database %I from oddsstore_reader, oddsstore_writer', current_database());
    end if;

    foreach v_role in array array['oddsstore_writer', 'oddsstore_reader'] loop
        if exists (
            select
            from pg_shdepend as d
            join pg_roles as r on r.oid = d.refobjid
            where d.refclassid = 'pg_authid'::regclass and r.rolname = v_role
        ) then
            raise notice 'oddsstore 0006 rollback: role % kept: objects in this or another database still grant to it or are owned by it', v_role;
        elsif exists (
            -- A role that creates another with CREATEROLE (PostgreSQL 16+) is made an admin member
            -- of it: that membership is ours, not a deployer's.
            select
            from pg_auth_members as m
            join pg_roles as r on r.oid = m.roleid
            where r.rolname = v_role and m.member <> (select oid from pg_roles where rolname = current_user)
        ) then
            raise notice 'oddsstore 0006 rollback: role % kept: other roles are members of it', v_role;
        elsif exists (select from pg_roles where rolname = v_role) then
            execute format('drop role %I', v_role);
        end if;
    end loop;
end;
$$;
