-- Rolls back 0002_scrape.
drop table scrape_errors;
drop table scrape_runs;
drop type scrape_status;
