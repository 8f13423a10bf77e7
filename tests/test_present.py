"""What check, watch and report print about failures: one root cause, one message."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from grader import hints, i18n, paths, present
from grader.catalog import catalog
from grader.report import render, statuses
from grader.results import TestResult as Result  # not a test class

EXERCISE = catalog().exercise("simple_timer")
GUIDANCE = "\n\npromise: (#x) in the stub's docstrings\nread: notes/x.md#y\nhint: the answer"


@pytest.fixture(autouse=True)
def _english_and_no_hints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(paths, "STATE_DIR", tmp_path / "state")
    i18n.set_language("en")
    yield
    i18n.set_language(None)


def result(name: str, message: str = "", outcome: str = "failed", **kw: object) -> Result:
    values: dict = {"note": "07a_ap_scheduler_intro.md#interval-trigger", "hint": f"hint of {name}"}
    values.update(kw)
    return Result(
        exercise="simple_timer",
        variant="learner",
        name=name,
        outcome=outcome,
        message=message + GUIDANCE if message else "",
        guidance=GUIDANCE,
        tags=("heartbeat-every-5-seconds",),
        **values,
    )


def printed(results: list[Result], pristine: tuple[str, ...] = ()) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    present.print_exercises(console, catalog(), [EXERCISE], results, pristine)
    return console.export_text()


def not_implemented(function: str) -> str:
    return (
        f"Not implemented yet: {function}\n  at exercises/level1/level1_simple_timer.py:9"
        f" in {function}()\n    raise NotImplementedError"
    )


def test_a_file_that_cannot_be_loaded_is_one_message_for_all_its_tests() -> None:
    problem = "level1_simple_timer.py:4: SyntaxError: invalid syntax\nFix the syntax error first."
    results = [result(f"test_{i}", problem, cause="load") for i in range(7)]
    text = printed(results)
    assert text.count("SyntaxError") == 1
    assert "cannot be loaded, so all 7 tests fail for this one reason" in text
    assert "hint of" not in text and "the answer" not in text and "stuck?" not in text
    assert "read: notes/07a_ap_scheduler_intro.md#hello-world" in text  # the exercise's note


def test_the_same_error_in_many_tests_is_reported_once_and_the_first_test_leads() -> None:
    results = [
        result("test_logs", "expected 1 record, got 0"),
        result("test_a", not_implemented("build_scheduler") + "\nFailing explicit example: a=1"),
        result("test_passes", outcome="passed"),
        result("test_b", not_implemented("build_scheduler") + "\nFailing explicit example: b=2"),
        result("test_c", not_implemented("build_scheduler")),
        result("test_main", not_implemented("main")),
    ]
    text = printed(results)
    assert text.startswith("simple_timer: 1/6 passed")
    assert "FAIL simple_timer :: test_logs (1 pt), the first failing test" in text
    assert text.count("Not implemented yet") == 0  # not the lead: summarised by name
    assert "and 4 more failing test(s): test_a, test_b, test_c, test_main" in text

    text = printed(results[1:])
    assert text.count("Not implemented yet: build_scheduler") == 1
    assert "FAIL simple_timer :: test_a (1 pt), the first failing test" in text
    assert "the same error also fails 2 more test(s): test_b, test_c" in text
    assert "and 1 more failing test(s): test_main" in text
    assert "a=1" in text and "b=2" not in text


def test_a_failure_shows_its_note_and_a_nudge_not_the_hint_until_revealed() -> None:
    results = [result("test_heartbeat", "job 'heartbeat': expected 12 run(s), got 0")]
    text = printed(results)
    assert "read: notes/07a_ap_scheduler_intro.md#interval-trigger «3." in text
    assert "promise: (#heartbeat-every-5-seconds)" in text
    assert "hint of test_heartbeat" not in text and "the answer" not in text
    total = len(hints.ladder(EXERCISE, "hint of test_heartbeat"))
    assert f"`python3 -m grader hint simple_timer` reveals a hint (0 of {total} seen)" in text
    hints.reveal_next(EXERCISE, "hint of test_heartbeat")
    text = printed(results)
    assert "hint: hint of test_heartbeat" in text
    assert f"(1 of {total} seen)" in text


def test_a_pass_is_followed_by_the_next_exercise_its_file_and_its_note() -> None:
    text = printed([result("test_a", outcome="passed", points=3)])
    assert "simple_timer: passed (3/3 points)" in text
    assert "python3 -m grader compare simple_timer" in text
    following = present.following(catalog(), EXERCISE)
    assert following is not None
    assert f"Next: {following.id} ({following.title})" in text
    assert f"edit exercises/level{following.level}/{following.file}" in text
    assert f"read notes/{following.note}" in text
    assert f"python3 -m grader check {following.id}" in text


def test_the_chrome_is_in_chinese_when_asked() -> None:
    i18n.set_language("zh")
    text = printed([result("test_heartbeat", "job 'heartbeat': expected 12 run(s), got 0")])
    assert "未通过 simple_timer :: test_heartbeat（1 分），第一个未通过的测试" in text
    assert "阅读：notes/07a_ap_scheduler_intro.md#interval-trigger" in text
    assert "卡住了？" in text
    assert "job 'heartbeat': expected 12 run(s), got 0" in text  # test messages stay English
    text = printed([result("test_a", outcome="passed")])
    assert "下一步：" in text and "全部通过" in text


def test_report_names_the_first_failure_of_the_next_exercise(monkeypatch) -> None:
    course = catalog()
    results = [
        result("test_logs", "expected 1 record, got 0"),
        result("test_other", "something else"),
    ]
    monkeypatch.setattr("grader.report.is_pristine", lambda exercise: False)
    console = Console(width=200, record=True, file=io.StringIO())
    render(console, course, statuses(course, results))
    text = console.export_text()
    assert "Next: edit exercises/level1/level1_simple_timer.py" in text
    assert "simple_timer: 2 failing test(s); the first: test_logs: expected 1 record" in text
    assert "\nOverall:" in text and "points" in text
