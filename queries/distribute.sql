-- The distributed layout on Citus (docs/scaling.md): what `oddsstore distribute` runs on a
-- migrated database on a Citus coordinator. A DBA can run the same statements with psql.

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
