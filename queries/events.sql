-- Events: a filtered, keyset-paged listing (look-ups by SportRadar id or a bookmaker's own id:
-- find_event in queries/reference.sql). Read-only; reads events, tournaments, event_bookmakers.

-- name: list_events
-- record_class: EventListing
-- Events in (kickoff, id) order after the cursor (:after_kickoff, :after_event_id), at most
-- :limit + 1 of them (the extra one tells the caller a next page exists). Filters, each
-- optional: kickoff in [:kickoff_from, :kickoff_to), :sport_id, :tournament_id, and :search, a
-- case-insensitive substring of either team's name (% and _ in it match themselves). Each
-- event comes with its tournament, its SportRadar and BetPawa ids (as get_event gives them) and
-- the bookmakers linked to it (event_bookmakers).
-- events_kickoff_id_idx gives the order and the lower bound; the other filters are checked on
-- the rows it reads. The search has no index (a trigram index needs the pg_trgm extension):
-- it reads the events of the kickoff window, a few thousand for a week of football.
select e.id, t.sport_id, e.tournament_id, t.name as tournament_name, t.country, e.sportradar_id,
       links.betpawa_event_id, e.home_team, e.away_team, e.kickoff, links.bookmaker_ids
from events as e
join tournaments as t on t.id = e.tournament_id
-- event_bookmakers_pkey (event_id, bookmaker_id): the event's links.
cross join lateral (
    select coalesce(array_agg(eb.bookmaker_id order by eb.bookmaker_id), '{}') as bookmaker_ids,
           min(eb.bookmaker_event_id) filter (where b.slug = 'betpawa') as betpawa_event_id
    from event_bookmakers as eb
    join bookmakers as b on b.id = eb.bookmaker_id
    where eb.event_id = e.id
) as links
-- One lower bound for the index whatever is given (a generic plan keeps it an index condition);
-- the cursor's tie on kickoff is settled by the row comparison after it.
where e.kickoff >= greatest(coalesce(:kickoff_from::timestamptz, '-infinity'),
                            coalesce(:after_kickoff::timestamptz, '-infinity'))
  and e.kickoff < coalesce(:kickoff_to::timestamptz, 'infinity')
  and (:after_kickoff::timestamptz is null or (e.kickoff, e.id) > (:after_kickoff, :after_event_id::integer))
  and (:sport_id::integer is null or t.sport_id = :sport_id)
  and (:tournament_id::integer is null or e.tournament_id = :tournament_id)
  and (:search::text is null
       or strpos(lower(e.home_team), lower(:search)) > 0
       or strpos(lower(e.away_team), lower(:search)) > 0)
order by e.kickoff, e.id
limit :limit::integer + 1;
