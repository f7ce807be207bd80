-- Reference data: sports, tournaments, bookmakers, events, and the event <-> bookmaker link.
--
-- Every table has a natural unique key next to its surrogate id, so a scraper can re-send the same
-- reference data every cycle and each upsert (queries/reference.sql) is idempotent.
-- Small, rarely updated tables: plain (not partitioned), kept forever.
--
-- Migration lint (squawk, tests/test_lint.py), findings reviewed and accepted:
--   * prefer-bigint-over-int: integer ids and references, on purpose. These tables hold
--     thousands of rows (production: ~1,300 events, 3 bookmakers), and the odds tables repeat
--     event_id and bookmaker_id in every row, where 4 bytes less per column counts. The upserts
--     (queries/reference.sql) update an existing row first and insert only a missing one, so an
--     identity value is drawn per new row (and, rarely, by two sessions inserting the same new
--     row at once), not per scrape cycle: 2^31 is far beyond any number of events.
--   * require-lock-timeout, require-statement-timeout: every statement creates an object, or
--     comments on or fills one, created in this migration: nothing to wait for, nothing slow.
-- squawk-ignore-file prefer-bigint-over-int
-- squawk-ignore-file require-lock-timeout, require-statement-timeout

create table sports (
    id   integer generated always as identity,
    name text not null,
    slug text not null,
    constraint sports_pkey primary key (id),
    constraint sports_slug_key unique (slug)
);
comment on table sports is 'A sport (football, basketball, ...). Natural key: slug.';
comment on column sports.slug is 'Stable lower-case identifier used by scrapers; the upsert key.';

create table tournaments (
    id       integer generated always as identity,
    sport_id integer not null,
    name     text    not null,
    country  text,
    constraint tournaments_pkey primary key (id),
    constraint tournaments_sport_id_fkey foreign key (sport_id) references sports (id),
    -- Natural key. "nulls not distinct" (PostgreSQL 15+): two international tournaments (country
    -- null) with the same name are the same tournament, so the upsert stays idempotent.
    constraint tournaments_sport_id_name_country_key unique nulls not distinct (sport_id, name, country)
);
comment on table tournaments is 'A competition within a sport (Premier League, ...). Natural key: (sport_id, name, country).';
comment on column tournaments.country is 'Country the tournament belongs to; null for international competitions.';

create table bookmakers (
    id       integer generated always as identity,
    name     text not null,
    slug     text not null,
    base_url text,
    constraint bookmakers_pkey primary key (id),
    constraint bookmakers_slug_key unique (slug)
);
comment on table bookmakers is 'A bookmaker whose odds are scraped. Natural key: slug.';

create table events (
    id               integer generated always as identity,
    tournament_id    integer     not null,
    betpawa_event_id text        not null,
    home_team        text        not null,
    away_team        text        not null,
    kickoff          timestamptz not null,
    constraint events_pkey primary key (id),
    constraint events_tournament_id_fkey foreign key (tournament_id) references tournaments (id),
    -- The natural key is the platform's own event id, not (teams, kickoff): a rescheduled match
    -- keeps its id, and the upsert then moves its kickoff instead of creating a second event.
    constraint events_betpawa_event_id_key unique (betpawa_event_id)
);
comment on table events is 'A match. Natural key: betpawa_event_id. Kept forever (odds rows reference it).';
comment on column events.betpawa_event_id is 'The event id on BetPawa, the platform the scraper is built around; the upsert key.';
comment on column events.kickoff is 'Scheduled start. stale_odds only considers events whose kickoff is still ahead.';

-- Serves the tournament filters of the analytics queries (events of a tournament).
create index events_tournament_id_kickoff_idx on events (tournament_id, kickoff);
comment on index events_tournament_id_kickoff_idx is 'Events of one tournament by kickoff: tournament filters and the events list.';

create table event_bookmakers (
    event_id           integer not null,
    bookmaker_id       integer not null,
    bookmaker_event_id text,
    event_url          text,
    constraint event_bookmakers_pkey primary key (event_id, bookmaker_id),
    constraint event_bookmakers_event_id_fkey foreign key (event_id) references events (id),
    constraint event_bookmakers_bookmaker_id_fkey foreign key (bookmaker_id) references bookmakers (id),
    -- A bookmaker's own event id names one event: lets a scraper resolve it back, and catches
    -- two events linked to the same bookmaker page.
    constraint event_bookmakers_bookmaker_id_bookmaker_event_id_key unique (bookmaker_id, bookmaker_event_id)
);
comment on table event_bookmakers is 'Which bookmakers offer an event, with their own id and page for it. stale_odds watches these pairs.';
comment on column event_bookmakers.bookmaker_event_id is 'The bookmaker''s own id for the event, when known.';
comment on column event_bookmakers.event_url is 'The bookmaker''s page for the event, when known.';
