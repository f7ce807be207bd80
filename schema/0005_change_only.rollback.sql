-- Rolls back 0005_change_only: rebuilds market_odds (every market of every snapshot) from the
-- change log, then drops the log and the current-state table. Takes time in proportion to the
-- snapshots times their markets; stop the writers of this version first.
--
-- Migration lint (squawk, tests/test_lint.py), findings reviewed and accepted:
--   * prefer-bigint-over-int: market_odds.event_id as 0003 defined it.
--   * ban-drop-function, ban-drop-table, require-lock-timeout, require-statement-timeout:
--     dropping what 0005 created, in a data migration whose time grows with the history. A
--     rollback is run on purpose, with the store's users stopped (see above).
-- squawk-ignore-file prefer-bigint-over-int
-- squawk-ignore-file ban-drop-function, ban-drop-table
-- squawk-ignore-file require-lock-timeout, require-statement-timeout

create table market_odds (
    snapshot_id         bigint           not null,
    captured_at         timestamptz      not null,
    event_id            integer          not null,
    line                double precision,
    handicap_home       double precision,
    handicap_away       double precision,
    betpawa_market_id   text             not null,
    betpawa_market_name text             not null,
    handicap_type       text,
    outcomes            jsonb            not null
) partition by range (captured_at);
comment on table market_odds is 'Every market of every snapshot (outcomes as JSONB). Daily partitions, same bounds as odds_snapshots.';
comment on column market_odds.snapshot_id is 'The odds_snapshots row (id, captured_at) this market belongs to.';
comment on column market_odds.captured_at is 'Copy of the snapshot''s captured_at: the partition key, and lets a lookup by snapshot touch one partition.';
comment on column market_odds.event_id is 'Copy of the snapshot''s event_id: the distribution column if the table is ever distributed (docs/scaling.md).';
comment on column market_odds.betpawa_market_id is 'Market type id as on BetPawa ("3743" = 1X2 - FT). With line, identifies the market within a snapshot.';
comment on column market_odds.line is 'Over/under total or handicap line; null for markets without one.';
comment on column market_odds.handicap_type is 'european or asian for handicap markets; null otherwise.';
comment on column market_odds.outcomes is 'JSON array of {name, odds, is_active}; odds are decimal prices above 1.0.';
create index market_odds_snapshot_id_idx on market_odds using brin (snapshot_id) with (pages_per_range = 8);
comment on index market_odds_snapshot_id_idx is 'Markets of one snapshot: latest_odds, odds_history. BRIN: snapshot_id grows with the physical order.';

update oddsstore_partitioned_tables set table_name = 'market_odds' where table_name = 'market_changes';
-- (A DO block: yoyo prints the rows a plain SELECT returns.)
do $$
begin
    perform oddsstore_ensure_partitions(p.day, p.day)
    from oddsstore_partitions() as p
    where p.parent = 'odds_snapshots';
end;
$$;

-- Each snapshot's markets: per market and line, the latest change at or before it, if listed.
insert into market_odds (snapshot_id, captured_at, event_id, line, handicap_home, handicap_away,
                         betpawa_market_id, betpawa_market_name, handicap_type, outcomes)
select s.id, s.captured_at, s.event_id, c.line, c.handicap_home, c.handicap_away,
       c.betpawa_market_id, c.betpawa_market_name, c.handicap_type, c.outcomes
from odds_snapshots as s
cross join lateral (
    select distinct on (mc.betpawa_market_id, coalesce(mc.line, 'NaN')) mc.*
    from market_changes as mc
    where mc.event_id = s.event_id
      and mc.bookmaker_id = s.bookmaker_id
      and mc.captured_at <= s.captured_at
    order by mc.betpawa_market_id, coalesce(mc.line, 'NaN'), mc.captured_at desc
) as c
where c.outcomes is not null
order by s.captured_at, s.id;

drop function oddsstore_prepare_retention(timestamptz);
drop table market_current;
drop table market_changes;

-- oddsstore_drop_expired_partitions as 0004_partitions defined it.
create or replace function oddsstore_drop_expired_partitions(p_retention_days integer default 30)
returns setof text
language plpgsql
set search_path from current
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
