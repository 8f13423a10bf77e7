"""Level 1 reference solution: scheduler settings from the environment, validated early.

What it teaches (notes/07a_ap_scheduler_intro.md):
    * one typed settings object (pydantic-settings) read from ``SCHEDULER_*`` variables;
    * reject bad values at start-up with a message naming the field, not later in a job;
    * ``coalesce``, ``misfire_grace_time`` and ``max_instances`` belong in ``job_defaults``:
      passed as scheduler keyword arguments they are silently ignored;
    * ``jobstore_url`` switches from the in-memory store to a persistent SQLAlchemy store.

How to run (it prints the settings and the scheduler it would build):
    cd solutions/apscheduler && python config.py
    cd solutions/apscheduler && SCHEDULER_TIMEZONE=Europe/Berlin python config.py
    cd solutions/apscheduler && SCHEDULER_JOBSTORE_URL=sqlite:////tmp/jobs.sqlite python config.py

Sibling files import it by bare name: ``from config import build_scheduler, load_settings``.
"""

import logging
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import BaseJobStore
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger(__name__)


class SchedulerSettings(BaseSettings):
    """Scheduler configuration, read from ``SCHEDULER_<FIELD>`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="SCHEDULER_")

    timezone: str = "UTC"  # an IANA name such as "Europe/Berlin"
    jobstore_url: str | None = None  # None: in memory; else a SQLAlchemy URL
    max_workers: int = Field(default=10, ge=1, le=100)  # threads running jobs
    coalesce: bool = True  # run a late job once, not once per missed run
    misfire_grace_time: int = Field(default=30, ge=1)  # seconds a run may start late
    max_instances: int = Field(default=1, ge=1)  # concurrent runs of one job

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        """Reject a name that is not an IANA time zone (ZoneInfo cannot load it)."""
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name such as 'Europe/Berlin'"
            ) from error
        return value

    @field_validator("jobstore_url", mode="before")
    @classmethod
    def _blank_url_means_memory(cls, value: object) -> object:
        """Treat an empty ``SCHEDULER_JOBSTORE_URL=`` like an unset one."""
        if isinstance(value, str) and not value.strip():
            return None
        return value


def load_settings() -> SchedulerSettings:
    """Read the settings from the environment; bad values raise ``pydantic.ValidationError``."""
    return SchedulerSettings()


def _jobstore(settings: SchedulerSettings) -> BaseJobStore:
    """The default job store: SQLAlchemy when a URL is configured, else in memory."""
    if settings.jobstore_url:
        return SQLAlchemyJobStore(url=settings.jobstore_url)
    return MemoryJobStore()


def build_scheduler(settings: SchedulerSettings | None = None) -> BackgroundScheduler:
    """Return a configured ``BackgroundScheduler``, not started (the caller starts it)."""
    if settings is None:
        settings = load_settings()
    return BackgroundScheduler(
        jobstores={"default": _jobstore(settings)},
        executors={"default": ThreadPoolExecutor(settings.max_workers)},
        job_defaults={
            "coalesce": settings.coalesce,
            "misfire_grace_time": settings.misfire_grace_time,
            "max_instances": settings.max_instances,
        },
        timezone=ZoneInfo(settings.timezone),
    )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        current = load_settings()
    except ValueError as error:  # pydantic's ValidationError names every bad field
        logger.error("invalid scheduler settings: %s", error)
        raise SystemExit(1) from None
    # The URL may hold a database password: never log it.
    logger.info("settings: %s", current.model_dump(exclude={"jobstore_url"}))
    logger.info("job store: %s", "SQLAlchemy" if current.jobstore_url else "memory")
    scheduler = build_scheduler(current)
    logger.info("scheduler built (not started), time zone %s", scheduler.timezone)
