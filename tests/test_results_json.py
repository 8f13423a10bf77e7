"""results.json after Exercism's test runner interface, version 3 (issue 10).

`grader check --json PATH` writes it for one exercise or a level, `grader report --json`
for the whole course, from one implementation. Checked against the spec's shape: each
test has a human-readable ``name``, ``test_code`` (a MUST where learners cannot see the
tests, as here), ``status`` pass/fail/error (error: the learner's file cannot be loaded,
and then the top level is error with a message), ``output`` holding only the learner's
own prints, at most 500 characters with the spec's truncation notice.
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from grader import paths
from grader.catalog import catalog
from grader.report import OUTPUT_TRUNCATED, readable_name, results_json, source_of_test, statuses
from grader.results import TestResult as Graded  # not a test class

pytestmark = pytest.mark.timeout(180)
EXERCISE = catalog().exercise("simple_timer")
SOLUTION = EXERCISE.solution_path().read_text(encoding="utf-8")
STATUSES = {"pass", "fail", "error"}
NOTICE = "Output was truncated. Please limit to 500 chars"  # the spec's words


def check_shape(data: dict[str, Any]) -> None:
    """What the spec requires of a version 3 results.json."""
    assert data["version"] == 3
    assert data["status"] in STATUSES
    if data["status"] == "error":
        assert isinstance(data["message"], str) and data["message"].strip()
    else:
        assert data.get("message") is None
    assert isinstance(data["tests"], list) and data["tests"]
    for test in data["tests"]:
        assert isinstance(test["name"], str) and test["name"].strip()
        assert "::" not in test["name"] and " test_" not in test["name"], test["name"]
        assert test["status"] in STATUSES
        assert isinstance(test["test_code"], str) and test["test_code"].strip()
        assert "def test_" in test["test_code"]
        assert test["message"] is None or isinstance(test["message"], str)
        output = test.get("output")
        assert output is None or (isinstance(output, str) and len(output) <= 500)
        if output is not None and len(output) == 500:
            assert output.endswith(NOTICE)
        assert isinstance(test["task_id"], int)


def suite_order(exercise_id: str) -> list[str]:
    """The test functions of an exercise's suite, in the order the file defines them."""
    suite = catalog().exercise(exercise_id).suite
    assert suite is not None
    tree = ast.parse((paths.SUITES_DIR / suite).read_text(encoding="utf-8"))
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name[:5] == "test_"]


@pytest.fixture
def learner(tmp_path: Path, pristine_exercises: Path) -> Path:
    """A copy of the pristine tree (for CRONKATA_EXERCISES_DIR) to put learner files in."""
    root = tmp_path / "exercises"
    shutil.copytree(pristine_exercises, root)
    return root


def check_json(run_grader, root: Path, target: str, out: Path) -> tuple[int, dict[str, Any]]:
    done = run_grader(
        "check", target, "--json", str(out), env={"CRONKATA_EXERCISES_DIR": str(root)}
    )
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr  # (a test's message may quote the learner's)
    assert f"results written to {out}" in " ".join(done.stdout.split())
    return done.returncode, json.loads(out.read_text(encoding="utf-8"))


def test_check_json_of_a_stub_follows_the_spec_in_suite_order(
    run_grader, learner: Path, tmp_path: Path
) -> None:
    code, data = check_json(run_grader, learner, "simple_timer", tmp_path / "r.json")
    assert code == 1
    check_shape(data)
    assert data["status"] == "fail"
    assert {t["exercise"] for t in data["tests"]} == {"simple_timer"}
    assert [t["test"] for t in data["tests"]] == suite_order("simple_timer")
    first = data["tests"][0]
    assert first["name"] == "simple_timer: heartbeat logs one info record"
    assert first["test_code"].startswith("def test_heartbeat_logs_one_info_record(")
    assert "@pytest.mark" not in first["test_code"], "the grade marker holds the hint"
    assert "Not implemented yet" in first["message"]
    assert [e["id"] for e in data["exercises"]] == ["simple_timer"]
    assert data["max_points"] == sum(t["max_points"] for t in data["tests"]) > 0


def test_a_file_with_a_syntax_error_is_an_error_with_its_reason(
    run_grader, learner: Path, tmp_path: Path
) -> None:
    broken = SOLUTION.replace("def build_scheduler()", "def build_scheduler(", 1)
    (learner / "level1" / EXERCISE.file).write_text(broken, encoding="utf-8")
    code, data = check_json(run_grader, learner, "simple_timer", tmp_path / "r.json")
    assert code == 1
    check_shape(data)
    assert data["status"] == "error"
    assert "SyntaxError" in data["message"]
    assert {t["status"] for t in data["tests"]} == {"error"}
    assert all("SyntaxError" in t["message"] for t in data["tests"])


def test_output_is_the_learners_prints_cut_at_500_with_the_notice(
    run_grader, learner: Path, tmp_path: Path
) -> None:
    head = "def build_scheduler()"
    start = SOLUTION.index(head)
    body = SOLUTION.index(":\n", SOLUTION.index(")", start)) + 2
    noisy = SOLUTION[:body] + '    print("learner says hi " * 100)\n' + SOLUTION[body:]
    (learner / "level1" / EXERCISE.file).write_text(noisy, encoding="utf-8")
    code, data = check_json(run_grader, learner, "simple_timer", tmp_path / "r.json")
    assert code == 0, [t["message"] for t in data["tests"] if t["status"] != "pass"]
    check_shape(data)
    assert data["status"] == "pass"
    outputs = [t["output"] for t in data["tests"] if t["output"] is not None]
    assert outputs, "the tests that build the scheduler see the learner's print"
    for output in outputs:
        assert len(output) <= 500 and output.endswith("\n" + NOTICE)
        assert output.startswith("learner says hi")
    # The libraries' logging (and the learner's log records) are not the learner's prints.
    for test in data["tests"]:
        assert "apscheduler" not in (test["output"] or "")
        assert " INFO " not in (test["output"] or "")


def test_check_json_of_a_level_lists_its_exercises_only(
    run_grader, learner: Path, tmp_path: Path
) -> None:
    _, data = check_json(run_grader, learner, "level1", tmp_path / "r.json")
    check_shape(data)
    level1 = [e.id for e in catalog().of_level(1) if e.available]
    assert [e["id"] for e in data["exercises"]] == level1
    assert list(dict.fromkeys(t["exercise"] for t in data["tests"])) == level1
    assert {t["task_id"] for t in data["tests"]} == {catalog().exercise(i).order for i in level1}


def test_report_json_is_the_same_shape_for_the_whole_course(
    run_grader, learner: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report.json"
    done = run_grader("report", "--json", str(out), env={"CRONKATA_EXERCISES_DIR": str(learner)})
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    check_shape(data)
    assert {e["id"] for e in data["exercises"]} == {e.id for e in catalog().exercises}
    planned = {e["id"]: e["planned"] for e in data["exercises"] if e["status"] == "coming soon"}
    assert all(planned.values()), planned


def test_parametrized_and_missing_tests_still_have_code_and_names() -> None:
    exercise = catalog().exercise("celery_embedded")
    assert exercise.suite is not None
    source = (paths.SUITES_DIR / exercise.suite).read_text(encoding="utf-8")
    tree = ast.parse(source)
    parametrized = next(
        n.name
        for n in tree.body
        if isinstance(n, ast.FunctionDef)
        and any("parametrize" in ast.unparse(d) for d in n.decorator_list)
    )
    code = source_of_test(exercise, f"{parametrized}[some-case]")
    assert code.startswith(f"def {parametrized}(")
    assert readable_name(exercise, f"{parametrized}[some-case]").endswith(" (some-case)")
    assert source_of_test(exercise, "test_no_such_test").strip()  # never empty


def test_one_load_error_among_passing_exercises_is_a_failing_run_not_an_error() -> None:
    """The spec's top-level error means no test could run."""
    course = catalog()
    other = course.exercise("apscheduler_config")
    results = [
        Graded(
            "simple_timer",
            "learner",
            "test_heartbeat_logs_one_info_record",
            "failed",
            "SyntaxError",
            cause="load",
        ),
        Graded("apscheduler_config", "learner", "test_a", "passed"),
    ]
    found = [s for s in statuses(course, results) if s.exercise in (EXERCISE, other)]
    data = results_json(found)
    assert data["status"] == "fail" and data["message"] is None
    assert [t["status"] for t in data["tests"]] == ["error", "pass"]
    alone = results_json(found[:1])
    assert alone["status"] == "error" and alone["message"] == "SyntaxError"
    assert OUTPUT_TRUNCATED == NOTICE
