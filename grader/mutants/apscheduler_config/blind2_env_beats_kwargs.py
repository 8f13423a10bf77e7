"""BUG: #keyword-arguments - settings_customise_sources puts the environment before the init kwargs ('ops must be able to override code'): SchedulerSettings(timezone='Europe/Berlin') silently yields SCHEDULER_TIMEZONE when that variable is set."""

import logging
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

logger = logging.getLogger(__name__)


class SchedulerSettings(BaseSettings):
    """Scheduler configuration, read from ``SCHEDULER_<FIELD>`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="SCHEDULER_")

    timezone: str = "UTC"  # an IANA name such as "Europe/Berlin"
    jobstore_url: str | None = None  # None: in memory; else a SQLAlchemy URL
    max_workers: int = Field(default=10, ge=1, le=100)  # threads running jobs
    coalesce: bool = True  # run a late job once, not once per missed run
    misfire_grace_time: int = Field(default=30, ge=1, le=86400)  # seconds a run may start late
    max_instances: int = Field(default=1, ge=1, le=100)  # concurrent runs of one job

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
        # the deployment environment has the last word over values in code
        return env_settings, init_settings, dotenv_settings, file_secret_settings

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except Exception as exc:  # ZoneInfoNotFoundError, ValueError, OSError, ...
            raise ValueError(f"unknown time zone {value!r}: {exc}") from None
        return value

    @field_validator("jobstore_url")
    @classmethod
    def _sqlalchemy_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            make_url(value).get_dialect()
        except ArgumentError as exc:  # includes NoSuchModuleError (unknown dialect)
            raise ValueError(f"not a usable SQLAlchemy URL: {exc}") from None
        return value


def load_settings() -> SchedulerSettings:
    return SchedulerSettings()


def build_scheduler(settings: SchedulerSettings | None = None) -> BackgroundScheduler:
    if settings is None:
        settings = load_settings()
    if settings.jobstore_url is None:
        store = MemoryJobStore()
    else:
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

        store = SQLAlchemyJobStore(url=settings.jobstore_url)
    scheduler = BackgroundScheduler(
        jobstores={"default": store},
        executors={"default": ThreadPoolExecutor(max_workers=settings.max_workers)},
        job_defaults={
            "coalesce": settings.coalesce,
            "misfire_grace_time": settings.misfire_grace_time,
            "max_instances": settings.max_instances,
        },
        timezone=ZoneInfo(settings.timezone),
    )
    logger.debug("scheduler built: %s", settings)
    return scheduler
