-- Odds: the write path's set-based steps, and the reads (schema/0003_odds.sql,
-- schema/0005_change_only.sql, schema/0010_production_writes.sql). Snapshot and market rows
-- reach the stage tables by COPY (oddsstore/writes.py); these statements take it from there.

-- name: create_stage!
-- The staging tables a batch is copied into, created inside each write's transaction and
-- dropped when it ends (commit or rollback). Temporary: no WAL, no locks anyone else sees.
-- Never created when a connection opens: a read-only connection (a hot standby replica) cannot
-- create tables, and behind PgBouncer's transaction pooling the next transaction may run on
-- another server connection, so a write must find nothing of a previous one and leave nothing.
-- On Citus the write uses the distributed stage of queries/distribute.sql instead, with the same
-- columns: change both together (and, on a database distributed already, alter its tables).
create temporary table oddsstore_stage_snapshots (
    id               bigint      not null,
    event_id         integer     not null,
    bookmaker_id     integer     not null,
    captured_at      timestamptz not null,
    scrape_run_id    bigint,
    raw_response     jsonb,
    base_snapshot_id bigint,      -- set: only markets whose input differs from this snapshot's are staged
    next_at          timestamptz, -- late: the pair's next snapshot
    previous_at      timestamptz, -- the pair's previous snapshot (stored or staged)
    opens_day        boolean,     -- the pair's first snapshot of its UTC day: logs a checkpoint
    latest_at        timestamptz  -- in order: the pair's latest snapshot before this merge (null: none)
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
    outcomes            jsonb,
    fingerprint         bytea
) on commit drop;

-- name: clear_stage!
-- Empty the stage between two merges of one transaction: a large batch is merged chunk by
-- chunk, and a chunk's late snapshots one per pair at a time before its in-order ones.
truncate oddsstore_stage_snapshots, oddsstore_stage_markets;

-- name: reserve_snapshot_ids$
-- Reserve ids for a batch's snapshots in one round trip.
select array_agg(nextval('odds_snapshots_id_seq'))
from generate_series(1, :count);

-- name: stored_snapshots$
-- Which of a batch's snapshots the database holds already (positions in the arrays, from 1; null
-- when none): a batch re-sent after a lost connection, whose commit may have gone through. One
-- probe per snapshot of odds_snapshots_pkey (unique: a join finds each at most once). A join, not
-- a correlated EXISTS, so that Citus can plan it against odds_snapshots distributed by event_id
-- (docs/scaling.md).
select array_agg(b.position)
from unnest(:event_ids::integer[], :bookmaker_ids::integer[], :captured_ats::timestamptz[])
    with ordinality as b (event_id, bookmaker_id, captured_at, position)
join odds_snapshots as o
    on o.event_id = b.event_id
   and o.bookmaker_id = b.bookmaker_id
   and o.captured_at = b.captured_at;

-- name: stored_markets
-- record_class: MarketOdds
-- The markets of the given stored snapshots, as odds_at rebuilds them (per market and line, the
-- latest row at or before the snapshot within its day, if listed): what a re-sent snapshot is
-- compared with.
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
      and mc.captured_at >= date_trunc('day', o.captured_at at time zone 'UTC') at time zone 'UTC'
    order by mc.betpawa_market_id, mc.line_key, mc.captured_at desc
) as c
where c.outcomes is not null;

-- name: lock_pairs$
-- The write locks of a batch's event x bookmaker pairs, held until the transaction ends: one
-- two-integer advisory lock per pair, (event_id, bookmaker_id) (a different lock space from
-- the single-bigint locks of partition creation and retention runs). Writers of different
-- pairs never wait for each other; writers of the same pair take turns, because each compares
-- its snapshots with the pair's current state. Taken in one order by one statement, so two
-- writers cannot deadlock on them (a subquery with ORDER BY is scanned in that order).
-- Returns how many pairs were locked. Its own statement: the next statement reads after the wait.
select count(pg_advisory_xact_lock(p.event_id, p.bookmaker_id))
from (
    select distinct event_id, bookmaker_id
    from unnest(:event_ids::integer[], :bookmaker_ids::integer[]) as p (event_id, bookmaker_id)
    order by event_id, bookmaker_id
) as p;

-- name: pair_states^
-- record_class: StoredPairs
-- What the database holds for the given pairs (their locks taken), for those whose latest
-- snapshot is not the given one (a store's memory; null: none). One row of parallel arrays:
-- the pairs' positions in the input (from 1), their latest snapshot's id and time (null: none),
-- and every market of those pairs' current state (market_current): the pair's position, the
-- fingerprint of its input, its id and line. A pair not listed is confirmed: its latest
-- snapshot is the given one. latest_snapshots_pkey and market_current_pkey (prefix).
with asked as materialized (
    select b.position, b.event_id, b.bookmaker_id, ls.snapshot_id, ls.captured_at
    from unnest(:event_ids::integer[], :bookmaker_ids::integer[], :snapshot_ids::bigint[])
        with ordinality as b (event_id, bookmaker_id, known_id, position)
    left join latest_snapshots as ls on ls.event_id = b.event_id and ls.bookmaker_id = b.bookmaker_id
    where ls.snapshot_id is distinct from b.known_id
),
markets as materialized (
    select a.position, c.fingerprint, c.betpawa_market_id, c.line
    from asked as a
    join market_current as c on c.event_id = a.event_id and c.bookmaker_id = a.bookmaker_id
)
select coalesce((select array_agg(position order by position) from asked), '{}') as positions,
       coalesce((select array_agg(snapshot_id order by position) from asked), '{}') as snapshot_ids,
       coalesce((select array_agg(captured_at order by position) from asked), '{}') as captured_at,
       coalesce((select array_agg(position) from markets), '{}') as market_positions,
       coalesce((select array_agg(fingerprint) from markets), '{}') as fingerprints,
       coalesce((select array_agg(betpawa_market_id) from markets), '{}') as market_ids,
       coalesce((select array_agg(line) from markets), '{}') as lines;

-- name: merge_stage!
-- Store the staged snapshots and log what changed. Several statements, sent in one round trip,
-- inside the caller's transaction, which holds the write locks of the staged pairs
-- (lock_pairs). A pair has either one late snapshot staged (older than its latest), or any
-- number of in-order ones (newer than its latest: a scrape cycle, or a backfill catching up).
-- An in-order snapshot staged with base_snapshot_id brings only its markets whose input differs
-- from the base's (the pair's previous snapshot: the current state, or the staged snapshot
-- before it), and those the base listed and it does not with null outcomes; one without a base
-- brings every market it lists, and only the first in-order snapshot of a pair may lack one.
--
-- 1. Every id must exist. odds_snapshots has no foreign keys (they would make retention lock
--    events, bookmakers and scrape_runs: schema/0003_odds.sql), so the batch is checked here,
--    failing with the SQLSTATE and detail a foreign key would give (the lowest missing id; an
--    event before a bookmaker before a scrape run). One scan of the stage with outer joins (on
--    Citus one task per shard, the three tables being reference tables).
do $$
declare
    v_event bigint;
    v_bookmaker bigint;
    v_scrape_run bigint;
begin
    select min(s.event_id) filter (where e.id is null),
           min(s.bookmaker_id) filter (where b.id is null),
           min(s.scrape_run_id) filter (where s.scrape_run_id is not null and r.id is null)
    into v_event, v_bookmaker, v_scrape_run
    from oddsstore_stage_snapshots as s
    left join events as e on e.id = s.event_id
    left join bookmakers as b on b.id = s.bookmaker_id
    left join scrape_runs as r on r.id = s.scrape_run_id;
    if coalesce(v_event, v_bookmaker, v_scrape_run) is not null then
        raise exception 'the batch names an id the database does not hold'
            using errcode = 'foreign_key_violation',
                  detail = case
                               when v_event is not null
                               then format('Key (event_id)=(%s) is not present in table "events".', v_event)
                               when v_bookmaker is not null
                               then format('Key (bookmaker_id)=(%s) is not present in table "bookmakers".', v_bookmaker)
                               else format('Key (scrape_run_id)=(%s) is not present in table "scrape_runs".', v_scrape_run)
                           end;
    end if;
end;
$$;

-- 2. Every scrape is recorded, changed or not.
insert into odds_snapshots (id, event_id, bookmaker_id, captured_at, scrape_run_id, raw_response)
select id, event_id, bookmaker_id, captured_at, scrape_run_id, raw_response
from oddsstore_stage_snapshots;

-- 3. A snapshot older than its pair's latest is late: note the pair's snapshots just before
--    and after it (odds_snapshots_pkey, the pair's rows). A join and an aggregate rather than
--    two correlated subqueries, which Citus cannot plan against a distributed odds_snapshots
--    (docs/scaling.md); late snapshots are few, one per pair and merge.
update oddsstore_stage_snapshots as s
set next_at = n.next_at,
    previous_at = n.previous_at
from (
    select l.event_id, l.id,
           min(o.captured_at) filter (where o.captured_at > l.captured_at) as next_at,
           max(o.captured_at) filter (where o.captured_at < l.captured_at) as previous_at
    from (
        select st.id, st.event_id, st.bookmaker_id, st.captured_at
        from oddsstore_stage_snapshots as st
        join latest_snapshots as ls on ls.event_id = st.event_id and ls.bookmaker_id = st.bookmaker_id
        where ls.captured_at > st.captured_at
    ) as l
    join odds_snapshots as o on o.event_id = l.event_id and o.bookmaker_id = l.bookmaker_id
    group by l.event_id, l.id
) as n
where n.event_id = s.event_id
  and n.id = s.id;

-- 4. In order: the previous snapshot is the staged one before it, or the pair's latest (noted
--    too, for step 9).
--    Each snapshot that is its pair's first of a UTC day opens that day (a checkpoint).
update oddsstore_stage_snapshots as s
set previous_at = p.previous_at,
    latest_at = p.latest_at
from (
    select st.event_id, st.id,
           coalesce(lag(st.captured_at) over (partition by st.event_id, st.bookmaker_id order by st.captured_at),
                    ls.captured_at) as previous_at,
           ls.captured_at as latest_at
    from oddsstore_stage_snapshots as st
    left join latest_snapshots as ls on ls.event_id = st.event_id and ls.bookmaker_id = st.bookmaker_id
    where st.next_at is null
) as p
where p.event_id = s.event_id
  and p.id = s.id;
update oddsstore_stage_snapshots
set opens_day = previous_at is null
             or date_trunc('day', previous_at at time zone 'UTC') < date_trunc('day', captured_at at time zone 'UTC');

-- 5. Statistics for the staged snapshots, now that they say which are late and which open a day
--    (a few thousand rows: milliseconds). Without them the planner guesses one row for those
--    filters and may pick nested loops over the staged markets, quadratic in the batch: the
--    27,000-market first write in the setup of tests/test_crash.py took 22 s on PostgreSQL 15
--    without it, 2 s with it (pytest --durations).
--    Only where the stage is this transaction's temporary table: on Citus it is a distributed
--    table every writer shares (queries/distribute.sql), where ANALYZE would lock it until
--    commit against every other writer's ANALYZE, and each shard holds a few rows anyway.
do $$
begin
    if (select relpersistence from pg_class where oid = 'oddsstore_stage_snapshots'::regclass) = 't' then
        analyze oddsstore_stage_snapshots;
    end if;
end;
$$;

-- 6. In order, a snapshot staged whole (the first of its pair; no base): the current markets
--    it does not list are gone. Staged as such, so the steps below treat both kinds alike.
insert into oddsstore_stage_markets (snapshot_id, event_id, bookmaker_id, captured_at, line, betpawa_market_id)
select c.id, c.event_id, c.bookmaker_id, c.captured_at, c.line, c.betpawa_market_id
from (
    select s.id, s.event_id, s.bookmaker_id, s.captured_at, c.line, c.line_key, c.betpawa_market_id
    from (
        select id, event_id, bookmaker_id, captured_at
        from oddsstore_stage_snapshots
        where next_at is null
          and base_snapshot_id is null
    ) as s
    join market_current as c on c.event_id = s.event_id and c.bookmaker_id = s.bookmaker_id
) as c
left join oddsstore_stage_markets as m
    on m.event_id = c.event_id
   and m.snapshot_id = c.id
   and m.betpawa_market_id = c.betpawa_market_id
   and m.line_key = c.line_key
where m.snapshot_id is null;

-- 7. In order: each staged market is compared with its state at the pair's previous snapshot:
--    the market's staged row before it (window lag: a market not staged at a snapshot kept its
--    state), or else market_current. Where they differ (name, handicap or outcomes; a gone row
--    is all nulls) the row is logged: a new state, or a disappearance. Two branches: only a
--    market's first staged row reads market_current, one probe by its whole key each (a join,
--    not a lateral subquery, which Citus cannot plan against a distributed market_current).
--    As one left join with the first-row condition in its ON clause, the planner hashed the
--    whole of market_current every merge instead (27,000 rows for ~1,100 staged at 60 events;
--    the step took 2.1x as long: python -m bench.merge_ab, docs/performance.md). The CTE the
--    two branches share is "not materialized": PostgreSQL materializes a CTE used twice, and
--    Citus then ran the step through the coordinator (python -m bench.citus: the cluster
--    ingested at 0.14x the single node, 0.38x with it inlined).
with ordered as not materialized (
    select m.*,
           lag(m.captured_at) over w as before_at,
           lag(m.betpawa_market_name) over w as before_name,
           lag(m.handicap_type) over w as before_type,
           lag(m.handicap_home) over w as before_home,
           lag(m.handicap_away) over w as before_away,
           lag(m.outcomes) over w as before_outcomes
    from oddsstore_stage_markets as m
    join oddsstore_stage_snapshots as s on s.event_id = m.event_id and s.id = m.snapshot_id
    where s.next_at is null
    window w as (
        partition by m.event_id, m.bookmaker_id, m.betpawa_market_id, m.line_key order by m.captured_at
    )
)
insert into market_changes (event_id, bookmaker_id, captured_at, line, line_key, handicap_home, handicap_away,
                            betpawa_market_id, betpawa_market_name, handicap_type, outcomes)
select o.event_id, o.bookmaker_id, o.captured_at, o.line, o.line_key, o.handicap_home, o.handicap_away,
       o.betpawa_market_id, o.betpawa_market_name, o.handicap_type, o.outcomes
from ordered as o
left join market_current as c
    on c.event_id = o.event_id
   and c.bookmaker_id = o.bookmaker_id
   and c.betpawa_market_id = o.betpawa_market_id
   and c.line_key = o.line_key
where o.before_at is null
  and (c.betpawa_market_name, c.handicap_type, c.handicap_home, c.handicap_away, c.outcomes)
      is distinct from (o.betpawa_market_name, o.handicap_type, o.handicap_home, o.handicap_away, o.outcomes)
union all
select o.event_id, o.bookmaker_id, o.captured_at, o.line, o.line_key, o.handicap_home, o.handicap_away,
       o.betpawa_market_id, o.betpawa_market_name, o.handicap_type, o.outcomes
from ordered as o
where o.before_at is not null
  and (o.before_name, o.before_type, o.before_home, o.before_away, o.before_outcomes)
      is distinct from (o.betpawa_market_name, o.handicap_type, o.handicap_home, o.handicap_away, o.outcomes);

-- 8. In order, a snapshot that opens its day: every market it lists that did not change there
--    is logged again as a checkpoint. Its state is the market's latest staged row up to the
--    snapshot, or else market_current (ranked before every staged row; read for those pairs
--    only, by market_current_pkey: on most merges no snapshot opens a day).
insert into market_changes (event_id, bookmaker_id, captured_at, line, line_key, handicap_home, handicap_away,
                            betpawa_market_id, betpawa_market_name, handicap_type, outcomes, checkpoint)
select st.event_id, st.bookmaker_id, st.opens_at, st.line, st.line_key, st.handicap_home, st.handicap_away,
       st.betpawa_market_id, st.betpawa_market_name, st.handicap_type, st.outcomes, true
from (
    select distinct on (o.event_id, o.id, r.betpawa_market_id, r.line_key)
           o.event_id, o.bookmaker_id, o.captured_at as opens_at, r.*
    from oddsstore_stage_snapshots as o
    join (
        select m.event_id as pair_event_id, m.bookmaker_id as pair_bookmaker_id, m.captured_at as state_at,
               m.line, m.line_key, m.handicap_home, m.handicap_away, m.betpawa_market_id, m.betpawa_market_name,
               m.handicap_type, m.outcomes
        from oddsstore_stage_markets as m
        join oddsstore_stage_snapshots as s on s.event_id = m.event_id and s.id = m.snapshot_id
        where s.next_at is null
        union all
        select c.event_id, c.bookmaker_id, '-infinity',
               c.line, c.line_key, c.handicap_home, c.handicap_away, c.betpawa_market_id, c.betpawa_market_name,
               c.handicap_type, c.outcomes
        from oddsstore_stage_snapshots as s
        join market_current as c on c.event_id = s.event_id and c.bookmaker_id = s.bookmaker_id
        where s.next_at is null
          and s.opens_day
    ) as r
        on r.pair_event_id = o.event_id
       and r.pair_bookmaker_id = o.bookmaker_id
       and r.state_at <= o.captured_at
    where o.next_at is null
      and o.opens_day
    order by o.event_id, o.id, r.betpawa_market_id, r.line_key, r.state_at desc
) as st
-- Not where a row is logged there already (an anti-join on market_changes_pkey, not a
-- correlated NOT EXISTS: Citus plans joins only).
left join market_changes as k
    on k.event_id = st.event_id
   and k.betpawa_market_id = st.betpawa_market_id
   and k.bookmaker_id = st.bookmaker_id
   and k.line_key = st.line_key
   and k.captured_at = st.opens_at
where st.outcomes is not null
  and k.event_id is null;

-- 9. In order: market_current takes each staged market's last row. Gone: deleted. Listed: its
--    state and fingerprint, since its last change logged by this merge (or, unchanged with a
--    new fingerprint, since when it already was; rows that differ in nothing are not touched).
--    Two statements, a delete and an upsert (disjoint rows: gone, listed), each of which Citus
--    runs on the shards; a data-modifying CTE, or a MATERIALIZED one, would make it run the
--    statement in steps through the coordinator (docs/scaling.md).
delete from market_current as c
using (
    select distinct on (m.event_id, m.bookmaker_id, m.betpawa_market_id, m.line_key)
           m.event_id, m.bookmaker_id, m.betpawa_market_id, m.line_key, m.outcomes
    from oddsstore_stage_markets as m
    join oddsstore_stage_snapshots as s on s.event_id = m.event_id and s.id = m.snapshot_id
    where s.next_at is null
    order by m.event_id, m.bookmaker_id, m.betpawa_market_id, m.line_key, m.captured_at desc
) as l
where l.outcomes is null
  and c.event_id = l.event_id
  and c.bookmaker_id = l.bookmaker_id
  and c.betpawa_market_id = l.betpawa_market_id
  and c.line_key = l.line_key;
-- Each listed market's last staged row, with its last change in this merge: after the pair's
-- latest snapshot before it (step 4, from the stage: latest_snapshots is not joined here), a
-- probe of market_changes_pkey per market. None (-infinity): its state did not change, only
-- the input's fingerprint; a market new to market_current always has one. A join with an
-- aggregate, not a lateral subquery or CTEs, which Citus would run through the coordinator.
insert into market_current as c (event_id, bookmaker_id, changed_at, line, line_key, handicap_home, handicap_away,
                                 betpawa_market_id, betpawa_market_name, handicap_type, outcomes, fingerprint)
select l.event_id, l.bookmaker_id, coalesce(max(k.captured_at), '-infinity'), l.line, l.line_key, l.handicap_home,
       l.handicap_away, l.betpawa_market_id, l.betpawa_market_name, l.handicap_type, l.outcomes, l.fingerprint
from (
    select distinct on (m.event_id, m.bookmaker_id, m.betpawa_market_id, m.line_key)
           m.*, coalesce(s.latest_at, '-infinity') as after_at
    from oddsstore_stage_markets as m
    join oddsstore_stage_snapshots as s on s.event_id = m.event_id and s.id = m.snapshot_id
    where s.next_at is null
    order by m.event_id, m.bookmaker_id, m.betpawa_market_id, m.line_key, m.captured_at desc
) as l
left join market_changes as k
    on k.event_id = l.event_id
   and k.betpawa_market_id = l.betpawa_market_id
   and k.bookmaker_id = l.bookmaker_id
   and k.line_key = l.line_key
   and k.captured_at > l.after_at
   and k.captured_at <= l.captured_at
   and not k.checkpoint
where l.outcomes is not null
group by l.event_id, l.bookmaker_id, l.betpawa_market_id, l.line_key, l.line, l.handicap_home, l.handicap_away,
         l.betpawa_market_name, l.handicap_type, l.outcomes, l.fingerprint
on conflict (event_id, bookmaker_id, betpawa_market_id, line_key) do update
    set changed_at = greatest(excluded.changed_at, c.changed_at),
        handicap_home = excluded.handicap_home,
        handicap_away = excluded.handicap_away,
        betpawa_market_name = excluded.betpawa_market_name,
        handicap_type = excluded.handicap_type,
        outcomes = excluded.outcomes,
        fingerprint = excluded.fingerprint
    where excluded.changed_at > c.changed_at
       or c.fingerprint is distinct from excluded.fingerprint;

-- 10. Late (one snapshot per pair, staged whole): compare with the state at the pair's
--    previous snapshot, read from the log within that snapshot's day (the day's first snapshot
--    holds every state: a checkpoint). Differences are logged at the late snapshot, and when it
--    opens its day, its unchanged markets as a checkpoint. At the pair's next snapshot the state
--    that held there is logged too (unless a row is logged there already, which becomes a
--    change if it was a checkpoint), so every later snapshot reads as before. market_current is
--    untouched: it belongs to the pair's latest snapshot.
--    Only when the merge holds late snapshots (a merge holds late ones or in-order ones, never
--    both: oddsstore/writes.py): on Citus, this statement's CTEs run one by one through the
--    coordinator, which costs a merge of in-order snapshots ~0.5 s for nothing.
do $$
begin
    if exists (select 1 from oddsstore_stage_snapshots where next_at is not null) then
        with late as (
            select id, event_id, bookmaker_id, captured_at, next_at, previous_at, opens_day
            from oddsstore_stage_snapshots
            where next_at is not null
        ),
        before as (
            -- Per late snapshot (one per pair), each market's latest row at or before the previous
            -- snapshot within that snapshot's day: a scan of market_changes_pkey by event, not every
            -- day stored. A join with DISTINCT ON by the pair, not a lateral subquery (Citus plans joins
            -- only, and DISTINCT ON only when it includes event_id).
            select distinct on (k.event_id, k.bookmaker_id, k.betpawa_market_id, k.line_key) k.*
            from late as l
            join market_changes as k
                on k.event_id = l.event_id
               and k.bookmaker_id = l.bookmaker_id
               and k.captured_at <= l.previous_at
               and k.captured_at >= date_trunc('day', l.previous_at at time zone 'UTC') at time zone 'UTC'
            order by k.event_id, k.bookmaker_id, k.betpawa_market_id, k.line_key, k.captured_at desc
        ),
        listed_before as (
            select * from before where outcomes is not null
        ),
        observed as (
            select m.*
            from oddsstore_stage_markets as m
            join late as l on l.event_id = m.event_id and l.id = m.snapshot_id
        ),
        compared as (
            select l.event_id, l.bookmaker_id, l.captured_at, l.next_at, l.opens_day,
                   coalesce(o.betpawa_market_id, b.betpawa_market_id) as betpawa_market_id,
                   coalesce(o.line, b.line) as line,
                   coalesce(o.line_key, b.line_key) as line_key,
                   o.handicap_home, o.handicap_away, o.betpawa_market_name, o.handicap_type, o.outcomes,
                   b.handicap_home as before_handicap_home, b.handicap_away as before_handicap_away,
                   b.betpawa_market_name as before_market_name, b.handicap_type as before_handicap_type,
                   b.outcomes as before_outcomes,
                   (o.betpawa_market_name, o.handicap_type, o.handicap_home, o.handicap_away, o.outcomes)
                   is distinct from (b.betpawa_market_name, b.handicap_type, b.handicap_home, b.handicap_away, b.outcomes)
                   as differs
            from observed as o
            full join listed_before as b
                on b.event_id = o.event_id
               and b.bookmaker_id = o.bookmaker_id
               and b.betpawa_market_id = o.betpawa_market_id
               and b.line_key = o.line_key
            join late as l
                on l.event_id = coalesce(o.event_id, b.event_id)
               and l.bookmaker_id = coalesce(o.bookmaker_id, b.bookmaker_id)
        ),
        differences as (
            select * from compared where differs
        ),
        at_snapshot as (
            insert into market_changes (event_id, bookmaker_id, captured_at, line, line_key, handicap_home, handicap_away,
                                        betpawa_market_id, betpawa_market_name, handicap_type, outcomes, checkpoint)
            select event_id, bookmaker_id, captured_at, line, line_key, handicap_home, handicap_away,
                   betpawa_market_id, betpawa_market_name, handicap_type, outcomes, not differs
            from compared
            where differs or (opens_day and outcomes is not null)
        ),
        now_changes as (
            update market_changes as k
            set checkpoint = false
            from differences as d
            where k.event_id = d.event_id
              and k.betpawa_market_id = d.betpawa_market_id
              and k.bookmaker_id = d.bookmaker_id
              and k.line_key = d.line_key
              and k.captured_at = d.next_at
              and k.checkpoint
        )
        insert into market_changes (event_id, bookmaker_id, captured_at, line, line_key, handicap_home, handicap_away,
                                    betpawa_market_id, betpawa_market_name, handicap_type, outcomes)
        select d.event_id, d.bookmaker_id, d.next_at, d.line, d.line_key, d.before_handicap_home, d.before_handicap_away,
               d.betpawa_market_id, d.before_market_name, d.before_handicap_type, d.before_outcomes
        from differences as d
        left join market_changes as k
            on k.event_id = d.event_id
           and k.betpawa_market_id = d.betpawa_market_id
           and k.bookmaker_id = d.bookmaker_id
           and k.line_key = d.line_key
           and k.captured_at = d.next_at
        where k.event_id is null;
    end if;
end;
$$;

-- 11. Point latest_snapshots at each pair's newest in-order snapshot.
insert into latest_snapshots as ls (event_id, bookmaker_id, snapshot_id, captured_at)
select distinct on (event_id, bookmaker_id) event_id, bookmaker_id, id, captured_at
from oddsstore_stage_snapshots
where next_at is null
order by event_id, bookmaker_id, captured_at desc
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
-- or before :at, rebuilt from the log (per market and line, the latest row at or before that
-- snapshot, if the market was listed). Only the snapshot's own day is read: the pair's first
-- snapshot of the day logged every state (a checkpoint), so the cost does not grow with the
-- days stored. Every table is filtered on :event_id itself, so that Citus routes the query to
-- the event's shard (docs/scaling.md).
select s.id as snapshot_id, ls.event_id, ls.bookmaker_id, s.captured_at,
       c.betpawa_market_id, c.betpawa_market_name, c.line,
       c.handicap_type, c.handicap_home, c.handicap_away, c.outcomes
from latest_snapshots as ls
cross join lateral (
    select o.id, o.captured_at
    from odds_snapshots as o
    where o.event_id = :event_id
      and o.bookmaker_id = ls.bookmaker_id
      and o.captured_at <= :at
    order by o.captured_at desc
    limit 1
) as s
cross join lateral (
    select distinct on (mc.betpawa_market_id, mc.line_key) mc.*
    from market_changes as mc
    where mc.event_id = :event_id
      and mc.bookmaker_id = ls.bookmaker_id
      and mc.captured_at <= s.captured_at
      and mc.captured_at >= date_trunc('day', s.captured_at at time zone 'UTC') at time zone 'UTC'
    order by mc.betpawa_market_id, mc.line_key, mc.captured_at desc
) as c
where ls.event_id = :event_id
  and c.outcomes is not null
order by ls.bookmaker_id, c.betpawa_market_id, c.line nulls first;

-- name: odds_history
-- record_class: MarketOdds
-- One market of one event over time, oldest first: for every snapshot of the event (optionally
-- one bookmaker's) in [since, until), each line of the market it listed, as it was then. Each
-- row of the market holds from its snapshot until the next row of the same line; a snapshot
-- takes the row whose span contains it. The log is read from the start of the day of :since
-- (the first snapshot of each day logged every state), not from the beginning. Both sides come
-- from the primary key and market_changes_pkey (prefix event_id, betpawa_market_id).
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
      and mc.captured_at >= date_trunc('day', coalesce(:since::timestamptz, '-infinity') at time zone 'UTC') at time zone 'UTC'
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
