"""How `grader report` and `grader check` print (issue 10, "Commands and output").

Copy-pastable commands never wrap (80 columns, not a terminal, or a terminal of 80
columns), "Next:" stands apart from the progress bar, and a planned exercise says when
it comes. What is graded is made up here (Click's runner, `run_suites` replaced) except
on the terminal, where a real `grader report` runs on a pty.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.cells import cell_len
from rich.console import Console

from grader import cli, i18n, paths, report
from grader.catalog import CatalogError, Exercise, catalog, load_catalog
from grader.results import TestResult as Graded  # not a test class

pytestmark = pytest.mark.timeout(120)
COURSE = catalog()
IDS = {e.id for e in COURSE.exercises} | {f"level{lv.number}" for lv in COURSE.levels}
SUBCOMMANDS = {"check", "compare", "hint", "watch", "report", "reset", "restore", "verify"}
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


@pytest.fixture(autouse=True)
def _english_at_80(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CRONKATA_LANG", "en")
    monkeypatch.setattr(paths, "STATE_DIR", tmp_path / "state")
    # The CLI's console as a pipe gets it: not a terminal, 80 columns.
    monkeypatch.setattr(cli, "console", Console(highlight=False, width=80))
    yield
    i18n.set_language(None)


def failing(exercise: str, count: int = 3) -> list[Graded]:
    return [
        Graded(exercise, "learner", f"test_behaviour_number_{i}", "failed", "expected 1, got 0")
        for i in range(count)
    ]


def passing(exercise: str, count: int = 3) -> list[Graded]:
    return [Graded(exercise, "learner", f"test_{i}", "passed") for i in range(count)]


def commands_are_whole(text: str, width: int = 80) -> None:
    """Each line with a command fits ``width`` (nothing wraps it); each `python3 -m grader`
    on a line has its subcommand and a whole exercise id or level after it, on that line;
    so has each `pytest`."""
    for line in text.splitlines():
        if re.search(r"python3|(?<![\w-])pytest(?![\w-])", line):
            assert cell_len(line) <= width, f"wider than {width}: {line!r}"
        for found in re.finditer(r"python3 -m grader\b(.*)", line):
            words = found.group(1).split()
            assert words and words[0] in SUBCOMMANDS, f"cut command: {line!r}"
            if words[0] not in ("report", "verify"):
                assert len(words) > 1, f"cut command: {line!r}"
                assert words[1].strip("`.,;:)") in IDS, f"cut exercise id: {line!r}"
        for found in re.finditer(r"(?<![\w-])pytest(?![\w-])(.*)", line):
            assert found.group(1).strip(), f"cut pytest command: {line!r}"
        assert not line.rstrip().endswith(("python3", "python3 -m", "-m grader"))


def grader(*args: str) -> str:
    done = CliRunner().invoke(cli.cli, list(args), catch_exceptions=False)
    return done.output


def _report_with(monkeypatch: pytest.MonkeyPatch, results: list[Graded]) -> str:
    monkeypatch.setattr(cli, "run_suites", lambda *args, **kwargs: results)
    monkeypatch.setattr(cli, "is_pristine", lambda exercise: False)
    monkeypatch.setattr(report, "is_pristine", lambda exercise: False)
    return grader("report")


def _bar_then_next(text: str) -> None:
    lines = text.splitlines()
    bar = next(i for i, line in enumerate(lines) if "█" in line or "░" in line)
    assert lines[bar].strip().endswith("%"), lines[bar]
    assert lines[bar + 1].strip() == "", "a blank line between the bar and the next step"
    assert lines[bar + 2].startswith("Next: "), lines[bar + 2]


def test_report_at_80_columns_keeps_commands_whole_and_next_apart_from_the_bar(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    results = [*failing("simple_timer"), *passing("apscheduler_config")]
    text = _report_with(monkeypatch, results)
    commands_are_whole(text)
    _bar_then_next(text)
    assert "python3 -m grader check simple_timer" in text
    assert "details: python3 -m grader check simple_timer" in text
    assert "simple_timer: 3 failing test(s); the first: test_behaviour_number_0" in text


def test_report_in_chinese_keeps_commands_whole_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRONKATA_LANG", "zh")
    text = _report_with(monkeypatch, failing("simple_timer"))
    commands_are_whole(text)
    assert "下一步：" in text and "python3 -m grader check simple_timer" in text


def test_check_at_80_columns_keeps_the_hint_command_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    longest = max((e for e in COURSE.exercises if e.available), key=lambda e: len(e.id))
    monkeypatch.setattr(cli, "_grade", lambda chosen, kinds=(): failing(longest.id))
    text = grader("check", longest.id)
    commands_are_whole(text)
    assert f"`python3 -m grader hint {longest.id}`" in text


def test_after_a_pass_the_next_step_commands_stay_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_grade", lambda chosen, kinds=(): passing("simple_timer"))
    text = grader("check", "simple_timer")
    commands_are_whole(text)
    following = COURSE.exercise("apscheduler_config")
    assert "python3 -m grader compare simple_timer" in text
    assert f"python3 -m grader check {following.id}" in text
    assert f"Next: {following.id}" in text


def test_report_on_an_80_column_terminal_keeps_commands_whole(pristine_exercises: Path) -> None:
    from tests.test_progress import on_a_terminal

    screen = on_a_terminal(["report"], {"CRONKATA_EXERCISES_DIR": str(pristine_exercises)})
    text = ANSI.sub("", screen.rsplit("\x1b[?25h", 1)[-1])  # after the (erased) live display
    assert "Next: edit exercises/level1/level1_simple_timer.py" in text
    commands_are_whole(text)
    _bar_then_next(text)


# -- planned exercises --------------------------------------------------------------------

PLANNED_ENTRY = """
[[level]]
number = 5
title = "Capstone"
notes = ["07e_best_practices.md"]

[[exercise]]
id = "capstone"
level = 5
title = "A capstone project"
file = "level5_capstone.py"
note = "07e_best_practices.md#exercises"
planned = "level 5, in a later course release"
"""


@pytest.fixture
def planned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Exercise:
    """The course's catalog plus one planned exercise (the real course may have none)."""
    path = tmp_path / "catalog.toml"
    path.write_text(paths.CATALOG_FILE.read_text(encoding="utf-8") + PLANNED_ENTRY)
    course = load_catalog(path)
    monkeypatch.setattr(cli, "catalog", lambda: course)
    return course.exercise("capstone")


def test_every_planned_exercise_says_when_it_comes() -> None:
    for exercise in COURSE.exercises:
        if not exercise.available:
            assert exercise.planned and exercise.planned.strip(), exercise.id


def test_the_catalog_checks_the_planned_field(tmp_path: Path) -> None:
    head = '[[level]]\nnumber = 1\ntitle = "One"\n'
    entry = '[[exercise]]\nid = "a"\nlevel = 1\ntitle = "A"\nfile = "a.py"\nnote = "n.md"\n'
    path = tmp_path / "catalog.toml"
    path.write_text(head + entry + 'planned = "level 1, in the next release"\n')
    assert load_catalog(path).exercise("a").planned == "level 1, in the next release"
    bad = {
        'planned = ""\n': "must say when it comes",
        "planned = 4\n": "must say when it comes",
        'planned = "one\\ntwo"\n': "one line",
        'suite = "level1/test_a.py"\nplanned = "later"\n': "has a suite",
    }
    for body, reason in bad.items():
        path.write_text(head + entry + body)
        with pytest.raises(CatalogError, match=reason):
            load_catalog(path)


def test_check_of_a_planned_exercise_says_when_it_is_planned(planned: Exercise) -> None:
    done = CliRunner().invoke(cli.cli, ["check", planned.id], catch_exceptions=False)
    assert done.exit_code == 1
    flat = " ".join(done.output.split())
    assert f"{planned.id} ({planned.title}) is not available yet" in flat
    assert f"planned for {planned.planned}" in flat
    assert "--help" not in done.output


def test_check_of_a_planned_exercise_through_main_is_not_a_usage_error(
    planned: Exercise, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["check", f"level{planned.level}"])
    assert exit_info.value.code == 1
    captured = capsys.readouterr()
    assert "--help" not in captured.out + captured.err
    assert planned.planned is not None and planned.planned.split()[0] in captured.out


def test_report_says_when_a_planned_exercise_comes(
    planned: Exercise, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = " ".join(_report_with(monkeypatch, failing("simple_timer")).split())
    assert f"coming soon: {planned.id}, planned for {planned.planned}" in text
