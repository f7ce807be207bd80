-- Checkpoints for the days already stored: each pair's first snapshot of every UTC day logs the
-- state of every market it lists (schema/0010_production_writes.sql says why).
-- depends: 0010_production_writes
--
-- Day by day, oldest first: the state at a pair's first snapshot of a day is read from the day
-- of its previous snapshot, whose first snapshot has its checkpoint by then (the very first
-- snapshot of a pair logs every market it lists as new; the first day retention kept holds the
-- states retention carried forward). Markets with a row at that snapshot already are skipped.
-- Only INSERTs: readers and writers of the odds tables are not blocked, but stop the writers of
-- the previous version first (they write no checkpoints). Time grows with the days stored
-- times their pairs and markets.
--
-- Migration lint (squawk, tests/test_lint.py), findings reviewed and accepted:
--   * require-lock-timeout, require-statement-timeout: a data migration whose time grows with
--     the history; it takes no lock that readers or writers wait for.
-- squawk-ignore-file require-lock-timeout, require-statement-timeout

do $$
declare
    v_day date;
begin
    for v_day in
        select p.day from oddsstore_partitions() as p where p.parent = 'odds_snapshots' order by p.day
    loop
        insert into market_changes (event_id, bookmaker_id, captured_at, line, line_key, handicap_home, handicap_away,
                                    betpawa_market_id, betpawa_market_name, handicap_type, outcomes, checkpoint)
        select f.event_id, f.bookmaker_id, f.captured_at, st.line, st.line_key, st.handicap_home, st.handicap_away,
               st.betpawa_market_id, st.betpawa_market_name, st.handicap_type, st.outcomes, true
        from (
            -- Each pair's first snapshot of the day.
            select distinct on (s.event_id, s.bookmaker_id) s.event_id, s.bookmaker_id, s.captured_at
            from odds_snapshots as s
            where s.captured_at >= v_day::timestamp at time zone 'UTC'
              and s.captured_at < (v_day + 1)::timestamp at time zone 'UTC'
            order by s.event_id, s.bookmaker_id, s.captured_at
        ) as f
        cross join lateral (
            -- The pair's previous snapshot (odds_snapshots_pkey, backwards).
            select max(s.captured_at) as captured_at
            from odds_snapshots as s
            where s.event_id = f.event_id
              and s.bookmaker_id = f.bookmaker_id
              and s.captured_at < f.captured_at
        ) as previous
        cross join lateral (
            -- The state there: the latest row of each market from the start of its day.
            select distinct on (c.betpawa_market_id, c.line_key) c.*
            from market_changes as c
            where c.event_id = f.event_id
              and c.bookmaker_id = f.bookmaker_id
              and c.captured_at <= previous.captured_at
              and c.captured_at >= date_trunc('day', previous.captured_at at time zone 'UTC') at time zone 'UTC'
            order by c.betpawa_market_id, c.line_key, c.captured_at desc
        ) as st
        where st.outcomes is not null
          and not exists (
              select
              from market_changes as k
              where k.event_id = f.event_id
                and k.betpawa_market_id = st.betpawa_market_id
                and k.bookmaker_id = f.bookmaker_id
                and k.line_key = st.line_key
                and k.captured_at = f.captured_at
          );
    end loop;
end;
$$;
