"""Correct (class style: ORM Session, a listener class, job specs as dataclasses)."""

import functools
import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import DateTime, Dialect, Engine, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator
import json
import os
import pickle
import signal
import tempfile
import threading
from datetime import timedelta

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import obj_to_ref, ref_to_obj
from sqlalchemy import create_engine, delete, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

CLEANUP_JOB_ID = "cleanup_expired_tokens"
WARMUP_JOB_ID = "warm_cache"
REPORT_JOB_ID = "daily_report"
CLEANUP_HOUR = 3
REPORT_HOUR = 8
WARMUP_MINUTES = 10
CLEANUP_GRACE_SECONDS = 3 * 60 * 60
BATCH_SIZE = 500

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- given: settings and schema


class Settings(BaseSettings):
    """Configuration, read from ``CLEANUP_<FIELD>`` environment variables (given)."""

    model_config = SettingsConfigDict(env_prefix="CLEANUP_")

    database_url: str = "sqlite:///cleanup.sqlite"  # the tokens (any SQLAlchemy URL)
    jobstore_url: str = "sqlite:///cleanup_jobs.sqlite"  # the scheduler's job store
    timezone: str = "Asia/Shanghai"  # 03:00 and 08:00 are local times of this zone
    report_dir: str = "reports"
    batch_size: int = Field(default=BATCH_SIZE, ge=1, le=10_000)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        """Reject a name that is not an IANA time zone."""
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r}") from error
        return value


def load_settings() -> Settings:
    """The settings from the environment (given); a bad value raises a ValueError."""
    return Settings()


class UTCDateTime(TypeDecorator[datetime]):
    """A column type (given): aware datetimes in, naive UTC stored, aware UTC out.

    SQLite keeps no UTC offset: SQLAlchemy would silently drop it, so 03:00+08:00 and
    03:00+00:00 would compare equal. This type converts to UTC before storing (also for
    values you compare a column with, e.g. ``Token.expires_at <= now``) and raises a
    ValueError for a naive datetime.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Aware in, naive UTC out; a naive datetime is ambiguous and rejected."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: give an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Naive UTC from the database, aware UTC to Python."""
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base of the tables below (given)."""


class Token(Base):
    """An access token (given). It is expired once ``expires_at <= now``."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int]
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class CleanupRun(Base):
    """One run of the cleanup job (given): when it ran, and how many tokens it deleted."""

    __tablename__ = "cleanup_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    deleted: Mapped[int]


@dataclass
class TokenCache:
    """In-memory copy of the active tokens, token -> user id (given)."""

    tokens: dict[str, int] = field(default_factory=dict)
    warmed_at: datetime | None = None


@dataclass(frozen=True)
class Alert:
    """Something an operator must know about a job (given)."""

    job_id: str
    kind: str  # "error", "missed" or "skipped"
    run_time: datetime  # the scheduled run time concerned (aware)
    message: str


TOKEN_CACHE = TokenCache()


# ---------------------------------------------------------------- your part: the work


def _require_aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} is naive: an aware datetime is required")
    return moment


_BATCH_SIZES = range(1, 10_001)


def _require_batch_size(size: int) -> int:
    if size not in _BATCH_SIZES:
        raise ValueError(f"batch size {size!r} is outside {_BATCH_SIZES.start}..{_BATCH_SIZES.stop - 1}")
    return size


_SCHEMA_LOCK = threading.Lock()  # two jobs may open the same fresh database at once


@functools.cache
def get_engine(url: str) -> Engine:
    """Return the Engine for ``url``, with every table of ``Base`` created."""
    engine = create_engine(url)
    with _SCHEMA_LOCK:
        Base.metadata.create_all(engine)
    return engine


def delete_expired_tokens(engine: Engine, now: datetime, batch_size: int = BATCH_SIZE) -> int:
    """Delete every token expired at ``now`` in batches; return how many were deleted."""
    _require_aware(now)
    _require_batch_size(batch_size)
    total = 0
    while True:
        with Session(engine) as session, session.begin():
            batch = session.scalars(
                select(Token.id).where(Token.expires_at <= now).order_by(Token.id).limit(batch_size)
            ).all()
            if not batch:
                break
            result = session.execute(
                delete(Token).where(Token.id.in_(batch)).execution_options(synchronize_session=False)
            )
            total += result.rowcount
    return total


def warm_cache(engine: Engine, now: datetime) -> int:
    """Fill TOKEN_CACHE with the tokens active at ``now``; return their number."""
    _require_aware(now)
    with Session(engine) as session:
        rows = session.execute(select(Token.token, Token.user_id).where(Token.expires_at > now))
        fresh = {token: user_id for token, user_id in rows}
    TOKEN_CACHE.tokens = fresh
    TOKEN_CACHE.warmed_at = now
    return len(fresh)


def build_daily_report(engine: Engine, now: datetime) -> dict[str, Any]:
    """The daily report at ``now`` as a JSON-ready dict."""
    _require_aware(now)
    since = now - timedelta(hours=24)
    with Session(engine) as session:
        active = session.scalar(select(func.count()).select_from(Token).where(Token.expires_at > now))
        expired = session.scalar(select(func.count()).select_from(Token).where(Token.expires_at <= now))
        deleted, runs = session.execute(
            select(func.coalesce(func.sum(CleanupRun.deleted), 0), func.count(CleanupRun.id)).where(
                CleanupRun.ran_at > since, CleanupRun.ran_at <= now
            )
        ).one()
    return {
        "date": now.date().isoformat(),
        "generated_at": now.isoformat(),
        "active_tokens": int(active or 0),
        "expired_tokens": int(expired or 0),
        "deleted_last_24h": int(deleted or 0),
        "cleanup_runs_last_24h": int(runs or 0),
    }


# ---------------------------------------------------------------- your part: the jobs


def cleanup_job() -> int:
    """The nightly job; return the number of tokens deleted."""
    settings = load_settings()
    engine = get_engine(settings.database_url)
    now = datetime.now(UTC)
    deleted = delete_expired_tokens(engine, now, settings.batch_size)
    with Session(engine) as session, session.begin():
        session.add(CleanupRun(ran_at=now, deleted=deleted))
    logger.info("token cleanup finished: %d expired tokens removed", deleted)
    return deleted


def warm_cache_job() -> int:
    """The warm-up job; return the number of cached tokens."""
    settings = load_settings()
    count = warm_cache(get_engine(settings.database_url), datetime.now(UTC))
    logger.info("token cache warmed with %d active tokens", count)
    return count


def report_job() -> Path:
    """The daily job: write the report as JSON; return the file's path."""
    settings = load_settings()
    now = datetime.now(ZoneInfo(settings.timezone))
    report = build_daily_report(get_engine(settings.database_url), now)
    folder = Path(settings.report_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"report-{report['date']}.json"
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".report-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    Path(tmp_name).replace(target)
    logger.info("daily report written to %s", target)
    return target


# ---------------------------------------------------------------- your part: failures


def log_alert(alert: Alert) -> None:
    """The default alert hook: log the alert at CRITICAL level."""
    logger.critical(
        "ALERT [%s] job=%s run_time=%s: %s",
        alert.kind, alert.job_id, alert.run_time.isoformat(), alert.message,
    )


class _AlertListener:
    """Turns scheduler events into Alert objects."""

    MASK = EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES

    def __init__(self, alert: Callable[[Alert], None]) -> None:
        self.alert = alert

    def __call__(self, event: JobExecutionEvent | JobSubmissionEvent) -> None:
        if event.code == EVENT_JOB_ERROR:
            logger.error("job %s raised %r", event.job_id, event.exception)
            self.alert(Alert(event.job_id, "error", event.scheduled_run_time,
                             f"job {event.job_id} failed: {event.exception!r}"))
        elif event.code == EVENT_JOB_MISSED:
            logger.warning("job %s missed its run at %s", event.job_id, event.scheduled_run_time)
            self.alert(Alert(event.job_id, "missed", event.scheduled_run_time,
                             f"run of {event.job_id} at {event.scheduled_run_time} missed beyond grace"))
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            run_time = event.scheduled_run_times[0]
            logger.warning("job %s skipped at %s: previous run still running", event.job_id, run_time)
            self.alert(Alert(event.job_id, "skipped", run_time,
                             f"run of {event.job_id} at {run_time} skipped (max instances)"))


def install_listeners(scheduler: BaseScheduler, alert: Callable[[Alert], None] = log_alert) -> None:
    """Add one listener for errors, missed runs and skipped runs."""
    scheduler.add_listener(_AlertListener(alert), _AlertListener.MASK)


# ---------------------------------------------------------------- your part: persistence


def check_persistable(job_func: Callable[..., Any], args: Sequence[Any] = ()) -> str:
    """Return the "module:function" reference of ``job_func``; ValueError if not persistable."""
    if getattr(job_func, "__module__", None) == "__main__":
        raise ValueError(
            f"{job_func!r} lives in __main__ (a file run as a script): no other process can "
            "import it; register the function of the module imported by its name"
        )
    try:
        ref = obj_to_ref(job_func)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{job_func!r} cannot be stored ({error}): use a module-level function") from error
    try:
        found = ref_to_obj(ref)
    except LookupError as error:
        raise ValueError(f"{ref} cannot be imported back: use a module-level function") from error
    if found is not job_func:
        raise ValueError(f"{ref} does not lead back to {job_func!r}: use a module-level function")
    try:
        pickle.dumps(tuple(args))
    except Exception as error:
        raise ValueError(f"job arguments cannot be pickled ({error}): pass ids, not objects") from error
    return ref


@dataclass(frozen=True)
class _JobSpec:
    job_id: str
    func: Callable[[], Any]
    trigger: Any
    grace: int | None
    keep_stored_time: bool


def _job_specs(zone: Any) -> list[_JobSpec]:
    return [
        _JobSpec(WARMUP_JOB_ID, warm_cache_job, IntervalTrigger(minutes=WARMUP_MINUTES, timezone=zone),
                 WARMUP_MINUTES * 60, False),
        _JobSpec(CLEANUP_JOB_ID, cleanup_job, CronTrigger(hour=CLEANUP_HOUR, minute=0, timezone=zone),
                 CLEANUP_GRACE_SECONDS, True),
        _JobSpec(REPORT_JOB_ID, report_job, CronTrigger(hour=REPORT_HOUR, minute=0, timezone=zone),
                 None, True),
    ]


def register_jobs(scheduler: BaseScheduler) -> None:
    """Add (or update) the three jobs, keeping stored next run times of unchanged triggers."""
    zone = scheduler.timezone
    for spec in _job_specs(zone):
        check_persistable(spec.func)
        options: dict[str, Any] = {}
        if spec.keep_stored_time:
            stored = scheduler.get_job(spec.job_id)
            if stored is not None and repr(stored.trigger) == repr(spec.trigger):
                options["next_run_time"] = stored.next_run_time
        else:
            options["next_run_time"] = datetime.now(zone)
        scheduler.add_job(
            spec.func, spec.trigger, id=spec.job_id, name=spec.job_id, replace_existing=True,
            coalesce=True, max_instances=1, misfire_grace_time=spec.grace, **options,
        )


def build_scheduler(settings: Settings | None = None) -> BackgroundScheduler:
    """Return a BackgroundScheduler, not started, with a SQLAlchemy job store."""
    settings = settings if settings is not None else load_settings()
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=settings.jobstore_url)},
        timezone=ZoneInfo(settings.timezone),
    )


def start_scheduler(alert: Callable[[Alert], None] = log_alert) -> BackgroundScheduler:
    """Build, install listeners, start paused, register, resume."""
    scheduler = build_scheduler()
    install_listeners(scheduler, alert)
    scheduler.start(paused=True)
    register_jobs(scheduler)
    scheduler.resume()
    return scheduler


# ---------------------------------------------------------------- your part: job management


def pause_job(scheduler: BaseScheduler, job_id: str) -> None:
    """Stop running ``job_id`` until it is resumed."""
    scheduler.pause_job(job_id)


def resume_job(scheduler: BaseScheduler, job_id: str) -> datetime | None:
    """Resume ``job_id``; return its new next run time or None."""
    job = scheduler.resume_job(job_id)
    return None if job is None else job.next_run_time


def remove_job(scheduler: BaseScheduler, job_id: str) -> bool:
    """Remove ``job_id``; True, or False when there is no such job."""
    try:
        scheduler.remove_job(job_id)
    except JobLookupError:
        return False
    return True


def reschedule_daily(scheduler: BaseScheduler, job_id: str, hour: int, minute: int = 0) -> datetime:
    """Run ``job_id`` daily at hour:minute in the scheduler's zone; return the next run time."""
    trigger = CronTrigger(hour=hour, minute=minute, timezone=scheduler.timezone)
    return scheduler.reschedule_job(job_id, trigger=trigger).next_run_time


def run_job_now(scheduler: BaseScheduler, job_id: str) -> None:
    """Run ``job_id`` as soon as possible through the scheduler."""
    scheduler.modify_job(job_id, next_run_time=datetime.now(scheduler.timezone))


def main() -> int:
    """Run the service until SIGTERM or SIGINT, then stop gracefully."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        scheduler = start_scheduler()
    except (ValueError, SQLAlchemyError, OSError) as error:
        logger.error("cannot start the cleanup service: %s", error)
        return 1
    logger.info("cleanup service started")
    stop.wait()
    scheduler.shutdown(wait=True)
    logger.info("cleanup service stopped")
    return 0


if __name__ == "__main__":
    # Given. Run as a script this file is the module "__main__": its jobs would be stored
    # as "__main__:cleanup_job", which no other process can import (SQLAlchemyJobStore
    # deletes what it cannot restore). Run the copy imported under the file's own name.
    raise SystemExit(importlib.import_module(Path(__file__).stem).main())
