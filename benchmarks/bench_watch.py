"""Benchmark: `grader watch`, from a saved file to its verdict on the screen (issue 12).

    .venv/bin/python benchmarks/bench_watch.py [--repeat 5]

Starts ``python -m grader watch`` on a pseudo-terminal, on a copy of the pristine
exercises (``git archive HEAD exercises``) and its own state folder, as a learner's
terminal would. Once simple_timer's first grading is on screen, it saves, by rename as
editors do, the solution into the exercise's file and times until "simple_timer: passed"
shows; then the stub again, until "simple_timer: 0/N passed". Prints the median and the
slowest of ``--repeat`` saves of each (goal: 0.3 s for a level-1 exercise).
"""

from __future__ import annotations

import argparse
import os
import re
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.sandbox.text import sanitize  # noqa: E402  (the benchmark runs as a script)

FILE = Path("exercises/level1/level1_simple_timer.py")
SOLUTION = ROOT / "solutions" / "level1_simple_timer.py"
GOAL_SECONDS = 0.3


class Screen:
    """What the watch has printed on its pty (escape codes stripped by the grader's own
    `sanitize`), searched from a moving start."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.raw = b""
        self.start = 0

    def wait_for(self, pattern: str, seconds: float = 120.0) -> float:
        """Read until ``pattern`` shows after the last match; the monotonic time it did."""
        deadline = time.monotonic() + seconds
        while True:
            shown = sanitize(self.raw.decode(errors="replace"))
            found = re.compile(pattern).search(shown, self.start)
            if found:
                self.start = found.end()
                return time.monotonic()
            left = deadline - time.monotonic()
            if left <= 0:
                sys.exit(f"no {pattern!r} on the watch's screen; it ends with:\n{shown[-2000:]}")
            if select.select([self.master], [], [], min(left, 0.05))[0]:
                self.raw += os.read(self.master, 65536)


def pristine_exercises(into: Path) -> Path:
    """The committed exercises (never the learner's edits), unpacked below ``into``."""
    archive = subprocess.run(
        ["git", "archive", "HEAD", "exercises"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "exercises"


def save(path: Path, text: str) -> float:
    """Save by rename; the monotonic time of the save."""
    temporary = path.with_name(f".{path.name}.bench-save")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return time.monotonic()


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cronkata-bench-watch-") as scratch:
        exercises = pristine_exercises(Path(scratch))
        target = exercises / FILE.relative_to("exercises")
        stub, solved = target.read_text(encoding="utf-8"), SOLUTION.read_text(encoding="utf-8")
        env = {
            **os.environ,
            "CRONKATA_EXERCISES_DIR": str(exercises),
            "CRONKATA_STATE_DIR": str(Path(scratch) / "state"),
            "CRONKATA_LANG": "en",
            "COLUMNS": "120",
            "LINES": "50",
            "TERM": "xterm-256color",
            "NO_COLOR": "1",
        }
        master, slave = os.openpty()
        watch = subprocess.Popen(
            [sys.executable, "-m", "grader", "watch"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        screen = Screen(master)
        to_pass: list[float] = []
        to_fail: list[float] = []
        try:
            screen.wait_for(r"simple_timer: 0/\d+ passed")
            screen.wait_for(r"keys: n next")
            for _ in range(options.repeat):
                saved = save(target, solved)
                to_pass.append(screen.wait_for(r"simple_timer: passed") - saved)
                screen.wait_for(r"keys:")
                saved = save(target, stub)
                to_fail.append(screen.wait_for(r"simple_timer: 0/\d+ passed") - saved)
                screen.wait_for(r"keys:")
            os.write(master, b"q")
            screen.wait_for(r"watch stopped", 30)
        finally:
            if watch.poll() is None:
                os.killpg(watch.pid, signal.SIGKILL)
            watch.wait(timeout=30)
            os.close(master)
            os.close(slave)
    print(f"cronkata watch benchmark: {os.cpu_count()} CPU(s), {options.repeat} saves each")
    print(f"{'save to verdict':<34}{'median s':>9}{'max s':>8}  target")
    for name, seconds in (("solution saved: passed", to_pass), ("stub saved: failed", to_fail)):
        median, slowest = statistics.median(seconds), max(seconds)
        print(f"{name:<34}{median:>9.2f}{slowest:>8.2f}  <= {GOAL_SECONDS:g} s")


if __name__ == "__main__":
    main()
