-- The schema itself: which migrations are applied, and the window the database keeps.

-- name: applied_migrations$
-- The hashes of the migrations yoyo has applied (yoyo's own table). OddsStore.migrate() compares
-- them with schema/ and, with nothing pending, stops there: no lock, nothing written, so the
-- reader and writer roles can run it (schema/0008_production.sql grants them this read).
select coalesce(array_agg(migration_hash), '{}')
from _yoyo_migration;

-- name: partition_window^
-- record_class: PartitionWindowSetting
-- The UTC days for which oddsstore_ensure_partitions creates partitions when a role other than
-- the owner calls it (schema/0008_production.sql): today - retention_days .. today + days_ahead.
select (now() at time zone 'UTC')::date - retention_days as first_day,
       (now() at time zone 'UTC')::date + days_ahead as last_day,
       pg_has_role(session_user, (select relowner from pg_class where oid = 'oddsstore_settings'::regclass), 'MEMBER')
           as unbounded
from oddsstore_settings;
