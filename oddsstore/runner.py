"""Turn parsed :class:`~oddsstore.loader.Query` records into async callables on asyncpg.

This is the only module of the query layer that talks to the driver::

    queries = Queries.from_directory(sql_directory("queries"))
    rows = await queries.latest_odds(conn, event_id=7)   # -> list[MarketOdds]
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeAlias

import asyncpg
from pydantic import BaseModel, TypeAdapter

from oddsstore import records
from oddsstore.errors import QueryLoadError
from oddsstore.loader import Operation, Query, load_directory

Executor: TypeAlias = asyncpg.Connection | asyncpg.Pool
QueryCallable: TypeAlias = Callable[..., Awaitable[Any]]

RECORD_MODELS: dict[str, type[BaseModel]] = {
    name: value
    for name, value in vars(records).items()
    if isinstance(value, type) and issubclass(value, BaseModel) and not name.startswith("_")
}


class Queries:
    """The named queries of a directory, each an attribute: ``await queries.NAME(conn, **params)``.

    The first argument is an asyncpg connection or pool; parameters are passed by name.
    """

    def __init__(self, queries: Mapping[str, Query], models: Mapping[str, type[BaseModel]] = RECORD_MODELS):
        self._queries = dict(queries)
        self._callables = {name: _bind(query, models) for name, query in queries.items()}

    @classmethod
    def from_directory(cls, directory: Path) -> Queries:
        """Load every ``*.sql`` file of ``directory``."""
        return cls(load_directory(directory))

    def __getattr__(self, name: str) -> QueryCallable:
        try:
            return self._callables[name]
        except KeyError:
            raise AttributeError(f"no query named {name!r}; known: {', '.join(sorted(self._callables))}") from None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._queries.values())

    def __len__(self) -> int:
        return len(self._queries)


def _bind(query: Query, models: Mapping[str, type[BaseModel]]) -> QueryCallable:
    model: type[BaseModel] | None = None
    many: TypeAdapter[list[Any]] | None = None
    if query.record is not None:
        model = models.get(query.record)
        if model is None:
            raise QueryLoadError(
                f"{query.file}:{query.line}: query {query.name!r} names unknown record {query.record!r}"
            )
        # One call into pydantic-core for all rows: a third faster than a model per row.
        many = TypeAdapter(list[model])  # type: ignore[valid-type]
    expected = set(query.params)

    async def run(executor: Executor, /, **params: Any) -> Any:
        if params.keys() != expected:
            raise TypeError(
                f"query {query.name!r} takes parameters ({', '.join(query.params)}), got ({', '.join(params)})"
            )
        args = [params[name] for name in query.params]
        if query.operation is Operation.MANY:
            assert many is not None
            return many.validate_python([dict(row) for row in await executor.fetch(query.sql, *args)])
        if query.operation is Operation.ONE:
            assert model is not None
            row = await executor.fetchrow(query.sql, *args)
            return None if row is None else model.model_validate(dict(row))
        if query.operation is Operation.SCALAR:
            return await executor.fetchval(query.sql, *args)
        status = await executor.execute(query.sql, *args)
        return int(status.rsplit(" ", 1)[-1]) if status[-1:].isdigit() else 0

    run.__name__ = query.name
    run.__qualname__ = f"Queries.{query.name}"
    run.__doc__ = query.doc
    return run
