"""The query loader: header convention, parameters, and load errors that name file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from oddsstore.errors import QueryLoadError
from oddsstore.loader import Operation, load_directory, parse_file
from oddsstore.paths import sql_directory
from oddsstore.runner import Queries


def write(tmp_path: Path, text: str, name: str = "q.sql") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_suffixes_records_docstrings_and_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "-- A file comment.\n\n"
        "-- name: many\n-- record_class: Sport\n-- Every sport.\nselect 1;\n\n"
        "-- name: one^\n-- record_class: Sport\nselect 1\n"
        "-- name: count$\nselect 1;\n"
        "-- name: touch!\n-- Touch things.\n-- Second line.\nupdate t set a = 1;\n",
    )
    queries = parse_file(path)
    assert [(q.name, q.operation, q.record, q.line) for q in queries] == [
        ("many", Operation.MANY, "Sport", 3),
        ("one", Operation.ONE, "Sport", 8),
        ("count", Operation.SCALAR, None, 11),
        ("touch", Operation.AFFECTED, None, 13),
    ]
    assert queries[0].doc == "Every sport."
    assert queries[3].doc == "Touch things.\nSecond line."
    assert queries[1].sql == "select 1"


def test_parameters_become_numbered_and_skip_casts_strings_and_comments(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "-- name: q$\n"
        "select :a, :b::integer[], ':not_a', $$ :nor_b $$, $tag$ :nor_c $$ $tag$, :a, \"col:x\"\n"
        "-- :not_d\n/* :not_e */ from t where x = :c",
    )
    (query,) = parse_file(path)
    assert query.params == ("a", "b", "c")
    assert query.sql == (
        "select $1, $2::integer[], ':not_a', $$ :nor_b $$, $tag$ :nor_c $$ $tag$, $1, \"col:x\"\n"
        "-- :not_d\n/* :not_e */ from t where x = $3"
    )


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("select 1;\n-- name: q$\nselect 2", 1, "before the first"),
        ("-- just a comment\n", 1, "no '-- name:' header"),
        ("-- name: q\nselect 1", 1, "needs a '-- record_class: Model' line"),
        ("-- name: q$\n-- record_class: Sport\nselect 1", 1, "drop its '-- record_class:' line"),
        ("-- name: a$\nselect 1;\n\n-- name: q^\n-- record_class: Sport\n", 4, "has no SQL"),
        ("-- name: q^\n-- record_class:\nselect 1", 2, "'-- record_class:' names no model"),
        ("-- name: q$\n-- name: bad name\nselect 1", 2, "malformed header"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(QueryLoadError, match=words) as caught:
        parse_file(path)
    assert f"{path}:{line}:" in str(caught.value)


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    write(tmp_path, "-- name: q$\nselect 1", "a.sql")
    second = write(tmp_path, "\n-- name: q$\nselect 2", "b.sql")
    with pytest.raises(QueryLoadError, match=f"{second}:2: query 'q' is already defined at .*a.sql:1"):
        load_directory(tmp_path)


def test_unknown_record_model_is_a_load_error(tmp_path: Path) -> None:
    path = write(tmp_path, "-- name: q\n-- record_class: NoSuchModel\nselect 1")
    with pytest.raises(QueryLoadError, match=f"{path}:1: .*unknown record 'NoSuchModel'"):
        Queries.from_directory(tmp_path)


async def test_wrong_parameters_are_a_type_error(tmp_path: Path) -> None:
    write(tmp_path, "-- name: q$\nselect :a::int + :b::int")
    queries = Queries.from_directory(tmp_path)
    with pytest.raises(TypeError, match=r"takes parameters \(a, b\), got \(a\)"):
        await queries.q(None, a=1)
    with pytest.raises(AttributeError, match="no query named 'nope'"):
        queries.nope  # noqa: B018


def test_the_shipped_queries_load_and_document_themselves() -> None:
    queries = Queries.from_directory(sql_directory("queries"))
    assert len(queries) >= 20
    undocumented = [query.name for query in queries if not query.doc]
    assert undocumented == []


def test_the_old_record_header_is_still_read_with_a_deprecation_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "-- name: q\n-- record: Sport\nselect 1")

    with pytest.warns(DeprecationWarning, match=f"{path}:2: '-- record:' is deprecated; write '-- record_class:'"):
        (query,) = parse_file(path)

    assert query.record == "Sport"


def test_the_projects_queries_use_aiosqls_header(recwarn: pytest.WarningsRecorder) -> None:
    load_directory(sql_directory("queries"))
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]
