-- The odds board: upcoming events, a few chosen markets of each, every bookmaker's prices side
-- by side (OddsStore.odds_board). Read-only; reads events, market_current and
-- latest_snapshots (no history), one round trip per page.
--
-- Conventions, as in queries/analytics.sql:
--   * a market line is keyed line_key (coalesce(line, 'NaN'): NaN equals itself, null does not);
--   * an outcome is an offer only when oddsstore_offer(odds, is_active) (schema/0007_real_data.sql:
--     is_active not false, odds above 1.0; feeds send null, 0, 1.0 and 100.0 for suspended
--     prices); anything else is suspended: shown, never a best price, never in a margin or a gap;
--   * a price is stale when its bookmaker's latest snapshot of the event is older than
--     :stale_after: shown with its age, never a best price, never in a gap;
--   * percentages are plain numbers (5.2 means 5.2%).

-- name: odds_board
-- record_class: BoardEvent
-- One page of the board: up to :limit events in (kickoff, id) order after the cursor
-- (:after_kickoff, :after_event_id), plus one more event without markets that tells the caller
-- a next page exists. Events: kickoff in [:kickoff_from, :kickoff_to) (kickoff_from defaults to
-- now(), or to no bound when :event_ids are given), of :sport_id, :tournament_id, :event_ids.
-- Markets: :market_ids[i] at line :market_lines[i]: null asks for the market's main line, NaN
-- for "no line", a number for that line (a market id is asked for at its main line or at
-- numbered lines, not both: OddsStore.odds_board checks). The main line of a market of an
-- event is one line for every bookmaker (prices are compared at the same line): the line the
-- most of them offer complete (every outcome an offer), then the one whose implied
-- probabilities are closest (max(1/odds) - min(1/odds), averaged over those bookmakers: the
-- even line, 2.5 goals for a typical football total), then the lowest. A market with no line
-- has the null line as main. Bookmakers: :bookmaker_ids, or every one with current odds.
-- Per market: each bookmaker's quote (its offers by outcome name, null when suspended; margin
-- when complete; changed_at, seen_at, age in seconds, stale) and per outcome the best fresh
-- offer and who offers it, and with :home_bookmaker_id that bookmaker's fresh offer, the best
-- fresh competitor offer and gap_pct = (home / best competitor - 1) * 100.
-- Plan: events_kickoff_id_idx (the page, in order, stopping after :limit + 1), then per event
-- market_current_event_id_market_idx (the event, the market ids): narrow rows carrying each
-- line's judgement (its spread, oddsstore_market_spread, schema/0013_board_judgements.sql,
-- computed here: stored, it cost every write more than it saved the board), from which window
-- passes choose the lines; only the chosen lines' rows are read whole (by
-- market_current_pkey, with latest_snapshots) and their outcomes expanded (~40% of the rows:
-- over/under lists ~7 lines). Then window passes and two aggregations: no join between
-- intermediate results, whose row counts the planner cannot estimate (a first version with
-- such joins chose nested loops and took 2.9 s for a page of 50 events).
-- Returns json, not jsonb: the store decodes json directly (oddsstore/jsonb.py); a cast to
-- jsonb makes the server parse every page's JSON again (one development A/B on a loaded
-- machine, alternating: a page took 0.61x the time without the cast).
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
quotes as (
    -- Every line of the asked market ids, per bookmaker, for the page's events (not the extra
    -- one): narrow rows (no outcomes), each line judged by its spread
    -- (oddsstore_market_spread, schema/0013_board_judgements.sql; null unless complete).
    select c.event_id, c.betpawa_market_id, c.line_key, c.bookmaker_id, c.spread
    from page as p
    -- Per event, a range scan of market_current_event_id_market_idx. "offset 0" keeps the
    -- planner from flattening the lateral into a join it may run as a parallel full scan of
    -- market_current (it did at 400 events: 656 ms of a 3.5 s page).
    cross join lateral (
        select c.event_id, c.betpawa_market_id, c.line_key, c.bookmaker_id,
               oddsstore_market_spread(c.outcomes) as spread
        from market_current as c
        where c.event_id = p.event_id
          and c.betpawa_market_id = any(:market_ids::text[])
          and (:bookmaker_ids::integer[] is null or c.bookmaker_id = any(:bookmaker_ids))
        offset 0
    ) as c
    where p.position <= :limit
),
lines as (
    -- Per line: how many bookmakers offer it complete, and their average spread.
    select q.*,
           count(q.spread) over line as complete_books,
           avg(q.spread) over line as line_spread
    from quotes as q
    window line as (partition by q.event_id, q.betpawa_market_id, q.line_key)
),
ranked as (
    -- Rank 1: the market's main line (see the header).
    select l.*,
           dense_rank() over (
               partition by l.event_id, l.betpawa_market_id
               order by l.complete_books desc, l.line_spread nulls last, l.line_key
           ) as line_rank
    from lines as l
),
chosen as (
    -- The lines shown: the main line of a market asked for at its main line, the lines asked for
    -- by number (at most one asked row matches: see the header).
    select r.event_id, r.betpawa_market_id, r.line_key, r.bookmaker_id, r.spread,
           a.position as market_position, a.line_key is null as main_line
    from ranked as r
    join unnest(:market_ids::text[], :market_lines::double precision[])
        with ordinality as a(market_id, line_key, position)
        on a.market_id = r.betpawa_market_id
       and (a.line_key = r.line_key or (a.line_key is null and r.line_rank = 1))
),
prices as (
    -- The chosen lines' rows (market_current_pkey) and their bookmaker's latest snapshot, one
    -- row per outcome, judged: an offer or not, stale or not. position 1 is each bookmaker's
    -- market's first outcome: one row per quote.
    select ch.*, c.betpawa_market_name, c.line, c.changed_at,
           ls.captured_at as seen_at, ls.captured_at < now() - :stale_after::interval as stale,
           o.name as outcome, o.position, o.odds, oddsstore_offer(o.odds, o.is_active) as offer
    from chosen as ch
    join market_current as c
        on c.event_id = ch.event_id
       and c.bookmaker_id = ch.bookmaker_id
       and c.betpawa_market_id = ch.betpawa_market_id
       and c.line_key = ch.line_key
    join latest_snapshots as ls on ls.event_id = c.event_id and ls.bookmaker_id = c.bookmaker_id
    cross join lateral rows from (
        jsonb_to_recordset(c.outcomes) as (name text, odds double precision, is_active boolean)
    ) with ordinality as o(name, odds, is_active, position)
),
best as (
    -- Per outcome: the best fresh offer, the home bookmaker's, the best of its competitors,
    -- where the outcome comes in the bookmakers' listing order.
    select c.*,
           max(c.odds) filter (where c.offer and not c.stale) over outcome as best_odds,
           max(c.odds) filter (where c.offer and not c.stale and c.bookmaker_id = :home_bookmaker_id::integer)
               over outcome as home_odds,
           max(c.odds) filter (where c.offer and not c.stale and c.bookmaker_id <> :home_bookmaker_id::integer)
               over outcome as best_competitor_odds,
           min(c.position) over outcome as outcome_position,
           c.bookmaker_id = min(c.bookmaker_id) over outcome as first_of_outcome,
           json_object_agg(c.outcome, case when c.offer then c.odds end) over quote as offers,
           -- The margin of a complete quote (spread is null unless the market is complete); the
           -- filter keeps a suspended 0 from dividing.
           case when c.spread is not null then (sum(1 / c.odds) filter (where c.offer) over quote - 1) * 100 end
               as margin_pct
    from prices as c
    window outcome as (partition by c.event_id, c.betpawa_market_id, c.line_key, c.outcome),
           quote as (partition by c.event_id, c.betpawa_market_id, c.line_key, c.bookmaker_id)
),
best_books as (
    -- Who offers the best price of each outcome (a second pass: it compares with best_odds).
    select b.*,
           coalesce(
               array_agg(b.bookmaker_id) filter (where b.offer and not b.stale and b.odds = b.best_odds) over outcome,
               '{}'
           ) as best_bookmaker_ids
    from best as b
    window outcome as (partition by b.event_id, b.betpawa_market_id, b.line_key, b.outcome order by b.bookmaker_id
                       rows between unbounded preceding and unbounded following)
),
markets as (
    select b.event_id, b.betpawa_market_id, b.line_key, min(b.market_position) as market_position,
           json_build_object(
               'betpawa_market_id', b.betpawa_market_id,
               'betpawa_market_name', min(b.betpawa_market_name),
               'line', min(b.line),
               'main_line', bool_or(b.main_line),
               'outcomes', json_agg(
                   json_build_object(
                       'outcome', b.outcome,
                       'best_odds', b.best_odds,
                       'best_bookmaker_ids', b.best_bookmaker_ids,
                       'home_odds', b.home_odds,
                       'best_competitor_odds', b.best_competitor_odds,
                       'gap_pct', (b.home_odds / b.best_competitor_odds - 1) * 100
                   )
                   order by b.outcome_position, b.outcome
               ) filter (where b.first_of_outcome),
               'quotes', json_agg(
                   json_build_object(
                       'bookmaker_id', b.bookmaker_id,
                       'odds', b.offers,
                       'margin_pct', b.margin_pct,
                       'changed_at', b.changed_at,
                       'seen_at', b.seen_at,
                       'age', extract(epoch from now() - b.seen_at),
                       'stale', b.stale
                   )
                   order by b.bookmaker_id
               ) filter (where b.position = 1)
           ) as market
    from best_books as b
    group by b.event_id, b.betpawa_market_id, b.line_key
),
event_markets as (
    -- Built as json (text: no key sorting, no re-encoding of nested values), which the driver
    -- decodes; jsonb_build_object and jsonb_agg at every level took several times longer.
    select m.event_id, json_agg(m.market order by m.market_position, m.line_key) as markets
    from markets as m
    group by m.event_id
)
select p.event_id, p.sport_id, p.tournament_id, p.tournament_name, p.country, p.home_team, p.away_team, p.kickoff,
       coalesce(m.markets, '[]'::json) as markets
from page as p
left join event_markets as m on m.event_id = p.event_id
order by p.kickoff, p.event_id;
