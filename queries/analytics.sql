-- Odds analytics: comparison across bookmakers, margins, opening and closing odds, line
-- movement, steam moves and arbitrage. Read-only, set-based; reads market_current for the latest
-- state and market_changes for history (schema/0005_change_only.sql).
--
-- Conventions shared by every query here:
--   * a market is (event, betpawa_market_id, line); lines are matched on line_key
--     (coalesce(line, 'NaN'), a column of the primary keys of market_current and market_changes:
--     NaN equals itself, null does not);
--   * outcomes are the jsonb arrays [{name, odds, is_active}] the write path stores, sorted by
--     name; only outcomes on offer, oddsstore_offer(odds, is_active) (schema/0007_real_data.sql:
--     not flagged inactive, odds above 1.0), are prices anyone can bet on. Placeholders (null, 0,
--     1.0, in-play 100.0 flagged inactive) are suspended: never a best price, a margin, a gap, an
--     arbitrage leg, a steam move or an opening/closing movement. Outcomes become rows through
--     oddsstore_outcomes (schema/0008_production.sql), estimated at 3 rows a market
--     (jsonb_to_recordset's 100 made the planner JIT-compile small reads);
--   * percentages are plain numbers (5.2 means 5.2%), computed in double precision.

-- name: compare_event
-- record_class: PriceComparison
-- Each bookmaker's latest price for every outcome of one event, side by side: one row per
-- market, line and outcome. prices maps bookmaker id -> odds (null: listed but suspended; no
-- key: the bookmaker does not list the outcome). The best price counts outcomes on offer only;
-- with :home_bookmaker_id, home_odds is that bookmaker's active price, best_competitor_odds the
-- best active price of the others, and gap_pct = (home / best competitor - 1) * 100 (negative:
-- the home bookmaker pays less). Reads market_current by its key prefix (event_id); no history.
with listed as (
    -- One row per bookmaker and outcome of the event's current markets. position keeps the
    -- order a bookmaker lists outcomes in (1, X, 2), for display.
    select c.betpawa_market_id, c.betpawa_market_name, c.line, c.handicap_type, c.bookmaker_id,
           o.name, o.odds, oddsstore_offer(o.odds, o.is_active) as offer, o.position
    from market_current as c
    join latest_snapshots as ls on ls.event_id = c.event_id and ls.bookmaker_id = c.bookmaker_id
    cross join lateral oddsstore_outcomes(c.outcomes) as o
    where c.event_id = :event_id
),
ranked as (
    -- The best active price of each outcome, over all bookmakers and over the home bookmaker's
    -- competitors. (A null line is one partition: window partitions group nulls together.)
    select l.*,
           max(l.odds) filter (where l.offer) over outcome as best_odds,
           max(l.odds) filter (
               where l.offer and l.bookmaker_id <> :home_bookmaker_id::integer
           ) over outcome as best_competitor_odds
    from listed as l
    window outcome as (partition by l.betpawa_market_id, l.line, l.name)
)
select :event_id::integer as event_id,
       betpawa_market_id,
       min(betpawa_market_name) as betpawa_market_name,
       line,
       min(handicap_type) as handicap_type,
       name as outcome,
       jsonb_object_agg(bookmaker_id::text, case when offer then odds end) as prices,
       min(best_odds) as best_odds,
       coalesce(
           array_agg(bookmaker_id order by bookmaker_id) filter (where offer and odds = best_odds), '{}'
       ) as best_bookmaker_ids,
       max(odds) filter (where offer and bookmaker_id = :home_bookmaker_id::integer) as home_odds,
       min(best_competitor_odds) as best_competitor_odds,
       (max(odds) filter (where offer and bookmaker_id = :home_bookmaker_id::integer)
        / min(best_competitor_odds) - 1) * 100 as gap_pct
from ranked
group by betpawa_market_id, line, name
order by betpawa_market_id, line nulls first, min(position), name;

-- name: margins
-- record_class: Margin
-- The margin (overround) of each bookmaker's current markets: (sum(1/odds) - 1) * 100 over the
-- outcomes of a complete market, one that lists at least two outcomes, all of them on offer (a
-- suspended outcome or a placeholder price leaves the book open, and its sum would mean nothing;
-- 1/odds is summed over offers only, so a price of 0 never divides). Filters, each
-- optional: one event (market_current_key_idx prefix), one tournament (its events through
-- events_tournament_id_kickoff_idx), one market type, and markets whose state was set at or
-- after :since (changed_at). The formula assumes outcomes that exclude each other and cover
-- every result (1X2, over/under); overlapping ones (double chance: each result is in two
-- outcomes) sum to about 2, a "margin" near 100%.
with current_markets as (
    -- The events asked for first, then their current markets by index (market_current_pkey,
    -- or market_current_event_id_market_idx with :market_id), so the work grows with the
    -- events asked for, not with the markets stored. As a join on events, the planner chose a
    -- hash join over a full scan of market_current for one tournament of 78 events (issue 13,
    -- bench.analytics' database at 1,300 events x 3 bookmakers, PostgreSQL 18: 680 ms against
    -- 125 ms for the same rows by index; the bench's figures are in docs/performance.md). An
    -- array of ids, not a lateral subquery: Citus plans this (the events first, then the
    -- shards), and :event_id on market_current itself keeps one event's read a router query.
    select c.event_id, e.tournament_id, c.bookmaker_id, c.betpawa_market_id, c.betpawa_market_name, c.line,
           c.handicap_type, c.changed_at, c.outcomes
    from market_current as c
    join events as e on e.id = c.event_id
    where c.event_id = any (array(
              select id
              from events
              where (:event_id::integer is null or id = :event_id)
                and (:tournament_id::integer is null or tournament_id = :tournament_id)
          ))
      and (:event_id::integer is null or c.event_id = :event_id)
      and (:market_id::text is null or c.betpawa_market_id = :market_id)
      and c.changed_at >= coalesce(:since::timestamptz, '-infinity')
)
select c.event_id, c.tournament_id, c.bookmaker_id, c.betpawa_market_id, c.betpawa_market_name, c.line,
       c.handicap_type, c.changed_at, b.outcomes, b.margin_pct
from current_markets as c
cross join lateral (
    select count(*) as outcomes,
           (sum(1 / o.odds) filter (where oddsstore_offer(o.odds, o.is_active)) - 1) * 100 as margin_pct,
           bool_and(oddsstore_offer(o.odds, o.is_active)) as complete
    from oddsstore_outcomes(c.outcomes) as o
) as b
where b.complete
  and b.outcomes >= 2
order by c.event_id, c.betpawa_market_id, c.line nulls first, c.bookmaker_id;

-- name: tournament_margins
-- record_class: TournamentMargin
-- Margins (as in margins) aggregated per tournament and bookmaker: how many complete markets
-- of how many events, and the average, lowest and highest margin. The same optional filters
-- as margins, except the event. Margins differ a lot between market types (1X2 against correct
-- score), so compare bookmakers on the same :market_id when it matters.
with current_markets as (
    -- The events asked for first, then their markets by index, as in margins (same reasons).
    select c.event_id, e.tournament_id, c.bookmaker_id, c.outcomes
    from market_current as c
    join events as e on e.id = c.event_id
    where c.event_id = any (array(
              select id
              from events
              where :tournament_id::integer is null or tournament_id = :tournament_id
          ))
      and (:market_id::text is null or c.betpawa_market_id = :market_id)
      and c.changed_at >= coalesce(:since::timestamptz, '-infinity')
),
complete as (
    select c.event_id, c.tournament_id, c.bookmaker_id, b.margin_pct
    from current_markets as c
    cross join lateral (
        select count(*) as outcomes,
               (sum(1 / o.odds) filter (where oddsstore_offer(o.odds, o.is_active)) - 1) * 100 as margin_pct,
               bool_and(oddsstore_offer(o.odds, o.is_active)) as complete
        from oddsstore_outcomes(c.outcomes) as o
    ) as b
    where b.complete
      and b.outcomes >= 2
)
select c.tournament_id, t.name as tournament_name, t.country, c.bookmaker_id,
       count(*) as markets, count(distinct c.event_id) as events,
       avg(c.margin_pct) as avg_margin_pct, min(c.margin_pct) as min_margin_pct,
       max(c.margin_pct) as max_margin_pct
from complete as c
join tournaments as t on t.id = c.tournament_id
group by c.tournament_id, t.name, t.country, c.bookmaker_id
order by t.name, t.country nulls first, c.tournament_id, c.bookmaker_id;

-- name: opening_closing
-- record_class: OpeningClosing
-- Opening and closing odds of one event, per bookmaker, market, line and outcome. Only changes
-- at or before kickoff count (for an event yet to start: all of them, so "closing" is the
-- current price). Opening: the market's first listed state. Closing: its last listed state at or
-- before kickoff -- the latest such change, not the latest change overall (live odds come
-- later). listed_at_kickoff is false when the market had disappeared by kickoff (its last change
-- then is a null-outcome row); closing then shows the last prices it was offered at.
-- confirmed_at: the pair's last snapshot at or before kickoff, the last time the closing state
-- was seen. movement_pct = (closing / opening - 1) * 100 per outcome, when both are on offer;
-- suspended prices and placeholders are reported as stored, with *_active false
-- (oddsstore_offer) and no movement. History is what retention kept: after the
-- oldest days are dropped, "opening" is the state carried forward to the first day kept.
with kickoff as (
    select kickoff from events where id = :event_id
),
spans as (
    -- Per bookmaker, market and line: when it was first and last listed up to kickoff, and its
    -- last change then. market_changes_key_idx (prefix event_id); the kickoff bound is known
    -- before the scan starts, so days after it are pruned.
    select mc.bookmaker_id, mc.betpawa_market_id, mc.line_key, min(mc.line) as line,
           -- Checkpoints (a state logged again at a day's first snapshot) are not changes; one
           -- counts only where retention dropped the change that set its state.
           min(mc.captured_at) filter (where mc.outcomes is not null) as opening_at,
           coalesce(max(mc.captured_at) filter (where mc.outcomes is not null and not mc.checkpoint),
                    min(mc.captured_at) filter (where mc.outcomes is not null)) as closing_at,
           coalesce(max(mc.captured_at) filter (where not mc.checkpoint), min(mc.captured_at)) as last_change_at
    from market_changes as mc
    where mc.event_id = :event_id
      and mc.captured_at <= (select kickoff from kickoff)
    group by mc.bookmaker_id, mc.betpawa_market_id, mc.line_key
),
seen as (
    -- Each bookmaker's last snapshot of the event up to kickoff (odds_snapshots_pkey).
    select s.bookmaker_id, max(s.captured_at) as confirmed_at
    from odds_snapshots as s
    where s.event_id = :event_id
      and s.captured_at <= (select kickoff from kickoff)
    group by s.bookmaker_id
)
select :event_id::integer as event_id, sp.bookmaker_id, sp.betpawa_market_id, cl.betpawa_market_name, sp.line,
       pair.outcome,
       sp.opening_at, pair.opening_odds, pair.opening_active,
       sp.closing_at, pair.closing_odds, pair.closing_active,
       sp.closing_at = sp.last_change_at as listed_at_kickoff,
       seen.confirmed_at,
       case when pair.opening_active and pair.closing_active
            then (pair.closing_odds / pair.opening_odds - 1) * 100
       end as movement_pct
from spans as sp
-- The two states themselves, by the full key of market_changes_key_idx.
join market_changes as op
    on op.event_id = :event_id
   and op.betpawa_market_id = sp.betpawa_market_id
   and op.bookmaker_id = sp.bookmaker_id
   and op.line_key = sp.line_key
   and op.captured_at = sp.opening_at
join market_changes as cl
    on cl.event_id = :event_id
   and cl.betpawa_market_id = sp.betpawa_market_id
   and cl.bookmaker_id = sp.bookmaker_id
   and cl.line_key = sp.line_key
   and cl.captured_at = sp.closing_at
-- Outcomes matched by name; one listed at only one end has a null price at the other.
cross join lateral (
    select coalesce(c.name, o.name) as outcome,
           coalesce(c.position, o.position) as position,
           o.odds as opening_odds, oddsstore_offer(o.odds, o.is_active) as opening_active,
           c.odds as closing_odds, oddsstore_offer(c.odds, c.is_active) as closing_active
    from oddsstore_outcomes(op.outcomes) as o
    full join oddsstore_outcomes(cl.outcomes) as c
        on c.name = o.name
) as pair
left join seen on seen.bookmaker_id = sp.bookmaker_id
order by sp.betpawa_market_id, sp.line nulls first, sp.bookmaker_id, pair.position, pair.outcome;

-- name: line_movement
-- record_class: MarketChange
-- Every change of one market of one event, oldest first: each bookmaker's logged states (new
-- prices, suspensions, the market appearing) and disappearances (rows whose outcomes and
-- market name are null). With :line, that line only (null: every line). Checkpoints (states
-- logged again at a day's first snapshot) are not changes.
-- market_changes_key_idx, prefix (event_id, betpawa_market_id).
select event_id, bookmaker_id, captured_at, betpawa_market_id, betpawa_market_name, line,
       handicap_type, handicap_home, handicap_away, outcomes
from market_changes
where event_id = :event_id
  and betpawa_market_id = :market_id
  and not checkpoint
  and (:line::double precision is null or line_key = :line)
order by captured_at, bookmaker_id, line nulls first;

-- name: steam_moves
-- record_class: SteamMove
-- Sharp price drops: each change at or after :since after which an outcome's active price is
-- at least :min_drop_pct below the highest active price the same bookmaker had on offer for it
-- during the :window before. "On offer during the window" = the prices replaced by the
-- market's changes in [captured_at - window, captured_at], this change included: every state in
-- force in the window, however long before it was set (a price held for days, then cut, counts).
-- While the price stays that low, each later change within the window repeats the drop.
-- bookmakers_dropping: how many bookmakers show a drop of the same outcome in the result; two or
-- more is a move across the market. One window pass per outcome, no self-join.
--
-- Cost (issue 13, python -m bench.analytics, docs/performance.md): it reads every change of the
-- markets that moved since :since from :since - :window on, and expands each state's outcomes
-- once: work in proportion to the changes in the window, not to the days stored. At production
-- rates (~220,000 changes an hour at 1,300 events x 3 bookmakers) that is tens of seconds on a
-- loaded 2-core machine (45.5 s with 1 day stored, 37.4 s with 7, PostgreSQL 18), far from the
-- 100 ms target: only state kept on write can answer it in that time. What this version
-- changed, each measured on the bench's 7-day database: the state before the window is probed
-- in one day's partition (the checkpoint contract) instead of walking back through every day
-- for markets not found on the first, and each state's outcomes are expanded once, with
-- jsonb_to_recordset (not the oddsstore_outcomes wrapper, ~15 us a call), instead of twice
-- in a full join per change.
with moved as (
    -- Markets (per pair and line) with a listed state since :since: only these can drop.
    -- Partitions before :since are pruned.
    select distinct event_id, bookmaker_id, betpawa_market_id, line_key
    from market_changes
    where captured_at >= :since::timestamptz
      and outcomes is not null
      and not checkpoint
),
opened as (
    -- Per pair, the UTC day of its last snapshot before the window opened: that snapshot's
    -- state of every market is logged on that day (the day's first snapshot logged a
    -- checkpoint), so the state before the window is found in one day partition. A probe of
    -- odds_snapshots_pkey per pair (thousands), not per market (hundreds of thousands).
    select p.event_id, p.bookmaker_id,
           date_trunc('day', s.captured_at at time zone 'UTC') at time zone 'UTC' as day_start
    from (select distinct event_id, bookmaker_id from moved) as p
    cross join lateral (
        select o.captured_at
        from odds_snapshots as o
        where o.event_id = p.event_id
          and o.bookmaker_id = p.bookmaker_id
          and o.captured_at < :since::timestamptz - :window::interval
        order by o.captured_at desc
        limit 1
    ) as s
),
states as (
    -- Their changes since the earliest window opened (:since - :window) ...
    select c.event_id, c.bookmaker_id, c.betpawa_market_id, c.betpawa_market_name, c.line, m.line_key,
           c.captured_at, c.outcomes, c.checkpoint
    from market_changes as c
    join moved as m
        on m.event_id = c.event_id
       and m.bookmaker_id = c.bookmaker_id
       and m.betpawa_market_id = c.betpawa_market_id
       and m.line_key = c.line_key
    where c.captured_at >= :since::timestamptz - :window::interval
    union all
    -- ... and the state in force when it opened: one probe of market_changes_pkey per market,
    -- in that day's partition only (pruned at run time). Not found: the market was not listed
    -- then (a row of the market before that day could only be its disappearance, which sets no
    -- price either).
    select p.event_id, p.bookmaker_id, p.betpawa_market_id, p.betpawa_market_name, p.line, m.line_key,
           p.captured_at, p.outcomes, p.checkpoint
    from moved as m
    join opened as o on o.event_id = m.event_id and o.bookmaker_id = m.bookmaker_id
    cross join lateral (
        select *
        from market_changes as c
        where c.event_id = m.event_id
          and c.betpawa_market_id = m.betpawa_market_id
          and c.bookmaker_id = m.bookmaker_id
          and c.line_key = m.line_key
          and c.captured_at < :since::timestamptz - :window::interval
          and c.captured_at >= o.day_start
        order by c.captured_at desc
        limit 1
    ) as p
),
spans as (
    -- Each state with the moment the market's next state replaced it (null: still in force).
    select s.*,
           lead(s.captured_at) over (
               partition by s.event_id, s.bookmaker_id, s.betpawa_market_id, s.line_key order by s.captured_at
           ) as replaced_at
    from states as s
),
prices as (
    -- One row per state and outcome: its active price (null: suspended or a placeholder).
    select sp.event_id, sp.bookmaker_id, sp.betpawa_market_id, sp.betpawa_market_name, sp.line, sp.line_key,
           sp.captured_at, sp.replaced_at, sp.checkpoint, o.name as outcome,
           case when oddsstore_offer(o.odds, o.is_active) then o.odds end as odds
    from spans as sp
    cross join lateral jsonb_to_recordset(sp.outcomes) as o (name text, odds double precision, is_active boolean)
),
points as (
    -- Two kinds of point on each outcome's time line: a price set by a change since :since
    -- (a candidate; checkpoints are not moves), and a price replaced, at the moment it was
    -- replaced (the reference prices; a checkpoint replaces the state it repeats).
    select event_id, bookmaker_id, betpawa_market_id, betpawa_market_name, line, line_key, outcome,
           captured_at as at, odds, null::double precision as replaced_odds
    from prices
    where captured_at >= :since::timestamptz
      and not checkpoint
      and odds is not null
    union all
    select event_id, bookmaker_id, betpawa_market_id, null, null, line_key, outcome,
           replaced_at, null, odds
    from prices
    where replaced_at is not null
      and odds is not null
),
drops as (
    select w.*, (1 - w.odds / w.reference_odds) * 100 as drop_pct
    from (
        -- The highest price replaced within the window up to each point (RANGE: by time; the
        -- prices replaced at the candidate's own moment are its peers, so they count).
        select pt.*,
               max(pt.replaced_odds) over (
                   partition by pt.event_id, pt.bookmaker_id, pt.betpawa_market_id, pt.line_key, pt.outcome
                   order by pt.at
                   range between :window::interval preceding and current row
               ) as reference_odds
        from points as pt
    ) as w
    where w.odds is not null
      and (1 - w.odds / w.reference_odds) * 100 >= :min_drop_pct::double precision
)
select d.event_id, d.bookmaker_id, d.betpawa_market_id, d.betpawa_market_name, d.line, d.outcome,
       d.at as captured_at, d.odds, d.reference_odds, d.drop_pct,
       -- Distinct bookmakers per outcome: the highest dense rank of their ids.
       max(d.bookmaker_rank) over (
           partition by d.event_id, d.betpawa_market_id, d.line_key, d.outcome
       ) as bookmakers_dropping
from (
    select drops.*,
           dense_rank() over (
               partition by event_id, betpawa_market_id, line_key, outcome order by bookmaker_id
           ) as bookmaker_rank
    from drops
) as d
order by d.at, d.event_id, d.betpawa_market_id, d.line nulls first, d.outcome, d.bookmaker_id;

-- name: arbitrage
-- record_class: Arbitrage
-- Markets whose best prices across bookmakers imply a total probability below 1: backing
-- every outcome at its best price, with stakes in proportion to 1/odds, returns more than the
-- total staked. Only odds confirmed within :max_age count: the pair's latest snapshot must be
-- that recent (stale odds never make an arbitrage); only active outcomes count, and only
-- markets every such bookmaker lists with the same outcome names (so the outcomes cover the
-- same events), each outcome with an active price somewhere. implied_sum = sum(1/best odds);
-- profit_pct = (1/implied_sum - 1) * 100; a leg's stake_share = (1/odds) / implied_sum.
-- confirmed_at: the oldest snapshot behind a best price, how old the arbitrage may be.
with fresh as (
    -- Current markets of the pairs seen within max_age (latest_snapshots: one row per pair).
    select c.event_id, c.betpawa_market_id, c.line_key, c.outcomes
    from latest_snapshots as ls
    join market_current as c on c.event_id = ls.event_id and c.bookmaker_id = ls.bookmaker_id
    where ls.captured_at >= now() - :max_age::interval
),
best as (
    -- Per market and outcome: its best active price, and the fewest outcomes any bookmaker
    -- listing it lists in the market.
    select f.event_id, f.betpawa_market_id, f.line_key, o.name,
           max(o.odds) filter (where oddsstore_offer(o.odds, o.is_active)) as odds,
           min(jsonb_array_length(f.outcomes)) as fewest_listed
    from fresh as f
    cross join lateral oddsstore_outcomes(f.outcomes) as o
    group by f.event_id, f.betpawa_market_id, f.line_key, o.name
),
markets as (
    select event_id, betpawa_market_id, line_key, sum(1 / odds) as implied_sum
    from best
    group by event_id, betpawa_market_id, line_key
    -- A bookmaker lists an outcome name once: one that lists as many outcomes as the market has
    -- names across bookmakers lists all of them. So when every bookmaker does, all list the
    -- same set.
    having min(fewest_listed) = count(*)
       and count(odds) = count(*)  -- every outcome has an active price somewhere
       and count(*) >= 2
       and sum(1 / odds) < 1
),
offers as (
    -- The arbitrage markets (few) read again, per bookmaker and outcome, by the keys of
    -- latest_snapshots and market_current: to find who offers each best price.
    select m.event_id, m.betpawa_market_id, m.line_key, m.implied_sum, ls.bookmaker_id, ls.captured_at,
           c.betpawa_market_name, c.line, c.handicap_type, o.name, o.odds,
           oddsstore_offer(o.odds, o.is_active) as offer, o.position,
           max(o.odds) filter (where oddsstore_offer(o.odds, o.is_active)) over (
               partition by m.event_id, m.betpawa_market_id, m.line_key, o.name
           ) as best_odds
    from markets as m
    join latest_snapshots as ls
        on ls.event_id = m.event_id
       and ls.captured_at >= now() - :max_age::interval
    join market_current as c
        on c.event_id = ls.event_id
       and c.bookmaker_id = ls.bookmaker_id
       and c.betpawa_market_id = m.betpawa_market_id
       and c.line_key = m.line_key
    cross join lateral oddsstore_outcomes(c.outcomes) as o
),
legs as (
    -- One row per outcome: its best price, who offers it, and when that was last confirmed.
    select event_id, betpawa_market_id, line_key, implied_sum, name, max(best_odds) as odds,
           min(betpawa_market_name) as betpawa_market_name, min(line) as line,
           min(handicap_type) as handicap_type, min(position) as position,
           array_agg(bookmaker_id order by bookmaker_id) filter (
               where offer and odds = best_odds
           ) as bookmaker_ids,
           max(captured_at) filter (where offer and odds = best_odds) as confirmed_at
    from offers
    group by event_id, betpawa_market_id, line_key, implied_sum, name
)
select event_id, betpawa_market_id, min(betpawa_market_name) as betpawa_market_name, min(line) as line,
       min(handicap_type) as handicap_type, implied_sum, (1 / implied_sum - 1) * 100 as profit_pct,
       min(confirmed_at) as confirmed_at,
       jsonb_agg(
           jsonb_build_object(
               'outcome', name,
               'odds', odds,
               'bookmaker_ids', bookmaker_ids,
               'stake_share', (1 / odds) / implied_sum
           )
           order by position, name
       ) as legs
from legs
group by event_id, betpawa_market_id, line_key, implied_sum
order by profit_pct desc, event_id, betpawa_market_id, min(line) nulls first;
