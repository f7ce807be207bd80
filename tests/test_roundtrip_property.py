"""Round trip, property-based: what ``write_snapshots`` got is what ``latest_odds``,
``odds_history`` and ``snapshots`` return.

Hypothesis draws a few batches (increasing captured_at, spread over the retention window and
given in several time zones) of snapshots with 1-5 markets (lines None or quarter lines, repeated
market ids) and 1-6 outcomes (unicode names, finite odds in (1.0, 1000] or the placeholders real
feeds send, active or not). A plain
Python model says what the reads must return; floats must come back exactly. Each example runs
on a fresh clone of the migrated template database.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections import Counter
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from conftest import Server, World, snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oddsstore import MarketOdds, OddsStore

EVENTS = 2
BOOKMAKERS = 3

# --- what a scraper might hand over -----------------------------------------------------------

# Names: any text without NUL or lone surrogates that is not all whitespace (the store refuses
# those; tests/test_bad_input.py checks that).
names = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=8).filter(
    lambda text: not text.isspace()
)
# A few market ids, so that markets recur across snapshots and have a history.
market_ids = st.sampled_from(["3743", "5000", "18", "1X2 ⚽", "Über/Unter"])
lines = st.none() | st.integers(-14, 14).map(lambda quarters: quarters / 4)
odds = (
    st.floats(min_value=1.0, max_value=1000.0, exclude_min=True, allow_nan=False, allow_infinity=False)
    | st.integers(2, 1000)
    | st.sampled_from([None, 0.0, 0, 1.0, 1, 100.0])  # placeholders real feeds send: stored as given
)
# Two known faults are kept out of raw_response here and pinned by xfail tests instead: floats
# beyond 2**53 (test_a_large_float_in_raw_response_comes_back_unchanged) and text holding a
# backslash, which can spell "\u0000" (test_bad_input.py,
# test_a_raw_response_with_an_escaped_looking_text_is_stored).
json_texts = names.filter(lambda text: "\\" not in text)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(-(2.0**53), 2.0**53) | json_texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(json_texts, children, max_size=3),
    max_leaves=6,
)


@st.composite
def outcomes(draw: st.DrawFn) -> dict[str, Any]:
    outcome = {"name": draw(names), "odds": draw(odds)}
    if (active := draw(st.none() | st.booleans())) is not None:  # omitted: active
        outcome["is_active"] = active
    return outcome


@st.composite
def markets(draw: st.DrawFn) -> dict[str, Any]:
    market: dict[str, Any] = {
        "betpawa_market_id": draw(market_ids),
        "betpawa_market_name": draw(names),
        "outcomes": draw(st.lists(outcomes(), min_size=1, max_size=6, unique_by=lambda o: o["name"])),
    }
    for key, values in (
        ("line", lines),
        ("handicap_type", st.sampled_from(["asian", "european", "3-way ±"])),
        ("handicap_home", lines),
        ("handicap_away", lines),
    ):
        if draw(st.booleans()):  # otherwise omitted: None
            market[key] = draw(st.none() | values)
    return market


ZONES = [timezone(timedelta(minutes=m)) for m in (0, 330, -180, 840, -720)]


@st.composite
def evolved(draw: st.DrawFn, previous: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pair's previous markets as the next scrape might show them: most unchanged (the
    common case), some with one field changed, some gone, some new."""
    result = []
    for market in previous:
        change = draw(st.sampled_from(["same", "same", "same", "odds", "active", "order", "name", "handicap", "gone"]))
        market = deepcopy(market)
        if change == "gone":
            continue
        if change == "odds":
            draw(st.sampled_from(market["outcomes"]))["odds"] = draw(odds)
        elif change == "active":
            outcome = draw(st.sampled_from(market["outcomes"]))
            outcome["is_active"] = not outcome.get("is_active", True)
        elif change == "order":
            market["outcomes"].reverse()
        elif change == "name":
            market["betpawa_market_name"] = draw(names)
        elif change == "handicap":
            key = draw(st.sampled_from(["handicap_type", "handicap_home", "handicap_away"]))
            market[key] = draw(st.none() | (st.just("asian") if key == "handicap_type" else lines))
        result.append(market)
    taken = {(m["betpawa_market_id"], m.get("line")) for m in result}
    for market in draw(st.lists(markets(), max_size=2)):
        if (key := (market["betpawa_market_id"], market.get("line"))) not in taken:
            taken.add(key)
            result.append(market)
    return result or deepcopy(previous[:1])


@st.composite
def feeds(draw: st.DrawFn) -> list[list[dict[str, Any]]]:
    """1-3 batches of 1-4 snapshots. Batch k is taken at least a minute before batch k+1 (up to
    20 days ago), its snapshots within a second of each other; a pair may appear twice in a
    batch. A pair seen before mostly shows its previous markets again, a little changed."""
    count = draw(st.integers(1, 3))
    ages = sorted(draw(st.lists(st.integers(1, 20 * 24 * 60), min_size=count, max_size=count, unique=True)))
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    pairs = st.tuples(st.integers(0, EVENTS - 1), st.integers(0, BOOKMAKERS - 1))
    last: dict[tuple[int, int], list[dict[str, Any]]] = {}
    batches = []
    for age in reversed(ages):
        size = draw(st.integers(1, 4))
        offsets = sorted(draw(st.lists(st.integers(0, 999_999), min_size=size, max_size=size, unique=True)))
        batch = []
        for offset in offsets:
            pair = draw(pairs)
            at = now - timedelta(minutes=age) + timedelta(microseconds=offset)
            if pair in last and draw(st.integers(0, 3)):
                listed = draw(evolved(last[pair]))
            else:
                listed = draw(
                    st.lists(
                        markets(), min_size=1, max_size=5, unique_by=lambda m: (m["betpawa_market_id"], m.get("line"))
                    )
                )
            last[pair] = listed
            item = {
                "event": pair[0],
                "bookmaker": pair[1],
                "captured_at": at.astimezone(draw(st.sampled_from(ZONES))),
                "markets": deepcopy(listed),
            }
            if draw(st.booleans()):
                item["raw_response"] = draw(json_values)
            batch.append(item)
        batches.append(batch)
    return batches


# --- the reference model ----------------------------------------------------------------------


def row(snapshot_id: int, event_id: int, bookmaker_id: int, at: datetime, market: dict[str, Any]) -> tuple[Any, ...]:
    """A market as the reads must return it: missing fields None, is_active True by default."""
    return (
        snapshot_id,
        event_id,
        bookmaker_id,
        at,
        market["betpawa_market_id"],
        market["betpawa_market_name"],
        market.get("line"),
        market.get("handicap_type"),
        market.get("handicap_home"),
        market.get("handicap_away"),
        tuple(sorted((o["name"], o["odds"], o.get("is_active", True)) for o in market["outcomes"])),  # by name
    )


def read(record: MarketOdds) -> tuple[Any, ...]:
    return (
        record.snapshot_id,
        record.event_id,
        record.bookmaker_id,
        record.captured_at,
        record.betpawa_market_id,
        record.betpawa_market_name,
        record.line,
        record.handicap_type,
        record.handicap_home,
        record.handicap_away,
        tuple((o.name, o.odds, o.is_active) for o in record.outcomes),
    )


def history_order(item: tuple[Any, ...]) -> tuple[Any, ...]:
    """odds_history's order: captured_at, bookmaker, line (nulls first)."""
    return (item[3], item[2], item[6] is not None, item[6] or 0.0)


@dataclass
class Model:
    """Every market written, and the snapshots' raw responses, by snapshot id."""

    rows: list[tuple[Any, ...]] = field(default_factory=list)
    raw: dict[int, Any] = field(default_factory=dict)

    def latest(self, event_id: int) -> Counter[tuple[Any, ...]]:
        newest: dict[int, datetime] = {}
        for r in self.rows:
            if r[1] == event_id:
                newest[r[2]] = max(newest.get(r[2], r[3]), r[3])
        return Counter(r for r in self.rows if r[1] == event_id and r[3] == newest[r[2]])

    def history(self, event_id: int, market_id: str, bookmaker_id: int | None = None) -> list[tuple[Any, ...]]:
        found = [r for r in self.rows if r[1] == event_id and r[4] == market_id and bookmaker_id in (None, r[2])]
        return sorted(found, key=history_order)


# --- the property -----------------------------------------------------------------------------

_databases = itertools.count()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=feeds())
def test_what_is_written_is_what_is_read(
    pg_server: Server, template_db: str, batches: list[list[dict[str, Any]]]
) -> None:
    name = f"roundtrip_{os.getpid()}_{next(_databases)}"
    janitor = pg_server.janitor(name, template_dbname=template_db)
    janitor.init()
    try:
        asyncio.run(check_round_trip(pg_server.dsn(name), batches))
    finally:
        janitor.drop()


async def check_round_trip(dsn: str, batches: list[list[dict[str, Any]]]) -> None:
    async with OddsStore.connect(dsn, min_size=1, max_size=2) as store:
        sport = await store.upsert_sport("Football", "football")
        tournament = await store.upsert_tournament(sport.id, "Ligue ⚽", None)
        kickoff = datetime.now(UTC) + timedelta(days=1)
        events = [
            (await store.upsert_event(tournament.id, f"bp-{n}", f"Home {n}", f"Away {n}", kickoff)).id
            for n in range(EVENTS)
        ]
        bookmakers = [(await store.upsert_bookmaker(f"Bookie {n}", f"bookie-{n}")).id for n in range(BOOKMAKERS)]

        model = Model()
        for batch in batches:
            snapshots = [
                {key: value for key, value in item.items() if key not in ("event", "bookmaker")}
                | {"event_id": events[item["event"]], "bookmaker_id": bookmakers[item["bookmaker"]]}
                for item in batch
            ]
            result = await store.write_snapshots(snapshots)
            assert result.snapshots == len(snapshots)
            assert result.markets == sum(len(s["markets"]) for s in snapshots)
            for snapshot_id, s in zip(result.snapshot_ids, snapshots, strict=True):
                model.raw[snapshot_id] = s.get("raw_response")
                model.rows += [
                    row(snapshot_id, s["event_id"], s["bookmaker_id"], s["captured_at"], m) for m in s["markets"]
                ]

        for event_id in events:
            latest = await store.latest_odds(event_id)
            assert Counter(read(r) for r in latest) == model.latest(event_id)
            assert [r.bookmaker_id for r in latest] == sorted(r.bookmaker_id for r in latest)
            for market_id in {r[4] for r in model.rows if r[1] == event_id}:
                history = [read(r) for r in await store.odds_history(event_id, market_id)]
                assert history == model.history(event_id, market_id)
                bookmaker_id = history[-1][2]
                mine = [read(r) for r in await store.odds_history(event_id, market_id, bookmaker_id=bookmaker_id)]
                assert mine == model.history(event_id, market_id, bookmaker_id)
                since = history[len(history) // 2][3]
                later = [read(r) for r in await store.odds_history(event_id, market_id, since=since)]
                assert later == [r for r in history if r[3] >= since]
            stored = await store.snapshots(event_id)
            assert {s.id: s.raw_response for s in stored} == {
                snapshot_id: raw
                for snapshot_id, raw in model.raw.items()
                if any(r[0] == snapshot_id and r[1] == event_id for r in model.rows)
            }


@pytest.mark.xfail(
    strict=True,
    reason="jsonb keeps numbers as numeric and prints integral ones without a point or exponent, so the "
    "codec decodes 5.672704602586089e16 as the int 56727046025860890, which is not the float written "
    "(56727046025860888); floats beyond 2**53 in raw_response come back as different ints",
)
async def test_a_large_float_in_raw_response_comes_back_unchanged(store: OddsStore, world: World) -> None:
    raw = {"big": 5.672704602586089e16, "bigger": 1.2345678901234567e20}
    at = datetime.now(UTC)
    event, bookmaker = world.events[0], world.bookmakers[0]
    await store.write_snapshots([snapshot(event, bookmaker, at) | {"raw_response": raw}])
    (stored,) = await store.snapshots(event.id)
    assert stored.raw_response == raw
    assert all(isinstance(value, float) for value in stored.raw_response.values())
