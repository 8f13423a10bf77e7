"""The interactive watch without a terminal: its state, its screens, its threads.

`WatchState` is pure (keys in, actions out), `render` draws it into a recording console,
`Session` is driven with a fake grading, and the two threads (keys, files) are tried on a
pseudo-terminal and a temporary folder. The whole watch in a real terminal is in
test_watch_pty.py.
"""

from __future__ import annotations

import io
import os
import queue
import shutil
import termios
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from grader import hints, i18n, paths, watch
from grader.catalog import Exercise, catalog, git_blob_sha
from grader.report import ExerciseStatus
from grader.results import TestResult as Result  # not a test class
from grader.watch import Action, Event, Mode, WatchState

pytestmark = pytest.mark.timeout(60)
COURSE = catalog()
AVAILABLE = [e for e in COURSE.exercises if e.available]
FIRST, SECOND, THIRD = AVAILABLE[:3]


@pytest.fixture(autouse=True)
def _tree(
    tmp_path: Path, pristine_exercises: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A copy of the pristine exercises, a fresh state folder, English chrome."""
    root = tmp_path / "exercises"
    shutil.copytree(pristine_exercises, root)
    monkeypatch.setattr(paths, "EXERCISES_DIR", root)
    monkeypatch.setattr(paths, "STATE_DIR", tmp_path / "state")
    i18n.set_language("en")
    yield root
    i18n.set_language(None)


def result(
    exercise: Exercise, name: str = "test_it", outcome: str = "failed", **kw: object
) -> Result:
    message = "AssertionError: expected 5 s between runs, got 5 min" if outcome != "passed" else ""
    values: dict = {"message": message, "note": exercise.note}
    values.update(kw)
    return Result(exercise=exercise.id, variant="learner", name=name, outcome=outcome, **values)


def status(exercise: Exercise, passed: bool) -> ExerciseStatus:
    """A graded, edited exercise (its file exists in the tree)."""
    outcome = "passed" if passed else "failed"
    return ExerciseStatus(exercise, [result(exercise, outcome=outcome)], pristine=False)


def course_state(done: tuple[Exercise, ...] = (), current: Exercise | None = None) -> WatchState:
    found = [status(e, e in done) for e in AVAILABLE]
    state = WatchState.start(COURSE, found)
    if current is not None:
        state.move_to(current)
    return state


def screen(state: WatchState, width: int = 160) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    watch.render(console, state)
    return console.export_text()


# -- the state: where the watch starts, what each key does ----------------------------


def test_the_watch_starts_at_the_first_unfinished_exercise() -> None:
    state = course_state(done=(FIRST,))
    assert state.current == SECOND
    assert state.progress() == (1, len(AVAILABLE))
    assert state.done == {FIRST.id}


def test_the_watch_starts_at_the_named_exercise_when_it_is_unfinished() -> None:
    found = [status(e, False) for e in AVAILABLE]
    assert WatchState.start(COURSE, found, among=[THIRD]).current == THIRD


def test_when_everything_passes_the_watch_stays_on_the_last_exercise() -> None:
    state = course_state(done=tuple(AVAILABLE))
    assert state.current == AVAILABLE[-1] and state.passes
    assert state.press("n") is Action.REDRAW
    assert "no other exercise is unfinished" in screen(state)


def test_n_moves_to_the_next_unfinished_exercise_and_grades_it() -> None:
    state = course_state(done=(FIRST, SECOND), current=FIRST)
    state.say("an old message")
    assert state.press("n") is Action.GRADE
    assert state.current == THIRD  # SECOND is done: skipped
    assert state.messages == []


def test_n_wraps_around_to_an_earlier_unfinished_exercise() -> None:
    state = course_state(done=tuple(AVAILABLE[1:]), current=AVAILABLE[-1])
    assert state.press("n") is Action.GRADE
    assert state.current == FIRST


@pytest.mark.parametrize(
    ("key", "action"),
    [("h", Action.HINT), ("c", Action.CHECK_ALL), ("q", Action.QUIT), ("\x04", Action.QUIT)],
)
def test_keys_of_the_exercise_screen(key: str, action: Action) -> None:
    state = course_state()
    assert state.press(key) is action
    assert state.current == FIRST


def test_r_asks_first_and_only_y_resets() -> None:
    state = course_state()
    assert state.press("r") is Action.REDRAW and state.mode is Mode.CONFIRM_RESET
    assert "[y/N]" in screen(state)
    assert state.press("n") is Action.REDRAW  # n answers the question: it does not move
    assert state.mode is Mode.EXERCISE and state.current == FIRST
    assert "nothing reset" in screen(state)
    state.press("r")
    assert state.press("\r") is Action.REDRAW and state.mode is Mode.EXERCISE  # default: no
    state.press("r")
    assert state.press("y") is Action.RESET


def test_l_lists_and_a_number_then_enter_picks_an_exercise() -> None:
    state = course_state()
    assert state.press("l") is Action.REDRAW and state.mode is Mode.LIST
    assert state.press("3") is Action.REDRAW
    assert "go to number: 3" in screen(state)
    assert state.press("\r") is Action.GRADE
    assert state.current == THIRD and state.mode is Mode.EXERCISE


def test_the_list_ignores_a_number_out_of_range_and_esc_goes_back() -> None:
    state = course_state()
    state.press("l")
    for key in "99\r":
        state.press(key)
    assert state.current == FIRST and state.mode is Mode.LIST
    assert "no exercise has the number 99" in screen(state)
    state.press("1")
    state.press("\x7f")  # backspace
    assert state.typed == ""
    assert state.press("\x1b") is Action.REDRAW and state.mode is Mode.EXERCISE


def test_another_key_in_the_list_leaves_it_and_acts() -> None:
    state = course_state()
    state.press("l")
    assert state.press("n") is Action.GRADE and state.current == SECOND
    state.press("l")
    assert state.press("q") is Action.QUIT


# -- the screens ---------------------------------------------------------------------


def test_the_exercise_screen_shows_progress_file_note_first_failure_and_keys() -> None:
    state = course_state(done=(FIRST,))
    other = result(SECOND, "test_b", message="AssertionError: another cause")
    state.record(SECOND, [result(SECOND, "test_a"), other], pristine=False)
    text = screen(state)
    assert f"1/{len(AVAILABLE)} exercises done" in text
    assert f"exercise 2/{len(AVAILABLE)}: {SECOND.id} ({SECOND.title})" in text
    assert f"edit: exercises/level{SECOND.level}/{SECOND.file}" in text
    assert f"read: notes/{SECOND.note}" in text
    assert f"FAIL {SECOND.id} :: test_a (1 pt), the first failing test" in text
    assert "expected 5 s between runs" in text
    assert "and 1 more failing test(s): test_b" in text
    assert "keys: n next · h hint · l list · c check all · r reset · q quit" in text
    assert "passes!" not in text


def test_a_pass_says_so_and_offers_n_for_the_next_exercise() -> None:
    state = course_state()
    state.record(FIRST, [result(FIRST, outcome="passed")], pristine=False)
    text = screen(state)
    assert f"{FIRST.id} passes!" in text
    assert f"Next: {SECOND.id} ({SECOND.title}): exercises/level1/{SECOND.file}" in text
    assert "Press n to go there." in text
    assert f"python3 -m grader compare {FIRST.id}" in text
    assert f"1/{len(AVAILABLE)} exercises done" in text


def test_a_pristine_stub_is_said_to_be_untouched() -> None:
    state = course_state()
    state.record(FIRST, [result(FIRST)], pristine=True)
    assert f"exercises/level1/{FIRST.file} is still the untouched stub." in screen(state)
    assert FIRST.id not in state.done


def test_the_list_shows_done_pending_and_continue_here() -> None:
    state = course_state(done=(FIRST,))
    state.press("l")
    lines = screen(state).splitlines()
    row = {e.id: next(line for line in lines if f" {e.id} " in line) for e in COURSE.exercises}
    assert "done" in row[FIRST.id] and "continue here" not in row[FIRST.id]
    assert "pending" in row[SECOND.id] and "<- continue here" in row[SECOND.id]
    assert "pending" in row[THIRD.id] and "continue here" not in row[THIRD.id]
    soon = [e for e in COURSE.exercises if not e.available]
    assert all("coming soon" in row[e.id] for e in soon)
    assert "type an exercise's number and Enter" in "\n".join(lines)


def test_the_screen_is_in_chinese_with_lang_zh() -> None:
    state = course_state()
    state.record(FIRST, [result(FIRST, outcome="passed")], pristine=False)
    i18n.set_language("zh")
    text = screen(state)
    assert "已完成 1/" in text and "全部通过！" in text and "按 n 进入" in text
    assert "按键：n 下一个" in text
    state.press("l")
    assert "从这里继续" in screen(state)


# -- hints ---------------------------------------------------------------------------


def test_h_reveals_the_next_hint_one_at_a_time_and_remembers_it() -> None:
    state = course_state()
    state.record(FIRST, [result(FIRST, hint="the test's own hint")], pristine=False)
    watch.reveal_hint(state)
    text = screen(state)
    assert f"hint 1 of {1 + len(FIRST.hints)} for {FIRST.id} (first failing test: test_it)" in text
    assert "the test's own hint" in text and "press h again" in text
    assert hints.revealed(FIRST.id) == ["the test's own hint"]
    watch.reveal_hint(state)
    assert hints.revealed(FIRST.id)[1] == FIRST.hints[0].strip()
    assert f"hint 2 of {1 + len(FIRST.hints)}" in screen(state)


def test_h_on_a_passing_exercise_needs_no_hint() -> None:
    state = course_state()
    state.record(FIRST, [result(FIRST, outcome="passed")], pristine=False)
    watch.reveal_hint(state)
    assert f"{FIRST.id} passes: no hint needed" in screen(state)
    assert hints.revealed(FIRST.id) == []


# -- the session, with a fake grading ------------------------------------------------


class FakeGrading:
    """Stands for run_suites: every exercise fails, except those in ``passing``."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.passing: set[str] = set()

    def __call__(self, exercises, kinds, not_run=(), **options: object) -> list[Result]:
        chosen = [e for e in exercises if e.available]
        self.calls.append([e.id for e in chosen if e.id not in set(not_run)])
        return [result(e, outcome="passed" if e.id in self.passing else "failed") for e in chosen]


@pytest.fixture
def grading(monkeypatch: pytest.MonkeyPatch) -> FakeGrading:
    fake = FakeGrading()
    monkeypatch.setattr(watch, "run_suites", fake)
    return fake


def session() -> watch.Session:
    console = Console(width=160, record=True, file=io.StringIO())
    return watch.Session(console, COURSE, queue.Queue())


def save(path: Path, text: str) -> None:
    """Save as editors that write a temporary file and rename it over the original do."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def test_the_session_grades_the_course_then_the_untouched_current_exercise(grading) -> None:
    run = session()
    state = run.begin()
    assert state.current == FIRST
    assert grading.calls == [[], [FIRST.id]]  # untouched stubs are not run, then FIRST is


def test_a_save_grades_the_current_exercise_once_per_change(grading) -> None:
    run = session()
    state = run.begin()
    path = FIRST.stub_path().resolve()
    grading.passing.add(FIRST.id)
    save(path, "def build_scheduler(): ...\n")
    assert run.saved(frozenset({path}))
    assert state.passes and f"{FIRST.id} passes!" in screen(state)
    assert not run.saved(frozenset({path}))  # the same content again: not graded twice
    assert len(grading.calls) == 3


def test_a_save_of_another_exercise_makes_it_the_current_one(grading) -> None:
    run = session()
    state = run.begin()
    other = THIRD.stub_path().resolve()
    save(other, "# started\n")
    assert not run.saved(frozenset({Path("/elsewhere/x.py")}))
    assert run.saved(frozenset({other}))
    assert state.current == THIRD and grading.calls[-1] == [THIRD.id]


def test_a_missing_file_is_said_not_graded(grading) -> None:
    run = session()
    state = run.begin()
    path = FIRST.stub_path()
    path.unlink()
    assert run.saved(frozenset({path.resolve()}))
    assert len(grading.calls) == 2
    assert "does not exist: save it to grade it" in screen(state)


def test_c_grades_every_exercise_and_shows_the_summary(grading) -> None:
    run = session()
    state = run.begin()
    save(SECOND.stub_path(), "# edited\n")
    grading.passing.add(SECOND.id)
    run.act(state.press("c"))
    assert grading.calls[-1] == [SECOND.id]  # the untouched stubs are counted, not run
    assert state.mode is Mode.SUMMARY and state.done == {SECOND.id}
    text = screen(state)
    assert "Overall: 1/" in text and "cronkata progress" in text
    assert state.press("h") is Action.HINT and state.mode is Mode.EXERCISE


def test_r_then_y_restores_the_stub_keeps_a_backup_and_grades(grading) -> None:
    run = session()
    state = run.begin()
    path = FIRST.stub_path()
    save(path, "# my attempt\n")
    run.saved(frozenset({path.resolve()}))
    state.press("r")
    run.act(state.press("y"))
    assert git_blob_sha(path.read_bytes()) == FIRST.stub_blob
    kept = list((paths.STATE_DIR / "backups").rglob(FIRST.file))
    assert [p.read_text() for p in kept] == ["# my attempt\n"]
    assert "is the pristine stub again" in screen(state)
    assert not run.saved(frozenset({path.resolve()}))  # its own write is not graded again
    state.press("r")
    run.act(state.press("y"))
    assert "already the pristine stub" in screen(state)


# -- the threads ---------------------------------------------------------------------


def test_the_key_reader_sets_cbreak_reads_keys_and_restores_the_terminal() -> None:
    master, slave = os.openpty()
    stream = os.fdopen(slave, "r")
    try:
        before = termios.tcgetattr(slave)
        events: queue.Queue[Event] = queue.Queue()
        with pytest.raises(RuntimeError), watch.KeyReader(stream, events):
            mode = termios.tcgetattr(slave)
            assert not mode[3] & (termios.ICANON | termios.ECHO)
            # pytest's capture points descriptor 0 at /dev/null while it grades: not an EOF
            saved = os.dup(slave)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, slave)
            os.write(master, b"n")
            assert events.get(timeout=10) == Event("keys", text="n")
            os.dup2(saved, slave)
            os.close(null)
            os.close(saved)
            raise RuntimeError("an error inside the watch")
        assert termios.tcgetattr(slave) == before
    finally:
        stream.close()
        os.close(master)


def test_the_file_watcher_sees_a_save_by_rename_at_its_resolved_path(tmp_path: Path) -> None:
    folder = tmp_path / "level1"
    folder.mkdir()
    target = folder / "level1_simple_timer.py"
    target.write_text("# before\n")
    events: queue.Queue[Event] = queue.Queue()
    stop = threading.Event()
    watcher = watch.FileWatcher([folder], events, stop)
    watcher.start()
    try:
        assert watcher.ready.wait(30)
        save(target, "# after\n")
        seen: set[Path] = set()
        while target.resolve() not in seen:
            event = events.get(timeout=30)
            assert event.kind == "files", event
            seen |= event.files
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert not watcher.is_alive()


def test_only_level_folders_that_exist_are_watched(_tree: Path) -> None:
    shutil.rmtree(_tree / "level2")
    folders = watch.watched_folders(AVAILABLE)
    assert (_tree / "level1").resolve() in folders
    assert all(folder.is_dir() for folder in folders) and len(folders) >= 1


def test_without_a_terminal_the_watch_is_plain() -> None:
    assert not watch.terminal_available(io.StringIO(), io.StringIO())
