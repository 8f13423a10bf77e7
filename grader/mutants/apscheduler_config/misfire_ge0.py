"""BUG: misfire_grace_time must be at least 1 (ge=0 accepts 0)."""

import logging
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger(__name__)


class SchedulerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCHEDULER_")

    timezone: str = "UTC"
    jobstore_url: str | None = None
    max_workers: int = Field(default=10, ge=1, le=100)
    coalesce: bool = True
    misfire_grace_time: int = Field(default=30, ge=0)
    max_instances: int = Field(default=1, ge=1)

    @field_validator("timezone")
    @classmethod
    def validate_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except Exception as exc:
            raise ValueError(f"unknown timezone: {value!r}") from exc
        return value


def load_settings() -> SchedulerSettings:
    return SchedulerSettings()


def build_scheduler(settings: SchedulerSettings | None = None) -> BackgroundScheduler:
    if settings is None:
        settings = load_settings()
    if settings.jobstore_url is None:
        jobstores = {"default": MemoryJobStore()}
    else:
        jobstores = {"default": SQLAlchemyJobStore(url=settings.jobstore_url)}
    executors = {"default": ThreadPoolExecutor(max_workers=settings.max_workers)}
    job_defaults = {
        "coalesce": settings.coalesce,
        "misfire_grace_time": settings.misfire_grace_time,
        "max_instances": settings.max_instances,
    }
    return BackgroundScheduler(
        jobstores=jobstores,
        executors=executors,
        job_defaults=job_defaults,
        timezone=ZoneInfo(settings.timezone),
    )
