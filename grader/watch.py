"""`grader watch`: grade as you save, with keys, like rustlings v6.

On a terminal the watch starts at the first unfinished exercise (or the one named), grades
it at once and redraws one screen after each save and each key: the progress over the
course, the current exercise with its file and note section, its first failure in full
(`present`), and once it passes, the next exercise. Keys: ``n`` next, ``h`` hint, ``l`` list
(pick one by number), ``c`` check all, ``r`` reset (asks first), ``q`` quit.

Without a terminal (stdin or stdout redirected: a pipe, an editor's task runner) the watch
is plain: it re-grades each saved file and prints the result below the last one; the
hidden ``--runs N`` stops after N gradings.

The parts: `WatchState` is pure (which exercise, which are done, what to show; `press`
turns a key into an `Action`) and `render` draws it, so both are tested without a
terminal. `KeyReader` puts stdin in cbreak mode (restored on the way out, whatever the
way) and `FileWatcher` watches the level folders; both are threads that only put events
into one queue. `Session` takes the events in the main thread and does the work there,
because grading runs pytest in-process. Saves are matched by resolved path, so an editor
that saves by writing a temporary file and renaming it over the exercise is seen, and
one whose content did not change is not graded twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import queue
import select
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from grader import backups, paths, present, variants
from grader.catalog import Catalog, Exercise, is_pristine
from grader.i18n import t
from grader.progress import live_progress
from grader.report import PASSED, ExerciseStatus, next_step, progress_bar, statuses
from grader.report import render as render_report
from grader.results import HarnessError, TestResult, run_suites

logger = logging.getLogger(__name__)

DEBOUNCE_MS = 300  # saves closer together than this are graded once
RUST_TIMEOUT_MS = 500  # how often the file watcher looks at its stop event
READY_TIMEOUT_S = 30.0  # how long to wait for the file watcher to start
QUIT_KEYS = frozenset({"q", "Q", "\x04"})  # \x04: Ctrl+D (not special in cbreak mode)
ENTER_KEYS = frozenset({"\r", "\n"})
BACKSPACE_KEYS = frozenset({"\x7f", "\b"})
ESCAPE = "\x1b"


class Mode(StrEnum):
    """What the screen shows."""

    EXERCISE = "exercise"  # the current exercise and its first failure
    LIST = "list"  # every exercise, done or pending; a number picks one
    CONFIRM_RESET = "confirm reset"  # the exercise, and the question y/N
    SUMMARY = "summary"  # the progress table after `c`


class Action(StrEnum):
    """What the loop must do after a key (the state has already changed)."""

    NONE = "none"  # nothing to redraw
    REDRAW = "redraw"
    GRADE = "grade"  # grade the current exercise, then redraw
    HINT = "hint"
    CHECK_ALL = "check all"
    RESET = "reset"  # the learner said yes: restore the stub, then grade
    QUIT = "quit"


def content_key(path: Path) -> str | None:
    """A digest of a file's content (None when it does not exist): was it saved with a change?"""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


@dataclass
class WatchState:
    """Where the learner is: the current exercise, the ones done, what the screen shows."""

    course: Catalog
    current: Exercise
    done: set[str] = field(default_factory=set)
    results: dict[str, list[TestResult]] = field(default_factory=dict)
    pristine: set[str] = field(default_factory=set)
    messages: list[Text] = field(default_factory=list)  # under the exercise until it moves
    mode: Mode = Mode.EXERCISE
    typed: str = ""  # digits typed in the list
    summary: list[ExerciseStatus] | None = None  # what `c` found
    graded_at: str = ""  # when the current exercise was last graded (HH:MM:SS)

    @classmethod
    def start(
        cls,
        course: Catalog,
        found: Sequence[ExerciseStatus],
        among: Sequence[Exercise] | None = None,
    ) -> WatchState:
        """The state after the first grading of the course: at the first unfinished
        exercise (of ``among`` when given), else at the last one."""
        chosen = [s for s in found if among is None or s.exercise in among]
        upcoming = next_step(chosen)
        available = [s.exercise for s in chosen if s.exercise.available]
        if upcoming is not None:
            current = upcoming.exercise
        elif available:
            current = available[-1]
        else:
            raise HarnessError("no exercise is available to watch")
        state = cls(course, current)
        state.record_statuses(found)
        return state

    @property
    def exercises(self) -> list[Exercise]:
        """The available exercises, in course order."""
        return [e for e in self.course.exercises if e.available]

    def number(self, exercise: Exercise) -> int:
        """The exercise's number in the list (from 1)."""
        return self.exercises.index(exercise) + 1

    def progress(self) -> tuple[int, int]:
        """(exercises done, exercises available)."""
        exercises = self.exercises
        return sum(e.id in self.done for e in exercises), len(exercises)

    @property
    def passes(self) -> bool:
        """Whether the current exercise passes."""
        return self.current.id in self.done

    def next_pending(self) -> Exercise | None:
        """The next unfinished exercise after the current one, wrapping around; None if
        every other exercise is done."""
        exercises = self.exercises
        at = exercises.index(self.current)
        for exercise in exercises[at + 1 :] + exercises[:at]:
            if exercise.id not in self.done:
                return exercise
        return None

    def record(self, exercise: Exercise, results: list[TestResult], pristine: bool) -> None:
        """The outcome of grading ``exercise``."""
        self.results[exercise.id] = results
        if pristine:
            self.pristine.add(exercise.id)
        else:
            self.pristine.discard(exercise.id)
        if ExerciseStatus(exercise, results, pristine).label == PASSED:
            self.done.add(exercise.id)
        else:
            self.done.discard(exercise.id)
        if exercise == self.current:
            self.graded_at = f"{datetime.now():%H:%M:%S}"

    def record_statuses(self, found: Sequence[ExerciseStatus]) -> None:
        """The outcome of grading the whole course (untouched stubs are not run: the real
        results of one already graded are kept)."""
        for status in found:
            if not status.exercise.available:
                continue
            if status.pristine and status.exercise.id in self.results:
                continue
            self.record(status.exercise, status.results, status.pristine)

    def move_to(self, exercise: Exercise) -> None:
        """Make ``exercise`` the current one."""
        self.current = exercise
        self.messages.clear()
        self.mode = Mode.EXERCISE
        self.graded_at = ""

    def say(self, text: str, style: str = "") -> None:
        """Add a line under the exercise."""
        self.messages.append(Text(text, style))

    def press(self, key: str) -> Action:
        """Change the state for one key; what the loop must do next."""
        if self.mode is Mode.CONFIRM_RESET:
            self.mode = Mode.EXERCISE
            if key in ("y", "Y"):
                return Action.RESET
            self.say(t("watch.reset_cancelled"), "yellow")
            return Action.REDRAW
        if self.mode is Mode.LIST:
            picked = self._press_in_list(key)
            if picked is not None:
                return picked
        if key in QUIT_KEYS:
            return Action.QUIT
        if self.mode is Mode.SUMMARY:
            self.mode = Mode.EXERCISE
        if key == "n":
            upcoming = self.next_pending()
            if upcoming is None:
                self.messages.clear()
                self.say(t("watch.no_next"), "green" if self.passes else "yellow")
                return Action.REDRAW
            self.move_to(upcoming)
            return Action.GRADE
        if key == "h":
            return Action.HINT
        if key == "l":
            self.mode = Mode.LIST
            self.typed = ""
            return Action.REDRAW
        if key == "c":
            return Action.CHECK_ALL
        if key == "r":
            self.mode = Mode.CONFIRM_RESET
            return Action.REDRAW
        return Action.REDRAW if self.mode is Mode.EXERCISE else Action.NONE

    def _press_in_list(self, key: str) -> Action | None:
        """A key in the list: digits, Enter, Backspace, Esc or l; None for any other key
        (it leaves the list and acts as on the exercise's screen)."""
        if key.isdigit():
            self.typed = (self.typed + key)[-3:]
            return Action.REDRAW
        if key in BACKSPACE_KEYS:
            self.typed = self.typed[:-1]
            return Action.REDRAW
        if key in ENTER_KEYS:
            typed, self.typed = self.typed, ""
            if not typed:
                self.mode = Mode.EXERCISE
                return Action.REDRAW
            exercises = self.exercises
            if not 1 <= int(typed) <= len(exercises):
                self.say(t("watch.no_such_number", number=typed), "yellow")
                return Action.REDRAW
            self.move_to(exercises[int(typed) - 1])
            return Action.GRADE
        self.typed = ""
        self.mode = Mode.EXERCISE
        if key in (ESCAPE, "l"):
            return Action.REDRAW
        return None


def _progress_line(state: WatchState) -> Table:
    done, total = state.progress()
    line = Table.grid(padding=(0, 1))
    line.add_row(
        Text(t("watch.title"), "bold"),
        progress_bar(done, total, width=30),
        Text(t("watch.progress", done=done, total=total)),
    )
    return line


def _exercise_lines(state: WatchState) -> list[Text]:
    exercise = state.current
    _, total = state.progress()
    heading = t(
        "watch.current",
        number=state.number(exercise),
        total=total,
        exercise=exercise.id,
        title=exercise.title,
    )
    lines = [
        Text(heading, "bold"),
        Text(t("watch.file", file=present.shown_file(exercise))),
        Text(present.note_line(exercise.note), "cyan"),
        Text(""),
    ]
    results = state.results.get(exercise.id)
    if results is None:
        lines.append(Text(t("watch.not_graded"), "dim"))
        return lines
    if not exercise.stub_path().is_file():
        lines.append(Text(t("watch.missing", file=present.shown_file(exercise)), "red"))
        return lines
    lines.append(present.header(exercise, results))
    lines += present.failure_lines(exercise, results)
    if exercise.id in state.pristine:
        lines.append(Text(t("check.untouched", file=present.shown_file(exercise)), "dim"))
    if state.passes:
        lines += [Text(""), Text(t("watch.passed", exercise=exercise.id), "bold green")]
        lines.append(Text(t("next.compare", exercise=exercise.id)))
        upcoming = state.next_pending()
        if upcoming is None:
            soon = any(not e.available for e in state.course.exercises)
            lines.append(Text(t("next.last" if soon else "next.all_done"), "green"))
        else:
            title = present.note_title(upcoming.note)
            offer = t(
                "watch.offer_next",
                exercise=upcoming.id,
                title=upcoming.title,
                file=present.shown_file(upcoming),
                note=upcoming.note + (f" «{title}»" if title else ""),
            )
            lines.append(Text(offer, "bold green"))
    return lines


def _list_table(state: WatchState) -> Table:
    table = Table(title=t("watch.list_title"))
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column(t("report.exercise"), no_wrap=True)
    table.add_column(t("report.level"), justify="right", no_wrap=True)
    table.add_column(t("report.status"), no_wrap=True)
    table.add_column("", no_wrap=True)
    for exercise in state.course.exercises:
        if not exercise.available:
            status = f"[dim italic]{escape(t('status.coming_soon'))}[/dim italic]"
            table.add_row("-", exercise.id, str(exercise.level), status, "")
            continue
        if exercise.id in state.done:
            status = f"[green]{escape(t('watch.done'))}[/green]"
        else:
            status = f"[yellow]{escape(t('watch.pending'))}[/yellow]"
        here = (
            f"[bold cyan]{escape(t('watch.continue_here'))}[/bold cyan]"
            if exercise == state.current
            else ""
        )
        table.add_row(str(state.number(exercise)), exercise.id, str(exercise.level), status, here)
    return table


def render(console: Console, state: WatchState) -> None:
    """Draw the screen of ``state`` (the caller clears the terminal first)."""
    console.print(_progress_line(state))
    console.print()
    if state.mode is Mode.LIST:
        console.print(_list_table(state))
        console.print(Text(t("watch.list_pick"), "dim"), soft_wrap=True)
        if state.typed:
            console.print(Text(t("watch.typed", number=state.typed), "bold"))
    elif state.mode is Mode.SUMMARY and state.summary is not None:
        render_report(console, state.course, state.summary)
    else:
        for line in _exercise_lines(state):
            console.print(line, soft_wrap=True)
    if state.messages:
        console.print()
    for message in state.messages:
        console.print(message, soft_wrap=True)
    console.print()
    if state.mode is Mode.CONFIRM_RESET:
        question = t("watch.confirm_reset", file=present.shown_file(state.current))
        console.print(Text(question, "bold yellow"), soft_wrap=True)
    elif state.graded_at and state.mode is Mode.EXERCISE:
        watching = t(
            "watch.graded_at", time=state.graded_at, file=present.shown_file(state.current)
        )
        console.print(Text(watching, "dim"), soft_wrap=True)
    console.print(Text(t("watch.keys"), "dim"), soft_wrap=True)


def reveal_hint(state: WatchState) -> None:
    """``h``: reveal the next hint for the current exercise's first failing test, as
    `grader hint` does (remembered), and say it under the exercise."""
    exercise = state.current
    state.messages.clear()
    step = present.next_hint(exercise, state.results.get(exercise.id, []))
    if step is None:
        state.say(t("hint.passes", exercise=exercise.id), "green")
        return
    total, test = step.total, step.test
    if step.revealed is None:
        state.say(
            t("hint.none_left", exercise=exercise.id, total=total, note=exercise.note), "yellow"
        )
        return
    number, text = step.revealed
    state.say(t("hint.header", number=number, total=total, exercise=exercise.id, test=test), "bold")
    state.say(f"  {text}", "green")
    if number < total:
        state.say(t("watch.hint_again"), "dim")


@dataclass(frozen=True)
class Event:
    """What a thread tells the loop: keys typed, files saved, the end of stdin, an error."""

    kind: str  # "keys" | "files" | "eof" | "error"
    text: str = ""
    files: frozenset[Path] = frozenset()
    error: BaseException | None = None


def watched_folders(exercises: Sequence[Exercise]) -> list[Path]:
    """The level folders holding the exercises' files (watched with their subfolders);
    a level without a folder yet is left out (watchfiles refuses a missing path)."""
    folders = {paths.level_dir(e.level).resolve() for e in exercises}
    return sorted(folder for folder in folders if folder.is_dir())


class FileWatcher(threading.Thread):
    """Puts the paths saved in ``folders`` (resolved) into ``events`` until ``stop`` is set.

    ``ready`` is set once the folders are watched (watchfiles yields a first time), so a
    save after it is never missed."""

    def __init__(
        self, folders: Sequence[Path], events: queue.Queue[Event], stop: threading.Event
    ) -> None:
        super().__init__(name="grader-watch-files", daemon=True)
        self.folders = list(folders)
        self.events = events
        self.stop = stop
        self.ready = threading.Event()

    def run(self) -> None:
        """Watch until stopped; a failure is handed to the loop."""
        import watchfiles

        try:
            for changes in watchfiles.watch(
                *self.folders,
                debounce=DEBOUNCE_MS,
                rust_timeout=RUST_TIMEOUT_MS,
                yield_on_timeout=True,
                stop_event=self.stop,
                raise_interrupt=False,
            ):
                self.ready.set()
                if changes:
                    saved = frozenset(Path(path).resolve() for _, path in changes)
                    self.events.put(Event("files", files=saved))
        except Exception as error:  # the loop reports it in the main thread
            self.events.put(Event("error", error=error))
        finally:
            self.ready.set()


class KeyReader:
    """A terminal's stdin in cbreak mode (keys arrive one by one, not echoed), read by a
    thread into ``events``. The terminal's settings come back on exit, whatever the exit.

    The reader keeps its own descriptor of the terminal: while pytest grades in-process
    it points the descriptor 0 at /dev/null (its capture), which must not read as the
    end of the keys."""

    def __init__(self, stream: TextIO, events: queue.Queue[Event]) -> None:
        self.stream = stream
        self.events = events
        self.fd = -1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="grader-watch-keys", daemon=True)
        self._saved: list[Any] | None = None

    def __enter__(self) -> KeyReader:
        import termios
        import tty

        self.fd = os.dup(self.stream.fileno())
        try:
            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd, termios.TCSANOW)
        except BaseException:
            os.close(self.fd)
            raise
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        import termios

        self._stop.set()
        try:
            if self._saved is not None:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
        finally:
            self._thread.join(timeout=2)
            os.close(self.fd)

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.2)
                if not ready:
                    continue
                data = os.read(self.fd, 64)
            except OSError as error:
                if not self._stop.is_set():
                    self.events.put(Event("error", error=error))
                return
            if not data:
                self.events.put(Event("eof"))
                return
            self.events.put(Event("keys", text=data.decode("utf-8", errors="replace")))


def terminal_available(stdin: TextIO | None = None, stdout: TextIO | None = None) -> bool:
    """Whether the interactive watch can run: stdin and stdout are terminals (POSIX)."""
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    try:
        import termios  # noqa: F401  (POSIX only)
    except ImportError:
        return False
    return bool(stdin and stdin.isatty() and stdout and stdout.isatty())


class Session:
    """The interactive loop: events in, gradings and screens out, in the main thread."""

    def __init__(
        self,
        console: Console,
        course: Catalog,
        events: queue.Queue[Event],
        among: Sequence[Exercise] | None = None,
        runs: int | None = None,
    ) -> None:
        self.console = console
        self.course = course
        self.events = events
        self.among = among
        self.runs = runs
        self.by_file = {e.stub_path().resolve(): e for e in course.exercises if e.available}
        self.graded: dict[str, str | None] = {}  # exercise id -> digest of what was graded
        self.state: WatchState | None = None

    def begin(self) -> WatchState:
        """Grade the course (untouched stubs are not run), go to the first unfinished
        exercise and grade it."""
        pristine = [e.id for e in self.by_file.values() if is_pristine(e)]
        for exercise in self.by_file.values():
            if exercise.id not in pristine:
                self.graded[exercise.id] = content_key(exercise.stub_path())
        found = statuses(
            self.course, self._run(t("report.grading"), self.course.exercises, pristine)
        )
        self.state = WatchState.start(self.course, found, self.among)
        if self.state.current.id in pristine:  # its first real failure, not "not started"
            self.grade_current()
        else:
            self.state.graded_at = f"{datetime.now():%H:%M:%S}"
        return self.state

    def _run(
        self, label: str, exercises: Sequence[Exercise], not_run: Sequence[str] = ()
    ) -> list[TestResult]:
        """Grade (in this thread): ``label`` at once, the tests done / total after a second."""
        self.console.print(Text(label, "dim"))
        with live_progress(self.console, "") as shown:
            return run_suites(exercises, [variants.LEARNER], not_run=not_run, progress=shown)

    def draw(self) -> None:
        """Clear the terminal and draw the screen."""
        assert self.state is not None
        if self.console.is_terminal:
            self.console.clear()
        render(self.console, self.state)

    def grade_current(self) -> None:
        """Grade the current exercise (a missing file is said, not graded)."""
        assert self.state is not None
        exercise = self.state.current
        path = exercise.stub_path()
        self.graded[exercise.id] = content_key(path)
        if not path.is_file():
            self.state.results[exercise.id] = []
            self.state.done.discard(exercise.id)
            return
        try:
            results = self._run(t("check.grading", names=exercise.id), [exercise])
        except HarnessError as error:
            self.state.say(t("watch.harness_error", error=str(error)), "red")
            return
        self.state.record(exercise, results, is_pristine(exercise))

    def check_all(self) -> None:
        """``c``: grade every available exercise and show the progress table."""
        assert self.state is not None
        pristine = [e.id for e in self.by_file.values() if is_pristine(e)]
        try:
            results = self._run(t("report.grading"), self.course.exercises, pristine)
        except HarnessError as error:
            self.state.say(t("watch.harness_error", error=str(error)), "red")
            return
        for exercise in self.by_file.values():
            self.graded[exercise.id] = content_key(exercise.stub_path())
        found = statuses(self.course, results)
        self.state.record_statuses(found)
        self.state.summary = found
        self.state.mode = Mode.SUMMARY
        self.state.messages.clear()

    def reset(self) -> None:
        """``r`` then ``y``: the pristine stub over the current file (backed up), graded."""
        assert self.state is not None
        exercise = self.state.current
        self.state.messages.clear()
        if is_pristine(exercise):
            self.state.say(t("watch.reset_pristine", exercise=exercise.id), "yellow")
            return
        try:
            kept = backups.restore_stub(exercise)
        except HarnessError as error:
            self.state.say(t("watch.harness_error", error=str(error)), "red")
            return
        backup = paths.shown(kept) if kept is not None else "-"
        self.grade_current()
        self.state.say(
            t(
                "watch.reset_done",
                exercise=exercise.id,
                backup=backup,
                file=present.shown_file(exercise),
            ),
            "green",
        )

    def saved(self, files: frozenset[Path]) -> bool:
        """Files were saved: grade the current exercise if its file changed, else the
        first other exercise whose file changed (it becomes the current one). Whether
        something was graded."""
        assert self.state is not None
        changed = [
            e
            for path, e in self.by_file.items()
            if path in files and content_key(path) != self.graded.get(e.id, "")
        ]
        if not changed:
            return False
        exercise = self.state.current if self.state.current in changed else changed[0]
        if exercise != self.state.current:
            self.state.move_to(exercise)
        self.state.messages.clear()
        if self.state.mode is not Mode.CONFIRM_RESET:
            self.state.mode = Mode.EXERCISE
        self.grade_current()
        return True

    def act(self, action: Action) -> None:
        """Do what a key asked for."""
        assert self.state is not None
        if action is Action.GRADE:
            self.grade_current()
        elif action is Action.HINT:
            if self.state.current.id not in self.state.results:
                self.grade_current()
            reveal_hint(self.state)
        elif action is Action.CHECK_ALL:
            self.check_all()
        elif action is Action.RESET:
            self.reset()

    def loop(self) -> None:
        """Until ``q`` (or the end of stdin, or ``runs`` gradings after saves)."""
        self.draw()
        gradings = 0
        while True:
            try:
                event = self.events.get(timeout=0.5)
            except queue.Empty:
                continue
            if event.kind == "error" and event.error is not None:
                raise event.error
            if event.kind == "eof":
                return
            if event.kind == "files":
                if self.saved(event.files):
                    self.draw()
                    gradings += 1
                    if self.runs is not None and gradings >= self.runs:
                        return
                continue
            redraw = False
            for key in event.text:
                action = self.state.press(key) if self.state is not None else Action.QUIT
                if action is Action.QUIT:
                    return
                self.act(action)
                redraw = redraw or action is not Action.NONE
            if redraw:
                self.draw()


def interactive(
    console: Console,
    course: Catalog,
    among: Sequence[Exercise] | None = None,
    runs: int | None = None,
    stdin: TextIO | None = None,
) -> None:
    """The watch on a terminal: keys and saves until ``q`` or Ctrl+C."""
    events: queue.Queue[Event] = queue.Queue()
    session = Session(console, course, events, among, runs)
    stop = threading.Event()
    watcher = FileWatcher(watched_folders(list(session.by_file.values())), events, stop)
    watcher.start()
    try:
        if not watcher.ready.wait(READY_TIMEOUT_S):
            logger.warning("the file watcher did not start within %s s", READY_TIMEOUT_S)
        with KeyReader(stdin or sys.stdin, events), contextlib.suppress(KeyboardInterrupt):
            session.begin()
            session.loop()
    finally:
        stop.set()
        watcher.join(timeout=5)
    console.print(Text(t("watch.bye"), "dim"), soft_wrap=True)


def plain(
    console: Console,
    course: Catalog,
    chosen: Sequence[Exercise] | None = None,
    runs: int | None = None,
) -> None:
    """The watch without a terminal: each save re-grades its exercise, printed below the
    last grading (the chosen exercises are graded at once)."""
    import watchfiles

    watched = list(chosen) if chosen else [e for e in course.exercises if e.available]
    by_file = {e.stub_path().resolve(): e for e in watched}
    console.print(t("watch.watching", count=len(by_file)))
    if chosen:
        _print_graded(console, course, watched)
    done = 0
    ready = False
    with contextlib.suppress(KeyboardInterrupt):
        for changes in watchfiles.watch(
            *watched_folders(watched),
            debounce=DEBOUNCE_MS,
            rust_timeout=RUST_TIMEOUT_MS,
            yield_on_timeout=True,
            raise_interrupt=False,
        ):
            if not ready:
                console.print(t("watch.waiting"))
                ready = True
            files = sorted({Path(change[1]).resolve() for change in changes})
            changed = [by_file[path] for path in files if path in by_file]
            if not changed:
                continue
            console.rule(f"{datetime.now():%H:%M:%S} {', '.join(e.id for e in changed)}")
            _print_graded(console, course, changed)
            done += 1
            if runs is not None and done >= runs:
                break


def _print_graded(console: Console, course: Catalog, chosen: Sequence[Exercise]) -> None:
    results = run_suites(chosen, [variants.LEARNER])
    pristine = [e.id for e in chosen if is_pristine(e)]
    present.print_exercises(console, course, chosen, results, pristine)


def main(
    console: Console,
    course: Catalog,
    chosen: Sequence[Exercise] | None = None,
    runs: int | None = None,
) -> None:
    """`grader watch [EXERCISE]`: interactive on a terminal, plain otherwise."""
    if terminal_available():
        interactive(console, course, chosen, runs)
    else:
        plain(console, course, chosen, runs)
