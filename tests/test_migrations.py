"""The schema: yoyo migrations apply, roll back and re-apply; the CLI and migrate() agree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg

from oddsstore import OddsStore, migrations
from oddsstore.paths import sql_directory

# Tables, indexes, functions, types, sequences and partitions with their definitions: what a
# deployer would compare between two databases.
CATALOG = """
select c.relkind::text as kind, c.relname as name,
       coalesce(pg_get_indexdef(c.oid), pg_get_expr(c.relpartbound, c.oid), '') as definition
from pg_class as c
where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'i', 'I', 'S')
  and c.relname not like '%yoyo%'
union all
select 'f', p.proname, pg_get_functiondef(p.oid) from pg_proc as p where p.pronamespace = 'public'::regnamespace
union all
select 't', t.typname, '' from pg_type as t where t.typnamespace = 'public'::regnamespace and t.typtype = 'e'
order by 1, 2
"""


async def catalog(dsn: str) -> list[tuple[str, str, str]]:
    connection = await asyncpg.connect(dsn)
    try:
        return [tuple(row) for row in await connection.fetch(CATALOG)]
    finally:
        await connection.close()


def migration_ids() -> list[str]:
    return sorted(path.stem for path in sql_directory("schema").glob("*.sql") if not path.stem.endswith(".rollback"))


async def test_every_migration_has_a_rollback() -> None:
    schema = sql_directory("schema")
    for migration in migration_ids():
        assert (schema / f"{migration}.rollback.sql").is_file(), migration


async def test_apply_rollback_apply(empty_dsn: str) -> None:
    assert migrations.apply(empty_dsn) == migration_ids()
    applied = await catalog(empty_dsn)
    assert {"odds_snapshots", "market_changes", "market_current", "scrape_errors", "latest_snapshots"} <= {
        name for _, name, _ in applied
    }

    assert migrations.rollback(empty_dsn) == list(reversed(migration_ids()))
    assert await catalog(empty_dsn) == []

    assert migrations.apply(empty_dsn) == migration_ids()
    assert await catalog(empty_dsn) == applied
    assert migrations.apply(empty_dsn) == []


async def test_yoyo_command_line_gives_what_migrate_gives(pg_server, empty_dsn: str) -> None:  # type: ignore[no-untyped-def]
    janitor = pg_server.janitor("yoyo_cli_target")
    janitor.drop()
    janitor.init()
    try:
        cli_dsn = pg_server.dsn("yoyo_cli_target")
        yoyo = shutil.which("yoyo", path=os.path.dirname(sys.executable)) or "yoyo"
        subprocess.run(
            [yoyo, "apply", "--batch", "--database", migrations.yoyo_url(cli_dsn), str(sql_directory("schema"))],
            check=True,
            capture_output=True,
        )
        async with OddsStore.connect(empty_dsn) as store:
            assert await store.migrate() == migration_ids()
            # Partitions are the same too: neither creates any; the write path and maintain do.
            assert await store.partitions() == []
        assert await catalog(cli_dsn) == await catalog(empty_dsn)
    finally:
        janitor.drop()


def test_installed_wheel_carries_its_sql(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(root)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("oddsstore-*.whl")
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    for kind in ("schema", "queries"):
        shipped = {Path(n).name for n in names if n.startswith(f"oddsstore/{kind}/") and n.endswith(".sql")}
        assert shipped == {p.name for p in (root / kind).glob("*.sql")}
    assert "oddsstore/py.typed" in names
