"""Live progress while grading: a spinner and "tests done / total", after a second.

Why a spinner used to freeze after one frame: a rich `Console` built without a file
writes to whatever ``sys.stdout`` is at the moment it writes, and `run_suites` redirects
``sys.stdout`` into a buffer while pytest runs in-process (pytest also points file
descriptors 1 and 2 at its capture files while it collects). Every frame after the first
went into that buffer. The display here writes to its own stream, taken before grading
starts: a duplicate of the terminal's file descriptor, which no redirection reaches.

Nothing is shown for a grading that ends within `DELAY_SECONDS` (``CRONKATA_PROGRESS_AFTER``
sets another delay, ``0`` shows it at once), nor when the output is not a terminal (the
display is transient: it leaves nothing behind in a log or a pipe).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from grader.i18n import t

logger = logging.getLogger(__name__)
DELAY_SECONDS = 1.0
DELAY_VARIABLE = "CRONKATA_PROGRESS_AFTER"


def delay_seconds() -> float:
    """How long a grading runs before its progress shows (``CRONKATA_PROGRESS_AFTER``)."""
    raw = os.environ.get(DELAY_VARIABLE, "")
    try:
        return max(0.0, float(raw)) if raw.strip() else DELAY_SECONDS
    except ValueError:
        logger.warning("%s=%r is not a number of seconds", DELAY_VARIABLE, raw)
        return DELAY_SECONDS


class _Counts(ProgressColumn):
    """``7/18 tests`` once the total is known."""

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text("")
        return Text(t("progress.tests", done=int(task.completed), total=int(task.total)))


class LiveProgress:
    """The live display of one grading, started late (from a timer) or never.

    Called as ``progress(done, total)``: `run_suites` takes it as its ``progress``.
    """

    def __init__(self, console: Console, label: str) -> None:
        self._console = console
        self._label = label
        self._lock = threading.Lock()
        self._progress: Progress | None = None
        self._task = TaskID(0)
        self._done = 0
        self._total: int | None = None
        self._closed = False

    @property
    def shown(self) -> bool:
        """Whether the display has started."""
        return self._progress is not None

    def show(self) -> None:
        """Start the display (once, and never after the grading ended)."""
        with self._lock:
            if self._closed or self._progress is not None:
                return
            progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(bar_width=24),
                _Counts(),
                TimeElapsedColumn(),
                console=self._console,
                transient=True,
                redirect_stdout=False,  # run_suites redirects them itself, from this thread
                redirect_stderr=False,
            )
            self._task = progress.add_task(self._label, total=self._total, completed=self._done)
            progress.start()
            self._progress = progress

    def __call__(self, done: int, total: int) -> None:
        """``done`` of ``total`` tests are judged: redraw at once."""
        with self._lock:
            self._done, self._total = done, total
            if self._progress is not None:
                self._progress.update(self._task, completed=done, total=total)
                self._progress.refresh()

    def close(self) -> None:
        """End the display (it erases itself); a timer that fires later shows nothing."""
        with self._lock:
            self._closed = True
            if self._progress is not None:
                self._progress.stop()


@contextmanager
def _own_stream(console: Console) -> Iterator[IO[str]]:
    """A stream to the console's terminal that no later redirection reaches."""
    target = console.file  # resolved now, before the grading redirects sys.stdout
    try:
        descriptor = target.fileno()
        terminal = os.isatty(descriptor)
    except (AttributeError, OSError, ValueError):  # a buffer (Click's runner): keep it
        terminal = False
    if not terminal:
        yield target
        return
    encoding = getattr(target, "encoding", None) or "utf-8"
    with open(os.dup(descriptor), "w", encoding=encoding, errors="replace") as stream:
        yield stream


@contextmanager
def live_progress(
    console: Console, label: str, after: float | None = None
) -> Iterator[LiveProgress]:
    """Show ``label``, a spinner and "tests done / total" while a grading runs.

    Yields the ``progress(done, total)`` callable to pass to `run_suites`, e.g.
    ``with live_progress(console, "grading simple_timer...") as progress:
    run_suites([exercise], [variants.LEARNER], progress=progress)``. The display
    starts once the grading has run ``after`` seconds (default: `delay_seconds()`), writes
    to the terminal of ``console`` through its own stream, and erases itself at the end.
    """
    wait = delay_seconds() if after is None else max(0.0, after)
    with _own_stream(console) as stream:
        shown_on = Console(
            file=stream,
            highlight=False,
            no_color=console.no_color,
            force_terminal=console.is_terminal,
            width=console.width,
        )
        display = LiveProgress(shown_on, label)
        timer: threading.Timer | None = None
        if wait <= 0:
            display.show()
        else:
            timer = threading.Timer(wait, display.show)
            timer.daemon = True
            timer.start()
        try:
            yield display
        finally:
            if timer is not None:
                timer.cancel()
            display.close()
