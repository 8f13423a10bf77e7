"""What a learner reads from `grader check`, `hint` and `compare` (issue 10, "Feedback").

Graded in-process through Click's CliRunner, on a copy of the pristine level-1 tree whose
simple_timer file is the case at hand; the hint state goes to a temporary folder.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from grader import cli, paths
from grader.catalog import catalog
from grader.results import TestResult as Graded  # not a test class
from grader.variants import mutants_for

pytestmark = pytest.mark.timeout(90)
EXERCISE = catalog().exercise("simple_timer")
SOLUTION = EXERCISE.solution_path().read_text(encoding="utf-8")


def mutant(name: str) -> str:
    """The solution with one of simple_timer's known bugs."""
    found = next(m for m in mutants_for(EXERCISE) if m.name == name)
    return found.apply(SOLUTION)


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CRONKATA_LANG", "en")
    monkeypatch.setenv("COLUMNS", "200")
    yield
    i18n = sys.modules.get("grader.i18n")  # --lang is remembered by the process
    if i18n is not None:
        i18n.set_language(None)


@pytest.fixture
def learner(
    tmp_path: Path, pristine_exercises: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str | None], Path]:
    """Point the grader at a level-1 tree whose simple_timer file is ``source``."""
    monkeypatch.setattr(paths, "STATE_DIR", tmp_path / "state")

    def make(source: str | None) -> Path:
        root = tmp_path / "exercises"
        if root.exists():
            shutil.rmtree(root)
        shutil.copytree(pristine_exercises / "level1", root / "level1")
        if source is not None:
            (root / "level1" / EXERCISE.file).write_text(source, encoding="utf-8")
        monkeypatch.setattr(paths, "EXERCISES_DIR", root)
        return root

    return make


def grader(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli.cli, list(args), env=env, catch_exceptions=False)


def test_a_stub_reports_its_first_failure_once_and_the_rest_by_name(learner) -> None:
    learner(None)
    done = grader("check", "simple_timer")
    assert done.exit_code == 1, done.output
    text = done.output
    assert text.count("Not implemented yet") == 1, text
    assert text.count(", the first failing test") == 1
    assert re.search(r"and \d+ more failing test\(s\): test_\w+", text), text
    assert "test_heartbeat_runs_every_5_seconds_from_start" in text  # named, not repeated
    assert text.count("read: notes/") == 1
    assert text.count("\n") < 25, text


def test_a_syntax_error_is_printed_once_without_the_tests_hints(learner) -> None:
    learner(SOLUTION.replace("def build_scheduler()", "def build_scheduler(", 1))
    done = grader("check", "simple_timer")
    assert done.exit_code == 1, done.output
    text = done.output
    assert text.count("SyntaxError") == 1, text
    assert "cannot be loaded, so all" in text
    assert "hint" not in text.lower(), text


def test_a_missing_build_scheduler_is_not_reported_for_every_test(learner) -> None:
    source = SOLUTION.replace("def build_scheduler()", "def _build_scheduler()", 1)
    learner(source.replace("scheduler = build_scheduler()", "scheduler = _build_scheduler()"))
    done = grader("check", "simple_timer")
    assert done.exit_code == 1, done.output
    text = done.output
    assert text.count("has no attribute 'build_scheduler'") == 1, text
    assert "the same error also fails" in text


def test_minutes_instead_of_seconds_names_the_learners_first_run(learner) -> None:
    learner(mutant("interval_in_minutes"))
    text = grader("check", "simple_timer").output
    assert "your first run:     Mon 2026-03-02 09:05:00+0800 (+5 min), after the window" in text
    assert "legend: <> marks a row where your run differs" in text
    assert len([line for line in text.splitlines() if line.strip().startswith("<>")]) <= 5


def test_log_checks_look_at_the_learners_records_and_quote_a_few(learner) -> None:
    """A library logging meanwhile is not the learner's fault; ten records are not a page."""
    noisy = SOLUTION.replace(
        '    logger.info("heartbeat")\n',
        '    logger.info("heartbeat")\n'
        '    BackgroundScheduler().add_job(print, "interval", seconds=1)  # APScheduler logs\n',
        1,
    ).replace(
        '    logger.info("one-shot job ran")\n',
        '    for number in range(10):\n        logger.info("one-shot job ran %s", number)\n',
        1,
    )
    learner(noisy)
    text = grader("check", "simple_timer", "--verbose").output
    assert "PASS simple_timer :: test_heartbeat_logs_one_info_record" in text, text
    assert "PASS simple_timer :: test_heartbeat_logs_with_the_module_logger" in text
    assert "one_shot() should log exactly one record; it logged 10:" in text
    assert "INFO __name__: one-shot job ran 0" in text and "... and 7 more" in text
    assert "one-shot job ran 5" not in text and "apscheduler" not in text.lower()


def test_hints_come_on_request_one_at_a_time_and_are_remembered(learner, tmp_path) -> None:
    learner(mutant("interval_in_minutes"))
    test_hint = "IntervalTrigger(seconds=HEARTBEAT_SECONDS) fires at start + 5 s, + 10 s, ..."
    text = grader("check", "simple_timer").output
    assert test_hint not in text and "hint: " not in text
    assert "stuck? `python3 -m grader hint simple_timer` reveals a hint (0 of" in text

    first = grader("hint", "simple_timer")
    assert first.exit_code == 0, first.output
    assert "hint 1 of" in first.output and test_hint in first.output
    assert "test_heartbeat_runs_every_5_seconds_from_start" in first.output
    second = grader("hint", "simple_timer").output
    assert "hint 2 of" in second and EXERCISE.hints[0] in second
    assert (tmp_path / "state" / "hints.json").is_file()

    text = grader("check", "simple_timer").output
    assert f"hint: {test_hint}" in text
    assert "(2 of" in text


def test_compare_shows_the_solution_only_after_a_pass_or_with_force(learner) -> None:
    learner(None)
    held = grader("compare", "simple_timer")
    assert held.exit_code == 0, held.output
    assert "+++ solutions/level1_simple_timer.py" not in held.output
    assert "shown once simple_timer passes" in held.output and "--force" in held.output
    assert "test_heartbeat_runs_every_5_seconds_from_start" in held.output  # the outcomes
    forced = grader("compare", "simple_timer", "--force").output
    assert "+++ solutions/level1_simple_timer.py" in forced
    assert "warning: simple_timer does not pass yet" in forced


def test_compare_shows_the_diff_without_a_warning_once_the_exercise_passes(
    learner, monkeypatch: pytest.MonkeyPatch
) -> None:
    learner(SOLUTION)

    def all_pass(chosen: list, kinds: tuple[str, ...] = ()) -> list[Graded]:
        return [Graded("simple_timer", kind, "test_a") for kind in kinds]

    monkeypatch.setattr(cli, "_grade", all_pass)  # a pass, without depending on timing
    passed = grader("compare", "simple_timer").output
    assert "warning" not in passed and "(identical)" in passed, passed
    assert "shown once" not in passed


def test_a_pass_names_the_next_exercise_its_file_and_note(learner) -> None:
    learner(SOLUTION)
    done = grader("check", "simple_timer")
    assert done.exit_code == 0, done.output
    following = catalog().exercise("apscheduler_config")
    assert "simple_timer: passed" in done.output
    assert f"Next: {following.id}" in done.output
    assert f"exercises/level1/{following.file}" in done.output
    assert f"notes/{following.note}" in done.output


def test_the_chrome_follows_the_locale_or_lang(learner) -> None:
    learner(SOLUTION.replace("def build_scheduler()", "def build_scheduler(", 1))
    by_locale = grader("check", "simple_timer", env={"CRONKATA_LANG": "", "LANG": "zh_CN.UTF-8"})
    assert "无法加载" in by_locale.output and "阅读：notes/" in by_locale.output
    assert "SyntaxError" in by_locale.output  # the test's message stays English
    by_option = grader("check", "simple_timer", "--lang", "zh")
    assert "无法加载" in by_option.output
    on_the_group = grader("--lang", "zh", "check", "simple_timer")
    assert "无法加载" in on_the_group.output
    english = grader("check", "simple_timer", "--lang", "en")
    assert "cannot be loaded" in english.output


def test_watch_prints_the_same_digest_on_each_save(learner, monkeypatch) -> None:
    root = learner(mutant("interval_in_minutes"))
    saved = (root / "level1" / EXERCISE.file).resolve()

    def one_save(*folders: str, **options: object) -> Iterator[set[tuple[int, str]]]:
        yield {(2, str(saved))}

    monkeypatch.setattr("watchfiles.watch", one_save)
    done = grader("watch", "simple_timer", "--runs", "1")
    assert done.exit_code == 0, done.output
    assert done.output.count(", the first failing test") == 2  # at start, then after the save
    assert done.output.count("your first run:") == 2
    assert "and 1 more failing test(s)" in done.output
