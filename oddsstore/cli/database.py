"""Which database a command uses: ``--dsn``, else ``$ODDSSTORE_DSN``, else ``$DATABASE_URL``;
with none, the embedded PostgreSQL (:mod:`oddsstore.embedded`) for the commands allowed to
default to it, said on stderr. ``migrate`` and ``maintain`` change a database, so they refuse to
guess: without a DSN they need ``--embedded``.

A DSN is a ``postgresql://`` URL or a libpq keyword string (``host=db dbname=odds``); keyword
strings are turned into the URL yoyo and asyncpg take.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import psycopg.conninfo

from oddsstore import embedded
from oddsstore.cli.render import note
from oddsstore.errors import InvalidInputError

DSN_VARIABLES = ("ODDSSTORE_DSN", "DATABASE_URL")


class UsageError(Exception):
    """Arguments that do not say enough to run the command (exit code 2, like argparse's)."""


@contextmanager
def chosen(flag: str | None, *, use_embedded: bool, command: str, changes_database: bool) -> Iterator[str]:
    """Yield the URL of the database to use: the one configured, or the embedded server's
    (started, and stopped after).

    :raises UsageError: a command that changes a database given no DSN and no ``--embedded``.
    """
    configured = [(source, dsn) for source, dsn in (("--dsn", flag), *_variables()) if dsn]
    if configured and not use_embedded:
        source, dsn = configured[0]
        url = to_url(dsn, source)
        note(f"database: {mask_password(url)} (from {source})")
        yield url
        return
    if changes_database and not use_embedded:
        raise UsageError(
            f"{command} changes a database: name it with --dsn (or $ODDSSTORE_DSN, $DATABASE_URL), "
            "or pass --embedded to use the embedded PostgreSQL"
        )
    with embedded.running() as url:
        why = "--embedded" if use_embedded else "no --dsn, $ODDSSTORE_DSN or $DATABASE_URL"
        note(f"database: {url} (embedded PostgreSQL, {why}; data in {embedded.data_directory()})")
        yield url


def _variables() -> Iterator[tuple[str, str | None]]:
    return ((name, os.environ.get(name)) for name in DSN_VARIABLES)


def to_url(dsn: str, source: str) -> str:
    """``dsn`` as a ``postgresql://`` URL: a URL as given, a libpq keyword string converted (its
    ``host``, ``port`` and other settings as URL parameters). Never echoes the DSN on error."""
    if "://" not in dsn:
        try:
            settings = psycopg.conninfo.conninfo_to_dict(dsn)
        except psycopg.ProgrammingError:
            raise InvalidInputError(
                f"the DSN from {source} is neither a URL like postgresql://user:password@host:port/db "
                "nor libpq keywords like 'host=db dbname=odds'"
            ) from None
        user = quote(str(settings.pop("user", "")), safe="")
        password = settings.pop("password", None)
        user_info = f"{user}:{quote(str(password), safe='')}@" if password is not None else f"{user}@" if user else ""
        dbname = quote(str(settings.pop("dbname", "")), safe="")
        return f"postgresql://{user_info}/{dbname}" + (f"?{urlencode(settings, safe='/')}" if settings else "")
    parts = urlsplit(dsn)
    try:
        valid = parts.scheme.partition("+")[0] in ("postgres", "postgresql") and (parts.port or 0) >= 0
    except ValueError:  # a port that is not a number
        valid = False
    if not valid:
        raise InvalidInputError(f"the DSN from {source} is not a URL like postgresql://user:password@host:port/db")
    return dsn


def mask_password(dsn: str) -> str:
    """``dsn`` with its password (in the user part or a ``password=`` parameter) shown as ``***``."""
    parts = urlsplit(dsn)
    netloc = parts.netloc
    if parts.password:
        user_info, _, host = netloc.rpartition("@")
        netloc = f"{user_info.partition(':')[0]}:***@{host}"
    query = "&".join(
        "password=***" if item.lower().startswith("password=") else item for item in parts.query.split("&")
    )
    masked = parts._replace(netloc=netloc, query=query)
    return dsn if masked == parts else urlunsplit(masked)
