"""`grader class grade --celery` with two real workers gives the local run's gradebook.

Needs Redis on 127.0.0.1:6379 (database 11, flushed before and after) and bubblewrap.
Without Redis the test is skipped, unless CRONKATA_REQUIRE_SERVICES=1 (CI): then it
fails. Two workers run as `celery -A grader.classroom worker --concurrency 1` with
distinct hostnames; the class is a small demo class graded on simple_timer only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from grader import paths
from grader.classroom import demo, isolate

DB = 11  # emptied by conftest.clean_redis
URL = f"redis://127.0.0.1:6379/{DB}"
pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]
VOLATILE = ("graded_at",)  # when, not what


def require_bwrap() -> None:
    """Skip without a working bubblewrap, or fail under CRONKATA_REQUIRE_SERVICES=1 (CI)."""
    problem = isolate.bwrap_problem()
    if problem is None:
        return
    if os.environ.get("CRONKATA_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{problem} and CRONKATA_REQUIRE_SERVICES=1")
    pytest.skip(problem)


def _env() -> dict[str, str]:
    return {**os.environ, "CRONKATA_CLASS_BROKER": URL, "COLUMNS": "150"}


@pytest.fixture
def workers(clean_redis: redis.Redis, tmp_path: Path) -> Iterator[list[str]]:
    """Two real workers; yields their hostnames once both answer a ping."""
    require_bwrap()
    celery = str(Path(sys.executable).with_name("celery"))
    names = ["grader-a@cronkata", "grader-b@cronkata"]
    started = []
    for name in names:
        log = (tmp_path / f"{name}.log").open("wb")
        command = [celery, "-A", "grader.classroom", "worker", "--concurrency", "1"]
        command += ["--hostname", name, "--loglevel", "INFO", "--without-mingle"]
        process = subprocess.Popen(
            command, cwd=paths.REPO_ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT
        )
        started.append((process, log))
    try:
        from grader.classroom.celery_app import app

        app.conf.broker_url = app.conf.result_backend = URL
        answered: set[str] = set()
        for _ in range(60):  # each ping waits up to a second for the replies
            replies = app.control.ping(timeout=1.0) or []
            answered |= {name for reply in replies for name in reply}
            if answered >= set(names):
                break
        assert answered >= set(names), f"workers did not come up: {answered}"
        yield names
    finally:
        for process, _log in started:
            process.send_signal(signal.SIGTERM)
        for process, log in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


def _grade(source: Path, out: Path, *extra: str) -> dict:
    command = [sys.executable, "-m", "grader", "class", "grade", str(source), "--out", str(out)]
    command += ["--only", "simple_timer", "--isolation", "bwrap", *extra]
    done = subprocess.run(
        command,
        cwd=paths.REPO_ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / "gradebook.json").read_text())


def _rows(book: dict) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in book["learners"]]


def test_two_celery_workers_give_the_local_gradebook(
    workers: list[str], tmp_path: Path, clean_redis: redis.Redis
) -> None:
    source = tmp_path / "class"
    demo.make_class(source, count=6, distinct=True)
    local = _grade(source, tmp_path / "local")
    remote = _grade(source, tmp_path / "celery", "--celery")
    assert _rows(remote) == _rows(local)
    assert [r["total"] for r in _rows(local)].count(0) >= 1  # not all alike: a real check
    hosts = {
        json.loads(path.read_text())["host"] for path in (tmp_path / "celery" / ".cache").iterdir()
    }
    assert hosts == set(workers), f"both workers should have graded: {hosts}"
    for learner in _rows(remote):
        assert (tmp_path / "celery" / learner["results"]).is_file()
