-- Rolls back 0011_checkpoints: nothing to undo. The checkpoint rows it logged are states the
-- markets already had; 0010's rollback keeps them as ordinary rows of the log.
select 1;
