"""A Citus cluster the tests start for themselves: a coordinator and two workers, Debian's
PostgreSQL 15 with the citus extension (``../shared/citus/install.sh`` builds it), on loopback
ports, each a cluster of :mod:`tests.infra`.

:class:`CitusServer` is an ``oddsstore_server`` like the others: the plugin's template database
and its per-test clones are made on every node at once. A database is distributed when its
coordinator's copy names its workers (``citus_add_node``) and holds the shard tables there, so a
clone of the template on each node under one name (``CREATE DATABASE ... TEMPLATE``) is a
distributed database again: same shards, same metadata, tens of milliseconds a node instead of
migrating and distributing per test.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import infra
import psycopg
from psycopg import sql

from oddsstore.testing import Server

CITUS_SO = infra.PG15_BIN.parent / "lib" / "citus.so"

# Every node: Citus loaded. Connections: each session may open several to every worker (Citus'
# adaptive executor), and the tests run writers at once. The tests' coordinator: 4 shards per
# distributed table instead of 32, so that a partition created for a day is 4 shard tables, not
# 32 (the tests create days on most writes); a router query is one shard either way.
NODE_SETTINGS = {
    "shared_preload_libraries": "citus",
    "fsync": "off",
    "max_connections": "300",
    "listen_addresses": "127.0.0.1",  # the nodes talk over TCP (tests.infra listens on its socket only)
}
COORDINATOR_SETTINGS = {**NODE_SETTINGS, "citus.shard_count": "4"}


def missing_citus() -> str | None:
    """Why the Citus tests cannot run here, or ``None``."""
    if (missing := infra.missing_pg15()) is not None:
        return missing
    if not CITUS_SO.exists():
        return (
            f"Citus is not installed into PostgreSQL 15 ({CITUS_SO} is missing): run "
            "`bash ../shared/citus/install.sh` from the repository root (or .ci/run, which does)"
        )
    return None


@dataclass(frozen=True)
class CitusServer(Server):
    """The coordinator, as the plugin's :class:`Server`; databases are created and dropped on the
    workers too, with the citus extension and the workers registered in every new empty one."""

    workers: tuple[infra.Cluster, ...] = field(default=())

    def create_database(self, name: str, template: str | None = None) -> None:
        nodes = [self._node(self.port), *(self._node(worker.port) for worker in self.workers)]
        for node in nodes:
            if template is None:
                Server.create_database(node, name)
            else:
                _copy(node, name, template)
        if template is None:
            for node in nodes:
                with psycopg.connect(node.dsn(name), autocommit=True) as connection:
                    connection.execute("create extension citus")
            with psycopg.connect(self.dsn(name), autocommit=True) as connection:
                connection.execute("select citus_set_coordinator_host('127.0.0.1', %s)", (self.port,))
                for worker in self.workers:
                    connection.execute("select citus_add_node('127.0.0.1', %s)", (worker.port,))

    def drop_database(self, name: str) -> None:
        for node in [self._node(self.port), *(self._node(worker.port) for worker in self.workers)]:
            _retry(node, name, lambda node=node: Server.drop_database(node, name))

    def _node(self, port: int) -> Server:
        return Server(self.name, "127.0.0.1", port, self.user)


def _copy(node: Server, name: str, template: str) -> None:
    """Create ``name`` as a copy of ``template`` on ``node``."""
    _retry(node, template, lambda: Server.create_database(node, name, template))


def _retry(node: Server, database: str, action: Callable[[], None]) -> None:
    """Run ``action``, which needs nobody connected to ``database`` on ``node`` (copying a template,
    dropping a database). Citus keeps a maintenance daemon and cached connections between nodes
    in each database, and ``DROP DATABASE ... WITH (FORCE)`` may find the daemon still there:
    they are ended first, and the action tried again until they are gone (a moment)."""
    deadline = time.monotonic() + 10
    while True:
        node._admin(
            sql.SQL(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = {} and pid <> pg_backend_pid()"
            ).format(sql.Literal(database))
        )
        try:
            action()
            return
        except psycopg.errors.ObjectInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def cluster(directory: Path, shard_count: int = 4) -> Iterator[CitusServer]:
    """A coordinator and two workers in ``directory``, each listening on a free loopback port;
    stopped after. ``shard_count``: shards per distributed table (Citus' default is 32)."""
    settings = {**COORDINATOR_SETTINGS, "citus.shard_count": str(shard_count)}
    with ExitStack() as stack:
        coordinator = stack.enter_context(infra.cluster(directory / "coordinator", settings))
        workers = tuple(stack.enter_context(infra.cluster(directory / f"worker{n}", NODE_SETTINGS)) for n in (1, 2))
        yield CitusServer("citus", "127.0.0.1", coordinator.port, "postgres", workers=workers)
