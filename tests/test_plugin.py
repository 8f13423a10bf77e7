"""`pytest exercises/levelN` grades with the hidden suites; plain `pytest` never does."""

from __future__ import annotations

import re


def _counts(output: str) -> dict[str, int]:
    tail = output.strip().splitlines()[-1]
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|errors?|skipped)", tail)}


def test_pristine_stubs_fail_every_test_and_none_errors(run_pytest, pristine_exercises) -> None:
    done = run_pytest(
        str(pristine_exercises / "level1"),
        "-q",
        "-p",
        "grader.plugin",  # the folder is outside the repo, so its conftest.py is not loaded
        env={"CRONKATA_EXERCISES_DIR": str(pristine_exercises)},
    )
    counts = _counts(done.stdout)
    assert done.returncode == 1
    assert counts.get("failed", 0) >= 12
    assert "passed" not in counts and "error" not in counts and "errors" not in counts


def test_solutions_pass_every_test(run_pytest) -> None:
    done = run_pytest("exercises/level1", "--solutions", "-q")
    assert done.returncode == 0, done.stdout[-3000:]
    assert _counts(done.stdout).get("passed", 0) >= 12


def test_a_file_argument_grades_only_that_exercise(run_pytest) -> None:
    done = run_pytest("exercises/level1/apscheduler/config.py", "--solutions", "-q", "--co")
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    assert ids and all(i.startswith("exercises/level1/apscheduler/config.py") for i in ids)


def test_plain_pytest_collects_the_harness_tests_only(run_pytest) -> None:
    done = run_pytest("--co", "-q")
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    assert ids and all(i.startswith("tests/") for i in ids)


def test_a_failure_shows_expected_vs_actual_as_a_timeline_with_note_and_hint(run_pytest) -> None:
    done = run_pytest(
        "exercises/level1/level1_simple_timer.py",
        "--grader-variants=mutants",
        "-k",
        "interval_in_minutes and heartbeat_runs_every",
    )
    text = done.stdout
    assert "job 'heartbeat' over the first 60 s: expected 12 run(s), got 0" in text
    assert "expected (Asia/Shanghai)" in text and "Mon 2026-03-02 09:00:05+0800" in text
    assert "read: notes/07a_ap_scheduler_intro.md#interval-trigger" in text
    assert "hint: IntervalTrigger(seconds=HEARTBEAT_SECONDS)" in text
    assert "Traceback" not in text
