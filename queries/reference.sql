-- Reference data upserts. Each is idempotent on the table's natural key (schema/0001_reference.sql)
-- and returns the stored row, so a scraper can send the same data every cycle and learn the ids.

-- name: upsert_sport^
-- record_class: Sport
-- Rename the sport with this slug, or insert it. Update first: an INSERT ... ON CONFLICT draws
-- an identity value even when the row exists, and scrapers send the same rows every cycle.
with updated as (
    update sports
    set name = :name
    where slug = :slug
    returning id, name, slug
),
inserted as (
    insert into sports as s (name, slug)
    select :name, :slug
    where not exists (select from updated)
    -- A concurrent first insert of the same slug: take it over.
    on conflict (slug) do update
        set name = excluded.name
    returning s.id, s.name, s.slug
)
select id, name, slug from updated
union all
select id, name, slug from inserted;

-- name: upsert_tournament^
-- record_class: Tournament
-- Return the tournament with this sport, name and country, inserting it if missing (look first,
-- as upsert_sport updates first: an INSERT ... ON CONFLICT would draw an identity value).
with existing as (
    select id, sport_id, name, country
    from tournaments
    where sport_id = :sport_id
      and name = :name
      and country is not distinct from :country::text
),
inserted as (
    insert into tournaments as t (sport_id, name, country)
    select :sport_id, :name, :country
    where not exists (select from existing)
    on conflict (sport_id, name, country) do update
        set name = excluded.name
    returning t.id, t.sport_id, t.name, t.country
)
select id, sport_id, name, country from existing
union all
select id, sport_id, name, country from inserted;

-- name: upsert_bookmaker^
-- record_class: Bookmaker
-- Update the name and base URL of the bookmaker with this slug, or insert it (update first, as
-- upsert_sport does).
with updated as (
    update bookmakers
    set name = :name,
        base_url = :base_url
    where slug = :slug
    returning id, name, slug, base_url
),
inserted as (
    insert into bookmakers as b (name, slug, base_url)
    select :name, :slug, :base_url
    where not exists (select from updated)
    on conflict (slug) do update
        set name = excluded.name,
            base_url = excluded.base_url
    returning b.id, b.name, b.slug, b.base_url
)
select id, name, slug, base_url from updated
union all
select id, name, slug, base_url from inserted;

-- name: upsert_event^
-- record_class: Event
-- Update the event with this betpawa_event_id (a rescheduled match moves its kickoff; it does
-- not become a second event), or insert it (update first, as upsert_sport does).
with updated as (
    update events
    set tournament_id = :tournament_id,
        home_team = :home_team,
        away_team = :away_team,
        kickoff = :kickoff
    where betpawa_event_id = :betpawa_event_id
    returning id, tournament_id, betpawa_event_id, home_team, away_team, kickoff
),
inserted as (
    insert into events as e (tournament_id, betpawa_event_id, home_team, away_team, kickoff)
    select :tournament_id, :betpawa_event_id, :home_team, :away_team, :kickoff
    where not exists (select from updated)
    on conflict (betpawa_event_id) do update
        set tournament_id = excluded.tournament_id,
            home_team = excluded.home_team,
            away_team = excluded.away_team,
            kickoff = excluded.kickoff
    returning e.id, e.tournament_id, e.betpawa_event_id, e.home_team, e.away_team, e.kickoff
)
select id, tournament_id, betpawa_event_id, home_team, away_team, kickoff from updated
union all
select id, tournament_id, betpawa_event_id, home_team, away_team, kickoff from inserted;

-- name: link_event_bookmaker^
-- record_class: EventBookmaker
-- Record that a bookmaker offers an event, with its own id and page for it when known (a known
-- id or URL is kept when a later call omits it).
insert into event_bookmakers as eb (event_id, bookmaker_id, bookmaker_event_id, event_url)
values (:event_id, :bookmaker_id, :bookmaker_event_id, :event_url)
on conflict (event_id, bookmaker_id) do update
    set bookmaker_event_id = coalesce(excluded.bookmaker_event_id, eb.bookmaker_event_id),
        event_url = coalesce(excluded.event_url, eb.event_url)
returning eb.event_id, eb.bookmaker_id, eb.bookmaker_event_id, eb.event_url;

-- name: get_event^
-- record_class: Event
-- One event by id.
select id, tournament_id, betpawa_event_id, home_team, away_team, kickoff
from events
where id = :event_id;

-- name: list_bookmakers
-- record_class: Bookmaker
-- All bookmakers, by id.
select id, name, slug, base_url
from bookmakers
order by id;
