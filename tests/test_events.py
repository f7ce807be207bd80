"""The events list (OddsStore.events, queries/events.sql): filters, search, keyset paging, the ids
each event is known by, bad input."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import World, on_citus

from oddsstore import InvalidInputError, OddsStore

pytestmark = on_citus


@dataclass(frozen=True)
class Listing:
    ids: list[int]  # every event, in kickoff order (world's two last)
    football: int
    basketball: int
    laliga: int
    now: datetime


@pytest.fixture
async def listing(store: OddsStore, world: World) -> Listing:
    now = datetime.now(UTC).replace(microsecond=0)
    football = (await store.upsert_sport("Football", "football")).id
    basketball = (await store.upsert_sport("Basketball", "basketball")).id
    laliga = (await store.upsert_tournament(football, "LaLiga", "Spain")).id
    nba = (await store.upsert_tournament(basketball, "NBA", "USA")).id
    premier = world.events[0].tournament_id
    sportybet = world.bookmakers[1].id
    made = [
        await store.upsert_event(tournament, pawa, home, away, now + timedelta(hours=hours), sportradar_id=radar)
        for tournament, pawa, radar, home, away, hours in [
            (premier, "bp-list-0", None, "Leeds United", "Burnley", -1),
            (premier, "bp-list-1", "sr:match:4242", "Arsenal", "Manchester United", 1),
            (laliga, None, "sr:match:5151", "Real Betis", "Sevilla", 2),  # not listed at BetPawa
            (nba, "bp-list-3", None, "Celtics", "Lakers", 2),
            (premier, "bp-list-4", None, "100% Rovers", "Under_score FC", 3),
        ]
    ]
    await store.link_event_bookmaker(made[1].id, sportybet, "sb-4242")
    await store.link_event_bookmaker(made[2].id, sportybet, "sb-5151")
    return Listing([e.id for e in made] + [e.id for e in world.events], football, basketball, laliga, now)


async def test_events_are_listed_in_kickoff_order_with_tournament_and_bookmakers(
    store: OddsStore, world: World, listing: Listing
) -> None:
    page = await store.events()

    assert [e.id for e in page.events] == listing.ids
    assert page.next_cursor is None
    betpawa, sportybet = world.bookmakers[0].id, world.bookmakers[1].id
    arsenal, betis = page.events[1], page.events[2]
    assert (arsenal.home_team, arsenal.away_team, arsenal.tournament_name, arsenal.country, arsenal.sport_id) == (
        "Arsenal", "Manchester United", "Premier League", "England", listing.football,
    )  # fmt: skip
    assert (arsenal.sportradar_id, arsenal.betpawa_event_id, arsenal.bookmaker_ids) == (
        "sr:match:4242", "bp-list-1", [betpawa, sportybet],
    )  # fmt: skip
    # Listed only at a competitor: no BetPawa id.
    assert (betis.sportradar_id, betis.betpawa_event_id, betis.bookmaker_ids) == ("sr:match:5151", None, [sportybet])
    assert (page.events[0].sportradar_id, page.events[0].bookmaker_ids) == (None, [betpawa])


async def test_events_filters(store: OddsStore, listing: Listing) -> None:
    async def ids(**filters: Any) -> list[int]:
        return [e.id for e in (await store.events(**filters)).events]

    assert await ids(sport_id=listing.basketball) == [listing.ids[3]]
    assert await ids(tournament_id=listing.laliga) == [listing.ids[2]]
    assert await ids(kickoff_from=listing.now, kickoff_to=listing.now + timedelta(hours=2)) == [listing.ids[1]]
    assert await ids(kickoff_from=listing.now + timedelta(days=1)) == listing.ids[5:]
    # Search: either team, any case; % and _ are plain characters.
    assert await ids(search="united") == listing.ids[:2]
    assert await ids(search="SEVILLA") == [listing.ids[2]]
    assert await ids(search="100%") == [listing.ids[4]]
    assert await ids(search="a_s") == []  # LIKE would match "Arsenal"
    assert await ids(search="under_") == [listing.ids[4]]
    assert await ids(search="united", kickoff_from=listing.now) == [listing.ids[1]]


async def test_events_page_by_kickoff_with_a_cursor(store: OddsStore, listing: Listing) -> None:
    seen: list[int] = []
    page = await store.events(limit=2)
    pages = 1
    seen += [e.id for e in page.events]
    while page.next_cursor is not None:
        page = await store.events(limit=2, after=page.next_cursor)
        pages += 1
        seen += [e.id for e in page.events]
    # Two events kick off at the same moment (LaLiga, NBA): the cursor's event id settles the tie.
    assert seen == listing.ids and pages == 4
    # A page ending at the last event says so.
    assert (await store.events(limit=7)).next_cursor is None
    assert (await store.events(limit=6)).next_cursor is not None


@pytest.mark.python_checks
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 10_001}, "limit"),
        ({"limit": True}, "limit"),
        ({"search": "  "}, "search"),
        ({"search": "a\x00b"}, "NUL"),
        ({"kickoff_to": datetime(2026, 1, 1)}, "kickoff_to"),
    ],
)
async def test_bad_listing_arguments_are_refused_clearly(
    store: OddsStore, listing: Listing, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        await store.events(**arguments)
    assert [e.id for e in (await store.events()).events] == listing.ids
