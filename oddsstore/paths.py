"""Where the SQL lives: inside the installed package, or at the top of a source checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def sql_directory(kind: str) -> Path:
    """Return the directory of ``schema`` or ``queries`` SQL files.

    An installed wheel carries them as ``oddsstore/schema`` and ``oddsstore/queries``; an editable
    install or a checkout reads the top-level ``schema/`` and ``queries/`` that DBAs review.
    """
    for candidate in (_PACKAGE / kind, _PACKAGE.parent / kind):
        if candidate.is_dir() and any(candidate.glob("*.sql")):
            return candidate
    raise FileNotFoundError(f"no {kind}/ directory with .sql files next to {_PACKAGE}")
