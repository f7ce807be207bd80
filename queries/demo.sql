-- What `oddsstore demo --reset` runs: it empties a database that holds only the demo's data, so a
-- second demo does not mix its synthetic feed into the first one's events.

-- name: holds_other_than_demo_data$
-- True when the database holds data the demo did not write: a scrape run with another trigger,
-- or a snapshot written outside any run. The reset refuses such a database.
select exists (select from scrape_runs where trigger is distinct from 'demo')
    or exists (select from odds_snapshots where scrape_run_id is null);

-- name: reset_demo_data!
-- Empty every table of stored data and restart the ids at 1, so the demo's events are numbered
-- as the README shows. TRUNCATE takes ACCESS EXCLUSIVE locks: a demo database only (checked
-- first with holds_other_than_demo_data). CASCADE covers the tables that reference these.
truncate sports, tournaments, events, event_bookmakers, bookmakers, scrape_runs, scrape_errors,
    odds_snapshots, latest_snapshots, market_current, market_changes
restart identity cascade;
