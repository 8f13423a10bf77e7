"""BUG: next_run_time must be null for a paused job; here a paused job makes GET /jobs fail with 500."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from apscheduler.schedulers.base import BaseScheduler
from fastapi import FastAPI, Request

from config import build_scheduler, load_settings

HEARTBEAT_JOB_ID = "heartbeat"
HEARTBEAT_SECONDS = 30

logger = logging.getLogger(__name__)


def heartbeat() -> None:
    """Log exactly one INFO record whose message contains "heartbeat", with ``logger``."""
    logger.info("heartbeat")


def register_jobs(scheduler: BaseScheduler) -> None:
    """Add the heartbeat job to ``scheduler`` (started or not); return nothing."""
    scheduler.add_job(
        heartbeat,
        "interval",
        seconds=HEARTBEAT_SECONDS,
        id=HEARTBEAT_JOB_ID,
        replace_existing=True,
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the scheduler for as long as the app runs."""
    scheduler = build_scheduler(load_settings())
    register_jobs(scheduler)
    scheduler.start()
    app.state.scheduler = scheduler
    try:
        yield
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=True)


def _job_to_dict(job, scheduler) -> dict:
    next_run = job.next_run_time
    return {
        "id": job.id,
        "name": job.name,
        "trigger": str(job.trigger),
        "next_run_time": next_run.astimezone(scheduler.timezone).isoformat(),
    }


def create_app() -> FastAPI:
    """Return a NEW FastAPI app using ``lifespan``, with two endpoints."""
    app = FastAPI(lifespan=lifespan)

    @app.get("/jobs")
    def list_jobs(request: Request) -> list[dict]:
        scheduler = request.app.state.scheduler
        jobs = sorted(scheduler.get_jobs(), key=lambda job: job.id)
        return [_job_to_dict(job, scheduler) for job in jobs]

    @app.get("/health")
    def health(request: Request) -> dict:
        scheduler = getattr(request.app.state, "scheduler", None)
        return {"status": "ok", "scheduler_running": bool(scheduler is not None and scheduler.running)}

    return app


app = create_app()
