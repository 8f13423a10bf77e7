"""Learner code is untrusted input: each bad submission fails alone, the run completes.

Every fixture in tests/bad_submissions/ replaces level1_simple_timer.py in a copy of the
exercises tree whose other level-1 files are the reference solutions. `grader report`
must exit 0, fail every simple_timer test with a message that explains, still pass the
other exercises, and keep its output small.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from grader import paths

CASES: dict[str, str | tuple[str, ...]] = {
    "syntax_error": "SyntaxError",
    "blocking_import": "did not finish within",
    "endless_loop": "did not finish within",
    "sys_exit_at_import": "sys.exit()",
    "os_exit_during_call": "os._exit()",
    "leaked_thread": "non-daemon thread",
    "flood_output": ("wrote more than", "did not finish within"),  # whichever limit hits first
}
FIXTURES = Path(__file__).parent / "bad_submissions"
OTHER_LEVEL1 = ("apscheduler_config", "apscheduler_embedded", "apscheduler_standalone")
CAP_SECONDS = "4"
AT_ONCE = 2  # grader processes at a time: each forks children of its own


@dataclass
class Graded:
    returncode: int
    seconds: float
    stderr: str
    report: dict
    report_size: int


def _prepare(case: str, root: Path) -> Path:
    exercises = root / "exercises"
    shutil.copytree(paths.REPO_ROOT / "exercises", exercises)
    level1 = exercises / "level1"
    shutil.rmtree(level1 / "apscheduler")
    shutil.copytree(
        paths.SOLUTIONS_DIR / "apscheduler",
        level1 / "apscheduler",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(paths.SOLUTIONS_DIR / "level1_simple_timer.py", level1 / "_reference.py")
    shutil.copy(FIXTURES / f"{case}.py", level1 / "level1_simple_timer.py")
    return exercises


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Graded]:
    """Grade every bad submission at once (each in its own `grader report` process)."""
    results = {}
    cases = list(CASES)
    for start in range(0, len(cases), AT_ONCE):
        results.update(_grade_all(cases[start : start + AT_ONCE], tmp_path_factory))
    return results


def _grade_all(cases: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Graded]:
    running = {}
    for case in cases:
        root = tmp_path_factory.mktemp(case)
        env = {
            **os.environ,
            "CRONKATA_EXERCISES_DIR": str(_prepare(case, root)),
            "CRONKATA_TIMEOUT_CAP": CAP_SECONDS,
            "COLUMNS": "120",
        }
        command = [sys.executable, "-m", "grader", "report", "--json", str(root / "r.json")]
        process = subprocess.Popen(
            command,
            cwd=paths.REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        running[case] = (process, root, time.monotonic())
    results = {}
    for case, (process, root, started) in running.items():
        _, stderr = process.communicate(timeout=240)
        report_file = root / "r.json"
        text = report_file.read_text() if report_file.exists() else "{}"
        results[case] = Graded(
            process.returncode, time.monotonic() - started, stderr, json.loads(text), len(text)
        )
    return results


def _tests_of(report: dict, exercise: str) -> list[dict]:
    return [t for t in report.get("tests", []) if t["name"].startswith(f"{exercise}::")]


@pytest.mark.parametrize("case", list(CASES))
def test_bad_submission_fails_its_exercise_with_a_clear_message(
    graded: dict[str, Graded], case: str
) -> None:
    result = graded[case]
    assert result.returncode == 0, f"report must exit 0 whatever the learner did:\n{result.stderr}"
    tests = _tests_of(result.report, "simple_timer")
    assert len(tests) >= 5
    assert {t["status"] for t in tests} == {"fail"}, "failures, never errors or passes"
    expected = CASES[case]
    phrases = expected if isinstance(expected, tuple) else (expected,)
    for test in tests:
        assert any(phrase in test["message"] for phrase in phrases), test["message"]


@pytest.mark.parametrize("case", list(CASES))
def test_bad_submission_leaves_the_other_exercises_graded(
    graded: dict[str, Graded], case: str
) -> None:
    report = graded[case].report
    for exercise in OTHER_LEVEL1:
        tests = _tests_of(report, exercise)
        assert tests, f"{exercise} was not graded"
        assert {t["status"] for t in tests} == {"pass"}, [t["message"] for t in tests]


@pytest.mark.parametrize("case", list(CASES))
def test_bad_submission_keeps_the_report_small_and_bounded_in_time(
    graded: dict[str, Graded], case: str
) -> None:
    result = graded[case]
    assert result.report_size < 200_000, "learner output must be truncated in results"
    assert result.seconds < 120
