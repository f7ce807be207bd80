"""Storage: bytes on disk per market observation, oddsstore against the seed schema."""

from __future__ import annotations

from typing import Any

from bench.history import History
from bench.server import relation_bytes


async def measure(history: History) -> dict[str, Any]:
    """What the odds loaded so far take in each history database: every table's heap, maps,
    indexes and TOAST, less what the database took before the first cycle (schema, empty
    partitions, reference data). Call after :meth:`History.settle`."""
    count = history.observations
    result: dict[str, Any] = {"days": history.days_loaded, "observations": count}
    for name, dsn in (("oddsstore", history.store_dsn), ("seed", history.seed_dsn)):
        tables = _grown(history.empty_bytes[name], await relation_bytes(dsn))
        used = sum(tables.values())
        result[name] = {"bytes": used, "bytes_per_observation": used / count, "tables": tables}
    return result


def _grown(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Growth per table from ``before`` to ``after``; tables that did not grow are left out."""
    grown = {name: size - before.get(name, 0) for name, size in after.items()}
    return {name: size for name, size in grown.items() if size}
