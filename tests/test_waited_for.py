"""`grader.testing.run_until_waited_for`: a job that runs exactly until shutdown waits for it."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from grader.testing import run_until_waited_for

pytestmark = pytest.mark.timeout(30)

CAP = 3.0


def _scheduler_with_a_held_job() -> tuple[BackgroundScheduler, threading.Event, list[bool]]:
    """A started scheduler running a held job; set the event to let the job go."""
    scheduler = BackgroundScheduler(timezone="UTC")
    started, stop, outcome = threading.Event(), threading.Event(), []

    def held() -> None:
        started.set()
        outcome.append(run_until_waited_for(stop, CAP))

    scheduler.add_job(held, "date", run_date=datetime.now(UTC))
    scheduler.start()
    assert started.wait(5)
    # The scheduler thread removes the spent date job just after submitting it; a
    # shutdown() racing with that removal makes it raise JobLookupError in its thread.
    deadline = time.monotonic() + 5
    while scheduler.get_jobs() and time.monotonic() < deadline:
        threading.Event().wait(0.001)
    return scheduler, stop, outcome


def test_a_waiting_shutdown_releases_the_job_at_once() -> None:
    scheduler, _, outcome = _scheduler_with_a_held_job()
    began = time.monotonic()
    scheduler.shutdown(wait=True)
    assert outcome == [True]
    assert time.monotonic() - began < CAP / 2


def test_a_shutdown_that_does_not_wait_leaves_the_job_running() -> None:
    scheduler, stop, outcome = _scheduler_with_a_held_job()
    time.sleep(0.1)  # a slow shutdown(wait=False) still joins no worker
    scheduler.shutdown(wait=False)
    assert outcome == [], "the job ended although nothing waited for it"
    stop.set()


def test_the_job_ends_by_itself_after_the_cap_or_when_told() -> None:
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    began = time.monotonic()
    assert run_until_waited_for(stop, CAP) is False
    assert time.monotonic() - began < CAP / 2
    assert run_until_waited_for(cap=0.05) is False
