-- Scrape run bookkeeping (schema/0002_scrape.sql).

-- name: start_scrape_run^
-- record: ScrapeRun
-- Open a run in state 'running', started at :started_at (now when null; backfills and replays
-- pass the time the run really started).
insert into scrape_runs (status, trigger, started_at)
values ('running', :trigger, coalesce(:started_at::timestamptz, now()))
returning id, status, started_at, completed_at, events_scraped, events_failed, trigger;

-- name: finish_scrape_run^
-- record: ScrapeRun
-- Close a run with its final state and counts, completed at :completed_at (now when null); no
-- row if the run does not exist.
update scrape_runs
set status = :status::scrape_status,
    completed_at = coalesce(:completed_at::timestamptz, now()),
    events_scraped = :events_scraped,
    events_failed = :events_failed
where id = :run_id
returning id, status, started_at, completed_at, events_scraped, events_failed, trigger;

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
-- record: ScrapeRun
-- The most recent runs, newest first (served by scrape_runs_started_at_idx).
select id, status, started_at, completed_at, events_scraped, events_failed, trigger
from scrape_runs
order by started_at desc, id desc
limit :limit;

-- name: scrape_errors_of_run
-- record: ScrapeError
-- The errors one run recorded, in the order they occurred.
select id, scrape_run_id, bookmaker_id, event_id, error_type, error_message, occurred_at
from scrape_errors
where scrape_run_id = :run_id
order by occurred_at, id;
