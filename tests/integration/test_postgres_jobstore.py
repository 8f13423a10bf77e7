"""Real PostgreSQL: the apscheduler solutions with SCHEDULER_JOBSTORE_URL=postgresql+psycopg://...

Needs PostgreSQL on 127.0.0.1:5432 (trust auth as ``postgres``, or CRONKATA_POSTGRES_ADMIN_URL)
and the driver (the project's ``postgres`` extra, part of ``dev``). It creates a database of
its own and drops it. Without PostgreSQL the test is skipped, unless
CRONKATA_REQUIRE_SERVICES=1 (CI): then it fails.

As the headers say: ``python config.py`` connects and reports a SQLAlchemy store;
``python standalone_app.py`` stores its heartbeat job in the database, stops on SIGTERM
with status 0, and a second run finds the job there (still one); a database that does not
exist on the running server is one ERROR line and exit status 2.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine, text

from grader import paths

FOLDER = paths.SOLUTIONS_DIR / "apscheduler"
WAIT = 20.0

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def _env(url: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
    return {**clean, "SCHEDULER_JOBSTORE_URL": url, "PYTHONUNBUFFERED": "1"}


def _run_until_started_then_sigterm(url: str) -> tuple[int, str]:
    """Start standalone_app.py, wait for its 'started' line, SIGTERM it: (status, stderr)."""
    process = subprocess.Popen(
        [sys.executable, "standalone_app.py"],
        cwd=FOLDER,
        env=_env(url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + WAIT
    try:
        for line in process.stderr:  # blocks on the process's own output, no sleeping
            seen.append(line)
            if "scheduler started" in line:
                break
            if time.monotonic() > deadline:
                break
        assert any("scheduler started" in line for line in seen), "".join(seen)
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=WAIT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, "".join(seen) + rest


def _stored_job_ids(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text("SELECT id FROM apscheduler_jobs")).scalars())
    finally:
        engine.dispose()


def test_the_solutions_keep_their_jobs_in_postgresql(postgres_database: str) -> None:
    done = subprocess.run(
        [sys.executable, "config.py"],
        cwd=FOLDER,
        env=_env(postgres_database),
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "job store: SQLAlchemy" in done.stderr

    status, log = _run_until_started_then_sigterm(postgres_database)
    assert status == 0, log
    assert "scheduler stopped" in log
    assert _stored_job_ids(postgres_database) == ["heartbeat"]

    status, log = _run_until_started_then_sigterm(postgres_database)  # a restart
    assert status == 0, log
    assert _stored_job_ids(postgres_database) == ["heartbeat"]


@pytest.mark.parametrize("script", ["config.py", "standalone_app.py"])
def test_a_missing_database_on_a_running_server_is_one_line(
    postgres_database: str, script: str
) -> None:
    missing = postgres_database.rsplit("/", 1)[0] + "/cronkata_no_such_database"
    done = subprocess.run(
        [sys.executable, script],
        cwd=FOLDER,
        env=_env(missing),
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert len(lines) == 1, done.stderr
    assert "SCHEDULER_JOBSTORE_URL" in lines[0]
    assert 'database "cronkata_no_such_database" does not exist' in lines[0]
