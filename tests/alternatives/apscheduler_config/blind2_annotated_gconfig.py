"""apscheduler_config, correct implementation 2: Annotated types with annotated_types
bounds and AfterValidator functions, a plain-dict model_config, and APScheduler's dotted
"gconfig" dictionary (plugin aliases) instead of objects."""

import logging
from typing import Annotated
from zoneinfo import ZoneInfo

from annotated_types import Ge, Le
from apscheduler.schedulers.background import BackgroundScheduler
from pydantic import AfterValidator
from pydantic_settings import BaseSettings
import sqlalchemy.engine
import sqlalchemy.exc

logger = logging.getLogger(__name__)


def _zone_name(name: str) -> str:
    try:
        ZoneInfo(name)
    except (KeyError, ValueError, OSError, TypeError) as exc:
        raise ValueError(f"time zone {name!r} cannot be loaded ({type(exc).__name__})") from exc
    return name


def _db_url(url: str | None) -> str | None:
    if url is not None:
        try:
            sqlalchemy.engine.make_url(url).get_dialect()
        except sqlalchemy.exc.ArgumentError as exc:
            raise ValueError(f"SQLAlchemy cannot use {url!r}") from exc
    return url


OneToHundred = Annotated[int, Ge(1), Le(100)]


class SchedulerSettings(BaseSettings):
    """Scheduler configuration, read from ``SCHEDULER_<FIELD>`` environment variables."""

    model_config = {"env_prefix": "SCHEDULER_"}

    timezone: Annotated[str, AfterValidator(_zone_name)] = "UTC"
    jobstore_url: Annotated[str | None, AfterValidator(_db_url)] = None
    max_workers: OneToHundred = 10
    coalesce: bool = True
    misfire_grace_time: Annotated[int, Ge(1), Le(24 * 60 * 60)] = 30
    max_instances: OneToHundred = 1


def load_settings() -> SchedulerSettings:
    fresh = SchedulerSettings()
    logger.debug("settings loaded from the environment: %r", fresh)
    return fresh


def build_scheduler(settings: SchedulerSettings | None = None) -> BackgroundScheduler:
    cfg = settings if settings is not None else load_settings()
    store = ({"type": "memory"} if cfg.jobstore_url is None
             else {"type": "sqlalchemy", "url": cfg.jobstore_url})
    gconfig = {
        "apscheduler.jobstores.default": store,
        "apscheduler.executors.default": {"type": "threadpool", "max_workers": cfg.max_workers},
        "apscheduler.job_defaults.coalesce": cfg.coalesce,
        "apscheduler.job_defaults.misfire_grace_time": cfg.misfire_grace_time,
        "apscheduler.job_defaults.max_instances": cfg.max_instances,
        "apscheduler.timezone": ZoneInfo(cfg.timezone),
    }
    return BackgroundScheduler(gconfig=gconfig)
