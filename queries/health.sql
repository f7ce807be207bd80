-- Scrape health: which odds may be stale, and which failures keep coming back.

-- name: stale_odds
-- record_class: StaleOdds
-- Event x bookmaker pairs of upcoming events (kickoff still ahead) whose odds may be stale,
-- with every reason that applies:
--   no_snapshot        linked in event_bookmakers, but no snapshot within retention;
--   older_than_max_age the latest snapshot is older than max_age;
--   latest_run_failed  the most recent scrape run failed, and started after the snapshot;
--   errors_since_snapshot the most recent run recorded an error for this bookmaker (or this
--                      event, or globally) after the snapshot was taken.
-- Pairs come from latest_snapshots and event_bookmakers (small tables), never from history.
with pairs as (
    select eb.event_id, eb.bookmaker_id
    from event_bookmakers as eb
    join events as e on e.id = eb.event_id
    where e.kickoff > now()
    union
    select ls.event_id, ls.bookmaker_id
    from latest_snapshots as ls
    join events as e on e.id = ls.event_id
    where e.kickoff > now()
),
latest_run as (
    select id, status, started_at
    from scrape_runs
    order by started_at desc, id desc
    limit 1
),
latest_run_errors as materialized (
    -- Read once (scrape_errors_scrape_run_id_idx, one probe per day partition), not once per
    -- pair: inlined into the exists below, it was probed per pair and per day partition, work
    -- that grows with the days stored (issue 13; the plan at 7 days in bench.analytics).
    select se.bookmaker_id, se.event_id, se.occurred_at
    from scrape_errors as se
    join latest_run as r on r.id = se.scrape_run_id
),
judged as (
    select p.event_id, p.bookmaker_id, ls.captured_at,
           now() - ls.captured_at as age,
           array_remove(array[
               case when ls.captured_at is null then 'no_snapshot' end,
               case when ls.captured_at < now() - :max_age::interval then 'older_than_max_age' end,
               case when r.status = 'failed' and r.started_at > ls.captured_at then 'latest_run_failed' end,
               case when exists (
                   select
                   from latest_run_errors as le
                   where le.occurred_at > ls.captured_at
                     and (le.bookmaker_id is null or le.bookmaker_id = p.bookmaker_id)
                     and (le.event_id is null or le.event_id = p.event_id)
               ) then 'errors_since_snapshot' end
           ], null) as reasons
    from pairs as p
    left join latest_snapshots as ls on ls.event_id = p.event_id and ls.bookmaker_id = p.bookmaker_id
    left join latest_run as r on true
)
select event_id, bookmaker_id, captured_at, age, reasons
from judged
where cardinality(reasons) > 0
order by captured_at nulls first, event_id, bookmaker_id;

-- name: error_summary
-- record_class: ErrorSummary
-- Failure history per bookmaker (null: not bookmaker-specific) and error type since a time:
-- how often, in how many runs, first and last seen, and its current streak: in how many
-- consecutive runs, counting back from the most recent run, it occurred.
with runs as (
    select id, row_number() over (order by started_at desc, id desc) as recency
    from scrape_runs
    where started_at >= :since
),
per_run as (
    select se.bookmaker_id, se.error_type, r.recency,
           count(*) as occurrences,
           min(se.occurred_at) as first_seen,
           max(se.occurred_at) as last_seen
    from scrape_errors as se
    join runs as r on r.id = se.scrape_run_id
    -- Errors cannot precede their run's start: this bound prunes old partitions.
    where se.occurred_at >= :since
    group by se.bookmaker_id, se.error_type, r.recency
),
ranked as (
    select *,
           -- Within a streak from the latest run, recency runs 1, 2, 3, ... like this rank.
           row_number() over (partition by bookmaker_id, error_type order by recency) as rank
    from per_run
)
select bookmaker_id, error_type,
       sum(occurrences)::integer as occurrences,
       count(*)::integer as runs_affected,
       min(first_seen) as first_seen,
       max(last_seen) as last_seen,
       count(*) filter (where recency = rank)::integer as consecutive_runs
from ranked
group by bookmaker_id, error_type
order by consecutive_runs desc, occurrences desc, bookmaker_id nulls first, error_type;
