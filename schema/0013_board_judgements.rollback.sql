-- Rolls back 0013_board_judgements: its function goes (the board of the previous version
-- computes the judgement from the outcomes).
--
-- Migration lint (squawk, tests/test_lint.py), findings reviewed and accepted:
--   * ban-drop-function: the function this migration created, used by the board query only.
-- squawk-ignore-file ban-drop-function
set local lock_timeout = '5s';
set local statement_timeout = '1min';

drop function oddsstore_market_spread(jsonb);
