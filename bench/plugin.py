"""``python -m bench.plugin [--tests N] [--dsn DSN]``: what the pytest plugin's fresh database
costs per test (``oddsstore_dsn``: a template clone, dropped after; ``oddsstore_store``: the same
plus an open and closed OddsStore).

Runs pytest on generated test files, each session on the same server: ``N`` tests using the fixture,
and ``N`` tests using none, each also with a single test so the session's fixed costs (start-up,
the template's migration) cancel out. Per-test overhead: ``((fixture N - fixture 1) - (bare N -
bare 1)) / (N - 1)``. Writes ``bench/results/plugin.json``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.server import server_version
from oddsstore.testing import Server, memory_directory, start_embedded, workdir

RESULTS = Path(__file__).parent / "results"
BODIES = {
    "bare": "def test_{n}():\n    pass\n",
    "oddsstore_dsn": "def test_{n}(oddsstore_dsn):\n    assert oddsstore_dsn\n",
    "oddsstore_store": "async def test_{n}(oddsstore_store):\n    assert oddsstore_store\n",
}


def session_seconds(directory: Path, fixture: str, tests: int, admin_dsn: str) -> float:
    """Wall time of one pytest session of ``tests`` tests using ``fixture``."""
    path = directory / f"test_{fixture}_{tests}.py"
    path.write_text("".join(BODIES[fixture].format(n=n) for n in range(tests)))
    began = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "asyncio_mode=auto", str(path)],
        cwd=directory,
        env={**os.environ, "ODDSSTORE_TEST_DSN": admin_dsn},
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - began
    if run.returncode != 0:
        raise RuntimeError(run.stdout + run.stderr)
    return seconds


def measure(admin_dsn: str, tests: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="oddsstore-plugin-") as scratch:
        directory = Path(scratch)
        sessions = {
            fixture: {count: session_seconds(directory, fixture, count, admin_dsn) for count in (1, tests)}
            for fixture in BODIES
        }
    bare = sessions["bare"][tests] - sessions["bare"][1]
    per_test = {
        fixture: ((sessions[fixture][tests] - sessions[fixture][1]) - bare) / (tests - 1) * 1000
        for fixture in BODIES
        if fixture != "bare"
    }
    return {
        "tests": tests,
        "session_seconds": {fixture: {str(n): s for n, s in counts.items()} for fixture, counts in sessions.items()},
        "per_test_overhead_ms": per_test,
    }


@contextlib.contextmanager
def _embedded() -> Iterator[Server]:
    with workdir(prefix="oddsstore-bench-", base=memory_directory()) as path:
        yield from start_embedded(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.plugin", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=101, help="tests per measured session (default 101)")
    parser.add_argument(
        "--dsn", help="a server to use (its user may create databases); default: the plugin's own embedded one"
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.dsn:
            admin_dsn = args.dsn
        else:  # the server the plugin starts when ODDSSTORE_TEST_DSN is not set (fsync off)
            admin_dsn = stack.enter_context(_embedded()).dsn("postgres")
        results = {
            "server": {"version": asyncio.run(server_version(admin_dsn))},
            "machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()},
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **measure(admin_dsn, args.tests),
        }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "plugin.json").write_text(json.dumps(results, indent=2) + "\n")
    for fixture, ms in results["per_test_overhead_ms"].items():
        print(f"{fixture}: {ms:.1f} ms per test over a test with no fixture ({args.tests} tests)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
