"""How big each benchmark run is: one :class:`Scale` per ``--scale`` name."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Scale:
    """Sizes of one run.

    Ingest writes ``ingest_cycles`` cycles of ``ingest_events`` events (the first one untimed, to
    warm every path up). History loads ``history_days`` UTC days of ``history_events`` events at
    ``history_interval`` into oddsstore and the seed schema; storage is measured after its first
    day, reads after its first and last day, and retention drops its oldest day.
    """

    name: str
    ingest_events: int
    ingest_cycles: int
    history_events: int
    history_interval: timedelta
    read_repeats: int
    bookmakers: int = 3
    markets_per_snapshot: int = 170
    history_days: int = 7
    seed: int = 2024

    @property
    def cycles_per_day(self) -> int:
        return int(timedelta(days=1) / self.history_interval)


TEN_MINUTES = timedelta(minutes=10)

SCALES: dict[str, Scale] = {
    scale.name: scale
    for scale in (
        # The smoke test's scale: seconds, not a measurement (6 cycles a day, not 144).
        Scale(
            "tiny",
            ingest_events=3,
            ingest_cycles=2,
            history_events=2,
            history_interval=timedelta(hours=4),
            read_repeats=3,
        ),
        Scale(
            "small", ingest_events=100, ingest_cycles=4, history_events=3, history_interval=TEN_MINUTES, read_repeats=40
        ),
        # small, with 30 days of history: the change-only storage's read target (latest_odds at 30
        # days against 1 day), the whole retention period.
        Scale(
            "month",
            ingest_events=100,
            ingest_cycles=4,
            history_events=3,
            history_interval=TEN_MINUTES,
            read_repeats=40,
            history_days=30,
        ),
        Scale(
            "medium",
            ingest_events=300,
            ingest_cycles=4,
            history_events=5,
            history_interval=TEN_MINUTES,
            read_repeats=40,
        ),
        # The production shape: 1,300 events x 3 bookmakers x ~170 markets per cycle.
        Scale(
            "pawa",
            ingest_events=1300,
            ingest_cycles=3,
            history_events=10,
            history_interval=TEN_MINUTES,
            read_repeats=40,
        ),
    )
}
