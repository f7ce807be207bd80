-- The odds board reads each current market's judgement stored with it instead of expanding its
-- outcomes on every read: market_current.spread (null unless the market is complete).
-- depends: 0011_checkpoints
--
-- Why: the board (queries/board.sql) picks each market's main line from every line every
-- bookmaker lists (over/under: ~7 lines x 3 bookmakers per event), by how many bookmakers offer
-- the line complete and how close its implied probabilities are. Computing that from the
-- outcomes jsonb meant expanding the outcomes of every line of every event of a page and
-- carrying them through the window sorts (a whole board of 1,300 events spilled ~20 MB of
-- sorts to disk). With the judgement stored, the main line is chosen from narrow rows and only
-- the chosen lines' outcomes are expanded: docs/performance.md, "The odds board", has the
-- before/after figures (python -m bench.board --baseline).
--
-- A STORED generated column: PostgreSQL computes it on every insert and update of
-- market_current, so the write path (queries/odds.sql) is unchanged and cannot forget it. The
-- function is immutable SQL over the outcomes jsonb, with a SQL-standard body (parsed when
-- created, so it resolves oddsstore_offer() whatever the search_path of a restore or of a
-- logical replication worker). What it costs the writes: the function runs for every row the
-- merge's upsert proposes and again for every row it updates (~10 us a call on a loaded
-- machine). Measured on a copy of 101,347 current markets, upserting 5,114 of them (load
-- average 5.5, three alternations): 0.20-0.22 s without the column, 0.49-0.63 s with it, about
-- 60 us more per market written. Only markets whose input changed are upserted (~5% a cycle:
-- ~33,000 at production scale, so ~2 s more per cycle on this machine). The margin is not
-- stored: the board computes it for the chosen lines.
--
-- Locks, and for how long: adding a stored generated column rewrites market_current under an
-- ACCESS EXCLUSIVE lock: its readers and writers wait until this migration commits. Accepted
-- because market_current holds the live markets only (one row per event, bookmaker, market and
-- line currently listed), not the history: its size is bounded by the events on offer, about
-- 660,000 rows at production scale (1,300 events x 3 bookmakers x ~170 markets), however many
-- days are stored. The rewrite took 21 s on a loaded 2-core machine at that size (PostgreSQL
-- 18, load average 4.3): one scrape cycle's write waits that long, once. The history tables
-- (market_changes, odds_snapshots) are untouched. Deploy between two scrape cycles. A lock
-- held by a long reader is waited for at most 5 s (lock_timeout): retry the deploy then.
--
-- Migration lint (squawk, tests/test_lint.py), findings reviewed and accepted:
--   * adding-field-with-default (a generated column): the rewrite, see Locks above.
-- squawk-ignore-file adding-field-with-default
set local lock_timeout = '5s';
set local statement_timeout = '10min';

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
comment on function oddsstore_market_spread(jsonb) is 'max(1/odds) - min(1/odds) of a complete market (2+ outcomes, all offers), else null: how even a line is. market_current.spread.';

alter table market_current
    add column spread double precision generated always as (oddsstore_market_spread(outcomes)) stored;
comment on column market_current.spread is 'oddsstore_market_spread(outcomes): max(1/odds) - min(1/odds) when complete, else null. Stored: the odds board chooses main lines from it (count(spread) = bookmakers offering the line complete).';
