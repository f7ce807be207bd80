-- Rolls back 0012_retention_locks: oddsstore_drop_expired_partitions as 0005_change_only defined
-- it (a 5 s lock timeout on every lock, parents locked one by one by plain DETACH).
set local lock_timeout = '5s';
set local statement_timeout = '1min';

create or replace function oddsstore_drop_expired_partitions(p_retention_days integer default 30)
returns setof text
language plpgsql
set search_path from current
-- A plain DETACH needs an ACCESS EXCLUSIVE lock on the parent; give up rather than queue behind
-- a long reader (and make every later reader queue behind us). Retry at the next run.
set lock_timeout = '5s'
as $$
/*
 * Drops the partitions of every registered table whose UTC day is older than
 * today - p_retention_days, after carrying forward the market states they hold
 * (oddsstore_prepare_retention). Returns the dropped partition names. For scheduling from SQL;
 * the Python API and `oddsstore maintain` use DETACH ... CONCURRENTLY instead.
 */
declare
    v_cutoff date := (now() at time zone 'UTC')::date - p_retention_days;
    v_part   record;
begin
    if p_retention_days is null or p_retention_days < 1 then
        raise exception 'oddsstore_drop_expired_partitions: retention must be at least 1 day, got %', p_retention_days;
    end if;
    -- Partition lock before the merge lock (taken by prepare_retention), the order the write
    -- path takes them in: a writer that created a partition holds the first and waits for the
    -- second.
    perform pg_advisory_xact_lock(hashtext('oddsstore_partitions'));
    perform oddsstore_prepare_retention(v_cutoff::timestamp at time zone 'UTC');
    for v_part in
        select p.parent, p.name from oddsstore_partitions() as p where p.day < v_cutoff order by p.day, p.parent
    loop
        execute format('alter table %I detach partition %I', v_part.parent, v_part.name);
        execute format('drop table %I', v_part.name);
        return next v_part.name;
    end loop;
end;
$$;
comment on function oddsstore_drop_expired_partitions(integer) is 'Drops daily partitions older than the retention period (plain DETACH, 5 s lock timeout).';
