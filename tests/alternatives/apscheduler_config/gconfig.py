"""apscheduler_config, correct: hand-written validators and APScheduler's dotted gconfig dictionary."""

import logging
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import create_engine
from sqlalchemy.exc import SQLAlchemyError

logger = logging.getLogger(__name__)


class SchedulerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCHEDULER_", extra="ignore")

    timezone: str = "UTC"
    jobstore_url: str | None = None
    max_workers: int = 10
    coalesce: bool = True
    misfire_grace_time: int = 30
    max_instances: int = 1

    @field_validator("timezone")
    @classmethod
    def check_timezone(cls, v: str) -> str:
        if not v:
            raise ValueError("timezone must not be empty")
        try:
            ZoneInfo(v)
        except (KeyError, ValueError, OSError, TypeError) as exc:
            raise ValueError(f"timezone: cannot load {v!r}") from exc
        return v

    @field_validator("jobstore_url")
    @classmethod
    def check_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            create_engine(v).dispose()  # an engine is lazy: it connects on first use only
        except (SQLAlchemyError, ImportError) as exc:
            raise ValueError(f"jobstore_url: {exc}") from exc
        return v

    @field_validator("max_workers")
    @classmethod
    def check_workers(cls, v: int) -> int:
        if not 1 <= v <= 100:
            raise ValueError(f"max_workers must be within 1..100, got {v}")
        return v

    @field_validator("misfire_grace_time", "max_instances")
    @classmethod
    def check_at_least_one(cls, v: int, info) -> int:
        top = 86400 if info.field_name == "misfire_grace_time" else 100
        if not 1 <= v <= top:
            raise ValueError(f"{info.field_name} must be within 1..{top}, got {v}")
        return v


def load_settings() -> SchedulerSettings:
    settings = SchedulerSettings()
    logger.debug("loaded %r", settings)
    return settings


def _gconfig(s: SchedulerSettings) -> dict:
    if s.jobstore_url is None:
        store = {"type": "memory"}
    else:
        store = {"type": "sqlalchemy", "url": s.jobstore_url}
    return {
        "apscheduler.jobstores.default": store,
        "apscheduler.executors.default": {
            "class": "apscheduler.executors.pool:ThreadPoolExecutor",
            "max_workers": s.max_workers,
        },
        "apscheduler.job_defaults.coalesce": s.coalesce,
        "apscheduler.job_defaults.misfire_grace_time": s.misfire_grace_time,
        "apscheduler.job_defaults.max_instances": s.max_instances,
        "apscheduler.timezone": ZoneInfo(s.timezone),
    }


def build_scheduler(settings: SchedulerSettings | None = None) -> BackgroundScheduler:
    return BackgroundScheduler(gconfig=_gconfig(settings if settings is not None else load_settings()))
