"""The exceptions oddsstore raises.

Every error the store raises on purpose derives from :class:`OddsStoreError`. Errors that start in
PostgreSQL keep the original asyncpg exception (with its SQLSTATE) as ``__cause__``.
"""

from __future__ import annotations


class OddsStoreError(Exception):
    """Root of every error raised by oddsstore."""


class InvalidInputError(OddsStoreError, ValueError):
    """Input that cannot be stored: the message names the offending item.

    Nothing of the call that raised it was written.
    """


class OutsidePartitionWindowError(InvalidInputError):
    """A timestamp lies outside ``[today - retention_days, today + days_ahead]`` (UTC days)."""


class UnknownReferenceError(InvalidInputError):
    """An id (event, bookmaker, scrape run, ...) that the database does not hold."""


class DuplicateSnapshotError(InvalidInputError):
    """A snapshot for the same event, bookmaker and ``captured_at`` is already stored with other
    markets, or is given twice in one batch."""


class PermissionDeniedError(OddsStoreError):
    """The database role lacks a privilege the call needs (SQLSTATE 42501); see docs/operations.md."""


class ConnectionLostError(OddsStoreError):
    """The connection to PostgreSQL broke during the call. A write's transaction was rolled back
    unless the break came while it committed, when its outcome is unknown: write it again (the
    snapshots already stored with the same markets are reported in ``WriteResult.already_stored``,
    not stored twice)."""


class QueryTimeoutError(OddsStoreError):
    """A statement was cancelled: ``statement_timeout``, ``lock_timeout`` or a cancel request.
    Nothing of the call was stored."""


class LockTableFullError(OddsStoreError):
    """The server's shared lock table has no room for a write's locks (SQLSTATE 53200, "out of
    shared memory"): a write takes one lock per event x bookmaker pair of its batch until it
    commits. Nothing of the call was stored. Write fewer pairs per call, or raise the server's
    ``max_locks_per_transaction`` (docs/operations.md, "Writers")."""


class ConnectError(OddsStoreError):
    """A connection to PostgreSQL could not be opened or authenticated: refused, no answer within
    ``connect_timeout``, unknown host or database, bad password, too many connections, ... The
    message names the reason; the driver's exception is ``__cause__``."""


class StoreClosedError(OddsStoreError):
    """The store was used after :meth:`OddsStore.close` (or after its ``async with`` block)."""


class QueryLoadError(OddsStoreError):
    """A named query file is malformed; the message gives ``file:line``."""


class MigrationError(OddsStoreError):
    """Applying or rolling back the schema failed."""


class CitusMissingError(OddsStoreError):
    """``distribute`` was asked of a database without the citus extension (SQLSTATE ``OD001``,
    raised by ``queries/distribute.sql``): nothing was changed. See docs/scaling.md."""
