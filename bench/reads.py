"""Reads: ``latest_odds(event)`` latency, oddsstore against the seed-style query, same history;
and the analytics that read the most, ``compare_event`` and ``arbitrage``."""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

from bench.history import History
from bench.seed_orm import latest_odds_seed


async def measure(history: History) -> dict[str, Any]:
    """Time ``latest_odds`` for each live event, ``scale.read_repeats`` rounds, alternating
    oddsstore's call and the seed-style query; one untimed round first. Call after
    :meth:`History.settle`.

    Both sides are timed as an application sees them: a pooled connection checked out, the
    query, its rows turned into records (Pydantic models, SQLAlchemy rows).
    """
    store, engine = history.store, history.seed_engine
    events = history.live_events()
    times: dict[str, list[float]] = {"oddsstore": [], "seed": []}
    rows: dict[str, list[int]] = {"oddsstore": [], "seed": []}
    for round_number in range(history.scale.read_repeats + 1):
        for event_id in events:
            began = time.perf_counter()
            found = await store.latest_odds(event_id)
            middle = time.perf_counter()
            async with engine.connect() as connection:
                seed_found = await latest_odds_seed(connection, event_id)
            ended = time.perf_counter()
            if round_number:
                times["oddsstore"].append(middle - began)
                times["seed"].append(ended - middle)
                rows["oddsstore"].append(len(found))
                rows["seed"].append(len(seed_found))
    return {
        "days": history.days_loaded,
        "events": len(events),
        "same_rows": rows["oddsstore"] == rows["seed"],
        **{name: _summary(times[name], rows[name]) for name in times},
        "analytics": await _analytics(history, events),
    }


async def _analytics(history: History, events: list[int]) -> dict[str, Any]:
    """p50 of ``compare_event`` (per live event, BetPawa as home) and of ``arbitrage`` over every
    fresh market: ``max_age`` reaches back to the history's last cycle, so every pair counts."""
    store = history.store
    home = min((await store.bookmakers()), key=lambda b: b.id).id
    max_age = await store.pool.fetchval("select now() - max(captured_at) + interval '1 minute' from latest_snapshots")
    times: dict[str, list[float]] = {"compare_event": [], "arbitrage": []}
    rows: dict[str, list[int]] = {"compare_event": [], "arbitrage": []}
    for round_number in range(max(2, history.scale.read_repeats // 8) + 1):
        for event_id in events:
            began = time.perf_counter()
            found = await store.compare_event(event_id, home)
            if round_number:
                times["compare_event"].append(time.perf_counter() - began)
                rows["compare_event"].append(len(found))
        began = time.perf_counter()
        arbitrages = await store.arbitrage(max_age)
        if round_number:
            times["arbitrage"].append(time.perf_counter() - began)
            rows["arbitrage"].append(len(arbitrages))
    return {name: _summary(times[name], rows[name]) for name in times}


def _summary(seconds: list[float], rows: list[int]) -> dict[str, Any]:
    return {
        "calls": len(seconds),
        "p50_ms": statistics.median(seconds) * 1000,
        "p95_ms": _percentile(seconds, 0.95) * 1000,
        "rows_per_call": statistics.mean(rows),
    }


def _percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (no interpolation)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]
