-- The judgement the odds board chooses main lines by: oddsstore_market_spread(outcomes), how even
-- a complete market's prices are (null unless the market is complete).
-- depends: 0011_checkpoints
--
-- Why: the board (queries/board.sql) picks each market's main line from every line every
-- bookmaker lists (over/under: ~7 lines x 3 bookmakers per event), by how many bookmakers offer
-- the line complete and how close its implied probabilities are. Carrying every line's expanded
-- outcomes through the window sorts made a whole board of 1,300 events spill ~20 MB of sorts to
-- disk. With one value per line, the main line is chosen from narrow rows and only the chosen
-- lines' outcomes are expanded.
--
-- Not stored. A first version kept the spread as a stored generated column of market_current:
-- it cost every market the write path upserts about 60 us (upserting 5,114 of 101,347 current
-- markets: 0.20-0.22 s without the column, 0.49-0.63 s with it, load average 5.5), ~2 s a
-- production-size cycle, and adding it rewrote market_current under ACCESS EXCLUSIVE (21 s at
-- 660,000 rows), for a board page 10-20% faster. Writes run every cycle, so the board computes
-- the spread of the lines it considers (the asked markets of one page's events) as it reads
-- them: docs/performance.md, "The odds board", has the A/B (python -m bench.board --baseline).
--
-- The function is immutable SQL over the outcomes jsonb, with a SQL-standard body (parsed when
-- created, so it resolves oddsstore_offer() whatever the search_path of a restore or of a
-- logical replication worker).
--
-- Locks: creates a function only; nothing a reader or writer waits for.
set local lock_timeout = '5s';
set local statement_timeout = '1min';

create function oddsstore_market_spread(p_outcomes jsonb)
returns double precision
language sql
immutable
parallel safe
return (
    /*
     * How far apart a complete market's implied probabilities are: max(1/odds) - min(1/odds)
     * (0: an even line). The board's main line is the one most bookmakers offer complete, then
     * the one with the smallest average spread. Null unless complete: spread is not null tells
     * a complete market. The filters keep a 0 placeholder from dividing (an aggregate sees every
     * row before the CASE looks at the count).
     */
    select case
               when count(*) >= 2 and bool_and(oddsstore_offer(o.odds, o.is_active))
                   then max(1 / o.odds) filter (where o.odds > 1.0) - min(1 / o.odds) filter (where o.odds > 1.0)
           end
    from jsonb_to_recordset(p_outcomes) as o(odds double precision, is_active boolean)
);
comment on function oddsstore_market_spread(jsonb) is 'max(1/odds) - min(1/odds) of a complete market (2+ outcomes, all offers), else null: how even a line is. The odds board chooses main lines by it.';

