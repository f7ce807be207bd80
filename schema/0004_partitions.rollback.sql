-- Rolls back 0004_partitions. Existing partitions stay attached to their tables.
drop function oddsstore_drop_expired_partitions(integer);
drop function oddsstore_ensure_partitions(date, date);
drop function oddsstore_partitions();
drop table oddsstore_partitioned_tables;
