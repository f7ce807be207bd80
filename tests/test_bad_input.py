"""Bad input: every kind is refused with a typed error that names the offending item, and the
database is left exactly as it was.

Most tests first store a good batch, then send a batch holding a good snapshot (``snapshots[0]``)
and a bad one (``snapshots[1]``), and compare the whole database before and after: every table's
rows (a fingerprint of each, whatever the schema), latest odds, snapshots and partitions.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from copy import deepcopy
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

import pytest
from conftest import World, market, snapshot
from pydantic import BaseModel, TypeAdapter

from oddsstore import MarketIn, OddsStore, Outcome, SnapshotIn, writes
from oddsstore.errors import (
    DuplicateSnapshotError,
    InvalidInputError,
    OutsidePartitionWindowError,
    UnknownReferenceError,
)

# --- the state that must not change -------------------------------------------------------------


@dataclass(frozen=True)
class State:
    tables: dict[str, tuple[int, str]]
    latest: list[list[Any]]
    snapshots: list[list[Any]]
    partitions: list[tuple[str, str, date]]


async def state(store: OddsStore, world: World) -> State:
    """Everything a refused call must leave as it was.

    ``tables``: row count and an md5 of the sorted rows of every table (each partition on its
    own), found in the catalog so the check follows the schema wherever it goes.
    ``partitions``: names and days; sizes are left out (a rolled-back COPY leaves dead tuples).
    """
    names = await store.pool.fetch(
        """
        select c.relname
        from pg_class as c
        join pg_namespace as n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind = 'r' and c.relname not like '\\_yoyo%'
        order by c.relname
        """
    )
    tables = {}
    for (name,) in names:
        quoted = '"' + name.replace('"', '""') + '"'
        row = await store.pool.fetchrow(
            f"select count(*), coalesce(md5(string_agg(t::text, E'\\n' order by t::text)), '') from {quoted} as t"
        )
        tables[name] = (row[0], row[1])
    return State(
        tables=tables,
        latest=[await store.latest_odds(event.id) for event in world.events],
        snapshots=[await store.snapshots(event.id) for event in world.events],
        partitions=[(p.parent, p.name, p.day) for p in await store.partitions()],
    )


# --- a store holding a good batch ---------------------------------------------------------------


@dataclass
class Scene:
    store: OddsStore
    world: World
    at: datetime  # captured_at of the batches under test: the stored one's UTC day, 1 s later
    stored: dict[str, Any]  # a snapshot already in the database

    def good(self) -> dict[str, Any]:
        """A valid snapshot nobody stored yet; as snapshots[0] it would change latest_odds."""
        event, bookmaker = self.world.events[0], self.world.bookmakers[2]
        return snapshot(event, bookmaker, self.at, [market("3743"), market("5000", line=2.5, odds=(1.9, 1.95))])

    def candidate(self) -> dict[str, Any]:
        """A valid snapshot that a case spoils: markets[1] has outcomes "1" and "X"."""
        event, bookmaker = self.world.events[1], self.world.bookmakers[1]
        return snapshot(event, bookmaker, self.at, [market("3743"), market("18", line=-0.25, odds=(1.9, 1.95))])


@pytest.fixture
async def scene(store: OddsStore, world: World) -> Scene:
    now = datetime.now(UTC)
    # Both batches in today's UTC partition, which the first one creates.
    first = max(now - timedelta(minutes=10), datetime.combine(now.date(), time(), UTC) + timedelta(seconds=1))
    events, bookmakers = world.events, world.bookmakers
    stored = snapshot(events[0], bookmakers[0], first, [market("3743"), market("5000", line=2.5, odds=(2.0, 1.8))])
    await store.write_snapshots(
        [stored, snapshot(events[0], bookmakers[1], first), snapshot(events[1], bookmakers[0], first)]
    )
    return Scene(store, world, first + timedelta(seconds=1), stored)


async def refused(
    scene: Scene,
    call: Callable[[], Awaitable[object]],
    error: type[Exception],
    fragments: list[str],
) -> str:
    """Run ``call``; assert it raises exactly ``error``, whose message holds every fragment, and
    that the database did not change. Returns the message."""
    before = await state(scene.store, scene.world)
    with pytest.raises(InvalidInputError) as raised:
        await call()
    message = str(raised.value)
    assert type(raised.value) is error, f"{type(raised.value).__name__}: {message}"
    for fragment in fragments:
        assert fragment in message
    assert await state(scene.store, scene.world) == before
    return message


# --- one bad snapshot in a batch ----------------------------------------------------------------

Edit = Callable[[dict[str, Any], Scene], None]


def put(*path: str | int, value: Any) -> Edit:
    """Set ``snapshot[path...] = value`` (a fresh deep copy of ``value`` each time)."""

    def edit(item: dict[str, Any], _: Scene) -> None:
        target: Any = item
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = deepcopy(value)

    return edit


def odds(value: Any) -> Edit:
    return put("markets", 1, "outcomes", 1, "odds", value=value)


ODDS_PATH = "snapshots[1].markets[1].outcomes[1].odds"


def naive(item: dict[str, Any], _: Scene) -> None:
    item["captured_at"] = item["captured_at"].replace(tzinfo=None)


def duplicate_outcome(item: dict[str, Any], _: Scene) -> None:
    item["markets"][1]["outcomes"][1]["name"] = item["markets"][1]["outcomes"][0]["name"]


def duplicate_market(index: int) -> Edit:
    def edit(item: dict[str, Any], _: Scene) -> None:
        item["markets"].append(deepcopy(item["markets"][index]))
        item["markets"][-1]["outcomes"][0]["odds"] = 7.5  # same market and line, other prices

    return edit


def remove(*path: str | int) -> Edit:
    def edit(item: dict[str, Any], _: Scene) -> None:
        target: Any = item
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return edit


def same_as_good(offset: timedelta | None = None) -> Edit:
    """Turn the candidate into snapshots[0] again, at the same instant (maybe in another zone)."""

    def edit(item: dict[str, Any], scene: Scene) -> None:
        item.clear()
        item.update(scene.good())
        if offset is not None:
            item["captured_at"] = item["captured_at"].astimezone(timezone(offset))

    return edit


def already_stored(item: dict[str, Any], scene: Scene) -> None:
    item.clear()
    item.update(deepcopy(scene.stored))
    item["captured_at"] = item["captured_at"].astimezone(timezone(timedelta(hours=-5)))
    item["markets"][0]["outcomes"][0]["odds"] = 9.9  # other prices do not make it another snapshot


def captured(shift: Callable[[Scene], datetime]) -> Edit:
    def edit(item: dict[str, Any], scene: Scene) -> None:
        item["captured_at"] = shift(scene)

    return edit


def case(name: str, edit: Edit, error: type[Exception], *fragments: str) -> Any:
    return pytest.param(edit, error, list(fragments), id=name)


NAME = "snapshots[1].markets[1].outcomes[1].name"
MARKET = "snapshots[1].markets[1]"
RAW = ("snapshots[1]", "raw_response")

CASES = [
    # datetimes
    case("naive captured_at", naive, InvalidInputError, "snapshots[1].captured_at", "naive"),
    case(
        "captured_at not a datetime",
        put("captured_at", value="yesterday"),
        InvalidInputError,
        "snapshots[1].captured_at",
    ),
    # odds: finite numbers, not negative, never strings (placeholders 0, 1.0, None are stored:
    # tests/test_realdata.py)
    case("odds NaN", odds(math.nan), InvalidInputError, ODDS_PATH),
    case("odds +inf", odds(math.inf), InvalidInputError, ODDS_PATH),
    case("odds -inf", odds(-math.inf), InvalidInputError, ODDS_PATH),
    case("odds negative", odds(-1.85), InvalidInputError, ODDS_PATH),
    case("odds string", odds("1.85"), InvalidInputError, ODDS_PATH, "'1.85'"),
    case("odds bool", odds(True), InvalidInputError, ODDS_PATH),
    case("odds missing", remove("markets", 1, "outcomes", 1, "odds"), InvalidInputError, ODDS_PATH),
    case("line NaN", put("markets", 1, "line", value=math.nan), InvalidInputError, f"{MARKET}.line"),
    case("line string", put("markets", 1, "line", value="2.5"), InvalidInputError, f"{MARKET}.line"),
    case(
        "handicap_home inf",
        put("markets", 1, "handicap_home", value=math.inf),
        InvalidInputError,
        f"{MARKET}.handicap_home",
    ),
    case(
        "is_active None",
        put("markets", 1, "outcomes", 1, "is_active", value=None),
        InvalidInputError,
        f"{MARKET}.outcomes[1].is_active",
    ),
    # outcomes and names
    case("empty outcome list", put("markets", 1, "outcomes", value=[]), InvalidInputError, f"{MARKET}.outcomes"),
    case("no outcome list", remove("markets", 1, "outcomes"), InvalidInputError, f"{MARKET}.outcomes"),
    case("outcome name empty", put("markets", 1, "outcomes", 1, "name", value=""), InvalidInputError, NAME),
    case("outcome name blank", put("markets", 1, "outcomes", 1, "name", value=" \t\n"), InvalidInputError, NAME),
    case("outcome name NUL", put("markets", 1, "outcomes", 1, "name", value="X\x00"), InvalidInputError, NAME),
    case("outcome name None", put("markets", 1, "outcomes", 1, "name", value=None), InvalidInputError, NAME),
    case("outcome name a number", put("markets", 1, "outcomes", 1, "name", value=1), InvalidInputError, NAME),
    case(
        "market name empty",
        put("markets", 1, "betpawa_market_name", value=""),
        InvalidInputError,
        f"{MARKET}.betpawa_market_name",
    ),
    case(
        "market name blank",
        put("markets", 1, "betpawa_market_name", value="   "),
        InvalidInputError,
        f"{MARKET}.betpawa_market_name",
    ),
    case(
        "market name NUL",
        put("markets", 1, "betpawa_market_name", value="Total\x00"),
        InvalidInputError,
        f"{MARKET}.betpawa_market_name",
    ),
    case(
        "market id empty",
        put("markets", 1, "betpawa_market_id", value=""),
        InvalidInputError,
        f"{MARKET}.betpawa_market_id",
    ),
    case(
        "market id blank",
        put("markets", 1, "betpawa_market_id", value="\u00a0"),
        InvalidInputError,
        f"{MARKET}.betpawa_market_id",
    ),
    case(
        "market id NUL",
        put("markets", 1, "betpawa_market_id", value="\x00"),
        InvalidInputError,
        f"{MARKET}.betpawa_market_id",
    ),
    case(
        "market id a number",
        put("markets", 1, "betpawa_market_id", value=18),
        InvalidInputError,
        f"{MARKET}.betpawa_market_id",
    ),
    case(
        "handicap_type NUL",
        put("markets", 1, "handicap_type", value="asian\x00"),
        InvalidInputError,
        f"{MARKET}.handicap_type",
    ),
    case(
        "duplicate outcome name",
        duplicate_outcome,
        InvalidInputError,
        "snapshots[1].markets[1]",
        "'1' is listed twice with different prices",
    ),
    # duplicates in a snapshot (rows of one market with the same outcome at two prices), in a
    # batch, in the database
    case(
        "duplicate market with a line",
        duplicate_market(1),
        InvalidInputError,
        "snapshots[1].markets[1]",
        "is listed twice with different prices",
    ),
    case(
        "duplicate market without a line",
        duplicate_market(0),
        InvalidInputError,
        "snapshots[1].markets[0]",
        "is listed twice with different prices",
    ),
    case("same snapshot twice in a batch", same_as_good(), DuplicateSnapshotError, "snapshots[0] and snapshots[1]"),
    case(
        "same instant in another time zone",
        same_as_good(timedelta(hours=2)),
        DuplicateSnapshotError,
        "snapshots[0] and snapshots[1]",
    ),
    case("snapshot already stored", already_stored, DuplicateSnapshotError, "already stored"),
    # references
    case("unknown event", put("event_id", value=999_999), UnknownReferenceError, "999999", "events"),
    case("unknown bookmaker", put("bookmaker_id", value=999_999), UnknownReferenceError, "999999", "bookmakers"),
    case("event id 0", put("event_id", value=0), InvalidInputError, "snapshots[1].event_id"),
    case("event id a string", put("event_id", value="2"), InvalidInputError, "snapshots[1].event_id"),
    case(
        "event id beyond the integer column", put("event_id", value=2**31), InvalidInputError, "snapshots[1].event_id"
    ),
    case(
        "bookmaker id beyond the integer column",
        put("bookmaker_id", value=2**31),
        InvalidInputError,
        "snapshots[1].bookmaker_id",
    ),
    # the partition window
    case(
        "captured_at older than retention",
        captured(lambda s: datetime.now(UTC) - timedelta(days=s.store.retention_days + 1)),
        OutsidePartitionWindowError,
        "snapshots[1]",
        "outside the partition window",
    ),
    case(
        "captured_at too far ahead",
        captured(lambda s: datetime.now(UTC) + timedelta(days=s.store.days_ahead + 1)),
        OutsidePartitionWindowError,
        "snapshots[1]",
        "outside the partition window",
    ),
    case(
        "captured_at in year 1",
        captured(lambda s: datetime(1, 1, 1, tzinfo=UTC)),
        OutsidePartitionWindowError,
        "snapshots[1]",
    ),
    # raw_response must be storable JSON
    case("raw_response a set", put("raw_response", value={"ids": {1, 2}}), InvalidInputError, *RAW),
    case("raw_response NaN inside", put("raw_response", value={"odds": [1.5, math.nan]}), InvalidInputError, *RAW),
    case("raw_response inf inside", put("raw_response", value=[{"x": -math.inf}]), InvalidInputError, *RAW),
    case("raw_response an object", put("raw_response", value={"x": object()}), InvalidInputError, *RAW),
    case("raw_response bytes", put("raw_response", value={"x": b"\x01"}), InvalidInputError, *RAW),
    case("raw_response NUL in a value", put("raw_response", value={"x": "a\x00"}), InvalidInputError, *RAW),
    case("raw_response NUL in a key", put("raw_response", value={"a\x00": 1}), InvalidInputError, *RAW),
    case(
        "raw_response a datetime",
        put("raw_response", value={"seen": datetime(2025, 1, 1, tzinfo=UTC)}),
        InvalidInputError,
        *RAW,
    ),
    case(
        "raw_response a naive datetime",
        put("raw_response", value={"seen": datetime(2025, 1, 1)}),
        InvalidInputError,
        *RAW,
    ),
    # shapes, and unknown keys (refused with unknown_keys="reject", as these tests write)
    case(
        "unknown key in a market",
        put("markets", 1, "price_boost", value=True),
        InvalidInputError,
        f"{MARKET}.price_boost",
    ),
    case(
        "unknown key in an outcome",
        put("markets", 1, "outcomes", 0, "price", value=1.5),
        InvalidInputError,
        f"{MARKET}.outcomes[0].price",
    ),
    case("unknown key in a snapshot", put("scrape_run_id", value=1), InvalidInputError, "snapshots[1].scrape_run_id"),
    case("markets not a list", put("markets", value=None), InvalidInputError, "snapshots[1].markets"),
    case("market not a dict", put("markets", 1, value=["18", "Total"]), InvalidInputError, "snapshots[1].markets[1]"),
    case("no captured_at", remove("captured_at"), InvalidInputError, "snapshots[1].captured_at"),
]


@pytest.mark.parametrize(("edit", "error", "fragments"), CASES)
async def test_a_bad_snapshot_is_refused_and_nothing_changes(
    scene: Scene, edit: Edit, error: type[Exception], fragments: list[str]
) -> None:
    bad = scene.candidate()
    edit(bad, scene)
    await refused(
        scene, lambda: scene.store.write_snapshots([scene.good(), bad], unknown_keys="reject"), error, fragments
    )


@pytest.mark.parametrize(("edit", "error", "fragments"), [c for c in CASES if c.values[1] is InvalidInputError])
async def test_a_bad_snapshot_is_skipped_whole_with_on_invalid_skip(
    scene: Scene, edit: Edit, error: type[Exception], fragments: list[str]
) -> None:
    bad = scene.candidate()
    edit(bad, scene)
    good = scene.good()
    result = await scene.store.write_snapshots([good, bad], unknown_keys="reject", on_invalid="skip")
    assert result.snapshots == 1
    (skipped,) = result.skipped
    assert skipped.position == 1 and f"{skipped.path}: {skipped.reason}".startswith(fragments[0])
    assert all(fragment in f"{skipped.path} {skipped.reason}" for fragment in fragments[1:] if "(" not in fragment)


async def test_a_snapshot_that_is_not_a_mapping_is_refused(scene: Scene) -> None:
    batch = [scene.good(), ("event_id", 1)]
    await refused(scene, lambda: scene.store.write_snapshots(batch), InvalidInputError, ["snapshots[1]"])


async def test_a_refused_batch_creates_no_partition_outside_the_window(scene: Scene) -> None:
    store = scene.store
    now = datetime.now(UTC)
    for moment in (now - timedelta(days=store.retention_days + 1), now + timedelta(days=store.days_ahead + 1)):
        bad = scene.candidate() | {"captured_at": moment}
        await refused(scene, lambda b=bad: store.write_snapshots([scene.good(), b]), OutsidePartitionWindowError, [])
        assert moment.date() not in {p.day for p in await store.partitions()}


# --- other arguments ------------------------------------------------------------------------------


async def test_an_unknown_scrape_run_is_refused(scene: Scene) -> None:
    batch = [scene.good(), scene.candidate()]
    await refused(
        scene,
        lambda: scene.store.write_snapshots(batch, scrape_run_id=999_999),
        UnknownReferenceError,
        ["999999", "scrape_runs"],
    )


async def test_a_scrape_run_id_that_is_not_an_int_is_refused(scene: Scene) -> None:
    batch = [scene.good(), scene.candidate()]
    await refused(
        scene, lambda: scene.store.write_snapshots(batch, scrape_run_id="1"), InvalidInputError, ["scrape_run_id"]
    )


async def test_a_batch_refused_by_the_database_leaves_no_new_partition(scene: Scene) -> None:
    yesterday = scene.at - timedelta(days=1)
    batch = [
        scene.good() | {"captured_at": yesterday},
        scene.candidate() | {"captured_at": yesterday, "event_id": 999_999},
    ]
    await refused(scene, lambda: scene.store.write_snapshots(batch), UnknownReferenceError, ["999999"])


async def test_a_raw_response_with_an_escaped_looking_text_is_stored(scene: Scene) -> None:
    raw = {"path": "C:\\u0000\\new", "regex": "\\\\u0000"}
    await scene.store.write_snapshots([scene.good() | {"raw_response": raw}])
    (stored,) = [s for s in await scene.store.snapshots(scene.world.events[0].id) if s.captured_at == scene.at]
    assert stored.raw_response == raw


NAIVE = datetime(2025, 6, 1, 12, 0)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        pytest.param(lambda s, e: s.odds_history(e.id, "3743", since=NAIVE), "since", id="odds_history since"),
        pytest.param(lambda s, e: s.odds_history(e.id, "3743", until=NAIVE), "until", id="odds_history until"),
        pytest.param(lambda s, e: s.snapshots(e.id, since=NAIVE), "since", id="snapshots since"),
        pytest.param(lambda s, e: s.error_summary(since=NAIVE), "since", id="error_summary since"),
        pytest.param(
            lambda s, e: s.upsert_event(e.tournament_id, e.betpawa_event_id, "New home", "New away", NAIVE),
            "kickoff",
            id="upsert_event kickoff (an update)",
        ),
        pytest.param(
            lambda s, e: s.upsert_event(e.tournament_id, "bp-new", "Home", "Away", NAIVE),
            "kickoff",
            id="upsert_event kickoff (an insert)",
        ),
    ],
)
async def test_naive_datetimes_are_refused_everywhere(scene: Scene, call: Any, argument: str) -> None:
    event = scene.world.events[0]
    await refused(scene, lambda: call(scene.store, event), InvalidInputError, [f"{argument}: naive datetime"])


async def test_scrape_errors_with_a_naive_time_are_refused(scene: Scene) -> None:
    run = await scene.store.start_scrape_run("cron")
    errors = [
        {"scrape_run_id": run.id, "error_type": "timeout", "error_message": "read timed out"},
        {"scrape_run_id": run.id, "error_type": "timeout", "error_message": "again", "occurred_at": NAIVE},
    ]
    await refused(
        scene, lambda: scene.store.record_scrape_errors(errors), InvalidInputError, ["errors[1].occurred_at", "naive"]
    )


@pytest.mark.parametrize("status", ["done", "COMPLETED", "", None, 3])
async def test_finish_scrape_run_refuses_an_unknown_status(scene: Scene, status: Any) -> None:
    run = await scene.store.start_scrape_run("cron")
    message = await refused(
        scene, lambda: scene.store.finish_scrape_run(run.id, status), InvalidInputError, [repr(status)]
    )
    assert "completed, partial, failed" in message


@pytest.mark.parametrize("status", ["running", "pending"])
async def test_finish_scrape_run_refuses_a_status_that_is_not_final(scene: Scene, status: str) -> None:
    run = await scene.store.start_scrape_run("cron")
    await refused(scene, lambda: scene.store.finish_scrape_run(run.id, status), InvalidInputError, [repr(status)])


async def test_finish_scrape_run_refuses_negative_counts(scene: Scene) -> None:
    run = await scene.store.start_scrape_run("cron")
    await refused(scene, lambda: scene.store.finish_scrape_run(run.id, "completed", -1, 0), InvalidInputError, ["-1"])


async def test_finish_scrape_run_of_an_unknown_run(scene: Scene) -> None:
    await refused(scene, lambda: scene.store.finish_scrape_run(424_242, "completed"), UnknownReferenceError, ["424242"])


async def test_nul_in_reference_names_is_refused(scene: Scene) -> None:
    # The message is PostgreSQL's ("invalid byte sequence for encoding UTF8: 0x00"); see the report.
    tournament_id = scene.world.events[0].tournament_id
    kickoff = datetime.now(UTC) + timedelta(days=1)
    await refused(
        scene,
        lambda: scene.store.upsert_event(tournament_id, "bp-9", "Home\x00", "Away", kickoff),
        InvalidInputError,
        [],
    )
    await refused(scene, lambda: scene.store.upsert_bookmaker("Bet\x00", "bet"), InvalidInputError, [])


# --- user text is data, never SQL -----------------------------------------------------------------

TRICKY = [
    "'; drop table odds_snapshots; --",
    "x' or '1'='1",
    "$$; delete from events; $$",
    "$1",
    ":event_id",
    "%s %(name)s {0}",
    'Robert"); drop table "events"; --',
    "back\\slash \\' \\x00 \\N",
    "/* comment */ -- comment",
    "ünïcødé ⚽ 🇳🇬 اختبار",
    "  leading and trailing  ",
    "tab\tnew\nline\r",
]


async def test_text_that_looks_like_sql_is_stored_exactly(store: OddsStore) -> None:
    sport = await store.upsert_sport(TRICKY[0], TRICKY[1])
    tournament = await store.upsert_tournament(sport.id, TRICKY[2], TRICKY[3])
    kickoff = datetime.now(UTC) + timedelta(days=1)
    event = await store.upsert_event(tournament.id, TRICKY[4], TRICKY[5], TRICKY[6], kickoff)
    bookmaker = await store.upsert_bookmaker(TRICKY[7], TRICKY[8], TRICKY[9])
    run = await store.start_scrape_run(TRICKY[10])
    markets = [
        {
            "betpawa_market_id": text,
            "betpawa_market_name": f"{text} (name)",
            "line": None,
            "handicap_type": text,
            "outcomes": [{"name": name, "odds": 1.5 + i} for i, name in enumerate([text, f"{text}!", f"!{text}"])],
        }
        for text in TRICKY
    ]
    raw = {text: text for text in TRICKY}
    at = datetime.now(UTC)
    await store.write_snapshots(
        [
            {
                "event_id": event.id,
                "bookmaker_id": bookmaker.id,
                "captured_at": at,
                "markets": markets,
                "raw_response": raw,
            }
        ],
        scrape_run_id=run.id,
    )

    assert await store.get_event(event.id) == event
    assert (event.betpawa_event_id, event.home_team, event.away_team) == (TRICKY[4], TRICKY[5], TRICKY[6])
    assert (bookmaker.name, bookmaker.slug, bookmaker.base_url) == (TRICKY[7], TRICKY[8], TRICKY[9])
    assert (await store.recent_scrape_runs())[0].trigger == TRICKY[10]
    expected = {
        m["betpawa_market_id"]: (
            m["betpawa_market_name"],
            m["handicap_type"],
            sorted((o["name"], o["odds"]) for o in m["outcomes"]),  # stored by name
        )
        for m in markets
    }

    def seen(records: list[Any]) -> dict[str, Any]:
        return {
            r.betpawa_market_id: (r.betpawa_market_name, r.handicap_type, [(o.name, o.odds) for o in r.outcomes])
            for r in records
        }

    assert seen(await store.latest_odds(event.id)) == expected
    for text in TRICKY:  # the market id is a query parameter here
        history = await store.odds_history(event.id, text)
        assert seen(history) == {text: expected[text]}
    (stored,) = await store.snapshots(event.id)
    assert stored.raw_response == raw
    # Nothing was executed: every table is still there, with what was written.
    assert await store.pool.fetchval("select count(*) from odds_snapshots") == 1
    assert await store.pool.fetchval("select count(*) from events") == 1


def test_the_write_path_takes_exactly_the_fields_of_the_models() -> None:
    """The write path validates dicts against TypedDicts (oddsstore/writes.py); they must name
    the same fields as the public models, required where the models require them."""

    def fields(typed_dict: type) -> dict[str, bool]:  # as pydantic reads it: the annotations are strings
        schema = TypeAdapter(typed_dict).core_schema
        assert schema["type"] == "typed-dict"
        return {name: field.get("required", True) for name, field in schema["fields"].items()}

    def model_fields(model: type[BaseModel]) -> dict[str, bool]:
        return {name: info.is_required() for name, info in model.model_fields.items()}

    assert fields(writes.OutcomeDict) == fields(writes.StrictOutcomeDict) == model_fields(Outcome)
    assert fields(writes.MarketDict) == fields(writes.StrictMarketDict) == model_fields(MarketIn)
    assert fields(writes.EnvelopeDict) == fields(writes.StrictEnvelopeDict) == model_fields(SnapshotIn)
