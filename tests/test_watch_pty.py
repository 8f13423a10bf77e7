"""`grader watch` in a real terminal (a pseudo-terminal): the recorded runs of issue 10.

Each test starts ``python -m grader watch`` on a pty, on its own copy of the pristine
exercises and its own state folder, types keys and saves files as a learner does, and
reads the screen (ANSI codes stripped) with a deadline for each thing it waits for. The
transcript of each run is kept as ``watch-run.txt`` in the test's temporary folder and
its tail is printed when a wait fails.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader import paths
from grader.catalog import catalog, git_blob_sha

pytestmark = pytest.mark.timeout(300)
WAIT = 60.0  # seconds for any one thing to appear (a slow 2-CPU machine grades slowly)
ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[@-Z\\-_]"
)
FIRST = catalog().exercise("simple_timer")
SECOND = catalog().exercise("apscheduler_config")
TOTAL = sum(e.available for e in catalog().exercises)


class Terminal:
    """A process on a pseudo-terminal: type into it, wait for its screen to say something."""

    def __init__(self, args: list[str], env: dict[str, str], transcript: Path) -> None:
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 120, 0, 0))
        self.settings = termios.tcgetattr(self.slave)  # what the watch must leave behind
        self.transcript = transcript
        self.raw = b""
        self.seen = 0  # where the next wait starts reading in the text
        self.process = subprocess.Popen(
            args,
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            cwd=paths.REPO_ROOT,
            env=env,
            start_new_session=True,
        )

    @property
    def text(self) -> str:
        """Everything shown so far, without escape codes and carriage returns."""
        return ANSI.sub("", self.raw.decode("utf-8", errors="replace")).replace("\r", "")

    def _read(self, until: float) -> bool:
        """Read what is there (waiting until ``until`` at most); False once it is closed."""
        ready, _, _ = select.select(
            [self.master], [], [], max(0.0, min(0.5, until - time.monotonic()))
        )
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:
            return False
        self.raw += data
        self.transcript.write_bytes(self.raw)
        return bool(data)

    def expect(self, pattern: str, timeout: float = WAIT) -> re.Match[str]:
        """Wait for ``pattern`` (a regular expression) after what earlier waits matched."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.compile(pattern).search(self.text, self.seen)
            if found:
                self.seen = found.end()
                return found
            if time.monotonic() > deadline:
                tail = self.text[-3000:]
                pytest.fail(f"no {pattern!r} within {timeout} s; the screen ends with:\n{tail}")
            if not self._read(deadline) and self.process.poll() is not None:
                code = self.process.returncode
                pytest.fail(f"watch exited ({code}) before {pattern!r}:\n{self.text[-3000:]}")

    def type(self, keys: str) -> None:
        """Press keys."""
        os.write(self.master, keys.encode())

    def wait_exit(self, timeout: float = WAIT) -> int:
        """Wait for the process to end, reading what it prints until then."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self._read(deadline)
        code = self.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        while select.select([self.master], [], [], 0)[0] and self._read(time.monotonic()):
            pass  # what it printed last
        return code

    def close(self) -> None:
        """Stop the process (its own session) if it still runs; close the pty."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def exercises(tmp_path: Path, pristine_exercises: Path) -> Path:
    """This test's own copy of the pristine exercises (it edits them)."""
    root = tmp_path / "exercises"
    shutil.copytree(pristine_exercises, root)
    return root


@pytest.fixture
def terminal(tmp_path: Path, exercises: Path) -> Iterator[Terminal]:
    """`grader watch` started in a 120x50 pseudo-terminal."""
    env = {
        **os.environ,
        "CRONKATA_EXERCISES_DIR": str(exercises),
        "CRONKATA_STATE_DIR": str(tmp_path / "state"),
        "CRONKATA_LANG": "en",
        "COLUMNS": "120",
        "LINES": "50",
        "TERM": "xterm-256color",
        "NO_COLOR": "1",
    }
    started = Terminal([sys.executable, "-m", "grader", "watch"], env, tmp_path / "watch-run.txt")
    try:
        yield started
    finally:
        started.close()


def save_by_rename(path: Path, text: str) -> None:
    """Save as many editors do: a temporary file next to it, renamed over it."""
    temporary = path.with_name(f".{path.name}.swap-save")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def first_failure(terminal: Terminal, exercise: str) -> None:
    """Wait for the screen of an exercise's grading that fails."""
    terminal.expect(rf"exercise \d+/{TOTAL}: {exercise} ")
    terminal.expect(rf"{exercise}: 0/\d+ passed")
    terminal.expect(r"keys: n next")


def quit_cleanly(terminal: Terminal) -> None:
    terminal.type("q")
    terminal.expect(r"watch stopped")
    assert terminal.wait_exit() == 0
    assert termios.tcgetattr(terminal.slave) == terminal.settings  # cbreak undone


def test_a_recorded_run_edits_the_stub_to_a_pass_and_moves_to_the_next(
    terminal: Terminal, exercises: Path
) -> None:
    terminal.expect(rf"0/{TOTAL} exercises done")
    terminal.expect(rf"exercise 1/{TOTAL}: simple_timer \({re.escape(FIRST.title)}\)")
    terminal.expect(r"edit: exercises/level1/level1_simple_timer\.py")
    terminal.expect(rf"read: notes/{re.escape(FIRST.note)}")
    terminal.expect(r"simple_timer: 0/\d+ passed")
    terminal.expect(r"FAIL simple_timer :: test_\w+ \(\d+ pt\), the first failing test")
    terminal.expect(r"keys: n next")
    save_by_rename(FIRST.stub_path(exercises), FIRST.solution_path().read_text(encoding="utf-8"))
    terminal.expect(r"grading simple_timer")
    terminal.expect(rf"1/{TOTAL} exercises done")
    terminal.expect(r"simple_timer: passed")
    terminal.expect(r"simple_timer passes!")
    terminal.expect(
        rf"Next: apscheduler_config .*exercises/level1/{SECOND.file}.*Press n to go there"
    )
    terminal.type("n")
    terminal.expect(r"grading apscheduler_config")
    first_failure(terminal, "apscheduler_config")
    quit_cleanly(terminal)


def test_a_syntax_error_mid_typing_is_one_clear_message_and_the_watch_goes_on(
    terminal: Terminal, exercises: Path
) -> None:
    first_failure(terminal, "simple_timer")
    solution = FIRST.solution_path().read_text(encoding="utf-8")
    half_typed = solution.replace("def build_scheduler()", "def build_scheduler(", 1)
    FIRST.stub_path(exercises).write_text(half_typed, encoding="utf-8")  # saved in place
    terminal.expect(r"exercises/level1/level1_simple_timer\.py cannot be loaded")
    terminal.expect(r"SyntaxError")
    terminal.expect(r"keys: n next")
    save_by_rename(FIRST.stub_path(exercises), solution)
    terminal.expect(r"simple_timer passes!")
    assert terminal.process.poll() is None
    quit_cleanly(terminal)


def test_h_reveals_a_hint_and_l_lists_and_picks_an_exercise(
    terminal: Terminal, tmp_path: Path
) -> None:
    first_failure(terminal, "simple_timer")
    terminal.type("h")
    terminal.expect(r"hint 1 of \d+ for simple_timer \(first failing test: test_\w+\)")
    terminal.expect(r"press h again for the next hint")
    assert "simple_timer" in (tmp_path / "state" / "hints.json").read_text(encoding="utf-8")
    terminal.type("l")
    terminal.expect(r"│\s+1 │ simple_timer\s+│\s+1 │ pending\s+│ <- continue here")
    terminal.expect(r"│\s+2 │ apscheduler_config\s+│\s+1 │ pending")
    terminal.expect(r"production_monitor\s+│\s+4 │ pending")  # planned rows: tests/test_watch.py
    terminal.expect(r"type an exercise's number and Enter")
    terminal.type("2\r")
    terminal.expect(r"grading apscheduler_config")
    first_failure(terminal, "apscheduler_config")
    quit_cleanly(terminal)


def test_r_asks_first_and_c_checks_every_exercise(
    terminal: Terminal, exercises: Path, tmp_path: Path
) -> None:
    first_failure(terminal, "simple_timer")
    mine = FIRST.stub_path(exercises)
    attempt = mine.read_text(encoding="utf-8") + "\n# my attempt\n"
    save_by_rename(mine, attempt)
    terminal.expect(r"grading simple_timer")
    terminal.expect(r"keys: n next")
    terminal.type("r")
    terminal.expect(
        r"Reset exercises/level1/level1_simple_timer\.py to the pristine stub\? .*\[y/N\]"
    )
    terminal.type("n")
    terminal.expect(r"nothing reset")
    terminal.expect(r"keys: n next")
    assert mine.read_text(encoding="utf-8") == attempt
    terminal.type("r")
    terminal.expect(r"\[y/N\]")
    terminal.type("y")
    terminal.expect(r"simple_timer: your file is saved as \S+; exercises/level1/")
    terminal.expect(r"level1_simple_timer\.py is the pristine stub again")
    assert git_blob_sha(mine.read_bytes()) == FIRST.stub_blob
    backups = list((tmp_path / "state" / "backups").rglob(FIRST.file))
    assert [b.read_text(encoding="utf-8") for b in backups] == [attempt]
    terminal.type("c")
    terminal.expect(r"grading your exercises")
    terminal.expect(r"cronkata progress")
    terminal.expect(rf"Overall: 0/{TOTAL} exercises passed")
    terminal.expect(r"keys: n next")
    quit_cleanly(terminal)


def test_ctrl_c_stops_the_watch_and_restores_the_terminal(terminal: Terminal) -> None:
    first_failure(terminal, "simple_timer")
    os.kill(terminal.process.pid, signal.SIGINT)  # what Ctrl+C sends (the pty is no ctty here)
    terminal.expect(r"watch stopped")
    assert terminal.wait_exit() == 0
    assert termios.tcgetattr(terminal.slave) == terminal.settings
