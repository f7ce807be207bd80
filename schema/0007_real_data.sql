-- Real scraper output: events matched across bookmakers, stored keys for the market line, and
-- one definition of a price on offer.
-- depends: 0006_roles
--
-- 1. Event identity. Events are matched across bookmakers by SportRadar id, the key the plan
--    before the seed used: events.sportradar_id (unique, nullable: not every event has one).
--    Each bookmaker's own event id and page live in event_bookmakers (unique per bookmaker, as
--    0001 made them). events.betpawa_event_id moves there: an event listed only at a competitor
--    had no BetPawa id and could not be stored at all. Data: each event's BetPawa id becomes its
--    link to the bookmaker with slug 'betpawa' (created, named BetPawa, if events exist and it
--    does not); a link to BetPawa that already names another id stops the migration (it would
--    lose one of them) with the event it found.
-- 2. Primary keys on market_current and market_changes (logical replication of updates and
--    deletes, pg_repack). A key column cannot be an expression, so the line is stored twice:
--    line (null: the market has no line), as read, and line_key = coalesce(line, 'NaN'), not
--    null, the key. NaN because PostgreSQL's float ordering makes NaN equal to itself (null is
--    not), so keys, lookups and hash joins all match "no line"; a CHECK keeps the two columns in
--    step and refuses a NaN line, which would collide with the null line. line_key replaces the
--    coalesce(line, 'NaN') expression indexes of 0005 and the expressions in the queries.
-- 3. oddsstore_offer(odds, is_active): the one rule for a price anyone can bet on. Real feeds
--    send null, 0, 1.0 and 100.0 for suspended outcomes, with or without an inactive flag; they
--    are stored as given and never judged as prices.
--
-- Data: line_key is added with the default NaN (PostgreSQL stores a constant default in the
-- catalog: no rewrite), then rows with a line get theirs by an UPDATE, in proportion to the
-- history (about half the rows: over/under and handicap markets); the default is dropped
-- afterwards, so an insert that forgets line_key fails instead of keying a line as NaN.
--
-- Locks, and for how long: ALTER TABLE takes ACCESS EXCLUSIVE on events, market_current,
-- market_changes and every partition of market_changes, held until this migration commits:
-- readers and writers of those tables wait for it. The time is the UPDATE of lines plus
-- building both primary keys, a scan and an index build over the whole history (every
-- partition); expect seconds per million change rows, minutes for 30 days at production
-- scale. A partitioned table cannot take a primary key from prebuilt indexes (ADD CONSTRAINT
-- ... USING INDEX is not supported on partitioned tables), so there is no CONCURRENTLY route.
-- Stop the writers of the previous version first in any case: they write
-- events.betpawa_event_id, which is gone. A lock held by an open reader is waited for at most
-- 10 s (lock_timeout); retry the deploy then.
--
-- Migration lint (squawk, tests/test_lint.py), findings reviewed and accepted:
--   * require-statement-timeout: a data migration whose time grows with the history (above),
--     run once at deploy with the writers stopped; a timeout would only make a large deploy fail.
--   * ban-drop-column (events.betpawa_event_id): its values are in event_bookmakers first, in
--     this transaction; the rollback puts them back.
--   * adding-field-with-default, adding-not-nullable-field: line_key's default is a constant,
--     stored in the catalog without a rewrite (PostgreSQL 11+), and is what makes it not null.
--   * ban-drop-default (line_key): on purpose, see Data.
--   * constraint-missing-not-valid, adding-serial-primary-key-field, disallowed-unique-constraint,
--     require-concurrent-index-creation, require-concurrent-index-deletion, ban-drop-index:
--     NOT VALID and CONCURRENTLY do not apply to partitioned tables' primary keys, and the
--     ACCESS EXCLUSIVE locks are held anyway (see Locks); the indexes dropped are 0005's
--     expression indexes the primary keys replace; events is small (thousands of rows), its
--     unique index is built in milliseconds.
-- squawk-ignore-file require-statement-timeout
-- squawk-ignore-file ban-drop-column
-- squawk-ignore-file adding-field-with-default, adding-not-nullable-field
-- squawk-ignore-file constraint-missing-not-valid, adding-serial-primary-key-field, disallowed-unique-constraint
-- squawk-ignore-file require-concurrent-index-creation, require-concurrent-index-deletion, ban-drop-index
-- squawk-ignore-file ban-drop-default
set local lock_timeout = '10s';

-- 1. Event identity ------------------------------------------------------------------------------

alter table events add column sportradar_id text;
-- Unique where present; null for events without one (nulls are distinct in a unique constraint).
alter table events add constraint events_sportradar_id_key unique (sportradar_id);
comment on column events.sportradar_id is 'SportRadar id: the cross-bookmaker matching key; the upsert key when present. Null when no bookmaker gave one.';

insert into bookmakers (name, slug)
select 'BetPawa', 'betpawa'
where exists (select from events)
  and not exists (select from bookmakers where slug = 'betpawa');

do $$
declare
    v_conflict text;
begin
    select format('event %s has betpawa_event_id %L, but its BetPawa link names %L', e.id, e.betpawa_event_id,
                  eb.bookmaker_event_id)
    into v_conflict
    from events as e
    join bookmakers as b on b.slug = 'betpawa'
    join event_bookmakers as eb on eb.event_id = e.id and eb.bookmaker_id = b.id
    where eb.bookmaker_event_id <> e.betpawa_event_id
    limit 1;
    if v_conflict is not null then
        raise exception 'oddsstore 0007: cannot move events.betpawa_event_id into event_bookmakers: %', v_conflict
            using hint = 'Make the two agree (update event_bookmakers or events), then deploy again.';
    end if;
end;
$$;

insert into event_bookmakers as eb (event_id, bookmaker_id, bookmaker_event_id)
select e.id, b.id, e.betpawa_event_id
from events as e
join bookmakers as b on b.slug = 'betpawa'
on conflict (event_id, bookmaker_id) do update
    set bookmaker_event_id = excluded.bookmaker_event_id
    where eb.bookmaker_event_id is null;

alter table events drop column betpawa_event_id;
comment on table events is 'A match. Natural keys: sportradar_id when known, else a bookmaker''s own event id (event_bookmakers). Kept forever (odds rows reference it).';
comment on table event_bookmakers is 'Which bookmakers offer an event, with their own id and page for it: the event''s key at each bookmaker (unique per bookmaker). stale_odds watches these pairs.';

-- Resolves an event by a bookmaker's own id (upsert_events, find_event). The unique constraint
-- (bookmaker_id, bookmaker_event_id) of 0001 serves it already: no index added.

-- Bulk event registration (queries/reference.sql, upsert_events) draws ids for new events
-- itself, so each returned row can be matched to its input.
grant usage on sequence events_id_seq to oddsstore_writer;

-- 2. Stored line keys and primary keys -----------------------------------------------------------

alter table market_current add column line_key double precision not null default 'NaN';
update market_current set line_key = line where line is not null;
alter table market_current alter column line_key drop default;
alter table market_current add constraint market_current_line_key_chk
    check (line_key = coalesce(line, 'NaN'::double precision) and line <> 'NaN'::double precision);
alter table market_current add constraint market_current_pkey
    primary key (event_id, bookmaker_id, betpawa_market_id, line_key);
drop index market_current_key_idx;
comment on column market_current.line_key is 'coalesce(line, ''NaN''): the line as a key (NaN: no line; NaN equals itself, null does not).';
comment on constraint market_current_pkey on market_current is 'One state per market and line of a pair: the write path''s comparison and upsert, and latest_odds (prefix event_id).';

alter table market_changes add column line_key double precision not null default 'NaN';
update market_changes set line_key = line where line is not null;
alter table market_changes alter column line_key drop default;
alter table market_changes add constraint market_changes_line_key_chk
    check (line_key = coalesce(line, 'NaN'::double precision) and line <> 'NaN'::double precision);
-- The columns of 0005's market_changes_key_idx, in its order: the history of one market of an
-- event (prefix event_id, betpawa_market_id), the state of a pair before a late snapshot and the
-- carry-forward (full key).
alter table market_changes add constraint market_changes_pkey
    primary key (event_id, betpawa_market_id, bookmaker_id, line_key, captured_at);
drop index market_changes_key_idx;
comment on column market_changes.line_key is 'coalesce(line, ''NaN''): the line as a key (NaN: no line; NaN equals itself, null does not).';
comment on constraint market_changes_pkey on market_changes is 'One state per market, line and snapshot: history of a market (prefix event_id, betpawa_market_id), late snapshots, retention carry-forward.';

-- 0005's function keyed the line as coalesce(line, 'NaN') and inserted no line_key; the same
-- function on line_key.
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

-- 3. What counts as a price on offer -------------------------------------------------------------

create function oddsstore_offer(p_odds double precision, p_is_active boolean)
returns boolean
language sql
immutable
parallel safe
as $$
    /*
     * True when an outcome is a price anyone can bet on now: not flagged inactive, and a decimal
     * price above 1.0 (1.0 pays the stake back and nothing more; real feeds send null, 0, 1.0
     * and 100.0 for suspended outcomes). Everything else is suspended: never a best price, never
     * counted in a margin, arbitrage, comparison gap, steam move or opening/closing movement.
     * A plain SQL expression: the planner inlines it.
     */
    select coalesce(p_is_active, true) and coalesce(p_odds > 1.0, false);
$$;
comment on function oddsstore_offer(double precision, boolean) is 'Whether an outcome is on offer: is_active not false and odds above 1.0. Placeholder prices (null, 0, 1.0, in-play 100.0 flagged inactive) are not.';
