"""Correct (text() SQL with typed bind parameters, a dispatch table for the listener, Job methods)."""

import functools
import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from pydantic import Field, TypeAdapter, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import DateTime, Dialect, Engine, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator
import json
import pickle
import signal
import threading
from datetime import timedelta
from functools import partial

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
)
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import obj_to_ref, ref_to_obj
from sqlalchemy import bindparam, create_engine, text

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

_MOMENT = UTCDateTime()

_SELECT_EXPIRED = text(
    "SELECT id FROM tokens WHERE expires_at <= :cutoff ORDER BY expires_at, id LIMIT :limit"
).bindparams(bindparam("cutoff", type_=_MOMENT))
_DELETE_IDS = text("DELETE FROM tokens WHERE id IN :ids").bindparams(bindparam("ids", expanding=True))
_SELECT_ACTIVE = text("SELECT token, user_id FROM tokens WHERE expires_at > :cutoff").bindparams(
    bindparam("cutoff", type_=_MOMENT)
)
_REPORT_COUNTS = text(
    "SELECT"
    " (SELECT COUNT(*) FROM tokens WHERE expires_at > :now) AS active,"
    " (SELECT COUNT(*) FROM tokens WHERE expires_at <= :now) AS expired,"
    " (SELECT COALESCE(SUM(deleted), 0) FROM cleanup_runs WHERE ran_at > :since AND ran_at <= :now) AS deleted,"
    " (SELECT COUNT(*) FROM cleanup_runs WHERE ran_at > :since AND ran_at <= :now) AS runs"
).bindparams(bindparam("now", type_=_MOMENT), bindparam("since", type_=_MOMENT))


def _aware(value: datetime, what: str = "now") -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {value!r}")
    return value


_SCHEMA_LOCK = threading.Lock()  # two jobs may open the same fresh database at once


@functools.cache
def get_engine(url: str) -> Engine:
    """Return the Engine for ``url``, with every table of ``Base`` created."""
    engine = create_engine(url, future=True)
    with _SCHEMA_LOCK:
        Base.metadata.create_all(bind=engine)
    return engine


_BATCH_SIZE = TypeAdapter(Annotated[int, Field(strict=True, ge=1, le=10_000)])


def delete_expired_tokens(engine: Engine, now: datetime, batch_size: int = BATCH_SIZE) -> int:
    """Delete every token expired at ``now`` in short batches; return the number deleted."""
    cutoff = _aware(now)
    batch_size = _BATCH_SIZE.validate_python(batch_size)  # a ValidationError is a ValueError
    removed = 0
    while True:
        with engine.begin() as conn:
            ids = list(conn.scalars(_SELECT_EXPIRED, {"cutoff": cutoff, "limit": batch_size}))
            if ids:
                removed += conn.execute(_DELETE_IDS, {"ids": ids}).rowcount
        if len(ids) < batch_size:
            return removed


def warm_cache(engine: Engine, now: datetime) -> int:
    """Rebuild TOKEN_CACHE from the tokens active at ``now``; return their number."""
    cutoff = _aware(now)
    with engine.connect() as conn:
        fresh = dict(conn.execute(_SELECT_ACTIVE, {"cutoff": cutoff}).tuples().all())
    TOKEN_CACHE.tokens, TOKEN_CACHE.warmed_at = fresh, now
    return len(fresh)


def build_daily_report(engine: Engine, now: datetime) -> dict[str, Any]:
    """The daily report at ``now`` as a JSON-ready dict."""
    _aware(now)
    with engine.connect() as conn:
        row = conn.execute(_REPORT_COUNTS, {"now": now, "since": now - timedelta(days=1)}).one()
    return dict(
        date=str(now.date()),
        generated_at=now.isoformat(),
        active_tokens=row.active,
        expired_tokens=row.expired,
        deleted_last_24h=int(row.deleted),
        cleanup_runs_last_24h=row.runs,
    )


# ---------------------------------------------------------------- your part: the jobs


def cleanup_job() -> int:
    """The nightly job; return the number of tokens deleted."""
    cfg = load_settings()
    engine = get_engine(cfg.database_url)
    started = datetime.now(UTC)
    count = delete_expired_tokens(engine, started, cfg.batch_size)
    with engine.begin() as conn:
        conn.execute(CleanupRun.__table__.insert().values(ran_at=started, deleted=count))
    logger.info("Deleted %s expired token(s) at %s", count, started.isoformat())
    return count


def warm_cache_job() -> int:
    """Warm TOKEN_CACHE from the configured database; return the count."""
    cfg = load_settings()
    count = warm_cache(get_engine(cfg.database_url), datetime.now(UTC))
    logger.info("Cache warm-up: %s active tokens", count)
    return count


def report_job() -> Path:
    """Write today's report as JSON; return the file's path."""
    cfg = load_settings()
    now = datetime.now(ZoneInfo(cfg.timezone))
    report = build_daily_report(get_engine(cfg.database_url), now)
    path = Path(cfg.report_dir) / f"report-{report['date']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".part")
    scratch.write_text(json.dumps(report, sort_keys=True), encoding="utf-8")
    scratch.replace(path)
    logger.info("Report for %s saved as %s", report["date"], path)
    return path


# ---------------------------------------------------------------- your part: failures


def log_alert(alert: Alert) -> None:
    """Log the alert at CRITICAL level."""
    logger.critical("%s alert for %s (scheduled %s): %s", alert.kind.upper(), alert.job_id,
                    alert.run_time, alert.message)


def _on_error(event: Any) -> Alert:
    logger.error("Job %r failed: %r\n%s", event.job_id, event.exception, event.traceback or "")
    return Alert(job_id=event.job_id, kind="error", run_time=event.scheduled_run_time,
                 message=f"{event.job_id} raised {event.exception!r}")


def _on_missed(event: Any) -> Alert:
    logger.warning("Job %r: run scheduled for %s was missed", event.job_id, event.scheduled_run_time)
    return Alert(job_id=event.job_id, kind="missed", run_time=event.scheduled_run_time,
                 message=f"{event.job_id} missed its run of {event.scheduled_run_time:%Y-%m-%d %H:%M %Z}")


def _on_skipped(event: Any) -> Alert:
    first = event.scheduled_run_times[0]
    logger.warning("Job %r: run of %s skipped, the previous one is still running", event.job_id, first)
    return Alert(job_id=event.job_id, kind="skipped", run_time=first,
                 message=f"{event.job_id} skipped {len(event.scheduled_run_times)} run(s)")


_HANDLERS: dict[int, Callable[[Any], Alert]] = {
    EVENT_JOB_ERROR: _on_error,
    EVENT_JOB_MISSED: _on_missed,
    EVENT_JOB_MAX_INSTANCES: _on_skipped,
}


def _dispatch(alert: Callable[[Alert], None], event: Any) -> None:
    handler = _HANDLERS.get(event.code)
    if handler is not None:
        alert(handler(event))


def install_listeners(scheduler: BaseScheduler, alert: Callable[[Alert], None] = log_alert) -> None:
    """One listener for error, missed and max-instances events."""
    mask = 0
    for code in _HANDLERS:
        mask |= code
    scheduler.add_listener(partial(_dispatch, alert), mask)


# ---------------------------------------------------------------- your part: persistence


def check_persistable(job_func: Callable[..., Any], args: Sequence[Any] = ()) -> str:
    """The job store reference of ``job_func``; ValueError when it could not be persisted."""
    if getattr(job_func, "__module__", None) == "__main__":
        raise ValueError(
            f"{job_func!r} lives in __main__ (a file run as a script): no other process can "
            "import it; register the function of the module imported by its name"
        )
    hint = "use a module-level function and pass ids or plain values as arguments"
    try:
        ref = obj_to_ref(job_func)
        resolved = ref_to_obj(ref)
    except (TypeError, ValueError, LookupError) as error:
        raise ValueError(f"cannot persist {job_func!r}: {error}; {hint}") from error
    if resolved is not job_func:
        raise ValueError(f"reference {ref!r} resolves to another object than {job_func!r}; {hint}")
    try:
        pickle.dumps(list(args), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:  # pickling raises TypeError, PicklingError, AttributeError...
        raise ValueError(f"arguments of {ref} cannot be pickled ({error}); {hint}") from error
    return ref


def register_jobs(scheduler: BaseScheduler) -> None:
    """Add or update the three jobs; unchanged daily jobs keep their stored next run time."""
    tz = scheduler.timezone
    common = {"replace_existing": True, "coalesce": True, "max_instances": 1}

    check_persistable(warm_cache_job)
    scheduler.add_job(warm_cache_job, trigger=IntervalTrigger(minutes=WARMUP_MINUTES, timezone=tz),
                      id=WARMUP_JOB_ID, misfire_grace_time=timedelta(minutes=10).seconds,
                      next_run_time=datetime.now(tz), **common)

    daily = (
        (CLEANUP_JOB_ID, cleanup_job, CLEANUP_HOUR, CLEANUP_GRACE_SECONDS),
        (REPORT_JOB_ID, report_job, REPORT_HOUR, None),
    )
    for job_id, job_func, hour, grace in daily:
        check_persistable(job_func)
        trigger = CronTrigger(hour=hour, minute=0, timezone=tz)
        extra = dict(common, misfire_grace_time=grace)
        previous = scheduler.get_job(job_id)
        if previous is not None and repr(previous.trigger) == repr(trigger):
            extra["next_run_time"] = previous.next_run_time
        scheduler.add_job(job_func, trigger=trigger, id=job_id, **extra)


def build_scheduler(settings: Settings | None = None) -> BackgroundScheduler:
    """A BackgroundScheduler (not started) over a SQLAlchemy job store."""
    if settings is None:
        settings = load_settings()
    scheduler = BackgroundScheduler(timezone=ZoneInfo(settings.timezone))
    scheduler.add_jobstore(SQLAlchemyJobStore(url=settings.jobstore_url), alias="default")
    return scheduler


def start_scheduler(alert: Callable[[Alert], None] = log_alert) -> BackgroundScheduler:
    """Build, listen, start paused, register, resume."""
    scheduler = build_scheduler()
    install_listeners(scheduler, alert=alert)
    scheduler.start(paused=True)
    register_jobs(scheduler)
    scheduler.resume()
    return scheduler


# ---------------------------------------------------------------- your part: job management


def pause_job(scheduler: BaseScheduler, job_id: str) -> None:
    """Pause ``job_id``."""
    scheduler.get_job(job_id).pause()


def resume_job(scheduler: BaseScheduler, job_id: str) -> datetime | None:
    """Resume ``job_id``; return its next run time."""
    scheduler.resume_job(job_id)
    job = scheduler.get_job(job_id)  # a fresh copy: the store holds the new next run time
    return job.next_run_time if job is not None else None


def remove_job(scheduler: BaseScheduler, job_id: str) -> bool:
    """Remove ``job_id``; False if it is not there."""
    if scheduler.get_job(job_id) is None:
        return False
    try:
        scheduler.remove_job(job_id)
    except JobLookupError:
        return False
    return True


def reschedule_daily(scheduler: BaseScheduler, job_id: str, hour: int, minute: int = 0) -> datetime:
    """Daily at hour:minute in the scheduler's zone (a string trigger takes the scheduler's zone)."""
    job = scheduler.reschedule_job(job_id, trigger="cron", hour=hour, minute=minute)
    return job.next_run_time


def run_job_now(scheduler: BaseScheduler, job_id: str) -> None:
    """Make the job due now; the scheduler runs it and then follows the trigger again."""
    scheduler.get_job(job_id).modify(next_run_time=datetime.now(UTC))


def main() -> int:
    """The standalone service."""
    logging.basicConfig(level=logging.INFO)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    try:
        scheduler = start_scheduler()
    except Exception:
        logger.exception("Could not start: check the CLEANUP_* settings and the databases")
        return 1
    logger.info("Scheduler started with jobs: %s", ", ".join(job.id for job in scheduler.get_jobs()))
    while not stopping.wait(timeout=1.0):
        pass
    logger.info("Signal received, shutting down")
    scheduler.shutdown(wait=True)
    logger.info("Scheduler stopped")
    return 0


if __name__ == "__main__":
    # Given. Run as a script this file is the module "__main__": its jobs would be stored
    # as "__main__:cleanup_job", which no other process can import (SQLAlchemyJobStore
    # deletes what it cannot restore). Run the copy imported under the file's own name.
    raise SystemExit(importlib.import_module(Path(__file__).stem).main())
