"""Level 1 reference solution: a scheduler living inside a FastAPI app.

What it teaches (notes/07a_ap_scheduler_intro.md):
    * the FastAPI lifespan starts the scheduler before the first request and shuts it down
      (waiting for running jobs) after the last one: no thread is left behind;
    * a fixed job id plus ``replace_existing=True`` makes registration idempotent, so a
      restart against a persistent job store still leaves exactly one job;
    * jobs are referenced as module-level functions, so a persistent store can save them;
    * ``next_run_time`` is an aware datetime in the scheduler's zone: ``isoformat()`` keeps
      the offset, so clients never have to guess the zone.

How to run (with the course's venv: `python3 -m grader setup`, once, from the repository
root, creates .venv), in ONE process:
    cd solutions/apscheduler && ../../.venv/bin/uvicorn embedded_app:app
    curl localhost:8000/jobs ; curl localhost:8000/health
The app's own lines ("embedded_app: scheduler started", the heartbeats) show next to
uvicorn's: the lifespan configures logging at INFO unless it is configured already (for
instance by ``uvicorn --log-config``).

Settings come from SCHEDULER_* variables (see config.py), e.g.
    SCHEDULER_TIMEZONE=Europe/Berlin SCHEDULER_JOBSTORE_URL=sqlite:////tmp/jobs.sqlite \\
        ../../.venv/bin/uvicorn embedded_app:app

Never with ``--workers N``: every process that imports this app runs its own scheduler,
so ``uvicorn embedded_app:app --workers 2`` runs every job twice (two heartbeats every
30 s), ``--workers 4`` four times; so do two replicas or pods. Either run the scheduler in
a process of its own (standalone_app.py) and scale the web tier freely, or let each
instance claim each tick first, so that exactly one runs it: level 3's coordinator
(solutions/level3_distributed_coordinator.py, notes/07e_best_practices.md section 3).
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import tzinfo

from apscheduler.job import Job
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger
from config import build_scheduler, load_settings
from fastapi import FastAPI, HTTPException, Request

HEARTBEAT_JOB_ID = "heartbeat"
HEARTBEAT_SECONDS = 30

logger = logging.getLogger(__name__)


def heartbeat() -> None:
    """Log one INFO line showing that the scheduler is alive."""
    logger.info("heartbeat")


def register_jobs(scheduler: BaseScheduler) -> None:
    """Add the heartbeat job (every 30 s); safe to call again, it replaces the old one."""
    scheduler.add_job(
        heartbeat,  # the function itself: a persistent store saves it as "module:heartbeat"
        IntervalTrigger(seconds=HEARTBEAT_SECONDS, timezone=scheduler.timezone),
        id=HEARTBEAT_JOB_ID,
        name="heartbeat",
        replace_existing=True,
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the scheduler with the app; on shutdown stop it and wait for running jobs."""
    # Show our INFO lines next to uvicorn's (does nothing if logging is already set up).
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    scheduler = build_scheduler(load_settings())
    register_jobs(scheduler)
    scheduler.start()
    app.state.scheduler = scheduler
    logger.info("scheduler started")
    try:
        yield
    finally:
        # Something may have stopped it already: shutdown() would then raise
        # SchedulerNotRunningError. Blocks the event loop until running jobs finish: fine,
        # the app is stopping.
        if scheduler.running:
            scheduler.shutdown(wait=True)
        logger.info("scheduler stopped")


def _scheduler_of(request: Request) -> BaseScheduler | None:
    """The scheduler the lifespan stored on the app, or None if the lifespan has not run."""
    scheduler: BaseScheduler | None = getattr(request.app.state, "scheduler", None)
    return scheduler


def _job_to_dict(job: Job, zone: tzinfo) -> dict[str, str | None]:
    """One job as JSON; next_run_time is ISO 8601 in the scheduler's zone, None if paused."""
    next_run = getattr(job, "next_run_time", None)  # missing until the scheduler starts
    return {
        "id": job.id,
        "name": job.name,
        "trigger": str(job.trigger),
        "next_run_time": next_run.astimezone(zone).isoformat() if next_run else None,
    }


def create_app() -> FastAPI:
    """Build a new FastAPI app whose lifespan runs the scheduler, with /jobs and /health."""
    app = FastAPI(title="cronkata: embedded scheduler", lifespan=lifespan)

    # Plain `def` endpoints run in a worker thread: reading a SQL job store blocks.
    @app.get("/jobs")
    def list_jobs(request: Request) -> list[dict[str, str | None]]:
        """All scheduled jobs, sorted by id."""
        scheduler = _scheduler_of(request)
        if scheduler is None:
            raise HTTPException(status_code=503, detail="scheduler not started")
        jobs = sorted(scheduler.get_jobs(), key=lambda job: job.id)
        return [_job_to_dict(job, scheduler.timezone) for job in jobs]

    @app.get("/health")
    def health(request: Request) -> dict[str, str | bool]:
        """Liveness of the app and whether its scheduler is running."""
        scheduler = _scheduler_of(request)
        running = scheduler is not None and bool(scheduler.running)
        return {"status": "ok", "scheduler_running": running}

    return app


app = create_app()
