-- Rolls back 0014_retention_refuses_on_citus: oddsstore_drop_expired_partitions as
-- 0012_retention_locks defined it (no check for the citus extension).
set local lock_timeout = '5s';
set local statement_timeout = '1min';

create or replace function oddsstore_drop_expired_partitions(p_retention_days integer default 30)
returns setof text
language plpgsql
set search_path from current
-- No timeout while waiting for the write locks (a writer holds its pairs' locks for one write);
-- the parents' locks get theirs below. Restored when the function returns.
set lock_timeout = '0'
as $$
/*
 * Drops the partitions of every registered table whose UTC day is older than
 * today - p_retention_days, after forgetting the pairs with no snapshot left
 * (oddsstore_prepare_retention). Returns the dropped partition names. For scheduling from SQL
 * (pg_cron): call it in a transaction of its own, which it keeps short; the locks on the
 * parents are held until that transaction ends. The Python API and `oddsstore maintain` detach
 * CONCURRENTLY instead, which never blocks a writer.
 */
declare
    v_cutoff  date := (now() at time zone 'UTC')::date - p_retention_days;
    v_parents text;
    v_part    record;
    v_attempt integer := 0;
begin
    if p_retention_days is null or p_retention_days < 1 then
        raise exception 'oddsstore_drop_expired_partitions: retention must be at least 1 day, got %', p_retention_days;
    end if;
    -- One retention run at a time, Python's included (queries/partitions.sql, lock_retention).
    update oddsstore_retention_lease
    set holder = 'oddsstore_drop_expired_partitions', expires_at = now() + interval '1 hour'
    where expires_at < now();
    if not found then
        raise exception 'oddsstore_drop_expired_partitions: another retention run holds the lease'
            using errcode = 'lock_not_available', hint = 'Run it again once that run has ended.';
    end if;
    -- Partition lock before the pair locks, the order the write path takes them in.
    perform pg_advisory_xact_lock(hashtext('oddsstore_partitions'));
    perform oddsstore_prepare_retention(v_cutoff::timestamp at time zone 'UTC');
    select string_agg(distinct format('%I', p.parent), ', ')
    into v_parents
    from oddsstore_partitions() as p
    where p.day < v_cutoff;
    if v_parents is not null then
        -- Every parent at once, or none: a failed attempt's locks are released with its
        -- subtransaction, so writers never wait for a parent held while another is awaited.
        perform set_config('lock_timeout', '200ms', true);
        loop
            begin
                execute format('lock table only %s in access exclusive mode', v_parents);
                exit;
            exception when lock_not_available then
                v_attempt := v_attempt + 1;
                if v_attempt >= 300 then
                    raise exception 'oddsstore_drop_expired_partitions: % stayed busy for % attempts', v_parents, v_attempt
                        using errcode = 'lock_not_available',
                              hint = 'Run it again, or use `oddsstore maintain` (DETACH CONCURRENTLY, no writer waits).';
                end if;
                perform pg_sleep(0.2);
            end;
        end loop;
        for v_part in
            select p.parent, p.name from oddsstore_partitions() as p where p.day < v_cutoff order by p.day, p.parent
        loop
            execute format('alter table %I detach partition %I', v_part.parent, v_part.name);
            execute format('drop table %I', v_part.name);
            return next v_part.name;
        end loop;
    end if;
    update oddsstore_retention_lease set holder = null, expires_at = '-infinity';
end;
$$;
comment on function oddsstore_drop_expired_partitions(integer) is 'Drops daily partitions older than the retention period: parents locked all at once, 200 ms an attempt; for pg_cron (oddsstore maintain detaches CONCURRENTLY).';
