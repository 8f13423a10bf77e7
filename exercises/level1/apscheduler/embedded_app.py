"""Exercise apscheduler_embedded (level 1): a scheduler living inside a FastAPI app.

Read first: notes/07a_ap_scheduler_intro.md (section "FastAPI lifespan").
Do the apscheduler_config exercise first: this file uses its ``build_scheduler`` and
``load_settings`` (``from config import ...`` finds config.py next to this file).

Build a FastAPI app whose lifespan starts a scheduler at startup and stops it at shutdown,
with one "heartbeat" job every 30 seconds and two endpoints, ``GET /jobs`` and
``GET /health``, that show what the scheduler is doing.
At the end of the module, ``app = create_app()`` gives ``uvicorn embedded_app:app`` an
app to serve (#module-app).

Each promise the tests grade ends with a tag such as (#first-run-after-interval); a
failing test names its tag.

Keep the names, signatures and constants below exactly as they are: the hidden tests
import them. Replace each ``raise NotImplementedError(...)`` with your code.

Check your work:  python3 -m grader check apscheduler_embedded   (from the repository root)
Try it by hand:   cd exercises/level1/apscheduler && ../../../.venv/bin/uvicorn embedded_app:app
                  then: curl localhost:8000/jobs ; curl localhost:8000/health
                  (`python3 -m grader setup`, once, from the repository root, creates .venv;
                  your INFO lines show next to uvicorn's once the lifespan calls
                  ``logging.basicConfig(level=logging.INFO)``: uvicorn configures only its
                  own loggers)

Run it in ONE process, never with ``--workers N``: each worker process runs the lifespan,
so ``uvicorn embedded_app:app --workers 2`` starts two schedulers and every job runs twice
(two heartbeats every 30 s); so do two replicas or pods. Level 3's coordinator
(solutions/level3_distributed_coordinator.py, notes/07e_best_practices.md section 3) makes
N instances run each tick exactly once.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from apscheduler.schedulers.base import BaseScheduler
from fastapi import FastAPI

HEARTBEAT_JOB_ID = "heartbeat"
HEARTBEAT_SECONDS = 30

logger = logging.getLogger(__name__)


def heartbeat() -> None:
    """Log exactly one INFO record whose message contains "heartbeat", with ``logger``, and
    return nothing (#heartbeat-logs-one-info-record)."""
    raise NotImplementedError("log one INFO line containing 'heartbeat'")


def register_jobs(scheduler: BaseScheduler) -> None:
    """Add the heartbeat job to ``scheduler`` (started or not); return nothing.

    The job calls the module-level function ``heartbeat`` (pass the function itself, not
    a lambda or a wrapper: a persistent job store must be able to save a reference to it)
    (#job-calls-heartbeat), every HEARTBEAT_SECONDS seconds (#every-30-seconds), in the
    scheduler's time zone (#trigger-in-scheduler-zone), under the fixed id
    HEARTBEAT_JOB_ID (#fixed-job-id).

    It must be idempotent: the tests call it twice (#register-idempotent), and also restart
    the app against the same SQLite job store (SCHEDULER_JOBSTORE_URL)
    (#restart-keeps-one-job), and expect exactly one job with that id afterwards - never a
    duplicate, never a ConflictingIdError.
    """
    raise NotImplementedError("add the heartbeat job with a fixed id so that re-adding replaces it")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the scheduler for as long as the app runs.

    At startup (before the ``yield``): build the scheduler with
    ``build_scheduler(load_settings())`` (import both from config), register the jobs,
    start it and store it on ``app.state.scheduler`` (#lifespan-starts-scheduler).
    At shutdown (after the ``yield``): shut the scheduler down, even if the app failed
    (``try``/``finally`` around the ``yield``) (#shutdown-even-if-failed), waiting for
    running jobs (#shutdown-waits-for-jobs); a scheduler that is already stopped (someone
    called ``shutdown()`` while the app ran) is left alone: check ``scheduler.running``
    first, since shutting down a stopped scheduler raises SchedulerNotRunningError
    (#shutdown-tolerates-stopped). The tests check that it runs while the app serves
    requests and that it is stopped, with no scheduler thread left, once the app has
    stopped (#no-thread-left).
    """
    raise NotImplementedError("start the scheduler before the yield and shut it down after it")
    yield  # keeps this an async generator, as @asynccontextmanager requires; remove the raise


def create_app() -> FastAPI:
    """Return a NEW FastAPI app (another object at each call) using ``lifespan``, with two
    endpoints (#new-app-each-call).

    ``GET /jobs`` answers 200 with a JSON list, sorted by job id (#jobs-list-sorted-by-id),
    of one object per job of the running scheduler (#job-fields)::

        {"id": "heartbeat", "name": "heartbeat", "trigger": "interval[0:00:30]",
         "next_run_time": "2026-01-05T09:00:30.123456+01:00"}

    where "trigger" is ``str(job.trigger)`` and "next_run_time" is the job's next run time
    converted to the scheduler's time zone and formatted with ``datetime.isoformat()`` (so
    it keeps its UTC offset, e.g. +01:00 for SCHEDULER_TIMEZONE=Europe/Berlin, +00:00 for
    UTC) (#next-run-time-isoformat-in-zone), or null for a paused job (#paused-job-null).

    ``GET /health`` answers ``{"status": "ok", "scheduler_running": true}`` while the
    scheduler runs (#health-running), and ``false`` once it has been shut down
    (``scheduler.running``, not "a scheduler exists") (#health-not-running).
    """
    raise NotImplementedError(
        "create FastAPI(lifespan=lifespan) and add the /jobs and /health routes"
    )


# TODO: once create_app works, replace this line with `app = create_app()`
# so that `uvicorn embedded_app:app` finds the app.
app: FastAPI | None = None
