-- Rolls back 0010_production_writes: 0007's oddsstore_prepare_retention (carrying states
-- forward under the merge lock), and the two columns go. Writers of the previous version take
-- the merge lock again; stop this version's writers first.
--
-- Migration lint (squawk, tests/test_lint.py), findings reviewed and accepted:
--   * ban-drop-column: the columns 0010 added; the fingerprints are a cache (a write without
--     them sends every market) and the checkpoint rows stay as ordinary rows of the log, which
--     the previous reads take for states logged again (as retention's carried rows were).
-- squawk-ignore-file ban-drop-column
set local lock_timeout = '5s';
set local statement_timeout = '1min';

revoke update (checkpoint) on table market_changes from oddsstore_writer;

create or replace function oddsstore_prepare_retention(p_cutoff timestamptz)
returns bigint
language plpgsql
set search_path from current
as $$
/*
 * Makes the days before p_cutoff safe to drop, and returns how many changes it carried forward.
 * A market unchanged since before the cutoff has its state only in a row that is about to be
 * dropped: that state is logged again at the pair's first snapshot at or after the cutoff
 * (unless a change is logged there already), so every snapshot kept still reads right.
 * Pairs with no snapshot left after the cutoff are forgotten (latest_snapshots, market_current).
 * Takes the write path's merge lock: a batch being merged meanwhile would race the carry.
 */
declare
    v_carried bigint;
begin
    perform pg_advisory_xact_lock(hashtext('oddsstore_merge'));

    with expiring as (
        -- The state of each market just before the cutoff, from the days about to be dropped.
        select distinct on (c.event_id, c.bookmaker_id, c.betpawa_market_id, c.line_key)
               c.*
        from market_changes as c
        where c.captured_at < p_cutoff
        order by c.event_id, c.bookmaker_id, c.betpawa_market_id, c.line_key, c.captured_at desc
    ),
    first_kept as (
        select p.event_id, p.bookmaker_id, f.captured_at
        from (select distinct event_id, bookmaker_id from expiring where outcomes is not null) as p
        cross join lateral (
            select s.captured_at
            from odds_snapshots as s
            where s.event_id = p.event_id
              and s.bookmaker_id = p.bookmaker_id
              and s.captured_at >= p_cutoff
            order by s.captured_at
            limit 1
        ) as f
    )
    insert into market_changes (event_id, bookmaker_id, captured_at, line, line_key, handicap_home, handicap_away,
                                betpawa_market_id, betpawa_market_name, handicap_type, outcomes)
    select e.event_id, e.bookmaker_id, f.captured_at, e.line, e.line_key, e.handicap_home, e.handicap_away,
           e.betpawa_market_id, e.betpawa_market_name, e.handicap_type, e.outcomes
    from expiring as e
    join first_kept as f on f.event_id = e.event_id and f.bookmaker_id = e.bookmaker_id
    where e.outcomes is not null
      and not exists (
          select
          from market_changes as k
          where k.event_id = e.event_id
            and k.betpawa_market_id = e.betpawa_market_id
            and k.bookmaker_id = e.bookmaker_id
            and k.line_key = e.line_key
            and k.captured_at = f.captured_at
      );
    get diagnostics v_carried = row_count;

    delete from market_current as c
    using latest_snapshots as ls
    where ls.event_id = c.event_id
      and ls.bookmaker_id = c.bookmaker_id
      and ls.captured_at < p_cutoff;
    delete from latest_snapshots where captured_at < p_cutoff;
    return v_carried;
end;
$$;
comment on function oddsstore_prepare_retention(timestamptz) is 'Carries market states forward past the cutoff and forgets pairs with nothing left; run before dropping the days before it.';

alter table market_changes drop column checkpoint;
alter table market_current drop column fingerprint;
