"""Correct: class-based job serializer, module-level APIRouter, explicit IntervalTrigger instance."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from apscheduler.job import Job
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger
from fastapi import APIRouter, FastAPI, Request

from config import build_scheduler, load_settings

HEARTBEAT_JOB_ID = "heartbeat"
HEARTBEAT_SECONDS = 30

logger = logging.getLogger(__name__)


def heartbeat() -> None:
    """Log exactly one INFO record whose message contains "heartbeat", with ``logger``."""
    logger.info("heartbeat tick: the embedded scheduler is alive")


def register_jobs(scheduler: BaseScheduler) -> None:
    """Add the heartbeat job to ``scheduler`` (started or not); return nothing."""
    # A trigger instance does not inherit the scheduler's zone, so pass it explicitly.
    trigger = IntervalTrigger(seconds=HEARTBEAT_SECONDS, timezone=scheduler.timezone)
    scheduler.add_job(
        func=heartbeat,
        trigger=trigger,
        id=HEARTBEAT_JOB_ID,
        name="heartbeat",
        replace_existing=True,
    )


class JobSerializer:
    """Turns APScheduler jobs into the JSON objects served by GET /jobs."""

    def __init__(self, scheduler: BaseScheduler) -> None:
        self._tz = scheduler.timezone

    def one(self, job: Job) -> dict[str, Any]:
        when = job.next_run_time
        return {
            "id": job.id,
            "name": job.name,
            "trigger": str(job.trigger),
            "next_run_time": None if when is None else when.astimezone(self._tz).isoformat(),
        }

    def many(self, jobs: list[Job]) -> list[dict[str, Any]]:
        return [self.one(job) for job in sorted(jobs, key=lambda j: j.id)]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the scheduler for as long as the app runs."""
    scheduler = build_scheduler(load_settings())
    register_jobs(scheduler)
    scheduler.start()
    app.state.scheduler = scheduler
    logger.info("embedded scheduler up")
    try:
        yield
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=True)
        logger.info("embedded scheduler down")


router = APIRouter()


def _scheduler_of(request: Request) -> BaseScheduler | None:
    return getattr(request.app.state, "scheduler", None)


@router.get("/jobs")
def get_jobs(request: Request) -> list[dict[str, Any]]:
    scheduler = _scheduler_of(request)
    if scheduler is None:
        return []
    return JobSerializer(scheduler).many(scheduler.get_jobs())


@router.get("/health")
def get_health(request: Request) -> dict[str, Any]:
    scheduler = _scheduler_of(request)
    running = scheduler is not None and scheduler.running
    return {"status": "ok", "scheduler_running": running}


def create_app() -> FastAPI:
    """Return a NEW FastAPI app using ``lifespan``, with two endpoints."""
    application = FastAPI(title="cronkata embedded scheduler", lifespan=lifespan)
    application.include_router(router)
    return application


app = create_app()
