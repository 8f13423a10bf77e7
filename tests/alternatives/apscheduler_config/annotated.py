"""apscheduler_config, correct: Annotated constraints, a field_validator, explicit job store/executor objects."""

import logging
from typing import Annotated
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import BaseJobStore
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from pydantic import AfterValidator, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

logger = logging.getLogger(__name__)

PositiveSeconds = Annotated[int, Field(ge=1, le=24 * 3600)]


def _sqlalchemy_url(value: str) -> str:
    try:
        make_url(value).get_dialect()  # parses, and finds the dialect (no connection)
    except ArgumentError as exc:  # NoSuchModuleError is an ArgumentError
        raise ValueError(f"jobstore_url: SQLAlchemy cannot use this URL ({exc})") from exc
    return value


SqlAlchemyUrl = Annotated[str, AfterValidator(_sqlalchemy_url)]


class SchedulerSettings(BaseSettings):
    """Scheduler configuration, read from ``SCHEDULER_<FIELD>`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="SCHEDULER_")

    timezone: str = "UTC"
    jobstore_url: SqlAlchemyUrl | None = None
    max_workers: Annotated[int, Field(ge=1, le=100)] = 10
    coalesce: bool = True
    misfire_grace_time: PositiveSeconds = 30
    max_instances: Annotated[int, Field(ge=1, le=100)] = 1

    @field_validator("timezone")
    @classmethod
    def _loadable_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except Exception as exc:  # ZoneInfoNotFoundError is a KeyError; "" gives ValueError
            raise ValueError(f"timezone {value!r} is not a known IANA time zone") from exc
        return value


def load_settings() -> SchedulerSettings:
    return SchedulerSettings()


def _jobstore(settings: SchedulerSettings) -> BaseJobStore:
    if settings.jobstore_url is None:
        return MemoryJobStore()
    return SQLAlchemyJobStore(url=settings.jobstore_url)


def build_scheduler(settings: SchedulerSettings | None = None) -> BackgroundScheduler:
    if settings is None:
        settings = load_settings()
    scheduler = BackgroundScheduler(
        jobstores={"default": _jobstore(settings)},
        executors={"default": ThreadPoolExecutor(max_workers=settings.max_workers)},
        job_defaults={
            "coalesce": settings.coalesce,
            "misfire_grace_time": settings.misfire_grace_time,
            "max_instances": settings.max_instances,
        },
        timezone=ZoneInfo(settings.timezone),
    )
    logger.info("scheduler built: tz=%s workers=%d", settings.timezone, settings.max_workers)
    return scheduler
