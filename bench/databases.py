"""The databases a run measures: oddsstore's (migrated, reference data registered from the feed)
and the seed plan's (its schema and partitions, the same reference ids)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

from bench import seed_orm
from bench.server import create_database
from oddsstore import OddsStore
from oddsstore.synthetic.feed import Feed, FeedIds, FeedSnapshot, register


async def open_store(
    admin_dsn: str, name: str, feed: Feed, snapshots: Sequence[FeedSnapshot], *, remember_writes: bool = True
) -> tuple[OddsStore, FeedIds]:
    """Create database ``name``, migrate it and register what ``snapshots`` refer to.

    Returns the open store and the ids :func:`oddsstore.synthetic.feed.to_write` needs.
    """
    dsn = await create_database(admin_dsn, name)
    store = await OddsStore.connect(dsn, min_size=1, max_size=4, remember_writes=remember_writes)
    try:
        await store.migrate()
        ids = await register(store, feed, snapshots)
    except BaseException:
        await store.close()
        raise
    return store, ids


async def open_seed(admin_dsn: str, name: str, days: Iterable[date], ids: FeedIds) -> str:
    """Create database ``name`` with the seed's schema, a partition per day in ``days``, and the
    events and bookmakers of ``ids`` under the same ids; return its DSN."""
    dsn = await create_database(admin_dsn, name)
    await seed_orm.create_seed_schema(dsn, days)
    await seed_orm.insert_reference(dsn, sorted(ids.events.values()), sorted(ids.bookmakers.values()))
    return dsn


def observations(snapshots: Iterable[FeedSnapshot]) -> int:
    """Market observations in ``snapshots``: one per market of each snapshot."""
    return sum(len(snapshot.markets) for snapshot in snapshots)
