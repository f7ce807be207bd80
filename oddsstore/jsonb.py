"""A jsonb codec for asyncpg in the binary format, so the same codec serves queries and COPY.

asyncpg's COPY (``copy_records_to_table``) always uses the binary protocol and refuses a codec
registered in text format ("no binary format encoder for type jsonb"). jsonb's binary format is a
version byte (1) followed by the JSON text.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

_VERSION = b"\x01"


def encode(value: Any) -> bytes:
    """Encode a Python value as jsonb wire bytes (NaN and infinity are rejected)."""
    return _VERSION + json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


def decode(data: bytes) -> Any:
    """Decode jsonb wire bytes to Python values."""
    return json.loads(data[1:])


async def register(connection: asyncpg.Connection) -> None:
    """Install the codec on a connection (use as a pool's ``init``)."""
    await connection.set_type_codec("jsonb", encoder=encode, decoder=decode, schema="pg_catalog", format="binary")
