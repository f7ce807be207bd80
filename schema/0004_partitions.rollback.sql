-- Rolls back 0004_partitions. Existing partitions stay attached to their tables.
--
-- Migration lint (squawk, tests/test_lint.py), findings reviewed and accepted:
--   * ban-drop-function, ban-drop-table, require-lock-timeout, require-statement-timeout:
--     this drops what 0004 created. A rollback is run on purpose, with the store's users
--     stopped (this version's code needs what it removes): no live traffic to break or to
--     queue behind.
-- squawk-ignore-file ban-drop-function, ban-drop-table
-- squawk-ignore-file require-lock-timeout, require-statement-timeout
drop function oddsstore_drop_expired_partitions(integer);
drop function oddsstore_ensure_partitions(date, date);
drop function oddsstore_partitions();
drop table oddsstore_partitioned_tables;
