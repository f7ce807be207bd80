-- One event's markets over time: margin history and markets gone missing (the event detail
-- page of the production system). Read-only; reads market_changes by market_changes_pkey
-- (prefix event_id) and market_current.
--
-- An outcome is an offer only when oddsstore_offer(odds, is_active) (schema/0007_real_data.sql:
-- is_active not false, odds above 1.0); anything else is suspended and never counts in a margin.

-- name: margin_history
-- record_class: MarginPoint
-- The margin of one market of an event over time, per bookmaker and line: one point per logged
-- change (market_changes), oldest first. margin_pct = (sum(1/odds) - 1) * 100 when the market
-- is complete (two or more outcomes, every one an offer), else null; listed is false at a
-- point where the market stopped being listed. A point holds until the next point of the same
-- bookmaker and line. Filters: :line (null: every line), :bookmaker_id (null: every one).
-- market_changes_pkey, prefix (event_id, betpawa_market_id).
select mc.event_id, mc.bookmaker_id, mc.betpawa_market_id, mc.line, mc.captured_at,
       mc.outcomes is not null as listed,
       case when m.outcomes >= 2 and m.complete then m.margin_pct end as margin_pct
from market_changes as mc
cross join lateral (
    select count(*) as outcomes,
           bool_and(j.offer) as complete,
           (sum(1 / o.odds) filter (where j.offer) - 1) * 100 as margin_pct
    from jsonb_to_recordset(coalesce(mc.outcomes, '[]')) as o(odds double precision, is_active boolean)
    cross join lateral (select oddsstore_offer(o.odds, o.is_active) as offer) as j
) as m
where mc.event_id = :event_id
  and mc.betpawa_market_id = :market_id
  and (:line::double precision is null or mc.line_key = :line)
  and (:bookmaker_id::integer is null or mc.bookmaker_id = :bookmaker_id)
  and not mc.checkpoint  -- a state logged again at a day's first snapshot is not a change
order by mc.captured_at, mc.bookmaker_id, mc.line nulls first;

-- name: missing_markets
-- record_class: MissingMarket
-- Markets of an event that a bookmaker listed before and lists no more: per market, line and
-- bookmaker whose latest logged state is "not listed", since when (missing_since: the snapshot
-- that no longer listed it), its name and time when last listed, and which bookmakers list it
-- now (listed_by). A bookmaker that stopped showing the whole event has no snapshot saying so:
-- stale_odds reports that, not this. Markets gone before the oldest day kept are forgotten
-- with it (retention). Reads the event's changes once (market_changes_pkey, prefix
-- event_id), then one probe per missing market for its last listed state.
with last_states as (
    select distinct on (mc.betpawa_market_id, mc.bookmaker_id, mc.line_key)
           mc.betpawa_market_id, mc.bookmaker_id, mc.line, mc.line_key,
           mc.captured_at, mc.outcomes is null as gone
    from market_changes as mc
    where mc.event_id = :event_id
    order by mc.betpawa_market_id, mc.bookmaker_id, mc.line_key, mc.captured_at desc
)
select :event_id::integer as event_id, g.bookmaker_id, g.betpawa_market_id, last.betpawa_market_name, g.line,
       g.captured_at as missing_since, last.captured_at as last_listed_at,
       coalesce(
           (select array_agg(c.bookmaker_id order by c.bookmaker_id)
            from market_current as c
            where c.event_id = :event_id
              and c.betpawa_market_id = g.betpawa_market_id
              and c.line_key = g.line_key),
           '{}'
       ) as listed_by
from last_states as g
left join lateral (
    select p.betpawa_market_name, p.captured_at
    from market_changes as p
    where p.event_id = :event_id
      and p.betpawa_market_id = g.betpawa_market_id
      and p.bookmaker_id = g.bookmaker_id
      and p.line_key = g.line_key
      and p.captured_at < g.captured_at
      and p.outcomes is not null
    order by p.captured_at desc
    limit 1
) as last on true
where g.gone
order by g.betpawa_market_id, g.line nulls first, g.bookmaker_id;
