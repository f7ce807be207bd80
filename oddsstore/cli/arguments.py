"""The command line's arguments: commands, options, and their checks (exit code 2 on bad ones)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

from oddsstore.cli import analytics, board, demo, maintenance
from oddsstore.cli.maintenance import STATUS_SECTIONS
from oddsstore.cli.render import FORMATS, SHOWN_ROWS
from oddsstore.store import DEFAULT_DAYS_AHEAD, DEFAULT_RETENTION_DAYS

ARBITRAGE_MAX_AGE = 15  # minutes: a scrape every 5-10 minutes confirms the odds in time
CONNECT_TIMEOUT = 10.0  # seconds: a server that answers at all answers well within this


def parse(argv: Sequence[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """Parse ``argv``, checking the options that depend on each other (exits 2 on bad ones)."""
    top = parser()
    args = top.parse_args(argv)
    if getattr(args, "format", None) == "csv" and args.command is maintenance.status and args.section is None:
        top.error(f"status --format csv holds one table: choose it with --section ({', '.join(STATUS_SECTIONS)})")
    if args.dsn and args.embedded:
        top.error("--dsn and --embedded name two databases: pass one of them")
    return top, args


def parser() -> argparse.ArgumentParser:
    """The ``oddsstore`` parser; each command's function is the ``command`` default."""
    # The database options go before or after the command; SUPPRESS keeps a command's parser from
    # resetting one given before it.
    database = argparse.ArgumentParser(add_help=False)
    _database_options(database, default=argparse.SUPPRESS)
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table (for people, bounded), json (one array of records) or csv (a header row, then one row a record)",
    )
    output.add_argument("--all", action="store_true", help=f"tables: every row (default: at most {SHOWN_ROWS})")
    read = [database, output]

    top = argparse.ArgumentParser(
        prog="oddsstore",
        description="PostgreSQL odds-history store: schema, maintenance, health, analytics, demo.",
        epilog="Database: --dsn, else $ODDSSTORE_DSN, else $DATABASE_URL. Without any, the read commands and demo "
        "use an embedded PostgreSQL (pip install 'oddsstore[embedded]') whose data stays in a per-user directory "
        "and which stops when the command ends; migrate and maintain need --embedded for it. "
        "'oddsstore COMMAND --help' shows a command's options.",
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {version('oddsstore')}")
    _database_options(top, default=None)
    commands = top.add_subparsers(title="commands", required=True, metavar="COMMAND")

    migrate = commands.add_parser(
        "migrate", parents=[database], help="apply pending schema migrations (as yoyo apply does)"
    )
    migrate.set_defaults(command=maintenance.migrate, changes_database=True)

    distribute = commands.add_parser(
        "distribute",
        parents=[database],
        help="on a Citus coordinator: distribute the odds tables by event_id (docs/scaling.md)",
    )
    distribute.set_defaults(command=maintenance.distribute, changes_database=True)

    maintain = commands.add_parser(
        "maintain",
        parents=[database],
        help="create partitions ahead, drop expired ones, close abandoned scrape runs",
    )
    maintain.add_argument(
        "--days-ahead",
        type=_natural,
        default=DEFAULT_DAYS_AHEAD,
        metavar="N",
        help=f"create daily partitions up to today + N (default {DEFAULT_DAYS_AHEAD})",
    )
    maintain.add_argument(
        "--retention-days",
        type=_positive,
        default=DEFAULT_RETENTION_DAYS,
        metavar="N",
        help=f"drop days older than today - N (default {DEFAULT_RETENTION_DAYS})",
    )
    maintain.add_argument(
        "--abandon-after",
        type=_positive,
        metavar="MINUTES",
        help="close as failed the scrape runs still running this long after they started (default: an hour, or "
        "three times the longest run of the last 7 days if longer)",
    )
    maintain.set_defaults(command=maintenance.maintain, changes_database=True)

    status = commands.add_parser(
        "status", parents=read, help="partitions, recent scrape runs, stale odds, recurring errors"
    )
    status.add_argument(
        "--max-age", type=_positive, default=30, metavar="MINUTES", help="odds older than this are stale (default 30)"
    )
    status.add_argument(
        "--section", choices=maintenance.STATUS_SECTIONS, help="only this section (needed by --format csv)"
    )
    status.set_defaults(command=maintenance.status)

    demo_ = commands.add_parser(
        "demo", parents=[database], help="migrate, write a synthetic feed, compare one event's odds"
    )
    demo_.add_argument("--events", type=_positive, default=12, metavar="N", help="events per cycle (default 12)")
    demo_.add_argument(
        "--cycles",
        type=_positive,
        default=6,
        metavar="N",
        help=f"scrape cycles, {demo.INTERVAL.seconds // 60} minutes apart, the last one now (default 6)",
    )
    demo_.add_argument(
        "--reset", action="store_true", help="first empty the database (refused unless it holds only demo data)"
    )
    demo_.set_defaults(command=demo.demo)

    compare = commands.add_parser(
        "compare", parents=read, help="one event's latest odds, every bookmaker side by side, best prices marked"
    )
    compare.add_argument("event", type=_positive, metavar="EVENT", help="event id (demo prints them)")
    compare.add_argument(
        "--home", metavar="SLUG", help="bookmaker to compare with the best of the others (adds a gap column)"
    )
    compare.add_argument(
        "--market", action="append", metavar="ID", help="only this market id (betpawa_market_id); repeatable"
    )
    compare.set_defaults(command=analytics.compare)

    margins = commands.add_parser(
        "margins",
        parents=read,
        help=f"bookmaker margins of one market type per tournament (default {analytics.DEFAULT_MARGIN_MARKET}, "
        "1X2 - FT; --market ID for another), or of every market of one event (--event)",
    )
    margins.add_argument("--event", type=_positive, metavar="N", help="margins of every market of event N")
    margins.add_argument("--tournament", type=_positive, metavar="N", help="only tournament N")
    margins.add_argument(
        "--market",
        metavar="ID",
        help=f"only this market id (betpawa_market_id; compare shows them). Per tournament the default is "
        f"{analytics.DEFAULT_MARGIN_MARKET} (1X2 - FT): averaging different market types misleads",
    )
    margins.set_defaults(command=analytics.margins)

    movement = commands.add_parser(
        "movement", parents=read, help="every change of one market of an event, optionally as a chart"
    )
    movement.add_argument("event", type=_positive, metavar="EVENT", help="event id")
    movement.add_argument("market", metavar="MARKET", help="market id (betpawa_market_id, shown by compare)")
    movement.add_argument("--line", type=_number, metavar="L", help="only this line (over/under total, handicap)")
    movement.add_argument(
        "--plot",
        type=Path,
        metavar="PNG",
        help="also draw each bookmaker's price per outcome over time into this PNG (pip install 'oddsstore[plot]')",
    )
    movement.set_defaults(command=analytics.movement)

    board_ = commands.add_parser(
        "board", parents=read, help="upcoming events with a few markets, every bookmaker's prices, best marked"
    )
    board_.add_argument(
        "--market",
        action="append",
        metavar="ID",
        help=f"market id, at its main line; repeatable (default {' '.join(board.DEFAULT_MARKETS)})",
    )
    board_.add_argument("--hours", type=_positive, metavar="N", help="only events kicking off within N hours")
    board_.add_argument("--sport", type=_positive, metavar="N", help="only sport N")
    board_.add_argument("--tournament", type=_positive, metavar="N", help="only tournament N")
    board_.add_argument("--home", metavar="SLUG", help="bookmaker to compare with the best of the others (gap column)")
    board_.add_argument("--limit", type=_positive, default=20, metavar="N", help="events per page (default 20)")
    board_.add_argument(
        "--stale-after",
        type=_positive,
        default=30,
        metavar="MINUTES",
        help="prices not seen for this long are stale: shown with ~, never best (default 30)",
    )
    board_.set_defaults(command=board.board)

    arbitrage = commands.add_parser(
        "arbitrage", parents=read, help="markets whose best prices across bookmakers guarantee a profit"
    )
    arbitrage.add_argument(
        "--max-age",
        type=_positive,
        default=ARBITRAGE_MAX_AGE,
        metavar="MINUTES",
        help=f"use only odds confirmed within this many minutes (default {ARBITRAGE_MAX_AGE})",
    )
    arbitrage.set_defaults(command=analytics.arbitrage)
    top.set_defaults(changes_database=False)
    return top


def _database_options(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "--dsn",
        default=default,
        help="the database: a postgresql:// URL or libpq keywords ('host=db dbname=odds'); default "
        "$ODDSSTORE_DSN, else $DATABASE_URL",
    )
    parser.add_argument(
        "--embedded",
        action="store_true",
        default=default if default is argparse.SUPPRESS else False,
        help="use the embedded PostgreSQL (data in a per-user directory) even for migrate and maintain",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=default if default is argparse.SUPPRESS else CONNECT_TIMEOUT,
        metavar="SECONDS",
        help=f"give up connecting after this long (default {CONNECT_TIMEOUT:g})",
    )


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _seconds(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _positive(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _natural(text: str) -> int:
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value
