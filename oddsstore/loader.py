"""Parse named queries out of ``.sql`` files. Text in, immutable :class:`Query` records out; no I/O
beyond reading the files.

A file holds one or more queries, each introduced by a header (aiosql's convention)::

    -- name: latest_odds
    -- record_class: MarketOdds
    -- Each bookmaker's latest markets for one event.
    select ... where event_id = :event_id;

The suffix of the name says what the query returns:

===========  ====================================================  ==========================
suffix       returns                                               ``-- record_class:``
===========  ====================================================  ==========================
(none)       a list of records                                     required
``^``        one record, or ``None`` when no row comes back        required
``$``        the first column of the first row (a scalar)          not allowed
``!``        the number of rows the statement affected             not allowed
===========  ====================================================  ==========================

Parameters are ``:name`` (PostgreSQL casts such as ``:ids::integer[]`` work); a name used twice is
one parameter. The comment lines after the header become the query's docstring.

``-- record:``, this loader's name for ``-- record_class:`` before 0.2, is still read during 0.2
with a :class:`DeprecationWarning` naming ``file:line``; 0.3 will refuse it.
"""

from __future__ import annotations

import enum
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from oddsstore.errors import QueryLoadError


class Operation(enum.Enum):
    """What running a query returns."""

    MANY = ""
    ONE = "^"
    SCALAR = "$"
    AFFECTED = "!"


@dataclass(frozen=True)
class Query:
    """One named query, ready to hand to the driver."""

    name: str
    operation: Operation
    sql: str
    params: tuple[str, ...]
    record: str | None
    doc: str
    file: Path
    line: int


_NAME = re.compile(r"^--\s*name:\s*(?P<name>[A-Za-z_]\w*)(?P<suffix>[\^$!]?)\s*$")
_RECORD = re.compile(r"^--\s*(?P<key>record_class|record):\s*(?P<record>\S*)\s*$")
# Strings, quoted identifiers, dollar quotes, comments and casts are matched (and left alone)
# so that only a ``:name`` in SQL code is taken for a parameter.
_TOKENS = re.compile(
    r"""
      '(?:[^']|'')*'
    | "(?:[^"]|"")*"
    | \$\$.*?\$\$
    | \$(?P<tag>[A-Za-z_]\w*)\$.*?\$(?P=tag)\$
    | --[^\n]*
    | /\*.*?\*/
    | ::
    | (?<![:\w]):(?P<param>[A-Za-z_]\w*)
    """,
    re.S | re.X,
)


def parse_file(path: Path) -> list[Query]:
    """Return the queries in one ``.sql`` file, in file order.

    Raises :class:`QueryLoadError` naming ``file:line`` for a malformed header, a missing or
    misplaced ``-- record_class:`` line, an empty query body or text before the first header.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    starts = [number for number, text in enumerate(lines) if _NAME.match(text)]
    preamble = [text for text in lines[: starts[0] if starts else len(lines)] if text.strip()]
    if any(not text.lstrip().startswith("--") for text in preamble):
        raise QueryLoadError(f"{path}:1: SQL before the first '-- name:' header")
    if not starts:
        raise QueryLoadError(f"{path}:1: no '-- name:' header in the file")
    ends = starts[1:] + [len(lines)]
    return [_parse_query(path, lines[start:end], start + 1) for start, end in zip(starts, ends, strict=True)]


def _parse_query(path: Path, lines: list[str], first_line: int) -> Query:
    header = _NAME.match(lines[0])
    assert header is not None
    name, operation = header["name"], Operation(header["suffix"])
    record: str | None = None
    doc: list[str] = []
    body_start = len(lines)
    for offset, text in enumerate(lines[1:], start=1):
        stripped = text.strip()
        if not stripped.startswith("--"):
            body_start = offset
            break
        if match := _RECORD.match(stripped):
            where = f"{path}:{first_line + offset}"
            if not match["record"]:
                raise QueryLoadError(f"{where}: '-- {match['key']}:' names no model")
            if match["key"] == "record":
                warnings.warn(
                    f"{where}: '-- record:' is deprecated; write '-- record_class:' (aiosql's name)",
                    DeprecationWarning,
                    stacklevel=2,
                )
            record = match["record"]
        elif text.lstrip().lower().startswith(("-- name", "--name")):
            raise QueryLoadError(f"{path}:{first_line + offset}: malformed header {stripped!r}")
        else:
            doc.append(stripped.removeprefix("--").strip())
    body = "\n".join(lines[body_start:]).strip().rstrip(";").strip()
    where = f"{path}:{first_line}: query {name!r}"
    if not body:
        raise QueryLoadError(f"{where} has no SQL")
    if operation in (Operation.MANY, Operation.ONE) and record is None:
        raise QueryLoadError(f"{where} returns rows and needs a '-- record_class: Model' line")
    if operation in (Operation.SCALAR, Operation.AFFECTED) and record is not None:
        raise QueryLoadError(f"{where} returns a {operation.name.lower()} value; drop its '-- record_class:' line")
    sql, params = _number_parameters(body)
    return Query(name, operation, sql, params, record, "\n".join(doc).strip(), path, first_line)


def _number_parameters(body: str) -> tuple[str, tuple[str, ...]]:
    params: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match["param"]
        if name is None:
            return match[0]
        if name not in params:
            params.append(name)
        return f"${params.index(name) + 1}"

    return _TOKENS.sub(replace, body), tuple(params)


def load_directory(directory: Path) -> dict[str, Query]:
    """Parse every ``*.sql`` file of ``directory`` (sorted by name); names must be unique."""
    return _index(query for path in sorted(directory.glob("*.sql")) for query in parse_file(path))


def _index(queries: Iterable[Query]) -> dict[str, Query]:
    by_name: dict[str, Query] = {}
    for query in queries:
        if query.name in by_name:
            first = by_name[query.name]
            raise QueryLoadError(
                f"{query.file}:{query.line}: query {query.name!r} is already defined at {first.file}:{first.line}"
            )
        by_name[query.name] = query
    return by_name
