"""Learner code is untrusted input: each bad submission fails alone, the run completes.

Every fixture in tests/bad_submissions/ replaces level1_simple_timer.py in a copy of the
exercises tree whose other level-1 files are the reference solutions. `grader report`
must exit 0, fail every simple_timer test with a message that names what happened (a
faked pass attempt is a failure that says so), still pass the other exercises, keep its
output small, and leave no process of the run alive.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from grader import paths

# case -> phrases one of which every simple_timer message must contain (None: may pass)
CASES: dict[str, tuple[str, ...] | None] = {
    "syntax_error": ("SyntaxError",),
    "blocking_import": ("did not finish within",),
    "endless_loop": ("did not finish within",),
    "sys_exit_at_import": ("sys.exit()",),
    "os_exit_during_call": ("os._exit()",),
    "leaked_thread": ("non-daemon thread",),
    "flood_output": ("wrote more than", "did not finish within"),  # whichever limit hits first
    "skip_in_test": ("was skipped",),
    "xfail_in_test": ("expected failure",),
    "forged_result": ("forged result", "before reporting a result"),
    "tamper_pytest": ("changed the grader's reporting code",),
    "planted_module": ("Not implemented",),
    "memory_hog": ("ran out of memory",),
    "fork_bomb": ("processes or threads", "did not finish within"),
    "import_flood": ("wrote more output than the grader keeps",),
    "leak_processes": None,
    "template_lies": ("Not implemented",),
}
FIXTURES = Path(__file__).parent / "bad_submissions"
OTHER_LEVEL1 = ("apscheduler_config", "apscheduler_embedded", "apscheduler_standalone")
CAP_SECONDS = "4@simple_timer"  # hangs cost seconds; the other exercises keep theirs
AT_ONCE = 2  # grader processes at a time: each forks children of its own
TAG = "CRONKATA_RUN_TAG"
# The module's fixture grades every case once (several grader runs at a time).
pytestmark = pytest.mark.timeout(600)


@dataclass
class Graded:
    returncode: int
    seconds: float
    stderr: str
    report: dict
    report_size: int
    pid: int
    survivors: list[str]
    root: Path


def tagged_processes(tag: str) -> list[str]:
    """Processes whose environment carries ``tag`` (every process a run started has it)."""
    found = []
    needle = f"{TAG}={tag}".encode()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(f"{entry.name}: {(entry / 'cmdline').read_bytes()[:80]!r}")
        except OSError:
            continue
    return found


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


def _env(case: str, root: Path, tag: str) -> dict[str, str]:
    return {
        **os.environ,
        "CRONKATA_EXERCISES_DIR": str(_prepare(case, root)),
        "CRONKATA_TIMEOUT_CAP": CAP_SECONDS,
        "CRONKATA_FIXTURE_DIR": str(root),
        "COLUMNS": "120",
        "CRONKATA_JOBS": "2",  # two graders at once, each with hostile children: keep it calm
        TAG: tag,
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Graded]:
    """Grade every bad submission (each in its own `grader report` process)."""
    results = {}
    cases = list(CASES)
    try:
        for start in range(0, len(cases), AT_ONCE):
            results.update(_grade_all(cases[start : start + AT_ONCE], tmp_path_factory))
    finally:
        planted = Path(sysconfig.get_paths()["purelib"]) / "cronkata_planted_probe.py"
        planted.unlink(missing_ok=True)
    return results


def _grade_all(cases: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Graded]:
    running = {}
    for case in cases:
        root = tmp_path_factory.mktemp(case)
        process, tag = _start(case, root, "report", "--json", str(root / "r.json"))
        running[case] = (process, root, time.monotonic(), tag)
    results = {}
    for case, (process, root, started, tag) in running.items():
        _, stderr_bytes = process.communicate(timeout=240)
        stderr = stderr_bytes.decode(errors="replace")
        report_file = root / "r.json"
        text = report_file.read_text() if report_file.exists() else "{}"
        results[case] = Graded(
            process.returncode,
            time.monotonic() - started,
            stderr,
            json.loads(text),
            len(text),
            process.pid,
            tagged_processes(tag),
            root,
        )
    return results


def _tests_of(report: dict, exercise: str) -> list[dict]:
    return [t for t in report.get("tests", []) if t["exercise"] == exercise]


@pytest.mark.parametrize("case", [c for c, phrases in CASES.items() if phrases])
def test_bad_submission_fails_its_exercise_with_a_clear_message(
    graded: dict[str, Graded], case: str
) -> None:
    result = graded[case]
    assert result.returncode == 0, f"report must exit 0 whatever the learner did:\n{result.stderr}"
    tests = _tests_of(result.report, "simple_timer")
    assert len(tests) >= 5
    # A file that cannot be loaded errs, the one cause of every test; anything else fails.
    kinds = {t["status"] for t in tests}
    assert kinds in ({"fail"}, {"error"}), "failures or load errors, never passes"
    if case == "syntax_error":
        assert kinds == {"error"}
    phrases = CASES[case] or ()
    named = [t for t in tests if any(phrase in t["message"] for phrase in phrases)]
    # Every test fails (checked above); most must name the attempt. A few cannot: a test that
    # waits for the learner's code may hit the 4 s cap this harness test sets, or fail on
    # what the attempt broke before the attempt itself shows.
    assert len(named) * 2 >= len(tests), [t["message"][:200] for t in tests if t not in named]


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
    # The hidden tests' code (test_code, the same whatever the learner did) aside:
    learner_part = {
        **result.report,
        "tests": [{k: v for k, v in t.items() if k != "test_code"} for t in result.report["tests"]],
    }
    size = len(json.dumps(learner_part, indent=2, ensure_ascii=False))
    assert size < 200_000, "learner output must be truncated in results"
    assert result.seconds < 120


@pytest.mark.parametrize("case", list(CASES))
def test_no_process_of_the_run_outlives_it(graded: dict[str, Graded], case: str) -> None:
    survivors = graded[case].survivors
    assert not survivors, f"processes still alive after `grader report` ended: {survivors}"


def test_a_module_planted_by_learner_code_never_runs_in_the_grader(
    graded: dict[str, Graded],
) -> None:
    result = graded["planted_module"]
    marker = result.root / "planted.pids"
    assert marker.is_file(), "the fixture did not plant its module (the test proves nothing)"
    pids = {int(line) for line in marker.read_text().split()}
    assert result.pid not in pids, "the grader process imported the learner's planted module"


def test_results_are_made_from_the_parents_items_not_from_the_child(
    graded: dict[str, Graded],
) -> None:
    """A forged result cannot add tests, points or exercises."""
    forged = graded["forged_result"].report
    honest = graded["syntax_error"].report
    names = sorted(t["name"] for t in forged["tests"])
    assert names == sorted(t["name"] for t in honest["tests"])
    assert forged["points"] == honest["points"], "forged points must not count"


def _start(case: str, tmp_path: Path, *args: str, tool: str = "grader", hold: float = 0) -> tuple:
    """Start a grader (or pytest) run on ``case``; ``hold``: seconds leak_processes waits."""
    tag = uuid.uuid4().hex
    command = (
        [sys.executable, "-m", "grader", *args]
        if tool == "grader"
        else [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    )
    process = subprocess.Popen(
        command,
        cwd=paths.REPO_ROOT,
        env={**_env(case, tmp_path, tag), "CRONKATA_LEAK_HOLD": str(hold)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    return process, tag


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_signal_to_the_grader_kills_every_running_child(tmp_path: Path, sig: str) -> None:
    process, tag = _start("leak_processes", tmp_path, "report", hold=30)
    deadline = time.monotonic() + 60
    seen: list[str] = []
    while time.monotonic() < deadline and len(seen) < 4:
        time.sleep(0.05)  # waiting for an external process to start, not for a scheduler
        seen = tagged_processes(tag)
    assert len(seen) >= 4, f"the grader never started its children: {seen}"
    process.send_signal(getattr(signal, sig))
    process.communicate(timeout=30)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and tagged_processes(tag):
        time.sleep(0.05)
    assert not tagged_processes(tag), f"alive after {sig}: {tagged_processes(tag)}"
    assert process.returncode != 0


def test_output_printed_at_import_never_reaches_the_terminal(tmp_path: Path) -> None:
    level1 = str(tmp_path / "exercises" / "level1")
    process, _ = _start(
        "import_flood", tmp_path, "-p", "grader.plugin", level1, "-k", "simple_timer", tool="pytest"
    )
    stdout, stderr = process.communicate(timeout=120)
    assert b"\x1b" not in stdout + stderr, "terminal escape codes reached the terminal"
    assert len(stdout) + len(stderr) < 100_000
    assert b"wrote more output than the grader keeps" in stdout


def test_pytest_timeout_never_wraps_a_batch_of_graded_tests(tmp_path: Path) -> None:
    """The sandbox owns graded tests' time: a batch longer than pytest-timeout's limit is fine."""
    process, _ = _start(
        "endless_loop",
        tmp_path,
        "-p",
        "grader.plugin",
        str(tmp_path / "exercises" / "level1"),
        "-k",
        "simple_timer",
        "-o",
        "timeout=3",
        tool="pytest",
    )
    stdout, _ = process.communicate(timeout=120)
    text = stdout.decode(errors="replace")
    assert "INTERNALERROR" not in text
    assert "Timeout" not in text, text[-2000:]
    assert process.returncode == 1, text[-2000:]
    assert "did not finish within" in text
