"""The store on real production infrastructure, started by the tests (tests/infra.py): a streaming
hot standby on which every read works, PgBouncer in transaction pooling mode through which
writes, reads and maintenance work, and a logical replication subscriber that receives the
changes of market_current and market_changes.

All on Debian's PostgreSQL 15 (and Debian's PgBouncer); skipped, saying what to install, where
they are missing. ``.ci/run`` installs them.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from conftest import market
from infra import Cluster, cluster, hot_standby, missing_pg15, missing_pgbouncer, pgbouncer

from oddsstore import OddsStore, migrations

DATABASE = "oddsstore"

pytestmark = pytest.mark.skipif(missing_pg15() is not None, reason=missing_pg15() or "")


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="oddsstore-infra-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


@pytest.fixture(scope="module")
def primary(workdir: Path) -> Iterator[Cluster]:
    """A PostgreSQL 15 primary (wal_level logical) with the oddsstore schema in DATABASE."""
    with cluster(workdir / "primary") as started:
        asyncio.run(_create_database(started))
        migrations.apply(started.dsn(DATABASE))
        yield started


async def _create_database(server: Cluster) -> None:
    connection = await asyncpg.connect(server.dsn("postgres"))
    try:
        await connection.execute(f"create database {DATABASE}")
    finally:
        await connection.close()


class Feed:
    """Reference data and a few scrape cycles with changes, written through any store."""

    def __init__(self, store: OddsStore) -> None:
        self.store = store
        self.events: list[int] = []
        self.bookmakers: list[int] = []

    async def reference(self, tag: str) -> None:
        store = self.store
        sport = await store.upsert_sport("Football", "football")
        tournament = await store.upsert_tournament(sport.id, "Premier League", "England")
        kickoff = datetime.now(UTC) + timedelta(days=1)
        self.events = [
            (await store.upsert_event(tournament.id, f"{tag}-{n}", f"Home {n}", f"Away {n}", kickoff)).id
            for n in (1, 2)
        ]
        self.bookmakers = [(await store.upsert_bookmaker(name, name.lower())).id for name in ("BetPawa", "SportyBet")]
        for event in self.events:
            for bookmaker in self.bookmakers:
                await store.link_event_bookmaker(event, bookmaker, f"{tag}-{event}-{bookmaker}")

    async def cycle(self, at: datetime, price: float) -> None:
        """Every event at every bookmaker; 1X2 at ``price`` for the home side, a line market."""
        run = await self.store.start_scrape_run("scheduled")
        await self.store.write_snapshots(
            [
                {
                    "event_id": event,
                    "bookmaker_id": bookmaker,
                    "captured_at": at,
                    "markets": [
                        market("3743", odds=(price + 0.1 * number, 3.4, 4.2)),
                        market("18", line=2.5, odds=(1.9, 1.9)),
                    ],
                }
                for event in self.events
                for number, bookmaker in enumerate(self.bookmakers)
            ],
            scrape_run_id=run.id,
        )
        await self.store.record_scrape_errors(
            [
                {
                    "scrape_run_id": run.id,
                    "bookmaker_id": self.bookmakers[1],
                    "error_type": "timeout",
                    "error_message": "x",
                }
            ]
        )
        await self.store.finish_scrape_run(run.id, "partial", events_scraped=2, events_failed=1)


async def every_read(store: OddsStore, feed: Feed, since: datetime) -> dict[str, Any]:
    """The result of every read API, as plain data."""
    event, bookmaker = feed.events[0], feed.bookmakers[0]
    runs = await store.recent_scrape_runs()
    calls: dict[str, Any] = {
        "get_event": store.get_event(event),
        "bookmakers": store.bookmakers(),
        "latest_odds": store.latest_odds(event),
        "odds_at": store.odds_at(event, since + timedelta(minutes=30)),
        "odds_history": store.odds_history(event, "3743", bookmaker),
        "snapshots": store.snapshots(event),
        "stale_odds": store.stale_odds(timedelta(minutes=5)),
        "error_summary": store.error_summary(since - timedelta(hours=1)),
        "scrape_errors": store.scrape_errors(runs[0].id),
        "compare_event": store.compare_event(event, bookmaker),
        "margins": store.margins(),
        "tournament_margins": store.tournament_margins(),
        "opening_closing": store.opening_closing(event),
        "line_movement": store.line_movement(event, "3743"),
        "steam_moves": store.steam_moves(since, 5, timedelta(hours=2)),
        "arbitrage": store.arbitrage(timedelta(hours=3)),
        "partitions": store.partitions(),
        "migrate": store.migrate(),
    }
    found = {"recent_scrape_runs": runs}
    for name, call in calls.items():
        found[name] = await call
    return {name: _plain(value) for name, value in found.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(item) for item in value]
    dump = getattr(value, "model_dump", None)
    if dump is None:
        return value
    plain = dump()
    plain.pop("rows_estimate", None)  # planner statistics: analyse runs on the primary only
    plain.pop("total_bytes", None)
    plain.pop("age", None)  # stale_odds: how old at now(), which moves between two calls
    return plain


def oddsstore_command(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oddsstore", "--dsn", dsn, *args], capture_output=True, text=True, timeout=120
    )


async def wait_replayed(primary: Cluster, replica: Cluster) -> None:
    """Until the replica has replayed everything the primary wrote so far."""
    source = await asyncpg.connect(primary.dsn("postgres"))
    target = await asyncpg.connect(replica.dsn("postgres"))
    try:
        wanted = await source.fetchval("select pg_current_wal_lsn()")
        for _ in range(300):
            if await target.fetchval("select pg_last_wal_replay_lsn() >= $1::pg_lsn", wanted):
                return
            await asyncio.sleep(0.1)
        raise AssertionError("the replica did not catch up in 30 s")
    finally:
        await source.close()
        await target.close()


# --- a streaming hot standby -------------------------------------------------------------------


async def test_every_read_works_on_a_hot_standby(primary: Cluster, workdir: Path) -> None:
    since = datetime.now(UTC) - timedelta(hours=2)
    async with OddsStore.connect(primary.dsn(DATABASE), min_size=1, max_size=2) as writer:
        feed = Feed(writer)
        await feed.reference("standby")
        await feed.cycle(since, 2.0)
        with hot_standby(primary, workdir / "standby") as replica:
            # Streamed after the base backup: a change, then an unchanged cycle.
            await feed.cycle(since + timedelta(hours=1), 1.6)
            await feed.cycle(since + timedelta(hours=2), 1.6)
            await wait_replayed(primary, replica)
            async with OddsStore.connect(replica.dsn(DATABASE), min_size=1, max_size=2) as reader:
                assert await reader.pool.fetchval("select pg_is_in_recovery()")
                on_replica = await every_read(reader, feed, since)
            on_primary = await every_read(writer, feed, since)
            for name, value in on_primary.items():
                assert on_replica[name] == value, name
            assert on_replica["latest_odds"] and on_replica["line_movement"] and on_replica["steam_moves"]
            assert on_replica["migrate"] == []
            # The read commands, as a user runs them against the replica.
            event = str(feed.events[0])
            for command in (["status"], ["compare", event], ["margins"], ["arbitrage"], ["movement", event, "3743"]):
                run = oddsstore_command(replica.dsn(DATABASE), *command)
                assert run.returncode == 0, (command, run.stderr)


# --- PgBouncer in transaction pooling mode -------------------------------------------------------


@pytest.fixture(scope="module")
def bouncer(primary: Cluster, workdir: Path) -> Iterator[str]:
    if reason := missing_pgbouncer():
        pytest.skip(reason)
    with pgbouncer(primary, workdir / "pgbouncer", pool_size=2) as address:
        yield f"postgresql://postgres@{address}/{DATABASE}"


@pytest.fixture
async def through_bouncer(bouncer: str) -> AsyncIterator[list[OddsStore]]:
    """Three stores through PgBouncer, four connections each: twelve clients on two server
    connections. PgBouncer 1.18 (Debian 12) keeps no prepared statements across transactions,
    so asyncpg's statement cache is off (docs/operations.md)."""
    stores = [await OddsStore.connect(bouncer, min_size=1, max_size=4, statement_cache_size=0) for _ in range(3)]
    try:
        yield stores
    finally:
        for store in stores:
            await store.close()


async def test_writes_reads_and_maintenance_through_pgbouncer(
    primary: Cluster, through_bouncer: list[OddsStore]
) -> None:
    stores = through_bouncer
    now = datetime.now(UTC)
    feeds = [Feed(store) for store in stores]
    for number, feed in enumerate(feeds):
        await feed.reference(f"bouncer{number}")
    # Every store writes its cycles while the others do: transactions interleave on the two
    # server connections, each write's stage tables created and dropped in its own transaction.
    for minutes, price in ((20, 2.0), (10, 1.8), (0, 1.8)):
        await asyncio.gather(*(feed.cycle(now - timedelta(minutes=minutes), price) for feed in feeds))

    direct = await asyncpg.connect(primary.dsn(DATABASE))
    try:
        stage_tables = await direct.fetchval("select count(*) from pg_class where relname like 'oddsstore_stage%'")
        assert stage_tables == 0  # nothing left on any server connection
        for feed in feeds:
            stored = await direct.fetchval(
                "select count(*) from market_changes where event_id = any($1::integer[])", feed.events
            )
            assert stored == 2 * 2 * (2 + 1)  # pairs x (first cycle's two markets + one change)
            latest = await feed.store.latest_odds(feed.events[0])
            assert [round(m.outcomes[0].odds, 2) for m in latest if m.betpawa_market_id == "3743"] == [1.8, 1.9]

        # Maintenance: days ahead, and retention of an expired day (made by the owner here).
        old = (now - timedelta(days=40)).date()
        await direct.execute("select oddsstore_ensure_partitions($1, $1)", old)
        reports = await asyncio.gather(*(store.maintain(days_ahead=2) for store in stores))
        dropped = sorted(name for report in reports for name in report.dropped)
        assert dropped == sorted(
            f"{table}_p{old:%Y%m%d}" for table in ("market_changes", "odds_snapshots", "scrape_errors")
        )
        assert all(report.not_allowed == [] for report in reports)
        assert await direct.fetchval("select holder from oddsstore_retention_lease") is None
        assert await direct.fetchval("select count(*) from pg_locks where locktype = 'advisory'") == 0
    finally:
        await direct.close()
    assert await stores[0].migrate() == []


# --- a logical replication subscriber ------------------------------------------------------------


async def test_a_logical_subscriber_receives_market_current_and_market_changes(primary: Cluster, workdir: Path) -> None:
    """A publication of the two odds tables, with partitions published as their root (the
    subscriber partitions by day on its own); updates and deletes of market_current need a
    replica identity, which their primary keys (0007) give without REPLICA IDENTITY FULL."""
    tables = ("market_current", "market_changes")
    since = datetime.now(UTC) - timedelta(hours=1)
    with cluster(workdir / "subscriber", {"fsync": "off"}) as subscriber:
        await _create_database(subscriber)
        migrations.apply(subscriber.dsn(DATABASE))
        source = await asyncpg.connect(primary.dsn(DATABASE))
        target = await asyncpg.connect(subscriber.dsn(DATABASE))
        try:
            keyless = await source.fetchval(
                "select coalesce(array_agg(t), '{}') from unnest($1::text[]) as t "
                "where not exists (select from pg_index where indrelid = t::regclass and indisprimary)",
                list(tables),
            )
            assert keyless == []  # no REPLICA IDENTITY FULL needed: every row has its key
            await source.execute(
                "create publication oddsstore_odds for table market_current, market_changes "
                "with (publish_via_partition_root = true)"
            )
            # The subscriber's own day partitions. Its foreign keys do not hold the changes up:
            # the apply worker runs as a replica (session_replication_role), as replication needs.
            today = datetime.now(UTC).date()
            await target.execute(
                "select oddsstore_ensure_partitions($1, $2)", today - timedelta(days=1), today + timedelta(days=1)
            )
            await target.execute(
                f"create subscription oddsstore_odds connection '{primary.libpq(DATABASE)}' "
                "publication oddsstore_odds with (copy_data = true)"
            )
            async with OddsStore.connect(primary.dsn(DATABASE), min_size=1, max_size=2) as writer:
                feed = Feed(writer)
                await feed.reference("logical")
                await feed.cycle(since, 2.0)
                await feed.cycle(since + timedelta(minutes=30), 1.7)  # updates market_current
                await writer.write_snapshots(  # market 18 disappears: a delete from market_current
                    [
                        {
                            "event_id": feed.events[0],
                            "bookmaker_id": b,
                            "captured_at": since + timedelta(hours=1),
                            "markets": [market("3743", odds=(1.7, 3.4, 4.2))],
                        }
                        for b in feed.bookmakers[:1]
                    ]
                )
            query = {
                # Rows as text: line_key NaN is not equal to itself as a Python float.
                "market_current": "select t::text from market_current as t "
                "order by event_id, bookmaker_id, betpawa_market_id, line",
                "market_changes": "select t::text from market_changes as t "
                "order by event_id, bookmaker_id, captured_at, betpawa_market_id, line",
            }

            async def rows(connection: asyncpg.Connection, table: str) -> list[tuple[Any, ...]]:
                return [tuple(row) for row in await connection.fetch(query[table])]

            for _ in range(300):
                if [await rows(source, t) for t in tables] == [await rows(target, t) for t in tables]:
                    break
                await asyncio.sleep(0.1)
            for table in tables:
                published = await rows(source, table)
                assert published, table
                assert await rows(target, table) == published, table
            await target.execute("alter subscription oddsstore_odds disable")
            await target.execute("alter subscription oddsstore_odds set (slot_name = none)")
            await target.execute("drop subscription oddsstore_odds")
            await source.execute("select pg_drop_replication_slot('oddsstore_odds')")
            await source.execute("drop publication oddsstore_odds")
        finally:
            await source.close()
            await target.close()
