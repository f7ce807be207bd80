"""Static checks, run with the suite: squawk over every migration, ruff over the code (lint and
format), mypy over the package.

Each check is skipped, with the reason, when its tool is not installed; ``pip install -e '.[test]'``
installs all three (squawk from PyPI's ``squawk-cli``). None of them needs a database server.

squawk findings are fixed or accepted in the migration itself: a ``-- squawk-ignore`` (next
statement) or ``-- squawk-ignore-file`` comment, with a ``--`` comment saying why next to it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from oddsstore.paths import sql_directory

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = sql_directory("schema")
MIGRATION_FILES = sorted(path.name for path in SCHEMA.glob("*.sql"))

# yoyo runs each migration file in one transaction (none says "-- transactional: false", checked
# below), so squawk may assume it; 15 is the oldest PostgreSQL the schema supports.
SQUAWK = ["--assume-in-transaction", "--pg-version=15", "--reporter=gcc"]
IGNORE = re.compile(r"^\s*--\s*squawk-ignore(?:-file)?\s+(.+)$")


def executable(name: str) -> str:
    """The tool next to this interpreter (the virtualenv's bin/), else on PATH; skip if absent."""
    found = shutil.which(name, path=os.path.dirname(sys.executable)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed; pip install -e '.[test]' installs it")
    return found


def module(name: str) -> list[str]:
    """``python -m name`` with this interpreter; skip if the module is absent."""
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{name} is not installed; pip install -e '.[test]' installs it")
    return [sys.executable, "-m", name]


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("migration", MIGRATION_FILES)
def test_squawk_has_no_unanswered_finding(migration: str) -> None:
    result = run([executable("squawk"), *SQUAWK, str(SCHEMA / migration)])
    assert result.returncode == 0, f"squawk on {migration}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("migration", MIGRATION_FILES)
def test_every_squawk_ignore_is_explained(migration: str) -> None:
    """An ignore sits under a ``--`` comment, and the file's comments name each rule it ignores
    outside the ignore lines (the reason is written where the DBA reads the SQL)."""
    lines = (SCHEMA / migration).read_text().splitlines()
    explanation = " ".join(line for line in lines if line.lstrip().startswith("--") and not IGNORE.match(line))
    for number, line in enumerate(lines):
        found = IGNORE.match(line)
        if not found:
            continue
        above = next((lines[i] for i in range(number - 1, -1, -1) if not IGNORE.match(lines[i])), "")
        assert above.lstrip().startswith("--"), f"{migration}:{number + 1}: no comment above {line.strip()!r}"
        for rule in re.split(r"[,\s]+", found.group(1).strip()):
            assert rule in explanation, f"{migration}:{number + 1}: {rule} is ignored but no comment says why"


def test_migrations_run_in_a_transaction() -> None:
    """What --assume-in-transaction takes for granted."""
    for migration in MIGRATION_FILES:
        text = (SCHEMA / migration).read_text()
        assert not re.search(r"^\s*--\s*transactional\s*:\s*false", text, re.MULTILINE | re.IGNORECASE), migration


def test_ruff() -> None:
    result = run([*module("ruff"), "check", "oddsstore", "tests", "bench"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format() -> None:
    result = run([*module("ruff"), "format", "--check", "oddsstore", "tests", "bench"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy() -> None:
    # [tool.mypy] in pyproject.toml: strict, over the oddsstore package.
    result = run(module("mypy"))
    assert result.returncode == 0, result.stdout + result.stderr
