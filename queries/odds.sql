-- Odds history: the write path's set-based steps and the reads (schema/0003_odds.sql).
-- Snapshot and market rows themselves are written with COPY (oddsstore/writes.py).

-- name: reserve_snapshot_ids$
-- Reserve ids for a batch's snapshots in one round trip, so market rows can carry their
-- snapshot's id before either is copied.
select array_agg(nextval('odds_snapshots_id_seq'))
from generate_series(1, :count);

-- name: upsert_latest_snapshots!
-- Point latest_snapshots at the newest snapshot of each pair in the batch (parallel arrays).
-- A batch that arrives late does not move a pointer backwards. Rows are locked in key order,
-- so concurrent writers of overlapping pairs queue instead of deadlocking.
insert into latest_snapshots as ls (event_id, bookmaker_id, snapshot_id, captured_at)
select distinct on (b.event_id, b.bookmaker_id) b.event_id, b.bookmaker_id, b.snapshot_id, b.captured_at
from unnest(
    :event_ids::integer[],
    :bookmaker_ids::integer[],
    :snapshot_ids::bigint[],
    :captured_ats::timestamptz[]
) as b (event_id, bookmaker_id, snapshot_id, captured_at)
order by b.event_id, b.bookmaker_id, b.captured_at desc
on conflict (event_id, bookmaker_id) do update
    set snapshot_id = excluded.snapshot_id,
        captured_at = excluded.captured_at
    where excluded.captured_at > ls.captured_at;

-- name: latest_odds
-- record: MarketOdds
-- Each bookmaker's latest markets for one event. latest_snapshots gives one (snapshot id,
-- captured_at) per bookmaker; captured_at prunes market_odds to one partition and the BRIN
-- index finds the snapshot's pages. No history is searched, however much is stored.
select m.snapshot_id, ls.event_id, ls.bookmaker_id, m.captured_at,
       m.betpawa_market_id, m.betpawa_market_name, m.line,
       m.handicap_type, m.handicap_home, m.handicap_away, m.outcomes
from latest_snapshots as ls
cross join lateral (
    select *
    from market_odds as mo
    where mo.snapshot_id = ls.snapshot_id
      and mo.captured_at = ls.captured_at
) as m
where ls.event_id = :event_id
order by ls.bookmaker_id, m.betpawa_market_id, m.line nulls first;

-- name: odds_history
-- record: MarketOdds
-- One market of one event over time, oldest first: every snapshot of the event (optionally one
-- bookmaker's) in [since, until), each with that market's row if the snapshot listed it.
-- Snapshots come from the odds_snapshots primary key (event_id, bookmaker_id, captured_at);
-- each snapshot's markets from one partition of market_odds through its BRIN index.
select m.snapshot_id, s.event_id, s.bookmaker_id, s.captured_at,
       m.betpawa_market_id, m.betpawa_market_name, m.line,
       m.handicap_type, m.handicap_home, m.handicap_away, m.outcomes
from odds_snapshots as s
cross join lateral (
    select *
    from market_odds as mo
    where mo.snapshot_id = s.id
      and mo.captured_at = s.captured_at
      and mo.betpawa_market_id = :market_id
    -- "offset 0" keeps this a per-snapshot lookup: flattened into a join, the planner
    -- estimates a sequential scan of every market_odds partition as cheaper.
    offset 0
) as m
where s.event_id = :event_id
  and (:bookmaker_id::integer is null or s.bookmaker_id = :bookmaker_id)
  and s.captured_at >= coalesce(:since::timestamptz, '-infinity')
  and s.captured_at < coalesce(:until::timestamptz, 'infinity')
order by s.captured_at, s.bookmaker_id, m.line nulls first;

-- name: snapshots_for_event
-- record: OddsSnapshot
-- The snapshots of one event in [since, until), oldest first, with their raw responses.
select id, event_id, bookmaker_id, captured_at, scrape_run_id, raw_response
from odds_snapshots
where event_id = :event_id
  and captured_at >= coalesce(:since::timestamptz, '-infinity')
  and captured_at < coalesce(:until::timestamptz, 'infinity')
order by captured_at, bookmaker_id;
