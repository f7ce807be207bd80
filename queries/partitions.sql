-- Partition lifecycle (the functions are in schema/0004_partitions.sql).

-- name: partitions
-- record_class: PartitionInfo
-- Every daily partition with its day, row estimate and size, oldest first.
select parent, name, day, rows_estimate, total_bytes, detach_pending
from oddsstore_partitions()
order by day, parent;

-- name: ensure_partitions$
-- Create the missing partitions for the UTC days first_day .. last_day; returns their names.
select coalesce(array_agg(name), '{}')
from oddsstore_ensure_partitions(:first_day, :last_day) as created (name);

-- name: expired_partitions
-- record_class: PartitionInfo
-- Partitions whose UTC day is before cutoff_day, oldest first, with a flag for a concurrent
-- detach that was interrupted (it must be finished with DETACH ... FINALIZE).
select parent, name, day, rows_estimate, total_bytes, detach_pending
from oddsstore_partitions()
where day < :cutoff_day
order by day, parent;

-- name: prepare_retention$
-- Forget pairs with nothing left after the cutoff; returns how many
-- (schema/0010_production_writes.sql). The days kept need nothing from the days dropped.
select oddsstore_prepare_retention(:cutoff);

-- name: lock_retention$
-- Take, or renew, the retention lease for :holder until now() + :ttl: one retention run at a
-- time. A lease row, not a session advisory lock: DETACH ... CONCURRENTLY cannot run in a
-- transaction, so a run spans many, and behind PgBouncer's transaction pooling each may run on
-- another server connection (a session lock would stay with whichever took it). true when held;
-- null while another run's lease has not expired. A run that dies leaves its lease to expire.
-- Unrelated to partition creation, so writers never wait for retention.
update oddsstore_retention_lease
set holder = :holder,
    expires_at = now() + :ttl::interval
where holder = :holder
   or expires_at < now()
returning true;

-- name: retention_lock_timeout$
-- For a plain DETACH (Citus): it takes an ACCESS EXCLUSIVE lock on the parent, so give up after
-- 5 s rather than queue behind a long reader (and make every later reader queue behind it), as
-- oddsstore_drop_expired_partitions does. For the rest of the caller's transaction.
select set_config('lock_timeout', '5s', true);

-- name: unlock_retention!
-- Give the lease of lock_retention back.
update oddsstore_retention_lease
set holder = null,
    expires_at = '-infinity'
where holder = :holder;

-- name: detached_leftovers$
-- Tables named like a registered table's day partition (<table>_pYYYYMMDD), of a day before
-- cutoff_day, that are no longer attached: a retention run that died between DETACH and DROP
-- leaves one behind. Retention drops them; nothing else would.
select coalesce(array_agg(c.relname::text order by c.relname), '{}')
from pg_class as c
join oddsstore_partitioned_tables as t
    on c.relname ~ ('^' || t.table_name || '_p[0-9]{8}$')
where c.relnamespace = current_schema()::regnamespace
  and c.relkind = 'r'
  and not c.relispartition
  -- substring() is null for other names, so to_date never sees one, whatever order the
  -- planner checks these conditions in.
  and to_date(substring(c.relname from '_p([0-9]{8})$'), 'YYYYMMDD') < :cutoff_day;
