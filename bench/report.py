"""Turn a run's measurements into target rows, a text or Markdown table, a chart and a JSON file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Row = dict[str, Any]


def targets(results: dict[str, Any]) -> list[Row]:
    """One row per figure: both raw numbers, their ratio, the target and whether it is met.

    ``met`` is ``None`` for figures reported without a target.
    """
    rate = {name: path["per_second"] for name, path in results["ingest"]["paths"].items()}
    shallow, deep = results["reads"]["shallow"], results["reads"]["deep"]
    ours_1, ours_7, seed_7 = shallow["oddsstore"], deep["oddsstore"], deep["seed"]
    flat = ("<=", 1.2)  # latency must not grow with history
    depth = f"{deep['days']:g} d / {shallow['days']:g} d of history"
    at_1, at_7 = f"oddsstore at {shallow['days']:g} d", f"{deep['days']:g} d"
    size = results["storage"]["shallow"]
    ours_b, seed_b = size["oddsstore"]["bytes_per_observation"], size["seed"]["bytes_per_observation"]
    storage = f"storage after {size['days']:g} d: oddsstore / seed schema"
    ours, orm, floor = rate["oddsstore"], rate["seed_orm"], rate["copy_floor"]
    cold = rate.get("oddsstore_cold")  # results written before remember_writes have none
    return [
        _row("ingest_vs_seed_orm", "ingest: oddsstore / seed_orm", "obs/s", ours, "seed_orm", orm, (">=", 20)),
        _row("ingest_vs_copy_floor", "ingest: oddsstore / copy_floor", "obs/s", ours, "copy_floor", floor, (">=", 0.7)),
        *([_row(
            "ingest_cold_vs_seed_orm", "ingest, remember_writes=False: oddsstore / seed_orm", "obs/s", cold,
            "seed_orm", orm, None,
        )] if cold is not None else []),
        _row("read_growth_p50", f"latest_odds p50: {depth}", "ms", ours_7["p50_ms"], at_1, ours_1["p50_ms"], flat),
        _row("read_growth_p95", f"latest_odds p95: {depth}", "ms", ours_7["p95_ms"], at_1, ours_1["p95_ms"], None),
        _row(
            "read_vs_seed", f"latest_odds p50 at {at_7}: seed-style query / oddsstore", "ms", ours_7["p50_ms"],
            "seed query", seed_7["p50_ms"], (">=", 10), inverse=True,
        ),
        *_analytics_rows(shallow, deep, depth),
        *_retention_rows(results["retention"]),
        _row("storage", storage, "bytes/obs", ours_b, "seed schema", seed_b, None),
    ]  # fmt: skip


def _row(
    key: str, figure: str, unit: str, ours: float | None, baseline_name: str, baseline: float | None,
    target: tuple[str, float] | None, *, inverse: bool = False,
) -> Row:  # fmt: skip
    """A figure and its baseline; the ratio is ours / baseline (baseline / ours when ``inverse``:
    for times, where smaller is better)."""
    ratio = None
    if ours and baseline:
        ratio = baseline / ours if inverse else ours / baseline
    met = None
    if target is not None and ratio is not None:
        met = ratio >= target[1] if target[0] == ">=" else ratio <= target[1]
    return {
        "key": key,
        "figure": figure,
        "unit": unit,
        "oddsstore": ours,
        "baseline_name": baseline_name,
        "baseline": baseline,
        "ratio": ratio,
        "target": "none, reported" if target is None else f"{target[0]} {target[1]:g}x",
        "goal": None if target is None else target[1],
        "met": met,
        "note": None,
    }


def _analytics_rows(shallow: dict[str, Any], deep: dict[str, Any], depth: str) -> list[Row]:
    """How the heaviest analytics grow with history (issue: odds analytics); reported, no target."""
    if "analytics" not in shallow or "analytics" not in deep:
        return []  # results written before the analytics were measured
    return [
        _row(
            f"{name}_growth",
            f"{name} p50: {depth}",
            "ms",
            deep["analytics"][name]["p50_ms"],
            f"at {shallow['days']:g} d",
            shallow["analytics"][name]["p50_ms"],
            None,
        )  # fmt: skip
        for name in ("compare_event", "arbitrage")
    ]


def _retention_rows(retention: dict[str, Any]) -> list[Row]:
    """Drop against batched DELETE (a failure of either is not met), and the writer's stall."""
    ours, seed = retention["oddsstore"], retention["seed"]
    speed = _row(
        "retention_vs_delete", "retention of one day: batched DELETE / partition drop", "s", ours["seconds"],
        "batched DELETE", seed["seconds"], (">=", 100), inverse=True,
    )  # fmt: skip
    if ours["error"] or seed["error"]:
        speed.update(ratio=None, met=False, note=f"failed: {ours['error'] or seed['error']}")
    writer = _row(
        "retention_writer", "retention: longest insert of a concurrent writer", "s",
        ours["writer"]["longest_stall_s"], "during batched DELETE", seed["writer"]["longest_stall_s"], None,
    )  # fmt: skip
    writer.update(
        ratio=None,
        target=f"< {retention['blocked_after_s']:g} s (no blocked writer)",
        met=not ours["writer"]["blocked"],
        note="; ".join(ours["writer"]["failed_inserts"][:1]) or None,
    )
    return [speed, writer]


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "obs/s":
        return f"{value:,.0f}"
    if unit == "bytes/obs":
        return f"{value:,.1f}"
    if unit == "ms":
        return f"{value:.2f}"
    return f"{value:.3f}"


def _cells(row: Row) -> list[str]:
    ratio = "-" if row["ratio"] is None else f"{row['ratio']:.3g}x"
    met = {True: "met", False: "NOT met", None: "-"}[row["met"]]
    return [
        row["figure"],
        f"{_number(row['oddsstore'], row['unit'])} {row['unit']}",
        f"{_number(row['baseline'], row['unit'])} ({row['baseline_name']})",
        ratio,
        row["target"],
        met,
    ]


HEADER = ["figure", "oddsstore", "baseline", "ratio", "target", "status"]


def table(results: dict[str, Any]) -> str:
    """The target rows as a plain-text table."""
    lines = [HEADER] + [_cells(row) for row in results["targets"]]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join([_heading(results), "", *text, *_notes(results)])


def markdown(results: dict[str, Any]) -> str:
    """The target rows as a Markdown table, headed by what was run."""
    lines = [f"**{_heading(results)}**", "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in results["targets"]]
    return "\n".join(lines + _notes(results))


def _notes(results: dict[str, Any]) -> list[str]:
    notes = [f"* {row['figure']}: {row['note']}" for row in results["targets"] if row["note"]]
    return ["", *notes] if notes else []


def _heading(results: dict[str, Any]) -> str:
    machine = results["machine"]
    return (
        f"scale {results['scale']}: {results['server']['version'].split(' on ')[0]}, {machine['cpus']} CPUs "
        f"(load average {machine['load_average_at_start'][0]:.1f} at start, {machine['load_average_at_end'][0]:.1f} "
        f"at end), {results['started_at'][:16]} UTC, {results['duration_s']:.0f} s"
    )


def chart(results: dict[str, Any], path: Path) -> None:
    """A horizontal bar per ratio (log scale) with its target marked; green met, red not, grey
    reported only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in results["targets"] if row["ratio"] is not None]
    colours = {True: "#2e7d32", False: "#c62828", None: "#9e9e9e"}
    figure, axes = plt.subplots(figsize=(10, 0.6 * len(rows) + 1.5))
    positions = range(len(rows))[::-1]
    axes.barh(list(positions), [row["ratio"] for row in rows], color=[colours[row["met"]] for row in rows])
    axes.set_xscale("log")
    for y, row in zip(positions, rows, strict=True):
        goal = row["goal"]
        if goal is not None:
            axes.plot([goal, goal], [y - 0.4, y + 0.4], color="black", linewidth=2)
        label = f" {row['ratio']:.3g}x  ({_target_label(row)})"
        axes.annotate(label, (max(row["ratio"], goal or 0) * 1.15, y), va="center", fontsize=8)
    axes.set_yticks(list(positions), [row["figure"] for row in rows], fontsize=8)
    axes.set_xlabel("ratio (log scale); black mark: target")
    axes.set_title(f"oddsstore benchmark, scale {results['scale']}", fontsize=10)
    axes.set_xlim(right=axes.get_xlim()[1] * 30)  # room for the labels
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write(results: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    """Write ``<scale>.json`` and ``<scale>.png`` into ``directory``; return both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path, png_path = directory / f"{results['scale']}.json", directory / f"{results['scale']}.png"
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    chart(results, png_path)
    return json_path, png_path


def _target_label(row: Row) -> str:
    return "reported, no target" if row["goal"] is None else f"target {row['target']}"
