-- Rolls back 0002_scrape.
--
-- Migration lint (squawk, tests/test_lint.py), findings reviewed and accepted:
--   * ban-drop-table, ban-drop-type, require-lock-timeout, require-statement-timeout:
--     this drops what 0002 created. A rollback is run on purpose, with the store's users
--     stopped (this version's code needs what it removes): no live traffic to break or to
--     queue behind.
-- squawk-ignore-file ban-drop-table, ban-drop-type
-- squawk-ignore-file require-lock-timeout, require-statement-timeout
drop table scrape_errors;
drop table scrape_runs;
drop type scrape_status;
