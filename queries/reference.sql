-- Reference data upserts. Each is idempotent on the table's natural key (schema/0001_reference.sql)
-- and returns the stored row, so a scraper can send the same data every cycle and learn the ids.

-- name: upsert_sport^
-- record: Sport
-- Insert a sport, or rename the one with this slug.
insert into sports as s (name, slug)
values (:name, :slug)
on conflict (slug) do update
    set name = excluded.name
returning s.id, s.name, s.slug;

-- name: upsert_tournament^
-- record: Tournament
-- Insert a tournament, or return the one with this sport, name and country.
-- The no-op update makes RETURNING yield the existing row.
insert into tournaments as t (sport_id, name, country)
values (:sport_id, :name, :country)
on conflict (sport_id, name, country) do update
    set name = excluded.name
returning t.id, t.sport_id, t.name, t.country;

-- name: upsert_bookmaker^
-- record: Bookmaker
-- Insert a bookmaker, or update the name and base URL of the one with this slug.
insert into bookmakers as b (name, slug, base_url)
values (:name, :slug, :base_url)
on conflict (slug) do update
    set name = excluded.name,
        base_url = excluded.base_url
returning b.id, b.name, b.slug, b.base_url;

-- name: upsert_event^
-- record: Event
-- Insert an event, or update the one with this betpawa_event_id (a rescheduled match moves its
-- kickoff; it does not become a second event).
insert into events as e (tournament_id, betpawa_event_id, home_team, away_team, kickoff)
values (:tournament_id, :betpawa_event_id, :home_team, :away_team, :kickoff)
on conflict (betpawa_event_id) do update
    set tournament_id = excluded.tournament_id,
        home_team = excluded.home_team,
        away_team = excluded.away_team,
        kickoff = excluded.kickoff
returning e.id, e.tournament_id, e.betpawa_event_id, e.home_team, e.away_team, e.kickoff;

-- name: link_event_bookmaker^
-- record: EventBookmaker
-- Record that a bookmaker offers an event, with its own id and page for it when known (a known
-- id or URL is kept when a later call omits it).
insert into event_bookmakers as eb (event_id, bookmaker_id, bookmaker_event_id, event_url)
values (:event_id, :bookmaker_id, :bookmaker_event_id, :event_url)
on conflict (event_id, bookmaker_id) do update
    set bookmaker_event_id = coalesce(excluded.bookmaker_event_id, eb.bookmaker_event_id),
        event_url = coalesce(excluded.event_url, eb.event_url)
returning eb.event_id, eb.bookmaker_id, eb.bookmaker_event_id, eb.event_url;

-- name: get_event^
-- record: Event
-- One event by id.
select id, tournament_id, betpawa_event_id, home_team, away_team, kickoff
from events
where id = :event_id;

-- name: list_bookmakers
-- record: Bookmaker
-- All bookmakers, by id.
select id, name, slug, base_url
from bookmakers
order by id;
