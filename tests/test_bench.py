"""The benchmark's smoke test: the tiny scale runs end to end on the test server and reports
every figure with its target. No timing assertions: a smoke test on a shared machine proves
nothing about speed (``python -m bench`` does the measuring)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Server

from bench import merge_ab, report
from bench.__main__ import main, measure
from bench.scales import SCALES

TARGET_KEYS = {
    "ingest_vs_seed_orm",
    "ingest_vs_copy_floor",
    "ingest_cold_vs_seed_orm",
    "read_growth_p50",
    "read_growth_p95",
    "read_vs_seed",
    "compare_event_growth",
    "arbitrage_growth",
    "retention_vs_delete",
    "retention_writer",
    "storage",
}


async def test_tiny_scale_reports_every_figure(
    pg_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = await measure(pg_server.dsn("postgres"), SCALES["tiny"])
    json_path, png_path = report.write(results, tmp_path)

    saved = json.loads(json_path.read_text())
    assert {"scale", "config", "server", "machine", "ingest", "storage", "reads", "retention", "targets"} <= set(saved)
    assert set(saved["ingest"]["paths"]) == {"oddsstore", "oddsstore_cold", "seed_orm", "copy_floor"}
    assert all(path["per_second"] > 0 for path in saved["ingest"]["paths"].values())
    assert {row["key"] for row in saved["targets"]} == TARGET_KEYS
    for row in saved["targets"]:
        assert row["met"] in (True, False, None)
        assert row["ratio"] is None or row["ratio"] > 0
    for depth in ("shallow", "deep"):
        assert saved["reads"][depth]["same_rows"], "oddsstore and the seed query disagree on the latest odds"
        assert saved["storage"][depth]["oddsstore"]["bytes"] > 0 < saved["storage"][depth]["seed"]["bytes"]
    # the expired day was dropped, or the store's failure to drop it was recorded
    dropped = saved["retention"]["oddsstore"]
    assert dropped["partitions"] or dropped["error"], saved["retention"]
    assert saved["retention"]["seed"]["rows"] > 0
    assert png_path.stat().st_size > 0

    assert main(["--scale", "tiny", "--markdown", "--results", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("**scale tiny") and "| ingest: oddsstore / seed_orm |" in printed


async def test_the_merge_ab_times_each_step_of_both_variants(pg_server: Server) -> None:
    """``python -m bench.merge_ab`` at a tiny size, against this checkout's own queries/odds.sql
    (HEAD): both variants write both paths and every merge_stage step is timed."""
    result = await merge_ab.measure(
        pg_server.dsn("postgres"), ["HEAD"], events=3, markets=31, cycles=3, rounds=1, warm_up=False
    )
    assert set(result["this_over_baseline"]["HEAD"]) == set(merge_ab.PATHS)
    for variant in ("this", "HEAD"):
        for path in merge_ab.PATHS:
            assert result["median_seconds"][variant][path] > 0
            assert list(result["merge_statement_seconds"][variant][path]) == [f"step {n}" for n in range(1, 12)]
    assert merge_ab.report(result).startswith("this checkout's queries/odds.sql against HEAD's")
