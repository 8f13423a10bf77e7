"""Benchmark: grading each level and `grader verify`, against the import floor, in one table.

    .venv/bin/python benchmarks/bench_grading.py [--level 1 ...] [--repeat 3] [--no-verify]
                                                 [--without-templates]

Every figure is the median wall time of ``--repeat`` runs, measured side by side in this
run: each level's import floor (a pytest run of one trivial test importing the libraries
that level's solutions and suites import, see floor/libraries.py), `pytest
exercises/levelN --solutions` for each level (with ``--without-templates``, also with one
import of the file per test, as before templates), and `grader verify` (whole course).
A level's runs are taken in turn, round after round. The
ratio column is each figure over the floor of its level; the CPU column is the CPU time (user +
system, every process of the run) per run: on a machine with few CPUs, wall time cannot go
below CPU time divided by the CPU count.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks" / "floor"))
from libraries import level_libraries  # noqa: E402  (the benchmark runs as a script)

FLOOR = ROOT / "benchmarks" / "floor" / "test_import_floor.py"
LEVELS = (1, 2, 3, 4)
TARGET_RATIO = 1.5  # issue 12: each level at most 1.5x its import floor
VERIFY_TARGET = 20.0  # seconds, whole course


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_run(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of ``command`` (it must succeed)."""
    start, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    return elapsed, _children_cpu() - cpu


def pytest_command(*args: str) -> list[str]:
    """A quiet pytest run of this project's environment."""
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]


Run = tuple[list[str], dict[str, str] | None]


def median_of(run: Run, repeat: int) -> tuple[float, float]:
    """The median wall time and median CPU time of ``repeat`` runs of (command, env)."""
    return medians_of([run], repeat)[0]


def medians_of(runs: list[Run], repeat: int) -> list[tuple[float, float]]:
    """(median wall, median CPU) of each run, the runs taken in turn ``repeat`` times, so
    a machine that slows down or speeds up meanwhile weighs on all of them alike."""
    rounds = [[timed_run(*run) for run in runs] for _ in range(repeat)]
    return [
        (
            statistics.median(r[i][0] for r in rounds),
            statistics.median(r[i][1] for r in rounds),
        )
        for i in range(len(runs))
    ]


def floor_command(level: int | None) -> tuple[list[str], dict[str, str]]:
    """The floor run of ``level`` (None: every level's libraries) and its environment."""
    env = {**os.environ, "CRONKATA_FLOOR_MODULES": ",".join(level_libraries(level))}
    return pytest_command(str(FLOOR)), env


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--level", type=int, action="append", help="level(s) to grade")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-verify", action="store_true", help="leave `grader verify` out")
    parser.add_argument(
        "--without-templates",
        action="store_true",
        help="also grade each level with --grader-no-preload (one import per test)",
    )
    options = parser.parse_args()
    timed_run(*floor_command(None))  # warm the file cache once
    rows: list[tuple[str, float, float, float, str]] = []
    for level in options.level or LEVELS:
        grading = pytest_command(f"exercises/level{level}", "--solutions")
        runs: list[Run] = [floor_command(level), (grading, None)]
        if options.without_templates:
            runs.append(([*grading, "--grader-no-preload"], None))
        measured = medians_of(runs, options.repeat)
        (floor, floor_cpu), (seconds, cpu) = measured[:2]
        rows.append((f"level {level} import floor", floor, floor_cpu, floor, ""))
        rows.append(
            (f"level {level} vs the solutions", seconds, cpu, floor, f"<= {TARGET_RATIO}x floor")
        )
        if options.without_templates:
            seconds, cpu = measured[2]
            rows.append(("  the same without templates", seconds, cpu, floor, ""))
    if not options.no_verify:
        floor, _ = median_of(floor_command(None), options.repeat)
        verify = [sys.executable, "-m", "grader", "verify"]
        seconds, cpu = median_of((verify, None), 1)
        target = f"<= {VERIFY_TARGET:g} s"
        rows.append(("grader verify (whole course)", seconds, cpu, floor, target))
    print(f"cronkata benchmark: {os.cpu_count()} CPU(s), median of {options.repeat} run(s)")
    print("x floor: over the import floor of the same level (verify: of every level)")
    print(f"{'what':<34}{'seconds':>9}{'x floor':>9}{'CPU s':>8}  target")
    for name, seconds, cpu, floor, target in rows:
        print(f"{name:<34}{seconds:>9.2f}{seconds / floor:>9.2f}{cpu:>8.2f}  {target}")


if __name__ == "__main__":
    main()
