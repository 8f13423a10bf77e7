"""The `grader` command line: report, check, compare, reset, and its errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader import paths
from grader.catalog import catalog, git_blob_sha


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the English feedback, whatever the locale of the machine."""
    monkeypatch.setenv("CRONKATA_LANG", "en")


def test_report_lists_every_level_and_exits_0_on_a_fresh_checkout(
    run_grader, tmp_path: Path
) -> None:
    out = tmp_path / "results.json"
    done = run_grader("report", "--json", str(out))
    assert done.returncode == 0, done.stderr
    for level in catalog().levels:
        assert f"{level.number} {level.title}" in done.stdout
    assert "not started" in done.stdout
    assert "coming soon" in done.stdout or all(e.available for e in catalog().exercises)
    assert "Next: edit exercises/level1/level1_simple_timer.py" in done.stdout


def test_report_json_has_the_exercism_v3_shape_plus_points(run_grader, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    run_grader("report", "--json", str(out))
    data = json.loads(out.read_text())
    assert data["version"] == 3
    assert data["status"] in {"pass", "fail", "error"}
    assert data["tests"], "every graded test is listed"
    for test in data["tests"]:
        assert set(test) >= {"name", "status", "message", "output", "task_id", "points"}
        assert test["status"] in {"pass", "fail", "error"}
    assert data["max_points"] == sum(t["max_points"] for t in data["tests"])
    ids = {e["id"] for e in data["exercises"]}
    assert ids == {e.id for e in catalog().exercises}
    # Untouched stubs are not run: their tests count for points and say why they fail.
    assert all(t["message"].startswith("not started") for t in data["tests"])


def test_report_counts_progress_of_a_solved_level(
    run_grader, solved_exercises: Path, tmp_path: Path
) -> None:
    out = tmp_path / "results.json"
    done = run_grader(
        "report", "--json", str(out), env={"CRONKATA_EXERCISES_DIR": str(solved_exercises)}
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    level1 = [e for e in data["exercises"] if e["level"] == 1]
    assert {e["status"] for e in level1} == {"passed"}
    assert all(e["points"] == e["max_points"] > 0 for e in level1)


def test_check_grades_one_exercise_and_exits_1_while_it_fails(run_grader) -> None:
    done = run_grader("check", "simple_timer")
    assert done.returncode == 1
    # the first failing test in suite order leads; the others are named once
    assert "FAIL simple_timer :: test_heartbeat_logs_one_info_record" in done.stdout
    assert "test_heartbeat_runs_every_5_seconds_from_start" in done.stdout
    assert done.stdout.count("Not implemented yet") == 1
    assert "read: notes/07a_ap_scheduler_intro.md#hello-world" in done.stdout
    assert "apscheduler_config" not in done.stdout


def test_check_exits_0_when_the_exercise_passes(run_grader, solved_exercises: Path) -> None:
    done = run_grader(
        "check", "simple_timer", env={"CRONKATA_EXERCISES_DIR": str(solved_exercises)}
    )
    assert done.returncode == 0, done.stdout
    assert "FAIL" not in done.stdout


def test_compare_shows_a_diff_and_both_outcomes(run_grader) -> None:
    done = run_grader("compare", "simple_timer", "--force")  # before a pass: --force
    assert done.returncode == 0, done.stderr
    assert "--- exercises/level1/level1_simple_timer.py" in done.stdout
    assert "+++ solutions/level1_simple_timer.py" in done.stdout
    assert "test_heartbeat_runs_every_5_seconds_from_start" in done.stdout
    assert "passed" in done.stdout and "failed" in done.stdout


def test_compare_survives_a_learner_file_that_is_not_utf8(run_grader, tmp_path: Path) -> None:
    exercises = tmp_path / "exercises"
    shutil.copytree(paths.REPO_ROOT / "exercises", exercises)
    stub = exercises / "level1" / "level1_simple_timer.py"
    stub.write_bytes("# caf\u00e9 in Latin-1\n".encode("latin-1") + stub.read_bytes())
    env = {"CRONKATA_EXERCISES_DIR": str(exercises)}
    done = run_grader("compare", "simple_timer", "--force", env=env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "is not UTF-8 (byte 0xe9" in done.stdout
    assert "+++ solutions/level1_simple_timer.py" in done.stdout


def test_unknown_exercise_is_one_line_and_exit_2(run_grader) -> None:
    done = run_grader("check", "no_such_exercise")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "unknown exercise 'no_such_exercise'" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_unknown_level_and_bad_option_are_one_line_and_exit_2(run_grader) -> None:
    for args in (("check", "level9"), ("report", "--no-such-option"), ("frobnicate",)):
        done = run_grader(*args)
        assert done.returncode == 2, args
        assert done.stderr.strip().count("\n") == 0, done.stderr
        assert done.stderr.startswith("grader: error:"), done.stderr


def test_reset_restores_the_pristine_stub_and_keeps_a_backup(run_grader, tmp_path: Path) -> None:
    exercises = tmp_path / "exercises"
    shutil.copytree(paths.EXERCISES_DIR, exercises)
    mine = exercises / "level1" / "level1_simple_timer.py"
    mine.write_text("# my attempt\n")
    env = {"CRONKATA_EXERCISES_DIR": str(exercises), "CRONKATA_STATE_DIR": str(tmp_path / "state")}
    done = run_grader("reset", "--yes", "simple_timer", env=env)
    assert done.returncode == 0, done.stderr
    assert git_blob_sha(mine.read_bytes()) == catalog().exercise("simple_timer").stub_blob
    backups = list((tmp_path / "state" / "backups").rglob("level1_simple_timer.py"))
    assert [b.read_text() for b in backups] == ["# my attempt\n"]


def test_watch_regrades_an_exercise_when_its_file_is_saved(
    tmp_path: Path, pristine_exercises: Path
) -> None:
    exercises = tmp_path / "exercises"
    shutil.copytree(pristine_exercises, exercises)
    env = {
        **os.environ,
        "CRONKATA_EXERCISES_DIR": str(exercises),
        "COLUMNS": "200",
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "grader", "watch", "simple_timer", "--runs", "1"],
        cwd=paths.REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    seen = ""
    for line in process.stdout:  # the first grading (the pristine stub fails), then ready
        seen += line
        if line.startswith("waiting for changes"):
            break
    assert re.search(r"simple_timer: 0/\d+ passed", seen), seen
    shutil.copy(paths.SOLUTIONS_DIR / "level1_simple_timer.py", exercises / "level1")
    rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert "simple_timer: passed" in rest


def test_verify_fails_when_only_a_note_breaks_pitfall_traceability(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A problem found in the notes alone (no exercise problem) must fail `grader verify`."""
    from click.testing import CliRunner

    from grader import cli
    from grader.verify import CourseVerdict

    broken = CourseVerdict(problems=["07a_ap_scheduler_intro.md: a pitfall names no test"])
    monkeypatch.setattr(cli, "verify", lambda course, chosen: [])
    monkeypatch.setattr(cli, "verify_notes", lambda course: broken)
    done = CliRunner().invoke(cli.cli, ["verify"])
    assert done.exit_code == 1, done.output
    assert "a pitfall names no test" in done.output


def test_verify_takes_several_exercises(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from grader import cli
    from grader.verify import CourseVerdict

    seen: list[list[str]] = []
    monkeypatch.setattr(cli, "verify", lambda course, chosen: seen.append([e.id for e in chosen]))
    monkeypatch.setattr(cli, "verify_notes", lambda course: CourseVerdict())
    done = CliRunner().invoke(cli.cli, ["verify", "simple_timer", "apscheduler_config"])
    assert seen == [["simple_timer", "apscheduler_config"]], done.output


def test_grader_test_runs_the_harness_tests_in_english(monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness's tests read English feedback: a learner's zh_CN locale must not fail them."""
    from click.testing import CliRunner

    from grader import cli

    calls: list[dict[str, str]] = []

    def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(dict(kwargs["env"]))  # type: ignore[arg-type]
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(cli.subprocess, "run", run)
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    done = CliRunner().invoke(cli.cli, ["test", "-q"])
    assert done.exit_code == 0, done.output
    assert calls and calls[0]["CRONKATA_LANG"] == "en" and calls[0]["LANG"] == "zh_CN.UTF-8"
