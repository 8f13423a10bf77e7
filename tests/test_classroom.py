"""Acceptance: `grader class grade` on a generated class of 42 learners, each in bubblewrap.

The class: 12 complete (6 alike, flagged identical and graded once), 8 partial (file
mutants of simple_timer), 4 untouched stubs, the 16 hostile submissions of
tests/bad_submissions/ (fork bomb, memory hog, forged results, tamper_pytest,
leak_processes, planted_module, ...), one whose file is a symbolic link into another
learner's folder, and one without any exercises. Grading is limited to simple_timer
(``--only``: the hostile fixtures all target it; the whole course costs ~15 CPU-s per
learner), with hangs capped at 4 s as in test_robustness.py.

The run uses a private copy of the course (grader, solutions, notes, pyproject.toml), so
that the checksums before and after see only what the graded learners could have done:
the course copy (grader, suites, catalog, solutions), the venv's site-packages (paths,
sizes and mtimes), the repository's solutions/ and every learner's folder must be
unchanged, and no process a hostile submission started may survive.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from grader import paths
from grader.classroom import isolate

FIXTURES = Path(__file__).parent / "bad_submissions"
MUTANTS = paths.MUTANTS_DIR / "simple_timer"
HOSTILE = sorted(p.stem for p in FIXTURES.glob("*.py"))
PARTIAL = sorted(p.stem for p in MUTANTS.glob("*.py"))[:8]
FILE = "level1_simple_timer.py"
MAX_POINTS = 24  # simple_timer's points (checked against the catalog's suite below)
MAY_PASS = {"leak_processes"}  # test_robustness.CASES: leaves processes, its code is correct
CAP = "4@simple_timer"

pytestmark = pytest.mark.timeout(900)


def require_bwrap() -> None:
    """Skip without a working bubblewrap, or fail under CRONKATA_REQUIRE_SERVICES=1 (CI)."""
    problem = isolate.bwrap_problem()
    if problem is None:
        return
    if os.environ.get("CRONKATA_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{problem} and CRONKATA_REQUIRE_SERVICES=1")
    pytest.skip(problem)


def tree_hash(root: Path) -> str:
    """SHA-256 of every path and file below ``root`` (links by target, never followed)."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts:  # written by any Python importing the files
            continue
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        if path.is_symlink():
            digest.update(os.readlink(path).encode())
        elif path.is_file():
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def listing(root: Path) -> set[tuple[str, int, int]]:
    """Paths, sizes and mtimes below ``root``, bytecode caches left out (a cheap
    fingerprint of site-packages: a planted or changed module shows)."""
    found = set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            path = Path(folder) / name
            with_stat = path.lstat()
            found.add((str(path.relative_to(root)), with_stat.st_size, with_stat.st_mtime_ns))
    return found


def sleepers() -> set[int]:
    """Processes that run leak_processes' ``sleep 600`` / ``sleep 601``."""
    found = set()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if command[:2] in ([b"sleep", b"600"], [b"sleep", b"601"]):
            found.add(int(entry.name))
    return found


def copy_course(target: Path) -> Path:
    """A private copy of what grading reads of the course."""
    for name in ("grader", "solutions", "notes"):
        shutil.copytree(
            paths.REPO_ROOT / name, target / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(paths.REPO_ROOT / "pyproject.toml", target / "pyproject.toml")
    return target


def learner(root: Path, name: str, stubs: Path, level1_file: bytes | None = None) -> Path:
    folder = root / name / "exercises"
    shutil.copytree(stubs, folder)
    if level1_file is not None:
        (folder / "level1" / FILE).write_bytes(level1_file)
    return folder


def build_class(root: Path, stubs: Path) -> dict[str, str]:
    """Write the class into ``root``; returns learner -> kind."""
    kinds: dict[str, str] = {}
    solution = (paths.SOLUTIONS_DIR / FILE).read_bytes()
    for index in range(12):  # the first six alike, the other six each a little different
        mark = b"" if index < 6 else f"\n# learner {index}\n".encode()
        name = f"complete-{index:02d}"
        learner(root, name, stubs, solution + mark)
        kinds[name] = "complete"
    for mutant in PARTIAL:
        name = f"partial-{mutant}"
        learner(root, name, stubs, (MUTANTS / f"{mutant}.py").read_bytes())
        kinds[name] = "partial"
    for index in range(4):
        name = f"untouched-{index}"
        learner(root, name, stubs)
        kinds[name] = "untouched"
    for case in HOSTILE:
        name = f"hostile-{case}"
        folder = learner(root, name, stubs, (FIXTURES / f"{case}.py").read_bytes())
        shutil.copy(paths.SOLUTIONS_DIR / FILE, folder / "level1" / "_reference.py")
        kinds[name] = f"hostile:{case}"
    linked = learner(root, "hostile-symlink", stubs)
    (linked / "level1" / FILE).unlink()
    (linked / "level1" / FILE).symlink_to(root / "complete-06" / "exercises" / "level1" / FILE)
    kinds["hostile-symlink"] = "symlink"
    (root / "no-exercises").mkdir()
    (root / "no-exercises" / "notes.txt").write_text("I did not do it\n")
    kinds["no-exercises"] = "invalid"
    return kinds


@dataclass
class ClassRun:
    kinds: dict[str, str]
    out: Path
    book: dict
    csv_rows: list[dict[str, str]]
    stdout: str
    seconds: float
    before: dict[str, object]
    after: dict[str, object]
    leftover_sleepers: set[int]
    course: Path
    second: subprocess.CompletedProcess[str]


def fingerprints(course: Path, class_dir: Path) -> dict[str, object]:
    site = Path(sysconfig.get_paths()["purelib"])
    found: dict[str, object] = {
        "course": tree_hash(course),
        "site-packages": listing(site),
        "repository solutions": tree_hash(paths.SOLUTIONS_DIR),
    }
    for folder in sorted(class_dir.iterdir()):
        found[f"learner {folder.name}"] = tree_hash(folder)
    return found


def grade(course: Path, class_dir: Path, out: Path) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-c",
        "from grader.cli import main; main()",  # the course copy's grader (cwd first)
        "class",
        "grade",
        str(class_dir),
        "--out",
        str(out),
        "--only",
        "simple_timer",
        "--isolation",
        "bwrap",
        "--workers",
        "2",
    ]
    env = {**os.environ, "CRONKATA_TIMEOUT_CAP": CAP, "COLUMNS": "150"}
    return subprocess.run(
        command, cwd=course, env=env, capture_output=True, text=True, timeout=840, check=False
    )


@pytest.fixture(scope="module")
def class_run(tmp_path_factory: pytest.TempPathFactory, pristine_exercises: Path) -> ClassRun:
    require_bwrap()
    root = tmp_path_factory.mktemp("class-run")
    course = copy_course(root / "course")
    class_dir = root / "class"
    kinds = build_class(class_dir, pristine_exercises)
    out = root / "out"
    before = fingerprints(course, class_dir)
    sleeping = sleepers()
    started = time.monotonic()
    done = grade(course, class_dir, out)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    after = fingerprints(course, class_dir)
    book = json.loads((out / "gradebook.json").read_text())
    rows = list(csv.DictReader(io.StringIO((out / "gradebook.csv").read_text())))
    second = grade(course, class_dir, out)  # nothing changed: all from the cache
    planted = Path(sysconfig.get_paths()["purelib"]) / "cronkata_planted_probe.py"
    planted.unlink(missing_ok=True)  # only if the sandbox failed (the checks below say so)
    return ClassRun(
        kinds,
        out,
        book,
        rows,
        done.stdout,
        seconds,
        before,
        after,
        sleepers() - sleeping,
        course,
        second,
    )


def _row(run: ClassRun, name: str) -> dict:
    return next(r for r in run.book["learners"] if r["learner"] == name)


def _results(run: ClassRun, name: str) -> dict:
    return json.loads((run.out / _row(run, name)["results"]).read_text())


def test_every_learner_has_one_row_in_the_csv_and_the_json(class_run: ClassRun) -> None:
    assert len(class_run.kinds) >= 40
    learners = [r["learner"] for r in class_run.book["learners"]]
    assert sorted(learners) == sorted(class_run.kinds)
    assert [r["learner"] for r in class_run.csv_rows] == learners
    assert list(class_run.csv_rows[0])[:5] == [
        "learner",
        "total",
        "max_points",
        "percent",
        "simple_timer",
    ]
    assert class_run.book["exercises"] == [{"id": "simple_timer", "max_points": MAX_POINTS}]
    for row, line in zip(class_run.book["learners"], class_run.csv_rows, strict=True):
        assert line["total"] == str(row["total"]) == line["simple_timer"]
        assert line["status"] == row["status"]
        assert line["max_points"] == str(MAX_POINTS)


def test_each_row_has_the_grade_its_submission_earns(class_run: ClassRun) -> None:
    for name, kind in class_run.kinds.items():
        row = _row(class_run, name)
        where = f"{name} ({kind}): {row}"
        if kind == "invalid":
            assert row["status"] == "invalid" and row["total"] == 0, where
            assert "no exercises/ folder" in row["message"], where
            assert row["results"] == "", where
            continue
        assert row["status"] == "graded", where
        assert row["graded_at"], where
        results = _results(class_run, name)
        tests = results["tests"]
        earned = sum(t["points"] for t in tests)
        assert earned == row["total"] == row["points"]["simple_timer"], where
        assert results["max_points"] == MAX_POINTS, where
        [exercise] = results["exercises"]
        if kind == "complete":
            assert row["total"] == MAX_POINTS, where
            assert exercise["status"] == "passed", where
        elif kind == "partial":
            assert 0 <= row["total"] < MAX_POINTS, where
            assert any(t["status"] == "fail" for t in tests), where
        elif kind == "untouched":
            assert row["total"] == 0 and exercise["status"] == "not started", where
        elif kind == "symlink":  # the link was not followed: the file is missing
            assert row["total"] == 0 and exercise["status"] == "file missing", where
        elif kind.removeprefix("hostile:") in MAY_PASS:
            assert 0 <= row["total"] <= MAX_POINTS, where
        else:
            assert row["total"] == 0, where
            assert {t["status"] for t in tests} <= {"fail", "error"}, where  # never a pass
            assert all(t["message"] for t in tests), where


def test_a_forged_result_adds_no_test_and_no_point(class_run: ClassRun) -> None:
    forged = _results(class_run, "hostile-forged_result")
    honest = _results(class_run, "hostile-syntax_error")
    assert sorted(t["name"] for t in forged["tests"]) == sorted(t["name"] for t in honest["tests"])
    assert forged["points"] == 0


def test_hostile_submissions_change_nothing_outside_their_sandbox(class_run: ClassRun) -> None:
    changed = [name for name, value in class_run.before.items() if class_run.after[name] != value]
    assert not changed, f"changed by the grading: {changed}"
    assert "learner hostile-planted_module" in class_run.before  # the check covers it
    assert not class_run.leftover_sleepers, "leak_processes' sleepers outlived the run"


def test_identical_submissions_are_flagged_and_graded_once(class_run: ClassRun) -> None:
    alike = {f"complete-{i:02d}" for i in range(6)}
    for name in alike:
        assert set(_row(class_run, name)["identical_to"]) == alike - {name}
    for name in ("complete-06", "untouched-0", "untouched-1"):
        assert _row(class_run, name)["identical_to"] == []  # untouched stubs are alike only
    cache = list((class_run.out / ".cache").glob("*.json"))
    distinct = len(class_run.kinds) - 1 - 5 - 3  # the invalid one; 6 alike; 4 untouched
    assert len(cache) == distinct


def test_a_second_run_grades_nothing_again(class_run: ClassRun) -> None:
    assert class_run.second.returncode == 0, class_run.second.stderr[-2000:]
    assert "0 to grade" in class_run.second.stdout
    book = json.loads((class_run.out / "gradebook.json").read_text())
    assert book["learners"] == class_run.book["learners"]
    assert book["moved"] == [] and book["previous_course_version"] == book["course_version"]


def test_the_report_links_every_learners_feedback(class_run: ClassRun) -> None:
    report = (class_run.out / "report.html").read_text()
    for row in class_run.book["learners"]:
        assert f'href="{row["feedback"]}"' in report
        assert (class_run.out / row["feedback"]).is_file()
    assert "Tests, lowest pass rate first" in report and "Identical submissions" in report
    feedback = (class_run.out / _row(class_run, "hostile-flood_output")["feedback"]).read_text()
    assert "\x1b" not in feedback and "<script" not in feedback.lower()


def test_the_whole_class_is_graded_in_reasonable_time(class_run: ClassRun) -> None:
    print(f"\n42 learners graded in {class_run.seconds:.0f} s")
    assert class_run.seconds < 600
