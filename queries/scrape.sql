-- Scrape run bookkeeping (schema/0002_scrape.sql).

-- name: start_scrape_run^
-- record_class: ScrapeRun
-- Open a run in state 'running', started at :started_at (now when null; backfills and replays
-- pass the time the run really started).
insert into scrape_runs (status, trigger, started_at)
values ('running', :trigger, coalesce(:started_at::timestamptz, now()))
returning id, status, started_at, completed_at, events_scraped, events_failed, trigger;

-- name: finish_scrape_run^
-- record_class: ScrapeRun
-- Close a run with its final state and counts, completed at :completed_at (now when null); no
-- row if the run does not exist. The time comes from a subquery: Citus refuses now() inside
-- COALESCE in an UPDATE of a reference table (docs/scaling.md).
update scrape_runs
set status = :status::scrape_status,
    completed_at = t.completed_at,
    events_scraped = :events_scraped,
    events_failed = :events_failed
from (select coalesce(:completed_at::timestamptz, now()) as completed_at) as t
where id = :run_id
returning id, status, started_at, scrape_runs.completed_at, events_scraped, events_failed, trigger;

-- name: unknown_scrape_error_reference$
-- The first run, bookmaker or event id of a batch of errors that the database does not hold,
-- described as a foreign key violation would; null when all exist. scrape_errors has no foreign
-- keys (schema/0002_scrape.sql), so the write path asks this first, in the same transaction.
select coalesce(
    (select format('Key (scrape_run_id)=(%s) is not present in table "scrape_runs".', r.id)
     from unnest(:scrape_run_ids::bigint[]) as r (id)
     where not exists (select from scrape_runs as sr where sr.id = r.id)
     limit 1),
    (select format('Key (bookmaker_id)=(%s) is not present in table "bookmakers".', b.id)
     from unnest(:bookmaker_ids::integer[]) as b (id)
     where b.id is not null and not exists (select from bookmakers as bk where bk.id = b.id)
     limit 1),
    (select format('Key (event_id)=(%s) is not present in table "events".', e.id)
     from unnest(:event_ids::integer[]) as e (id)
     where e.id is not null and not exists (select from events as ev where ev.id = e.id)
     limit 1)
);

-- name: insert_scrape_errors!
-- Insert a batch of errors in one statement; parallel arrays, one element per error
-- (a null occurred_at means now()).
insert into scrape_errors (scrape_run_id, bookmaker_id, event_id, error_type, error_message, occurred_at)
select e.scrape_run_id, e.bookmaker_id, e.event_id, e.error_type, e.error_message, coalesce(e.occurred_at, now())
from unnest(
    :scrape_run_ids::bigint[],
    :bookmaker_ids::integer[],
    :event_ids::integer[],
    :error_types::text[],
    :error_messages::text[],
    :occurred_ats::timestamptz[]
) as e (scrape_run_id, bookmaker_id, event_id, error_type, error_message, occurred_at);

-- name: recent_scrape_runs
-- record_class: ScrapeRun
-- The most recent runs, newest first (served by scrape_runs_started_at_idx).
select id, status, started_at, completed_at, events_scraped, events_failed, trigger
from scrape_runs
order by started_at desc, id desc
limit :limit;

-- name: scrape_errors_of_run
-- record_class: ScrapeError
-- The errors one run recorded, in the order they occurred.
select id, scrape_run_id, bookmaker_id, event_id, error_type, error_message, occurred_at
from scrape_errors
where scrape_run_id = :run_id
order by occurred_at, id;

-- name: abandon_limit$
-- How long a run may stay 'running' before it counts as abandoned (its scraper killed before it
-- could close it): an hour, six cycles at the slowest usual cadence (a scrape every 5-10 minutes),
-- or three times the longest run that ended in the last 7 days when runs take longer than that.
-- greatest() ignores the null of a database with no ended runs.
select greatest(
    interval '1 hour',
    3 * (select max(completed_at - started_at)
         from scrape_runs
         where status <> 'running' and completed_at > now() - interval '7 days')
);

-- name: close_abandoned_scrape_runs
-- record_class: ScrapeRun
-- Close as 'failed' every run still 'running' :older_than after it started, and record why as a
-- scrape error of type 'abandoned' (so error_summary and the status command show it). The caller
-- makes sure today's scrape_errors partition exists, in the same transaction.
with closed as (
    update scrape_runs
    set status = 'failed',
        completed_at = now()
    where status = 'running'
      and started_at < now() - :older_than::interval
    returning id, status, started_at, completed_at, events_scraped, events_failed, trigger
),

reasons as (
    insert into scrape_errors (scrape_run_id, error_type, error_message)
    select id, 'abandoned', format('still running %s after it started (was its scraper stopped?); closed as failed',
                                   :older_than::interval)
    from closed
)

select id, status, started_at, completed_at, events_scraped, events_failed, trigger
from closed
order by id;
