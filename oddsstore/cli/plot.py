"""``movement --plot``: each bookmaker's prices over time as a PNG (``pip install 'oddsstore[plot]'``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from oddsstore.errors import InvalidInputError
from oddsstore.records import MarketChange


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend, or a clear error without the extra."""
    try:
        import matplotlib
    except ImportError:
        raise InvalidInputError("--plot needs matplotlib: pip install 'oddsstore[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def movement(
    plt: Any,
    path: Path,
    title: str,
    changes: Sequence[MarketChange],
    names: Sequence[str],
    books: dict[int, str],
    ends: dict[int, datetime],
) -> None:
    """One panel per outcome, one step line per bookmaker: each price holds until the next change,
    the last one until the bookmaker's latest snapshot. Gaps: suspended or not listed."""
    figure, axes = plt.subplots(len(names), 1, sharex=True, squeeze=False, figsize=(10, 1.2 + 2.2 * len(names)))
    for axis, name in zip(axes[:, 0], names, strict=True):
        for bookmaker_id in sorted({c.bookmaker_id for c in changes}):
            own = [c for c in changes if c.bookmaker_id == bookmaker_id]
            times = [c.captured_at for c in own]
            prices = [next((o.odds for o in c.outcomes or () if o.name == name and o.is_active), math.nan) for c in own]
            times.append(max(ends.get(bookmaker_id, times[-1]), times[-1]))
            prices.append(prices[-1])
            axis.plot(times, prices, drawstyle="steps-post", marker=".", markevery=slice(0, -1),
                      label=books[bookmaker_id])  # fmt: skip
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
    axes[0, 0].set_title(title)
    axes[0, 0].legend(loc="best", fontsize="small")
    axes[-1, 0].set_xlabel("UTC")
    figure.supylabel("odds by outcome")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
