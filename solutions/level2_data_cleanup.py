"""Level 2 reference solution: real jobs that survive restarts, outages and failures.

What it teaches (notes/07b_ap_scheduler_advanced.md):
    * real work against a real database (SQLAlchemy 2): expired tokens deleted in short
      batches, idempotently, with the boundary stated (expired means ``expires_at <= now``);
    * a cache warmed at start and on an interval, a daily report at a fixed local time;
    * a failing job is logged and alerted by a listener, and its schedule goes on;
    * a persistent SQLAlchemyJobStore: jobs stored as importable "module:function"
      references (never "__main__:...", even when run as a script), restarts neither lose
      nor duplicate them, and what cannot be stored is rejected early;
    * misfire_grace_time, coalesce and max_instances chosen per job, for a reason;
    * pause, resume, remove, reschedule and "run now".

How to run (creates cleanup.sqlite, cleanup_jobs.sqlite and reports/ in the current folder;
with the course's venv: `python3 -m grader setup`, once, from the repository root,
creates .venv):
    cd solutions && ../.venv/bin/python level2_data_cleanup.py
    (stop it with Ctrl+C or `kill -TERM <pid>`; restart it: the jobs are still there)

Settings come from CLEANUP_* variables, e.g.
    CLEANUP_TIMEZONE=Europe/Berlin CLEANUP_DATABASE_URL=postgresql+psycopg://u:p@db/app \\
        ../.venv/bin/python level2_data_cleanup.py
"""

import functools
import importlib
import json
import logging
import os
import pickle
import queue
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import obj_to_ref, ref_to_obj
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import DateTime, Dialect, Engine, String, create_engine, delete, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.types import TypeDecorator

CLEANUP_JOB_ID = "cleanup_expired_tokens"
WARMUP_JOB_ID = "warm_cache"
REPORT_JOB_ID = "daily_report"
CLEANUP_HOUR = 3  # 03:00 local: the quietest hour, and it exists every day, DST or not
REPORT_HOUR = 8  # 08:00 local, before the team starts
WARMUP_MINUTES = 10
CLEANUP_GRACE_SECONDS = 3 * 60 * 60
BATCH_SIZE = 500
MAX_BATCH_SIZE = 10_000  # rows per transaction: a small count, never 0 or negative

logger = logging.getLogger(__name__)


class Settings(BaseSettings):
    """Configuration, read from ``CLEANUP_<FIELD>`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="CLEANUP_")

    database_url: str = "sqlite:///cleanup.sqlite"  # where the tokens live
    jobstore_url: str = "sqlite:///cleanup_jobs.sqlite"  # where the scheduler keeps its jobs
    timezone: str = "Asia/Shanghai"  # cleanup and report times are local to this zone
    report_dir: str = "reports"
    batch_size: int = Field(default=BATCH_SIZE, ge=1, le=MAX_BATCH_SIZE)

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
    """The settings from the environment; a bad value raises a ValueError naming the field."""
    return Settings()


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as naive UTC: SQLite keeps no offset, so we normalise it."""

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
    """Declarative base of the tables below."""


class Token(Base):
    """An access token; it is expired once ``expires_at <= now``."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int]
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class CleanupRun(Base):
    """One run of the cleanup job: when, and how many tokens it deleted."""

    __tablename__ = "cleanup_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    deleted: Mapped[int]


@dataclass
class TokenCache:
    """In-memory copy of the active tokens (token -> user id), refreshed by the warm-up."""

    tokens: dict[str, int] = field(default_factory=dict)
    warmed_at: datetime | None = None


@dataclass(frozen=True)
class Alert:
    """Something an operator must know about a job."""

    job_id: str
    kind: str  # "error", "missed" or "skipped"
    run_time: datetime  # the scheduled run time concerned
    message: str


TOKEN_CACHE = TokenCache()


_schema_lock = threading.Lock()


@functools.cache
def get_engine(url: str) -> Engine:
    """One engine per database URL, with the tables created."""
    engine = create_engine(url)
    # Two jobs may open a new database at the same moment (the warm-up at start and a
    # run-now): functools.cache does not stop both from creating the tables, and the
    # second CREATE TABLE would fail with "table ... already exists".
    with _schema_lock:
        Base.metadata.create_all(engine)
    return engine


def delete_expired_tokens(engine: Engine, now: datetime, batch_size: int = BATCH_SIZE) -> int:
    """Delete every token with ``expires_at <= now``, ``batch_size`` per transaction."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"naive datetime {now!r}: give an aware datetime")
    # 0 would delete nothing (a loop "until a batch comes back short" never ends), -1 is
    # "no limit" to SQLite (one long transaction), a huge number overflows the driver.
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_SIZE}, not {batch_size!r}")
    deleted = 0
    while True:
        # A short transaction per batch: other writers wait milliseconds, not minutes,
        # and a crash half-way keeps the batches already done (a re-run finishes the job).
        with engine.begin() as connection:
            expired = select(Token.id).where(Token.expires_at <= now).limit(batch_size)
            ids = connection.scalars(expired).all()
            if not ids:
                return deleted
            deleted += connection.execute(delete(Token).where(Token.id.in_(ids))).rowcount


def warm_cache(engine: Engine, now: datetime) -> int:
    """Load the tokens still active at ``now`` into TOKEN_CACHE; returns how many."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(Token.token, Token.user_id).where(Token.expires_at > now)
        ).all()
    TOKEN_CACHE.tokens = {token: user_id for token, user_id in rows}  # one atomic swap
    TOKEN_CACHE.warmed_at = now
    return len(rows)


def build_daily_report(engine: Engine, now: datetime) -> dict[str, Any]:
    """The report at ``now``: token counts and what the cleanup did in the last 24 hours."""
    since = now - timedelta(days=1)
    with engine.connect() as connection:
        active = connection.scalar(select(func.count(Token.id)).where(Token.expires_at > now))
        expired = connection.scalar(select(func.count(Token.id)).where(Token.expires_at <= now))
        deleted, runs = connection.execute(
            select(func.coalesce(func.sum(CleanupRun.deleted), 0), func.count(CleanupRun.id)).where(
                CleanupRun.ran_at > since, CleanupRun.ran_at <= now
            )
        ).one()
    return {
        "date": now.date().isoformat(),
        "generated_at": now.isoformat(),
        "active_tokens": active,
        "expired_tokens": expired,
        "deleted_last_24h": deleted,
        "cleanup_runs_last_24h": runs,
    }


def cleanup_job() -> int:
    """The nightly job: delete the expired tokens, record the run, log the count."""
    settings = load_settings()
    engine = get_engine(settings.database_url)
    now = datetime.now(UTC)
    deleted = delete_expired_tokens(engine, now, settings.batch_size)
    with Session(engine) as session, session.begin():
        session.add(CleanupRun(ran_at=now, deleted=deleted))
    logger.info("cleanup: deleted %d expired token(s) (expires_at <= %s)", deleted, now)
    return deleted


def warm_cache_job() -> int:
    """The warm-up job: refresh TOKEN_CACHE from the database."""
    count = warm_cache(get_engine(load_settings().database_url), datetime.now(UTC))
    logger.info("cache warmed: %d active token(s)", count)
    return count


def report_job() -> Path:
    """The daily job: write ``report-<local date>.json`` into the report folder."""
    settings = load_settings()
    now = datetime.now(ZoneInfo(settings.timezone))
    report = build_daily_report(get_engine(settings.database_url), now)
    folder = Path(settings.report_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"report-{report['date']}.json"
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(report, indent=2), encoding="utf-8")
    partial.replace(path)  # readers never see half a file
    logger.info("daily report written to %s", path)
    return path


def log_alert(alert: Alert) -> None:
    """The default alert hook: a CRITICAL log line (wire a pager or a chat webhook here)."""
    logger.critical(
        "ALERT [%s] job %s at %s: %s", alert.kind, alert.job_id, alert.run_time, alert.message
    )


def install_listeners(scheduler: BaseScheduler, alert: Callable[[Alert], None] = log_alert) -> None:
    """Log and alert every failed, missed or skipped run of ``scheduler``'s jobs."""

    def on_event(event: JobEvent) -> None:
        if event.code == EVENT_JOB_ERROR and isinstance(event, JobExecutionEvent):
            logger.error("job %s failed: %r", event.job_id, event.exception)
            message = f"raised {event.exception!r}"
            alert(Alert(event.job_id, "error", event.scheduled_run_time, message))
        elif event.code == EVENT_JOB_MISSED and isinstance(event, JobExecutionEvent):
            logger.warning("job %s missed its run at %s", event.job_id, event.scheduled_run_time)
            message = "not run: the scheduler was down for longer than the job's grace time"
            alert(Alert(event.job_id, "missed", event.scheduled_run_time, message))
        elif event.code == EVENT_JOB_MAX_INSTANCES and isinstance(event, JobSubmissionEvent):
            # A submission event: it has scheduled_run_times, but no .exception
            run_time = event.scheduled_run_times[0]
            logger.warning("job %s skipped at %s: still running", event.job_id, run_time)
            message = "skipped: the previous run was still running (max_instances)"
            alert(Alert(event.job_id, "skipped", run_time, message))

    scheduler.add_listener(on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)


def check_persistable(job_func: Callable[..., Any], args: Sequence[Any] = ()) -> str:
    """The "module:function" reference of ``job_func``; ValueError if a job store cannot keep it."""
    try:
        ref = obj_to_ref(job_func)
        found = ref_to_obj(ref) is job_func
    except (ValueError, TypeError, LookupError, ImportError):
        found = False
    if found and ref.startswith("__main__:"):
        raise ValueError(
            f"{ref} names the module __main__, which exists only in the process that was "
            "started as a script: any other process opening the job store cannot import it "
            "and deletes the job. Register the functions of the module imported by its name."
        )
    if not found:
        raise ValueError(
            f"{job_func!r} cannot be saved in a persistent job store, which keeps only a "
            "'module:function' reference: use a function defined at module level, not a "
            "lambda, a nested function, a partial or a bound method"
        )
    try:
        pickle.dumps(tuple(args))
    except Exception as error:
        raise ValueError(
            f"the arguments of {ref} cannot be pickled ({error}): pass ids or strings, "
            "not sessions, engines, connections or locks"
        ) from error
    return ref


def register_jobs(scheduler: BaseScheduler) -> None:
    """Add or update the three jobs. Call it on a started (paused) scheduler: only then does
    it see the stored jobs, whose next run time (a pending misfire, a pause) it keeps."""
    zone = scheduler.timezone
    # misfire_grace_time, per job: a warm-up later than one interval is pointless (the next
    # one is due); a cleanup may start up to 3 h late, later it would run into the morning
    # traffic, so it waits for the next night (reported missed); a late report beats none.
    every_interval = IntervalTrigger(minutes=WARMUP_MINUTES, timezone=zone)
    nightly = CronTrigger(hour=CLEANUP_HOUR, minute=0, timezone=zone)
    morning = CronTrigger(hour=REPORT_HOUR, minute=0, timezone=zone)
    jobs: list[tuple[str, Callable[..., Any], BaseTrigger, int | None]] = [
        (WARMUP_JOB_ID, warm_cache_job, every_interval, WARMUP_MINUTES * 60),
        (CLEANUP_JOB_ID, cleanup_job, nightly, CLEANUP_GRACE_SECONDS),
        (REPORT_JOB_ID, report_job, morning, None),
    ]
    for job_id, job_func, trigger, grace in jobs:
        # coalesce: after an outage one run does it all (a second cleanup finds nothing, a
        # second report says the same); max_instances=1: two cleanups would fight over rows.
        options: dict[str, Any] = {"misfire_grace_time": grace, "coalesce": True}
        stored = scheduler.get_job(job_id)
        if job_id == WARMUP_JOB_ID:  # the cache lives in this process: warm it at every start
            options["next_run_time"] = datetime.now(zone)
        elif stored is not None and repr(stored.trigger) == repr(trigger):
            options["next_run_time"] = stored.next_run_time  # keep what the store knows
        scheduler.add_job(
            check_persistable(job_func),
            trigger,
            id=job_id,
            name=job_id,
            max_instances=1,
            replace_existing=True,
            **options,
        )


def build_scheduler(settings: Settings | None = None) -> BackgroundScheduler:
    """A scheduler, not started, with a SQLAlchemy job store and the configured zone."""
    settings = settings or load_settings()
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=settings.jobstore_url)},
        executors={"default": ThreadPoolExecutor(max_workers=4)},
        timezone=ZoneInfo(settings.timezone),
    )


def start_scheduler(alert: Callable[[Alert], None] = log_alert) -> BackgroundScheduler:
    """Build, wire the listeners, start, register the jobs, and return the running scheduler."""
    scheduler = build_scheduler()
    install_listeners(scheduler, alert)
    scheduler.start(paused=True)  # opens the job store; nothing runs yet
    register_jobs(scheduler)
    scheduler.resume()  # overdue runs now meet their misfire policy
    return scheduler


def pause_job(scheduler: BaseScheduler, job_id: str) -> None:
    """Stop running ``job_id`` until resumed (the pause is stored, so it survives restarts)."""
    scheduler.pause_job(job_id)


def resume_job(scheduler: BaseScheduler, job_id: str) -> datetime | None:
    """Resume ``job_id`` at its next fire time from now (paused runs are not made up)."""
    job = scheduler.resume_job(job_id)
    return job.next_run_time if job else None


def remove_job(scheduler: BaseScheduler, job_id: str) -> bool:
    """Remove ``job_id``; False if there was no such job."""
    if scheduler.get_job(job_id) is None:
        return False
    scheduler.remove_job(job_id)
    return True


def reschedule_daily(scheduler: BaseScheduler, job_id: str, hour: int, minute: int = 0) -> datetime:
    """Run ``job_id`` daily at hour:minute in the scheduler's zone; returns its next run."""
    trigger = CronTrigger(hour=hour, minute=minute, timezone=scheduler.timezone)
    next_run: datetime = scheduler.reschedule_job(job_id, trigger=trigger).next_run_time
    return next_run


def run_job_now(scheduler: BaseScheduler, job_id: str) -> None:
    """Run ``job_id`` at once, through the scheduler (its max_instances still holds). A cron
    job's next run is then its usual fire time; an interval job counts on from this run."""
    scheduler.modify_job(job_id, next_run_time=datetime.now(scheduler.timezone))


def main() -> int:
    """Run the jobs until SIGTERM or SIGINT, then stop gracefully; return the exit code."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # The handler only hands the request to the main thread. SimpleQueue.put() may interrupt
    # the main thread's get() safely; threading.Event.set() takes a lock that an interrupted
    # Event.wait() can be holding at that instant, and the process would hang for good.
    stop_requests: queue.SimpleQueue[int] = queue.SimpleQueue()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requests.put(signum)  # only this: the main thread shuts down

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, request_stop)
    try:
        get_engine(load_settings().database_url)  # fail now on bad settings or database
        scheduler = start_scheduler()
    except (ValueError, ImportError, SQLAlchemyError) as error:
        logger.error("cannot start: %s", error)
        return 1
    for job in scheduler.get_jobs():
        logger.info("job %s: next run at %s", job.id, job.next_run_time)
    logger.info("scheduler started (pid %d); stop it with Ctrl+C or SIGTERM", os.getpid())
    while True:
        try:
            # In slices: a signal that lands just before get() starts to wait does not
            # interrupt it; its handler runs when this get() returns.
            signum = stop_requests.get(timeout=0.5)
            break
        except queue.Empty:
            continue
    logger.info("%s received, stopping", signal.Signals(signum).name)
    scheduler.shutdown(wait=True)
    logger.info("scheduler stopped")
    return 0


if __name__ == "__main__":
    # Run as a script this file is the module "__main__", and its jobs would be stored as
    # "__main__:cleanup_job": no other process (a second instance, a `python -c` importing
    # the module) can import that reference, and SQLAlchemyJobStore deletes the rows it
    # cannot restore. Import this file under its own name and run that copy instead, so
    # the store holds "level2_data_cleanup:cleanup_job" whatever the entry point.
    sys.exit(importlib.import_module(Path(__file__).stem).main())
