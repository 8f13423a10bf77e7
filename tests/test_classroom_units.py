"""`grader.classroom` piece by piece: snapshots, inputs (folders, rosters, git deadlines),
the sandbox's walls, the fallback, the cache and resuming, the gradebook, who moved,
the report, the Celery task's contract."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from grader import paths
from grader.classroom import gradebook, html, inputs, isolate, local, tasks
from grader.classroom.isolate import InfrastructureError, Outcome, Settings
from grader.classroom.plan import Cache, Plan
from grader.classroom.snapshot import Snapshot

FILE = "level1_simple_timer.py"


def _results(points: int, top: int = 24, message: str = "") -> dict:
    status = "passed" if points == top else "failing 1 of 2"
    return {
        "version": 3,
        "status": "pass" if points == top else "fail",
        "tests": [
            {"name": "simple_timer::a", "status": "pass", "message": None, "points": points,
             "max_points": points},
            {"name": "simple_timer::b", "status": "pass" if points == top else "fail",
             "message": message or None, "points": 0, "max_points": top - points},
        ],
        "points": points,
        "max_points": top,
        "exercises": [
            {"id": "simple_timer", "level": 1, "task_id": 1, "status": status, "points": points,
             "max_points": top}
        ],
    }  # fmt: skip


def _tree(root: Path, text: str = "x = 1\n") -> Path:
    (root / "level1").mkdir(parents=True)
    (root / "level1" / FILE).write_text(text)
    return root


@pytest.mark.timeout(30)
def test_a_snapshot_never_follows_links_and_hashes_content_only(tmp_path: Path) -> None:
    one = _tree(tmp_path / "one")
    secret = tmp_path / "secret.txt"
    secret.write_text("another learner's work")
    (one / "level1" / "link.py").symlink_to(secret)
    (one / "level1" / "folder").symlink_to(tmp_path)
    (one / "level1" / "__pycache__").mkdir()
    (one / "level1" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    snapshot = Snapshot.from_tree(one)
    assert set(snapshot.files) == {f"level1/{FILE}"}
    assert set(snapshot.skipped) == {"level1/link.py", "level1/folder"}
    two = _tree(tmp_path / "two")
    assert Snapshot.from_tree(two).content_hash == snapshot.content_hash
    again = Snapshot.from_archive(snapshot.archive())
    assert again.files == snapshot.files and snapshot.archive() == again.archive()


def _git(folder: Path, *args: str, date: str = "") -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "l",
        "GIT_AUTHOR_EMAIL": "l@x",
        "GIT_COMMITTER_NAME": "l",
    }
    env["GIT_COMMITTER_EMAIL"] = "l@x"
    if date:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    done = subprocess.run(
        ["git", *args], cwd=folder, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.mark.timeout(60)
def test_a_roster_grades_git_submissions_at_the_deadline(tmp_path: Path) -> None:
    repo = tmp_path / "alice"
    _tree(repo / "exercises", "early = 1\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "early", date="2025-03-01T10:00:00+00:00")
    early = _git(repo, "rev-parse", "HEAD")
    (repo / "exercises" / "level1" / FILE).write_text("late = 1\n")
    _git(repo, "commit", "-qam", "late", date="2025-03-05T10:00:00+00:00")
    late = _git(repo, "rev-parse", "HEAD")
    _tree(tmp_path / "bob", "bob = 1\n")  # a plain folder: the levels themselves
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "learner,source,commit\n"
        f"alice,alice,\nbob,bob,\ncarol,file://{repo},{early}\ndave,missing,\n"
    )
    work = tmp_path / "work"
    found = {s.learner: s for s in inputs.discover(roster, work, before="2025-03-02T00:00+00:00")}
    assert found["alice"].commit == early
    assert found["alice"].snapshot.files[f"level1/{FILE}"] == b"early = 1\n"
    assert found["carol"].commit == early  # a URL, at the roster's commit
    assert found["bob"].commit == "" and found["bob"].snapshot is not None
    assert found["dave"].snapshot is None and "no such folder" in found["dave"].problem
    at_head = {s.learner: s for s in inputs.discover(roster, work)}
    assert at_head["alice"].commit == late
    too_early = inputs.discover(roster, work, before="2020-01-01T00:00+00:00")
    assert "no commit before" in next(s for s in too_early if s.learner == "alice").problem


def test_a_roster_without_its_columns_is_refused(tmp_path: Path) -> None:
    roster = tmp_path / "r.csv"
    roster.write_text("name,where\na,b\n")
    with pytest.raises(inputs.InputError, match="no learner column"):
        inputs.discover(roster, tmp_path / "work")


def test_the_sandbox_command_has_every_wall(tmp_path: Path) -> None:
    cgroup = tmp_path / "cg"
    command = isolate.bwrap_command("/usr/bin/bwrap", {"A": "1"}, [cgroup], 1024)
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--clearenv"):
        assert flag in command
    assert command[command.index("--cap-drop") + 1] == "ALL"
    writable = [command[i + 1] for i, word in enumerate(command) if word == "--bind"]
    assert writable == [str(cgroup)], "only the learner's own cgroup is writable"
    mounted = {command[i + 1] for i, word in enumerate(command) if word == "--ro-bind-try"}
    assert str(paths.REPO_ROOT / "grader") in mounted
    for hidden in (paths.REPO_ROOT, paths.REPO_ROOT / "tests", paths.REPO_ROOT / ".git"):
        assert str(hidden) not in mounted


def test_without_bubblewrap_auto_falls_back_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(isolate, "bwrap_problem", lambda: "bubblewrap is not installed")
    with caplog.at_level(logging.WARNING, logger="grader.classroom"):
        assert isolate.resolve_mode("auto") == isolate.NONE
    assert "WITHOUT per-learner sandbox" in caplog.text
    with pytest.raises(InfrastructureError, match="not installed"):
        isolate.resolve_mode("bwrap")


PROBE = """
import json, os, socket
found = {}
for name, path in TARGETS.items():
    try:
        with open(os.path.join(path, "cronkata-probe.txt"), "w") as handle:
            handle.write("x")
        found[name] = "written"
    except OSError as error:
        found[name] = type(error).__name__
try:
    socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    found["network"] = "connected"
except OSError as error:
    found["network"] = type(error).__name__
found["processes"] = len([p for p in os.listdir("/proc") if p.isdigit()])
found["tests"] = os.path.exists(TESTS)
found["secrets"] = sorted(k for k in os.environ if "SECRET" in k)
raise RuntimeError("PROBE " + json.dumps(found) + " END")
"""


@pytest.mark.timeout(120)
def test_inside_the_sandbox_nothing_outside_can_be_written_or_reached(
    tmp_path: Path, pristine_exercises: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if isolate.bwrap_problem() is not None:
        pytest.skip(str(isolate.bwrap_problem()))
    other = tmp_path / "other-learner"
    other.mkdir()
    targets = {
        "course": str(paths.PACKAGE_DIR),
        "solutions": str(paths.SOLUTIONS_DIR),
        "venv": str(Path(os.__file__).parent),
        "other": str(other),
        "tmp": "/tmp",
    }
    tree = tmp_path / "exercises"
    shutil.copytree(pristine_exercises / "level1", tree / "level1")
    header = f"TARGETS = {targets!r}\nTESTS = {str(paths.REPO_ROOT / 'tests')!r}\n"
    (tree / "level1" / FILE).write_text(header + PROBE)
    monkeypatch.setenv("CRONKATA_SECRET_TOKEN", "s3cret")
    snapshot = Snapshot.from_tree(tree)
    request = isolate.Request("probe", snapshot.archive(), snapshot.content_hash, ("simple_timer",))
    outcome = isolate.grade(request, Settings(isolation=isolate.BWRAP, timeout=100))
    assert outcome.status == "graded", outcome
    message = outcome.results["tests"][0]["message"]
    found = json.loads(message.split("PROBE ", 1)[1].split(" END", 1)[0])
    assert found["tmp"] == "written"  # the private /tmp
    for name in ("course", "solutions", "venv", "other"):
        assert found[name] != "written", found
    assert found["network"] != "connected"
    assert found["processes"] < 20, "the host's processes are visible"
    assert found["tests"] is False and found["secrets"] == []
    assert not (other / "cronkata-probe.txt").exists()


def _submission(tmp_path: Path, name: str, text: str) -> inputs.Submission:
    return inputs.Submission(name, name, Snapshot.from_tree(_tree(tmp_path / name, text)))


@pytest.mark.timeout(30)
def test_an_interrupted_run_resumes_and_an_unchanged_submission_is_not_graded_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    submissions = [_submission(tmp_path, f"l{i}", f"x = {i}\n") for i in range(3)]
    graded: list[str] = []

    def fake_grade(request: isolate.Request, settings: Settings) -> Outcome:
        graded.append(request.learner)
        return Outcome(status="graded", results=_results(24), graded_at="t")

    monkeypatch.setattr(isolate, "grade", fake_grade)
    cache = Cache(tmp_path / "cache")

    def interrupt(key: str, outcome: Outcome) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        local.run_local(Plan(submissions, (), Settings(), cache), workers=1, on_result=interrupt)
    assert len(list(cache.folder.glob("*.json"))) >= 1  # written the moment it finished
    resumed = Plan(submissions, (), Settings(), cache)
    assert len(resumed.pending()) == 3 - len(resumed.cached) < 3
    local.run_local(resumed, workers=1)
    assert not Plan(submissions, (), Settings(), cache).pending()
    assert sorted(graded) == ["l0", "l1", "l2"], "each submission graded once over both runs"
    changed = Plan(submissions, ("simple_timer",), Settings(), cache)
    assert len(changed.pending()) == 3, "another selection is another grading"


@pytest.mark.timeout(30)
def test_infrastructure_errors_are_retried_then_recorded_but_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def broken(request: isolate.Request, settings: Settings) -> Outcome:
        calls.append(request.learner)
        raise InfrastructureError("no sandbox today")

    monkeypatch.setattr(isolate, "grade", broken)
    plan = Plan([_submission(tmp_path, "a", "a = 1\n")], (), Settings(), Cache(tmp_path / "c"))
    local.run_local(plan, workers=1)
    [outcome] = plan.outcomes.values()
    assert outcome.status == "error" and "no sandbox today" in outcome.message
    assert calls == ["a"] * local.LOCAL_ATTEMPTS
    assert not list((tmp_path / "c").glob("*.json"))


def _plan(tmp_path: Path, totals: dict[str, int], version: str, message: str = "") -> Plan:
    submissions = [_submission(tmp_path / version, n, f"{n} = 1\n") for n in totals]
    plan = Plan(submissions, ("simple_timer",), Settings(), Cache(tmp_path / version / "c"))
    plan.version = version
    for submission in submissions:
        key = plan.keys[submission.learner]
        results = _results(totals[submission.learner], message=message)
        plan.record(key, Outcome("graded", results, graded_at="2025-01-01T00:00:00+00:00"))
    return plan


def test_a_regrade_after_a_suite_change_shows_who_moved(tmp_path: Path) -> None:
    first = _plan(tmp_path, {"ann": 24, "ben": 10, "cid": 5}, "v1")
    out = tmp_path / "out"
    book = gradebook.build(first, gradebook.load(out))
    gradebook.write(out, book, first)
    second = _plan(tmp_path, {"ann": 24, "ben": 4, "cid": 9}, "v2", message="<script>x</script>")
    moved_book = gradebook.build(second, gradebook.load(out))
    gradebook.write(out, moved_book, second)
    report = html.write(out, moved_book, second)
    assert [(m.learner, m.before, m.after) for m in moved_book.moved] == [
        ("ben", 10, 4),
        ("cid", 5, 9),
    ]
    text = report.read_text()
    assert (
        "Who moved since the last grading" in text and "(the suites or the grader changed)" in text
    )
    assert "-6" in text and "+4" in text
    feedback = (out / "learners" / "ben" / "feedback.html").read_text()
    assert "<script>" not in feedback and "&lt;script&gt;" in feedback
    assert json.loads((out / "gradebook.previous.json").read_text())["course_version"] == "v1"


def test_the_csv_is_one_header_and_one_row_per_learner(tmp_path: Path) -> None:
    plan = _plan(tmp_path, {"ann": 24, "bob, jr": 3}, "v1")
    book = gradebook.build(plan)
    rows = list(csv.reader(io.StringIO(gradebook.csv_text(book))))
    assert rows[0][:5] == ["learner", "total", "max_points", "percent", "simple_timer"]
    assert rows[0][5:] == list(gradebook.TRAILING_COLUMNS)
    assert [r[:5] for r in rows[1:]] == [
        ["ann", "24", "24", "100.0", "24"],
        ["bob, jr", "3", "24", "12.5", "3"],
    ]
    context = html.context(book, plan)
    assert context["tests"][0]["name"] == "simple_timer::b"  # lowest rate first
    assert context["exercises"][0]["passed"] == 1


def test_the_celery_task_acks_late_and_retries_infrastructure_errors_only() -> None:
    task = tasks.grade_submission
    assert task.acks_late is True
    assert tuple(task.autoretry_for) == (InfrastructureError,)
    assert task.max_retries == tasks.MAX_RETRIES
    from grader.classroom.celery_app import app

    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1
    payload = tasks.payload_of(
        isolate.Request("a", b"", "h", ()), Settings(), version="not-this-course"
    )
    with pytest.raises(tasks.CourseMismatchError, match="update the worker"):
        task.run(payload)
