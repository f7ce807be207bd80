-- The odds board and the events list: indexes for reads across many events.
-- depends: 0007_real_data
--
-- Two reads had no index (queries/board.sql, queries/events.sql):
--   * the odds board reads a few markets (1X2, over/under, ...) of each event of a page.
--     market_current_pkey leads with (event_id, bookmaker_id): it finds an event's ~510
--     current markets (3 bookmakers x ~170) and filters the 10 or so asked for. Without an
--     index for "these markets of these events", the board written by hand against the schema
--     took 245-290 ms p50 for 1,288 events: a parallel full scan of market_current;
--   * pages of upcoming events by kickoff, keyset-paged on (kickoff, id), over every sport and
--     tournament (events_tournament_id_kickoff_idx serves one tournament only).
--
-- Locks: CREATE INDEX (not CONCURRENTLY: yoyo runs every migration in a transaction) takes a
-- SHARE lock on its table for the build: readers go on, writers wait until it ends. At 1,300
-- events x 3 bookmakers x ~170 markets (660,000 current markets) the build of
-- market_current_event_id_market_idx took 2.9 s (PostgreSQL 18) and 2.4 s (15) on a loaded
-- 2-core machine (docs/performance.md, "The odds board"). To avoid
-- even that wait on a large store, a DBA can build both indexes beforehand outside a
-- transaction, under the same names:
--     create index concurrently if not exists market_current_event_id_market_idx
--         on market_current (event_id, betpawa_market_id, bookmaker_id, line_key);
--     create index concurrently if not exists events_kickoff_id_idx on events (kickoff, id);
-- and this migration then finds them and only sets their comments.
--
-- Migration lint (squawk, tests/test_lint.py), findings reviewed and accepted:
--   * require-concurrent-index-creation: see Locks above (a transaction cannot build an index
--     concurrently; the wait is for writers only, about a second, or none when built beforehand).
-- squawk-ignore-file require-concurrent-index-creation

-- Queue for a lock at most 5 s (rather than stall the writers queued behind this migration
-- while a long transaction holds market_current); a build that runs away is stopped at 5 min.
-- Retry the deploy if either stops it: nothing is left half done.
set local lock_timeout = '5s';
set local statement_timeout = '5min';

-- The board: each event of a page, the market ids asked for, every bookmaker and line. Leads
-- with (event_id, betpawa_market_id): a page of 50 events x 4 markets is 50 range scans of
-- about 30 entries each (3 bookmakers x 1 line, 7 over/under lines), not 50 x 510 entries.
-- Measured at 1,300 events (bench/board.py, a loaded machine): a page p50 149 ms with it,
-- 259 ms without on PostgreSQL 18; 152 against 271 ms on 15. Without it each (event,
-- bookmaker) pair is probed through market_current_pkey.
-- Not unique: the columns are market_current_pkey's, reordered, and that one enforces them.
create index if not exists market_current_event_id_market_idx
    on market_current (event_id, betpawa_market_id, bookmaker_id, line_key);
comment on index market_current_event_id_market_idx is
    'Chosen markets of many events: the odds board (queries/board.sql). A 50-event page at 1,300 events: 149 ms with it, 259 ms without (PostgreSQL 18); docs/performance.md.';

-- Upcoming events in kickoff order, keyset-paged on (kickoff, id): the board and the events list.
-- events is small (thousands of rows a month), but kept forever, and every page starts at a
-- kickoff: without it every page sorts every event.
create index if not exists events_kickoff_id_idx on events (kickoff, id);
comment on index events_kickoff_id_idx is
    'Events by kickoff, keyset (kickoff, id): pages of the odds board and of the events list.';
