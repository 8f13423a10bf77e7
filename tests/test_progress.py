"""Live progress while grading (issue 10, "Commands and output": the frozen spinner).

`run_suites` reports each judged test as it is judged (not once the batch is over), the
display writes to a stream it took before the grading redirected ``sys.stdout`` (the
cause of the freeze), nothing shows for a grading shorter than the delay, and the real
command shows "tests done / total" on a terminal (a pty).
"""

from __future__ import annotations

import io
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from grader import i18n, paths, progress, sandbox
from grader.catalog import catalog
from grader.progress import live_progress
from grader.results import TestResult as Graded  # not a test class
from grader.results import run_suites

pytestmark = pytest.mark.timeout(120)
EXERCISE = catalog().exercise("simple_timer")


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRONKATA_LANG", "en")
    i18n.set_language(None)


@pytest.fixture
def level1(tmp_path: Path, pristine_exercises: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The grader (in this process) pointed at a copy of the pristine level 1."""
    root = tmp_path / "exercises"
    shutil.copytree(pristine_exercises / "level1", root / "level1")
    monkeypatch.setattr(paths, "EXERCISES_DIR", root)
    monkeypatch.setattr(paths, "STATE_DIR", tmp_path / "state")
    return root


def _grade_recording(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[list[Graded], list[bool], list[tuple[int, int]]]:
    """Grade simple_timer; each progress call is recorded with whether the batch of
    graded tests (one `sandbox.run_many`) was still running at the time."""
    calls: list[tuple[int, int]] = []
    during: list[bool] = []
    running = [False]
    real_run_many = sandbox.run_many

    def run_many(*args: Any, **kwargs: Any) -> Any:
        running[0] = True
        try:
            return real_run_many(*args, **kwargs)
        finally:
            running[0] = False

    def progressed(done: int, total: int) -> None:
        calls.append((done, total))
        during.append(running[0])

    monkeypatch.setattr(sandbox, "run_many", run_many)
    results = run_suites([EXERCISE], ["learner"], progress=progressed)
    return results, during, calls


def test_run_suites_reports_each_judged_test_while_the_batch_runs(
    level1: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results, during, calls = _grade_recording(monkeypatch)
    assert len(results) >= 10
    total = len(results)
    assert [done for done, _ in calls] == list(range(1, total + 1)), "one call per test, in order"
    assert {seen_total for _, seen_total in calls} == {total}
    assert all(during), "the counts must come as tests are judged, not after the batch"


def test_a_file_that_cannot_be_loaded_still_counts_up_to_the_total(
    level1: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (level1 / "level1" / EXERCISE.file).write_text("def broken(:\n", encoding="utf-8")
    results, _, calls = _grade_recording(monkeypatch)
    assert results and all(r.cause == "load" for r in results)
    assert calls and calls[-1] == (len(results), len(results))
    dones = [done for done, _ in calls]
    assert dones == sorted(set(dones)), "the count only goes up"


def test_a_failing_display_never_stops_the_grading(level1: Path) -> None:
    def broken(done: int, total: int) -> None:
        raise RuntimeError("the terminal went away")

    results = run_suites([EXERCISE], ["learner"], progress=broken)
    assert len(results) >= 10


def test_the_display_writes_past_the_redirection_that_froze_the_spinner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Like the CLI's console (no file of its own: it writes to sys.stdout of the moment),
    while run_suites has sys.stdout redirected into its buffer."""
    screen = io.StringIO()
    monkeypatch.setattr(sys, "stdout", screen)
    console = Console(force_terminal=True, width=80, highlight=False)
    buffer = io.StringIO()
    # redirect_stdout: what run_suites does while pytest runs
    with (
        live_progress(console, "grading simple_timer...", after=0) as shown,
        redirect_stdout(buffer),
    ):
        shown(1, 3)
        shown(3, 3)
    assert "grading simple_timer..." in screen.getvalue()
    assert "1/3 tests" in screen.getvalue() and "3/3 tests" in screen.getvalue()
    assert buffer.getvalue() == "", "no frame may go into the grading's buffer"


def test_a_grading_shorter_than_the_delay_prints_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=80)
    with live_progress(console, "grading simple_timer...", after=60) as shown:
        shown(1, 2)
        shown(2, 2)
    assert screen.getvalue() == ""
    assert not shown.shown


def test_the_display_starts_once_the_delay_is_over() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=80)
    with live_progress(console, "grading simple_timer...", after=0.05) as shown:
        shown(1, 4)
        deadline = time.monotonic() + 30
        while not shown.shown and time.monotonic() < deadline:
            time.sleep(0.01)  # the timer's thread starts the display
        assert shown.shown
        shown(2, 4)
    assert "2/4 tests" in screen.getvalue()


def test_the_delay_is_a_second_unless_the_environment_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(progress.DELAY_VARIABLE, raising=False)
    assert progress.delay_seconds() == 1.0
    monkeypatch.setenv(progress.DELAY_VARIABLE, "0")
    assert progress.delay_seconds() == 0.0
    monkeypatch.setenv(progress.DELAY_VARIABLE, "soon")
    assert progress.delay_seconds() == 1.0


def on_a_terminal(args: list[str], env: dict[str, str], columns: int = 80) -> str:
    """Run ``python -m grader ARGS`` on a pty of ``columns`` columns; all it wrote."""
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    environment = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    process = subprocess.Popen(
        [sys.executable, "-m", "grader", *args],
        cwd=paths.REPO_ROOT,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**environment, "TERM": "xterm-256color", **env},
        close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 100
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed the pty
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
    return b"".join(chunks).decode("utf-8", errors="replace")


def test_check_on_a_terminal_shows_tests_done_of_total(pristine_exercises: Path) -> None:
    env = {
        "CRONKATA_EXERCISES_DIR": str(pristine_exercises),
        progress.DELAY_VARIABLE: "0",  # from the start: no luck with timing involved
    }
    screen = on_a_terminal(["check", "simple_timer"], env)
    counts = [(int(a), int(b)) for a, b in re.findall(r"(\d+)/(\d+) tests", screen)]
    assert counts, screen[-2000:]
    total = counts[-1][1]
    assert {b for _, b in counts} == {total} and total >= 10
    dones = [a for a, _ in counts]
    assert dones == sorted(dones) and dones[-1] == total
    assert len(set(dones)) > total // 2, "the count moves as tests are judged"
    assert "grading simple_timer..." in screen
    assert "simple_timer: 0/" in screen  # then the verdict, as before


def test_a_short_grading_on_a_terminal_prints_nothing_extra(pristine_exercises: Path) -> None:
    env = {
        "CRONKATA_EXERCISES_DIR": str(pristine_exercises),
        progress.DELAY_VARIABLE: "600",  # the grading ends long before
    }
    screen = on_a_terminal(["check", "simple_timer"], env)
    assert "simple_timer: 0/" in screen
    assert " tests" not in screen.split("simple_timer: 0/")[0]
    assert "grading simple_timer" not in screen
    assert "\x1b[?25l" not in screen, "not even the hidden cursor of a display"
