-- The odds board: upcoming events, a few chosen markets of each, every bookmaker's prices side
-- by side (OddsStore.odds_board). Read-only; reads events, market_current and
-- latest_snapshots (no history), one round trip per page.
--
-- Conventions, as in queries/analytics.sql:
--   * a market line is keyed coalesce(line, 'NaN') (NaN equals itself, null does not);
--   * an outcome is an offer only when is_active is not false and its odds are not null and
--     above 1.0 (feeds send null, 0, 1.0 and 100.0 for suspended prices, flagged or not);
--     anything else is suspended: shown, never a best price, never in a margin or a gap;
--   * a price is stale when its bookmaker's latest snapshot of the event is older than
--     :stale_after: shown with its age, never a best price, never in a gap;
--   * percentages are plain numbers (5.2 means 5.2%).

-- name: odds_board
-- record: BoardEvent
-- One page of the board: up to :limit events in (kickoff, id) order after the cursor
-- (:after_kickoff, :after_event_id), plus one more event without markets that tells the caller
-- a next page exists. Events: kickoff in [:kickoff_from, :kickoff_to) (kickoff_from defaults to
-- now(), or to no bound when :event_ids are given), of :sport_id, :tournament_id, :event_ids.
-- Markets: :market_ids[i] at line :market_lines[i]: null asks for the market's main line, NaN
-- for "no line", a number for that line. The main line of a market of an event is one line for
-- every bookmaker (prices are compared at the same line): the line the most of them offer
-- complete (every outcome an offer), then the one whose implied probabilities are closest
-- (max(1/odds) - min(1/odds), averaged over those bookmakers: the even line, 2.5 goals for a
-- typical football total), then the lowest. A market with no line has the null line as main.
-- Bookmakers: :bookmaker_ids, or every one with current odds. Per market: each bookmaker's
-- quote (odds per outcome in the market's outcome order, null when suspended or not listed by
-- it; margin when complete; changed_at, seen_at, age in seconds, stale) and per outcome the best
-- fresh offer and who offers it, and with :home_bookmaker_id that bookmaker's fresh offer, the
-- best fresh competitor offer and gap_pct = (home / best competitor - 1) * 100.
-- Plan: events_kickoff_id_idx (the page, in order, stopping after :limit + 1), then per event
-- market_current_event_id_market_idx (event, the market ids) and latest_snapshots_pkey.
with page as (
    select e.id as event_id, t.sport_id, e.tournament_id, t.name as tournament_name, t.country,
           e.home_team, e.away_team, e.kickoff,
           row_number() over (order by e.kickoff, e.id) as position
    from events as e
    join tournaments as t on t.id = e.tournament_id
    -- One lower bound for the index whatever is given (a generic plan keeps it an index
    -- condition); the cursor's tie on kickoff is settled by the row comparison after it.
    where e.kickoff >= greatest(
              coalesce(:kickoff_from::timestamptz,
                       case when :event_ids::integer[] is null then now() end,
                       '-infinity'),
              coalesce(:after_kickoff::timestamptz, '-infinity'))
      and e.kickoff < coalesce(:kickoff_to::timestamptz, 'infinity')
      and (:after_kickoff::timestamptz is null or (e.kickoff, e.id) > (:after_kickoff, :after_event_id::integer))
      and (:sport_id::integer is null or t.sport_id = :sport_id)
      and (:tournament_id::integer is null or e.tournament_id = :tournament_id)
      and (:event_ids::integer[] is null or e.id = any(:event_ids))
    order by e.kickoff, e.id
    limit :limit::integer + 1
),
asked as (
    -- The markets asked for, in the caller's order; line_key null: its main line.
    select a.market_id, a.line_key, a.position
    from unnest(:market_ids::text[], :market_lines::double precision[])
        with ordinality as a(market_id, line_key, position)
),
quotes as (
    -- Every line of the asked market ids, per bookmaker, for the page's events (not the extra
    -- one). market_current_event_id_market_idx: one range scan per event and market id.
    select c.event_id, c.betpawa_market_id, c.betpawa_market_name, c.line, coalesce(c.line, 'NaN') as line_key,
           c.bookmaker_id, c.changed_at, ls.captured_at as seen_at,
           ls.captured_at < now() - :stale_after::interval as stale,
           c.outcomes
    from page as p
    join market_current as c on c.event_id = p.event_id
    join latest_snapshots as ls on ls.event_id = c.event_id and ls.bookmaker_id = c.bookmaker_id
    where p.position <= :limit
      and c.betpawa_market_id = any(:market_ids::text[])
      and (:bookmaker_ids::integer[] is null or c.bookmaker_id = any(:bookmaker_ids))
),
prices as (
    -- One row per outcome, judged: an offer or not.
    select q.event_id, q.betpawa_market_id, q.line_key, q.bookmaker_id, q.stale,
           o.name as outcome, o.position, o.odds,
           coalesce(o.is_active, true) and o.odds > 1.0 as offer
    from quotes as q
    cross join lateral rows from (
        jsonb_to_recordset(q.outcomes) as (name text, odds double precision, is_active boolean)
    ) with ordinality as o(name, odds, is_active, position)
),
books as (
    -- Per bookmaker's market: complete (two or more outcomes, every one an offer), its margin
    -- and how far apart its implied probabilities are (for the main line). 1/odds over offers
    -- only: a 0 placeholder must not divide.
    select event_id, betpawa_market_id, line_key, bookmaker_id,
           count(*) >= 2 and bool_and(offer) as complete,
           (sum(1 / odds) filter (where offer) - 1) * 100 as margin_pct,
           max(1 / odds) filter (where offer) - min(1 / odds) filter (where offer) as spread
    from prices
    group by event_id, betpawa_market_id, line_key, bookmaker_id
),
main_lines as (
    -- The main line of each market asked for at its main line (see the header).
    select distinct on (b.event_id, b.betpawa_market_id) b.event_id, b.betpawa_market_id, b.line_key
    from books as b
    where b.betpawa_market_id in (select market_id from asked where line_key is null)
    group by b.event_id, b.betpawa_market_id, b.line_key
    order by b.event_id, b.betpawa_market_id, count(*) filter (where b.complete) desc,
             avg(b.spread) filter (where b.complete) nulls last, b.line_key
),
chosen as (
    -- The lines shown: main lines and lines asked for by number (once each, first position).
    select event_id, betpawa_market_id, line_key, min(position) as position, bool_or(main_line) as main_line
    from (
        select m.event_id, m.betpawa_market_id, m.line_key, a.position, true as main_line
        from main_lines as m
        join asked as a on a.market_id = m.betpawa_market_id and a.line_key is null
        union all
        select b.event_id, b.betpawa_market_id, b.line_key, a.position, false
        from books as b
        join asked as a on a.market_id = b.betpawa_market_id and a.line_key = b.line_key
    ) as lines
    group by event_id, betpawa_market_id, line_key
),
judged as (
    -- The chosen lines' prices with the best fresh offers of their outcome.
    select p.*,
           max(p.odds) filter (where p.offer and not p.stale) over outcome as best_odds,
           max(p.odds) filter (
               where p.offer and not p.stale and p.bookmaker_id <> :home_bookmaker_id::integer
           ) over outcome as best_competitor_odds
    from prices as p
    join chosen as ch
        on ch.event_id = p.event_id and ch.betpawa_market_id = p.betpawa_market_id and ch.line_key = p.line_key
    window outcome as (partition by p.event_id, p.betpawa_market_id, p.line_key, p.outcome)
),
outcomes as (
    -- One row per outcome of a chosen line, in the bookmakers' listing order.
    select event_id, betpawa_market_id, line_key, outcome,
           row_number() over (
               partition by event_id, betpawa_market_id, line_key order by min(position), outcome
           ) as position,
           min(best_odds) as best_odds,
           coalesce(
               array_agg(bookmaker_id order by bookmaker_id) filter (where offer and not stale and odds = best_odds),
               '{}'
           ) as best_bookmaker_ids,
           max(odds) filter (where offer and not stale and bookmaker_id = :home_bookmaker_id::integer) as home_odds,
           min(best_competitor_odds) as best_competitor_odds
    from judged
    group by event_id, betpawa_market_id, line_key, outcome
),
outcome_lists as (
    select event_id, betpawa_market_id, line_key,
           array_agg(outcome order by position) as names,
           jsonb_agg(
               jsonb_build_object(
                   'outcome', outcome,
                   'best_odds', best_odds,
                   'best_bookmaker_ids', best_bookmaker_ids,
                   'home_odds', home_odds,
                   'best_competitor_odds', best_competitor_odds,
                   'gap_pct', (home_odds / best_competitor_odds - 1) * 100
               )
               order by position
           ) as outcomes
    from outcomes
    group by event_id, betpawa_market_id, line_key
),
quote_odds as (
    -- Each bookmaker's offers of a chosen line in the market's outcome order (null: suspended,
    -- or not listed by that bookmaker).
    select b.event_id, b.betpawa_market_id, b.line_key, b.bookmaker_id,
           array_agg(p.odds order by n.position) as odds
    from outcome_lists as ol
    join books as b
        on b.event_id = ol.event_id and b.betpawa_market_id = ol.betpawa_market_id and b.line_key = ol.line_key
    cross join unnest(ol.names) with ordinality as n(outcome, position)
    left join prices as p
        on p.event_id = b.event_id
       and p.betpawa_market_id = b.betpawa_market_id
       and p.line_key = b.line_key
       and p.bookmaker_id = b.bookmaker_id
       and p.outcome = n.outcome
       and p.offer
    group by b.event_id, b.betpawa_market_id, b.line_key, b.bookmaker_id
),
quote_lists as (
    -- Each bookmaker's quote of a chosen line.
    select q.event_id, q.betpawa_market_id, q.line_key,
           min(q.betpawa_market_name) as betpawa_market_name,
           min(q.line) as line,
           jsonb_agg(
               jsonb_build_object(
                   'bookmaker_id', q.bookmaker_id,
                   'odds', qo.odds,
                   'margin_pct', case when b.complete then b.margin_pct end,
                   'changed_at', q.changed_at,
                   'seen_at', q.seen_at,
                   'age', extract(epoch from now() - q.seen_at),
                   'stale', q.stale
               )
               order by q.bookmaker_id
           ) as quotes
    from quotes as q
    join quote_odds as qo
        on qo.event_id = q.event_id and qo.betpawa_market_id = q.betpawa_market_id
       and qo.line_key = q.line_key and qo.bookmaker_id = q.bookmaker_id
    join books as b
        on b.event_id = q.event_id and b.betpawa_market_id = q.betpawa_market_id
       and b.line_key = q.line_key and b.bookmaker_id = q.bookmaker_id
    group by q.event_id, q.betpawa_market_id, q.line_key
),
markets as (
    select ch.event_id,
           jsonb_agg(
               jsonb_build_object(
                   'betpawa_market_id', ch.betpawa_market_id,
                   'betpawa_market_name', ql.betpawa_market_name,
                   'line', ql.line,
                   'main_line', ch.main_line,
                   'outcomes', ol.outcomes,
                   'quotes', ql.quotes
               )
               order by ch.position, ch.line_key
           ) as markets
    from chosen as ch
    join outcome_lists as ol
        on ol.event_id = ch.event_id and ol.betpawa_market_id = ch.betpawa_market_id and ol.line_key = ch.line_key
    join quote_lists as ql
        on ql.event_id = ch.event_id and ql.betpawa_market_id = ch.betpawa_market_id and ql.line_key = ch.line_key
    group by ch.event_id
)
select p.event_id, p.sport_id, p.tournament_id, p.tournament_name, p.country, p.home_team, p.away_team, p.kickoff,
       coalesce(m.markets, '[]') as markets
from page as p
left join markets as m on m.event_id = p.event_id
order by p.kickoff, p.event_id;
