"""Benchmark: grading a level against the solutions vs the import floor.

    .venv/bin/python benchmarks/bench_grading.py [--level 1] [--repeat 3]

Prints the median wall time of `pytest exercises/levelN --solutions`, of the import floor
(a pytest run of one trivial test importing the same libraries) and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOOR = ROOT / "benchmarks" / "floor" / "test_import_floor.py"


def wall_time(args: list[str]) -> float:
    """Seconds one pytest run takes (it must pass)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"pytest {' '.join(args)} failed:\n{done.stdout[-3000:]}")
    return elapsed


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--level", type=int, action="append", help="level(s) to grade")
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    wall_time([str(FLOOR)])  # warm the file cache once
    floor = statistics.median(wall_time([str(FLOOR)]) for _ in range(options.repeat))
    print(f"import floor (1 trivial test, same libraries): {floor:.2f} s")
    for level in options.level or [1]:
        target = [f"exercises/level{level}", "--solutions"]
        graded = statistics.median(wall_time(target) for _ in range(options.repeat))
        print(
            f"grading level {level} against the solutions: {graded:.2f} s"
            f"  -> {graded / floor:.2f}x the import floor"
        )


if __name__ == "__main__":
    main()
