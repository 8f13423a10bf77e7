"""A bad setting makes the reference solutions say one clear line and exit 2, no traceback.

Run as their headers say, from their own folder: ``python config.py`` and
``python standalone_app.py`` (solutions/apscheduler) with a SCHEDULER_JOBSTORE_URL that is no
URL, names an unknown database, or points at a closed port; ``python beat_config.py``
(solutions/celery_beat) with a CELERY_BEAT_DEMO_SECONDS beat cannot use. Importing
beat_config (as Celery does through tasks.py) raises a ValueError naming the variable.
Nothing here waits for a scheduler: every run ends by itself, at start-up.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader import paths

APSCHEDULER = paths.SOLUTIONS_DIR / "apscheduler"
CELERY_BEAT = paths.SOLUTIONS_DIR / "celery_beat"
SECRET = "s3cret-pw"
BAD_URLS = {
    "not a url": "not a SQLAlchemy URL",
    "foo://x": "unknown database 'foo'",
    # nothing listens on port 1: refused at once (or, without psycopg, "not installed")
    f"postgresql+psycopg://user:{SECRET}@127.0.0.1:1/db": "127.0.0.1",
}
BAD_DEMO_VALUES = ["1e-9", "nan", "inf", "-inf", "0", "86401", "ten", "  nan  "]

pytestmark = pytest.mark.timeout(60)


def _run(folder: Path, script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SCHEDULER_", "CELERY_"))}
    return subprocess.run(
        [sys.executable, script],
        cwd=folder,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _expect_one_line(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, f"exit status {done.returncode}, stderr:\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{done.stderr}"
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


@pytest.mark.parametrize("script", ["config.py", "standalone_app.py"])
@pytest.mark.parametrize("url", sorted(BAD_URLS))
def test_a_bad_jobstore_url_is_one_line_and_exit_2(script: str, url: str) -> None:
    done = _run(APSCHEDULER, script, {"SCHEDULER_JOBSTORE_URL": url})
    line = _expect_one_line(done, "SCHEDULER_JOBSTORE_URL", BAD_URLS[url])
    assert SECRET not in line, "the URL's password must never be logged"


@pytest.mark.parametrize("script", ["config.py", "standalone_app.py"])
def test_every_bad_setting_is_named_on_the_one_line(script: str) -> None:
    done = _run(
        APSCHEDULER, script, {"SCHEDULER_TIMEZONE": "Mars/Olympus", "SCHEDULER_MAX_WORKERS": "0"}
    )
    _expect_one_line(done, "SCHEDULER_TIMEZONE", "'Mars/Olympus'", "SCHEDULER_MAX_WORKERS")


def test_config_with_a_reachable_sqlite_store_says_what_it_built(tmp_path: Path) -> None:
    done = _run(
        APSCHEDULER, "config.py", {"SCHEDULER_JOBSTORE_URL": f"sqlite:///{tmp_path / 'j.db'}"}
    )
    assert done.returncode == 0, done.stderr
    assert "job store: SQLAlchemy" in done.stderr


def test_an_empty_jobstore_url_means_memory() -> None:
    done = _run(APSCHEDULER, "config.py", {"SCHEDULER_JOBSTORE_URL": ""})
    assert done.returncode == 0, done.stderr
    assert "job store: memory" in done.stderr


@pytest.mark.parametrize("value", BAD_DEMO_VALUES)
def test_a_bad_demo_variable_is_one_line_and_exit_2(value: str) -> None:
    done = _run(CELERY_BEAT, "beat_config.py", {"CELERY_BEAT_DEMO_SECONDS": value})
    _expect_one_line(done, "CELERY_BEAT_DEMO_SECONDS", "0.5", "86400", repr(value.strip()))


def test_importing_beat_config_with_a_bad_demo_variable_raises_a_clear_value_error() -> None:
    code = "import beat_config\nraise SystemExit('imported')\n"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=CELERY_BEAT,
        env={**clean, "CELERY_BEAT_DEMO_SECONDS": "nan"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError: CELERY_BEAT_DEMO_SECONDS must be"), done.stderr


@pytest.mark.parametrize(("value", "period"), [("", "0:10:00"), ("0.5", "0:00:00.5"),
                                               ("86400", "1 day")])  # fmt: skip
def test_beat_config_prints_the_schedule_for_a_usable_value(value: str, period: str) -> None:
    done = _run(CELERY_BEAT, "beat_config.py", {"CELERY_BEAT_DEMO_SECONDS": value})
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    cleanup = [line for line in done.stdout.splitlines() if line.startswith("cleanup-")]
    assert len(cleanup) == 1 and period in cleanup[0], done.stdout
