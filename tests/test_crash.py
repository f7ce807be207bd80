"""A batch interrupted anywhere is wholly absent, and the next write succeeds.

A real writer process (tests/crash_writer.py) is SIGKILLed while it COPYs a batch into its
stage, while the set-based merge runs, while the merge is blocked half done, and between the
merge steps of one batch; its backend is terminated mid-merge (a dropped connection); and a
statement timeout cancels a COPY and a merge. Each time, the moment is found by polling
pg_stat_activity for the writer's backend. Afterwards the store must hold exactly what it held
before (the reference model of the earlier batch), and writing the same batch again must succeed
and be read back exactly.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from crash_writer import APPLICATION_NAME, build_batch
from reference_model import Model, Snapshot, line_order, rows, store_rows, unordered

from oddsstore import ConnectionLostError, OddsStore, QueryTimeoutError

WRITER = Path(__file__).with_name("crash_writer.py")
EVENTS, BOOKMAKERS, MARKETS = 60, 3, 150  # 180 snapshots, 27,000 markets: a COPY and a merge to catch
MERGE = "hashtext('oddsstore_merge')"  # in the merge statement's text
COPY_MARKETS = 'COPY "oddsstore_stage_markets"'
END = datetime.max.replace(tzinfo=UTC)


@dataclass
class Setup:
    store: OddsStore
    monitor: asyncpg.Connection
    events: list[int]
    bookmakers: list[int]
    base: datetime  # the earlier batch, written and kept
    at: datetime  # the interrupted batch
    model: Model  # what the store must hold: the earlier batch

    def batch(self, steps: int = 1, markets: int = MARKETS, events: int = EVENTS) -> list[dict[str, Any]]:
        return build_batch(self.events[:events], self.bookmakers, self.at, version=1, markets=markets, steps=steps)

    def argv(self, dsn: str, *extra: str, steps: int = 1) -> list[str]:
        return [
            sys.executable,
            str(WRITER),
            dsn,
            "--events",
            ",".join(map(str, self.events)),
            "--bookmakers",
            ",".join(map(str, self.bookmakers)),
            "--at",
            self.at.isoformat(),
            "--markets",
            str(MARKETS),
            "--steps",
            str(steps),
            *extra,
        ]


def to_model(batch: list[dict[str, Any]]) -> list[Snapshot]:
    return [
        Snapshot(
            s["event_id"],
            s["bookmaker_id"],
            s["captured_at"],
            {
                (m["betpawa_market_id"], m["line"]): (
                    m["betpawa_market_name"],
                    tuple(sorted((o["name"], o["odds"], o["is_active"]) for o in m["outcomes"])),  # by name
                )
                for m in s["markets"]
            },
        )
        for s in batch
    ]


@pytest.fixture
async def setup(store: OddsStore) -> Any:
    sport = await store.upsert_sport("Football", "football")
    tournament = await store.upsert_tournament(sport.id, "League")
    kickoff = datetime.now(UTC) + timedelta(days=2)
    events = [(await store.upsert_event(tournament.id, f"e{n}", "H", "A", kickoff)).id for n in range(EVENTS)]
    bookmakers = [(await store.upsert_bookmaker(f"B{n}", f"b{n}")).id for n in range(BOOKMAKERS)]
    now = datetime.now(UTC).replace(microsecond=0)
    base, at = now - timedelta(hours=2), now - timedelta(hours=1)
    earlier = build_batch(events, bookmakers, base, version=0, markets=MARKETS)
    await store.write_snapshots(earlier)
    monitor = await asyncpg.connect(store._dsn)
    try:
        yield Setup(store, monitor, events, bookmakers, base, at, Model(to_model(earlier)))
    finally:
        await monitor.close()


async def assert_holds(setup: Setup, model: Model) -> None:
    """The store holds exactly the model: counts, and answers for a sample of events."""
    store = setup.store
    assert await store.pool.fetchval("select count(*) from odds_snapshots") == len(model.snapshots)
    latest: dict[tuple[int, int], Snapshot] = {}
    for s in sorted(model.snapshots, key=lambda s: s.at):
        latest[(s.event, s.bookmaker)] = s
    assert await store.pool.fetchval("select count(*) from market_current") == sum(
        len(s.markets) for s in latest.values()
    )
    assert await store.pool.fetchval("select count(*) from latest_snapshots") == len(latest)
    times = sorted({s.at for s in model.snapshots})
    for event in setup.events[:: EVENTS // 4]:
        assert unordered(store_rows(await store.latest_odds(event))) == unordered(
            rows(model.latest_at_or_before(event, END))
        )
        for at in times:
            expected = rows(model.latest_at_or_before(event, at))
            assert unordered(store_rows(await store.odds_at(event, at))) == unordered(expected)
        expected = sorted(rows(model.kept(event), "5000"), key=line_order)
        assert store_rows(await store.odds_history(event, "5000")) == expected


async def assert_next_write_succeeds(setup: Setup, steps: int = 1) -> None:
    """Writing the interrupted batch again succeeds and is read back exactly."""
    batch = setup.batch(steps)
    result = await asyncio.wait_for(setup.store.write_snapshots(batch), 60)
    assert result.snapshots == len(batch)
    await assert_holds(setup, Model(setup.model.snapshots + to_model(batch)))


async def wait_for_backend(
    monitor: asyncpg.Connection,
    application_name: str,
    moment: Callable[[asyncpg.Record], bool],
    timeout: float = 60.0,
) -> asyncpg.Record:
    """Poll pg_stat_activity until the backend of ``application_name`` is at ``moment``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for row in await monitor.fetch(
            "select pid, state, wait_event_type, wait_event, query, query_start from pg_stat_activity "
            "where application_name = $1 and datname = current_database()",
            application_name,
        ):
            if moment(row):
                return row
        await asyncio.sleep(0.002)
    raise AssertionError(f"the writer {application_name!r} never reached the moment looked for")


def copying(row: asyncpg.Record) -> bool:
    return row["state"] == "active" and row["query"].startswith(COPY_MARKETS)


def merging(row: asyncpg.Record) -> bool:
    return row["state"] == "active" and MERGE in row["query"]


async def gone(monitor: asyncpg.Connection, pid: int, timeout: float) -> float | None:
    """Seconds until backend ``pid`` exits, or None if it is still there after ``timeout``."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if not await monitor.fetchval("select count(*) from pg_stat_activity where pid = $1", pid):
            return time.monotonic() - began
        await asyncio.sleep(0.01)
    return None


def causes(error: BaseException | None) -> list[BaseException]:
    """The error and what it was raised from or during, outermost first."""
    found = []
    while error is not None:
        found.append(error)
        error = error.__cause__ or error.__context__
    return found


async def start_writer(argv: list[str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=Path(__file__).parent
    )


async def kill(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGKILL)
    await process.wait()
    assert process.returncode == -signal.SIGKILL


# --- SIGKILL of the writing process --------------------------------------------------------------


async def test_writer_killed_during_copy(setup: Setup, dsn: str) -> None:
    writer = await start_writer(setup.argv(dsn))
    backend = await wait_for_backend(setup.monitor, APPLICATION_NAME, copying)
    await kill(writer)
    # The backend waits for COPY data from its client: it reads the end of the connection at
    # once, rolls back and exits.
    exited = await gone(setup.monitor, backend["pid"], timeout=30)
    assert exited is not None
    print(f"\nkilled during COPY: backend exited {exited:.3f} s after the kill")
    await assert_holds(setup, setup.model)
    await assert_next_write_succeeds(setup)


async def test_writer_killed_during_merge(setup: Setup, dsn: str) -> None:
    """Killed while the merge statement runs. The backend only notices when it sends the result,
    after the merge: it then rolls back, as COMMIT never came. (Seen a moment late, the merge may
    have committed already: then the batch is wholly present, the other acceptable outcome.)"""
    writer = await start_writer(setup.argv(dsn))
    backend = await wait_for_backend(setup.monitor, APPLICATION_NAME, merging)
    await kill(writer)
    exited = await gone(setup.monitor, backend["pid"], timeout=30)
    assert exited is not None
    present = await setup.store.pool.fetchval("select count(*) from odds_snapshots where captured_at = $1", setup.at)
    outcome = "present" if present else "absent"
    print(f"\nkilled during the merge: backend exited {exited:.3f} s after the kill; the batch is {outcome}")
    if present:
        await assert_holds(setup, Model(setup.model.snapshots + to_model(setup.batch())))
    else:
        await assert_holds(setup, setup.model)
        await assert_next_write_succeeds(setup)


async def test_writer_killed_between_the_steps_of_one_batch(setup: Setup, dsn: str) -> None:
    """Two snapshots per pair: merged in two steps in one transaction. Killed during the second
    step's COPY, after the first step's merge ran: the first step is not kept either."""
    writer = await start_writer(setup.argv(dsn, steps=2))
    copies: set[datetime] = set()

    def second_copy(row: asyncpg.Record) -> bool:
        if copying(row):
            copies.add(row["query_start"])
        return len(copies) == 2

    backend = await wait_for_backend(setup.monitor, APPLICATION_NAME, second_copy)
    await kill(writer)
    assert await gone(setup.monitor, backend["pid"], timeout=30) is not None
    await assert_holds(setup, setup.model)
    await assert_next_write_succeeds(setup, steps=2)


async def test_writer_killed_while_its_merge_is_blocked_half_done(setup: Setup, dsn: str) -> None:
    """The test holds a lock that stops the merge at its last statement (latest_snapshots), after
    it logged changes and updated market_current, and kills the writer there. The orphaned
    backend cannot notice its client is gone while it waits for a lock: it keeps the merge lock,
    and other writers queue behind it, until the lock is free and its statement ends."""
    async with setup.store.pool.acquire() as blocker:
        blocking = blocker.transaction()
        await blocking.start()
        await blocker.execute("lock table latest_snapshots in share mode")  # stops inserts, not reads
        writer = await start_writer(setup.argv(dsn))
        backend = await wait_for_backend(
            setup.monitor, APPLICATION_NAME, lambda row: merging(row) and row["wait_event_type"] == "Lock"
        )
        await kill(writer)
        # The orphan lives on, holding the merge lock: a write now waits for it.
        assert await gone(setup.monitor, backend["pid"], timeout=1.0) is None
        held = await setup.monitor.fetchval(
            "select count(*) from pg_locks where pid = $1 and locktype = 'advisory' and granted", backend["pid"]
        )
        assert held == 1
        blocked = asyncio.create_task(setup.store.write_snapshots(setup.batch(events=1, markets=3)))
        await asyncio.sleep(0.5)
        assert not blocked.done()
        await blocking.rollback()
    # Released: the orphan's statement finishes, it fails to send the result, rolls back, exits;
    # then the queued write runs.
    assert await gone(setup.monitor, backend["pid"], timeout=30) is not None
    await asyncio.wait_for(blocked, 30)
    small = setup.batch(events=1, markets=3)
    await assert_holds(setup, Model(setup.model.snapshots + to_model(small)))


async def test_an_orphan_blocked_on_a_lock_exits_with_client_connection_check_interval(setup: Setup, dsn: str) -> None:
    """With client_connection_check_interval (PostgreSQL 14+) a backend checks its socket while
    it waits, so an orphan blocked on a lock exits on its own and releases the merge lock."""
    async with setup.store.pool.acquire() as blocker:
        async with blocker.transaction():
            await blocker.execute("lock table latest_snapshots in share mode")
            writer = await start_writer(setup.argv(dsn, "--server-setting", "client_connection_check_interval=100"))
            backend = await wait_for_backend(
                setup.monitor, APPLICATION_NAME, lambda row: merging(row) and row["wait_event_type"] == "Lock"
            )
            await kill(writer)
            exited = await gone(setup.monitor, backend["pid"], timeout=10)
            print(f"\norphan blocked on a lock exited {exited} s after the kill")
            assert exited is not None
    await assert_holds(setup, setup.model)
    await assert_next_write_succeeds(setup)


# --- a dropped connection and a statement timeout ------------------------------------------------


async def test_connection_dropped_mid_merge(setup: Setup, dsn: str) -> None:
    """The backend is terminated (pg_terminate_backend) while its merge is half done: stopped by a
    lock the test holds at its last statement, after it logged changes and updated market_current."""
    name = "oddsstore_dropped"
    async with OddsStore.connect(dsn, min_size=1, max_size=1, server_settings={"application_name": name}) as own:
        async with setup.store.pool.acquire() as blocker, blocker.transaction():
            await blocker.execute("lock table latest_snapshots in share mode")
            write = asyncio.create_task(own.write_snapshots(setup.batch()))
            backend = await wait_for_backend(
                setup.monitor, name, lambda row: merging(row) and row["wait_event_type"] == "Lock"
            )
            assert await setup.monitor.fetchval("select pg_terminate_backend($1)", backend["pid"])
            with pytest.raises(BaseException) as raised:
                await write
        chain = causes(raised.value)
        print("\ndropped connection raised " + " <- ".join(f"{type(e).__name__}: {e}" for e in chain))
        # asyncpg's Transaction.__aexit__ cannot roll back on a closed connection: it raises
        # InterfaceError, over ConnectionDoesNotExistError, over AdminShutdownError (57P01); the
        # store reports ConnectionLostError with that chain below it.
        assert isinstance(raised.value, ConnectionLostError)
        assert any(isinstance(e, asyncpg.AdminShutdownError) and e.sqlstate == "57P01" for e in chain)
        await assert_holds(setup, setup.model)
        # The pool replaces the dead connection: the same store writes the batch.
        result = await own.write_snapshots(setup.batch())
        assert result.snapshots == EVENTS * BOOKMAKERS
    await assert_holds(setup, Model(setup.model.snapshots + to_model(setup.batch())))


async def test_statement_timeout_during_copy(setup: Setup, dsn: str) -> None:
    settings = {"statement_timeout": "50", "application_name": "oddsstore_timeout"}
    async with OddsStore.connect(dsn, min_size=1, max_size=1, server_settings=settings) as hurried:
        with pytest.raises(QueryTimeoutError) as raised:
            await hurried.write_snapshots(setup.batch())
    cause = raised.value.__cause__
    print(f"\nstatement timeout raised {type(raised.value).__name__} over {type(cause).__name__}: {raised.value}")
    assert isinstance(cause, asyncpg.QueryCanceledError) and cause.sqlstate == "57014"
    await assert_holds(setup, setup.model)
    await assert_next_write_succeeds(setup)


async def test_statement_timeout_while_the_merge_waits(setup: Setup, dsn: str) -> None:
    """A small batch (its COPY is quick) whose merge waits for the merge lock past the timeout."""
    settings = {"statement_timeout": "50", "application_name": "oddsstore_timeout"}
    small = setup.batch(events=3, markets=20)
    async with setup.store.pool.acquire() as holder, holder.transaction():
        await holder.execute(f"select pg_advisory_xact_lock({MERGE})")
        async with OddsStore.connect(dsn, min_size=1, max_size=1, server_settings=settings) as hurried:
            with pytest.raises(QueryTimeoutError) as raised:
                await hurried.write_snapshots(small)
    assert isinstance(raised.value.__cause__, asyncpg.QueryCanceledError)
    assert raised.value.__cause__.sqlstate == "57014"
    await assert_holds(setup, setup.model)
    result = await setup.store.write_snapshots(small)
    assert result.snapshots == len(small)
    await assert_holds(setup, Model(setup.model.snapshots + to_model(small)))


async def test_the_writer_left_alone_stores_its_batch(setup: Setup, dsn: str) -> None:
    """The helper, not killed, stores the batch the test expects (so the kills above interrupt
    a write that would have succeeded)."""
    writer = await start_writer(setup.argv(dsn))
    out, err = await asyncio.wait_for(writer.communicate(), 60)
    assert writer.returncode == 0, err.decode()
    assert (
        out.decode().splitlines()[-1]
        == f'{{"snapshots": {EVENTS * BOOKMAKERS}, "markets": {EVENTS * BOOKMAKERS * MARKETS}}}'
    )
    await assert_holds(setup, Model(setup.model.snapshots + to_model(setup.batch())))
