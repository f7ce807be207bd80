"""The ``oddsstore`` command: ``migrate``, ``distribute`` (Citus), ``maintain``, ``status`` and
``demo``; the analytics ``compare``, ``margins``, ``movement`` (with a chart) and ``arbitrage``.

One job per module: :mod:`~oddsstore.cli.arguments` (the parser), :mod:`~oddsstore.cli.database`
(which database), :mod:`~oddsstore.cli.render` (tables, JSON, CSV), and the commands in
:mod:`~oddsstore.cli.maintenance`, :mod:`~oddsstore.cli.analytics` (with
:mod:`~oddsstore.cli.plot`) and :mod:`~oddsstore.cli.demo`.

Results go to stdout; the database used, progress and errors go to stderr. Exit codes: 0 success,
1 an error the store or the database reported (one line with its cause, no traceback), 2 bad
arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

import asyncpg

from oddsstore.cli import arguments, database
from oddsstore.cli.database import DSN_VARIABLES, mask_password
from oddsstore.cli.render import note
from oddsstore.errors import OddsStoreError
from oddsstore.store import OddsStore

__all__ = ["DSN_VARIABLES", "main", "mask_password"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser, args = arguments.parse(argv)
    try:
        with database.chosen(
            args.dsn,
            use_embedded=args.embedded,
            command=args.command.__name__,
            changes_database=args.changes_database,
        ) as dsn:
            asyncio.run(_run(dsn, args))
    except database.UsageError as exc:
        parser.print_usage(sys.stderr)
        return _fail(str(exc), code=2)
    except OddsStoreError as exc:
        return _fail(_reason(exc))
    except (asyncpg.UndefinedTableError, asyncpg.UndefinedFunctionError) as exc:
        return _fail(f"{exc}; is the schema applied? Run: oddsstore migrate")
    except (asyncpg.PostgresError, asyncpg.ClientConfigurationError) as exc:
        return _fail(f"database: {_reason(exc)}")
    except TimeoutError as exc:
        return _fail(f"cannot connect to the database: no answer within {args.timeout:g} s ({_reason(exc)})")
    except OSError as exc:
        return _fail(f"cannot connect to the database: {_reason(exc)}")
    except KeyboardInterrupt:
        return _fail("interrupted", code=130)
    return 0


async def _run(dsn: str, args: argparse.Namespace) -> None:
    async with OddsStore.connect(dsn, connect_timeout=args.timeout, min_size=1, max_size=2) as store:
        await args.command(store, args)


def _reason(exc: BaseException) -> str:
    """The message of ``exc`` followed by those of its causes (``because: ...``). An error with no
    text is named by its class (a bare ``TimeoutError``); a cause with no text adds nothing."""
    parts: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(parts) < 4:
        text = str(current).strip() or ("" if parts else type(current).__name__)
        if text and not any(text in part for part in parts):
            parts.append(text)
        current = current.__cause__
    return "; because: ".join(parts)


def _fail(message: str, code: int = 1) -> int:
    """Report ``message`` on one line of stderr; return the exit code."""
    note("oddsstore: error: " + "; ".join(line.strip() for line in message.splitlines() if line.strip()))
    return code
