"""A jsonb codec for asyncpg in the binary format, so the same codec serves queries and COPY.

asyncpg's COPY (``copy_records_to_table``) always uses the binary protocol and refuses a codec
registered in text format ("no binary format encoder for type jsonb"). jsonb's binary format is a
version byte (1) followed by the JSON text. orjson encodes a market's outcomes about 10x faster
than the standard library, which on a 600,000-market batch is most of the client's work.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

_VERSION = b"\x01"
# Non-string keys (ints, floats, bools) become strings, as json.dumps would make them.
_OPTIONS = orjson.OPT_NON_STR_KEYS


def encode(value: Any) -> bytes:
    """Encode a Python value as jsonb wire bytes."""
    return _VERSION + orjson.dumps(value, option=_OPTIONS)


def decode(data: bytes) -> Any:
    """Decode jsonb wire bytes to Python values."""
    return orjson.loads(data[1:])


def check_encodable(value: Any) -> None:
    """Raise ``TypeError``/``ValueError`` if :func:`encode` would fail or store something else
    than given (NaN and infinity, which JSON cannot hold and orjson would turn into null)."""
    orjson.dumps(value, option=_OPTIONS)
    _reject_non_finite(value)


def _reject_non_finite(value: Any) -> None:
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} is not valid JSON")
    elif isinstance(value, dict):
        for item in value.values():
            _reject_non_finite(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _reject_non_finite(item)


async def register(connection: asyncpg.Connection) -> None:
    """Install the codec on a connection (use as a pool's ``init``)."""
    await connection.set_type_codec("jsonb", encoder=encode, decoder=decode, schema="pg_catalog", format="binary")
