"""How results reach stdout: plain text tables for people, JSON or CSV for programs.

``--format json`` prints one JSON array of records (``status``: one object of arrays, by
section); ``--format csv`` one table with a header row. Field names are the records' own
(:mod:`oddsstore.records`); nested values (outcomes, prices, legs) are JSON text in a CSV cell.
Tables are bounded (:data:`SHOWN_ROWS`) unless ``--all``; JSON and CSV always hold every record.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

FORMATS = ("table", "json", "csv")
SHOWN_ROWS = 40  # table rows of a read command before "... and N more rows"


def dump_json(records: Sequence[BaseModel] | Mapping[str, Sequence[BaseModel]]) -> None:
    """Print records as one JSON array, one record per line (a mapping: one object of arrays)."""
    if isinstance(records, Mapping):
        sections = (f"{json.dumps(name)}: {_array(rows)}" for name, rows in records.items())
        print("{" + ",\n".join(sections) + "}")
    else:
        print(_array(records))


def _array(records: Sequence[BaseModel]) -> str:
    return "[" + ",\n".join(record.model_dump_json() for record in records) + "]"


def dump_csv(records: Sequence[BaseModel], model: type[BaseModel]) -> None:
    """Print records as CSV: a header of ``model``'s fields, then one row per record."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(model.model_fields)
    for record in records:
        writer.writerow(_cell(value) for value in record.model_dump(mode="json").values())


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return value


def section(title: str, body: str) -> None:
    print(f"\n{title}\n{body}")


def table(
    header: Sequence[str], rows: Iterable[Sequence[object]], align: str, limit: int | None = None, more: int = 0
) -> str:
    """A plain text table: columns two spaces apart, ``align`` is ``l``/``r`` per column. At most
    ``limit`` rows (all when ``None``); then ``... and N more rows`` (``more`` adds rows the
    caller left out)."""
    body = [[str(c) for c in row] for row in rows]
    if limit is not None and len(body) > limit:
        more += len(body) - limit
        body = body[:limit]
    if not body:
        return "  (none)"
    cells = [list(header), *body]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, align, strict=True)
        ).rstrip()

    lines = [line(cells[0]), line(["-" * w for w in widths]), *map(line, cells[1:])]
    if more > 0:
        lines.append(f"... and {more} more rows (--all shows every row)")
    return "\n".join(lines)


def time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def age(value: timedelta | None) -> str:
    if value is None:
        return "-"
    seconds = int(value.total_seconds())
    if seconds < 60:
        return f"{value.total_seconds():.1f}s"
    minutes, hours, days = seconds // 60 % 60, seconds // 3600 % 24, seconds // 86400
    return f"{days}d {hours}h" if days else f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {seconds % 60:02d}s"


def size(count: int) -> str:
    value, unit = float(count), "B"
    for bigger in ("kB", "MB", "GB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"


def percent(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.1f}%" if signed else f"{value:.1f}%"


def market_label(name: str, line: float | None, handicap_type: str | None) -> str:
    """``Over/Under - FT 2.5``, ``Asian Handicap - FT +0.75``."""
    if line is None:
        return name
    return f"{name} {line:+g}" if handicap_type else f"{name} {line:g}"


def note(text: str) -> None:
    """Progress and the database used go to stderr, so stdout holds only results."""
    print(text, file=sys.stderr, flush=True)
