"""Rows encoded in PostgreSQL's binary COPY format, ahead of time, for the ``copy_floor`` path.

The columns and their types are read from the catalog, so the encoding follows the schema: a
row is a mapping from column name to value, and every column of the table the mapping has a key
for is copied (the others keep their defaults).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"  # signature, flags, extension
_TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_INT4 = struct.Struct(">ii").pack
_INT8 = struct.Struct(">iq").pack
_FLOAT8 = struct.Struct(">id").pack
_LENGTH = struct.Struct(">i").pack


def _varlena(data: bytes) -> bytes:
    return _LENGTH(len(data)) + data


_ENCODERS: dict[str, Callable[[Any], bytes]] = {
    "integer": lambda v: _INT4(4, v),
    "bigint": lambda v: _INT8(8, v),
    "double precision": lambda v: _FLOAT8(8, v),
    "text": lambda v: _varlena(v.encode()),
    "timestamp with time zone": lambda v: _INT8(8, (v - _EPOCH) // _MICROSECOND),
    "jsonb": lambda v: _varlena(b"\x01" + orjson.dumps(v)),  # jsonb's binary format: version 1, then the text
}


async def table_columns(connection: asyncpg.Connection, table: str) -> list[tuple[str, str]]:
    """``(name, type)`` of each column of ``table``, in order."""
    rows = await connection.fetch(
        """
        select attname::text, format_type(atttypid, atttypmod)
        from pg_attribute
        where attrelid = $1::regclass and attnum > 0 and not attisdropped
        order by attnum
        """,
        table,
    )
    return [(row[0], row[1]) for row in rows]


class BinaryCopy:
    """Encodes rows for ``COPY table (columns) FROM STDIN (FORMAT binary)``."""

    def __init__(self, table: str, table_columns: Sequence[tuple[str, str]], fields: Iterable[str]) -> None:
        wanted = set(fields)
        chosen = [(name, kind) for name, kind in table_columns if name in wanted]
        unsupported = [f"{name} {kind}" for name, kind in chosen if kind not in _ENCODERS]
        if unsupported:
            raise ValueError(f"{table}: no binary encoder for column(s) {', '.join(unsupported)}")
        self.table = table
        self.columns = [name for name, _ in chosen]
        self._encoders = [(name, _ENCODERS[kind]) for name, kind in chosen]
        self._count = struct.pack(">h", len(chosen))

    def encode(self, rows: Iterable[Mapping[str, Any]]) -> bytes:
        """The whole COPY stream (header, rows, trailer) for ``rows``."""
        parts = [_HEADER]
        for row in rows:
            parts.append(self._count)
            for name, encode in self._encoders:
                value = row[name]
                parts.append(_NULL if value is None else encode(value))
        parts.append(_TRAILER)
        return b"".join(parts)
