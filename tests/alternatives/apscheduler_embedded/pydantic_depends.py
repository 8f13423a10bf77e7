"""Correct: pydantic response models, Depends() for the scheduler, shutdown off the event loop."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from operator import attrgetter

from apscheduler.schedulers.base import BaseScheduler
from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from config import build_scheduler, load_settings

HEARTBEAT_JOB_ID = "heartbeat"
HEARTBEAT_SECONDS = 30

logger = logging.getLogger(__name__)


def heartbeat() -> None:
    """Log exactly one INFO record whose message contains "heartbeat", with ``logger``."""
    logger.log(logging.INFO, "%s job ran", "heartbeat")


def register_jobs(scheduler: BaseScheduler) -> None:
    """Add the heartbeat job to ``scheduler`` (started or not); return nothing."""
    options = {
        "trigger": "interval",  # the alias inherits the scheduler's time zone
        "seconds": HEARTBEAT_SECONDS,
        "id": HEARTBEAT_JOB_ID,
        "replace_existing": True,
    }
    scheduler.add_job(heartbeat, **options)


class JobOut(BaseModel):
    id: str
    name: str
    trigger: str
    next_run_time: str | None  # pre-formatted with isoformat(), so the offset is kept as is


class HealthOut(BaseModel):
    status: str = "ok"
    scheduler_running: bool


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
            # wait=True blocks until running jobs finish: do it in a worker thread
            await run_in_threadpool(scheduler.shutdown, wait=True)


def current_scheduler(request: Request) -> BaseScheduler | None:
    return getattr(request.app.state, "scheduler", None)


def create_app() -> FastAPI:
    """Return a NEW FastAPI app using ``lifespan``, with two endpoints."""
    app = FastAPI(lifespan=lifespan)

    @app.get("/jobs", response_model=list[JobOut])
    def jobs(scheduler: BaseScheduler | None = Depends(current_scheduler)) -> list[JobOut]:
        if scheduler is None:
            return []
        tz = scheduler.timezone
        out = []
        for job in sorted(scheduler.get_jobs(), key=attrgetter("id")):
            nrt = job.next_run_time
            out.append(
                JobOut(
                    id=job.id,
                    name=job.name,
                    trigger=str(job.trigger),
                    next_run_time=nrt.astimezone(tz).isoformat() if nrt is not None else None,
                )
            )
        return out

    @app.get("/health", response_model=HealthOut)
    def health(scheduler: BaseScheduler | None = Depends(current_scheduler)) -> HealthOut:
        return HealthOut(scheduler_running=bool(scheduler and scheduler.running))

    return app


app = create_app()
