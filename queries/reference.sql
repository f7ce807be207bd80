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

-- name: betpawa_bookmaker$
-- The id of the bookmaker with slug 'betpawa', inserting it (named BetPawa) if missing: the
-- bookmaker upsert_event's betpawa_event_id belongs to (schema/0007_real_data.sql moved
-- events.betpawa_event_id to the same place). Look first, as upsert_tournament does.
with existing as (
    select id from bookmakers where slug = 'betpawa'
),
inserted as (
    insert into bookmakers as b (name, slug)
    select 'BetPawa', 'betpawa'
    where not exists (select from existing)
    on conflict (slug) do update
        set slug = excluded.slug
    returning b.id
)
select id from existing
union all
select id from inserted;

-- name: upsert_events
-- record_class: Event
-- Register a batch of events with their bookmaker links in one statement, returning each stored
-- event in input order (:positions of links are 1-based indexes into the events). An event is
-- matched by sportradar_id, else by any of its links (bookmaker_id, bookmaker_event_id) to an
-- event without another SportRadar id; one matching neither is inserted. A matched event is
-- updated only where something differs (the scraper re-sends the same events every cycle: no
-- new row version when nothing changed), and a null sportradar_id keeps the stored one. Links
-- are upserted the same way; a known URL is kept when a link omits it. A bookmaker's event id
-- already linked to another event fails on event_bookmakers' unique key.
with given as (
    select g.*
    from unnest(:tournament_ids::integer[], :sportradar_ids::text[], :home_teams::text[], :away_teams::text[],
                :kickoffs::timestamptz[])
        with ordinality as g (tournament_id, sportradar_id, home_team, away_team, kickoff, position)
),
links as (
    select l.*
    from unnest(:positions::bigint[], :bookmaker_ids::integer[], :bookmaker_event_ids::text[], :event_urls::text[])
        as l (position, bookmaker_id, bookmaker_event_id, event_url)
),
by_link as (
    -- Per given event, the event one of its links names (event_bookmakers' unique key
    -- (bookmaker_id, bookmaker_event_id)), unless both carry different SportRadar ids. Joins,
    -- not a subquery per event: the links of a batch are read once.
    select distinct on (l.position) l.position, eb.event_id
    from links as l
    join given as g on g.position = l.position
    join event_bookmakers as eb
        on eb.bookmaker_id = l.bookmaker_id
       and eb.bookmaker_event_id = l.bookmaker_event_id
    join events as e on e.id = eb.event_id
    where g.sportradar_id is null or e.sportradar_id is null
    order by l.position, l.bookmaker_id
),
matched as (
    -- By SportRadar id (events_sportradar_id_key), else by a link.
    select g.*, coalesce(e.id, b.event_id) as event_id
    from given as g
    left join events as e on e.sportradar_id = g.sportradar_id
    left join by_link as b on b.position = g.position
),
new_ids as (
    -- Ids drawn here, so each inserted row is known by its input position.
    select position, nextval('events_id_seq')::integer as id
    from matched
    where event_id is null
),
inserted as (
    insert into events (id, tournament_id, sportradar_id, home_team, away_team, kickoff)
    overriding system value
    select n.id, m.tournament_id, m.sportradar_id, m.home_team, m.away_team, m.kickoff
    from new_ids as n
    join matched as m on m.position = n.position
),
updated as (
    update events as e
    set tournament_id = m.tournament_id,
        sportradar_id = coalesce(m.sportradar_id, e.sportradar_id),
        home_team = m.home_team,
        away_team = m.away_team,
        kickoff = m.kickoff
    from matched as m
    where e.id = m.event_id
      and (e.tournament_id, e.sportradar_id, e.home_team, e.away_team, e.kickoff)
          is distinct from (m.tournament_id, coalesce(m.sportradar_id, e.sportradar_id), m.home_team, m.away_team,
                            m.kickoff)
),
resolved as (
    select m.*, coalesce(m.event_id, n.id) as id
    from matched as m
    left join new_ids as n on n.position = m.position
),
linked as (
    insert into event_bookmakers as eb (event_id, bookmaker_id, bookmaker_event_id, event_url)
    select r.id, l.bookmaker_id, l.bookmaker_event_id, l.event_url
    from links as l
    join resolved as r on r.position = l.position
    on conflict (event_id, bookmaker_id) do update
        set bookmaker_event_id = excluded.bookmaker_event_id,
            event_url = coalesce(excluded.event_url, eb.event_url)
        where (eb.bookmaker_event_id, eb.event_url)
              is distinct from (excluded.bookmaker_event_id, coalesce(excluded.event_url, eb.event_url))
)
-- The statement's own writes are not visible to it: the row as written is the input, with the
-- stored SportRadar id kept where none was given, and BetPawa's id as given or as linked before.
select r.id, r.tournament_id, coalesce(r.sportradar_id, e.sportradar_id) as sportradar_id,
       coalesce(given_pawa.bookmaker_event_id, stored_pawa.bookmaker_event_id) as betpawa_event_id,
       r.home_team, r.away_team, r.kickoff
from resolved as r
left join events as e on e.id = r.id
left join links as given_pawa
    on given_pawa.position = r.position
   and given_pawa.bookmaker_id = (select id from bookmakers where slug = 'betpawa')
left join event_bookmakers as stored_pawa
    on stored_pawa.event_id = r.id
   and stored_pawa.bookmaker_id = (select id from bookmakers where slug = 'betpawa')
order by r.position;

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
-- One event by id, with its BetPawa event id when linked.
select e.id, e.tournament_id, e.sportradar_id, eb.bookmaker_event_id as betpawa_event_id,
       e.home_team, e.away_team, e.kickoff
from events as e
left join (event_bookmakers as eb join bookmakers as b on b.id = eb.bookmaker_id and b.slug = 'betpawa')
    on eb.event_id = e.id
where e.id = :event_id;

-- name: find_event^
-- record_class: Event
-- One event by SportRadar id, or by a bookmaker's own id for it (events_sportradar_id_key,
-- event_bookmakers' unique key (bookmaker_id, bookmaker_event_id)).
select e.id, e.tournament_id, e.sportradar_id, pawa.bookmaker_event_id as betpawa_event_id,
       e.home_team, e.away_team, e.kickoff
from events as e
left join (event_bookmakers as pawa join bookmakers as b on b.id = pawa.bookmaker_id and b.slug = 'betpawa')
    on pawa.event_id = e.id
where e.sportradar_id = :sportradar_id
   or e.id = (
       select eb.event_id
       from event_bookmakers as eb
       where eb.bookmaker_id = :bookmaker_id
         and eb.bookmaker_event_id = :bookmaker_event_id
   );

-- name: list_bookmakers
-- record_class: Bookmaker
-- All bookmakers, by id.
select id, name, slug, base_url
from bookmakers
order by id;
