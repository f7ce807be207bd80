-- Rolls back 0013_board_judgements: the stored column and its function go (the board of the
-- previous version computes the judgement from the outcomes).
--
-- Locks: dropping a column only marks it dropped in the catalog (no rewrite); ACCESS EXCLUSIVE
-- on market_current for that moment. Given up after 5 s rather than queued behind a reader.
--
-- Migration lint (squawk, tests/test_lint.py), findings reviewed and accepted:
--   * ban-drop-column: the column this migration added, derived from outcomes (nothing lost).
--   * ban-drop-function: the function this migration created, used by that column only.
-- squawk-ignore-file ban-drop-column, ban-drop-function
set local lock_timeout = '5s';
set local statement_timeout = '1min';

alter table market_current drop column spread;
drop function oddsstore_market_spread(jsonb);
