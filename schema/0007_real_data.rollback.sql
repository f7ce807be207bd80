-- Rolls back 0007_real_data: BetPawa event ids back into events.betpawa_event_id, the line keys
-- back to 0005's expression indexes, 0005's oddsstore_prepare_retention, no oddsstore_offer.
--
-- Data: each event's BetPawa id comes back from its link to the bookmaker with slug 'betpawa'
-- (the links stay, as they did before 0007). An event with no such link (listed only at a
-- competitor) cannot exist in 0006's schema, where betpawa_event_id is required: the rollback
-- then stops, naming one, rather than invent an id; remove or link those events first.
-- sportradar_id values are lost (0006's schema has no place for them).
--
-- Locks: as 0007, ACCESS EXCLUSIVE on events, market_current, market_changes and its
-- partitions until commit; building the expression indexes scans the whole history. Stop the
-- writers of this version first.
--
-- Migration lint (squawk, tests/test_lint.py), findings reviewed and accepted:
--   * require-statement-timeout, require-concurrent-index-creation, ban-drop-column,
--     ban-drop-function, adding-not-nullable-field, disallowed-unique-constraint,
--     constraint-missing-not-valid, ban-drop-constraint: undoing 0007 on purpose, with the store's users stopped;
--     its time grows with the history (see 0007).
-- squawk-ignore-file require-statement-timeout, require-concurrent-index-creation
-- squawk-ignore-file ban-drop-column, ban-drop-function, adding-not-nullable-field
-- squawk-ignore-file disallowed-unique-constraint, constraint-missing-not-valid, ban-drop-constraint
set local lock_timeout = '10s';

drop function oddsstore_offer(double precision, boolean);

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
        select distinct on (c.event_id, c.bookmaker_id, c.betpawa_market_id, coalesce(c.line, 'NaN'))
               c.*
        from market_changes as c
        where c.captured_at < p_cutoff
        order by c.event_id, c.bookmaker_id, c.betpawa_market_id, coalesce(c.line, 'NaN'), c.captured_at desc
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
    insert into market_changes (event_id, bookmaker_id, captured_at, line, handicap_home, handicap_away,
                                betpawa_market_id, betpawa_market_name, handicap_type, outcomes)
    select e.event_id, e.bookmaker_id, f.captured_at, e.line, e.handicap_home, e.handicap_away,
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
            and coalesce(k.line, 'NaN') = coalesce(e.line, 'NaN')
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

create unique index market_changes_key_idx
    on market_changes (event_id, betpawa_market_id, bookmaker_id, (coalesce(line, 'NaN'::double precision)), captured_at);
comment on index market_changes_key_idx is 'Market key + time: odds_history, odds_at, late batches, retention carry-forward.';
alter table market_changes drop constraint market_changes_pkey;
alter table market_changes drop constraint market_changes_line_key_chk;
alter table market_changes drop column line_key;

create unique index market_current_key_idx
    on market_current (event_id, bookmaker_id, betpawa_market_id, (coalesce(line, 'NaN'::double precision)));
comment on index market_current_key_idx is 'Market key: latest_odds (event prefix) and the write path''s diff and upsert.';
alter table market_current drop constraint market_current_pkey;
alter table market_current drop constraint market_current_line_key_chk;
alter table market_current drop column line_key;

revoke usage on sequence events_id_seq from oddsstore_writer;

alter table events add column betpawa_event_id text;
update events as e
set betpawa_event_id = eb.bookmaker_event_id
from event_bookmakers as eb
join bookmakers as b on b.id = eb.bookmaker_id
where b.slug = 'betpawa'
  and eb.event_id = e.id;

do $$
declare
    v_missing text;
begin
    select format('event %s (%s v %s, sportradar_id %L)', id, home_team, away_team, sportradar_id)
    into v_missing
    from events
    where betpawa_event_id is null
    order by id
    limit 1;
    if v_missing is not null then
        raise exception 'oddsstore 0007 rollback: % has no BetPawa event id, which 0006''s schema requires', v_missing
            using hint = 'Link it to the bookmaker with slug betpawa (event_bookmakers.bookmaker_event_id) or delete it, then roll back again.';
    end if;
end;
$$;

alter table events alter column betpawa_event_id set not null;
alter table events add constraint events_betpawa_event_id_key unique (betpawa_event_id);
alter table events drop column sportradar_id;
comment on table events is 'A match. Natural key: betpawa_event_id. Kept forever (odds rows reference it).';
comment on column events.betpawa_event_id is 'The event id on BetPawa, the platform the scraper is built around; the upsert key.';
comment on table event_bookmakers is 'Which bookmakers offer an event, with their own id and page for it. stale_odds watches these pairs.';
