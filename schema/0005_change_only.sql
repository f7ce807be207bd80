-- Change-only storage: keep every scrape's answer, store only what changed.
-- depends: 0004_partitions
--
-- Between two scrapes about 5% of markets change; market_odds stored all of them every time
-- (~20x the same odds). From here on:
--   * odds_snapshots stays: one row per scrape of an event at a bookmaker, the proof it was seen;
--   * market_changes (partitioned by day) logs a market's state only when it differs from its
--     state at the pair's previous snapshot: a new price, a suspension, a market appearing, or
--     disappearing (a row with null outcomes);
--   * market_current holds each market's state at the pair's latest snapshot, so latest_odds
--     reads no history at all.
-- The markets of any snapshot S are, per market and line, the latest market_changes row at or
-- before S.captured_at whose outcomes are not null. docs/schema.md explains how late batches and
-- retention keep that true.
--
-- Data: the existing market_odds rows are turned into changes and current state, then
-- market_odds is dropped. This runs in the migration's transaction (all or nothing) and takes
-- time in proportion to market_odds; stop the writers of the previous version first (they would
-- write into market_odds). Rolling back rebuilds market_odds from the changes.
--
-- Migration lint (squawk, tests/test_lint.py), findings reviewed and accepted:
--   * prefer-bigint-over-int: event_id and bookmaker_id have the type of the keys they
--     reference (0001_reference.sql); every change row carries them, 4 bytes each.
--   * require-lock-timeout, require-statement-timeout: a data migration run once at deploy,
--     with the previous version's writers stopped (see above). Its time grows with market_odds,
--     so a statement timeout would only make a large deploy fail. Its one lock that readers
--     notice is DROP TABLE market_odds (ACCESS EXCLUSIVE), taken last: it waits for open
--     transactions that have read market_odds, and later reads of market_odds wait for it.
-- squawk-ignore-file prefer-bigint-over-int
-- squawk-ignore-file require-lock-timeout, require-statement-timeout

create table market_changes (
    event_id            integer          not null,
    bookmaker_id        integer          not null,
    captured_at         timestamptz      not null,
    line                double precision,
    handicap_home       double precision,
    handicap_away       double precision,
    betpawa_market_id   text             not null,
    betpawa_market_name text,
    handicap_type       text,
    outcomes            jsonb
) partition by range (captured_at);
comment on table market_changes is 'Append-only log of market states, one row per change at a snapshot. Daily partitions on captured_at.';
comment on column market_changes.captured_at is 'The snapshot at which the market took this state (odds_snapshots.captured_at of the pair).';
comment on column market_changes.line is 'Over/under total or handicap line; null for markets without one. Part of the market key.';
comment on column market_changes.betpawa_market_name is 'Market name as shown; null on a row recording that the market disappeared.';
comment on column market_changes.outcomes is 'JSON array of {name, odds, is_active}; null: the market was no longer listed at this snapshot.';

-- The market key with its time, unique: one state per market, line and snapshot. It serves
-- every read of the log: the history of one market of an event (odds_history, line movement:
-- prefix event_id, betpawa_market_id), the state of a pair before a late snapshot and the
-- retention carry-forward (full key). A null line is keyed as NaN, which equals itself (a
-- plain null would not), so lookups and hash joins can match it.
create unique index market_changes_key_idx
    on market_changes (event_id, betpawa_market_id, bookmaker_id, (coalesce(line, 'NaN'::double precision)), captured_at);
comment on index market_changes_key_idx is 'Market key + time: odds_history, odds_at, late batches, retention carry-forward.';

create table market_current (
    event_id            integer          not null,
    bookmaker_id        integer          not null,
    changed_at          timestamptz      not null,
    line                double precision,
    handicap_home       double precision,
    handicap_away       double precision,
    betpawa_market_id   text             not null,
    betpawa_market_name text             not null,
    handicap_type       text,
    outcomes            jsonb            not null,
    constraint market_current_event_id_fkey foreign key (event_id) references events (id),
    constraint market_current_bookmaker_id_fkey foreign key (bookmaker_id) references bookmakers (id)
);
comment on table market_current is 'Each market as listed in the latest snapshot of its event x bookmaker pair. Maintained by the write path.';
comment on column market_current.changed_at is 'Since when the market has had this state (the market_changes row that set it).';

-- The key (null line as NaN, see market_changes_key_idx); leads with event_id, so it also
-- serves latest_odds (all markets of an event) and the write path's comparison with a batch.
create unique index market_current_key_idx
    on market_current (event_id, bookmaker_id, betpawa_market_id, (coalesce(line, 'NaN'::double precision)));
comment on index market_current_key_idx is 'Market key: latest_odds (event prefix) and the write path''s diff and upsert.';

-- From now on the partition functions manage market_changes instead of market_odds.
update oddsstore_partitioned_tables set table_name = 'market_changes' where table_name = 'market_odds';

-- Partitions of market_changes for every day that holds snapshots.
-- (A DO block: yoyo prints the rows a plain SELECT returns.)
do $$
begin
    perform oddsstore_ensure_partitions(p.day, p.day)
    from oddsstore_partitions() as p
    where p.parent = 'odds_snapshots';
end;
$$;

-- The previous snapshot of every snapshot, per pair: what each market is compared with.
create temporary table migration_snapshots on commit drop as
select id, event_id, bookmaker_id, captured_at,
       lag(id) over pair as previous_id,
       lag(captured_at) over pair as previous_at
from odds_snapshots
window pair as (partition by event_id, bookmaker_id order by captured_at);

-- Markets listed at a snapshot with a state they did not have at the previous one (or that
-- were not listed there).
insert into market_changes (event_id, bookmaker_id, captured_at, line, handicap_home, handicap_away,
                            betpawa_market_id, betpawa_market_name, handicap_type, outcomes)
select s.event_id, s.bookmaker_id, s.captured_at, m.line, m.handicap_home, m.handicap_away,
       m.betpawa_market_id, m.betpawa_market_name, m.handicap_type, m.outcomes
from migration_snapshots as s
join market_odds as m on m.snapshot_id = s.id and m.captured_at = s.captured_at
where not exists (
    select
    from market_odds as p
    where p.snapshot_id = s.previous_id
      and p.captured_at = s.previous_at
      and p.betpawa_market_id = m.betpawa_market_id
      and coalesce(p.line, 'NaN') = coalesce(m.line, 'NaN')
      and (p.betpawa_market_name, p.handicap_type, p.handicap_home, p.handicap_away, p.outcomes)
          is not distinct from (m.betpawa_market_name, m.handicap_type, m.handicap_home, m.handicap_away, m.outcomes)
);

-- Markets listed at the previous snapshot and not at this one: they disappeared.
insert into market_changes (event_id, bookmaker_id, captured_at, line, betpawa_market_id)
select s.event_id, s.bookmaker_id, s.captured_at, p.line, p.betpawa_market_id
from migration_snapshots as s
join market_odds as p on p.snapshot_id = s.previous_id and p.captured_at = s.previous_at
where not exists (
    select
    from market_odds as m
    where m.snapshot_id = s.id
      and m.captured_at = s.captured_at
      and m.betpawa_market_id = p.betpawa_market_id
      and coalesce(m.line, 'NaN') = coalesce(p.line, 'NaN')
);

-- The current state: the markets of each pair's latest snapshot, each since its last change.
insert into market_current (event_id, bookmaker_id, changed_at, line, handicap_home, handicap_away,
                            betpawa_market_id, betpawa_market_name, handicap_type, outcomes)
select ls.event_id, ls.bookmaker_id, c.captured_at, m.line, m.handicap_home, m.handicap_away,
       m.betpawa_market_id, m.betpawa_market_name, m.handicap_type, m.outcomes
from latest_snapshots as ls
join market_odds as m on m.snapshot_id = ls.snapshot_id and m.captured_at = ls.captured_at
cross join lateral (
    select max(mc.captured_at) as captured_at
    from market_changes as mc
    where mc.event_id = ls.event_id
      and mc.bookmaker_id = ls.bookmaker_id
      and mc.betpawa_market_id = m.betpawa_market_id
      and coalesce(mc.line, 'NaN') = coalesce(m.line, 'NaN')
      and mc.captured_at <= ls.captured_at
) as c;

-- squawk's ban-drop-table, accepted: every market_odds row is now in market_changes and
-- market_current (above, in this transaction), and the rollback rebuilds the table from them.
-- squawk-ignore ban-drop-table
drop table market_odds;

create function oddsstore_prepare_retention(p_cutoff timestamptz)
returns bigint
language plpgsql
set search_path from current
as $$
/*
 * Makes the days before p_cutoff safe to drop, and returns how many changes it carried forward.
 * A market unchanged since before the cutoff has its state only in a row that is about to be
 * dropped: that state is logged again at the pair's first snapshot at or after the cutoff
 * (unless a change is logged there already), so every snapshot kept still reads right.
 * Pairs with no snapshot left after the cutoff are forgotten (latest_snapshots, market_current).
 * Takes the write path's merge lock: a batch being merged meanwhile would race the carry.
 */
declare
    v_carried bigint;
begin
    perform pg_advisory_xact_lock(hashtext('oddsstore_merge'));

    with expiring as (
        -- The state of each market just before the cutoff, from the days about to be dropped.
        select distinct on (c.event_id, c.bookmaker_id, c.betpawa_market_id, coalesce(c.line, 'NaN'))
               c.*
        from market_changes as c
        where c.captured_at < p_cutoff
        order by c.event_id, c.bookmaker_id, c.betpawa_market_id, coalesce(c.line, 'NaN'), c.captured_at desc
    ),
    first_kept as (
        select p.event_id, p.bookmaker_id, f.captured_at
        from (select distinct event_id, bookmaker_id from expiring where outcomes is not null) as p
        cross join lateral (
            select s.captured_at
            from odds_snapshots as s
            where s.event_id = p.event_id
              and s.bookmaker_id = p.bookmaker_id
              and s.captured_at >= p_cutoff
            order by s.captured_at
            limit 1
        ) as f
    )
    insert into market_changes (event_id, bookmaker_id, captured_at, line, handicap_home, handicap_away,
                                betpawa_market_id, betpawa_market_name, handicap_type, outcomes)
    select e.event_id, e.bookmaker_id, f.captured_at, e.line, e.handicap_home, e.handicap_away,
           e.betpawa_market_id, e.betpawa_market_name, e.handicap_type, e.outcomes
    from expiring as e
    join first_kept as f on f.event_id = e.event_id and f.bookmaker_id = e.bookmaker_id
    where e.outcomes is not null
      and not exists (
          select
          from market_changes as k
          where k.event_id = e.event_id
            and k.betpawa_market_id = e.betpawa_market_id
            and k.bookmaker_id = e.bookmaker_id
            and coalesce(k.line, 'NaN') = coalesce(e.line, 'NaN')
            and k.captured_at = f.captured_at
      );
    get diagnostics v_carried = row_count;

    delete from market_current as c
    using latest_snapshots as ls
    where ls.event_id = c.event_id
      and ls.bookmaker_id = c.bookmaker_id
      and ls.captured_at < p_cutoff;
    delete from latest_snapshots where captured_at < p_cutoff;
    return v_carried;
end;
$$;
comment on function oddsstore_prepare_retention(timestamptz) is 'Carries market states forward past the cutoff and forgets pairs with nothing left; run before dropping the days before it.';

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
