-- Rolls back 0009_board: drops the two read indexes (the board and the events list then scan).
--
-- Migration lint (squawk, tests/test_lint.py), findings reviewed and accepted:
--   * require-concurrent-index-deletion: DROP INDEX CONCURRENTLY cannot run in yoyo's
--     transaction. A plain drop takes an ACCESS EXCLUSIVE lock on its table, held only for the
--     drop itself (no scan); the lock timeout below keeps this rollback from queueing (and
--     stalling everyone behind it) behind a long transaction: retry it instead.
-- squawk-ignore-file require-concurrent-index-deletion
set local lock_timeout = '5s';
set local statement_timeout = '1min';

drop index if exists market_current_event_id_market_idx;
drop index if exists events_kickoff_id_idx;
