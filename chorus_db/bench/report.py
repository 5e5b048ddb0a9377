"""The end of `invoke bench`: the table on the terminal and bench-results/bench-*.json."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from .common import GOALS, RESULTS_DIR, Goal, Report, fmt


def goal_of(name: str) -> Goal | None:
    """The goal of a ratio, found by the first word of its name."""
    return GOALS.get(name.split(" ", 1)[0])


def goals(report: Report) -> dict[str, dict]:
    """Every goal with what this run measured for it (None when that part did not run)."""
    out = {}
    for key, goal in GOALS.items():
        name = next((n for n in report.ratios if n.split(" ", 1)[0] == key), None)
        value = report.ratios.get(name) if name else None
        out[key] = {"name": name, "goal": str(goal), "measured": value,
                    "met": None if value is None else goal.met(value)}
    return out


def write(report: Report) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    loadavg = Path("/proc/loadavg")
    report.machine["load_at_end"] = loadavg.read_text().split()[:3] if loadavg.exists() else None
    path = RESULTS_DIR / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    data = asdict(report)
    data["goals"] = goals(report)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def print_summary(report: Report) -> None:
    print("\nMedians of the alternated runs:")
    print(f"  {'run':46} {'per s':>9} {'p50 ms':>8} {'p99 ms':>8} {'runs':>5} {'failed':>7}")
    for name, m in report.medians.items():
        print(f"  {name:46} {m['tps']:9.1f} {fmt(m['p50_ms']):>8} {fmt(m['p99_ms']):>8} {m['runs']:5d} {m['failed']:7d}")
    print("\nRatios and figures with a goal (same run):")
    for name, value in report.ratios.items():
        goal = goal_of(name)
        verdict = "" if goal is None else f"   goal {goal}: {'met' if goal.met(value) else 'MISSED'}"
        print(f"  {name:78} {value:8.3f}{verdict}")
    missing = [key for key, g in goals(report).items() if g["measured"] is None]
    if missing:
        print(f"  not measured in this run: {', '.join(missing)}")
    if report.figures:
        print("Figures:")
        for name, value in report.figures.items():
            print(f"  {name:78} {value}")
    for name, why in report.skipped.items():
        print(f"  skipped {name}: {why}")
    for note in report.notes:
        print(f"  note: {note}")
    start = report.machine.get("load_at_start")
    end = report.machine.get("load_at_end")
    print(f"Load average (1, 5, 15 min): {' '.join(start or [])} at start, {' '.join(end or [])} at the end; "
          f"{report.machine.get('cpus')} CPUs")
