"""oddsstore: a PostgreSQL store for sports-betting odds history.

    async with OddsStore.connect(dsn) as store:
        await store.migrate()
        await store.write_snapshots([...])
        rows = await store.latest_odds(event_id)
"""

from oddsstore.errors import (
    DuplicateSnapshotError,
    InvalidInputError,
    MigrationError,
    OddsStoreError,
    OutsidePartitionWindowError,
    PermissionDeniedError,
    QueryLoadError,
    UnknownReferenceError,
)
from oddsstore.records import (
    Bookmaker,
    ErrorSummary,
    Event,
    EventBookmaker,
    MarketIn,
    MarketOdds,
    OddsSnapshot,
    Outcome,
    PartitionInfo,
    ScrapeError,
    ScrapeErrorIn,
    ScrapeRun,
    ScrapeStatus,
    SnapshotIn,
    Sport,
    StaleOdds,
    Tournament,
    WriteResult,
)
from oddsstore.store import OddsStore

__all__ = [
    "Bookmaker",
    "DuplicateSnapshotError",
    "ErrorSummary",
    "Event",
    "EventBookmaker",
    "InvalidInputError",
    "MarketIn",
    "MarketOdds",
    "MigrationError",
    "OddsSnapshot",
    "OddsStore",
    "OddsStoreError",
    "Outcome",
    "OutsidePartitionWindowError",
    "PartitionInfo",
    "PermissionDeniedError",
    "QueryLoadError",
    "ScrapeError",
    "ScrapeErrorIn",
    "ScrapeRun",
    "ScrapeStatus",
    "SnapshotIn",
    "Sport",
    "StaleOdds",
    "Tournament",
    "UnknownReferenceError",
    "WriteResult",
]
