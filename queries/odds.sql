-- Odds: the write path's set-based steps, and the reads (schema/0003_odds.sql,
-- schema/0005_change_only.sql). Snapshot and market rows reach the stage tables by COPY
-- (oddsstore/writes.py); these statements take it from there.

-- name: create_stage!
-- The staging tables a batch is copied into, created inside each write's transaction and
-- dropped when it ends (commit or rollback). Temporary: no WAL, no locks anyone else sees.
-- Never created when a connection opens: a read-only connection (a hot standby replica) cannot
-- create tables, and behind PgBouncer's transaction pooling the next transaction may run on
-- another server connection, so a write must find nothing of a previous one and leave nothing.
create temporary table oddsstore_stage_snapshots (
    id               bigint      not null,
    event_id         integer     not null,
    bookmaker_id     integer     not null,
    captured_at      timestamptz not null,
    scrape_run_id    bigint,
    raw_response     jsonb,
    base_snapshot_id bigint,      -- set: only markets that differ from this snapshot's are staged
    next_at          timestamptz
) on commit drop;
create temporary table oddsstore_stage_markets (
    snapshot_id         bigint           not null,
    event_id            integer          not null,
    bookmaker_id        integer          not null,
    captured_at         timestamptz      not null,
    line                double precision,
    -- The key of market_current and market_changes (schema/0007_real_data.sql), computed here
    -- so every statement below joins and inserts it as a column.
    line_key            double precision generated always as (coalesce(line, 'NaN'::double precision)) stored,
    handicap_home       double precision,
    handicap_away       double precision,
    betpawa_market_id   text             not null,
    betpawa_market_name text,            -- null with outcomes: gone since the base snapshot
    handicap_type       text,
    outcomes            jsonb
) on commit drop;

-- name: clear_stage!
-- Empty the stage between two merges of one transaction: a large batch is merged chunk by
-- chunk, and a chunk holding several snapshots of the same pair one snapshot per pair at a
-- time, oldest first.
truncate oddsstore_stage_snapshots, oddsstore_stage_markets;

-- name: reserve_snapshot_ids$
-- Reserve ids for a batch's snapshots in one round trip.
select array_agg(nextval('odds_snapshots_id_seq'))
from generate_series(1, :count);

-- name: stored_snapshots$
-- Which of a batch's snapshots the database holds already (positions in the arrays, from 1; null
-- when none): a batch re-sent after a lost connection, whose commit may have gone through. One
-- probe per snapshot of odds_snapshots_pkey.
select array_agg(b.position)
from unnest(:event_ids::integer[], :bookmaker_ids::integer[], :captured_ats::timestamptz[])
    with ordinality as b (event_id, bookmaker_id, captured_at, position)
where exists (
    select
    from odds_snapshots as o
    where o.event_id = b.event_id
      and o.bookmaker_id = b.bookmaker_id
      and o.captured_at = b.captured_at
);

-- name: stored_markets
-- record_class: MarketOdds
-- The markets of the given stored snapshots, as odds_at rebuilds them (per market and line, the
-- latest change at or before the snapshot, if listed): what a re-sent snapshot is compared with.
select o.id as snapshot_id, o.event_id, o.bookmaker_id, o.captured_at,
       c.betpawa_market_id, c.betpawa_market_name, c.line,
       c.handicap_type, c.handicap_home, c.handicap_away, c.outcomes
from unnest(:event_ids::integer[], :bookmaker_ids::integer[], :captured_ats::timestamptz[])
    as b (event_id, bookmaker_id, captured_at)
join odds_snapshots as o
    on o.event_id = b.event_id
   and o.bookmaker_id = b.bookmaker_id
   and o.captured_at = b.captured_at
cross join lateral (
    select distinct on (mc.betpawa_market_id, mc.line_key) mc.*
    from market_changes as mc
    where mc.event_id = o.event_id
      and mc.bookmaker_id = o.bookmaker_id
      and mc.captured_at <= o.captured_at
    order by mc.betpawa_market_id, mc.line_key, mc.captured_at desc
) as c
where c.outcomes is not null;

-- name: lock_merges!
-- The merge lock, taken before stale_bases so that what it confirms holds until the merge.
-- Its own statement: a statement that waited for the lock would still read from before the wait.
select pg_advisory_xact_lock(hashtext('oddsstore_merge'));

-- name: stale_bases$
-- Which of the given pairs' latest snapshot is not the given one (positions in the arrays, from
-- 1; null when none): the write path remembers each pair's last snapshot and stages only what
-- differs from it, which is right only while that snapshot is still the pair's latest
-- (market_current holds it). One index lookup per pair on latest_snapshots' primary key.
select array_agg(b.position)
from unnest(:event_ids::integer[], :bookmaker_ids::integer[], :snapshot_ids::bigint[])
    with ordinality as b (event_id, bookmaker_id, snapshot_id, position)
where not exists (
    select
    from latest_snapshots as ls
    where ls.event_id = b.event_id
      and ls.bookmaker_id = b.bookmaker_id
      and ls.snapshot_id = b.snapshot_id
);

-- name: merge_stage!
-- Store the staged snapshots (at most one per event x bookmaker pair) and log what changed.
-- Several statements, sent in one round trip, inside the caller's transaction. A snapshot staged
-- with base_snapshot_id (confirmed by stale_bases) brings only its markets that differ from
-- that snapshot's, and those it no longer lists with null outcomes; any other brings them all.
--
-- 1. One merge at a time: each compares the batch with market_current, which a concurrent
--    merge of the same pairs would change underneath it (lock_merges and retention take the
--    same lock; taking it again in one transaction is free).
select pg_advisory_xact_lock(hashtext('oddsstore_merge'));

-- 2. Statistics for the staged snapshots (a few thousand rows: milliseconds). Without them the
--    planner guesses one row for their "is null" filters and may pick nested loops over the
--    staged markets, quadratic in the batch: the 27,000-market first write in the setup of
--    tests/test_crash.py took 22 s on PostgreSQL 15 without it, 2 s with it (pytest --durations).
analyze oddsstore_stage_snapshots;

-- 3. Every id must exist. odds_snapshots has no foreign keys (they would make retention lock
--    events, bookmakers and scrape_runs: schema/0003_odds.sql), so the batch is checked here,
--    failing with the SQLSTATE and detail a foreign key would give.
do $$
declare
    v_missing text;
begin
    select coalesce(
        (select format('Key (event_id)=(%s) is not present in table "events".', s.event_id)
         from oddsstore_stage_snapshots as s
         where not exists (select from events as e where e.id = s.event_id)
         limit 1),
        (select format('Key (bookmaker_id)=(%s) is not present in table "bookmakers".', s.bookmaker_id)
         from oddsstore_stage_snapshots as s
         where not exists (select from bookmakers as b where b.id = s.bookmaker_id)
         limit 1),
        (select format('Key (scrape_run_id)=(%s) is not present in table "scrape_runs".', s.scrape_run_id)
         from oddsstore_stage_snapshots as s
         where s.scrape_run_id is not null
           and not exists (select from scrape_runs as r where r.id = s.scrape_run_id)
         limit 1))
    into v_missing;
    if v_missing is not null then
        raise exception 'the batch names an id the database does not hold'
            using errcode = 'foreign_key_violation', detail = v_missing;
    end if;
end;
$$;

-- 4. Every scrape is recorded, changed or not.
insert into odds_snapshots (id, event_id, bookmaker_id, captured_at, scrape_run_id, raw_response)
select id, event_id, bookmaker_id, captured_at, scrape_run_id, raw_response
from oddsstore_stage_snapshots;

-- 5. A snapshot older than its pair's latest is late: note the pair's next snapshot after it.
update oddsstore_stage_snapshots as s
set next_at = (
    select min(o.captured_at)
    from odds_snapshots as o
    where o.event_id = s.event_id
      and o.bookmaker_id = s.bookmaker_id
      and o.captured_at > s.captured_at
)
from latest_snapshots as ls
where ls.event_id = s.event_id
  and ls.bookmaker_id = s.bookmaker_id
  and ls.captured_at > s.captured_at;

-- 6. In order: markets new or different since the pair's latest snapshot (market_current) are
--    logged and become current. The row comparison covers name, handicap and outcomes.
--    (Staged with a base, only the markets whose input differs from the base's are here.)
--    A lookup per staged market on market_current_pkey, not a hash of all of market_current:
--    a remembered pair stages about 5% of its markets. limit 1 (the key is unique) keeps the
--    planner from turning the lateral back into a join.
with changed as (
    insert into market_changes (event_id, bookmaker_id, captured_at, line, line_key, handicap_home, handicap_away,
                                betpawa_market_id, betpawa_market_name, handicap_type, outcomes)
    select m.event_id, m.bookmaker_id, m.captured_at, m.line, m.line_key, m.handicap_home, m.handicap_away,
           m.betpawa_market_id, m.betpawa_market_name, m.handicap_type, m.outcomes
    from oddsstore_stage_markets as m
    join oddsstore_stage_snapshots as s on s.id = m.snapshot_id
    left join lateral (
        select c.betpawa_market_name, c.handicap_type, c.handicap_home, c.handicap_away, c.outcomes
        from market_current as c
        where c.event_id = m.event_id
          and c.bookmaker_id = m.bookmaker_id
          and c.betpawa_market_id = m.betpawa_market_id
          and c.line_key = m.line_key
        limit 1
    ) as c on true
    where s.next_at is null
      and m.outcomes is not null
      and (c.betpawa_market_name, c.handicap_type, c.handicap_home, c.handicap_away, c.outcomes)
          is distinct from (m.betpawa_market_name, m.handicap_type, m.handicap_home, m.handicap_away, m.outcomes)
    returning *
)
insert into market_current as c (event_id, bookmaker_id, changed_at, line, line_key, handicap_home, handicap_away,
                                 betpawa_market_id, betpawa_market_name, handicap_type, outcomes)
select event_id, bookmaker_id, captured_at, line, line_key, handicap_home, handicap_away,
       betpawa_market_id, betpawa_market_name, handicap_type, outcomes
from changed
on conflict (event_id, bookmaker_id, betpawa_market_id, line_key) do update
    set changed_at = excluded.changed_at,
        handicap_home = excluded.handicap_home,
        handicap_away = excluded.handicap_away,
        betpawa_market_name = excluded.betpawa_market_name,
        handicap_type = excluded.handicap_type,
        outcomes = excluded.outcomes;

-- 7. In order: markets the pair's latest snapshot listed and this one does not are logged as
--    gone (null outcomes) and leave market_current. A snapshot staged whole: every current
--    market it does not stage.
with gone as (
    delete from market_current as c
    using oddsstore_stage_snapshots as s
    where s.next_at is null
      and s.base_snapshot_id is null
      and c.event_id = s.event_id
      and c.bookmaker_id = s.bookmaker_id
      and not exists (
          select
          from oddsstore_stage_markets as m
          where m.snapshot_id = s.id
            and m.betpawa_market_id = c.betpawa_market_id
            and m.line_key = c.line_key
      )
    returning c.event_id, c.bookmaker_id, s.captured_at, c.line, c.line_key, c.betpawa_market_id
)
insert into market_changes (event_id, bookmaker_id, captured_at, line, line_key, betpawa_market_id)
select event_id, bookmaker_id, captured_at, line, line_key, betpawa_market_id
from gone;

-- 8. A snapshot staged with a base: the markets staged with null outcomes.
with gone as (
    delete from market_current as c
    using oddsstore_stage_markets as m
    where m.outcomes is null
      and c.event_id = m.event_id
      and c.bookmaker_id = m.bookmaker_id
      and c.betpawa_market_id = m.betpawa_market_id
      and c.line_key = m.line_key
    returning c.event_id, c.bookmaker_id, m.captured_at, c.line, c.line_key, c.betpawa_market_id
)
insert into market_changes (event_id, bookmaker_id, captured_at, line, line_key, betpawa_market_id)
select event_id, bookmaker_id, captured_at, line, line_key, betpawa_market_id
from gone;

-- 9. Late: compare with the state just before the snapshot, read from the log. Differences are
--    logged at the snapshot; at the pair's next snapshot the state that held there is logged
--    too (unless a change is logged there already), so every later snapshot reads as before.
--    market_current is untouched: it belongs to the pair's latest snapshot.
with late as (
    select id, event_id, bookmaker_id, captured_at, next_at
    from oddsstore_stage_snapshots
    where next_at is not null
),
before as (
    select distinct on (c.event_id, c.bookmaker_id, c.betpawa_market_id, c.line_key)
           c.*
    from late as l
    join market_changes as c
        on c.event_id = l.event_id
       and c.bookmaker_id = l.bookmaker_id
       and c.captured_at < l.captured_at
    order by c.event_id, c.bookmaker_id, c.betpawa_market_id, c.line_key, c.captured_at desc
),
listed_before as (
    select * from before where outcomes is not null
),
observed as (
    select m.*
    from oddsstore_stage_markets as m
    join late as l on l.id = m.snapshot_id
),
differences as (
    select l.event_id, l.bookmaker_id, l.captured_at, l.next_at,
           coalesce(o.betpawa_market_id, b.betpawa_market_id) as betpawa_market_id,
           coalesce(o.line, b.line) as line,
           coalesce(o.line_key, b.line_key) as line_key,
           o.handicap_home, o.handicap_away, o.betpawa_market_name, o.handicap_type, o.outcomes,
           b.handicap_home as before_handicap_home, b.handicap_away as before_handicap_away,
           b.betpawa_market_name as before_market_name, b.handicap_type as before_handicap_type,
           b.outcomes as before_outcomes
    from observed as o
    full join listed_before as b
        on b.event_id = o.event_id
       and b.bookmaker_id = o.bookmaker_id
       and b.betpawa_market_id = o.betpawa_market_id
       and b.line_key = o.line_key
    join late as l
        on l.event_id = coalesce(o.event_id, b.event_id)
       and l.bookmaker_id = coalesce(o.bookmaker_id, b.bookmaker_id)
    where (o.betpawa_market_name, o.handicap_type, o.handicap_home, o.handicap_away, o.outcomes)
          is distinct from (b.betpawa_market_name, b.handicap_type, b.handicap_home, b.handicap_away, b.outcomes)
),
at_snapshot as (
    insert into market_changes (event_id, bookmaker_id, captured_at, line, line_key, handicap_home, handicap_away,
                                betpawa_market_id, betpawa_market_name, handicap_type, outcomes)
    select event_id, bookmaker_id, captured_at, line, line_key, handicap_home, handicap_away,
           betpawa_market_id, betpawa_market_name, handicap_type, outcomes
    from differences
)
insert into market_changes (event_id, bookmaker_id, captured_at, line, line_key, handicap_home, handicap_away,
                            betpawa_market_id, betpawa_market_name, handicap_type, outcomes)
select d.event_id, d.bookmaker_id, d.next_at, d.line, d.line_key, d.before_handicap_home, d.before_handicap_away,
       d.betpawa_market_id, d.before_market_name, d.before_handicap_type, d.before_outcomes
from differences as d
where not exists (
    select
    from market_changes as k
    where k.event_id = d.event_id
      and k.betpawa_market_id = d.betpawa_market_id
      and k.bookmaker_id = d.bookmaker_id
      and k.line_key = d.line_key
      and k.captured_at = d.next_at
);

-- 10. Point latest_snapshots at the in-order snapshots.
insert into latest_snapshots as ls (event_id, bookmaker_id, snapshot_id, captured_at)
select event_id, bookmaker_id, id, captured_at
from oddsstore_stage_snapshots
where next_at is null
on conflict (event_id, bookmaker_id) do update
    set snapshot_id = excluded.snapshot_id,
        captured_at = excluded.captured_at
    where excluded.captured_at > ls.captured_at;

-- name: latest_odds
-- record_class: MarketOdds
-- Each bookmaker's latest markets for one event: market_current joined to the pair's latest
-- snapshot. No history is read, however much is stored.
select ls.snapshot_id, c.event_id, c.bookmaker_id, ls.captured_at,
       c.betpawa_market_id, c.betpawa_market_name, c.line,
       c.handicap_type, c.handicap_home, c.handicap_away, c.outcomes
from market_current as c
join latest_snapshots as ls on ls.event_id = c.event_id and ls.bookmaker_id = c.bookmaker_id
where c.event_id = :event_id
order by c.bookmaker_id, c.betpawa_market_id, c.line nulls first;

-- name: odds_at
-- record_class: MarketOdds
-- Each bookmaker's markets for one event as of a moment: the markets of its latest snapshot at
-- or before :at, rebuilt from the log (per market and line, the latest change at or before that
-- snapshot, if the market was listed).
select s.id as snapshot_id, ls.event_id, ls.bookmaker_id, s.captured_at,
       c.betpawa_market_id, c.betpawa_market_name, c.line,
       c.handicap_type, c.handicap_home, c.handicap_away, c.outcomes
from latest_snapshots as ls
cross join lateral (
    select o.id, o.captured_at
    from odds_snapshots as o
    where o.event_id = ls.event_id
      and o.bookmaker_id = ls.bookmaker_id
      and o.captured_at <= :at
    order by o.captured_at desc
    limit 1
) as s
cross join lateral (
    select distinct on (mc.betpawa_market_id, mc.line_key) mc.*
    from market_changes as mc
    where mc.event_id = ls.event_id
      and mc.bookmaker_id = ls.bookmaker_id
      and mc.captured_at <= s.captured_at
    order by mc.betpawa_market_id, mc.line_key, mc.captured_at desc
) as c
where ls.event_id = :event_id
  and c.outcomes is not null
order by ls.bookmaker_id, c.betpawa_market_id, c.line nulls first;

-- name: odds_history
-- record_class: MarketOdds
-- One market of one event over time, oldest first: for every snapshot of the event (optionally
-- one bookmaker's) in [since, until), each line of the market it listed, as it was then. Each
-- change of the market holds from its snapshot until the next change of the same line; a
-- snapshot takes the change whose span contains it. Both sides come from the primary key and
-- market_changes_pkey (prefix event_id, betpawa_market_id).
with spans as (
    select mc.*,
           lead(mc.captured_at) over (
               partition by mc.bookmaker_id, mc.line_key order by mc.captured_at
           ) as until_at
    from market_changes as mc
    where mc.event_id = :event_id
      and mc.betpawa_market_id = :market_id
      and (:bookmaker_id::integer is null or mc.bookmaker_id = :bookmaker_id)
      and mc.captured_at < coalesce(:until::timestamptz, 'infinity')
)
select s.id as snapshot_id, s.event_id, s.bookmaker_id, s.captured_at,
       c.betpawa_market_id, c.betpawa_market_name, c.line,
       c.handicap_type, c.handicap_home, c.handicap_away, c.outcomes
from odds_snapshots as s
join spans as c
    on c.bookmaker_id = s.bookmaker_id
   and s.captured_at >= c.captured_at
   and s.captured_at < coalesce(c.until_at, 'infinity')
where s.event_id = :event_id
  and (:bookmaker_id::integer is null or s.bookmaker_id = :bookmaker_id)
  and s.captured_at >= coalesce(:since::timestamptz, '-infinity')
  and s.captured_at < coalesce(:until::timestamptz, 'infinity')
  and c.outcomes is not null
order by s.captured_at, s.bookmaker_id, c.line nulls first;

-- name: snapshots_for_event
-- record_class: OddsSnapshot
-- The snapshots of one event in [since, until), oldest first, with their raw responses.
select id, event_id, bookmaker_id, captured_at, scrape_run_id, raw_response
from odds_snapshots
where event_id = :event_id
  and captured_at >= coalesce(:since::timestamptz, '-infinity')
  and captured_at < coalesce(:until::timestamptz, 'infinity')
order by captured_at, bookmaker_id;
