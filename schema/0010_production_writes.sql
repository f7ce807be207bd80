-- Writes at production scale: per-market fingerprints kept with the current state, daily
-- checkpoints in the change log, retention that carries nothing forward.
-- depends: 0007_real_data
--
-- * market_current.fingerprint: a digest of each market exactly as the writer was given it
--   (oddsstore/writes.py). A writer process that has never seen a pair loads these for its
--   batch's pairs in one query and sends only the markets whose input changed: a new process
--   dedupes like one that has run for hours.
-- * market_changes.checkpoint: each pair's first snapshot of every UTC day logs the state of
--   every market it lists; markets that did not change there get a row marked checkpoint. The
--   state at any snapshot is then found within its own day, so reading a state (odds_at, late
--   batches, odds_history from a moment) costs the same with 1 or 30 days stored, and the
--   first kept day already holds every state retention would otherwise carry forward.
--   Reads that list changes skip checkpoint rows.
-- * oddsstore_prepare_retention no longer carries states forward: it only forgets pairs with
--   no snapshot left, taking those pairs' write locks, not a lock every writer waits for.
-- Migration 0011_checkpoints writes the checkpoints of the days already stored.
--
-- Locks: both ALTER TABLEs take ACCESS EXCLUSIVE on their table (market_changes: on every
-- partition too) for a moment: adding a nullable column, or one with a constant default, only
-- changes the catalog (PostgreSQL 11+). Give up after 5 s rather than queue behind a reader.
-- Stop the writers of the previous version first: they write no checkpoints.
--
-- Migration lint (squawk, tests/test_lint.py), findings reviewed and accepted:
--   * adding-required-field is not raised: the column has a default.
set local lock_timeout = '5s';
set local statement_timeout = '1min';

alter table market_current add column fingerprint bytea;
comment on column market_current.fingerprint is 'Digest of the market exactly as the writer was given it (oddsstore/writes.py, with its version); null: unknown, the next write of the pair sends every market.';

alter table market_changes add column checkpoint boolean not null default false;
comment on column market_changes.checkpoint is 'True: not a change, the state the market already had, logged again at its pair''s first snapshot of a UTC day so that every state is found within its own day.';

create or replace function oddsstore_prepare_retention(p_cutoff timestamptz)
returns bigint
language plpgsql
set search_path from current
as $$
/*
 * Makes the days before p_cutoff safe to drop, and returns how many pairs it forgot. Every
 * pair's first snapshot of each day logs its full state (a checkpoint), so the days kept need
 * nothing from the days dropped. Pairs with no snapshot left after the cutoff are forgotten
 * (latest_snapshots, market_current), under their write locks (the two-integer advisory lock
 * of (event_id, bookmaker_id) that the write path takes), in one order.
 */
declare
    v_forgotten bigint;
begin
    perform count(pg_advisory_xact_lock(p.event_id, p.bookmaker_id))
    from (
        select event_id, bookmaker_id
        from latest_snapshots
        where captured_at < p_cutoff
        order by event_id, bookmaker_id
    ) as p;
    -- Read after the locks: a writer that held one may have moved its pair past the cutoff.
    delete from market_current as c
    using latest_snapshots as ls
    where ls.event_id = c.event_id
      and ls.bookmaker_id = c.bookmaker_id
      and ls.captured_at < p_cutoff;
    delete from latest_snapshots where captured_at < p_cutoff;
    get diagnostics v_forgotten = row_count;
    return v_forgotten;
end;
$$;
comment on function oddsstore_prepare_retention(timestamptz) is 'Forgets pairs with no snapshot at or after the cutoff; run before dropping the days before it.';

-- The write path marks a checkpoint row as a change when a late snapshot before it makes it one
-- (queries/odds.sql, merge_stage): the one column of the log the writer may update.
grant update (checkpoint) on table market_changes to oddsstore_writer;
