-- Long histories a page at a time (OddsStore.odds_history_page, OddsStore.line_movement_page).
-- Read-only. Keyset paging on the order the unpaged reads return, (captured_at, bookmaker_id,
-- line with "no line" first): a page after the cursor starts where the previous one ended,
-- without counting or re-reading the rows before it. The cursor is the last row returned; each
-- query reads :limit + 1 rows so the caller knows whether a next page exists.

-- name: odds_history_page
-- record_class: MarketOdds
-- One market of one event over time, as odds_history (queries/odds.sql) returns it, from the
-- cursor (:after_captured_at, :after_bookmaker_id, :after_line; no cursor: from :since) for at
-- most :limit + 1 rows. Per snapshot, in order, the state of each line is read from its own
-- UTC day of the log (every state is logged at the pair's first snapshot of a day: see
-- docs/schema.md, the contract), so a page costs the same early or late in a long history:
-- odds_snapshots_pkey gives the event's snapshots from the cursor on (sorted on the snapshot's
-- key only, narrow rows), and per snapshot market_changes_pkey (event, market, bookmaker) scans
-- one day's partition (pruned at run time). The outer limit stops the loop after a page.
-- Both tables are filtered on :event_id itself (not the lateral on s.event_id), so that Citus
-- routes the query to the event's shard (docs/scaling.md).
select s.id as snapshot_id, s.event_id, s.bookmaker_id, s.captured_at,
       c.betpawa_market_id, c.betpawa_market_name, c.line,
       c.handicap_type, c.handicap_home, c.handicap_away, c.outcomes
from (
    select o.id, o.event_id, o.bookmaker_id, o.captured_at
    from odds_snapshots as o
    where o.event_id = :event_id
      and (:bookmaker_id::integer is null or o.bookmaker_id = :bookmaker_id)
      and o.captured_at >= greatest(coalesce(:since::timestamptz, '-infinity'),
                                    coalesce(:after_captured_at::timestamptz, '-infinity'))
      and o.captured_at < coalesce(:until::timestamptz, 'infinity')
      and (:after_captured_at::timestamptz is null
           or (o.captured_at, o.bookmaker_id) >= (:after_captured_at, :after_bookmaker_id::integer))
    order by o.captured_at, o.bookmaker_id
) as s
cross join lateral (
    select distinct on (mc.line_key) mc.*
    from market_changes as mc
    where mc.event_id = :event_id
      and mc.betpawa_market_id = :market_id
      and mc.bookmaker_id = s.bookmaker_id
      and mc.captured_at <= s.captured_at
      and mc.captured_at >= date_trunc('day', s.captured_at at time zone 'UTC') at time zone 'UTC'
    order by mc.line_key, mc.captured_at desc
) as c
where c.outcomes is not null
  and (:after_captured_at::timestamptz is null
       or (s.captured_at, s.bookmaker_id, coalesce(c.line, '-infinity'))
          > (:after_captured_at, :after_bookmaker_id::integer, coalesce(:after_line::double precision, '-infinity')))
order by s.captured_at, s.bookmaker_id, c.line nulls first
limit :limit::integer + 1;

-- name: line_movement_page
-- record_class: MarketChange
-- Every change of one market of one event, as line_movement (queries/analytics.sql) returns
-- them, after the cursor (:after_captured_at, :after_bookmaker_id, :after_line), at most
-- :limit + 1 rows. market_changes_pkey (prefix event_id, betpawa_market_id) in the partitions
-- from the cursor's day on (pruned by captured_at).
select event_id, bookmaker_id, captured_at, betpawa_market_id, betpawa_market_name, line,
       handicap_type, handicap_home, handicap_away, outcomes
from market_changes
where event_id = :event_id
  and betpawa_market_id = :market_id
  and not checkpoint
  and (:line::double precision is null or line_key = :line)
  and captured_at >= coalesce(:after_captured_at::timestamptz, '-infinity')
  and (:after_captured_at::timestamptz is null
       or (captured_at, bookmaker_id, coalesce(line, '-infinity'))
          > (:after_captured_at, :after_bookmaker_id::integer, coalesce(:after_line::double precision, '-infinity')))
order by captured_at, bookmaker_id, line nulls first
limit :limit::integer + 1;
