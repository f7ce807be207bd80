"""Apply and roll back ``schema/`` with yoyo, exactly as ``yoyo apply --database DSN schema/`` does."""

from __future__ import annotations

from yoyo import get_backend, read_migrations

from oddsstore.errors import MigrationError
from oddsstore.paths import sql_directory


def yoyo_url(dsn: str) -> str:
    """Return ``dsn`` with the scheme yoyo needs to use psycopg 3 (``postgresql+psycopg://``)."""
    scheme, sep, rest = dsn.partition("://")
    if not sep:
        raise MigrationError(f"expected a URL DSN such as postgresql://user@host/db, got {dsn!r}")
    if scheme in ("postgres", "postgresql"):
        return f"postgresql+psycopg://{rest}"
    return dsn


def asyncpg_dsn(dsn: str) -> str:
    """Return ``dsn`` in the form asyncpg accepts (without a ``+driver`` suffix)."""
    scheme, sep, rest = dsn.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


def pending(applied_hashes: list[str]) -> list[str]:
    """The ids of the migrations in ``schema/`` whose hash is not in ``applied_hashes`` (yoyo's
    ``_yoyo_migration.migration_hash``), in order."""
    applied = set(applied_hashes)
    return [
        migration.id for migration in read_migrations(str(sql_directory("schema"))) if migration.hash not in applied
    ]


def apply(dsn: str) -> list[str]:
    """Apply every pending migration under yoyo's lock; return the ids applied, in order."""
    migrations = read_migrations(str(sql_directory("schema")))
    try:
        with get_backend(yoyo_url(dsn)) as backend, backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
    except Exception as exc:
        raise MigrationError(f"applying the schema failed: {exc}") from exc
    return [migration.id for migration in pending]


def rollback(dsn: str, count: int | None = None) -> list[str]:
    """Roll back the last ``count`` applied migrations (all when ``None``); return their ids."""
    migrations = read_migrations(str(sql_directory("schema")))
    try:
        with get_backend(yoyo_url(dsn)) as backend, backend.lock():
            applied = backend.to_rollback(migrations)
            chosen = applied if count is None else applied[:count]
            backend.rollback_migrations(chosen)
    except Exception as exc:
        raise MigrationError(f"rolling back the schema failed: {exc}") from exc
    return [migration.id for migration in chosen]
