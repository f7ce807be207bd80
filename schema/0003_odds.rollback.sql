-- Rolls back 0003_odds: drops the odds history (all partitions go with their parents).
--
-- Migration lint (squawk, tests/test_lint.py), findings reviewed and accepted:
--   * ban-drop-table, ban-drop-sequence, require-lock-timeout, require-statement-timeout:
--     this drops what 0003 created. A rollback is run on purpose, with the store's users
--     stopped (this version's code needs what it removes): no live traffic to break or to
--     queue behind.
-- squawk-ignore-file ban-drop-table, ban-drop-sequence
-- squawk-ignore-file require-lock-timeout, require-statement-timeout
drop table latest_snapshots;
drop table market_odds;
drop table odds_snapshots;
drop sequence odds_snapshots_id_seq;
